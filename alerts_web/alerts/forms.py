from __future__ import annotations

from typing import Any

from django import forms

from alerts_web.alerts.actions import assignable_users
from alerts_web.alerts.models import Alert


class NoteForm(forms.Form):
    note = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control form-control-sm"}),
    )


class AssignForm(forms.Form):
    assignee: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None, widget=forms.Select(attrs={"class": "form-select form-select-sm"})
    )

    def __init__(self, alert: Alert, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["assignee"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = assignable_users(alert)
