"""The scorer's small HTTP side door: /metrics for Prometheus, /healthz and /readyz for probes.

A scorer has no API, but orchestrators still need to know whether it is alive (its
loop turned recently) and ready (Redis answers and the broker handed it a group
membership), so Kubernetes restarts a wedged process and ops see why lag grows.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from scorer.consumer import ScorerWorker

STALL_AFTER_S = 30.0


class HealthServer:
    def __init__(self, worker: ScorerWorker, host: str, port: int) -> None:
        self.worker = worker
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

    def checks(self) -> dict[str, bool]:
        w = self.worker
        return {
            "loop": time.monotonic() - w.last_loop_at < STALL_AFTER_S,
            "redis": w.cache.ping(),
            "partitions": bool(w.consumer.assignment()),
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
                elif self.path == "/healthz":
                    alive = server.checks()["loop"]
                    self._send(200 if alive else 503, orjson.dumps({"alive": alive}))
                elif self.path == "/readyz":
                    checks = server.checks()
                    ready = all(checks.values())
                    body = orjson.dumps({"ready": ready, "checks": checks})
                    self._send(200 if ready else 503, body)
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
