"""Scorer faults with two scorer processes: kill -9 and SIGTERM of one, mid-stream.

Each test counts inputs, lost, duplicated and the time until the survivor owns every
partition and every input is scored, and records what the survivor's /readyz and
/healthz said meanwhile (printed for the closing note with ``pytest -s``). An explainer
runs beside the scorers, as in every deployment (factors are not inline by default):
every score that needs factors must get them, whatever the scorers went through.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Self

import httpx
import orjson
import pytest
from stream_support import (
    ScorerProcesses,
    feature_events,
    lost_and_repeated,
    produce,
    read_topic,
    wait_for,
)

from readmit.embedded.services import ManagedProcess, free_port
from readmit.embedded.stack import settings_env
from readmit_core.events import FEATURES_TOPIC
from readmit_core.score_cache import ScoreCache
from readmit_core.settings import PROJECT_ROOT, Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

RECOVERY_BOUND_S = 45.0


class Scorer:
    """A real scorer process with its health port, and a log of what its probes said."""

    def __init__(self, settings: Settings, log_dir: Path, name: str) -> None:
        self.port = free_port()
        self.proc = ManagedProcess(
            name,
            [sys.executable, "-m", "readmit", "scorer", "--metrics-port", str(self.port)],
            env=settings_env(settings),
            log_path=log_dir / f"{name}.log",
            cwd=PROJECT_ROOT,
        ).start()

    def probe(self, path: str) -> tuple[int, dict]:
        try:
            r = httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=2)
            return r.status_code, r.json()
        except httpx.HTTPError:
            return 0, {}

    def owned(self) -> set[int]:
        status, body = self.probe("/readyz")
        return set(body.get("partitions", [])) if status else set()


class Sampler:
    """Records ``sample()`` every ``every_s`` in a background thread while in ``with``."""

    every_s = 0.25

    def __init__(self) -> None:
        self.samples: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> Any:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.sample())
            self._stop.wait(self.every_s)


class ProbeLog(Sampler):
    """Polls a scorer's /readyz and /healthz during a fault: (s since start, ready, alive,
    partitions owned)."""

    def __init__(self, scorer: Scorer) -> None:
        super().__init__()
        self.scorer = scorer
        self._start = time.monotonic()

    def sample(self) -> tuple[float, int, int, list[int]]:
        ready, body = self.scorer.probe("/readyz")
        alive, _ = self.scorer.probe("/healthz")
        return (time.monotonic() - self._start, ready, alive, body.get("partitions", []))

    def summary(self) -> str:
        ready = sum(1 for _, r, _, _ in self.samples if r == 200)
        alive = sum(1 for _, _, a, _ in self.samples if a == 200)
        n = len(self.samples)
        return f"/readyz 200 in {ready}/{n} samples, /healthz 200 in {alive}/{n}"


def _cache(settings: Settings) -> ScoreCache:
    import redis

    return ScoreCache(redis.Redis.from_url(settings.redis_url), settings.topic_prefix, 3600)


def _scored(cache: ScoreCache, events) -> int:
    return sum(cache.latest(e.encounter_id) is not None for e in events)


def _explained(cache: ScoreCache, events) -> int:
    """How many of the events' cached scores carry their factors (none pending)."""
    latest = [cache.latest(e.encounter_id) for e in events]
    return sum(s is not None and not s.factors_pending for s in latest)


def _one_of_two_scorers_dies(settings: Settings, tmp_path: Path, sig: int, tag: str) -> None:
    events = feature_events(3000, skip=20000, tag=tag)
    partitions = set(range(settings.topic_partitions))
    a, b = Scorer(settings, tmp_path, "scorer-a"), Scorer(settings, tmp_path, "scorer-b")
    explainer = ScorerProcesses(settings, tmp_path)
    explainer.start_explainer()
    cache = _cache(settings)
    try:
        wait_for(
            lambda: a.owned() | b.owned() == partitions and bool(a.owned()) and bool(b.owned()),
            60,
            "both scorers own partitions",
        )
        produce(settings, [(e.patient_id.encode(), e.to_bytes()) for e in events], FEATURES_TOPIC)
        wait_for(lambda: _scored(cache, events[::30]) > 10, 60, "scoring under way")
        with ProbeLog(b) as probes:
            assert a.proc.proc is not None
            os.killpg(a.proc.proc.pid, sig)
            killed_at = time.monotonic()
            wait_for(
                lambda: b.owned() == partitions, RECOVERY_BOUND_S, "survivor owns every partition"
            )
            owned_after = time.monotonic() - killed_at
            wait_for(
                lambda: _scored(cache, events) == len(events),
                RECOVERY_BOUND_S,
                "every input scored",
            )
            scored_after = time.monotonic() - killed_at
            wait_for(lambda: b.probe("/readyz")[0] == 200, 30, "survivor ready")
        wait_for(
            lambda: _explained(cache, events) == len(events),
            RECOVERY_BOUND_S,
            "every cached score with its factors",
        )
        wanted = {e.input_key for e in events}
        # a repeat on risk.scored is the killed scorer's in-flight batch (at-least-once);
        # the alert feed stores one alert per (encounter, model); the cache holds one score
        lost, repeats, unexplained = lost_and_repeated(settings, wanted, explained=True)
        dup_scores = sum(
            len([k for enc, k, _ in cache.patient_history(e.patient_id) if enc == e.encounter_id])
            != 1
            for e in events[::10]
        )
        print(
            f"\n{signal.Signals(sig).name} of 1 of 2 scorers: inputs {len(events)}, lost {lost}, "
            f"duplicated scores {dup_scores}, risk.scored repeats {repeats}, pending scores "
            f"never completed {unexplained}, partitions owned "
            f"again after {owned_after:.1f} s, all scored after {scored_after:.1f} s; survivor "
            f"{probes.summary()}"
        )
        assert lost == 0
        assert dup_scores == 0
        assert unexplained == 0, "every pending score on risk.scored got its factors"
        assert b.proc.alive
        assert all(alive == 200 for _, _, alive, _ in probes.samples), "survivor stayed alive"
        if sig == signal.SIGTERM:
            assert a.proc.proc.wait(timeout=20) == 0
            assert repeats == 0, "a graceful stop commits its batch: nothing is repeated"
    finally:
        a.proc.stop()
        b.proc.stop()
        explainer.stop_all()


