from dataclasses import dataclass

import orjson

from readmit_core.events import FeatureEvent
from readmit_core.features import FeatureRecord
from scorer.consumer import Rejected, decode


@dataclass
class Msg:
    value: bytes
    topic: str = "t.features"
    partition: int = 0
    offset: int = 0


def _event() -> FeatureEvent:
    rec = FeatureRecord(encounter_id="e1", patient_nbr="p1", age="[70-80)")
    return FeatureEvent(encounter_id="e1", patient_id="p1", input_key="e1|1", record=rec)


def test_valid_event_round_trips():
    ev = _event()
    out = decode(Msg(ev.to_bytes()))
    assert isinstance(out, FeatureEvent)
    assert out.record == ev.record


def test_garbage_is_undecodable():
    out = decode(Msg(b"\xff\x00not json"))
    assert isinstance(out, Rejected)
    assert out.reason == "undecodable"


def test_unknown_version_is_refused_not_guessed():
    payload = orjson.loads(_event().to_bytes())
    payload["schema_version"] = 99
    out = decode(Msg(orjson.dumps(payload)))
    assert isinstance(out, Rejected)
    assert out.reason == "unknown_version"


def test_schema_invalid_names_the_field():
    payload = orjson.loads(_event().to_bytes())
    payload["record"]["num_medications"] = "many"
    out = decode(Msg(orjson.dumps(payload)))
    assert isinstance(out, Rejected)
    assert out.reason == "schema_invalid"
    assert "num_medications" in out.detail


def test_a_list_is_schema_invalid():
    out = decode(Msg(b"[1, 2]"))
    assert isinstance(out, Rejected)
    assert out.reason == "schema_invalid"


def _with_record(**changes: object) -> bytes:
    payload = orjson.loads(_event().to_bytes())
    payload["record"].update(changes)
    return orjson.dumps(payload)


def test_an_unknown_category_is_refused_with_the_column_named():
    out = decode(Msg(_with_record(age="[900-910)")))
    assert isinstance(out, Rejected)
    assert out.reason == "unknown_category"
    assert "age='[900-910)'" in out.detail


def test_an_unknown_dataset_id_is_refused():
    out = decode(Msg(_with_record(admission_type_id=99)))
    assert isinstance(out, Rejected)
    assert out.reason == "unknown_category"


def test_an_out_of_range_count_is_refused():
    out = decode(Msg(_with_record(num_medications=-3)))
    assert isinstance(out, Rejected)
    assert out.reason == "out_of_range"
    assert "num_medications=-3" in out.detail


def test_missing_markers_are_within_the_definition():
    out = decode(Msg(_with_record(age="?", weight="?", race="?")))
    assert isinstance(out, FeatureEvent)
