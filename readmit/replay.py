"""Replaying dataset rows as FHIR discharges into the ingest API at a steady rate.

The demo feed of ``readmit up``, the load of the benchmark and the driver of the
end-to-end tests. Rows are replayed in encounter order so each patient's history
builds up the way it did in the data. A 503 (broker or Redis blinking) is retried
after its Retry-After, like a well-behaved EHR interface engine would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from fhir_mappings import FHIR_JSON
from readmit.settings import Settings


@dataclass
class ReplayStats:
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    retried: int = 0


def _bundles(path: Path, seed: int, limit: int | None) -> Iterator[dict[str, Any]]:
    from fhir_mappings.synth import iter_bundles

    yield from iter_bundles(path, seed=seed, limit=limit)


def post_bundle(
    client: httpx.Client, base_url: str, token: str, bundle: dict[str, Any], stats: ReplayStats,
    max_retries: int = 20,
) -> httpx.Response:  # fmt: skip
    """POST one transaction Bundle, honouring Retry-After on 503."""
    body = orjson.dumps(bundle)
    headers = {"Content-Type": FHIR_JSON, "Authorization": f"Bearer {token}"}
    for _ in range(max_retries):
        try:
            resp = client.post(f"{base_url}/fhir", content=body, headers=headers)
        except httpx.TransportError:
            stats.retried += 1
            time.sleep(1.0)
            continue
        if resp.status_code != 503:
            return resp
        stats.retried += 1
        time.sleep(float(resp.headers.get("Retry-After", "1")))
    return resp


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
            if resp.status_code < 300:
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
