"""Turning ScoreEvents into worklist rows (alerts) and telling the wards' dashboards.

Kept free of Kafka so the rules are tested without a broker;
:mod:`alerts_web.alerts.kafka_feed` only moves bytes into :func:`handle_messages`.

The rules, all applied from the encounter's **latest** score (by ``input_version``, the
stay's input version, then ``computed_at``):

- one row per encounter; a redelivery or an older score arriving late changes nothing;
- a high score (readmission possible) opens a row, a medium one lists it (planners
  look at those on demand), a low one lists nothing;
- every rescore of a row is audited: old → new probability and band, model version,
  and which input changed;
- a rescore below high, or one that makes readmission inapplicable (death, hospice),
  closes the open row; a later score that is high again reopens a row that a score
  closed (not one a person closed, and not after the 30-day window);
- a later index stay of the same patient supersedes the earlier row (one row per
  patient on the worklist): an open earlier row is resolved as "readmitted" when the
  new stay began within 30 days of its discharge, else as superseded;
- 30 days after discharge an open row resolves itself (:func:`resolve_expired`, run
  by the feed at most once a minute and by ``manage.py resolve_alerts``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone
from pydantic import ValidationError

from alerts_web.alerts.models import (
    ACTIVE_STATUSES,
    SCORE_CLOSE_REASONS,
    ActionKind,
    Alert,
    AlertAction,
    AlertStatus,
    CloseReason,
)
from alerts_web.feature_fields import CODED_ID_COLUMNS, field_specs
from alerts_web.wards.registry import ward_of
from fhir_mappings.codes.dataset_ids import id_tables
from readmit_core.events import SCORE_EVENT_VERSION, DeadLetterReason, ScoreEvent, older_input

log = logging.getLogger(__name__)

READMISSION_WINDOW: Final = timedelta(days=30)
EXPIRY_CHECK_EVERY_S: Final = 60.0
LISTED_BANDS: Final = frozenset({"high", "medium"})
_MAX_CHANGES_SHOWN: Final = 4
TIME_FORMAT: Final = "%Y-%m-%d %H:%M UTC"


@dataclass
class FeedCounts:
    """What the feed did with the messages it saw (logged; never identifiers)."""

    seen: int = 0
    stored: int = 0
    updated: int = 0
    unchanged: int = 0
    not_alerting: int = 0
    downgraded: int = 0
    reopened: int = 0
    explained: int = 0  # a pending score's factors added by the explainer stage
    superseded: int = 0
    expired: int = 0
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


def is_listed(event: ScoreEvent) -> bool:
    """Whether a score puts a new row on the worklist (high, or medium on demand)."""
    return event.band in LISTED_BANDS and not event.non_readmittable


@dataclass(frozen=True)
class Rejection:
    """Why a ``risk.scored`` message cannot become an alert (its dead-letter reason)."""

    reason: DeadLetterReason
    detail: str


def decode_score(raw: bytes) -> ScoreEvent | Rejection:
    """One ``risk.scored`` message as a ScoreEvent, or why not (never raises)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection("undecodable", str(exc)[:200])
    if not isinstance(data, dict):
        return Rejection("schema_invalid", "event is not a JSON object")
    if data.get("schema_version") != SCORE_EVENT_VERSION:
        return Rejection("unknown_version", f"schema_version={data.get('schema_version')!r}")
    if b"\\u0000" in raw:  # PostgreSQL text and jsonb cannot hold NUL (see _without_nul)
        if any("\x00" in str(data.get(name, "")) for name in _IDENTIFIERS):
            return Rejection("schema_invalid", "an identifier holds a NUL character")
        data = _without_nul(data)
    try:
        return ScoreEvent.model_validate(data)
    except ValidationError as exc:
        names = ",".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
        return Rejection("schema_invalid", f"invalid fields: {names}")


def parse_message(
    raw: bytes, counts: FeedCounts, rejected: list[Rejection] | None = None
) -> ScoreEvent | None:
    """Decode one message; a refusal is counted (and kept in ``rejected`` when given)."""
    decoded = decode_score(raw)
    if isinstance(decoded, ScoreEvent):
        return decoded
    if decoded.reason == "unknown_version":
        counts.unknown_version += 1
    else:
        counts.invalid += 1
    if rejected is not None:
        rejected.append(decoded)
    return None


_IDENTIFIERS: Final = ("encounter_id", "patient_id", "ward", "input_key", "model_version")


