"""With several ingest worker processes, /metrics sums every worker's counters."""

from __future__ import annotations

import os
import subprocess
import sys

from ingest.metrics import MULTIPROC_ENV, prepare_multiprocess_dir

WORKER = "from ingest import metrics; metrics.EVENTS_PUBLISHED.inc({n})"
SCRAPE = "from ingest import metrics; print(metrics.exposition().decode())"


def _run(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def _published(text: str) -> float:
    line = next(
        x for x in text.splitlines() if x.startswith("readmit_ingest_events_published_total")
    )
    return float(line.split()[-1])


def test_metrics_of_every_worker_are_summed(tmp_path):
    (tmp_path / "metrics" / "stale.db").parent.mkdir()
    (tmp_path / "metrics" / "stale.db").write_bytes(b"from an earlier run")
    directory = prepare_multiprocess_dir(tmp_path / "metrics")
    assert list(directory.iterdir()) == []  # an earlier run's files would be summed in
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    _run(WORKER.format(n=3), env)
    _run(WORKER.format(n=4), env)
    assert _published(_run(SCRAPE, env)) == 7


def test_one_process_without_the_directory_reports_its_own(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}
    assert _published(_run(SCRAPE, env)) == 0
