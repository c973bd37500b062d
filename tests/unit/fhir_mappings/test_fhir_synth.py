"""Synthesizer: realistic, deterministic R4 transaction Bundles from dataset rows."""

from __future__ import annotations

from datetime import date

import orjson
from typer.testing import CliRunner

from fhir_mappings.codes.race_ethnicity import US_CORE_ETHNICITY, US_CORE_RACE
from fhir_mappings.codes.wards import WARD_BY_ID
from fhir_mappings.dates import years_between
from fhir_mappings.synth import iter_bundles, synthesize_bundle
from readmit.cli import app
from readmit_core.settings import PROJECT_ROOT

DEV_DATA = PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz"


def _of(bundle, resource_type):
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    ]


def test_same_seed_same_bundle_other_seed_other_bundle(rich_row):
    first = synthesize_bundle(rich_row, seed=3)
    assert orjson.dumps(first) == orjson.dumps(synthesize_bundle(rich_row, seed=3))
    assert orjson.dumps(first) != orjson.dumps(synthesize_bundle(rich_row, seed=4))


def test_bundle_is_a_transaction_of_urn_uuid_entries(rich_row):
    bundle = synthesize_bundle(rich_row, seed=0)
    assert bundle["type"] == "transaction"
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert all(u.startswith("urn:uuid:") for u in urls)
    assert len(set(urls)) == len(urls)
    for entry in bundle["entry"]:
        method = entry["request"]["method"]
        assert method == ("PUT" if "id" in entry["resource"] else "POST")


def test_patient_has_us_core_extensions_and_age_inside_the_band(dev_rows):
    for row in dev_rows[:60]:
        bundle = synthesize_bundle(row, seed=1)
        (patient,) = _of(bundle, "Patient")
        index = next(e for e in _of(bundle, "Encounter") if e["id"] == row["encounter_id"])
        admitted = date.fromisoformat(index["period"]["start"][:10])
        age = years_between(date.fromisoformat(patient["birthDate"]), admitted)
        low = int(row["age"][1:].split("-")[0])
        assert low <= age < low + 10
        urls = {e["url"] for e in patient.get("extension", ())}
        if row["race"] in ("Caucasian", "AfricanAmerican", "Asian", "Other"):
            assert urls == {US_CORE_RACE, US_CORE_ETHNICITY}
        elif row["race"] == "Hispanic":
            assert urls == {US_CORE_ETHNICITY}
        else:
            assert urls == set()


def test_counts_of_resources_follow_the_row(rich_row):
    bundle = synthesize_bundle(rich_row, seed=0)
    labs = [o for o in _of(bundle, "Observation") if o["category"][0]["coding"][0]["code"]
            == "laboratory"]  # fmt: skip
    assert len(labs) == int(rich_row["num_lab_procedures"])
    assert len(_of(bundle, "Procedure")) == int(rich_row["num_procedures"])
    classes = [e["class"]["code"] for e in _of(bundle, "Encounter")]
    assert classes.count("AMB") == int(rich_row["number_outpatient"])
    assert classes.count("EMER") == int(rich_row["number_emergency"])
    assert classes.count("IMP") == 1 + int(rich_row["number_inpatient"])
    (index,) = [e for e in _of(bundle, "Encounter") if e["id"] == rich_row["encounter_id"]]
    assert len(index["diagnosis"]) == int(rich_row["number_diagnoses"])
    assert index["location"][0]["location"]["reference"].startswith("urn:uuid:")
    (location,) = _of(bundle, "Location")
    assert location["id"] in WARD_BY_ID
    in_stay = [m for m in _of(bundle, "MedicationRequest") if "encounter" in m]
    assert len(in_stay) == int(rich_row["num_medications"])
    assert all(m["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] > 0
               for m in in_stay if "dosageInstruction" in m)  # fmt: skip


def test_iter_bundles_honours_limit_and_seed():
    bundles = list(iter_bundles(DEV_DATA, seed=5, limit=3))
    assert len(bundles) == 3
    assert bundles == list(iter_bundles(DEV_DATA, seed=5, limit=3))


def test_synth_cli_streams_ndjson_and_writes_files(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["fhir", "synth", "--input", str(DEV_DATA), "--out", "-", "--limit", "2", "--seed", "9"],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert [orjson.loads(line) for line in lines] == list(iter_bundles(DEV_DATA, 9, 2))
    result = runner.invoke(
        app, ["fhir", "synth", "--input", str(DEV_DATA), "--out", str(tmp_path), "--limit", "2"]
    )
    assert result.exit_code == 0
    assert len(list(tmp_path.glob("*.json"))) == 2