def test_kill_minus_nine_of_one_of_two_scorers(stream_settings, tmp_path):
    _one_of_two_scorers_dies(stream_settings, tmp_path, signal.SIGKILL, "f9-")


def test_sigterm_of_one_of_two_scorers(stream_settings, tmp_path):
    _one_of_two_scorers_dies(stream_settings, tmp_path, signal.SIGTERM, "ft-")


def test_poison_events_go_to_the_dlq_with_a_reason(stream_settings, tmp_path):
    from readmit_core.events import DEAD_LETTER_TOPIC

    good = feature_events(300, skip=26000, tag="fp-")
    bad_age = orjson.loads(good[0].to_bytes())
    bad_age.update(encounter_id="fp-age", input_key="fp-age|v1")
    bad_age["record"].update(encounter_id="fp-age", age="[900-910)")
    bad_count = orjson.loads(good[1].to_bytes())
    bad_count.update(encounter_id="fp-count", input_key="fp-count|v1")
    bad_count["record"].update(encounter_id="fp-count", num_medications=-4)
    payloads = [(e.patient_id.encode(), e.to_bytes()) for e in good]
    payloads[100:100] = [(b"p", orjson.dumps(bad_age)), (b"p", orjson.dumps(bad_count))]
    payloads.insert(200, (b"p", b"\x00not an event"))
    scorer = Scorer(stream_settings, tmp_path, "scorer-p")
    cache = _cache(stream_settings)
    try:
        wait_for(lambda: scorer.probe("/readyz")[0] == 200, 60, "scorer ready")
        with ProbeLog(scorer) as probes:
            produce(stream_settings, payloads, FEATURES_TOPIC)
            wait_for(lambda: _scored(cache, good) == len(good), 60, "every good event scored")
            dead = read_topic(stream_settings, DEAD_LETTER_TOPIC, expect=3)
            wait_for(lambda: scorer.probe("/readyz")[0] == 200, 30, "scorer ready")
        reasons = sorted(orjson.loads(d)["reason"] for d in dead)
        print(
            f"\npoison: inputs {len(payloads)}, scored {_scored(cache, good)}/{len(good)}, "
            f"dlq {reasons}, unscored poison {cache.latest('fp-age') is None}; {probes.summary()}"
        )
        assert reasons == ["out_of_range", "undecodable", "unknown_category"]
        assert cache.latest("fp-age") is None
        assert cache.latest("fp-count") is None
        assert all(alive == 200 for _, _, alive, _ in probes.samples)
    finally:
        scorer.proc.stop()


def test_three_scorers_lose_one_to_kill_9_and_one_to_sigterm(stream_settings, tmp_path):
    """Two of three scorers go at once, mid-stream: the last owns every partition."""
    events = feature_events(1500, skip=23000, tag="f3-")
    partitions = set(range(stream_settings.topic_partitions))
    a, b, c = (Scorer(stream_settings, tmp_path, f"scorer-{n}") for n in "abc")
    cache = _cache(stream_settings)
    try:
        wait_for(
            lambda: (
                a.owned() | b.owned() | c.owned() == partitions
                and all(s.owned() for s in (a, b, c))
            ),
            60,
            "three scorers own partitions",
        )
        produce(
            stream_settings, [(e.patient_id.encode(), e.to_bytes()) for e in events], FEATURES_TOPIC
        )
        wait_for(lambda: _scored(cache, events[::30]) > 5, 60, "scoring under way")
        with ProbeLog(c) as probes:
            assert a.proc.proc is not None
            assert b.proc.proc is not None
            os.killpg(a.proc.proc.pid, signal.SIGKILL)
            os.killpg(b.proc.proc.pid, signal.SIGTERM)
            killed_at = time.monotonic()
            wait_for(lambda: c.owned() == partitions, RECOVERY_BOUND_S, "the last owns all")
            owned_after = time.monotonic() - killed_at
            wait_for(lambda: _scored(cache, events) == len(events), RECOVERY_BOUND_S, "all scored")
            scored_after = time.monotonic() - killed_at
            wait_for(lambda: c.probe("/readyz")[0] == 200, 30, "survivor ready")
        assert b.proc.proc.wait(timeout=20) == 0, "SIGTERM: a clean exit"
        dup_scores = sum(
            len([k for enc, k, _ in cache.patient_history(e.patient_id) if enc == e.encounter_id])
            != 1
            for e in events
        )
        lost = len(events) - _scored(cache, events)
        # truthful: ready only while owning partitions; never 200 with none owned
        ready_without = sum(1 for _, r, _, owned in probes.samples if r == 200 and not owned)
        print(
            f"\nkill -9 + SIGTERM of 2 of 3 scorers: inputs {len(events)}, lost {lost}, "
            f"duplicated scores {dup_scores}, all partitions owned by the last after "
            f"{owned_after:.1f} s, all scored after {scored_after:.1f} s; survivor "
            f"{probes.summary()}, ready without partitions {ready_without}"
        )
        assert lost == 0
        assert dup_scores == 0
        assert ready_without == 0
        assert all(alive == 200 for _, _, alive, _ in probes.samples), "survivor stayed alive"
    finally:
        for s in (a, b, c):
            s.proc.stop()
