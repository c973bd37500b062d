"""`readmit up` supervises its children: a crash is restarted, a start-up failure loop stops."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from readmit.embedded.services import ManagedProcess
from readmit.embedded.stack import MAX_START_FAILURES, Stack, Supervised
from readmit_core.backoff import Backoff
from readmit_core.errors import ServiceUnavailable
from readmit_core.settings import Settings


def _stack(tmp_path: Path, *argvs: tuple[str, list[str]]) -> Stack:
    stack = Stack(Settings(state_dir=tmp_path), log_dir=tmp_path)
    for name, argv in argvs:
        stack.processes.append(ManagedProcess(name, argv, log_path=tmp_path / name).start())
        # fast back-off so the test takes a fraction of a second
        stack.supervision[name] = Supervised(backoff=Backoff(cap_s=0.05, first_s=0.01))
    return stack


def _until(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def test_a_crashed_child_is_restarted_and_the_others_keep_running(tmp_path: Path) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    stack = _stack(tmp_path, ("scorer-0", sleeper), ("ingest", sleeper))
    try:
        scorer, ingest = stack.processes
        assert scorer.proc is not None
        assert ingest.proc is not None
        first_pid, ingest_pid = scorer.proc.pid, ingest.proc.pid
        os.kill(first_pid, signal.SIGKILL)
        scorer.proc.wait()

        def restarted() -> bool:
            stack.supervise()
            return scorer.alive and scorer.proc is not None and scorer.proc.pid != first_pid

        _until(restarted)
        assert stack.supervision["scorer-0"].restarts == 1
        assert ingest.alive
        assert ingest.proc.pid == ingest_pid
    finally:
        stack.stop()


def test_a_child_that_keeps_failing_at_start_stops_the_stack(tmp_path: Path) -> None:
    stack = _stack(tmp_path, ("web", [sys.executable, "-c", "raise SystemExit(3)"]))
    try:
        with pytest.raises(ServiceUnavailable) as raised:
            _until(lambda: stack.supervise() is not None)
        assert raised.value.service == "web"
        assert f"exited {MAX_START_FAILURES} times" in raised.value.detail
        assert "exit code 3" in raised.value.detail
        assert stack.supervision["web"].restarts == MAX_START_FAILURES - 1
    finally:
        stack.stop()
