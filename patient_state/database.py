"""Connections to the state database that survive a database restart.

A small pool (at most MAX_CONNECTIONS per process, shared by ingest's request
threads). When a connection fails, it and every idle one (a restarted server broke
them all) are thrown away and the unit of work runs once more on a fresh connection,
so a database restart costs the requests in flight at that moment a retry, not a
process restart. When the database stays away, callers get ``ServiceUnavailable`` (ingest
answers 503 + Retry-After and the EHR resends).

Statements are written once with ``%s`` placeholders (psycopg2's style) and translated
for SQLite, the embedded default; every unit of work is idempotent (upserts and
reads), which is what makes the retry safe.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg2

from readmit_core.errors import ReadmitError, ServiceUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Row = tuple[Any, ...]
CONNECT_TIMEOUT_S = 3
STATEMENT_TIMEOUT_MS = 5000
# per process: ingest's request thread pool is ~40 threads; several replicas must fit
# PostgreSQL's max_connections (100 by default)
MAX_CONNECTIONS = 8
POOL_WAIT_S = 5.0
# connections that only hold advisory locks (outside the pool: a lock holder goes on to
# use pooled connections, so holding one of those would starve the pool)
LOCK_CONNECTIONS = 4
LOCK_WAIT_S = 30.0
SQLITE_FILE = "patient_state.sqlite3"
LOCK_DIR = "patient_state.locks"
WRITE_LOCK_FILE = "patient_state.write.lock"

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
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._key_locks: dict[str, tuple[threading.Lock, int]] = {}
        self._lock_slots = threading.BoundedSemaphore(LOCK_CONNECTIONS)
        self._lock_idle: list[Any] = []
        self._writer = threading.Lock()  # SQLite: this process's writers queue here
        self._writer_file: Any = None

    @contextmanager
    def exclusive(self, keys: Sequence[str]) -> Iterator[None]:
        """Hold ``keys`` exclusively until the block ends: a read-modify-write that spans
        several transactions (and a broker publish between them) is then never
        interleaved with another one on the same keys.

        In this process a lock per key (taken in sorted order: no lock-order deadlock);
        across processes, with PostgreSQL a transaction-scoped advisory lock per key on a
        connection kept for locks (ingest replicas and workers serialise), with SQLite
        (the embedded run's several ingest workers on one machine) an ``fcntl`` lock on
        one small file per key. Raises ServiceUnavailable when a key stays held for
        LOCK_WAIT_S.
        """
        wanted = sorted(set(keys))
        with ExitStack() as held:
            for key in wanted:
                held.enter_context(self._key_lock(key))
            if wanted:
                held.enter_context(
                    self._file_locks(wanted) if self.sqlite else self._advisory(wanted)
                )
            yield

    @contextmanager
    def _file_locks(self, keys: Sequence[str]) -> Iterator[None]:
        folder = Path(self._path).with_name(LOCK_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        with ExitStack() as held:
            for key in keys:
                name = hashlib.sha256(key.encode()).hexdigest()[:32]
                handle = held.enter_context(open(folder / name, "a+b"))
                fcntl.flock(handle, fcntl.LOCK_EX)
                held.callback(fcntl.flock, handle, fcntl.LOCK_UN)
            yield

    @contextmanager
    def _key_lock(self, key: str) -> Iterator[None]:
        with self._lock:
            lock, users = self._key_locks.get(key, (threading.Lock(), 0))
            self._key_locks[key] = (lock, users + 1)
        try:
            if not lock.acquire(timeout=LOCK_WAIT_S):
                raise ServiceUnavailable("database", f"{key} busy for {LOCK_WAIT_S:g} s")
            try:
                yield
            finally:
                lock.release()
        finally:
            with self._lock:
                lock, users = self._key_locks[key]
                if users <= 1:
                    del self._key_locks[key]
                else:
                    self._key_locks[key] = (lock, users - 1)

    @contextmanager
    def _advisory(self, keys: Sequence[str]) -> Iterator[None]:
        if not self._lock_slots.acquire(timeout=LOCK_WAIT_S):
            raise ServiceUnavailable("database", f"all {LOCK_CONNECTIONS} lock connections busy")
        conn = None
        broken = True
        try:
            with self._lock:
                conn = self._lock_idle.pop() if self._lock_idle else None
            if conn is None or conn.closed:
                conn = self._connect()
            with conn.cursor() as cur:
                for key in keys:
                    digest = hashlib.sha256(key.encode()).digest()[:8]
                    cur.execute(
                        "SELECT pg_advisory_xact_lock(%s)",
                        (int.from_bytes(digest, "big", signed=True),),
                    )
            broken = False
            yield
        except _CONNECTION_ERRORS as exc:
            raise ServiceUnavailable("database", f"{self.where}: {type(exc).__name__}") from exc
        finally:
            try:
                if conn is not None:
                    if broken:
                        conn.close()
                    else:
                        conn.rollback()  # ends the transaction: releases the locks
                        with self._lock:
                            self._lock_idle.append(conn)
            except Exception:
                log.debug("releasing state locks failed", exc_info=True)
            finally:
                self._lock_slots.release()

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
        return conn

    def _checkout(self) -> Any:
        """An idle connection (or a new one); waits while MAX_CONNECTIONS are in use."""
        if not self._slots.acquire(timeout=POOL_WAIT_S):
            raise ServiceUnavailable("database", f"all {MAX_CONNECTIONS} connections busy")
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None or (not self.sqlite and conn.closed):
                conn = self._connect()
            return conn
        except BaseException:
            self._slots.release()
            raise

    def _checkin(self, conn: Any, broken: bool) -> None:
        try:
            if broken:
                try:
                    conn.close()
                except Exception:
                    log.debug("closing a failed state connection failed", exc_info=True)
            else:
                with self._lock:
                    self._idle.append(conn)
        finally:
            self._slots.release()

    def _once(self, work: Callable[[Cursor], T], write: bool) -> T:
        conn = self._checkout()
        broken = True
        try:
            result = self._transaction(conn, work, write)
            broken = False
            return result
        except _CONNECTION_ERRORS:
            raise
        except BaseException:
            broken = False  # the statement failed, the connection is fine (rolled back)
            raise
        finally:
            self._checkin(conn, broken)

    @contextmanager
    def _sqlite_writer(self) -> Iterator[None]:
        """SQLite's one writer at a time, queued in the kernel instead of in SQLite's busy
        handler: that one polls with sleeps of up to 100 ms, so with two ingest workers
        and their request threads a write waited for a lock long since free (14 % of a
        saturated worker's samples sat in ``BEGIN IMMEDIATE``). A thread lock orders this
        process's writers, an ``flock`` on one file the embedded run's processes; the busy
        timeout still covers a writer that takes neither (a CLI, a migration)."""
        if not self._writer.acquire(timeout=LOCK_WAIT_S):
            raise ServiceUnavailable("database", f"SQLite writer busy for {LOCK_WAIT_S:g} s")
        try:
            if self._writer_file is None:
                self._writer_file = open(Path(self._path).with_name(WRITE_LOCK_FILE), "a+b")  # noqa: SIM115 - held for the process's life
            fcntl.flock(self._writer_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._writer_file, fcntl.LOCK_UN)
        finally:
            self._writer.release()

    def _transaction(self, conn: Any, work: Callable[[Cursor], T], write: bool) -> T:
        if self.sqlite and write:
            with self._sqlite_writer():
                return self._transact(conn, work, write)
        return self._transact(conn, work, write)

    def _transact(self, conn: Any, work: Callable[[Cursor], T], write: bool) -> T:
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
                self.close()  # idle connections to a restarted server are dead too
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
        """Close the idle connections (those in use are closed when checked in broken)."""
        with self._lock:
            conns, self._idle = self._idle, []
            conns += self._lock_idle
            self._lock_idle = []
        for conn in conns:
            try:
                conn.close()
            except Exception:
                log.debug("close failed", exc_info=True)
        with self._writer:
            if self._writer_file is not None:
                self._writer_file.close()
                self._writer_file = None
