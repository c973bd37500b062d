"""The encounter clock: id gaps to days, anchored on earlier stays' 30-day labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model_store.encounter_clock import (
    DATASET_SPAN_DAYS,
    PAIRS_PER_ERA,
    EncounterClock,
    fit_encounter_clock,
)


def _pairs(rng: np.random.Generator, n: int, ids_per_day: float, start: int) -> pd.DataFrame:
    """``n`` patients with two stays each; the first is labelled <30 iff they returned
    within 30 days of its discharge, the way the dataset labels it."""
    stay = rng.integers(1, 10, size=n)
    days_out = rng.choice([5.0, 20.0, 60.0, 200.0], size=n)  # discharge to next admission
    first = start + np.arange(n) * 10
    second = first + ((stay + days_out) * ids_per_day).astype(np.int64)
    patients = np.arange(n) + start
    return pd.DataFrame(
        {
            "patient_nbr": np.concatenate([patients, patients]),
            "encounter_id": np.concatenate([first, second]),
            "time_in_hospital": np.concatenate([stay, rng.integers(1, 10, size=n)]),
            "readmitted": np.concatenate([np.where(days_out <= 30, "<30", ">30"), ["NO"] * n]),
        }
    )


def test_recovers_the_rate_of_each_era() -> None:
    rng = np.random.default_rng(0)
    early = _pairs(rng, 3 * PAIRS_PER_ERA, ids_per_day=100.0, start=1_000)
    late = _pairs(rng, 3 * PAIRS_PER_ERA, ids_per_day=400.0, start=10_000_000)
    frame = pd.concat([early, late], ignore_index=True)
    clock = fit_encounter_clock(frame, frame["patient_nbr"].unique())
    assert len(clock.ids_per_day) > 1
    # returns 20 and 60 days after discharge fall on either side of the anchor
    for first, second, days in (
        (2_000, 2_000 + 25 * 100, 25),
        (12_000_000, 12_000_000 + 70 * 400, 70),
    ):
        assert clock.days_between(first, second) == pytest.approx(days, rel=0.5)


def test_only_the_given_patients_set_the_rate() -> None:
    rng = np.random.default_rng(1)
    frame = _pairs(rng, 2 * PAIRS_PER_ERA, ids_per_day=100.0, start=1_000)
    training = frame["patient_nbr"].unique()[:PAIRS_PER_ERA]
    scrambled = frame.copy()
    held_out = ~scrambled["patient_nbr"].isin(training)
    scrambled.loc[held_out, "readmitted"] = "<30"  # test labels must not move the clock
    assert fit_encounter_clock(frame, training) == fit_encounter_clock(scrambled, training)


def test_without_labelled_pairs_the_ids_spread_over_the_dataset_span() -> None:
    frame = pd.DataFrame(
        {
            "patient_nbr": [1, 2],
            "encounter_id": [0, 3_652_000],
            "time_in_hospital": [3, 3],
            "readmitted": ["NO", "NO"],
        }
    )
    clock = fit_encounter_clock(frame, [1, 2])
    assert clock == EncounterClock((), (3_652_000 / DATASET_SPAN_DAYS,))
    assert clock.days_between(0, 1000) == pytest.approx(1.0)
