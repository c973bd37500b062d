"""seed_demo (idempotent, prints once), issue_api_key, and the admin's key issuing."""

from __future__ import annotations

import io
import json
import re
import stat
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from alerts_web.api.models import ALL_SCOPES, ApiClient, hash_key
from alerts_web.wards.access import visible_wards
from alerts_web.wards.catalog import demo_wards
from alerts_web.wards.models import Ward

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_seed_demo_prints_passwords_once_and_is_idempotent(tmp_path: Path) -> None:
    creds = tmp_path / "creds.json"
    first = _seed("--credentials-file", str(creds))
    nurse_pw = re.search(r"nurse / (\S+)", first).group(1)  # type: ignore[union-attr]
    key = re.search(r"API key \(shown once\): (\S+)", first).group(1)  # type: ignore[union-attr]
    assert User.objects.get(username="nurse").check_password(nurse_pw)
    assert ApiClient.objects.get(key_hash=hash_key(key)).scopes == sorted(ALL_SCOPES)
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert json.loads(creds.read_text())["nurse"] == nurse_pw
    assert Ward.objects.count() == len(demo_wards())
    nurse = User.objects.get(username="nurse")
    assert 0 < visible_wards(nurse).count() < Ward.objects.count()
    assert visible_wards(User.objects.get(username="admin")).count() == Ward.objects.count()

    second = _seed()
    assert nurse_pw not in second
    assert "rk_" not in second
    assert User.objects.get(username="nurse").check_password(nurse_pw)
    assert Ward.objects.count() == len(demo_wards())

    third = _seed("--reset-passwords", "--rotate-key")
    new_pw = re.search(r"nurse / (\S+)", third).group(1)  # type: ignore[union-attr]
    assert new_pw != nurse_pw
    assert User.objects.get(username="nurse").check_password(new_pw)
    assert not ApiClient.objects.get(key_hash=hash_key(key)).is_active


def test_issue_api_key_with_scopes_and_ward(wards: tuple[Ward, Ward]) -> None:
    out = io.StringIO()
    call_command(
        "issue_api_key", "ehr-vendor", "--scopes", "fhir:read,cds", "--ward", "ward-a", stdout=out
    )
    key = out.getvalue().rsplit(" ", 1)[-1].strip()
    client = ApiClient.objects.get(key_hash=hash_key(key))
    assert client.scopes == ["cds", "fhir:read"]
    assert list(client.wards.values_list("code", flat=True)) == ["ward-a"]
    with pytest.raises(CommandError):
        call_command("issue_api_key", "other", "--scopes", "root")
    with pytest.raises(CommandError):
        call_command("issue_api_key", "other", "--scopes", "cds", "--ward", "nowhere")


def test_admin_issues_a_key_once_on_create(db: None) -> None:
    admin = User.objects.create_superuser("root", password="pw-root-123")
    client = Client()
    client.force_login(admin)
    response = client.post(
        "/admin/api/apiclient/add/",
        {"name": "analytics", "scopes": '["scores:read"]', "is_active": "on"},
        follow=True,
    )
    assert response.status_code == 200
    key = re.search(r"copy it now\): (rk_[A-Za-z0-9_-]+)", response.content.decode()).group(1)  # type: ignore[union-attr]
    assert ApiClient.objects.get(name="analytics").key_hash == hash_key(key)
    api = Client().get("/api/v1/encounters/x/score", HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert api.status_code == 404  # authenticated and in scope; just no such encounter
