"""Parity on a sample of the development data: synthesize -> FHIR bytes -> features == row."""

from __future__ import annotations

from fhir_mappings.parity import ParityReport, check_row, run_parity
from fhir_mappings.synth import read_rows
from readmit_core.settings import PROJECT_ROOT

DEV_DATA = PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz"

SAMPLE = 200


def test_parity_is_exact_on_a_sample_with_full_validation():
    report = run_parity(DEV_DATA, seed=11, limit=SAMPLE, workers=1)
    assert report.rows == SAMPLE
    assert report.total == 0, report.as_dict()


def test_parity_sample_from_later_rows_without_validation():
    rows = read_rows(DEV_DATA, 40_000)
    report = ParityReport()
    for i, row in enumerate(rows):
        if i % 200 == 0:
            check_row(row, 13, report, validate=False)
    assert report.rows == 200
    assert report.total == 0, report.as_dict()


def test_parity_reports_a_mismatch_per_column():
    row = next(read_rows(DEV_DATA, 1))
    report = ParityReport()
    check_row({**row, "diag_1": "999"}, 0, report)  # synthesized as 999: matches
    assert report.total == 0
    tampered = dict(row)
    report = ParityReport()
    check_row(tampered | {"A1Cresult": ">8"}, 0, report)
    assert report.total == 0  # the bundle follows the row, so still equal
    # A row whose value the synthesizer cannot express is caught column by column.
    check_row(tampered | {"payer_code": "ZZ"}, 0, report)
    assert report.mismatches["payer_code"] == 1


def test_parity_cli_exits_non_zero_on_a_mismatch(tmp_path):
    import csv

    import orjson
    from typer.testing import CliRunner

    from readmit.cli import app

    rows = list(read_rows(DEV_DATA, 3))
    rows[1]["payer_code"] = "ZZ"  # no FHIR coding maps back to this
    path = tmp_path / "rows.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = CliRunner().invoke(app, ["fhir", "parity", "--input", str(path), "--workers", "1"])
    assert result.exit_code == 1
    report = orjson.loads(result.stdout)
    assert report["rows"] == 3
    assert report["per_column"]["payer_code"] == 1
    assert report["mismatches"] == 1
