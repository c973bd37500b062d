"""The whole system on one machine: broker, Redis, ingest, scorers, web, alert feed.

``readmit up``, the benchmark and the end-to-end tests all start the stack through
this class, so "works on my laptop" and "works in the tests" mean the same processes
with the same settings. Children get their configuration through READMIT_*
environment variables rendered from one ``Settings`` object, run in their own process
groups, and are stopped in reverse order; nothing outlives the parent.

Once up, the stack supervises its children: one that exits is logged and started again
after a doubling back-off, so one crashed scorer never takes the ward's alerts down with
it. Only Ctrl-C stops the stack — or a child that keeps failing right after it starts
(then restarting cannot help, and the error names it and its log).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from readmit.embedded.services import (
    ManagedProcess,
    port_open,
    start_broker,
    start_redis,
    wait_until,
)
from readmit_core.backoff import Backoff
from readmit_core.errors import ServiceUnavailable
from readmit_core.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

# A child that exits within this long of starting "failed at start"; this many such
# failures in a row stop the stack. A child that ran longer is simply restarted.
STARTUP_GRACE_S = 10.0
MAX_START_FAILURES = 5
RESTART_FIRST_S = 1.0
RESTART_BACKOFF_CAP_S = 30.0


def settings_env(settings: Settings) -> dict[str, str]:
    """READMIT_* variables that reproduce ``settings`` in a child process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"READMIT_{name.upper()}"] = str(value)
    return env


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def web_available() -> bool:
    """The web app is optional in the stack until its package is installed and complete."""
    return importlib.util.find_spec("alerts_web.asgi") is not None


@dataclass
class Supervised:
    """Restart bookkeeping of one child."""

    started_at: float = field(default_factory=time.monotonic)
    start_failures: int = 0
    restart_at: float | None = None
    restarts: int = 0
    backoff: Backoff = field(
        default_factory=lambda: Backoff(cap_s=RESTART_BACKOFF_CAP_S, first_s=RESTART_FIRST_S)
    )


