from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from readmit.cli import app

runner = CliRunner()


def _input(small_csv: Path, tmp_path: Path, rows: int = 200) -> pd.DataFrame:
    return pd.read_csv(small_csv, nrows=rows, dtype=str, keep_default_na=False)


def test_predict_writes_one_score_per_row(
    small_csv: Path, registry_root: Path, tmp_path: Path
) -> None:
    frame = _input(small_csv, tmp_path).drop(columns=["readmitted"])
    source, target = tmp_path / "in.csv", tmp_path / "out" / "scores.csv"
    frame.to_csv(source, index=False)
    result = runner.invoke(
        app,
        [
            "predict",
            "--input",
            str(source),
            "--output",
            str(target),
            "--registry",
            str(registry_root),
        ],
    )
    assert result.exit_code == 0, result.output
    with target.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["encounter_id"] for r in rows] == list(frame["encounter_id"])
    assert {r["band"] for r in rows} <= {"low", "medium", "high"}
    assert all(0 < float(r["probability"]) < 1 for r in rows)


def test_predict_bad_input_names_column_and_row(
    small_csv: Path, registry_root: Path, tmp_path: Path
) -> None:
    frame = _input(small_csv, tmp_path, rows=10)
    frame.loc[4, "num_medications"] = "lots"
    source = tmp_path / "bad.csv"
    frame.to_csv(source, index=False)
    result = runner.invoke(
        app,
        [
            "predict",
            "--input",
            str(source),
            "--output",
            str(tmp_path / "o.csv"),
            "--registry",
            str(registry_root),
        ],
    )
    assert result.exit_code == 2
    assert "num_medications" in result.output
    assert "row 5" in result.output
    assert not (tmp_path / "o.csv").exists()


def test_predict_unknown_categories_are_scored(
    small_csv: Path, registry_root: Path, tmp_path: Path
) -> None:
    frame = _input(small_csv, tmp_path, rows=5)
    frame["race"] = "Klingon"
    frame["admission_type_id"] = "77"
    source = tmp_path / "odd.csv"
    frame.to_csv(source, index=False)
    result = runner.invoke(
        app,
        [
            "predict",
            "--input",
            str(source),
            "--output",
            str(tmp_path / "o.csv"),
            "--registry",
            str(registry_root),
        ],
    )
    assert result.exit_code == 0, result.output


def test_predict_without_champion_is_a_clear_error(small_csv: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "predict",
            "--input",
            str(small_csv),
            "--output",
            str(tmp_path / "o.csv"),
            "--registry",
            str(tmp_path / "none"),
        ],
    )
    assert result.exit_code == 2
    assert "no champion" in result.output


def test_models_list_show_promote(registry_root: Path) -> None:
    listed = runner.invoke(app, ["models", "list", "--registry", str(registry_root)])
    assert listed.exit_code == 0
    version = listed.output.split()[1]
    assert listed.output.startswith("*")
    shown = runner.invoke(app, ["models", "show", version, "--registry", str(registry_root)])
    assert shown.exit_code == 0
    assert json.loads(shown.output)["version"] == version
    promoted = runner.invoke(app, ["models", "promote", version, "--registry", str(registry_root)])
    assert promoted.exit_code == 0
    missing = runner.invoke(app, ["models", "promote", "nope", "--registry", str(registry_root)])
    assert missing.exit_code == 2


def test_help_does_not_import_heavy_libraries() -> None:
    import subprocess
    import sys

    heavy = "('pandas', 'sklearn', 'lightgbm', 'xgboost', 'matplotlib')"
    code = f"import sys, readmit.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
