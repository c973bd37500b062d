"""`readmit up`: everything starts, the URLs are printed, Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from readmit.embedded.services import free_port, port_open
from readmit_core.settings import PROJECT_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def up_environment(
    registry_root: Path, redis_url: str, tmp_path: Path, tag: str
) -> tuple[dict[str, int], dict[str, str]]:
    """Free ports and the environment of a `readmit up` that shares nothing with others."""
    ports = {name: free_port() for name in ("KAFKA", "INGEST", "WEB", "SCORER_METRICS")}
    env = {
        **os.environ,
        "READMIT_KAFKA_PORT": str(ports["KAFKA"]),
        "READMIT_INGEST_PORT": str(ports["INGEST"]),
        "READMIT_WEB_PORT": str(ports["WEB"]),
        "READMIT_SCORER_METRICS_PORT": str(ports["SCORER_METRICS"]),
        "READMIT_REDIS_URL": redis_url,
        "READMIT_MODEL_DIR": str(registry_root),
        "READMIT_STATE_DIR": str(tmp_path / "state"),
        "READMIT_DATABASE_URL": "",
        "READMIT_TOPIC_PREFIX": f"{tag}{ports['KAFKA']}.",
        "READMIT_SCORER_GROUP": f"{tag}-scorer-{ports['KAFKA']}",
    }
    return ports, env


def test_up_prints_urls_and_ctrl_c_stops_everything(
    registry_root: Path, redis_url: str, tmp_path: Path
):
    ports, env = up_environment(registry_root, redis_url, tmp_path, "up")
    proc = subprocess.Popen(
        [sys.executable, "-m", "readmit", "up", "--no-replay"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "demo accounts" in line or "logs:" in line:
                break
        text = "".join(lines)
        assert "readmit is up" in text, text
        assert f"http://127.0.0.1:{ports['WEB']}" in text
        assert f"http://127.0.0.1:{ports['INGEST']}/fhir" in text
        assert httpx.get(f"http://127.0.0.1:{ports['INGEST']}/readyz", timeout=5).status_code == 200
        login = httpx.get(f"http://127.0.0.1:{ports['WEB']}/accounts/login/", timeout=5)
        assert login.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    for name, port in ports.items():
        assert not port_open("127.0.0.1", port), f"{name} port {port} still open after Ctrl-C"