def _without_nul(value: Any) -> Any:
    """The message with every NUL character dropped from its texts.

    Any producer may send one (FHIR strings allow it); PostgreSQL refuses NUL in text
    (psycopg raises ValueError, which would stop the feed) and in jsonb (a DataError the
    feed would retry forever, holding up every later alert). A name with a stray NUL is
    still the patient's row; an identifier with one is not an identifier we can store,
    so such a message is counted as invalid instead.
    """
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


# --- audit wording -------------------------------------------------------------------------
def when(value: datetime | None) -> str:
    """Times in audit sentences: one zone, labelled."""
    return value.astimezone(UTC).strftime(TIME_FORMAT) if value else "unknown"


def _pct(p: float) -> str:
    return f"{p:.0%}"


def _input_value(name: str, value: Any) -> str:
    spec = _SPECS.get(name)
    if spec is not None and spec.column in CODED_ID_COLUMNS:
        try:
            return id_tables()[spec.column].get(int(value), str(value))
        except (TypeError, ValueError):
            return str(value)
    return str(value)


_SPECS = {spec.name: spec for spec in field_specs()}


def changed_inputs(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Which model inputs differ between two scored records, in words."""
    if not old or not new:
        return "Inputs not compared (the earlier score did not carry them)."
    changes = [
        f"{_SPECS[name].label}: {_input_value(name, old.get(name))} → {_input_value(name, value)}"
        for name, value in new.items()
        if name in _SPECS and old.get(name) != value
    ]
    if not changes:
        return "No model input changed."
    shown = "; ".join(changes[:_MAX_CHANGES_SHOWN])
    more = len(changes) - _MAX_CHANGES_SHOWN
    return f"Changed: {shown}" + (f"; and {more} more." if more > 0 else ".")


def _rescore_sentence(alert: Alert, event: ScoreEvent) -> str:
    model = f"model {event.model_version}"
    if alert.model_version != event.model_version:
        model += f" (was model {alert.model_version})"
    applies = "; readmission risk does not apply" if event.non_readmittable else ""
    return (
        f"Rescored at {_pct(event.probability)} ({event.band} risk{applies}), was "
        f"{_pct(alert.probability)} ({alert.band} risk); {model}. "
        f"{changed_inputs(alert.inputs, _inputs(event))}"
    )


# --- storing one score ---------------------------------------------------------------------
def _inputs(event: ScoreEvent) -> dict[str, Any]:
    return event.record.model_dump(mode="json") if event.record is not None else {}


def _score_values(event: ScoreEvent) -> dict[str, Any]:
    values: dict[str, Any] = {
        "patient_id": event.patient_id,
        "model_version": event.model_version,
        "input_key": event.input_key,
        "input_version": event.input_version,
        "probability": event.probability,
        "band": event.band,
        "factors": [f.model_dump(mode="json") for f in event.factors],
        "factors_pending": event.factors_pending,
        "interventions": [i.model_dump(mode="json") for i in event.interventions],
        "inputs": _inputs(event),
        "computed_at": event.computed_at,
        "discharged_at": event.discharged_at,
    }
    ctx = event.context
    if ctx is not None:
        values.update(
            {name: _fit(name, getattr(ctx, name)) for name in _CONTEXT_TEXT},
            age_years=ctx.age_years
            if ctx.age_years is not None and 0 <= ctx.age_years < 150
            else None,
            admitted_at=ctx.admitted_at,
            discharged_at=event.discharged_at or ctx.discharged_at,
        )
    return values


_CONTEXT_TEXT: Final = ("patient_name", "mrn", "sex", "unit", "room", "bed", "disposition")


def _fit(name: str, value: str | None) -> str:
    """A context text cut to its column: any producer's overlong value must not turn the
    score into a message the feed can never store (the batch would replay forever)."""
    limit = getattr(Alert._meta.get_field(name), "max_length", None) or 200
    return (value or "")[:limit]


def record_action(alert: Alert, user: Any, kind: str, **fields_: Any) -> AlertAction:
    """Append an audit row and mirror it as the row's "last action" (for the worklist)."""
    action = AlertAction.objects.create(alert=alert, user=user, kind=kind, **fields_)
    alert.last_action = f"{action.describe()} · {action.actor_label}"[:300]
    alert.last_action_at = action.at
    alert.save(update_fields=["last_action", "last_action_at", "updated_at"])
    return action


def close(alert: Alert, reason: CloseReason) -> None:
    alert.status = AlertStatus.CLOSED
    alert.close_reason = reason
    alert.closed_at = timezone.now()


def reopen(alert: Alert) -> None:
    alert.status = AlertStatus.OPEN
    alert.close_reason = ""
    alert.closed_at = None


def _window_open(alert: Alert, now: datetime) -> bool:
    start = alert.discharged_at or alert.computed_at
    return now - start <= READMISSION_WINDOW


def store_event(event: ScoreEvent) -> tuple[Alert | None, str]:
    """Apply one score: (the encounter's row or None, outcome).

    Outcomes: "created" (a new row), "updated" (rescored, still open or closed as it
    was), "reopened", "downgraded" (closed by this score), "explained" (the factors of
    the row's pending score arrived), "unchanged" (redelivery or an older score), "skip"
    (nothing to list).
    """
    alert, outcome, _ = _store(event)
    return alert, outcome


def _store(event: ScoreEvent) -> tuple[Alert | None, str, list[Alert]]:
    """As :func:`store_event`, plus the patient's other rows this score changed."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(encounter_id=event.encounter_id).first()
        if alert is not None and (
            older_input(event.input_version, alert.input_version)
            or (
                event.computed_at < alert.computed_at
                and not older_input(alert.input_version, event.input_version)
            )
            or (alert.input_key, alert.model_version) == (event.input_key, event.model_version)
        ):
            if _completes_factors(alert, event):
                _add_factors(alert, event)
                return alert, "explained", []
            return alert, "unchanged", []
        others = _supersede_earlier_stays(event)
        if alert is None:
            if not is_listed(event):
                ward_of(event)  # an unlisted score's Location is a ward all the same
                return None, "skip", others
            return _create(event), "created", others
        return alert, _rescore(alert, event), others


def _completes_factors(alert: Alert, event: ScoreEvent) -> bool:
    """Whether ``event`` is the explainer's completion of the alert's pending score: the
    same score (input, model version, time), now with its factors."""
    return (
        alert.factors_pending
        and not event.factors_pending
        and (alert.input_key, alert.model_version, alert.computed_at)
        == (event.input_key, event.model_version, event.computed_at)
    )


def _add_factors(alert: Alert, event: ScoreEvent) -> None:
    """The factors (and the interventions they imply) of the score the row shows: the
    same score, so no rescore audit and no change of status."""
    alert.factors = [f.model_dump(mode="json") for f in event.factors]
    alert.interventions = [i.model_dump(mode="json") for i in event.interventions]
    alert.factors_pending = False
    alert.save(update_fields=["factors", "interventions", "factors_pending", "updated_at"])


def _create(event: ScoreEvent) -> Alert:
    ward = ward_of(event)
    alert = Alert.objects.create(encounter_id=event.encounter_id, ward=ward, **_score_values(event))
    later = _later_stay(alert)
    if later is not None:  # an older discharge arriving after the patient's later one
        alert.superseded_by_encounter = later.encounter_id
        close(alert, CloseReason.LATER_STAY)
        alert.save()
        record_action(
            alert,
            None,
            ActionKind.CLOSE,
            reason=CloseReason.LATER_STAY,
            note=f"The patient's stay discharged {when(later.discharged_at)} is already "
            "on the worklist.",
        )
    return alert


def _rescore(alert: Alert, event: ScoreEvent) -> str:
    sentence = _rescore_sentence(alert, event)
    ward = ward_of(event)
    was_active = alert.status in ACTIVE_STATUSES
    # an alert raised for high risk closes when that reason goes; a medium row stays listed
    reason_gone = event.non_readmittable or event.band == "low" or alert.band == "high"
    for key, value in _score_values(event).items():
        setattr(alert, key, value)
    alert.ward = ward
    outcome, reason = "updated", ""
    if not is_alerting(event) and was_active and reason_gone:
        reason = CloseReason.NOT_READMITTABLE if event.non_readmittable else CloseReason.RISK_FELL
        close(alert, CloseReason(reason))
        sentence += f" Alert closed automatically: {CloseReason(reason).label.lower()}."
        outcome = "downgraded"
    elif (
        is_alerting(event)
        and alert.status == AlertStatus.CLOSED
        and alert.close_reason in SCORE_CLOSE_REASONS
        and alert.is_latest_stay
        and _window_open(alert, timezone.now())
    ):
        reopen(alert)
        sentence += " Alert reopened: the latest score is high risk again."
        outcome = "reopened"
    elif alert.status == AlertStatus.CLOSED and is_alerting(event):
        sentence += f" Stays closed ({alert.get_close_reason_display().lower()})."
    alert.save()
    record_action(alert, None, ActionKind.RESCORED, note=sentence, reason=reason)
    return outcome


def _later_stay(alert: Alert) -> Alert | None:
    if alert.discharged_at is None:
        return None
    return (
        Alert.objects.filter(patient_id=alert.patient_id, discharged_at__gt=alert.discharged_at)
        .exclude(pk=alert.pk)
        .order_by("-discharged_at")
        .first()
    )


def _supersede_earlier_stays(event: ScoreEvent) -> list[Alert]:
    """The patient's earlier rows give way to this later index stay (see module rules)."""
    ctx = event.context
    began = (ctx.admitted_at if ctx else None) or event.discharged_at
    if began is None:
        return []
    earlier = Alert.objects.select_for_update().filter(
        patient_id=event.patient_id,
        superseded_by_encounter="",
        discharged_at__lte=began,
    )
    changed = []
    for alert in earlier.exclude(encounter_id=event.encounter_id):
        alert.superseded_by_encounter = event.encounter_id
        note = ""
        if alert.status in ACTIVE_STATUSES:
            assert alert.discharged_at is not None
            gap = began - alert.discharged_at
            readmitted = gap <= READMISSION_WINDOW
            reason = CloseReason.READMITTED if readmitted else CloseReason.LATER_STAY
            close(alert, reason)
            note = (
                f"Readmitted: a new stay began {when(began)}, {gap.days} days after this discharge."
                if readmitted
                else f"A later stay began {when(began)}, {gap.days} days after this discharge."
            )
        alert.save()
        if note:
            record_action(alert, None, ActionKind.CLOSE, reason=alert.close_reason, note=note)
        changed.append(alert)
    return changed


def resolve_expired(now: datetime | None = None) -> list[Alert]:
    """Close active rows whose 30-day readmission window has ended (the system does it)."""
    now = now or timezone.now()
    cutoff = now - READMISSION_WINDOW
    resolved = []
    with transaction.atomic():
        due = Alert.objects.select_for_update().filter(
            status__in=ACTIVE_STATUSES, discharged_at__lt=cutoff
        ) | Alert.objects.select_for_update().filter(
            status__in=ACTIVE_STATUSES, discharged_at__isnull=True, computed_at__lt=cutoff
        )
        for alert in due.select_related("ward"):
            ended = (alert.discharged_at or alert.computed_at) + READMISSION_WINDOW
            close(alert, CloseReason.WINDOW_PASSED)
            alert.save()
            record_action(
                alert,
                None,
                ActionKind.CLOSE,
                reason=CloseReason.WINDOW_PASSED,
                note=f"The 30-day window ended {when(ended)} with no readmission received.",
            )
            resolved.append(alert)
    return resolved


# first check one interval after the feed starts, like every later one (the e2e worklist
# replays 1999-2008 stays, which the rule closes at its first run)
_last_expiry_check = time.monotonic()


def _resolve_expired_now_and_then(counts: FeedCounts) -> list[Alert]:
    """The feed runs the 30-day rule at most once a minute (cheap: an indexed query)."""
    global _last_expiry_check
    if time.monotonic() - _last_expiry_check < EXPIRY_CHECK_EVERY_S:
        return []
    _last_expiry_check = time.monotonic()
    resolved = resolve_expired()
    counts.expired += len(resolved)
    return resolved


def broadcast(alert: Alert, kind: str = "alert") -> None:
    """Send the alert to every dashboard subscribed to its ward."""
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(
        alert.ward.group_name, {"type": "alert.message", "kind": kind, "alert": alert.as_message()}
    )


_COUNTER_OF: Final = {
    "created": "stored",
    "updated": "updated",
    "reopened": "reopened",
    "explained": "explained",
    "downgraded": "downgraded",
    "unchanged": "unchanged",
    "skip": "not_alerting",
}


def handle_messages(
    raws: list[bytes], counts: FeedCounts, rejected: dict[int, Rejection] | None = None
) -> list[Alert]:
    """Store a polled batch; returns the alerts to broadcast (new or changed ones).

    Messages that can never become alerts are counted and, when ``rejected`` is given,
    reported by their index in ``raws`` so the caller can dead-letter them.
    """
    changed: dict[int, Alert] = {}
    for index, raw in enumerate(raws):
        counts.seen += 1
        refusals: list[Rejection] = []
        event = parse_message(raw, counts, refusals)
        if event is None:
            if rejected is not None and refusals:
                rejected[index] = refusals[0]
            continue
        alert, outcome, others = _store(event)
        counter = _COUNTER_OF[outcome]
        setattr(counts, counter, getattr(counts, counter) + 1)
        counts.superseded += len(others)
        for other in others:
            changed[other.pk] = other
        if alert is not None and outcome != "unchanged":
            changed[alert.pk] = alert
    for alert in _resolve_expired_now_and_then(counts):
        changed[alert.pk] = alert
    return list(changed.values())
