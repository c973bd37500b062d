"""The whole stream through a broker restart, under load, as an outsider sees it.

Ingest (a real uvicorn process) takes POSTs from an EHR that resends whatever was not
answered 2xx; a scorer scores, an explainer adds the factors; the alert feed
(``consume_scores``) stores alerts in PostgreSQL. The embedded broker is stopped
mid-stream and started again empty. Measured: every discharge answered 2xx is scored
(those the dead broker lost included: the scorers republish them from the state
database), 0 duplicate alerts, every high-risk score has its alert — with its factors —
within a bound after the broker is back, and ingest's /readyz said "not ready" within
~2 s of the broker dying and "ready" once it was back.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg2
import pytest
from test_scorer_faults import ProbeLog, Sampler, Scorer
from test_state_faults import (
    DATA,
    HEADERS,
    RECOVERY_BOUND_S,
    TOKEN,
    cache_of,
    report,
    scored,
    wait_for,
)

from fhir_mappings.synth import read_rows, synthesize_bundle
from readmit.embedded.services import ManagedProcess, free_port, start_broker
from readmit.embedded.stack import settings_env
from readmit_core.kafka_clients import ensure_topics
from readmit_core.settings import PROJECT_ROOT, Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

INPUTS = 120
STOP_AFTER = 40  # accepted before the broker is stopped
DOWN_S = 3.0
READY_TRUTH_S = 2.5
BEHIND = 10  # ingest must say "not ready" this soon after the broker died


class Broker:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.tmp = tmp_path
        self.starts = 0
        self.proc = self.start()

    def start(self) -> ManagedProcess:
        self.starts += 1
        self.proc = start_broker(self.port, self.tmp / f"broker{self.starts}.log")
        return self.proc


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    yield b
    b.proc.stop()


@pytest.fixture
def stack_settings(
    service_settings: Settings, own_postgres: Any, own_redis: Any, broker: Broker, tmp_path: Path
) -> Settings:
    prefix = f"r{uuid.uuid4().hex[:10]}."
    s = service_settings.model_copy(
        update={
            "kafka_bootstrap": f"127.0.0.1:{broker.port}",
            "topic_prefix": prefix,
            "scorer_group": f"{prefix}scorer",
            "alerts_group": f"{prefix}alerts",
            "explainer_group": f"{prefix}explainer",
            "redis_url": f"redis://127.0.0.1:{own_redis[0]}/0",
            "database_url": own_postgres.url,
            "state_dir": tmp_path,
            "ingest_tokens": TOKEN,
            "ingest_port": free_port(),
            "state_upkeep_interval_s": 0.5,
        }
    )
    ensure_topics(s)
    return s


def _child(settings: Settings, tmp_path: Path, name: str, argv: list[str]) -> ManagedProcess:
    return ManagedProcess(
        name, argv, env=settings_env(settings), log_path=tmp_path / f"{name}.log", cwd=PROJECT_ROOT
    ).start()


class Ehr:
    """Sends each bundle until it is answered 2xx (an interface engine's retry queue)."""

    def __init__(self, url: str, bodies: list[bytes]) -> None:
        self.url = url
        self.bodies = bodies
        self.accepted_at: dict[int, float] = {}
        self.refused = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Ehr:
        self._thread.start()
        return self

    def _run(self) -> None:
        with httpx.Client(timeout=15) as client:
            for i, body in enumerate(self.bodies):
                while True:
                    try:
                        status = client.post(f"{self.url}/fhir", content=body, headers=HEADERS)
                        if 200 <= status.status_code < 300:
                            self.accepted_at[i] = time.monotonic()
                            break
                    except httpx.HTTPError:
                        pass
                    self.refused += 1
                    time.sleep(0.2)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class Readiness(Sampler):
    """Ingest /readyz sampled every 0.1 s: (monotonic time, status)."""

    every_s = 0.1

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def sample(self) -> tuple[float, int]:
        try:
            return time.monotonic(), httpx.get(f"{self.url}/readyz", timeout=2).status_code
        except httpx.HTTPError:
            return time.monotonic(), 0

    def first(self, status: int, after: float) -> float | None:
        return next((t - after for t, s in self.samples if t >= after and s == status), None)


def _alerts(url: str, encounters: list[str], *, pending: bool = False) -> list[str]:
    """The encounters' alert rows (with ``pending``: those still waiting for factors)."""
    only = " AND factors_pending" if pending else ""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT encounter_id FROM alerts_alert WHERE encounter_id = ANY(%s){only}",
            (encounters,),
        )
        return [r[0] for r in cur.fetchall()]


