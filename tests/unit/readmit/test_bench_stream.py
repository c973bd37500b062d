"""`readmit bench stream`: its statistics and the JSON a dashboard reads (no timings)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from readmit.benchmarks import stream
from readmit_core.settings import Settings

DASHBOARD_KEYS = {
    "scorer_per_s", "e2e_p50_ms", "e2e_p99_ms", "ingest_per_s",
    "raw_consume_per_s", "raw_post_per_s", "ingest_vs_raw_post", "scorer_vs_raw_consume",
    "mapper_record_resources_per_s", "orjson_record_resources_per_s", "mapper_vs_orjson",
}  # fmt: skip
MEDIANS = ("ingest_per_s", "raw_post_per_s", "scorer_per_s", "raw_consume_per_s")


def test_summary_is_the_median_with_its_spread():
    got = stream.summary([30.0, 10.0, 20.0])
    assert got["median"] == 20.0
    assert (got["min"], got["max"]) == (10.0, 30.0)
    assert got["spread"] == pytest.approx((30 - 10) / 20)
    assert got["runs"] == [30.0, 10.0, 20.0]
    assert stream.summary([4.0, 6.0])["median"] == 5.0
    with pytest.raises(ValueError, match="at least one"):
        stream.summary([])


def test_ratio_agree_and_flatten():
    assert stream.ratio(3.0, 4.0) == 0.75
    assert math.isnan(stream.ratio(1.0, 0.0))
    assert stream.agree(100.0, 80.0)
    assert not stream.agree(100.0, 70.0)
    assert not stream.agree(0.0, 0.0)
    flat = stream.flatten("x_per_s", stream.summary([1.0, 2.0, 3.0]))
    assert flat["x_per_s"] == 2.0
    assert set(flat) == {"x_per_s", "x_per_s_min", "x_per_s_max", "x_per_s_spread", "x_per_s_runs"}


def test_percentile():
    values = list(range(1, 101))
    assert stream.percentile(values, 50) in (50, 51)
    assert stream.percentile(values, 99) == 99
    assert math.isnan(stream.percentile([], 50))


class _Offsets:
    def __init__(self, settings: Settings) -> None:
        pass

    def close(self) -> None:
        pass


class _Proc:
    def stop(self) -> None:
        pass


def _fake_phases(monkeypatch: pytest.MonkeyPatch, rates: dict[str, list[float]]) -> None:
    """Every phase that would need a server, with rates drawn from ``rates``."""
    workload = stream.Workload([b"{}"] * 400, [f"e{i}" for i in range(400)], [])
    monkeypatch.setattr(stream, "build_workload", lambda settings, count: workload)
    monkeypatch.setattr(stream, "CommittedOffsets", _Offsets)
    monkeypatch.setattr(stream, "echo_server", lambda settings: (_Proc(), "http://echo/fhir"))

    def saturate(
        url: str, bodies: Any, headers: Any, clients: int, min_seconds: float = 0
    ) -> float:
        key = "post" if "echo" in url else "ingest"
        return rates[key].pop(0) if min_seconds or key == "post" or len(bodies) > 60 else 1.0

    monkeypatch.setattr(stream, "saturate", saturate)
    monkeypatch.setattr(stream, "warm_scorers", lambda *a, **k: [1.0, 1.0])
    monkeypatch.setattr(
        stream, "scorer_runs", lambda s, ev, off, size, repeats, tag: rates[tag][:repeats]
    )
    monkeypatch.setattr(stream, "paced", lambda url, bodies, headers, rate: ([0.0, 1.0], 0))
    monkeypatch.setattr(stream, "collect_latencies", lambda *a, **k: [0.010, 0.030])
    monkeypatch.setattr(
        stream, "collect_factor_delays", lambda *a, **k: ([0.020, 0.050], [0.008, 0.021])
    )
    monkeypatch.setattr(stream.redis.Redis, "from_url", staticmethod(lambda url: None))
    monkeypatch.setattr(
        stream, "raw_kafka", lambda s, payloads, repeats: (rates["produce"], rates["consume"])
    )


def _run(monkeypatch: pytest.MonkeyPatch, two: bool) -> dict[str, Any]:
    rates = {
        "ingest": [150.0, 140.0, 160.0], "post": [800.0, 900.0, 850.0, 870.0],
        "one": [9000.0, 10000.0, 11000.0], "two": [17000.0, 18000.0, 19000.0],
        "produce": [20000.0, 21000.0, 22000.0], "consume": [60000.0, 50000.0, 70000.0],
    }  # fmt: skip
    _fake_phases(monkeypatch, rates)
    record = Path(stream.__file__).parents[2] / (
        "tests/fhir_corpus/synthea/293ee354-f8ad-4345-b10c-759fdfdcc082.json.gz"
    )
    added: list[bool] = []
    results = stream.run(
        Settings(),
        rate=2,
        duration=1,
        saturation_bundles=100,
        scorer_events=1000,
        clients=2,
        log=lambda _: None,
        repeats=3,
        add_scorer=(lambda: added.append(True)) if two else None,
        mapper_record=record,
    )
    assert added == ([True] if two else [])
    return results


def test_json_carries_every_dashboard_figure_with_its_spread(monkeypatch, tmp_path):
    results = _run(monkeypatch, two=False)
    assert results.keys() >= DASHBOARD_KEYS
    assert "two_scorer_ratio" not in results
    for name in MEDIANS:
        runs = results[f"{name}_runs"]
        assert len(runs) == 3
        assert results[f"{name}_min"] <= results[name] <= results[f"{name}_max"]
        assert results[name] == sorted(runs)[1]
    assert results["ingest_vs_raw_post"] == pytest.approx(
        results["ingest_per_s"] / results["raw_post_per_s"]
    )
    assert results["scorer_vs_raw_consume"] == pytest.approx(
        results["scorer_per_s"] / results["raw_consume_per_s"]
    )
    assert results["mapper_record_resources_per_s"] > 0
    assert results["mapper_vs_orjson"] < 1  # the mapper does more than parse
    assert results["e2e_p50_ms"] <= results["e2e_p99_ms"]
    assert (results["e2e_explained"], results["score_to_factors_max_ms"]) == (2, 21.0)
    assert results["score_to_factors_p50_ms"] <= results["score_to_factors_p99_ms"]
    printed = stream.write_outputs(results, Path("-"), tmp_path / "t.md")
    assert orjson.loads(printed).keys() == results.keys()
    assert "| ingest, bundles/s" in (tmp_path / "t.md").read_text()
    assert (
        "| score → factors p50 / p99 / max ms | 8.0 / 21.0 / 21.0"
        in (tmp_path / "t.md").read_text()
    )


def test_two_scorer_ratio_when_asked(monkeypatch):
    results = _run(monkeypatch, two=True)
    assert results["two_scorer_ratio"] == pytest.approx(
        results["two_scorers_per_s"] / results["scorer_per_s"]
    )
    assert len(results["two_scorers_per_s_runs"]) == 3
    assert "| 2 scorers" in stream.markdown(results)
