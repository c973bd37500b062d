"""Parity: synthesize every dataset row as FHIR, map it back, compare column by column.

This is the proof that serving (FHIR -> features) sees exactly what training (CSV)
saw. Rows are checked in chunks on a process pool (validation with fhir.resources
dominates the cost), and each worker maps the serialized bytes, as the ingest API
would receive them.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from multiprocessing import get_context
from pathlib import Path

import orjson

from fhir_mappings.errors import FhirMappingError
from fhir_mappings.mapper import map_document, map_trusted_document
from fhir_mappings.synth import read_rows, synthesize_bundle
from readmit_core.features import DATASET_COLUMNS, INTEGER_COLUMNS, TARGET_COLUMN

COMPARED_COLUMNS = tuple(c for c in DATASET_COLUMNS if c != TARGET_COLUMN)
RECORD = "(record)"  # pseudo-column: mapping failed or did not yield exactly one record
CHUNK = 250
MAX_EXAMPLES = 5


@dataclass
class ParityReport:
    rows: int = 0
    mismatches: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    validated: bool = True

    @property
    def total(self) -> int:
        return sum(self.mismatches.values())

    def merge(self, other: ParityReport) -> None:
        self.rows += other.rows
        self.mismatches.update(other.mismatches)
        for column, examples in other.examples.items():
            mine = self.examples.setdefault(column, [])
            mine.extend(examples[: MAX_EXAMPLES - len(mine)])

    def note(self, column: str, example: str) -> None:
        self.mismatches[column] += 1
        examples = self.examples.setdefault(column, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(example)

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "validated_with_fhir_resources": self.validated,
            "mismatches": self.total,
            "per_column": {c: self.mismatches.get(c, 0) for c in (*COMPARED_COLUMNS, RECORD)},
            "examples": self.examples,
            "seconds": round(self.seconds, 1),
            "rows_per_second": round(self.rows / self.seconds, 1) if self.seconds else None,
        }


def check_row(
    row: Mapping[str, str], seed: int, report: ParityReport, validate: bool = True
) -> None:
    """Synthesize, serialize, map back and compare one row; differences go to ``report``."""
    report.rows += 1
    where = f"encounter_id={row['encounter_id']}"
    mapper = map_document if validate else map_trusted_document
    try:
        mapped = mapper(orjson.dumps(synthesize_bundle(row, seed=seed)))
    except FhirMappingError as exc:
        report.note(RECORD, f"{where}: {type(exc).__name__}: {exc}")
        return
    if len(mapped) != 1:
        report.note(RECORD, f"{where}: {len(mapped)} records")
        return
    got = mapped[0].record.columns()
    for column in COMPARED_COLUMNS:
        expected: object = int(row[column]) if column in INTEGER_COLUMNS else row[column]
        if got[column] != expected:
            report.note(column, f"{where}: expected {expected!r}, got {got[column]!r}")


_Chunk = tuple[list[dict[str, str]], int, bool]


def _check_chunk(args: _Chunk) -> ParityReport:
    rows, seed, validate = args
    report = ParityReport()
    for row in rows:
        check_row(row, seed, report, validate)
    return report


def _chunks(rows: Iterable[dict[str, str]], seed: int, validate: bool) -> Iterator[_Chunk]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, CHUNK)):
        yield chunk, seed, validate


def run_parity(
    csv_path: str | Path,
    *,
    seed: int = 0,
    limit: int | None = None,
    workers: int | None = None,
    validate: bool = True,
) -> ParityReport:
    """Check every row (or the first ``limit``) of a dataset CSV.

    ``validate=False`` maps with :func:`map_trusted_document` (same rules, no
    fhir.resources pass), about 5x faster; the report says which mode ran.
    """
    started = time.perf_counter()
    workers = workers or min(2, os.cpu_count() or 1)
    report = ParityReport()
    rows = read_rows(csv_path, limit)
    if workers <= 1:
        for part in map(_check_chunk, _chunks(rows, seed, validate)):
            report.merge(part)
    else:
        with get_context("spawn").Pool(workers) as pool:
            for part in pool.imap_unordered(_check_chunk, _chunks(rows, seed, validate)):
                report.merge(part)
    report.seconds = time.perf_counter() - started
    report.validated = validate
    return report
