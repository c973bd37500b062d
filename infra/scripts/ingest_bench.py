"""Ingest throughput of source trees side by side, with server CPU per bundle (figures
in infra/OPERATIONS.md, "Ingest throughput").

    .venv/bin/python infra/scripts/ingest_bench.py /tmp/before,. 5 300
    .venv/bin/python infra/scripts/ingest_bench.py .+READMIT_INGEST_PRODUCER_LINGER_MS=2,. 3 300

A tree may carry ``+NAME=VALUE`` overrides of its child's environment (the same tree
with two settings side by side: the children otherwise get this process's settings).

Starts one broker (and Redis, unless one answers), then one ingest API per source tree
(``READMIT_INGEST_WORKERS`` uvicorn workers each, that tree on PYTHONPATH) and the raw
FastAPI POST baseline of ``readmit bench stream``; every repeat saturates each tree in
turn with the same number of distinct bundles from 8 clients (``stream.saturate``), then
the baseline. Reported per tree: bundles/s and the CPU seconds its processes (uvicorn
parent and workers, with their producer threads) spent per bundle, from /proc, medians
[min-max]. On a shared machine bundles/s swing with the neighbours' load; the CPU per
bundle, measured on the same bundles in the same minutes, is what separates two trees.
No scorer runs (no model needed). One JSON document on stdout.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

from fhir_mappings import FHIR_JSON
from ingest.metrics import MULTIPROC_ENV, prepare_multiprocess_dir
from readmit.benchmarks.stream import (
    MIN_RUN_S,
    build_workload,
    echo_server,
    saturate,
    summary,
)
from readmit.embedded.services import ManagedProcess, free_port, wait_until
from readmit.embedded.stack import Stack, settings_env
from readmit_core.settings import Settings, get_settings

CLIENTS = 8
WARM_BUNDLES = 60


def cpu_seconds(proc: ManagedProcess) -> float:
    """utime + stime of a process and its children (uvicorn's workers)."""
    assert proc.proc is not None
    pid = str(proc.proc.pid)
    children = subprocess.run(["pgrep", "-P", pid], capture_output=True, text=True).stdout
    ticks = 0
    for p in [pid, *children.split()]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_spec(spec: str) -> tuple[Path, dict[str, str]]:
    """``path+NAME=VALUE+...``: a source tree and the environment overrides of its API."""
    path, *pairs = spec.split("+")
    return Path(path).resolve(), dict(p.split("=", 1) for p in pairs)


def start_ingest(settings: Settings, spec: str, state_dir: Path) -> tuple[ManagedProcess, str]:
    """The ingest API of a tree spec on a port of its own, with its own SQLite state."""
    tree, overrides = tree_spec(spec)
    port = free_port()
    own = settings.model_copy(update={"ingest_port": port, "state_dir": state_dir})
    metrics_dir = prepare_multiprocess_dir(state_dir / "ingest-metrics")
    env = {
        **settings_env(own),
        MULTIPROC_ENV: str(metrics_dir),
        "PYTHONPATH": str(tree),
        **overrides,
    }
    proc = ManagedProcess(
        f"ingest-{tree.name}",
        [
            sys.executable, "-m", "uvicorn", "--factory", "ingest.app:create_app",
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(settings.ingest_workers),
            "--log-level", "warning", "--no-access-log",
        ],
        env=env,
        log_path=state_dir / "ingest.log",
        cwd=tree,
    ).start()  # fmt: skip

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 60, f"ingest API of {tree}")
    return proc, f"http://127.0.0.1:{port}/fhir"


def main(trees: list[str], repeats: int, bundles: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    settings = get_settings().model_copy(
        update={
            "topic_prefix": f"ingestbench{uuid.uuid4().hex[:6]}.",
            "kafka_port": free_port(),
            "state_dir": root,
            "database_url": "",
        }
    )
    stack = Stack(settings, scorers=0, with_web=False)
    stack._start_infrastructure()  # broker, Redis and topics only: no model, no scorer
    token = next(iter(sorted(settings.ingest_token_set)))
    headers = {"Content-Type": FHIR_JSON, "Authorization": f"Bearer {token}"}
    work = build_workload(settings, WARM_BUNDLES + bundles * repeats * len(trees))
    warm = work.bodies[:WARM_BUNDLES]
    servers: list[tuple[ManagedProcess, str]] = []
    rates: dict[str, list[float]] = {t: [] for t in trees}
    cpu: dict[str, list[float]] = {t: [] for t in trees}
    raw: list[float] = []
    try:
        for i, tree in enumerate(trees):
            servers.append(start_ingest(settings, tree, root / f"tree{i}"))
            saturate(servers[-1][1], warm, headers, CLIENTS)
        echo, echo_url = echo_server(settings)
        servers.append((echo, echo_url))
        saturate(echo_url, warm, headers, CLIENTS)
        at = WARM_BUNDLES
        for _ in range(repeats):
            for tree, (proc, url) in zip(trees, servers, strict=False):
                before = cpu_seconds(proc)
                rates[tree].append(saturate(url, work.bodies[at : at + bundles], headers, CLIENTS))
                cpu[tree].append(1000 * (cpu_seconds(proc) - before) / bundles)
                at += bundles
            raw.append(saturate(echo_url, warm, headers, CLIENTS, MIN_RUN_S))
    finally:
        for proc, _ in servers:
            proc.stop()
        stack.stop()
    post = summary(raw)
    return {
        "ingest_workers": settings.ingest_workers,
        "clients": CLIENTS,
        "bundles_per_run": bundles,
        "raw_post_per_s": post,
        "trees": {
            t: {
                "ingest_per_s": summary(rates[t]),
                "cpu_ms_per_bundle": summary(cpu[t]),
                "ingest_vs_raw_post": statistics.median(rates[t]) / post["median"],
            }
            for t in trees
        },
    }


if __name__ == "__main__":
    specs = sys.argv[1].split(",")
    n_repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    n_bundles = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    print(json.dumps(main(specs, n_repeats, n_bundles), indent=1))
