"""Turning ScoreEvents into Alert rows and telling the ward's dashboards.

Kept free of Kafka so the rules (what becomes an alert, idempotency, the broadcast
shape) are tested without a broker; :mod:`alerts_web.alerts.kafka_feed` only moves
bytes into :func:`handle_message`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any

import orjson
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from pydantic import ValidationError

from alerts_web.alerts.models import ActionKind, Alert, AlertAction, AlertStatus
from alerts_web.wards.models import Ward
from readmit.events import SCORE_EVENT_VERSION, ScoreEvent

log = logging.getLogger(__name__)


@dataclass
class FeedCounts:
    """What the feed did with the messages it saw (logged; never identifiers)."""

    seen: int = 0
    stored: int = 0
    updated: int = 0
    unchanged: int = 0
    not_alerting: int = 0
    downgraded: int = 0
    unknown_version: int = 0
    invalid: int = 0
    broadcast_failed: int = 0

    def add(self, batch: FeedCounts) -> None:
        """Fold in the counts of one stored batch."""
        for counter in fields(self):
            setattr(self, counter.name, getattr(self, counter.name) + getattr(batch, counter.name))


def is_alerting(event: ScoreEvent) -> bool:
    """High band and a readmission still possible (the rule lives on ScoreEvent)."""
    return event.alerting


def parse_message(raw: bytes, counts: FeedCounts) -> ScoreEvent | None:
    """Decode one ``risk.scored`` message; unknown schema versions are skipped and counted."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        counts.invalid += 1
        return None
    if not isinstance(data, dict):
        counts.invalid += 1
        return None
    if data.get("schema_version") != SCORE_EVENT_VERSION:
        counts.unknown_version += 1
        return None
    try:
        return ScoreEvent.model_validate(data)
    except ValidationError:
        counts.invalid += 1
        return None


def store_event(event: ScoreEvent) -> tuple[Alert | None, str]:
    """Apply one score to the alerts: (alert, outcome).

    Outcomes: "created"/"updated" (high risk), "unchanged" (redelivery or an older input
    arriving late), "downgraded" (a newer input scored below high: the open alert is
    closed by the system, with an audit row), "skip" (not high, no open alert).

    One open alert per encounter: after a champion rotation, the new model's high score
    takes over the old model's open alert (status, assignee and history kept, a system
    note added) instead of opening a second one beside it.
    """
    if not is_alerting(event):
        return _downgrade(event)
    ward, _ = Ward.objects.get_or_create(code=event.ward, defaults={"name": event.ward})
    values = {"ward": ward, **_score_values(event)}
    with transaction.atomic():
        alerts = Alert.objects.select_for_update().filter(encounter_id=event.encounter_id)
        alert = alerts.filter(model_version=event.model_version).first()
        if alert is None:
            latest = alerts.order_by("-computed_at").first()
            if latest is not None and event.computed_at < latest.computed_at:
                return latest, "unchanged"  # older than what the encounter already shows
            still_open = alerts.exclude(status=AlertStatus.CLOSED).order_by("-computed_at")
            alert = still_open.first()
            if alert is not None:
                return _take_over(alert, event, values), "updated"
            created = Alert.objects.create(
                encounter_id=event.encounter_id, model_version=event.model_version, **values
            )
            return created, "created"
        if alert.input_key == event.input_key or event.computed_at < alert.computed_at:
            return alert, "unchanged"  # a redelivery, or an older input arriving late
        for key, value in values.items():
            setattr(alert, key, value)
        alert.save()
        return alert, "updated"


def _take_over(alert: Alert, event: ScoreEvent, values: dict[str, Any]) -> Alert:
    """The open alert of an earlier model now follows the new model's score."""
    previous = alert.model_version
    for key, value in values.items():
        setattr(alert, key, value)
    alert.model_version = event.model_version
    alert.save()
    AlertAction.objects.create(
        alert=alert,
        user=None,
        kind=ActionKind.NOTE,
        note=f"Rescored by model {event.model_version} at {event.probability:.0%} (still high "
        f"risk); was model {previous}.",
    )
    return alert


def _score_values(event: ScoreEvent) -> dict[str, Any]:
    return {
        "patient_id": event.patient_id,
        "input_key": event.input_key,
        "probability": event.probability,
        "band": event.band,
        "factors": [f.model_dump(mode="json") for f in event.factors],
        "interventions": [i.model_dump(mode="json") for i in event.interventions],
        "computed_at": event.computed_at,
        "discharged_at": event.discharged_at,
    }


def _downgrade(event: ScoreEvent) -> tuple[Alert | None, str]:
    """Close the encounter's open alerts that this newer, lower score supersedes.

    Whatever model version raised them: after a champion rotation the new model's
    "not high" must still close the old model's alert.
    """
    closed: Alert | None = None
    with transaction.atomic():
        alerts = (
            Alert.objects.select_for_update()
            .filter(encounter_id=event.encounter_id, computed_at__lte=event.computed_at)
            .exclude(status=AlertStatus.CLOSED)
            .exclude(input_key=event.input_key, model_version=event.model_version)
        )
        for alert in alerts:
            for key, value in _score_values(event).items():
                setattr(alert, key, value)
            alert.status = AlertStatus.CLOSED
            alert.save()
            reason = "not readmittable" if event.non_readmittable else f"band {event.band}"
            AlertAction.objects.create(
                alert=alert,
                user=None,
                kind=ActionKind.RESCORED,
                note=f"Rescored at {event.probability:.0%} ({reason}); alert closed.",
            )
            closed = alert
    return (closed, "downgraded") if closed is not None else (None, "skip")


def broadcast(alert: Alert, kind: str = "alert") -> None:
    """Send the alert to every dashboard subscribed to its ward."""
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(
        alert.ward.group_name, {"type": "alert.message", "kind": kind, "alert": alert.as_message()}
    )


def handle_messages(raws: list[bytes], counts: FeedCounts) -> list[Alert]:
    """Store a polled batch; returns the alerts to broadcast (new or changed ones)."""
    changed: list[Alert] = []
    for raw in raws:
        counts.seen += 1
        event = parse_message(raw, counts)
        if event is None:
            continue
        alert, outcome = store_event(event)
        if alert is None:
            counts.not_alerting += 1
        elif outcome == "downgraded":
            counts.downgraded += 1
            changed.append(alert)
        elif outcome == "created":
            counts.stored += 1
            changed.append(alert)
        elif outcome == "updated":
            counts.updated += 1
            changed.append(alert)
        else:
            counts.unchanged += 1
    return changed
