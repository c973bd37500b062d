"""Topic names and the versioned event schemas that cross Kafka.

Producers (ingest, scorer) and consumers (scorer, web alert feed) import these
models, so a field cannot drift between the two ends. Each event carries
``schema_version``; a consumer that meets a version it does not know sends the
message to the dead-letter topic instead of guessing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field

from readmit_core.features import FeatureRecord

# Logical topic names; the deployed name is ``Settings.topic(<name>)`` (adds the prefix).
FEATURES_TOPIC: Final = "features"
SCORED_TOPIC: Final = "risk.scored"
DEAD_LETTER_TOPIC: Final = "dlq"
ALL_TOPICS: Final = (FEATURES_TOPIC, SCORED_TOPIC, DEAD_LETTER_TOPIC)

# Feature events: 1 = the first record layout; 2 = the record gained
# ``days_since_last_discharge``. A scorer sends other versions to the DLQ
# (``unknown_version``) rather than guess the missing value (infra/RUNBOOK.md, "Upgrades").
# ``context`` (FeatureEvent, ScoreEvent), ``record`` (ScoreEvent), ``input_version``
# (both) and ``factors_pending`` (ScoreEvent) are optional additions within these
# versions: readers of the current code accept events without them. ``WorklistContext``
# carries its own ``version``. Older readers forbid unknown fields, so deploy the
# consumers (scorer, explainer, web feed) before the producers (ingest, scorer).
FEATURE_EVENT_VERSION: Final = 2
SCORE_EVENT_VERSION: Final = 1

# the ward of a stay whose Encounter names no location we can map
UNASSIGNED: Final = "unassigned"

RiskBand = Literal["low", "medium", "high"]
DeadLetterReason = Literal[
    "undecodable",
    "schema_invalid",
    "unknown_version",
    "out_of_range",  # an integer outside readmit_core.features.INTEGER_RANGES
    "unknown_category",  # a value outside its closed vocabulary (VALUE_SETS, dataset ids)
    "unscorable",
    "unexplainable",  # the explainer could not load the model version or explain the score
]


def utcnow() -> datetime:
    return datetime.now(UTC)


WORKLIST_CONTEXT_VERSION: Final = 1
Sex = Literal["male", "female", "other", "unknown"]


class WorklistContext(BaseModel):
    """Who and where a scored discharge is, for the people who act on it.

    ``version`` lets a consumer refuse a layout it does not know; new fields are only
    ever added as optional ones, so version 1 readers stay valid.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: Literal[1] = WORKLIST_CONTEXT_VERSION
    patient_name: str | None = None
    mrn: str | None = None
    sex: Sex | None = None
    age_years: int | None = None
    unit: str | None = None
    room: str | None = None
    bed: str | None = None
    admitted_at: datetime | None = None
    discharged_at: datetime | None = None
    disposition: str | None = None


