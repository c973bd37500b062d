"""Label-free features of a patient's own earlier index encounters.

The one honest lever on this data is what the system already knows about the patient
when it scores: how many earlier inpatient stays it has seen and what they looked like.
Training and serving must compute it the same way, so both call
:func:`history_features` with the patient's earlier ``FeatureRecord``s:

* training: the dataset rows of the same ``patient_nbr`` with a smaller
  ``encounter_id`` (the dataset has no dates; encounter ids grow with time);
* serving: the index encounters the ingest API has already seen for the patient,
  admitted before this one (kept in Redis by ``ingest.history``).

Nothing here may look at a label (``readmitted``) or at a later encounter: the
function only receives earlier records, and ``FeatureRecord`` has no label field.
The earlier records' own history fields are ignored, so the result does not depend on
whether the caller filled them in.
"""

from __future__ import annotations

from collections.abc import Sequence

from fhir_mappings.features import HISTORY_COLUMNS, FeatureRecord


def history_features(prior: Sequence[FeatureRecord]) -> dict[str, int]:
    """History columns for an encounter, given the patient's earlier index encounters.

    ``prior`` must be in admission order, oldest first, and hold only stays admitted
    before the encounter being scored.

    * ``prior_encounters`` — earlier index stays seen for the patient;
    * ``prior_days_in_hospital`` — days spent in those stays (their ``time_in_hospital``);
    * ``prior_max_inpatient`` — highest prior-year inpatient count any of them reported;
    * ``prior_emergency_visits`` — emergency visits in the year before the latest one.
    """
    values = {
        "prior_encounters": len(prior),
        "prior_days_in_hospital": sum(r.time_in_hospital for r in prior),
        "prior_max_inpatient": max((r.number_inpatient for r in prior), default=0),
        "prior_emergency_visits": prior[-1].number_emergency if prior else 0,
    }
    assert tuple(values) == HISTORY_COLUMNS, "history_features and HISTORY_COLUMNS disagree"
    return values
