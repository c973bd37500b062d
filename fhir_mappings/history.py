"""Label-free features of a patient's own earlier index encounters.

The one honest lever on this data is what the system already knows about the patient
when it scores: how many earlier inpatient stays it has seen, what they looked like and
how recently the last one ended. Training and serving must compute it the same way, so
both call :func:`history_features` with the patient's earlier ``FeatureRecord``s and the
days between the previous stay's admission and this one:

* training: the dataset rows of the same ``patient_nbr`` with a smaller
  ``encounter_id`` (the dataset has no dates; encounter ids grow with time, and
  ``model_store.encounter_clock`` turns an id gap into an estimate of days);
* serving: the index encounters the ingest API has already seen for the patient,
  admitted before this one (kept in Redis by ``ingest.history_store``), with their
  real admission times.

Nothing here may look at a label (``readmitted``) or at a later encounter: the
function only receives earlier records, and ``FeatureRecord`` has no label field.
The earlier records' own history fields are ignored, so the result does not depend on
whether the caller filled them in.
"""

from __future__ import annotations

from collections.abc import Sequence

from readmit_core.features import DAYS_SINCE_DISCHARGE_CAP, HISTORY_COLUMNS, FeatureRecord


def history_features(
    prior: Sequence[FeatureRecord], days_since_previous_admission: float | None = None
) -> dict[str, int]:
    """History columns for an encounter, given the patient's earlier index encounters.

    ``prior`` must be in admission order, oldest first, and hold only stays admitted
    before the encounter being scored; ``days_since_previous_admission`` is the time
    from the admission of ``prior[-1]`` to this admission in days — calendar days at
    serving, like the dataset's length of stay; an estimate in training — or ``None``
    when unknown.

    * ``prior_encounters`` — earlier index stays seen for the patient;
    * ``prior_days_in_hospital`` — days spent in those stays (their ``time_in_hospital``);
    * ``prior_max_inpatient`` — highest prior-year inpatient count any of them reported;
    * ``prior_emergency_visits`` — emergency visits in the year before the latest one;
    * ``days_since_last_discharge`` — from the previous stay's discharge (its admission
      plus its length of stay) to this admission, capped at ``DAYS_SINCE_DISCHARGE_CAP``,
      which is also the value when there is no earlier stay or its timing is unknown.
      Early return after a discharge is the strongest single sign of an unstable patient.
    """
    values = {
        "prior_encounters": len(prior),
        "prior_days_in_hospital": sum(r.time_in_hospital for r in prior),
        "prior_max_inpatient": max((r.number_inpatient for r in prior), default=0),
        "prior_emergency_visits": prior[-1].number_emergency if prior else 0,
        "days_since_last_discharge": _days_since_discharge(prior, days_since_previous_admission),
    }
    assert tuple(values) == HISTORY_COLUMNS, "history_features and HISTORY_COLUMNS disagree"
    return values


def _days_since_discharge(prior: Sequence[FeatureRecord], days: float | None) -> int:
    if not prior or days is None:
        return DAYS_SINCE_DISCHARGE_CAP
    since = round(days) - prior[-1].time_in_hospital
    return min(max(since, 0), DAYS_SINCE_DISCHARGE_CAP)