class FeatureEvent(BaseModel):
    """An index inpatient encounter ready to score, as the ingest API publishes it.

    ``input_key`` identifies the exact clinical input (encounter id + a hash of what
    the scorer and the worklist see); the scorer keys its idempotent writes on it, so
    a redelivered or resent event can never produce a second score or alert.
    ``input_version`` numbers the stay's distinct inputs (1, 2, ...: a late or
    corrected resource makes a new one); every layer keeps the highest it has seen,
    so an older version arriving late never overwrites a newer score.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[2] = FEATURE_EVENT_VERSION
    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    emitted_at: datetime = Field(default_factory=utcnow)
    encounter_id: str
    patient_id: str
    ward: str = UNASSIGNED
    input_key: str
    admitted_at: datetime | None = None
    discharged_at: datetime | None = None
    record: FeatureRecord
    missing: tuple[str, ...] = ()
    context: WorklistContext | None = Field(
        default=None, description="Name, MRN, bed... for the worklist; identifying, never logged."
    )
    input_version: int | None = Field(
        default=None, ge=1, description="The stay's input version (None: before versions)."
    )

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True))


def older_input(version: int | None, than: int | None) -> bool:
    """Whether an input version is older than another (unknown on either side: not)."""
    return version is not None and than is not None and version < than


class Factor(BaseModel):
    """One contributing factor of a prediction, in words a clinician reads."""

    model_config = ConfigDict(frozen=True)

    feature: str
    label: str
    contribution: float


class Intervention(BaseModel):
    """A recommended action, why it was chosen and where the evidence comes from."""

    model_config = ConfigDict(frozen=True)

    code: str
    title: str
    rationale: str
    source: str


class ScoreEvent(BaseModel):
    """A scored encounter, as the scorer publishes it on ``risk.scored``.

    With the explainer stage a score whose band needs factors is published twice on the
    same topic and key: first ``factors_pending`` (no factors yet), then by the explainer
    with the same ``input_key``, ``model_version`` and ``computed_at`` and its factors.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCORE_EVENT_VERSION
    encounter_id: str
    patient_id: str
    ward: str
    input_key: str
    probability: float
    band: RiskBand
    model_version: str
    factors: tuple[Factor, ...] = ()
    interventions: tuple[Intervention, ...] = ()
    factors_pending: bool = Field(
        default=False,
        description="Scored, factors still being computed by the explainer stage: the same "
        "score follows on this topic with its factors (and the interventions they imply).",
    )
    computed_at: datetime = Field(default_factory=utcnow)
    discharged_at: datetime | None = None
    non_readmittable: bool = False
    context: WorklistContext | None = Field(
        default=None, description="The feature event's worklist context, passed through."
    )
    record: FeatureRecord | None = Field(
        default=None, description="The scored inputs, so a rescore can say which input changed."
    )
    input_version: int | None = Field(
        default=None, ge=1, description="The feature event's input_version, passed through."
    )

    @classmethod
    def assembled(cls, fields: dict[str, Any]) -> ScoreEvent:
        """A score from every field's value, each already of its field's type.

        What ``model_construct`` makes, without its per-field pass over defaults and
        aliases: that pass was half of what building a score cost the scorer. The caller
        gives every field (``tests/unit/readmit_core`` checks the scorer's against
        ``model_construct``); nothing is validated.
        """
        event = cls.__new__(cls)
        _set_attribute(event, "__dict__", fields)
        _set_attribute(event, "__pydantic_fields_set__", set(fields))
        _set_attribute(event, "__pydantic_extra__", None)
        _set_attribute(event, "__pydantic_private__", None)
        return event

    @property
    def alerting(self) -> bool:
        """Whether this score puts the encounter on its ward's high-risk list / alert feed."""
        return self.band == "high" and not self.non_readmittable

    def to_bytes(self) -> bytes:
        """The document pydantic's serializer writes (``model_dump_json``), by orjson from
        the stored fields: nested models are flat, serialised under their field names,
        and orjson writes floats, strings and UTC datetimes ("Z") as pydantic does
        (checked against ``__pydantic_serializer__`` in tests/unit/readmit_core); 30 %
        cheaper, and the scorer serializes every score it publishes."""
        return orjson.dumps(self.__dict__, default=stored_fields, option=orjson.OPT_UTC_Z)


_set_attribute = object.__setattr__  # how pydantic itself sets a frozen model's state


def stored_fields(value: object) -> dict[str, Any]:
    """orjson's hook for the models nested in an event: their stored field values (what
    pydantic serialises for these flat models, under their field names)."""
    if isinstance(value, BaseModel):
        return value.__dict__
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class ConsumedRecord(Protocol):
    """What a dead letter needs of a Kafka record (kafka-python's ConsumerRecord has it)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


class DeadLetter(BaseModel):
    """A message no consumer could handle, with the reason, kept for a human to look at."""

    model_config = ConfigDict(frozen=True)

    reason: DeadLetterReason
    detail: str
    source_topic: str
    partition: int
    offset: int
    consumer: str
    failed_at: datetime = Field(default_factory=utcnow)
    payload: str = Field(description="The original message, decoded as UTF-8 with replacement.")

    @classmethod
    def of(
        cls, record: ConsumedRecord, *, reason: DeadLetterReason, detail: str, consumer: str
    ) -> DeadLetter:
        """The letter for one consumed record, whichever consumer refused it; the payload
        is kept (capped at 100 kB) so a human can see what arrived."""
        return cls(
            reason=reason,
            detail=detail[:500],
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            consumer=consumer,
            payload=(record.value or b"").decode("utf-8", errors="replace")[:100_000],
        )

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))
