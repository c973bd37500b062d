"""State faults, run as an outsider would: our own Redis, PostgreSQL and broker, killed.

* Redis flushed mid-stream: returning patients score exactly as with their history
  (it lives in PostgreSQL now), and ``readmit rescore`` refills the lost cached scores.
* Redis down and back empty: ingest keeps accepting, readiness says what is down,
  every input is scored after it returns.
* PostgreSQL down: ingest refuses with 503 (nothing published), the EHR's resends are
  accepted once it is back, without an ingest restart.
* The broker lost accepted events: the EHR's resend is published again, not refused.

Each asserts 0 lost, 0 duplicated, recovery within a bound, and what readiness said.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from fhir_mappings.mapper import map_document
from fhir_mappings.prior_visits import InMemoryHistory
from fhir_mappings.synth import synthesize_bundle
from ingest.app import create_app
from readmit.embedded.services import ManagedProcess, free_port, start_broker, start_redis
from readmit.embedded.stack import settings_env
from readmit_core.events import SCORED_TOPIC
from readmit_core.kafka_clients import ensure_topics
from readmit_core.score_cache import ScoreCache
from readmit_core.settings import PROJECT_ROOT, Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DATA = PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz"
TOKEN = "faults-ingest-token-for-tests"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}
RECOVERY_BOUND_S = 45.0


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``check`` held; fails the test after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# -- data: patients with two stays, in admission (encounter id) order -----------------------
@dataclass(frozen=True)
class Patient:
    first: dict[str, str]
    second: dict[str, str]


def returning_patients(n: int) -> list[Patient]:
    by_patient: dict[str, list[dict[str, str]]] = {}
    with gzip.open(DATA, "rt", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            by_patient.setdefault(row["patient_nbr"], []).append(row)
            if i > 20000:
                break
    out = []
    for rows in by_patient.values():
        if len(rows) >= 2:
            rows.sort(key=lambda r: int(r["encounter_id"]))
            out.append(Patient(rows[0], rows[1]))
        if len(out) == n:
            break
    assert len(out) == n
    return out


def bundle(row: dict[str, str]) -> bytes:
    return orjson.dumps(synthesize_bundle(row, seed=11))


# -- our own PostgreSQL cluster ------------------------------------------------------------
class OwnPostgres:
    """A throw-away cluster on a free port (initdb/pg_ctl; as user postgres when root)."""

    def __init__(self) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not bins:
            pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bin = bins[-1]
        self.port = free_port()
        self.data = Path(tempfile.mkdtemp(prefix="readmit-faults-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres")
        self._as_user("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust")
        self.start()

    def _as_user(self, tool: str, *args: str) -> None:
        argv = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.data}"
        )
        self._as_user("pg_ctl", "-D", str(self.data), "-o", opts, "-w", "-l", "/dev/null", "start")

    def stop(self) -> None:
        """As a crash would: immediate shutdown, connections cut."""
        self._as_user("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[OwnPostgres]:
    pg = OwnPostgres()
    yield pg
    pg.destroy()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[int, list[ManagedProcess]]]:
    port = free_port()
    procs = [start_redis(port, tmp_path / "redis.log")]
    yield port, procs
    for p in procs:
        p.stop()


@pytest.fixture
def settings(
    service_settings: Settings, own_postgres: OwnPostgres, own_redis: Any, tmp_path: Path
) -> Settings:
    prefix = f"f{uuid.uuid4().hex[:10]}."
    s = service_settings.model_copy(
        update={
            "topic_prefix": prefix,
            "scorer_group": f"{prefix}scorer",
            "redis_url": f"redis://127.0.0.1:{own_redis[0]}/0",
            "database_url": own_postgres.url,
            "state_dir": tmp_path,
            "ingest_tokens": TOKEN,
            "state_upkeep_interval_s": 0.5,  # the scorer notices a lost cache within a second
        }
    )
    ensure_topics(s)
    return s


class Scorer:
    def __init__(self, settings: Settings, log: Path) -> None:
        self.port = free_port()
        self.proc = ManagedProcess(
            "scorer",
            [sys.executable, "-m", "readmit", "scorer", "--metrics-port", str(self.port)],
            env=settings_env(settings),
            log_path=log,
            cwd=PROJECT_ROOT,
        ).start()

    def ready(self) -> dict[str, Any]:
        try:
            resp = httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2)
            return {"status": resp.status_code, **resp.json()}
        except httpx.HTTPError as exc:
            return {"status": None, "error": type(exc).__name__}


@pytest.fixture
def scorer(settings: Settings, tmp_path: Path) -> Iterator[Scorer]:
    s = Scorer(settings, tmp_path / "scorer.log")
    yield s
    s.proc.stop()


def cache_of(settings: Settings) -> ScoreCache:
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=1)
    return ScoreCache(client, settings.topic_prefix, settings.score_ttl_seconds)


def scored(cache: ScoreCache, encounters: list[str]) -> int:
    try:
        return sum(cache.latest(e) is not None for e in encounters)
    except redis.RedisError:
        return 0


def topic_inputs(settings: Settings, topic: str, timeout: float = 3.0) -> Counter[tuple[str, str]]:
    """(encounter_id, input_key) -> how many messages carry it on a topic (from the start)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        settings.topic(topic),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    out: Counter[tuple[str, str]] = Counter()
    idle_until = time.monotonic() + timeout
    try:
        while time.monotonic() < idle_until:
            polled = consumer.poll(timeout_ms=200)
            for batch in polled.values():
                for m in batch:
                    payload = orjson.loads(m.value)
                    out[(payload["encounter_id"], payload["input_key"])] += 1
                idle_until = time.monotonic() + 1.0
    finally:
        consumer.close()
    return out


