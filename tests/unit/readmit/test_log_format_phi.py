import json
import logging

from readmit_core.log_format import JsonFormatter


def _format(**extra):
    record = logging.makeLogRecord({"msg": "scored", "levelname": "INFO", "name": "t", **extra})
    return json.loads(JsonFormatter().format(record))


def test_identifying_fields_are_dropped():
    out = _format(patient_id="123", patient_name="Jane", birthDate="1950-01-01", batch=12)
    assert out["batch"] == 12
    assert not {"patient_id", "patient_name", "birthDate"} & set(out)


def test_message_and_level_are_kept():
    out = _format(partition=3)
    assert out["msg"] == "scored"
    assert out["level"] == "INFO"
    assert out["partition"] == 3
