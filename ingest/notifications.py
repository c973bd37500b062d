"""Subscription notifications: read the status, fetch what the payload only names, map.

Both notification styles an R4 EHR sends are read into one :class:`Notification`:
the R4B/R5 ``subscription-notification`` Bundle with a SubscriptionStatus first entry,
and the Subscriptions Backport IG's R4 ``history`` Bundle with a Parameters first
entry. What happens next depends on the notification type and the payload content
(which the notification does not state; it is read off the Bundle as the Backport IG
defines the three contents):

* ``handshake``, ``heartbeat``, ``query-status``: answered 200, nothing queued.
* ``event-notification`` / ``query-event`` with **full-resource** content (entries after
  the status carry resources): mapped as it came, as before.
* **id-only** (events name a ``focus``, or entries carry a fullUrl without a resource):
  the focus resources are fetched from the notifying EHR (``ingest.ehr_client``) and the
  fetched resources replace the id-only entries; that document then goes through
  exactly the code path of a pushed Bundle (``IngestService.accept``).
* **empty** (no focus, no entries): the events are asked for with the Backport IG's
  ``GET [base]/Subscription/[id]/$events?eventsSinceNumber=&eventsUntilNumber=&content=id-only``
  and its answer is handled as an id-only notification.

What is fetched for a focus (and nothing else; no reference is followed further):
an **Encounter** → the Encounter, its subject Patient, its Locations, and by search
(``_count`` and a page limit each) the stay's Observations and Procedures
(``?encounter=``), MedicationAdministrations and MedicationStatements (``?context=``),
and the patient's Conditions, MedicationRequests, Coverage (``?patient=``,
``?beneficiary=``) and Encounters (prior utilisation). A **Condition, Observation,
MedicationRequest or Procedure** → that resource, then the stay of the Encounter it
names (so a late lab re-scores its stay), or only its Patient when it names none. A
**Patient** → the Patient (kept for a later discharge). Any other type is refused.

The notifying server is the one the status's ``subscription`` reference names when it
is absolute; a relative one means the only configured base. Focus references must lie
on that server. A fetch failure a retry can fix is answered 503 with Retry-After, so
the EHR, which keeps the event, sends it again: nothing is answered 2xx that was not
fetched and published.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Final

from fhir_mappings.bundle import validate_resource
from ingest import metrics
from ingest.capability import ACCEPTED_TYPES
from ingest.ehr_client import EhrClient, EhrRefused, EhrUnavailable, Located
from ingest.requests import BadRequest
from ingest.service import Accepted, IngestService
from ingest.smart import Principal

log = logging.getLogger(__name__)

NOTIFICATION_TYPES: Final = frozenset(
    {"handshake", "heartbeat", "event-notification", "query-status", "query-event"}
)
NOTHING_TO_FETCH: Final = frozenset({"handshake", "heartbeat", "query-status"})
SUBSCRIPTION_STATES: Final = frozenset({"requested", "active", "error", "off", "entered-in-error"})
# Backport IG (R4) Parameters of a notification status; anything else is not conformant
BACKPORT_PARAMETERS: Final = frozenset(
    {
        "subscription",
        "topic",
        "status",
        "type",
        "events-since-subscription-start",
        "events-in-notification",
        "notification-event",
        "error",
    }
)
BACKPORT_EVENT_PARTS: Final = frozenset(
    {"event-number", "timestamp", "focus", "additional-context"}
)
# (type, search parameter, what it names) of the searches that make up a stay: what the
# mapper reads. By patient where it reads resources outside the stay's own references
# (problem-list Conditions, home medications begun before admission, prior visits).
STAY_SEARCHES: Final = (
    ("Condition", "patient", "Patient"),
    ("Observation", "encounter", "Encounter"),
    ("MedicationRequest", "patient", "Patient"),
    ("MedicationAdministration", "context", "Encounter"),
    ("MedicationStatement", "context", "Encounter"),
    ("Procedure", "encounter", "Encounter"),
    ("Coverage", "beneficiary", "Patient"),
    ("Encounter", "patient", "Patient"),
)
MAX_LOCATIONS: Final = 10
CLINICAL_FOCUS: Final = frozenset({"Condition", "Observation", "MedicationRequest", "Procedure"})
STATUS_TYPES: Final = frozenset({"SubscriptionStatus", "Parameters"})
# an EHR that could not be read: long enough for a restart or a key rotation to land
EHR_RETRY_AFTER_SECONDS: Final = "30"


@dataclass(frozen=True)
class NotificationEvent:
    number: int | None
    focus: str | None


@dataclass(frozen=True)
class Notification:
    """A notification's status, whichever FHIR version's shape it came in."""

    kind: str
    subscription: str
    events: tuple[NotificationEvent, ...]
    events_since_start: int | None
    events_in_notification: int | None
    status_entry: dict[str, Any]
    entries: tuple[dict[str, Any], ...] = field(default=())

    @property
    def payload(self) -> str:
        """full-resource, id-only or empty, as the Backport IG defines them."""
        if any(isinstance(e.get("resource"), dict) for e in self.entries):
            return "full-resource"
        if self.focus_references():
            return "id-only"
        return "empty"

    def focus_references(self) -> list[str]:
        """The events' focus, else the fullUrls of the resource-less entries; in order, once."""
        refs = [e.focus for e in self.events if e.focus]
        if not refs:
            refs = [str(e["fullUrl"]) for e in self.entries if isinstance(e.get("fullUrl"), str)]
        return list(dict.fromkeys(refs))


