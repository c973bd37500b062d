"""Replaying dataset rows as FHIR discharges into the ingest API at a steady rate.

The demo feed of ``readmit up``, the load of the benchmark and the driver of the
end-to-end tests. Rows are replayed in encounter order so each patient's history
builds up the way it did in the data. A 503 (broker or Redis blinking) is retried
after its Retry-After, like a well-behaved EHR interface engine would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
)

from fhir_mappings import FHIR_JSON
from readmit_core.settings import Settings


@dataclass
class ReplayStats:
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    retried: int = 0
    unanswered: int = 0


def _bundles(path: Path, seed: int, limit: int | None) -> Iterator[dict[str, Any]]:
    from fhir_mappings.synth import iter_bundles

    yield from iter_bundles(path, seed=seed, limit=limit)


def _retry_after(connect_wait_s: float) -> Callable[[RetryCallState], float]:
    """The server's Retry-After on a 503 (capped at 30 s), else ``connect_wait_s``."""

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is None or outcome.failed:
            return connect_wait_s
        resp: httpx.Response = outcome.result()
        try:
            return min(30.0, max(0.0, float(resp.headers.get("Retry-After", "1"))))
        except ValueError:
            return 1.0

    return wait


def _give_up(state: RetryCallState) -> httpx.Response | None:
    """Every attempt failed: the last 503 answer, or None when ingest never answered."""
    outcome = state.outcome
    if outcome is None or outcome.failed:
        return None
    last: httpx.Response = outcome.result()
    return last


def post_bundle(
    client: httpx.Client, base_url: str, token: str, bundle: dict[str, Any], stats: ReplayStats,
    max_retries: int = 20, connect_wait_s: float = 1.0,
) -> httpx.Response | None:  # fmt: skip
    """POST one transaction Bundle, retrying a 503 after its Retry-After and a refused
    connection after a second; None when ingest never answered in ``max_retries`` tries."""
    body = orjson.dumps(bundle)
    headers = {"Content-Type": FHIR_JSON, "Authorization": f"Bearer {token}"}

    def counted(_: RetryCallState) -> None:
        stats.retried += 1

    retrying = Retrying(
        stop=stop_after_attempt(max_retries),
        wait=_retry_after(connect_wait_s),
        retry=retry_if_exception_type(httpx.TransportError)
        | retry_if_result(lambda r: r.status_code == 503),
        before_sleep=counted,
        retry_error_callback=_give_up,
    )
    answer: httpx.Response | None = retrying(
        client.post, f"{base_url}/fhir", content=body, headers=headers
    )
    return answer


def run_replay(
    settings: Settings,
    path: Path,
    rate: float,
    limit: int | None,
    seed: int,
    *,
    base_url: str | None = None,
    progress: bool = False,
    stop: threading.Event | None = None,
) -> ReplayStats:
    stats = ReplayStats()
    token = next(iter(sorted(settings.ingest_token_set)))
    url = base_url or settings.ingest_url
    interval = 1.0 / rate if rate > 0 else 0.0
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=limit, unit="bundle", desc="replay")
    next_at = time.monotonic()
    with httpx.Client(timeout=10) as client:
        for bundle in _bundles(path, seed, limit):
            if stop is not None and stop.is_set():
                break
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at = max(next_at + interval, time.monotonic() - 1.0)
            resp = post_bundle(client, url, token, bundle, stats)
            stats.sent += 1
            if resp is None:
                stats.unanswered += 1
            elif resp.status_code < 300:
                stats.accepted += 1
            else:
                stats.refused += 1
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return stats


def replay_in_background(
    settings: Settings, rate: float, stop: threading.Event
) -> threading.Thread:
    """The gentle demo replay of ``readmit up``; stops with the stack."""
    thread = threading.Thread(
        target=run_replay,
        args=(settings, settings.data_path, rate, None, 7),
        kwargs={"stop": stop},
        name="demo-replay",
        daemon=True,
    )
    thread.start()
    return thread
