"""An open ward socket closes on logout, on session expiry and when the nurse is unassigned."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
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
