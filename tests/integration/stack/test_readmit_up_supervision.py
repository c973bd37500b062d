"""`readmit up` supervises its children, measured through the real command.

kill -9 of a scorer child and of the ingest child: both are restarted (after the
back-off, logged) and the stack keeps serving — a POST is accepted and scored. Then the
ingest port is taken so every restart of ingest fails at start: the stack gives up,
names the child and exits non-zero with nothing left running.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import psutil
import pytest
from test_readmit_up import up_environment

from fhir_mappings.synth import read_rows, synthesize_bundle
from readmit.embedded.services import port_open
from readmit_core.settings import PROJECT_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]

DATA = PROJECT_ROOT / "data" / "diabetic_data_dev.csv.gz"


class Output:
    """The command's merged output, read in the background."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line)

    def count(self, *words: str) -> int:
        return sum(all(w in line for w in words) for line in self.lines)

    def text(self) -> str:
        return "".join(self.lines)


def _await(check, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _child(parent: int, *words: str) -> psutil.Process:
    for child in psutil.Process(parent).children():
        if all(w in " ".join(child.cmdline()) for w in words):
            return child
    raise AssertionError(f"no child running {words}")


def _get(url: str, **kw) -> int:
    try:
        return httpx.get(url, timeout=3, **kw).status_code
    except httpx.HTTPError:
        return 0


def test_up_restarts_crashed_children_and_gives_up_on_one_failing_at_start(
    registry_root: Path, redis_url: str, tmp_path: Path
) -> None:
    ports, env = up_environment(registry_root, redis_url, tmp_path, "sup")
    ingest = f"http://127.0.0.1:{ports['INGEST']}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "readmit", "up", "--no-replay", "--scorers", "2"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = Output(proc)
    blocker: socket.socket | None = None
    try:
        _await(lambda: out.count("readmit is up") > 0 or proc.poll() is not None, 300, "up")
        assert proc.poll() is None, out.text()
        scorer0 = _child(proc.pid, "readmit", "scorer", str(ports["SCORER_METRICS"]))
        os.killpg(scorer0.pid, signal.SIGKILL)
        os.killpg(_child(proc.pid, "uvicorn").pid, signal.SIGKILL)
        killed = time.monotonic()
        _await(
            lambda: (
                out.count("child restarted", '"scorer-0"')
                and out.count("child restarted", '"ingest"')
            ),
            60,
            "both children restarted",
        )
        _await(lambda: _get(f"{ingest}/readyz") == 200, 60, "ingest ready again")
        serving_s = time.monotonic() - killed
        row = next(iter(read_rows(DATA, limit=1)))
        posted = httpx.post(
            f"{ingest}/fhir",
            content=orjson.dumps(synthesize_bundle(row, seed=5)),
            headers={
                "Authorization": "Bearer dev-ingest-token",
                "Content-Type": "application/fhir+json",
            },
            timeout=30,
        )
        assert posted.status_code == 200, posted.text
        score_url = f"{ingest}/scores/{row['encounter_id']}"
        auth = {"Authorization": "Bearer dev-read-token"}
        _await(lambda: _get(score_url, headers=auth) == 200, 60, "the new discharge scored")
        scored_s = time.monotonic() - killed
        assert out.count("child exited; restarting", '"scorer-0"') == 1
        assert proc.poll() is None, "the stack kept running"

        # a child that cannot start (its port taken) stops the stack
        os.killpg(_child(proc.pid, "uvicorn").pid, signal.SIGKILL)
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _await(lambda: _bind(blocker, ports["INGEST"]), 10, "the ingest port for ourselves")
        blocker.listen()
        gave_up_s = _await(lambda: proc.poll() is not None, 120, "the stack to give up")
        text = out.text()
        gave_up = next(line.strip() for line in out.lines if line.startswith("error:"))
        print(
            f"\n[fault] readmit up supervision: scorer-0 and ingest kill -9 -> restarted and "
            f"serving after {serving_s:.1f} s, a new POST scored after {scored_s:.1f} s; "
            f"ingest port taken -> the stack stopped {gave_up_s:.1f} s later, exit code "
            f"{proc.returncode}: {gave_up}"
        )
        assert proc.returncode == 1, text
        assert "error: ingest: exited 5 times" in text, text
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        if blocker is not None:
            blocker.close()
    for name, port in ports.items():
        if name != "INGEST":
            assert not port_open("127.0.0.1", port), f"{name} port {port} still open"


def _bind(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True