def test_broker_restart_under_load_loses_no_discharge_and_no_alert(
    stack_settings: Settings,
    broker: Broker,
    own_postgres: Any,
    tmp_path: Path,
) -> None:
    s = stack_settings
    py = sys.executable
    rows = list(read_rows(DATA, limit=INPUTS))
    bodies = [orjson.dumps(synthesize_bundle(r, seed=23)) for r in rows]
    encounters = [r["encounter_id"] for r in rows]
    cache = cache_of(s)
    migrate = _child(s, tmp_path, "migrate", [py, "-m", "alerts_web", "migrate", "--noinput"])
    assert migrate.proc is not None
    assert migrate.proc.wait(timeout=180) == 0
    ingest = _child(
        s,
        tmp_path,
        "ingest",
        [py, "-m", "uvicorn", "--factory", "ingest.app:create_app", "--host", "127.0.0.1",
         "--port", str(s.ingest_port), "--log-level", "warning"],
    )  # fmt: skip
    scorer = Scorer(s, tmp_path, "scorer")
    feed = _child(s, tmp_path, "feed", [py, "-m", "alerts_web", "consume_scores"])
    explainer = _child(
        s, tmp_path, "explainer", [py, "-m", "readmit", "explainer", "--metrics-port", "0"]
    )
    url = f"http://127.0.0.1:{s.ingest_port}"
    try:
        wait_for(lambda: scorer.probe("/readyz")[0] == 200, 90, "scorer ready")
        with Readiness(url) as ready, ProbeLog(scorer) as scorer_probes:
            wait_for(lambda: bool(ready.samples) and ready.samples[-1][1] == 200, 60, "ingest")
            ehr = Ehr(url, bodies).start()
            wait_for(lambda: len(ehr.accepted_at) >= STOP_AFTER, 60, "first discharges in")
            # the scorer falls behind (stalled): discharges accepted now are only in the
            # broker when it dies and takes them along
            assert scorer.proc.proc is not None
            os.killpg(scorer.proc.proc.pid, signal.SIGSTOP)
            behind = len(ehr.accepted_at) + BEHIND
            wait_for(lambda: len(ehr.accepted_at) >= behind, 60, "discharges behind the scorer")
            broker.proc.stop()
            os.killpg(scorer.proc.proc.pid, signal.SIGCONT)
            stopped = time.monotonic()
            unscored_at_stop = [i for i in ehr.accepted_at if cache.latest(encounters[i]) is None]
            wait_for(lambda: time.monotonic() - stopped >= DOWN_S, DOWN_S + 1, "outage")
            broker.start()
            restarted = time.monotonic()
            ensure_topics(s)  # the deployment's topic job, for a cluster that came back empty
            ehr.join(RECOVERY_BOUND_S + 30)
            assert len(ehr.accepted_at) == INPUTS, "the EHR got every discharge accepted"
            wait_for(lambda: scored(cache, encounters) == INPUTS, RECOVERY_BOUND_S, "all scored")
            all_scored_s = time.monotonic() - restarted

            def alerting() -> list[str]:
                latest = [cache.latest(e) for e in encounters]
                return [ev.encounter_id for ev in latest if ev is not None and ev.alerting]

            wait_for(
                lambda: set(_alerts(own_postgres.url, alerting())) == set(alerting()),
                RECOVERY_BOUND_S,
                "every high-risk score has its alert",
            )
            alerts_s = time.monotonic() - restarted
            wait_for(
                lambda: not _alerts(own_postgres.url, alerting(), pending=True),
                RECOVERY_BOUND_S,
                "every high-risk alert with its factors",
            )
            wait_for(lambda: ready.samples[-1][1] == 200, 10, "ingest ready")
        high = alerting()
        rows_found = _alerts(own_postgres.url, high)
        not_ready_s = ready.first(503, stopped)
        ready_again_s = ready.first(200, restarted)
        accepted_during = sum(stopped <= t < restarted for t in ehr.accepted_at.values())
        report(
            "broker restart (empty) under load, ingest + scorer + alert feed",
            inputs=INPUTS,
            answered_2xx=len(ehr.accepted_at),
            accepted_before_stop=sum(t < stopped for t in ehr.accepted_at.values()),
            accepted_unscored_when_broker_died=len(unscored_at_stop),
            accepted_while_down=accepted_during,
            refused_and_resent=ehr.refused,
            lost=INPUTS - scored(cache, encounters),
            high_risk=len(high),
            alerts_lost=len(set(high) - set(rows_found)),
            duplicate_alerts=len(rows_found) - len(set(rows_found)),
            alerts_without_factors=len(_alerts(own_postgres.url, high, pending=True)),
            ingest_not_ready_after_stop_s=not_ready_s and round(not_ready_s, 2),
            ingest_ready_after_restart_s=ready_again_s and round(ready_again_s, 2),
            all_scored_after_restart_s=round(all_scored_s, 1),
            all_alerts_after_restart_s=round(alerts_s, 1),
            scorer=scorer_probes.summary(),
        )
        assert accepted_during == 0, "nothing is answered 2xx while the broker is gone"
        assert not_ready_s is not None
        assert not_ready_s <= READY_TRUTH_S
        assert ready_again_s is not None
        assert len(rows_found) == len(set(rows_found))
        assert unscored_at_stop, "the broker died holding accepted, unscored discharges"
        assert scorer.proc.alive, "recovered without restarts"
        assert feed.alive
        assert ingest.alive
        assert explainer.alive
    finally:
        for p in (feed, explainer, scorer.proc, ingest):
            p.stop()
