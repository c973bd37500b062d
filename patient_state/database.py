"""Connections to the state database that survive a database restart.

One connection per thread (ingest serves requests from a thread pool); a connection
that failed is thrown away and the unit of work is run once more on a fresh one, so a
database restart costs the requests in flight at that moment a retry, not a process
restart. When the database stays away, callers get ``ServiceUnavailable`` (ingest
answers 503 + Retry-After and the EHR resends).

Statements are written once with ``%s`` placeholders (psycopg2's style) and translated
for SQLite, the embedded default; every unit of work is idempotent (upserts and
reads), which is what makes the retry safe.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg2

from readmit.errors import ReadmitError, ServiceUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Row = tuple[Any, ...]
CONNECT_TIMEOUT_S = 3
STATEMENT_TIMEOUT_MS = 5000
SQLITE_FILE = "patient_state.sqlite3"

# errors that mean "the connection or the server is gone", not "the statement is wrong"
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    sqlite3.OperationalError,
)


class UnsupportedStateDatabase(ReadmitError):
    """READMIT_DATABASE_URL names an engine the state store does not support."""

    def __init__(self, scheme: str) -> None:
        super().__init__(f"unsupported database scheme {scheme!r}; use postgresql:// or empty")
        self.scheme = scheme


class Cursor:
    """The few cursor operations the stores use, with one placeholder style."""

    def __init__(self, raw: Any, sqlite: bool) -> None:
        self._raw = raw
        self._sqlite = sqlite

    def _sql(self, sql: str) -> str:
        return sql.replace("%s", "?") if self._sqlite else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self._raw.execute(self._sql(sql), tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._raw.executemany(self._sql(sql), [tuple(r) for r in rows])

    @property
    def rowcount(self) -> int:
        return int(self._raw.rowcount)

    def fetchall(self) -> list[Row]:
        return [tuple(r) for r in self._raw.fetchall()]

    def fetchone(self) -> Row | None:
        row = self._raw.fetchone()
        return tuple(row) if row is not None else None


class StateDatabase:
    """PostgreSQL (production) or SQLite (embedded run) behind one small interface."""

    def __init__(self, url: str, state_dir: Path) -> None:
        self.url = url.strip()
        self.sqlite = not self.url
        if self.sqlite:
            state_dir.mkdir(parents=True, exist_ok=True)
            self._path = str(state_dir / SQLITE_FILE)
        else:
            scheme = urlsplit(self.url).scheme
            if scheme not in ("postgres", "postgresql"):
                raise UnsupportedStateDatabase(scheme)
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        """Where the data lives, without credentials (for logs and errors)."""
        if self.sqlite:
            return self._path
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or 5432}{parts.path}"

    def _connect(self) -> Any:
        if self.sqlite:
            conn = sqlite3.connect(
                self._path, timeout=5, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        else:
            conn = psycopg2.connect(
                self.url,
                connect_timeout=CONNECT_TIMEOUT_S,
                options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                application_name="readmit-patient-state",
            )
        with self._lock:
            self._all.append(conn)
        return conn

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or (not self.sqlite and conn.closed):
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _discard(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is None:
            return
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)
        try:
            conn.close()
        except Exception:
            log.debug("closing a failed state connection failed", exc_info=True)

    def _once(self, work: Callable[[Cursor], T], write: bool) -> T:
        conn = self._connection()
        raw = conn.cursor()
        try:
            if self.sqlite:
                # writers take SQLite's write lock up front (no upgrade deadlocks); readers
                # run beside them (WAL)
                raw.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            result = work(Cursor(raw, self.sqlite))
            conn.commit()
            return result
        except BaseException:
            try:
                conn.rollback()
            except Exception:
                log.debug("rollback failed", exc_info=True)
            raise
        finally:
            raw.close()

    def run(self, work: Callable[[Cursor], T], *, write: bool = True) -> T:
        """Run ``work`` in one transaction; retried once on a fresh connection.

        Raises ServiceUnavailable("database", ...) when the database does not answer.
        """
        for attempt in (1, 2):
            try:
                return self._once(work, write)
            except _CONNECTION_ERRORS as exc:
                self._discard()
                if attempt == 2:
                    raise ServiceUnavailable(
                        "database", f"{self.where}: {type(exc).__name__}"
                    ) from exc
                log.info("state database connection failed; reconnecting")
        raise AssertionError("unreachable")  # pragma: no cover

    def ping(self) -> bool:
        """True when the database answers a trivial query (readiness)."""
        try:
            return self.run(lambda cur: cur.execute("SELECT 1").fetchone(), write=False) == (1,)
        except ServiceUnavailable:
            return False

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except Exception:
                log.debug("close failed", exc_info=True)
        self._local = threading.local()
