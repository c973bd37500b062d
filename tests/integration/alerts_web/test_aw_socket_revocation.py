"""An open ward socket closes on logout, on session expiry or deletion, on a password change
and when the nurse is unassigned."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from alerts_web.alerts.feed import broadcast, store_event
from alerts_web.wards.models import Ward
from alerts_web.worklist.consumers import CLOSE_REVOKED
from alerts_web.worklist.routing import websocket_urlpatterns

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TIMEOUT = 5


def _as(user: Any, session: Any = None) -> Callable[..., Awaitable[None]]:
    inner = URLRouter(websocket_urlpatterns)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        extra = {"user": user} | ({"session": session} if session is not None else {})
        await inner({**scope, **extra}, receive, send)

    return app


async def _open(app: Any) -> WebsocketCommunicator:
    ws = WebsocketCommunicator(app, "/ws/wards/ward-a/")
    connected, _ = await ws.connect(timeout=TIMEOUT)
    assert connected
    assert (await ws.receive_json_from(timeout=TIMEOUT))["type"] == "snapshot"
    return ws


async def _closed_with(ws: WebsocketCommunicator, code: int) -> None:
    message = await ws.receive_output(timeout=TIMEOUT)
    assert message == {"type": "websocket.close", "code": code}


def test_logout_in_another_tab_closes_the_socket(nurse_a: User) -> None:
    async def scenario() -> None:
        ws = await _open(_as(nurse_a))

        def logout() -> None:
            other_tab = Client()
            other_tab.force_login(nurse_a)
            other_tab.post("/accounts/logout/")

        await database_sync_to_async(logout)()
        await _closed_with(ws, CLOSE_REVOKED)

    async_to_sync(scenario)()


def test_unassigning_the_nurse_closes_the_socket(nurse_a: User, nurse_b: User) -> None:
    async def scenario() -> None:
        ws_a = await _open(_as(nurse_a))

        def unassign() -> None:
            Ward.objects.get(code="ward-a").nurses.remove(nurse_a)

        await database_sync_to_async(unassign)()
        await _closed_with(ws_a, CLOSE_REVOKED)

    async_to_sync(scenario)()


def test_an_unrelated_change_keeps_the_socket(nurse_a: User, nurse_b: User) -> None:
    async def scenario() -> None:
        ws = await _open(_as(nurse_a))

        def unassign_from_other_ward() -> None:
            nurse_a.wards.add(Ward.objects.get(code="ward-b"))
            nurse_a.wards.remove(Ward.objects.get(code="ward-b"))

        await database_sync_to_async(unassign_from_other_ward)()
        assert await ws.receive_nothing(timeout=0.5)
        await ws.disconnect()

    async_to_sync(scenario)()


def test_no_patient_is_pushed_after_the_session_expired(nurse_a: User, event_factory: Any) -> None:
    def expiring_session() -> SessionStore:
        session = SessionStore()
        session["_auth_user_id"] = str(nurse_a.pk)
        session.create()
        return session

    async def scenario() -> None:
        session = await database_sync_to_async(expiring_session)()
        ws = await _open(_as(nurse_a, session))

        def expire_and_alert() -> None:
            Session.objects.filter(session_key=session.session_key).update(
                expire_date=timezone.now() - timedelta(seconds=1)
            )

        await database_sync_to_async(expire_and_alert)()
        # The socket read its expiry at connect: reconnecting sees the new one, and a live
        # socket checks it before every push.
        ws2 = WebsocketCommunicator(_as(nurse_a, session), "/ws/wards/ward-a/")
        connected, _ = await ws2.connect(timeout=TIMEOUT)
        assert connected
        await ws2.receive_json_from(timeout=TIMEOUT)

        def new_alert() -> None:
            alert, _ = store_event(event_factory("ward-a"))
            assert alert is not None
            broadcast(alert)

        await database_sync_to_async(new_alert)()
        await _closed_with(ws2, CLOSE_REVOKED)
        await ws.disconnect()

    async_to_sync(scenario)()


def _logged_in(user: User) -> SessionStore:
    """The session a browser got at login (auth hash included), as the socket's scope holds."""
    browser = Client()
    browser.force_login(user)
    return SessionStore(session_key=browser.session.session_key)


def test_a_password_change_closes_the_socket(nurse_a: User) -> None:
    async def scenario() -> None:
        session = await database_sync_to_async(_logged_in)(nurse_a)
        ws = await _open(_as(nurse_a, session))

        def change_password() -> None:
            user = User.objects.get(pk=nurse_a.pk)
            user.set_password("a-new-password-789")
            user.save()

        await database_sync_to_async(change_password)()
        await _closed_with(ws, CLOSE_REVOKED)

    async_to_sync(scenario)()


def test_a_password_changed_behind_the_signals_back_stops_the_next_push(
    nurse_a: User, event_factory: Any
) -> None:
    async def scenario() -> None:
        session = await database_sync_to_async(_logged_in)(nurse_a)
        ws = await _open(_as(nurse_a, session))

        def change_password_and_alert() -> None:
            # a bulk update sends no post_save: the push re-validates the auth hash itself
            User.objects.filter(pk=nurse_a.pk).update(password=make_password("other-pw-4567"))
            alert, _ = store_event(event_factory("ward-a"))
            assert alert is not None
            broadcast(alert)

        await database_sync_to_async(change_password_and_alert)()
        await _closed_with(ws, CLOSE_REVOKED)

    async_to_sync(scenario)()


def test_deleting_the_session_row_closes_the_socket(nurse_a: User) -> None:
    async def scenario() -> None:
        session = await database_sync_to_async(_logged_in)(nurse_a)
        ws = await _open(_as(nurse_a, session))

        def delete_sessions() -> None:
            Session.objects.all().delete()

        await database_sync_to_async(delete_sessions)()
        await _closed_with(ws, CLOSE_REVOKED)

    async_to_sync(scenario)()


def test_an_expired_session_closes_an_idle_socket_on_its_ping(nurse_a: User) -> None:
    async def scenario() -> None:
        session = await database_sync_to_async(_logged_in)(nurse_a)
        ws = await _open(_as(nurse_a, session))
        await ws.send_json_to({"type": "ping"})
        assert (await ws.receive_json_from(timeout=TIMEOUT))["type"] == "pong"

        def expire() -> None:
            Session.objects.filter(session_key=session.session_key).update(
                expire_date=timezone.now() - timedelta(seconds=1)
            )

        await database_sync_to_async(expire)()
        await ws.send_json_to({"type": "ping"})
        await _closed_with(ws, CLOSE_REVOKED)

    async_to_sync(scenario)()


def test_saving_the_account_without_a_new_password_keeps_the_socket(nurse_a: User) -> None:
    async def scenario() -> None:
        session = await database_sync_to_async(_logged_in)(nurse_a)
        ws = await _open(_as(nurse_a, session))

        def rename() -> None:
            user = User.objects.get(pk=nurse_a.pk)
            user.first_name = "Ann"
            user.save()  # every field saved: the sockets re-check, and the session holds

        await database_sync_to_async(rename)()
        assert await ws.receive_nothing(timeout=0.5)
        await ws.send_json_to({"type": "ping"})
        assert (await ws.receive_json_from(timeout=TIMEOUT))["type"] == "pong"
        await ws.disconnect()

    async_to_sync(scenario)()