@dataclass(frozen=True)
class Handled:
    kind: str
    payload: str
    fetched: int
    accepted: Accepted | None

    def summary(self) -> str:
        if self.accepted is None:
            return f"{self.kind} acknowledged; nothing to fetch or queue"
        what = f"fetched {self.fetched} resource(s); " if self.fetched else ""
        return (
            f"{self.kind} ({self.payload}): {what}{len(self.accepted.published)} encounter(s) "
            f"queued for scoring, {len(self.accepted.duplicates)} already known"
        )


def _int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    try:
        return int(str(value))
    except ValueError:
        raise BadRequest(400, f"{where} is not a number", where) from None


def _reference(value: Any, where: str) -> str | None:
    if value is None:
        return None
    ref = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(ref, str) or not ref:
        raise BadRequest(400, f"{where} must be a literal reference", where)
    return ref


def _check_kind(kind: Any, status: Any, where: str) -> str:
    if kind not in NOTIFICATION_TYPES:
        raise BadRequest(400, f"{where}type {kind!r} is not a notification type", f"{where}type")
    if status is not None and status not in SUBSCRIPTION_STATES:
        raise BadRequest(
            400, f"{where}status {status!r} is not a subscription status", f"{where}status"
        )
    return str(kind)


def read_notification(doc: dict[str, Any]) -> Notification:
    """The status of a notification Bundle; refuses (400) what is not a conformant one."""
    if doc.get("resourceType") != "Bundle":
        raise BadRequest(400, "A subscription notification must be a Bundle", "resourceType")
    entries = doc.get("entry")
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        raise BadRequest(400, "A notification's first entry must be its status", "Bundle.entry")
    first = entries[0].get("resource")
    rest = tuple(e for e in entries[1:] if isinstance(e, dict))
    where = "Bundle.entry[0].resource"
    if doc.get("type") == "subscription-notification":
        if not isinstance(first, dict) or first.get("resourceType") != "SubscriptionStatus":
            raise BadRequest(
                400, "A subscription-notification's first entry must be a SubscriptionStatus", where
            )
        validate_resource(
            first, where
        )  # unknown elements refused; R5's eventsInNotification accepted
        return _from_status(first, entries[0], rest)
    if doc.get("type") == "history":
        if not isinstance(first, dict) or first.get("resourceType") != "Parameters":
            raise BadRequest(
                400, "A backport (history) notification's first entry must be Parameters", where
            )
        validate_resource(first, where)
        return _from_parameters(first, entries[0], rest)
    raise BadRequest(
        400,
        "A notification Bundle is of type subscription-notification (R4B/R5) or history "
        "(R4 Subscriptions Backport)",
        "Bundle.type",
    )


def _from_status(
    status: dict[str, Any], entry: dict[str, Any], rest: tuple[dict[str, Any], ...]
) -> Notification:
    kind = _check_kind(status.get("type"), status.get("status"), "SubscriptionStatus.")
    subscription = _reference(status.get("subscription"), "SubscriptionStatus.subscription")
    if subscription is None:
        raise BadRequest(
            400, "SubscriptionStatus.subscription is required", "SubscriptionStatus.subscription"
        )
    events = tuple(
        NotificationEvent(
            _int(event.get("eventNumber"), "SubscriptionStatus.notificationEvent.eventNumber"),
            _reference(event.get("focus"), "SubscriptionStatus.notificationEvent.focus"),
        )
        for event in status.get("notificationEvent") or ()
    )
    return Notification(
        kind=kind,
        subscription=subscription,
        events=events,
        events_since_start=_int(
            status.get("eventsSinceSubscriptionStart"), "eventsSinceSubscriptionStart"
        ),
        events_in_notification=_int(status.get("eventsInNotification"), "eventsInNotification"),
        status_entry=entry,
        entries=rest,
    )


def _value(param: dict[str, Any]) -> Any:
    return next((v for k, v in param.items() if k.startswith("value")), None)


