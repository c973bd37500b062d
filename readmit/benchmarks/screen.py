"""POST → the nurse's screen: when an alert, and then its factors, reach the worklist socket.

Redis holding a score is not what a nurse sees: the alert feed reads ``risk.scored``,
stores the alert and pushes it over the ward's WebSocket, and with the explanation stage
the factors follow in a second push. This probe holds the planners' worklist socket the
way the page does (logged in through the login form, session cookie, same-origin
handshake) and records, per encounter, when the first alert push arrived and when the
first push without ``factors_pending`` arrived. Only high-band scores raise alerts, so
the figures cover those encounters (their count is reported next to them).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any, Final

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from readmit_core.errors import ReadmitError

LOGIN_PATH: Final = "/accounts/login/"
SOCKET_PATH: Final = "/ws/worklist/"
CSRF_FIELD: Final = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
RECV_TIMEOUT_S: Final = 0.2


def _epoch(iso: Any) -> float:
    """An ISO time of the alert's JSON as epoch seconds (NaN when absent)."""
    try:
        return datetime.fromisoformat(str(iso)).timestamp()
    except ValueError:
        return float("nan")


class ScreenLoginFailed(ReadmitError):
    """The benchmark's account could not log in (wrong credentials, lockout, no web)."""

    status = 401
    issue_code = "security"


def session_cookies(web_url: str, username: str, password: str) -> dict[str, str]:
    """Log in through the login form, as a browser does; the session's cookies."""
    with httpx.Client(base_url=web_url, timeout=30, follow_redirects=False) as client:
        page = client.get(LOGIN_PATH)
        token = CSRF_FIELD.search(page.content)
        if token is None:
            raise ScreenLoginFailed(f"no login form at {LOGIN_PATH} ({page.status_code})")
        done = client.post(
            LOGIN_PATH,
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": token.group(1).decode(),
            },
            headers={"Referer": f"{web_url}{LOGIN_PATH}"},
        )
        if done.status_code != 302 or "sessionid" not in client.cookies:
            raise ScreenLoginFailed(f"login answered {done.status_code}")
        return dict(client.cookies.items())


@dataclass
class ScreenProbe:
    """The planners' worklist socket in a thread; arrival times of pushes per encounter."""

    web_url: str
    cookies: dict[str, str]
    alert_at: dict[str, float] = field(default_factory=dict)
    explained_at: dict[str, float] = field(default_factory=dict)
    closed_with: int | None = None
    last_push_at: float = 0.0
    # per encounter, of its first alert push: (score computed, alert stored, pushed) epoch s
    stages: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, timeout_s: float = 30.0) -> ScreenProbe:
        """Connect, read the snapshot, then listen; returns once the snapshot arrived."""
        socket = connect(
            self.web_url.replace("http", "ws", 1) + SOCKET_PATH,
            origin=Origin(self.web_url),
            additional_headers={"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())},
            compression=None,
            open_timeout=timeout_s,
            legacy=True,  # the connection itself, not a reconnecting iterator
        )
        first = json.loads(socket.recv(timeout=timeout_s))
        if first.get("type") != "snapshot":
            socket.close()
            raise ScreenLoginFailed(f"the socket opened with {first.get('type')!r}, not a snapshot")
        self._thread = threading.Thread(target=self._listen, args=(socket,), daemon=True)
        self._thread.start()
        return self

    def _listen(self, socket: ClientConnection) -> None:
        with socket:
            while not self._stop.is_set():
                try:
                    raw = socket.recv(timeout=RECV_TIMEOUT_S)
                except TimeoutError:
                    continue
                except ConnectionClosed as exc:
                    self.closed_with = exc.rcvd.code if exc.rcvd else -1
                    return
                self._note(json.loads(raw), time.time())

    def _note(self, message: dict[str, Any], now: float) -> None:
        alert = message.get("alert")
        if not isinstance(alert, dict) or "encounter_id" not in alert:
            return
        self.last_push_at = now
        enc = str(alert["encounter_id"])
        if enc not in self.alert_at:
            self.alert_at[enc] = now
            self.stages[enc] = (
                _epoch(alert.get("computed_at")),
                _epoch(alert.get("updated_at")),
                _epoch(message.get("server_time")),
            )
        if not alert.get("factors_pending"):
            self.explained_at.setdefault(enc, now)

    def wait_for(self, ids: Sequence[str], timeout_s: float) -> None:
        """Until no alert among ``ids`` waits for its factors and no push came for a second
        (an alert still in the feed would have shown by then), or the timeout."""
        wanted = set(ids)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.closed_with is None:
            alerted = wanted & self.alert_at.keys()
            waiting = any(e not in self.explained_at for e in alerted)
            if not waiting and time.time() - self.last_push_at >= 1.0:
                return
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def latencies_ms(
        self, ids: Sequence[str], sent_at: Sequence[float]
    ) -> tuple[list[float], list[float]]:
        """Milliseconds POST → alert on screen, and POST → its factors on screen."""
        shown = [
            (self.alert_at[e] - s) * 1000
            for e, s in zip(ids, sent_at, strict=True)
            if e in self.alert_at
        ]
        explained = [
            (self.explained_at[e] - s) * 1000
            for e, s in zip(ids, sent_at, strict=True)
            if e in self.explained_at
        ]
        return shown, explained

    def hops_ms(self, ids: Sequence[str], sent_at: Sequence[float]) -> dict[str, list[float]]:
        """Each hop of the first alert push, in ms: POST → scored (ingest, Kafka, scorer),
        scored → stored (risk.scored, the feed's poll and transaction), stored → pushed
        (channel layer, the socket's session and ward checks), pushed → received."""
        hops: dict[str, list[float]] = {"scored": [], "stored": [], "pushed": [], "received": []}
        for enc, sent in zip(ids, sent_at, strict=True):
            if enc not in self.stages:
                continue
            computed, stored, pushed = self.stages[enc]
            marks = (sent, computed, stored, pushed, self.alert_at[enc])
            if any(math.isnan(m) for m in marks):
                continue  # a push without its times: no hop figures (not NaN percentiles)
            for name, (a, b) in zip(hops, pairwise(marks), strict=True):
                hops[name].append((b - a) * 1000)
        return hops
