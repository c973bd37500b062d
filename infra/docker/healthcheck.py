"""Container health check of the readmit image: one script, the running role decides.

The entrypoint writes the role to $READMIT_STATE_DIR/role; Docker's HEALTHCHECK (and
`readmit-entrypoint health`) runs this as a separate process. Ports and hosts come
from readmit_core.settings, the one place they are defined, so a changed READMIT_*_PORT
moves the probe with the server. Exit 0 = healthy, 1 = unhealthy (Docker's contract).
"""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request

ROLE_FILE_NAME = "role"
TIMEOUT_S = 4.0


def http_ok(url: str, host_header: str | None = None) -> bool:
    """True when ``url`` answers below 500 (a login redirect or 401 still means alive)."""
    request = urllib.request.Request(url)  # noqa: S310 - fixed http://127.0.0.1 URLs
    if host_header:
        request.add_header("Host", host_header)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            return int(response.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (urllib.error.URLError, OSError):
        return False


def tcp_ok(address: str) -> bool:
    host, _, port = address.strip().rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=TIMEOUT_S):
            return True
    except (OSError, ValueError):
        return False


def check(role: str) -> bool:
    from readmit_core.settings import get_settings

    s = get_settings()
    if role == "ingest":
        return http_ok(f"http://127.0.0.1:{s.ingest_port}/healthz")
    if role == "scorer":
        # /healthz answers 503 when the poll loop is stuck (scorer/health.py)
        return http_ok(f"http://127.0.0.1:{s.scorer_metrics_port}/healthz")
    if role == "web":
        allowed = s.allowed_hosts
        host = allowed[0] if allowed and allowed[0] != "*" else "localhost"
        return http_ok(f"http://127.0.0.1:{s.web_port}/accounts/login/", host_header=host)
    if role == "explainer":
        # the scorer's probes on the explainer's port (scorer/explainer.py: run)
        return http_ok(f"http://127.0.0.1:{s.explainer_metrics_port}/healthz")
    if role == "alerts-consumer":
        # No port of its own: healthy while the broker it consumes from is reachable.
        return tcp_ok(s.kafka_servers[0])
    return True  # one-shot roles (migrate, train, readmit ...): exit status is the signal


def main() -> int:
    from readmit_core.settings import get_settings

    role_file = get_settings().state_dir / ROLE_FILE_NAME
    role = role_file.read_text().strip() if role_file.exists() else ""
    healthy = check(role)
    if not healthy:
        print(f"unhealthy: role {role or '(unknown)'}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
