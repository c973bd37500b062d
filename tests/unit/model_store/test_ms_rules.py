"""LACE points and intervention rules."""

from __future__ import annotations

from model_store.interventions import CATALOGUE, recommend
from model_store.lace import lace_score
from readmit_core.events import Factor


def test_lace_components() -> None:
    # L: 5 days -> 4; A: emergency -> 3; C: CHF (1) + diabetes w/ complication (2) -> 3; E: 2
    assert lace_score(5, 1, 1, ["428.0", "250.6", "?"], 2) == 4 + 3 + 3 + 2
    # elective, one day, no comorbidity, no ED visits
    assert lace_score(1, 3, 1, ["V57", "?", "?"], 0) == 1
    # Charlson >= 4 scores 5; ED visits capped at 4; stay >= 14 days -> 7
    assert lace_score(14, 2, 7, ["197", "250.4", "?"], 9) == 7 + 3 + 5 + 4


def _factor(feature: str) -> Factor:
    return Factor(feature=feature, label=feature, contribution=0.2)


def test_low_band_gets_no_intervention() -> None:
    assert recommend("low", [_factor("number_inpatient")]) == ()


def test_high_band_gets_call_and_appointment() -> None:
    codes = [i.code for i in recommend("high", [])]
    assert codes[:2] == ["call-48h", "appointment-7d"]


def test_factor_driven_rules() -> None:
    codes = [
        i.code
        for i in recommend(
            "medium",
            [_factor("prior_encounters"), _factor("num_medications"), _factor("A1Cresult")],
        )
    ]
    assert codes == ["care-transitions", "med-reconciliation", "dsme"]
    assert [i.code for i in recommend("medium", [_factor("time_in_hospital")])] == ["home-health"]
    assert [i.code for i in recommend("medium", [])] == ["call-7d"]
    assert "dsme" in [i.code for i in recommend("medium", [], a1c_result=">8")]


def test_every_intervention_cites_a_source() -> None:
    for intervention in CATALOGUE.values():
        assert intervention.rationale
        assert any(str(year) in intervention.source for year in range(1990, 2030))
