"""The ward dashboard's WebSocket: ``/ws/wards/<code>/?since=<ISO time>``.

On (re)connect the client gets a snapshot of the ward's open and acknowledged alerts
(highest risk first); alerts created after ``since`` are flagged ``missed`` so the
page can cue them. That snapshot is the catch-up after a dropped socket: whatever
happened meanwhile is in it. Afterwards every new or changed alert is pushed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import timezone

from alerts_web.alerts.models import Alert, AlertStatus
from alerts_web.wards.access import visible_wards
from alerts_web.wards.models import Ward
from alerts_web.wards.revocation import user_group

SNAPSHOT_LIMIT = 200
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
def _ward_for(user: Any, code: str) -> Ward | None:
    return visible_wards(user).filter(code=code).first()


@database_sync_to_async
def _snapshot(ward: Ward, since: datetime | None) -> list[dict[str, Any]]:
    alerts = (
        Alert.objects.filter(ward=ward)
        .exclude(status=AlertStatus.CLOSED)
        .select_related("ward", "assigned_to")
        .order_by("-probability", "-created_at")[:SNAPSHOT_LIMIT]
    )
    out = []
    for alert in alerts:
        msg = alert.as_message()
        msg["missed"] = since is not None and alert.created_at > since
        out.append(msg)
    return out


@database_sync_to_async
def _session_expiry(scope: dict[str, Any]) -> datetime | None:
    """The stored session's end (database sessions), not "now + age" recomputed here."""
    from django.contrib.sessions.models import Session

    session = scope.get("session")
    if session is None or not session.session_key:
        return None
    row = Session.objects.filter(session_key=session.session_key).first()
    return row.expire_date if row is not None else timezone.now()


class WardAlertsConsumer(AsyncJsonWebsocketConsumer):
    ward: Ward | None = None
    expires: datetime | None = None
    user_group: str | None = None
    revoked = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        code = self.scope["url_route"]["kwargs"]["code"]
        self.ward = await _ward_for(user, code)
        if self.ward is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.channel_layer.group_add(self.ward.group_name, self.channel_name)
        self.user_group = user_group(user.pk)
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        self.expires = await _session_expiry(self.scope)
        await self.accept()
        since = _parse_since(self.scope.get("query_string", b""))
        await self.send_json(
            {
                "type": "snapshot",
                "server_time": timezone.now().isoformat(),
                "alerts": await _snapshot(self.ward, since),
            }
        )

    async def disconnect(self, code: int) -> None:
        if self.ward is not None:
            await self.channel_layer.group_discard(self.ward.group_name, self.channel_name)
        if self.user_group is not None:
            await self.channel_layer.group_discard(self.user_group, self.channel_name)

    async def access_revoked(self, event: dict[str, Any]) -> None:
        """Logout closes at once; anything else re-checks the ward assignment."""
        code = self.scope["url_route"]["kwargs"]["code"]
        if event.get("reason") == "logout" or await _ward_for(self.scope.get("user"), code) is None:
            self.revoked = True
            await self.close(code=CLOSE_REVOKED)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong", "server_time": timezone.now().isoformat()})

    async def alert_message(self, event: dict[str, Any]) -> None:
        if self.revoked:
            return
        if self.expires is not None and timezone.now() >= self.expires:
            await self.close(code=CLOSE_REVOKED)  # no patient data past the session's end
            return
        await self.send_json(
            {
                "type": event.get("kind", "alert"),
                "server_time": timezone.now().isoformat(),
                "alert": event["alert"],
            }
        )
