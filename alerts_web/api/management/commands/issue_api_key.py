"""``python -m alerts_web issue_api_key NAME --scopes scores:read,fhir:read [--ward CODE]``.

Prints the key once; only its hash is stored.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from alerts_web.api.models import ALL_SCOPES, ApiClient
from alerts_web.wards.models import Ward
from readmit_core.settings import comma_list


class Command(BaseCommand):
    help = "Issue an API key for an integrator, with scopes and optional ward restriction."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--scopes", required=True, help=f"Comma list of {', '.join(ALL_SCOPES)}"
        )
        parser.add_argument("--ward", action="append", default=[], help="Restrict to a ward.")

    def handle(self, *args: Any, **opts: Any) -> None:
        scopes = list(comma_list(opts["scopes"]))
        if ApiClient.objects.filter(name=opts["name"]).exists():
            raise CommandError(f"an API client named {opts['name']!r} exists")
        wards = list(Ward.objects.filter(code__in=opts["ward"]))
        missing = set(opts["ward"]) - {w.code for w in wards}
        if missing:
            raise CommandError(f"unknown wards: {', '.join(sorted(missing))}")
        try:
            client, key = ApiClient.issue(opts["name"], scopes)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        client.wards.set(wards)
        self.stdout.write(f"API key for {client.name} (shown once): {key}")
