"""Days between a patient's stays, estimated from encounter ids (the dataset has no dates).

At serving time ``days_since_last_discharge`` comes from real admission times. The UCI
file has none, but its encounter ids grow with time, so the id gap between two stays of
one patient measures the time between them — in a unit that drifts: ids were handed
out faster in some years than in others. The clock converts an id gap to days with one
rate per *era* (a quantile range of encounter ids).

The rate is anchored on the only calendar fact in the data: an earlier stay labelled
``<30`` was followed by a readmission within 30 days of its discharge. For each era the
rate is the one under which "id gap / rate - earlier length of stay ≤ 30 days" agrees
best with those earlier labels (about 93 % agreement on the development data). This
uses labels only to set a unit, only on *training* patients, and only labels of earlier
stays — facts that had happened by the time the later stay began — so nothing about
the stay being scored, or about a test patient, enters the model.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from readmit_core.features import POSITIVE_TARGET, TARGET_COLUMN

if TYPE_CHECKING:
    from collections.abc import Collection

    import pandas as pd

READMISSION_WINDOW_DAYS: Final = 30
MAX_ERAS: Final = 5
PAIRS_PER_ERA: Final = 1000  # fewer consecutive-stay pairs than this per era: fewer eras
# The dataset covers ten years (1999-2008, Strack et al. 2014): the fallback rate when
# there are no labelled pairs to anchor on spreads the id range evenly over them.
DATASET_SPAN_DAYS: Final = 3652


@dataclass(frozen=True)
class EncounterClock:
    """Converts the encounter-id gap between two stays of one patient into days."""

    era_edges: tuple[int, ...]
    ids_per_day: tuple[float, ...]

    def days_between(self, earlier_id: int, later_id: int) -> float:
        """Estimated days from the earlier stay's admission to the later one's."""
        rate = self.ids_per_day[bisect_right(self.era_edges, later_id)]
        return (later_id - earlier_id) / rate

    def to_json(self) -> dict[str, Any]:
        return {"era_edges": list(self.era_edges), "ids_per_day": list(self.ids_per_day)}


def fit_encounter_clock(frame: pd.DataFrame, patients: Collection[Any]) -> EncounterClock:
    """Fit the per-era rates on the consecutive stays of ``patients`` (training patients)."""
    pairs = _consecutive_stays(frame[frame["patient_nbr"].isin(patients)])
    fallback = _span_rate(frame)
    n_eras = int(min(MAX_ERAS, max(1, len(pairs) // PAIRS_PER_ERA)))
    if pairs.empty:
        return EncounterClock((), (fallback,))
    quantiles = np.linspace(0, 1, n_eras + 1)[1:-1]
    edges = tuple(int(e) for e in np.quantile(pairs["encounter_id"], quantiles))
    era = np.searchsorted(np.asarray(edges), pairs["encounter_id"].to_numpy(), side="right")
    rates = tuple(_anchored_rate(pairs[era == k], fallback) for k in range(n_eras))
    return EncounterClock(edges, rates)


def _consecutive_stays(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per stay that has an earlier one: id gap, earlier stay's length and label."""
    ordered = frame.sort_values(["patient_nbr", "encounter_id"])
    previous = ordered.groupby("patient_nbr")[
        ["encounter_id", "time_in_hospital", TARGET_COLUMN]
    ].shift(1)
    out = ordered[["encounter_id"]].assign(
        gap=ordered["encounter_id"] - previous["encounter_id"],
        earlier_stay_days=previous["time_in_hospital"],
        earlier_readmitted_early=previous[TARGET_COLUMN] == POSITIVE_TARGET,
    )
    return out.dropna(subset=["gap"])


def _anchored_rate(pairs: pd.DataFrame, fallback: float) -> float:
    """The ids-per-day rate that best reproduces the earlier stays' 30-day labels.

    A pair is an early return when gap / rate <= 30 + earlier length of stay, i.e. when
    q = gap / (30 + earlier length) <= rate: the best rate is the threshold on q that
    agrees with the most labels, found exactly over all candidate thresholds.
    """
    q = (pairs["gap"] / (READMISSION_WINDOW_DAYS + pairs["earlier_stay_days"])).to_numpy()
    early = pairs["earlier_readmitted_early"].to_numpy(dtype=bool)
    if q.size == 0 or early.all() or not early.any():
        return fallback
    order = np.argsort(q, kind="stable")
    q, early = q[order], early[order]
    agreement = np.cumsum(early) + (np.count_nonzero(~early) - np.cumsum(~early))
    # a threshold at q[k] takes every pair tied with it: only ends of tie runs count
    ends = np.flatnonzero(np.append(q[1:] != q[:-1], True))
    k = int(ends[np.argmax(agreement[ends])])
    upper = q[k + 1] if k + 1 < q.size else q[k]
    return float((q[k] + upper) / 2)  # the middle of the best interval


def _span_rate(frame: pd.DataFrame) -> float:
    ids = frame["encounter_id"]
    return max(float(ids.max() - ids.min()), 1.0) / DATASET_SPAN_DAYS