def _from_parameters(
    params: dict[str, Any], entry: dict[str, Any], rest: tuple[dict[str, Any], ...]
) -> Notification:
    values: dict[str, Any] = {}
    events: list[NotificationEvent] = []
    for param in params.get("parameter") or ():
        name = param.get("name")
        if name not in BACKPORT_PARAMETERS:
            raise BadRequest(
                400,
                f"Parameter {name!r} is not part of a backport notification status",
                "Parameters.parameter",
            )
        if name != "notification-event":
            values[name] = _value(param)
            continue
        number, focus = None, None
        for part in param.get("part") or ():
            part_name = part.get("name")
            if part_name not in BACKPORT_EVENT_PARTS:
                raise BadRequest(
                    400,
                    f"notification-event part {part_name!r} is unknown",
                    "Parameters.parameter.part",
                )
            if part_name == "event-number":
                number = _int(_value(part), "notification-event.event-number")
            elif part_name == "focus":
                focus = _reference(_value(part), "notification-event.focus")
        events.append(NotificationEvent(number, focus))
    kind = _check_kind(values.get("type"), values.get("status"), "Parameters.")
    subscription = _reference(values.get("subscription"), "Parameters.subscription")
    if subscription is None:
        raise BadRequest(400, "The subscription parameter is required", "Parameters.subscription")
    return Notification(
        kind=kind,
        subscription=subscription,
        events=tuple(events),
        events_since_start=_int(
            values.get("events-since-subscription-start"), "events-since-subscription-start"
        ),
        events_in_notification=_int(values.get("events-in-notification"), "events-in-notification"),
        status_entry=entry,
        entries=rest,
    )


