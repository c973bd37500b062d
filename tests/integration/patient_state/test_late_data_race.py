"""Two late resources of one stay accepted at once against PostgreSQL: the stay document
is merged under an advisory lock, so neither diagnosis is lost."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# the ingest unit tests' support modules (a real service with an in-memory broker)
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "ingest"))

from late_support import race_two_late_conditions

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("replicas", [False, True], ids=["threads", "replicas"])
def test_concurrent_late_conditions_both_reach_the_score(
    tmp_path: Path, postgres_dsn: str, replicas: bool
):
    """Threads of one process, and two processes' worth of connections and locks."""
    events = race_two_late_conditions(tmp_path, postgres_dsn, replicas=replicas)
    assert [e.input_version for e in events] == [1, 2, 3]
    latest = events[-1]
    assert {"250.01", "585"} <= {latest.record.diag_1, latest.record.diag_2, latest.record.diag_3}
