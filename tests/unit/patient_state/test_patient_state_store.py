"""The state store on SQLite (the embedded default): migrations, round trips, scopes,
reconnecting after a broken connection, and the rescore selection rules."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patient_state.database import StateDatabase, UnsupportedStateDatabase
from patient_state.migrations import MIGRATIONS, current_version, migrate
from patient_state.rescore import latest_versions
from patient_state.store import (
    AcceptedRow,
    Delivery,
    PatientStateStore,
    ResourceRow,
    StayRow,
    VisitRow,
    open_store,
)
from readmit.cli.rescore import BadTime, parse_time
from readmit_core.errors import ServiceUnavailable


def _accepted(key: str, encounter: str, at: float, offset: int = 0) -> AcceptedRow:
    return AcceptedRow(Delivery(key, "t.features", 0, offset), encounter, "p1", "{}", at)


def test_migrations_apply_once_and_record_their_version(tmp_path: Path) -> None:
    db = StateDatabase("", tmp_path)
    assert migrate(db) == [m.version for m in MIGRATIONS]
    assert migrate(db) == []
    assert current_version(db) == MIGRATIONS[-1].version


def test_only_postgresql_or_empty_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedStateDatabase):
        StateDatabase("mysql://x@y/z", tmp_path)


def test_history_accepted_and_resources_round_trip_per_scope(tmp_path: Path) -> None:
    a = open_store("", tmp_path, "a.")
    b = PatientStateStore(a.db, "b.")
    visit = VisitRow("p1", "e1", "IMP", "2026-01-01T00:00:00+00:00", None, True)
    stay = StayRow("p1", "e1", "2026-01-01T00:00:00+00:00", '{"x": 1}')
    a.remember([visit], [stay], [_accepted("e1#v1", "e1", 10.0, offset=7)])
    a.remember([visit], [stay], [])  # idempotent upserts
    assert a.visits("p1") == [visit]
    assert a.stays("p1") == [stay]
    assert a.deliveries(["e1#v1", "e1#v2"]) == {"e1#v1": Delivery("e1#v1", "t.features", 0, 7)}
    assert b.visits("p1") == []
    assert b.deliveries(["e1#v1"]) == {}
    live = ResourceRow("p1", "Patient/p1", True, '{"id": "p1"}', expires_at=2e9)
    gone = ResourceRow("p1", "Condition/c1", False, '{"id": "c1"}', expires_at=1.0)
    a.keep_resources([live, gone])
    assert a.resources(["p1"], now=100.0) == [live]
    assert a.prune(now=100.0) == 1


def test_a_broken_connection_is_replaced_once(tmp_path: Path) -> None:
    class Severed:
        """What a database restart leaves behind: a connection that only fails."""

        def cursor(self) -> None:
            raise sqlite3.OperationalError("server closed the connection unexpectedly")

        def close(self) -> None:
            pass

    store = open_store("", tmp_path, "s.")
    store.db._idle.append(Severed())
    assert store.visits("nobody") == []


def test_a_database_that_stays_away_is_service_unavailable(tmp_path: Path) -> None:
    db = StateDatabase("", tmp_path)

    def broken(_: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(ServiceUnavailable) as info:
        db.run(broken)
    assert info.value.service == "database"
    assert db.ping()


def test_rescore_takes_the_latest_version_of_each_encounter_oldest_first() -> None:
    rows = [
        _accepted("e1#v1", "e1", 1.0),
        _accepted("e2#v1", "e2", 2.0),
        _accepted("e1#v2", "e1", 3.0),
    ]
    assert [r.delivery.input_key for r in latest_versions(rows)] == ["e2#v1", "e1#v2"]


@given(st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 1e6)), max_size=30))
def test_rescore_selection_is_one_per_encounter_and_the_newest(
    versions: list[tuple[str, float]],
) -> None:
    rows = [_accepted(f"{e}#{i}", e, at) for i, (e, at) in enumerate(versions)]
    chosen = latest_versions(rows)
    assert sorted(r.encounter_id for r in chosen) == sorted({e for e, _ in versions})
    for r in chosen:
        assert r.accepted_at == max(at for e, at in versions if e == r.encounter_id)


def test_rescore_times() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert parse_time("6h", now) == now - timedelta(hours=6)
    assert parse_time("90m", now) == now - timedelta(minutes=90)
    assert parse_time("2026-12-01T08:00") == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    for bad in ("yesterday", "99999999d", "-5h"):
        with pytest.raises(BadTime):
            parse_time(bad, now)


def test_identities_first_claim_wins_and_only_accepted_ones_are_found(tmp_path: Path) -> None:
    from patient_state.store import IdentityRow, StayDocumentRow

    store = open_store("", tmp_path, "i.")
    key = ("Encounter", "https://ehr/vn", "V-1")
    assert store.claim_identities([IdentityRow(*key, "first")]) == {key: "first"}
    assert store.claim_identities([IdentityRow(*key, "second")]) == {key: "first"}  # a racer
    assert store.search_identities("Encounter", "https://ehr/vn", "V-1") == set()  # claimed only
    doc = StayDocumentRow("first", "p1", '{"resourceType": "Bundle"}', expires_at=200.0)
    store.remember(
        [],
        [],
        [
            replace(_accepted("first#a", "first", 10.0), input_version=1),
            replace(_accepted("first#b", "first", 11.0), input_version=2),
        ],
        identities=[IdentityRow(*key, "first"), IdentityRow(*key[:2], "V-1", "second")],
        documents=[doc],
    )
    assert store.search_identities("Encounter", "https://ehr/vn", "V-1") == {"first"}
    assert store.search_identities("Encounter", None, "V-1") == {"first"}
    assert store.latest_accepted(["first", "none"])["first"].input_version == 2
    assert store.stay_documents(patient_ids=["p1"], now=100.0) == [doc]
    assert store.stay_documents(encounter_ids=["first"], now=300.0) == []


def test_histories_reads_several_patients_in_one_statement(tmp_path: Path) -> None:
    store = open_store("", tmp_path, "a.")
    other = PatientStateStore(store.db, "b.")
    v1 = VisitRow("p1", "e1", "IMP", "2026-01-01T00:00:00+00:00", None, True)
    v2 = VisitRow("p2", "e2", "AMB", "2026-02-01T00:00:00+00:00", "2026-02-01T01:00:00", False)
    s1 = StayRow("p1", "e1", "2026-01-01T00:00:00+00:00", '{"x": 1}')
    store.remember([v1, v2], [s1], [])
    other.remember([VisitRow("p1", "e9", "IMP", "2025-01-01T00:00:00", None, True)], [], [])
    statements: list[str] = []
    run = store.db.run

    def counting(work, *, write=True):  # type: ignore[no-untyped-def]
        statements.append("run")
        return run(work, write=write)

    store.db.run = counting  # type: ignore[method-assign]
    visits, stays = store.histories(["p1", "p2", "p3"])
    assert len(statements) == 1
    assert sorted(visits, key=lambda v: v.encounter_id) == [v1, v2]
    assert stays == [s1]
    assert store.histories([]) == ([], [])
    store.db.run = run  # type: ignore[method-assign]
    for patient in ("p1", "p2"):  # the same rows the one-patient reads return
        assert store.visits(patient) == [v for v in visits if v.patient_id == patient]
        assert store.stays(patient) == [s for s in stays if s.patient_id == patient]


def test_pruning_keeps_exactly_what_the_history_horizon_still_reaches(tmp_path: Path) -> None:
    day = 86_400.0
    now = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    a = open_store("", tmp_path, "a.")
    b = PatientStateStore(a.db, "b.")

    def at(days_ago: float) -> str:
        return datetime.fromtimestamp(now - days_ago * day, UTC).isoformat()

    old_visit = VisitRow("p1", "e-old", "IMP", at(500), at(498), True)
    long_stay = VisitRow("p1", "e-long", "IMP", at(500), at(300), True)  # ended in the horizon
    recent = VisitRow("p1", "e-new", "IMP", at(10), at(8), True)
    stays = [StayRow("p1", e, at(d), "{}") for e, d in (("e-old", 500), ("e-new", 10))]
    accepted = [_accepted("old#v1", "e-old", now - 500 * day), _accepted("new#v1", "e-new", now)]
    a.remember([old_visit, long_stay, recent], stays, accepted)
    b.remember([old_visit], stays[:1], [])  # another deployment's scope is not touched
    pruned = a.prune_history(400 * day, now=now)
    assert (pruned.visits, pruned.stays, pruned.accepted) == (1, 1, 1)
    assert {v.encounter_id for v in a.visits("p1")} == {"e-long", "e-new"}
    assert [s.encounter_id for s in a.stays("p1")] == ["e-new"]
    assert a.deliveries(["old#v1", "new#v1"]).keys() == {"new#v1"}
    assert len(b.visits("p1")) == 1
    assert a.prune_history(400 * day, now=now).total == 0  # idempotent
