"""Fixtures for the fhir_mappings unit tests: real dataset rows and their bundles."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from fhir_mappings.synth import read_rows, synthesize_bundle
from readmit_core.settings import PROJECT_ROOT

DEV_DATA = PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz"


@pytest.fixture(scope="session")
def dev_rows() -> list[dict[str, str]]:
    """The first 400 rows of the development data."""
    return list(read_rows(DEV_DATA, 400))


@pytest.fixture(scope="session")
def rich_row() -> dict[str, str]:
    """The first row with an HbA1c, a payer, prior stays and a medication change."""
    for row in read_rows(DEV_DATA):
        if (
            row["A1Cresult"] != "None"
            and row["payer_code"] != "?"
            and int(row["number_inpatient"]) > 0
            and row["change"] == "Ch"
        ):
            return row
    raise AssertionError("no rich row in the sample")


@pytest.fixture
def make_bundle() -> Callable[[dict[str, str]], dict[str, Any]]:
    def make(row: dict[str, str], seed: int = 7) -> dict[str, Any]:
        return copy.deepcopy(synthesize_bundle(row, seed=seed))

    return make
