"""The mapper reads a document's history in one round trip, with the same result."""

from __future__ import annotations

from pathlib import Path

import orjson

from fhir_mappings.mapper import map_document
from fhir_mappings.synth import read_rows, synthesize_bundle
from ingest.history_store import DurableHistory
from patient_state.store import open_store
from readmit_core.settings import PROJECT_ROOT

DEV_DATA = PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz"


def _patient_with_two_stays() -> list[dict[str, str]]:
    rows = list(read_rows(DEV_DATA, 3000))
    by_patient: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_patient.setdefault(row["patient_nbr"], []).append(row)
    return next(v for v in by_patient.values() if len(v) >= 2)


class OneByOne:
    """The same store read patient by patient (what the mapper did before)."""

    def __init__(self, history: DurableHistory) -> None:
        self.prior_visits = history.prior_visits
        self.prior_index_records = history.prior_index_records


def test_one_read_per_document_and_the_same_features(tmp_path: Path) -> None:
    store = open_store("", tmp_path, "t.")
    history = DurableHistory(store)
    first, second = _patient_with_two_stays()[:2]
    earlier = map_document(orjson.dumps(synthesize_bundle(first, seed=1)), history=history)
    history.remember(earlier, [])
    body = orjson.dumps(synthesize_bundle(second, seed=1))
    reads: list[str] = []
    run = store.db.run

    def counting(work, *, write=True):  # type: ignore[no-untyped-def]
        reads.append("write" if write else "read")
        return run(work, write=write)

    store.db.run = counting  # type: ignore[method-assign]
    batched = map_document(body, history=history)
    assert reads == ["read"]
    one_by_one = map_document(body, history=OneByOne(history))
    assert len(reads) > 2
    assert [m.record for m in batched] == [m.record for m in one_by_one]
    assert batched[0].record.prior_encounters >= 1  # the earlier stay was found