class NotificationHandler:
    """Notification → (fetch) → the pushed-Bundle path. Blocking; run in a thread."""

    def __init__(self, service: IngestService, ehr: EhrClient) -> None:
        self.service = service
        self.ehr = ehr

    def handle(self, doc: dict[str, Any], caller: Principal) -> Handled:
        try:
            return self._handle(doc, caller)
        except EhrUnavailable as exc:
            # the status and kind only: the URL names a patient's resources
            log.warning(
                "EHR fetch failed",
                extra={"ehr_status": exc.ehr_status, "error": type(exc).__name__},
            )
            raise

    def _handle(self, doc: dict[str, Any], caller: Principal) -> Handled:
        note = read_notification(doc)
        payload = note.payload if note.kind not in NOTHING_TO_FETCH else "none"
        metrics.NOTIFICATIONS.labels(note.kind, payload).inc()
        if note.kind in NOTHING_TO_FETCH:
            return Handled(note.kind, payload, 0, None)
        if payload == "full-resource":
            caller.require_write(_types(note.entries))
            return Handled(note.kind, payload, 0, self.service.accept(doc))
        base = self._server(note)
        if payload == "empty":
            doc, note = self._events(base, note)
        document, fetched = self._fetch(base, doc, note, caller)
        caller.require_write({r["resourceType"] for r in fetched})
        return Handled(note.kind, payload, len(fetched), self.service.accept(document))

    # --- which server ------------------------------------------------------------------
    def _server(self, note: Notification) -> str:
        if not self.ehr.bases:
            raise BadRequest(
                422,
                "This endpoint fetches from no EHR (READMIT_EHR_FHIR_BASE_URLS is empty); "
                "send full-resource notifications",
                "SubscriptionStatus.subscription",
            )
        if "://" in note.subscription:
            base = self.ehr.base_of(note.subscription)
            if base is None:
                raise BadRequest(
                    422,
                    "The notification's subscription is on a server this endpoint does not "
                    "fetch from; nothing was fetched",
                    "SubscriptionStatus.subscription",
                )
            return base
        if len(self.ehr.bases) != 1:
            raise BadRequest(
                422,
                "A relative subscription reference is ambiguous with several EHR servers "
                "configured; send an absolute one",
                "SubscriptionStatus.subscription",
            )
        return self.ehr.bases[0]

    # --- empty: ask for the events ------------------------------------------------------
    def _events(self, base: str, note: Notification) -> tuple[dict[str, Any], Notification]:
        """Backport IG ``$events`` for the notified event numbers, as id-only."""
        numbers = [e.number for e in note.events if e.number is not None]
        if numbers:
            since, until = min(numbers), max(numbers)
        elif note.events_since_start is not None and note.events_in_notification:
            until = note.events_since_start
            since = until - note.events_in_notification + 1
        else:
            raise BadRequest(
                422,
                "An empty notification must give its event numbers (or "
                "eventsSinceSubscriptionStart and eventsInNotification) so the events can be "
                "asked for",
                "SubscriptionStatus.notificationEvent",
            )
        where = self._locate(note.subscription, base)
        if where.rtype != "Subscription":
            raise BadRequest(422, "The subscription reference does not name a Subscription")
        answer = self._refusing(
            lambda: self.ehr.call(
                base,
                f"{where.key}/$events",
                {
                    "eventsSinceNumber": str(since),
                    "eventsUntilNumber": str(until),
                    "content": "id-only",
                },
            ),
            "SubscriptionStatus.subscription",
        )
        try:
            events = read_notification(answer)
        except BadRequest as exc:
            raise BadRequest(
                422, f"The EHR's $events answer is not a notification: {exc.message}"
            ) from None
        if not events.focus_references():
            raise BadRequest(422, "The EHR's $events answer names no focus to fetch")
        return answer, events

    # --- id-only: fetch the focus ------------------------------------------------------
    def _fetch(
        self, base: str, doc: dict[str, Any], note: Notification, caller: Principal
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        refs = note.focus_references()
        if len(refs) > self.ehr.settings.ehr_max_focus:
            raise BadRequest(
                422,
                f"The notification names {len(refs)} focus resources; at most "
                f"{self.ehr.settings.ehr_max_focus} (READMIT_EHR_MAX_FOCUS) are fetched",
                "SubscriptionStatus.notificationEvent",
            )
        # every focus is checked (server, type, the caller's scope) before anything is fetched
        located = [self._locate(ref, base) for ref in refs]
        for where in located:
            if where.rtype not in ACCEPTED_TYPES:
                raise BadRequest(
                    422,
                    f"Focus of type {where.rtype} is not fetched here",
                    "notificationEvent.focus",
                )
        caller.require_write({where.rtype for where in located})
        collected: dict[str, dict[str, Any]] = {}
        for where in located:
            self._refusing(lambda w=where: self._focus(w, collected), "notificationEvent.focus")
        resources = list(collected.values())
        entries = [note.status_entry] + [
            {"fullUrl": f"{base}/{key}", "resource": r} for key, r in collected.items()
        ]
        return {**doc, "entry": entries}, resources

    def _focus(self, where: Located, collected: dict[str, dict[str, Any]]) -> None:
        if where.rtype == "Encounter":
            self._stay(where, collected)
            return
        resource = self._read(where, collected)
        if where.rtype not in CLINICAL_FOCUS:
            return
        encounter = (resource.get("encounter") or {}).get("reference")
        if isinstance(encounter, str):
            self._stay(self.ehr.locate(encounter, where.base), collected)
        else:
            self._patient_of(resource, where.base, collected)

    def _stay(self, where: Located, collected: dict[str, dict[str, Any]]) -> None:
        """The Encounter, its Patient, and the searches a stay's features come from."""
        if where.rtype != "Encounter":
            raise EhrRefused(where.key, "the encounter reference does not name an Encounter")
        encounter = self._read(where, collected)
        patient = self._patient_of(encounter, where.base, collected)
        for stop in (encounter.get("location") or ())[:MAX_LOCATIONS]:
            ref = (stop.get("location") or {}).get("reference") if isinstance(stop, dict) else None
            if isinstance(ref, str):  # the ward: its id, name and physicalType
                self._read(self.ehr.locate(ref, where.base), collected)
        for rtype, param, names in STAY_SEARCHES:
            target = where if names == "Encounter" else patient
            for resource in self.ehr.search(where.base, rtype, {param: target.key}):
                rid = resource.get("id")
                if isinstance(rid, str) and rid:
                    collected.setdefault(f"{rtype}/{rid}", resource)

    def _patient_of(
        self, resource: dict[str, Any], base: str, collected: dict[str, dict[str, Any]]
    ) -> Located:
        ref = (resource.get("subject") or {}).get("reference")
        if not isinstance(ref, str):
            raise EhrRefused(
                f"{resource.get('resourceType')}/{resource.get('id')}", "names no subject Patient"
            )
        patient = self.ehr.locate(ref, base)
        if patient.rtype != "Patient":
            raise EhrRefused(patient.key, "the subject is not a Patient")
        self._read(patient, collected)
        return patient

    def _read(self, where: Located, collected: dict[str, dict[str, Any]]) -> dict[str, Any]:
        if where.key not in collected:
            collected[where.key] = self.ehr.read(where)
        return collected[where.key]

    def _locate(self, ref: str, base: str) -> Located:
        return self._refusing(lambda: self.ehr.locate(ref, base), "notificationEvent.focus")

    @staticmethod
    def _refusing(func: Any, expression: str) -> Any:
        """EhrRefused (nothing a retry fixes) → 422 naming the element; EhrUnavailable
        passes through to the 503 answer."""
        try:
            return func()
        except EhrRefused as exc:
            raise BadRequest(422, f"Nothing was accepted: {exc}", expression) from None


def _types(entries: tuple[dict[str, Any], ...]) -> set[str]:
    return {
        str(e["resource"].get("resourceType"))
        for e in entries
        if isinstance(e.get("resource"), dict)
    } - STATUS_TYPES
