"""The ward dashboard WebSocket: isolation, snapshot catch-up, live pushes (real Redis layer)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from alerts_web.alerts.feed import broadcast, store_event
from alerts_web.alerts.models import Alert
from alerts_web.asgi import application
from alerts_web.worklist.routing import websocket_urlpatterns
from readmit_core.events import WorklistContext

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TIMEOUT = 5


def _as(user: Any) -> Callable[..., Awaitable[None]]:
    """The WebSocket router with ``user`` already authenticated (the auth stack is tested below)."""
    inner = URLRouter(websocket_urlpatterns)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await inner({**scope, "user": user}, receive, send)

    return app


def _alert(event_factory: Any, ward: str, **kw: Any) -> Alert:
    alert, _ = store_event(event_factory(ward, **kw))
    assert alert is not None
    return alert


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(coro_fn)()


def test_nurse_gets_snapshot_then_live_alerts(nurse_a: User, event_factory: Any) -> None:
    existing = _alert(event_factory, "ward-a")
    _alert(event_factory, "ward-b")

    async def scenario() -> None:
        ws = WebsocketCommunicator(_as(nurse_a), "/ws/wards/ward-a/")
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected
        snapshot = await ws.receive_json_from(timeout=TIMEOUT)
        assert snapshot["type"] == "snapshot"
        assert [a["id"] for a in snapshot["alerts"]] == [existing.pk]
        new = await database_sync_to_async(_alert)(event_factory, "ward-a")
        await database_sync_to_async(broadcast)(new)
        pushed = await ws.receive_json_from(timeout=TIMEOUT)
        assert (pushed["type"], pushed["alert"]["id"]) == ("alert", new.pk)
        other = await database_sync_to_async(_alert)(event_factory, "ward-b")
        await database_sync_to_async(broadcast)(other)
        assert await ws.receive_nothing(timeout=0.5)
        await ws.disconnect()

    run(scenario)


def test_other_ward_and_anonymous_are_refused(nurse_a: User, wards: Any) -> None:
    async def scenario() -> None:
        for user, path in ((nurse_a, "/ws/wards/ward-b/"), (AnonymousUser(), "/ws/wards/ward-a/")):
            ws = WebsocketCommunicator(_as(user), path)
            connected, code = await ws.connect(timeout=TIMEOUT)
            assert not connected
            assert code == 4403
            await ws.disconnect()

    run(scenario)


def test_reconnect_catches_up_with_what_was_missed(nurse_a: User, event_factory: Any) -> None:
    seen = _alert(event_factory, "ward-a")
    since = timezone.now()
    missed = _alert(event_factory, "ward-a")

    async def scenario() -> None:
        ws = WebsocketCommunicator(_as(nurse_a), f"/ws/wards/ward-a/?since={since.isoformat()}")
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected
        snapshot = await ws.receive_json_from(timeout=TIMEOUT)
        flags = {a["id"]: a["missed"] for a in snapshot["alerts"]}
        assert flags == {seen.pk: False, missed.pk: True}
        await ws.disconnect()

    run(scenario)


def test_full_asgi_stack_uses_the_session_and_checks_origin(
    nurse_a: User, event_factory: Any
) -> None:
    alert = _alert(event_factory, "ward-a")
    client = Client()
    client.force_login(nurse_a)
    cookie = f"sessionid={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()

    async def scenario() -> None:
        good = [(b"cookie", cookie), (b"origin", b"http://127.0.0.1:8000")]
        ws = WebsocketCommunicator(application, "/ws/wards/ward-a/", headers=good)
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected
        snapshot = await ws.receive_json_from(timeout=TIMEOUT)
        assert snapshot["alerts"][0]["id"] == alert.pk
        await ws.disconnect()
        for headers in (
            [(b"origin", b"http://127.0.0.1:8000")],  # no session: anonymous
            [(b"cookie", cookie), (b"origin", b"http://evil.example")],  # cross-site
        ):
            ws = WebsocketCommunicator(application, "/ws/wards/ward-a/", headers=headers)
            connected, _ = await ws.connect(timeout=TIMEOUT)
            assert not connected
            await ws.disconnect()

    run(scenario)


def test_actions_are_pushed_as_updates(nurse_a: User, event_factory: Any) -> None:
    alert = _alert(event_factory, "ward-a")
    client = Client()
    client.force_login(nurse_a)

    async def scenario() -> None:
        ws = WebsocketCommunicator(_as(nurse_a), "/ws/wards/ward-a/")
        assert (await ws.connect(timeout=TIMEOUT))[0]
        await ws.receive_json_from(timeout=TIMEOUT)
        post = database_sync_to_async(client.post)
        response = await post(reverse("alerts:action", args=[alert.pk, "acknowledge"]))
        assert response.status_code == 302
        update = await ws.receive_json_from(timeout=TIMEOUT)
        assert update["type"] == "update"
        assert update["alert"]["status"] == "acknowledged"
        await ws.disconnect()

    run(scenario)


IDLE_S = 12  # more than two of channels-redis' 5 s blocking pops on an idle layer


def test_idle_ward_socket_stays_open_and_still_delivers(nurse_a: User, event_factory: Any) -> None:
    """A ward screen left open with no news keeps its socket (redis-py 8 dropped it every 5 s).

    ``receive_nothing`` fails on anything the server sends meanwhile, a close included; the
    alert after the idle spell proves the layer's receive loop is still alive.
    """

    async def scenario() -> None:
        ws = WebsocketCommunicator(_as(nurse_a), "/ws/wards/ward-a/")
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected
        assert (await ws.receive_json_from(timeout=TIMEOUT))["type"] == "snapshot"
        assert await ws.receive_nothing(timeout=IDLE_S, interval=0.5)
        new = await database_sync_to_async(_alert)(event_factory, "ward-a")
        await database_sync_to_async(broadcast)(new)
        pushed = await ws.receive_json_from(timeout=TIMEOUT)
        assert (pushed["type"], pushed["alert"]["id"]) == ("alert", new.pk)
        await ws.disconnect()

    run(scenario)


def test_a_nurse_taken_off_the_ward_stops_receiving_its_rows(
    nurse_a: User, wards: Any, event_factory: Any
) -> None:
    async def scenario() -> None:
        ws = WebsocketCommunicator(_as(nurse_a), "/ws/wards/ward-a/")
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected
        assert (await ws.receive_json_from(timeout=TIMEOUT))["type"] == "snapshot"
        await database_sync_to_async(wards[0].nurses.remove)(nurse_a)
        new = await database_sync_to_async(_alert)(
            event_factory, "ward-a", context=WorklistContext(patient_name="Private, P")
        )
        await database_sync_to_async(broadcast)(new)
        output = await ws.receive_output(timeout=TIMEOUT)
        # closed as revoked (4401), by the unassignment signal or by the push's own check
        assert output == {"type": "websocket.close", "code": 4401}
        await ws.disconnect()

    run(scenario)
