"""Recommended interventions: documented rules from the risk band and the top factors.

Rules, applied in this order (each intervention at most once):

1. band high → **follow-up call within 48 h** and **follow-up appointment within 7 days**
   (Project RED; early physician follow-up).
2. band high or medium, and a utilisation factor (earlier admissions, inpatient or
   emergency visits) among the top factors → **care-transitions coaching**.
3. band high or medium, and a medication factor (number of medications, a change of
   diabetes medication, insulin or another diabetes drug) → **medication reconciliation**.
4. band high or medium, and an HbA1c / glucose factor among the top factors or an HbA1c
   above 7 % → **diabetes self-management education and HbA1c follow-up**.
5. band high or medium, and length of stay, discharge disposition or age among the top
   factors, or age ≥ 80 → **home-health / transitional-care nurse referral**.
6. band medium with no rule above firing → **follow-up call within 7 days**.
7. band low → no intervention beyond standard discharge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from readmit_core.events import Factor, Intervention, RiskBand

CATALOGUE: Final[dict[str, Intervention]] = {
    "call-48h": Intervention(
        code="call-48h",
        title="Follow-up phone call within 48 hours of discharge",
        rationale="High predicted risk: a post-discharge call catches problems with "
        "medications and symptoms before they become a readmission.",
        source="Jack BW et al. A reengineered hospital discharge program (Project RED). "
        "Ann Intern Med 2009;150:178-187.",
    ),
    "appointment-7d": Intervention(
        code="appointment-7d",
        title="Follow-up appointment booked within 7 days",
        rationale="Early outpatient follow-up after discharge was associated with fewer "
        "30-day readmissions.",
        source="Hernandez AF et al. Relationship between early physician follow-up and "
        "30-day readmission. JAMA 2010;303:1716-1722.",
    ),
    "care-transitions": Intervention(
        code="care-transitions",
        title="Care-transitions coaching",
        rationale="Repeated hospital use points to a patient who struggles between "
        "settings; a transitions coach reduced rehospitalisation in a randomised trial.",
        source="Coleman EA et al. The Care Transitions Intervention. Arch Intern Med "
        "2006;166:1822-1828.",
    ),
    "med-reconciliation": Intervention(
        code="med-reconciliation",
        title="Pharmacist medication reconciliation and counselling at discharge",
        rationale="Many or changed medications raise the risk of adverse drug events "
        "after discharge; reconciliation and counselling reduce preventable ones.",
        source="Schnipper JL et al. Role of pharmacist counseling in preventing adverse "
        "drug events after hospitalization. Arch Intern Med 2006;166:565-571.",
    ),
    "dsme": Intervention(
        code="dsme",
        title="Diabetes self-management education and HbA1c follow-up",
        rationale="HbA1c not measured or poorly controlled: measuring HbA1c in hospital "
        "was associated with lower readmission in this very data set.",
        source="Strack B et al. Impact of HbA1c measurement on hospital readmission "
        "rates. BioMed Res Int 2014;2014:781670.",
    ),
    "home-health": Intervention(
        code="home-health",
        title="Home-health or transitional-care nurse referral",
        rationale="Older patients, long stays and discharges needing support at home "
        "benefit from nurse-led transitional care, which reduced readmissions.",
        source="Naylor MD et al. Comprehensive discharge planning and home follow-up of "
        "hospitalized elders. JAMA 1999;281:613-620.",
    ),
    "call-7d": Intervention(
        code="call-7d",
        title="Follow-up phone call within 7 days of discharge",
        rationale="Medium predicted risk: a lighter-touch check-in call.",
        source="Jack BW et al. Ann Intern Med 2009;150:178-187 (Project RED).",
    ),
}

_UTILISATION: Final = frozenset(
    {
        "number_inpatient",
        "number_emergency",
        "number_outpatient",
        "prior_encounters",
        "prior_days_in_hospital",
        "prior_max_inpatient",
        "prior_emergency_visits",
        "days_since_last_discharge",
    }
)
_MEDICATION: Final = frozenset(
    {"num_medications", "change", "diabetesMed", "insulin", "metformin", "glipizide", "glyburide"}
)
_GLYCAEMIC: Final = frozenset({"A1Cresult", "max_glu_serum"})
_SUPPORT: Final = frozenset({"time_in_hospital", "discharge_disposition_id", "age"})
_OLD_AGES: Final = frozenset({"[80-90)", "[90-100)"})


def recommend(
    band: RiskBand, factors: Sequence[Factor], *, a1c_result: str | None = None, age: str = ""
) -> tuple[Intervention, ...]:
    """Interventions for one prediction, following the numbered rules in the module doc."""
    if band == "low":
        return ()
    chosen: list[str] = []
    features = {f.feature for f in factors}
    if band == "high":
        chosen += ["call-48h", "appointment-7d"]
    if features & _UTILISATION:
        chosen.append("care-transitions")
    if features & _MEDICATION:
        chosen.append("med-reconciliation")
    if features & _GLYCAEMIC or a1c_result in (">7", ">8"):
        chosen.append("dsme")
    if features & _SUPPORT or age in _OLD_AGES:
        chosen.append("home-health")
    if not chosen:
        chosen.append("call-7d")
    return tuple(CATALOGUE[code] for code in dict.fromkeys(chosen))