def group_lag(settings: Settings) -> int:
    from readmit_core.events import FEATURES_TOPIC
    from scorer.lag import consumer_lag

    rows = consumer_lag(
        settings.kafka_bootstrap, settings.scorer_group, settings.topic(FEATURES_TOPIC)
    )
    return sum(r.lag for r in rows)


def scorer_consumed(settings: Settings) -> int:
    """Messages on ``features`` the scorer group has committed past."""
    from readmit_core.events import FEATURES_TOPIC
    from scorer.lag import consumer_lag

    rows = consumer_lag(
        settings.kafka_bootstrap, settings.scorer_group, settings.topic(FEATURES_TOPIC)
    )
    return sum(r.committed or 0 for r in rows)


def rescore(settings: Settings, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "readmit", "rescore", *args],
        env={**os.environ, **settings_env(settings)},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def post_all(client: TestClient, bodies: list[bytes]) -> list[int]:
    return [client.post("/fhir", content=b, headers=HEADERS).status_code for b in bodies]


def report(name: str, **numbers: Any) -> None:
    """Measured numbers in the test output (-s) for the closing note of the issue."""
    print(f"\n[fault] {name}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()))


# -- the faults ----------------------------------------------------------------------------
def test_redis_flush_mid_stream_changes_no_later_score(
    settings: Settings, scorer: Scorer, own_redis: Any
) -> None:
    from model_store.registry import Registry

    patients = returning_patients(30)
    firsts = [p.first["encounter_id"] for p in patients]
    seconds = [p.second["encounter_id"] for p in patients]
    cache = cache_of(settings)
    with TestClient(create_app(settings)) as client:
        assert set(post_all(client, [bundle(p.first) for p in patients])) == {200}
        wait_for(lambda: scored(cache, firsts) == 30, 60, "first stays scored")
        before = {e: cache.latest(e) for e in firsts}
        wards = {ev.ward for ev in before.values() if ev is not None}
        lists_before = {w: cache.ward_high_risk(w) for w in wards}
        redis.Redis.from_url(settings.redis_url).flushall()
        flushed_at = time.monotonic()
        ready_after_flush = client.get("/readyz").json()
        assert set(post_all(client, [bundle(p.second) for p in patients])) == {200}
        wait_for(lambda: scored(cache, seconds) == 30, 60, "returning stays scored")
        # no command: the scorer sees the cache's generation marker gone and refills it
        wait_for(lambda: scored(cache, firsts) == 30, RECOVERY_BOUND_S, "automatic refill")
        refill_s = time.monotonic() - flushed_at
    after_refill = {e: cache.latest(e) for e in firsts}
    for e in firsts:
        assert after_refill[e] is not None
        assert before[e] is not None
        # the same input scored again; a refill batch is composed differently, and the
        # float sums of a differently sized batch may differ in the last bit
        assert after_refill[e].probability == pytest.approx(before[e].probability, abs=1e-12), e
        assert after_refill[e].input_key == before[e].input_key, e
    first_set = set(firsts)
    lists_after = {w: [(e, p) for e, p in cache.ward_high_risk(w) if e in first_set] for w in wards}
    assert lists_after == lists_before
    # the features of the returning stays are exactly those mapped with full history
    history = InMemoryHistory()
    expected, without = {}, {}
    for p in patients:
        for m in map_document(bundle(p.first), history=history):
            history.remember(m)
        expected[p.second["encounter_id"]] = map_document(bundle(p.second), history=history)[0]
        without[p.second["encounter_id"]] = map_document(bundle(p.second))[0]
    model = Registry(settings.model_dir).load_champion()
    want = dict(zip(seconds, model.score([expected[e].record for e in seconds]), strict=True))
    bare = dict(zip(seconds, model.score([without[e].record for e in seconds]), strict=True))
    got = {e: cache.latest(e) for e in seconds}
    for e in seconds:
        assert got[e] is not None
        assert got[e].probability == pytest.approx(want[e].probability, abs=1e-9), e
    biggest = max(seconds, key=lambda e: abs(want[e].probability - bare[e].probability))
    history_mattered = sum(abs(want[e].probability - bare[e].probability) > 1e-6 for e in seconds)
    assert history_mattered > 0  # without the durable history these scores would differ
    assert refill_s < RECOVERY_BOUND_S
    # a rescore now finds every score current: nothing is scored again
    wait_for(lambda: group_lag(settings) == 0, 30, "scorer caught up")
    scored_before = topic_inputs(settings, SCORED_TOPIC)
    assert "60 encounters to rescore" in rescore(settings, "--since", "10m")
    wait_for(lambda: group_lag(settings) == 0, 30, "rescore drained")
    scored_after = topic_inputs(settings, SCORED_TOPIC)
    assert scored_after == scored_before
    assert sorted(k[0] for k in scored_after if scored_after[k] == 1) == sorted(seconds)
    # flushed + refilled: each first stay scored twice, one alert each (same model, same input)
    assert sorted(k[0] for k in scored_after if scored_after[k] == 2) == sorted(firsts)
    lost = 60 - scored(cache, firsts + seconds)
    assert lost == 0
    # --force scores every selected encounter again (new model, fixed bug)
    rescore(settings, "--since", "10m", "--force")
    wait_for(
        lambda: (
            sum(topic_inputs(settings, SCORED_TOPIC, 1.0).values())
            == sum(scored_after.values()) + 60
        ),
        60,
        "forced rescore",
    )
    wait_for(lambda: scored(cache, firsts + seconds) == 60, 30, "forced scores cached")
    report(
        "redis flush mid-stream",
        inputs=60,
        lost=lost,
        duplicated=sum(c > 2 for c in scored_after.values()),
        scored_again_by_rescore_while_cached=sum(scored_after.values())
        - sum(scored_before.values()),
        returning_scores_changed_by_history=history_mattered,
        largest_history_effect=(
            round(want[biggest].probability, 3),
            round(bare[biggest].probability, 3),
        ),
        max_abs_diff_vs_full_history=max(
            abs(got[e].probability - want[e].probability) for e in seconds
        ),
        refilled_scores_changed=sum(
            abs(after_refill[e].probability - before[e].probability) > 1e-12
            for e in firsts  # type: ignore[union-attr]
        ),
        ward_lists_restored=lists_after == lists_before,
        automatic_refill_after_flush_s=round(refill_s, 1),
        ingest_readyz_after_flush=ready_after_flush,
    )


def _ingest_ready(client: TestClient) -> dict[str, Any]:
    resp = client.get("/readyz")
    return {"status": resp.status_code, **resp.json()}


def test_redis_outage_loses_nothing_and_readiness_says_so(
    settings: Settings, scorer: Scorer, own_redis: Any, tmp_path: Path
) -> None:
    port, procs = own_redis
    patients = returning_patients(40)
    rows = [p.first for p in patients]
    encounters = [r["encounter_id"] for r in rows]
    cache = cache_of(settings)
    statuses: list[int] = []
    with TestClient(create_app(settings)) as client:
        wait_for(lambda: scorer.ready()["status"] == 200, 60, "scorer ready")
        statuses += post_all(client, [bundle(r) for r in rows[:10]])
        wait_for(lambda: scored(cache, encounters[:10]) == 10, 60, "first ten scored")
        procs[0].kill()  # Redis dies; it comes back empty (no persistence)
        down_at = time.monotonic()
        statuses += post_all(client, [bundle(r) for r in rows[10:30]])
        ingest_during = _ingest_ready(client)
        wait_for(lambda: scorer.ready()["status"] == 503, 10, "scorer not ready")
        scorer_during = scorer.ready()
        score_read = client.get(
            f"/scores/{encounters[0]}",
            headers={"Authorization": f"Bearer {settings.api_token.get_secret_value()}"},
        )
        while time.monotonic() - down_at < 5:
            time.sleep(0.1)
        procs.append(start_redis(port, tmp_path / "redis2.log"))
        back_at = time.monotonic()
        statuses += post_all(client, [bundle(r) for r in rows[30:]])
        new = encounters[10:]
        catch_up_s = wait_for(lambda: scored(cache, new) == 30, RECOVERY_BOUND_S, "caught up")
        scorer_after = wait_for(lambda: scorer.ready()["status"] == 200, 10, "scorer ready again")
        published_by_ingest = topic_inputs(settings, "features", 1.0)  # + the refill's
        # the ten scored before the outage were in the Redis that died: refill
        assert "40 encounters to rescore" in rescore(settings, "--since", "10m")
        wait_for(lambda: scored(cache, encounters) == 40, RECOVERY_BOUND_S, "refilled")
        recovered_s = time.monotonic() - back_at
        ingest_after = _ingest_ready(client)
    scored_topic = topic_inputs(settings, SCORED_TOPIC)
    assert set(statuses) == {200}  # ingest accepted throughout: it does not need Redis
    assert ingest_during["status"] == 200
    assert ingest_during["checks"]["redis"] is False
    assert scorer_during["checks"]["redis"] is False
    assert score_read.status_code == 503
    assert score_read.headers["Retry-After"]
    lost = 40 - scored(cache, encounters)
    assert lost == 0
    assert len(published_by_ingest) == 40
    # ingest published each input once; the scorers' refill of the Redis that came back
    # empty republished those whose cached score it lost (or that were still in flight)
    assert set(published_by_ingest.values()) <= {1, 2}
    scored_twice = sorted(k for k, c in scored_topic.items() if c > 1)
    # only the ten refilled by rescore may have been scored twice (their cache was lost)
    assert {k[0] for k in scored_twice} <= set(encounters[:10])
    assert recovered_s < RECOVERY_BOUND_S
    report(
        "redis outage 5 s, back empty",
        inputs=40,
        answered_2xx=statuses.count(200),
        lost=lost,
        scored_twice=len(scored_twice),
        republished_by_refill=sum(c - 1 for c in published_by_ingest.values()),
        catch_up_after_redis_back_s=round(catch_up_s, 1),
        all_40_cached_again_s=round(recovered_s, 1),
        scorer_ready_again_s=round(scorer_after, 1),
        ingest_readyz_during=ingest_during,
        scorer_readyz_during=scorer_during,
        ingest_scores_read_during=score_read.status_code,
        ingest_readyz_after=ingest_after,
    )


def test_postgres_outage_refuses_then_accepts_the_resends(
    settings: Settings, scorer: Scorer, own_postgres: OwnPostgres
) -> None:
    rows = [p.first for p in returning_patients(70)[40:70]]
    encounters = [r["encounter_id"] for r in rows]
    cache = cache_of(settings)
    bodies = [bundle(r) for r in rows]
    with TestClient(create_app(settings)) as client:
        assert set(post_all(client, bodies[:10])) == {200}
        own_postgres.stop()
        down_at = time.monotonic()
        refused = client.post("/fhir", content=bodies[10], headers=HEADERS)
        ingest_during = _ingest_ready(client)
        published_during = sum(topic_inputs(settings, "features", 1.0).values())
        pending = list(range(10, 30))
        accepted_at: dict[int, float] = {}
        restarted_at: list[float] = []

        def restart_later() -> None:
            while time.monotonic() - down_at < 4:
                time.sleep(0.1)
            own_postgres.start()
            restarted_at.append(time.monotonic())

        starter = threading.Thread(target=restart_later)
        starter.start()
        # the EHR resends every refused message until it is accepted
        deadline = time.monotonic() + RECOVERY_BOUND_S + 10
        attempts = 0
        while pending and time.monotonic() < deadline:
            for i in list(pending):
                attempts += 1
                resp = client.post("/fhir", content=bodies[i], headers=HEADERS)
                if resp.status_code == 200:
                    pending.remove(i)
                    accepted_at[i] = time.monotonic()
                else:
                    assert resp.status_code == 503
                    assert resp.headers["Retry-After"]
            time.sleep(0.2)
        starter.join()
        ingest_after = _ingest_ready(client)
        assert not pending
        wait_for(lambda: scored(cache, encounters) == 30, RECOVERY_BOUND_S, "all scored")
    assert refused.status_code == 503
    assert refused.json()["resourceType"] == "OperationOutcome"
    assert ingest_during["status"] == 503
    assert ingest_during["checks"]["database"] is False
    assert published_during == 10  # nothing refused reached Kafka
    features = topic_inputs(settings, "features", 1.0)
    duplicated = sum(c - 1 for c in features.values())
    assert len(features) == 30
    scored_twice = sum(c > 1 for c in topic_inputs(settings, SCORED_TOPIC).values())
    recover_s = max(accepted_at.values()) - restarted_at[0]
    assert recover_s < RECOVERY_BOUND_S
    report(
        "postgresql outage ~4 s",
        inputs=30,
        lost=30 - scored(cache, encounters),
        published_twice=duplicated,
        scored_twice=scored_twice,
        resend_attempts=attempts,
        all_resends_accepted_after_pg_back_s=round(recover_s, 1),
        ingest_readyz_during=ingest_during,
        ingest_readyz_after=ingest_after,
    )


def test_resend_of_an_event_the_broker_lost_is_published_again(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    local = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{port}"})
    broker = start_broker(port, tmp_path / "broker.log")
    rows = [p.first for p in returning_patients(80)[70:80]]
    bodies = [bundle(r) for r in rows]
    try:
        ensure_topics(local)
        with TestClient(create_app(local)) as client:
            assert set(post_all(client, bodies)) == {200}
            assert len(topic_inputs(local, "features", 1.0)) == 10
            broker.kill()  # the memory broker restarts empty: 10 answered events are gone
            broker = start_broker(port, tmp_path / "broker2.log")
            ensure_topics(local)
            resent = wait_for(
                lambda: client.post("/fhir", content=bodies[0], headers=HEADERS).status_code == 200,
                RECOVERY_BOUND_S,
                "ingest back on the new broker",
            )
            answers = [client.post("/fhir", content=b, headers=HEADERS) for b in bodies[1:]]
            again = client.post("/fhir", content=bodies[0], headers=HEADERS)
        republished = topic_inputs(local, "features", 1.0)
    finally:
        broker.stop()
    assert all(a.status_code == 200 for a in answers)
    assert not any(
        (e["response"].get("outcome") or {}).get("issue", [{}])[0].get("code") == "duplicate"
        for a in answers
        for e in a.json()["entry"]
    )
    assert len(republished) == 10
    assert set(republished.values()) == {1}
    # while the broker holds it, the same resend is a duplicate again
    codes = [
        (e["response"].get("outcome") or {}).get("issue", [{}])[0].get("code")
        for e in again.json()["entry"]
    ]
    assert "duplicate" in codes
    report(
        "broker lost 10 accepted events",
        inputs=10,
        resent_and_published_again=len(republished),
        refused_as_duplicate=0,
        ingest_back_on_new_broker_s=round(resent, 1),
    )
