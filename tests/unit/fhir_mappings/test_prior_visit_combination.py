"""Document history combined with stored history: one prior visit counts once, whatever
id a resend gives a visit that carries no business identifier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from fhir_mappings.prior_visits import PriorStay, VisitSummary, combine_stays, combine_visits
from readmit_core.features import FeatureRecord

BASE = datetime(2026, 1, 1, 8, tzinfo=UTC)
CLASSES = ("IMP", "AMB", "EMER")


def _visit(eid: str, day: int, code: str = "IMP", patient: str = "P") -> VisitSummary:
    start = BASE + timedelta(days=day)
    return VisitSummary(eid, patient, code, start, start + timedelta(days=2), False)


def test_an_unidentified_visit_resent_under_a_new_id_counts_once():
    stored = [_visit("old-1", 0), _visit("old-2", 30, "EMER")]
    resent = [_visit("new-1", 0), _visit("new-2", 30, "EMER")]
    combined = combine_visits(stored, resent, {"new-1", "new-2"})
    assert sorted(v.encounter_id for v in combined) == ["new-1", "new-2"]


def test_an_identified_visit_is_matched_by_id_only():
    stored = [_visit("old-1", 0)]
    combined = combine_visits(stored, [_visit("other", 0)], unidentified=set())
    assert sorted(v.encounter_id for v in combined) == ["old-1", "other"]


def test_another_patients_or_another_periods_visit_is_not_the_same_visit():
    stored = [_visit("old-1", 0, patient="Q"), _visit("old-2", 5)]
    combined = combine_visits(stored, [_visit("new-1", 0)], {"new-1"})
    assert len(combined) == 3


def test_stored_twins_of_one_visit_count_once():
    combined = combine_visits([_visit("a", 0), _visit("b", 0)], [], set())
    assert [v.encounter_id for v in combined] == ["a"]


def _stay(eid: str, day: int, days: int = 3) -> PriorStay:
    return PriorStay(
        BASE + timedelta(days=day),
        FeatureRecord(encounter_id=eid, patient_nbr="P", time_in_hospital=days),
    )


def test_an_unidentified_prior_stay_resent_under_a_new_id_counts_once():
    stays = combine_stays([_stay("old", 0), _stay("kept", 40)], [_stay("new", 0)], {"new"})
    assert sorted(stays) == ["kept", "new"]
    assert sorted(combine_stays([_stay("old", 0)], [_stay("new", 0, 4)], {"new"})) == [
        "new",
        "old",
    ]


visits = st.lists(st.tuples(st.integers(0, 20), st.sampled_from(CLASSES)), max_size=8, unique=True)


@given(visits, st.integers(1, 3))
def test_resending_a_history_under_new_ids_never_changes_its_size(history, resends):
    """However often an unidentified history is resent under fresh ids (and remembered
    under each), the combination holds each distinct visit once."""
    stored: list[VisitSummary] = []
    for send in range(resends):
        document = [_visit(f"s{send}-{i}", d, c) for i, (d, c) in enumerate(history)]
        combined = combine_visits(stored, document, {v.encounter_id for v in document})
        assert len(combined) == len(history)
        stored += document