@dataclass
class Stack:
    settings: Settings
    scorers: int = 1
    with_web: bool = True
    start_broker: bool = True
    log_dir: Path | None = None
    processes: list[ManagedProcess] = field(default_factory=list)
    web_credentials: str = ""
    # a program that logs in (``readmit bench stream``'s screen probe): seed_demo resets
    # the demo passwords and writes them here (0600); None: printed once, never on disk
    credentials_file: Path | None = None
    supervision: dict[str, Supervised] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.log_dir is None:
            self.log_dir = self.settings.state_dir / "logs"

    def _log(self, name: str) -> Path:
        assert self.log_dir is not None
        return self.log_dir / f"{name}.log"

    def _spawn(
        self, name: str, argv: list[str], extra_env: dict[str, str] | None = None
    ) -> ManagedProcess:
        proc = ManagedProcess(
            name,
            argv,
            env={**settings_env(self.settings), **(extra_env or {})},
            log_path=self._log(name),
            cwd=PROJECT_ROOT,
        ).start()
        self.processes.append(proc)
        return proc

    def start(self) -> Stack:
        try:
            self._start_infrastructure()
            self._ensure_model()
            self._start_apps()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_infrastructure(self) -> None:
        s = self.settings
        s.state_dir.mkdir(parents=True, exist_ok=True)
        if self.start_broker and s.embedded:
            if port_open("127.0.0.1", s.kafka_port):
                raise ServiceUnavailable(
                    "embedded Kafka",
                    f"port {s.kafka_port} is already in use (set READMIT_KAFKA_PORT)",
                )
            self.processes.append(start_broker(s.kafka_port, self._log("kafka")))
            s.kafka_bootstrap = f"127.0.0.1:{s.kafka_port}"
        if not redis_answers(s.redis_url):
            if not s.embedded:
                raise ServiceUnavailable("Redis", f"no answer at {s.redis_url}")
            self.processes.append(start_redis(s.redis_port, self._log("redis")))
            s.redis_url = f"redis://127.0.0.1:{s.redis_port}/0"
        from readmit_core.kafka_clients import ensure_topics

        ensure_topics(s)

    def _ensure_model(self) -> None:
        from model_store.train import ensure_champion

        ensure_champion(self.settings)

    def scorer_metrics_port(self, i: int) -> int:
        """Scorer ``i``'s /metrics port: from ``scorer_metrics_port`` up, past the ports
        the stack's other services listen on (9464 + 1 is the alert feed's default 9465:
        a second scorer took it and the feed lost its metrics); 0 when metrics are off."""
        s = self.settings
        if not s.scorer_metrics_port:
            return 0
        taken = {s.feed_metrics_port, s.explainer_metrics_port, s.ingest_port, s.web_port}
        taken |= {s.kafka_port, s.redis_port}
        port, found = s.scorer_metrics_port - 1, -1
        while found < i:
            port += 1
            found += port not in taken
        return port

    def _point_ops_at_scorers(self) -> None:
        """The ops page scrapes the scorers this stack starts, unless the operator named
        the URLs (READMIT_SCORER_METRICS_URLS): the default lists 9464 only, which is wrong
        for other ports and for more than one scorer."""
        s = self.settings
        if "scorer_metrics_urls" in s.model_fields_set or not s.scorer_metrics_port:
            return
        s.scorer_metrics_urls = ",".join(
            f"http://127.0.0.1:{self.scorer_metrics_port(i)}/metrics" for i in range(self.scorers)
        )

    def _start_apps(self) -> None:
        self._point_ops_at_scorers()
        self._start_ingest()
        for _ in range(self.scorers):
            self._spawn_scorer()
        if not self.settings.scorer_explain_inline:
            # READMIT_SCORER_EXPLAIN_INLINE=false: TreeSHAP off the scorers' path, in a stage
            self._spawn("explainer-0", [sys.executable, "-m", "readmit", "explainer"])
        if self.with_web and web_available():
            self._start_web()
        self.wait_ready()

    def _spawn_scorer(self) -> ManagedProcess:
        i = sum(p.name.startswith("scorer-") for p in self.processes)
        port = self.scorer_metrics_port(i)
        argv = [sys.executable, "-m", "readmit", "scorer", "--metrics-port", str(port)]
        return self._spawn(f"scorer-{i}", argv)

    def add_scorer(self) -> None:
        """One more scorer process in the running stack (``readmit bench stream
        --two-scorers``); it joins the consumer group and takes partitions."""
        self._spawn_scorer()
        self.scorers += 1

    def _start_ingest(self) -> None:
        """The ingest API as ``ingest_workers`` uvicorn worker processes (validation and
        mapping are CPU-bound: one process uses one core); their /metrics are summed
        through a prometheus_client multiprocess directory emptied at each start."""
        from ingest.metrics import MULTIPROC_ENV, prepare_multiprocess_dir

        s = self.settings
        metrics_dir = prepare_multiprocess_dir(s.state_dir / "ingest-metrics")
        self._spawn(
            "ingest",
            [
                sys.executable, "-m", "uvicorn", "--factory", "ingest.app:create_app",
                "--host", s.ingest_host, "--port", str(s.ingest_port),
                "--workers", str(s.ingest_workers),
                "--log-level", "warning", "--no-access-log",
            ],
            {MULTIPROC_ENV: str(metrics_dir)},
        )  # fmt: skip

    def _start_web(self) -> None:
        s = self.settings
        py = sys.executable
        self._manage(["migrate", "--noinput"])
        # seed_demo prints the demo password once: it goes to the console, never a log file
        seed = ["seed_demo"]
        if self.credentials_file is not None:
            seed += ["--reset-passwords", "--credentials-file", str(self.credentials_file)]
        self.web_credentials = self._manage(seed)
        self._spawn(
            "web",
            [
                py,
                "-m",
                "daphne",
                "-b",
                s.web_host,
                "-p",
                str(s.web_port),
                "--access-log",  # request paths carry encounter/patient ids: no access log
                "/dev/null",
                "alerts_web.asgi:application",
            ],
        )
        self._spawn("alerts-consumer", [py, "-m", "alerts_web", "consume_scores"])

    def _manage(self, args: list[str]) -> str:
        """Run a Django management command to completion; its output, or a clear error."""
        done = subprocess.run(
            [sys.executable, "-m", "alerts_web", *args],
            env={**os.environ, **settings_env(self.settings)},
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise ServiceUnavailable("web", f"`{args[0]}` failed: {' / '.join(tail)}")
        return done.stdout

    def wait_ready(self, timeout: float = 60.0) -> None:
        s = self.settings

        def ingest_ready() -> bool:
            self._check_alive()
            try:
                return httpx.get(f"{s.ingest_url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ingest_ready, timeout, f"ingest API at {s.ingest_url}")
        if any(p.name == "web" for p in self.processes):
            wait_until(
                lambda: self._check_alive() or port_open(s.web_host, s.web_port),
                timeout,
                f"web app at {s.web_url}",
            )

    def _check_alive(self) -> bool:
        for p in self.processes:
            if not p.alive:
                raise ServiceUnavailable(p.name, f"exited early; see {self._log(p.name)}")
        return False

    def process(self, name: str) -> ManagedProcess:
        return next(p for p in self.processes if p.name == name)

    def supervise(self) -> None:
        """One round: restart children that exited (after their back-off); raise
        ServiceUnavailable when one keeps failing at start."""
        now = time.monotonic()
        for proc in self.processes:
            state = self.supervision.setdefault(proc.name, Supervised())
            if proc.alive:
                if state.start_failures and now - state.started_at > STARTUP_GRACE_S:
                    state.start_failures = 0
                    state.backoff.succeeded()
                continue
            if state.restart_at is None:
                self._schedule_restart(proc, state, now)
            elif now >= state.restart_at:
                proc.stop()  # closes its log file; the process is already gone
                proc.start()
                state.started_at, state.restart_at = time.monotonic(), None
                state.restarts += 1
                log.warning(
                    "child restarted", extra={"child": proc.name, "restarts": state.restarts}
                )

    def _schedule_restart(self, proc: ManagedProcess, state: Supervised, now: float) -> None:
        code = proc.proc.returncode if proc.proc is not None else None
        early = now - state.started_at < STARTUP_GRACE_S
        state.start_failures = state.start_failures + 1 if early else 0
        if not early:
            state.backoff.succeeded()
        if state.start_failures >= MAX_START_FAILURES:
            raise ServiceUnavailable(
                proc.name,
                f"exited {state.start_failures} times within {STARTUP_GRACE_S:.0f} s of "
                f"starting (last exit code {code}); see {self._log(proc.name)}",
            )
        delay = state.backoff.failed()
        state.restart_at = now + delay
        log.warning(
            "child exited; restarting",
            extra={"child": proc.name, "exit_code": code, "restart_in_s": round(delay, 2)},
        )

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_interrupt(stack: Stack, interval_s: float = 0.5) -> None:
    """Supervise the children until Ctrl-C / SIGTERM (or one keeps failing at start)."""
    try:
        while True:
            stack.supervise()
            time.sleep(interval_s)
    except KeyboardInterrupt:
        return
