"""`readmit fhir features`: records as JSON; invalid input -> OperationOutcome, exit 2."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from fhir_mappings.synth import synthesize_bundle
from readmit.cli import app


def test_features_prints_one_record_per_index_encounter(tmp_path, rich_row):
    path = tmp_path / "bundle.json"
    path.write_bytes(orjson.dumps(synthesize_bundle(rich_row, seed=2)))
    result = CliRunner().invoke(app, ["fhir", "features", str(path)])
    assert result.exit_code == 0, result.output
    (item,) = orjson.loads(result.stdout)
    assert item["encounter_id"] == rich_row["encounter_id"]
    assert item["record"]["A1Cresult"] == rich_row["A1Cresult"]
    assert item["record"]["glyburide-metformin"] == rich_row["glyburide-metformin"]
    # the bundle carries the row's earlier inpatient stays: they are history, not missing
    assert item["record"]["prior_encounters"] == int(rich_row["number_inpatient"])
    assert "prior_encounters" not in item["missing"]


def test_features_reads_stdin(rich_row):
    body = orjson.dumps(synthesize_bundle(rich_row, seed=2))
    result = CliRunner().invoke(app, ["fhir", "features", "-"], input=body)
    assert result.exit_code == 0
    assert orjson.loads(result.stdout)[0]["patient_id"] == rich_row["patient_nbr"]


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"{broken", "structure"), (b'{"resourceType": "Nope"}', "not-supported"),
     (b'{"resourceType": "Encounter", "status": "finished"}', "structure")],
)  # fmt: skip
def test_invalid_input_prints_an_operation_outcome_and_exits_2(tmp_path, body, code):
    path = tmp_path / "bad.json"
    path.write_bytes(body)
    result = CliRunner().invoke(app, ["fhir", "features", str(path)])
    assert result.exit_code == 2
    outcome = orjson.loads(result.stdout)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == code
    assert "Traceback" not in result.output


def test_unreadable_file_is_an_operation_outcome_too(tmp_path):
    result = CliRunner().invoke(app, ["fhir", "features", str(tmp_path / "absent.json")])
    assert result.exit_code == 2
    assert orjson.loads(result.stdout)["resourceType"] == "OperationOutcome"
