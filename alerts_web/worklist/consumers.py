"""The worklist WebSockets: ``/ws/wards/<code>/`` (one ward) and ``/ws/worklist/`` (every
ward the user may see, for planners), both with ``?since=<ISO time>``.

On (re)connect the client gets a snapshot: the first page of the default worklist
(active high-risk rows, highest risk first) with the honest ``total``; rows created
after ``since`` are flagged ``missed`` so the page can cue them. That snapshot is the
catch-up after a dropped socket. Afterwards every new or changed row is pushed; the
page then refetches its own filtered page, so it never shows more or less than the
database holds. ``ping`` is answered with ``pong`` (the client's liveness check).

Each snapshot (and each refused connect) leaves an access-audit row. The socket outlives
the HTTP request that authenticated it, so before every push, on every ping and on every
revocation message it asks the session store again, by the rule Channels' auth applied
at connect: a session deleted, expired, or whose auth hash no longer matches the user
(password changed, so Django rotated the hash) closes the socket with 4401.
"""

from __future__ import annotations

from datetime import datetime
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from alerts_web.access_audit.middleware import record_access, scope_address
from alerts_web.access_audit.models import Channel
from alerts_web.wards.access import can_see_ward, visible_wards
from alerts_web.wards.models import Ward
from alerts_web.wards.revocation import user_group
from alerts_web.worklist import rows as worklist

SNAPSHOT_PAGE = worklist.PAGE_SIZES[-1]
CLOSE_FORBIDDEN = 4403
CLOSE_REVOKED = 4401  # logged out, session expired or unassigned: log in / reconnect


def _parse_since(query: bytes) -> datetime | None:
    values = parse_qs(query.decode(errors="replace")).get("since")
    if not values:
        return None
    try:
        # A "+" of the UTC offset arrives as a space when the client did not encode it.
        parsed = datetime.fromisoformat(values[0].replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else timezone.make_aware(parsed)


@database_sync_to_async
def _visible(user: Any, code: str | None) -> list[Ward]:
    wards = visible_wards(user)
    if code is not None and "\x00" in code:  # names no ward; PostgreSQL text cannot hold it
        return []
    return list(wards.filter(code=code) if code is not None else wards)


@database_sync_to_async
def _still_visible(user: Any, ward_code: str) -> bool:
    """Whether the user may still see the ward, from the database (not the session's copy):
    a nurse taken off a ward, or a deactivated account, stops receiving its rows at once."""
    pk = getattr(user, "pk", None)
    if pk is None:
        return False
    fresh = get_user_model().objects.filter(pk=pk).first()
    return fresh is not None and can_see_ward(fresh, ward_code)


@database_sync_to_async
def _snapshot(user: Any, wards: list[Ward], since: datetime | None) -> dict[str, Any]:
    query = worklist.WorklistQuery(page_size=SNAPSHOT_PAGE)
    page = worklist.run(Ward.objects.filter(pk__in=[w.pk for w in wards]), query, user)
    for row in page["rows"]:
        row["missed"] = since is not None and datetime.fromisoformat(row["created_at"]) > since
    return {
        "alerts": page["rows"],
        "total": page["total"],
        "truncated": page["total"] > len(page["rows"]),
    }


async def _session_alive(scope: dict[str, Any]) -> bool:
    """Whether the socket's session still authenticates its user, read afresh from the store.

    ``channels.auth.get_user`` is the check the connect passed; given a new store object it
    sees the session as a request would now: gone or expired -> anonymous, auth hash not
    the user's (password changed) -> flushed and anonymous, account deactivated -> none.
    A scope without a session (in-process tests) has only its user to go by.
    """
    session = scope.get("session")
    user = scope.get("user")
    if session is None or not session.session_key:
        return user is not None and bool(getattr(user, "is_authenticated", False))
    store = import_module(settings.SESSION_ENGINE).SessionStore(session.session_key)
    current = await get_user({"session": store})
    return bool(current.is_authenticated) and current.pk == getattr(user, "pk", None)


@database_sync_to_async
def _audit(scope: dict[str, Any], route: str, ward: str, status: int) -> None:
    user = scope.get("user")
    actor = "anonymous"
    if user is not None and getattr(user, "is_authenticated", False):
        actor = str(user.get_username())
    record_access(
        actor=actor,
        channel=Channel.SOCKET,
        route=route,
        remote_addr=scope_address(scope),
        status=status,
        ward=ward,
        query=scope.get("query_string", b"").decode(errors="replace"),
    )


class WardAlertsConsumer(AsyncJsonWebsocketConsumer):
    """One ward's live worklist; subclasses choose which wards."""

    wards: list[Ward]
    user_group: str | None = None
    revoked = False
    route = "ws:wards"

    def ward_code(self) -> str | None:
        return str(self.scope["url_route"]["kwargs"]["code"])

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.wards = await _visible(user, self.ward_code())
        if not self.wards:
            await _audit(self.scope, self.route, self.ward_code() or "", 403)
            await self.close(code=CLOSE_FORBIDDEN)
            return
        for ward in self.wards:
            await self.channel_layer.group_add(ward.group_name, self.channel_name)
        self.user_group = user_group(user.pk)
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        await self.accept()
        since = _parse_since(self.scope.get("query_string", b""))
        snapshot = await _snapshot(user, self.wards, since)
        await self.send_json(
            {"type": "snapshot", "server_time": timezone.now().isoformat(), **snapshot}
        )
        await _audit(self.scope, self.route, self.ward_code() or "", 200)

    async def disconnect(self, code: int) -> None:
        for ward in getattr(self, "wards", ()):
            await self.channel_layer.group_discard(ward.group_name, self.channel_name)
        if self.user_group is not None:
            await self.channel_layer.group_discard(self.user_group, self.channel_name)

    async def access_revoked(self, event: dict[str, Any]) -> None:
        """Logout closes at once; anything else re-checks the session and the user's wards.

        A ward socket closes when its ward is no longer visible; the planners' socket
        closes when any ward it listens to was taken away (its snapshot would be stale).
        """
        if event.get("reason") != "logout" and await _session_alive(self.scope):
            still = {w.pk for w in await _visible(self.scope.get("user"), self.ward_code())}
            if {w.pk for w in self.wards} <= still and still:
                return
        self.revoked = True
        await self.close(code=CLOSE_REVOKED)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            # the client pings periodically: an idle socket also ends with its session
            if not await _session_alive(self.scope):
                await self.close(code=CLOSE_REVOKED)
                return
            await self.send_json({"type": "pong", "server_time": timezone.now().isoformat()})

    async def alert_message(self, event: dict[str, Any]) -> None:
        if self.revoked:
            return
        if not await _session_alive(self.scope):
            await self.close(code=CLOSE_REVOKED)  # no patient data past the session's end
            return
        if not await _still_visible(self.scope.get("user"), event["alert"]["ward"]):
            await self.close(code=CLOSE_REVOKED)  # taken off the ward: as on the signal
            return
        await self.send_json(
            {
                "type": event.get("kind", "alert"),
                "server_time": timezone.now().isoformat(),
                "alert": event["alert"],
            }
        )


class WorklistConsumer(WardAlertsConsumer):
    """Every ward the user may see (the planners' multi-ward worklist)."""

    route = "ws:worklist"

    def ward_code(self) -> str | None:
        return None
