"""The scorer's small HTTP side door: /metrics for Prometheus, /healthz and /readyz for probes.

A scorer has no API, but orchestrators still need the truth about it, so Kubernetes
restarts a wedged process and ops see why lag grows:

* alive (``/healthz``): its poll loop turned within ``STALL_AFTER_S``;
* ready (``/readyz``): alive, Redis and the broker answer, it is a member of the group
  that owns partitions (or the group has none to give it), and every partition it owns
  with a backlog had a commit within ``PROGRESS_WINDOW_S``.

The body names the failing check, the partitions owned and any stalled ones.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from scorer.consumer import ScorerWorker
from scorer.lag import LagMonitor

# Longer than the slowest healthy turn (a 500-event batch with a Redis retry: ~3 s),
# shorter than Kubernetes' patience; the group drops a member after max_poll_interval.
STALL_AFTER_S = 20.0
PROGRESS_WINDOW_S = 15.0


class HealthServer:
    def __init__(self, worker: ScorerWorker, monitor: LagMonitor, host: str, port: int) -> None:
        self.worker = worker
        self.monitor = monitor
        handler = self._handler()
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="health", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()

    def alive(self) -> bool:
        return time.monotonic() - self.worker.last_loop_at < STALL_AFTER_S

    def readiness(self) -> dict[str, object]:
        w, ownership = self.worker, self.worker.ownership
        owned = ownership.owned
        stalled = self.monitor.stalled(owned, ownership.changed_at, PROGRESS_WINDOW_S)
        checks = {
            "loop": self.alive(),
            "redis": w.cache.ping(),
            "kafka": self.monitor.fresh(),
            "partitions": ownership.member,
            "progress": not stalled,
        }
        return {
            "ready": all(checks.values()),
            "checks": checks,
            "partitions": sorted(tp.partition for tp in owned),
            "stalled": stalled,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
                elif self.path == "/healthz":
                    alive = server.alive()
                    self._send(200 if alive else 503, orjson.dumps({"alive": alive}))
                elif self.path == "/readyz":
                    body = server.readiness()
                    self._send(200 if body["ready"] else 503, orjson.dumps(body))
                else:
                    self._send(404, b'{"error": "not found"}')

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # probes every few seconds would drown the logs

        return Handler
