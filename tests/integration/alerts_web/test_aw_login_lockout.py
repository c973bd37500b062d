"""Password guessing is stopped: a user name + address is locked after a few failures.

The issue's probe: 50 wrong passwords, then the right one, used to log in. Now the pair is
locked after READMIT_LOGIN_FAILURE_LIMIT failures, the right password is refused too, the
lockout page is the app's own, the attempts never hold the password, and an admin unlock
(the admin's *Access attempts*, or ``axes_reset_username``) lets the nurse in again.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from readmit_core.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

PASSWORD = "right-horse-battery-staple"
WRONG = "wrong-guess-7f3a9c"
ADDRESS = "10.9.8.7"


@pytest.fixture
def nurse(db: Any) -> User:
    return User.objects.create_user("nurse_lock", password=PASSWORD)


def _login(client: Client, password: str, address: str = ADDRESS) -> Any:
    return client.post(
        "/accounts/login/",
        {"username": "nurse_lock", "password": password},
        REMOTE_ADDR=address,
    )


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _guess_fifty(client: Client) -> list[int]:
    return [_login(client, f"{WRONG}-{i}").status_code for i in range(50)]


def test_fifty_wrong_passwords_lock_the_pair_and_refuse_the_right_one(
    nurse: User, caplog: pytest.LogCaptureFixture
) -> None:
    limit = get_settings().login_failure_limit
    client = Client()
    with caplog.at_level(logging.DEBUG):
        statuses = _guess_fifty(client)
    # the form answers the first limit-1 failures; the limit-th and every later one is locked
    assert statuses[: limit - 1] == [200] * (limit - 1)
    assert set(statuses[limit - 1 :]) == {429}
    response = _login(client, PASSWORD)
    assert response.status_code == 429
    assert not _logged_in(client)
    page = response.content.decode()
    assert "Login locked" in page
    assert 'class="navbar' in page
    assert f"({limit} in a row)" in page
    assert "nurse_lock" not in page
    assert ADDRESS not in page
    # what is stored and logged never holds the password (nor, in logs, user or address)
    stored = [a.post_data + a.get_data for a in AccessAttempt.objects.all()]
    stored += [str(vars(f)) for f in AccessFailureLog.objects.all()]
    stored += [str(vars(f)) for f in AccessLog.objects.all()]
    assert stored
    assert not any(WRONG in s or PASSWORD in s for s in stored)
    logged = caplog.text
    assert WRONG not in logged
    assert PASSWORD not in logged
    assert "nurse_lock" not in logged
    assert ADDRESS not in logged


def test_the_lock_is_per_address(nurse: User) -> None:
    _guess_fifty(Client())
    elsewhere = Client()
    assert _login(elsewhere, PASSWORD, address="10.9.8.99").status_code == 302
    assert _logged_in(elsewhere)


def test_admin_unlocks_in_the_admin(nurse: User, staff: User) -> None:
    client = Client()
    _guess_fifty(client)
    admin = Client()
    admin.force_login(staff)
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    (attempt,) = AccessAttempt.objects.filter(username="nurse_lock")
    deleted = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert _login(client, PASSWORD).status_code == 302
    assert _logged_in(client)


def test_reset_command_unlocks(nurse: User) -> None:
    client = Client()
    _guess_fifty(client)
    assert _login(client, PASSWORD).status_code == 429
    call_command("axes_reset_username", "nurse_lock")
    assert _login(client, PASSWORD).status_code == 302
    assert _logged_in(client)


def test_a_success_before_the_limit_clears_the_count(nurse: User) -> None:
    limit = get_settings().login_failure_limit
    for _ in range(3):  # a nurse mistyping a few times a shift is never locked out
        client = Client()
        for i in range(limit - 1):
            assert _login(client, f"{WRONG}-{i}").status_code == 200
        assert _login(client, PASSWORD).status_code == 302


def test_a_forged_forwarded_for_does_not_escape_the_lock(nurse: User) -> None:
    """A guesser rotating X-Forwarded-For is still one address: the TCP peer's."""
    client = Client()
    statuses = [
        client.post(
            "/accounts/login/",
            {"username": "nurse_lock", "password": f"{WRONG}-{i}"},
            REMOTE_ADDR=ADDRESS,
            HTTP_X_FORWARDED_FOR=f"203.0.113.{i}",
        ).status_code
        for i in range(20)
    ]
    assert statuses[-1] == 429
    assert _login(client, PASSWORD).status_code == 429


def test_behind_a_proxy_the_entry_it_appended_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.test import RequestFactory

    from alerts_web import login_lockout

    settings = get_settings().model_copy(update={"login_proxy_hops": 1})
    monkeypatch.setattr(login_lockout, "get_settings", lambda: settings)
    forged = RequestFactory().post(
        "/accounts/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7"
    )
    assert login_lockout.client_address(forged) == "198.51.100.7"
    direct = RequestFactory().post("/accounts/login/", REMOTE_ADDR="10.0.0.2")
    assert login_lockout.client_address(direct) == "10.0.0.2"
