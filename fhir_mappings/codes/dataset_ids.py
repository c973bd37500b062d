"""The dataset's own numeric code tables (admission type, discharge disposition, admission
source) from UCI's ``IDs_mapping.csv``, shipped inside this package.

One reader for everyone: the model stores the descriptions for its explanations, the
web app offers them in the what-if form. Shipping the file as package data means an
installed wheel (the container image) has it too.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import Final

from readmit_core.features import CODED_ID_COLUMNS

IDS_MAPPING_PATH: Final = Path(__file__).with_name("IDs_mapping.csv")
ID_COLUMNS: Final = CODED_ID_COLUMNS


@lru_cache(maxsize=1)
def id_tables() -> dict[str, dict[int, str]]:
    """column -> {id: description}, in the file's order (blank lines separate tables)."""
    tables: dict[str, dict[int, str]] = {column: {} for column in ID_COLUMNS}
    current: str | None = None
    with IDS_MAPPING_PATH.open(newline="") as handle:
        for row in csv.reader(handle):
            key = row[0].strip() if row else ""
            if not key:
                current = None
            elif key in tables:
                current = key
            elif current is not None and key.isdigit():
                tables[current][int(key)] = ",".join(row[1:]).strip()
    return tables
