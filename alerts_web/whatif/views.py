"""The what-if page: a hand-entered record scored by the champion model, with explanation."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from alerts_web.alerts.gauge import gauge
from alerts_web.scoring import ModelUnavailable, score_record
from alerts_web.whatif.forms import WhatIfForm
from model_store.explain import NOT_APPLICABLE_TEXT


@login_required
def whatif(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = WhatIfForm(request.POST)
        if form.is_valid() and form.record is not None:
            try:
                result = score_record(form.record)
            except ModelUnavailable as exc:
                context["model_error"] = exc.reason
                status = 503
            else:
                context["result"] = result
                context["not_applicable"] = NOT_APPLICABLE_TEXT
                context["gauge"] = gauge(result.probability)
                context["chart"] = {
                    "factors": [
                        {"label": f.label, "value": f.contribution} for f in result.factors[:10]
                    ],
                    "history": [],
                }
        else:
            status = 400
    else:
        form = WhatIfForm()
    context["form"] = form
    return render(request, "whatif/form.html", context, status=status)
