"""``python -m alerts_web seed_demo``: wards, a demo nurse, an admin and an integrator key.

Idempotent: a rerun keeps existing passwords and keys (they were printed once and are
not stored in clear) unless ``--reset-passwords`` / ``--rotate-key`` asks for new ones.
``--credentials-file`` also writes what was issued to a 0600 JSON file, for scripts.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from alerts_web.api.models import ALL_SCOPES, ApiClient
from alerts_web.demo.accounts import ADMIN, CLIENT, NURSE
from alerts_web.wards.catalog import demo_wards
from alerts_web.wards.models import Ward
from readmit_core.settings import comma_list


class Command(BaseCommand):
    help = "Create demo wards, a nurse, an admin and an integrator API key (printed once)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--reset-passwords", action="store_true")
        parser.add_argument("--rotate-key", action="store_true")
        parser.add_argument(
            "--nurse-wards", default="", help="Comma-separated ward codes (default: half)."
        )
        parser.add_argument("--credentials-file", type=Path, default=None)

    def handle(self, *args: Any, **opts: Any) -> None:
        issued: dict[str, Any] = {}
        with transaction.atomic():
            wards = self._wards()
            nurse_wards = self._nurse_wards(wards, opts["nurse_wards"])
            nurses, planners = self._groups()
            nurse, pw = self._user(NURSE, staff=False, reset=opts["reset_passwords"])
            nurse.groups.add(nurses)
            for ward in nurse_wards:
                ward.nurses.add(nurse)
            if pw:
                issued[NURSE] = pw
            admin, pw = self._user(ADMIN, staff=True, reset=opts["reset_passwords"])
            admin.groups.add(planners)
            if pw:
                issued[ADMIN] = pw
            key = self._api_key(opts["rotate_key"])
            if key:
                issued["api_key"] = key
        self._report(issued, [w.code for w in nurse_wards], opts["credentials_file"])

    def _wards(self) -> list[Ward]:
        out = []
        for code, name in demo_wards():
            ward, _ = Ward.objects.get_or_create(code=code, defaults={"name": name})
            out.append(ward)
        return out

    def _nurse_wards(self, wards: list[Ward], wanted: str) -> list[Ward]:
        if wanted.strip():
            codes = set(comma_list(wanted))
            for code in codes - {w.code for w in wards}:
                wards.append(Ward.objects.get_or_create(code=code, defaults={"name": code})[0])
            return [w for w in wards if w.code in codes]
        return wards[: max(1, math.ceil(len(wards) / 2))]

    def _groups(self) -> tuple[Group, Group]:
        nurses, _ = Group.objects.get_or_create(name="Nurses")
        planners, _ = Group.objects.get_or_create(name="Discharge planners")
        planners.permissions.add(Permission.objects.get(codename="view_all_wards"))
        return nurses, planners

    def _user(self, username: str, *, staff: bool, reset: bool) -> tuple[Any, str | None]:
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is not None and not reset:
            return user, None
        password = secrets.token_urlsafe(12)
        if user is None:
            user = user_model(username=username, is_staff=staff, is_superuser=staff)
        user.set_password(password)
        user.save()
        return user, password

    def _api_key(self, rotate: bool) -> str | None:
        existing = ApiClient.objects.filter(name=CLIENT).first()
        if existing is not None and not rotate:
            return None
        if existing is not None:
            existing.is_active = False
            existing.name = f"{CLIENT} (revoked {existing.prefix})"
            existing.save()
        _, key = ApiClient.issue(CLIENT, list(ALL_SCOPES))
        return key

    def _report(self, issued: dict[str, Any], nurse_wards: list[str], path: Path | None) -> None:
        if not issued:
            self.stdout.write(
                "demo accounts exist; passwords and key were printed when first created "
                "(rerun with --reset-passwords / --rotate-key for new ones)"
            )
        if NURSE in issued or ADMIN in issued:
            self.stdout.write("demo accounts (passwords shown once):")
        if NURSE in issued:
            self.stdout.write(f"  {NURSE} / {issued[NURSE]}   wards: {', '.join(nurse_wards)}")
        if ADMIN in issued:
            self.stdout.write(f"  {ADMIN} / {issued[ADMIN]}   (staff: all wards, ops, admin)")
        if "api_key" in issued:
            self.stdout.write(f"integrator API key (shown once): {issued['api_key']}")
        if path is not None and issued:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump({**issued, "nurse_wards": nurse_wards}, fh)
