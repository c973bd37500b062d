"""The scorer's shortcuts around pydantic build and write exactly what pydantic would:
``ScoreEvent.assembled`` (no ``model_construct``) and ``ScoreEvent.to_bytes`` (orjson)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from model_store.interventions import CATALOGUE
from model_store.serving import Prediction
from readmit_core.events import Factor, FeatureEvent, ScoreEvent, WorklistContext
from readmit_core.features import FeatureRecord
from scorer.consumer import to_score_event


def _event(**changes: object) -> FeatureEvent:
    record = FeatureRecord(
        encounter_id="e1",
        patient_nbr="p1",
        age="[70-80)",
        glyburide_metformin="Up",
        num_medications=17,
    )
    context = WorklistContext(
        patient_name='Zoë Ångström \u2028 "q"',
        mrn="M-1",
        sex="female",
        age_years=77,
        admitted_at=datetime(2026, 1, 2, 3, 4, 5, 123, tzinfo=UTC),
        discharged_at=datetime(2026, 1, 9, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5))),
    )
    fields: dict[str, object] = {
        "encounter_id": "e1",
        "patient_id": "p1",
        "ward": "4W",
        "input_key": "e1|abc",
        "record": record,
        "context": context,
        "input_version": 3,
        "discharged_at": datetime(2026, 1, 9, 8, 4, 5, tzinfo=UTC),
    }
    fields.update(changes)
    return FeatureEvent.model_validate(fields)


def _prediction() -> Prediction:
    factors = (
        Factor(feature="number_inpatient", label="3 inpatient stays", contribution=0.1234567),
        Factor(feature="age", label="Age 70-80", contribution=-1e-7),
    )
    return Prediction(0.30000000000000004, "high", factors, tuple(CATALOGUE.values())[:2])


def _constructed(
    event: FeatureEvent, pred: Prediction, built: ScoreEvent, *, pending: bool
) -> ScoreEvent:
    return ScoreEvent.model_construct(
        computed_at=built.computed_at,
        encounter_id=event.encounter_id,
        patient_id=event.patient_id,
        ward=event.ward,
        input_key=event.input_key,
        probability=pred.probability,
        band=pred.band,
        model_version="m1",
        factors=pred.factors,
        # a pending score carries no advice until its factors are known (the band-only
        # fallback it would get was withdrawn when they arrived)
        interventions=() if pending else pred.interventions,
        factors_pending=pending,
        discharged_at=event.discharged_at,
        non_readmittable=pred.non_readmittable,
        context=event.context,
        record=event.record,
        input_version=event.input_version,
    )


@pytest.mark.parametrize("pending", [True, False])
def test_an_assembled_score_is_the_constructed_one(pending: bool) -> None:
    event, pred = _event(), _prediction()
    built = to_score_event(event, pred, "m1", factors_pending=pending)
    expected = _constructed(event, pred, built, pending=pending)
    assert built == expected
    assert built.model_fields_set == set(ScoreEvent.model_fields)  # every field was given
    assert ScoreEvent.model_validate_json(built.to_bytes()) == expected


def test_to_bytes_is_the_document_pydantic_writes() -> None:
    pred = _prediction()
    for event in (
        _event(),
        _event(context=None, discharged_at=None, input_version=None),
        _event(discharged_at=datetime(2026, 1, 9, 8, 4, 5)),
    ):
        score = to_score_event(event, pred, "m1")
        assert score.to_bytes() == score.__pydantic_serializer__.to_json(score)
    bare = ScoreEvent(
        encounter_id="e2",
        patient_id="p2",
        ward="w",
        input_key="k",
        probability=float("nan"),
        band="low",
        model_version="m",
    )
    assert bare.to_bytes() == bare.__pydantic_serializer__.to_json(bare)
