"""Resource versions in the state store (SQLite here; PostgreSQL in the integration
test of ingest's versions): per ref and scope, incremented only on changed content,
across more refs than one multi-row statement holds."""

from __future__ import annotations

from pathlib import Path

from patient_state.store import VERSION_CHUNK, open_store


def test_versions_grow_on_change_only_per_ref_and_scope(tmp_path: Path) -> None:
    store = open_store("", tmp_path, "a.")
    refs = [f"Patient/p{i}" for i in range(2 * VERSION_CHUNK + 1)]
    first = store.write_versions([(r, "h1") for r in refs], "w1", 100.0)
    assert {row.version_id for row in first.values()} == {1}
    assert set(first) == set(refs)

    changed, same = refs[: VERSION_CHUNK + 3], refs[VERSION_CHUNK + 3 :]
    second = store.write_versions(
        [(r, "h2") for r in changed] + [(r, "h1") for r in same], "w2", 200.0
    )
    assert all((second[r].version_id, second[r].write_id) == (2, "w2") for r in changed)
    assert all(second[r].last_modified == 200.0 for r in changed)
    assert all((second[r].version_id, second[r].write_id) == (1, "w1") for r in same)
    assert all(second[r].last_modified == 100.0 for r in same)
    assert store.versions(refs[:2]) == {r: second[r] for r in refs[:2]}

    other = open_store("", tmp_path, "b.")
    assert other.versions(refs) == {}
    assert other.write_versions([(refs[0], "h2")], "w3", 300.0)[refs[0]].version_id == 1


def test_a_ref_named_twice_in_one_write_is_one_row(tmp_path: Path) -> None:
    store = open_store("", tmp_path, "a.")
    rows = store.write_versions([("Patient/p", "h1"), ("Patient/p", "h2")], "w", 1.0)
    assert rows["Patient/p"].version_id == 1
