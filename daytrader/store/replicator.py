"""Drains the journal's outbox to Supabase, off the trading path, and says how it is going.

Records go in journal order, in windows of up to `batch_size`: each window is sent as one upsert
per table (keyed by the table's natural id, `on_conflict` always given) and marked sent only after
every part of it succeeded, so a record sent twice is still one row and none is skipped.
Transport errors, 5xx and 429 are retried with exponential backoff and full jitter; a permanent
error is either a configuration problem (bad key, a key without write permission, a missing
table: replication stops and says which) or a problem with a record (it is set aside with its
error, the rest go on).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from daytrader.models import Health
from daytrader.store.journal import connect
from daytrader.store.schema import TABLES

log = logging.getLogger(__name__)

HEALTHY, LAGGING, FAILING = "healthy", "lagging", "failing"


@dataclass(frozen=True, slots=True)
class ReplicationStatus:
    state: str  # healthy / lagging / failing
    backlog: int  # records not yet sent
    oldest_age: float  # seconds since the oldest unsent record was written
    sent: int  # records sent by this replicator
    rejected: int  # records set aside after a permanent error
    last_error: str = ""
    stopped: bool = False  # a configuration error stopped replication
    last_rejection: str = ""  # why the last record set aside was refused

    @property
    def detail(self) -> str:
        parts = [f"Supabase {self.state}"]
        if self.backlog:
            parts.append(f"backlog {self.backlog}, oldest {self.oldest_age:.0f}s")
        if self.rejected:
            parts.append(f"{self.rejected} records set aside (last: {self.last_rejection})")
        if self.last_error:
            parts.append(f"last error: {self.last_error}")
        if self.stopped:
            parts.append("replication stopped until the setting is fixed")
        return "; ".join(parts)

    def health(self) -> Health:
        # No time last seen, as for the journal alone: the state and the backlog's age say it.
        return Health("store", self.state != FAILING, self.detail)


class PermanentError(Exception):
    def __init__(self, message: str, *, config: bool) -> None:
        super().__init__(message)
        self.config = config


class TransientError(Exception):
    pass


_TRANSIENT_PREFIXES = ("PGRST00", "08", "53", "57", "58", "XX")


def _names_an_unknown_host(exc: BaseException) -> bool:
    """A connection that failed because the host name does not exist (a typo in SUPABASE_URL),
    as opposed to a network that is down for now."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, socket.gaierror) and seen.errno in (socket.EAI_NONAME,
                                                                   getattr(socket, "EAI_NODATA",
                                                                           socket.EAI_NONAME)):
            return True
        seen = seen.__cause__ or seen.__context__
    return "Name or service not known" in str(exc)


def classify(exc: Exception, table: str, status: int | None = None) -> Exception:
    """An exception from supabase-py as TransientError or PermanentError, with a message that
    names the problem and the setting to look at. `status` is the HTTP status of the answer
    (supabase-py's APIError does not carry it: the client's response hook records it)."""
    if isinstance(exc, httpx.TransportError):
        if _names_an_unknown_host(exc):
            return PermanentError(
                f"configuration error: the host of SUPABASE_URL does not exist ({exc}); "
                "expected the project URL, e.g. https://<project>.supabase.co", config=True)
        return TransientError(f"{type(exc).__name__}: {exc or 'no answer'}")
    code = str(getattr(exc, "code", "") or "")
    message = str(getattr(exc, "message", "") or exc)
    if status is None:
        status = _status_of(exc, code)
    # supabase-py puts the HTTP status in `code` when the answer was not PostgREST's JSON
    # (a proxy's error page, some other web server at SUPABASE_URL).
    not_postgrest = not code or (code.isdigit() and len(code) == 3)
    if (status == 429 or status >= 500 or code.startswith(_TRANSIENT_PREFIXES)
            or code in ("40001", "40P01")):
        return TransientError(f"HTTP {status} {code}: {message}".strip())
    if code == "42501":
        return PermanentError(
            f"configuration error: the key may not write {table} (HTTP {status} {code}: "
            f"{message}); replication needs SUPABASE_SERVICE_KEY (the service role key), not "
            "the anon key", config=True)
    if code in ("PGRST301", "PGRST300") or "api key" in message.lower() or status in (401, 403):
        return PermanentError(
            f"configuration error: Supabase refused the key (HTTP {status} {code}: {message}); "
            "check SUPABASE_SERVICE_KEY and SUPABASE_URL", config=True)
    if code in ("PGRST125", "PGRST117") or (status in (404, 405) and not_postgrest):
        return PermanentError(
            f"configuration error: SUPABASE_URL does not lead to Supabase's REST API (HTTP "
            f"{status} {code}: {message}); expected the project URL without a path, e.g. "
            "https://<project>.supabase.co (supabase-py adds /rest/v1)", config=True)
    if code in ("42P01", "PGRST205", "PGRST106") or status == 404:
        return PermanentError(
            f"configuration error: table {table} is missing (HTTP {status} {code}: {message}); "
            "run supabase_schema.sql in the Supabase SQL editor", config=True)
    if not_postgrest:
        return PermanentError(
            f"configuration error: SUPABASE_URL answered HTTP {status} ({message}), not as "
            "Supabase does; expected the project URL, e.g. https://<project>.supabase.co",
            config=True)
    return PermanentError(f"{table} record refused (HTTP {status} {code}: {message})",
                          config=False)


def _status_of(exc: Exception, code: str) -> int:
    """The HTTP status when no response was recorded: guessed from the error's code."""
    for attr in ("status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    if code.isdigit() and len(code) == 3:
        return int(code)  # supabase-py gives the status as the code for a non-JSON answer
    if code in ("23505", "23503"):
        return 409
    if code == "PGRST301":
        return 401
    return 400


@dataclass
class LastResponse:
    """The HTTP status of the client's latest answer, from an httpx response hook: what
    supabase-py's APIError leaves out, and what tells an outage from a bad record."""

    status: int | None = None

    def record(self, response: httpx.Response) -> None:
        self.status = response.status_code


def make_client(url: str, key: str, timeout: float = 10.0) -> Any:
    """A supabase-py client with explicit HTTP timeouts, its own blocking retries off, and the
    status of each answer kept in `client.last_response` (a LastResponse)."""
    from supabase import ClientOptions, create_client

    last = LastResponse()
    http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
                        event_hooks={"response": [last.record]})
    options = ClientOptions(httpx_client=http, postgrest_client_retry=False,
                            auto_refresh_token=False, persist_session=False)
    client = create_client(url, key, options=options)
    client.last_response = last
    return client


class Replicator:
    """One thread: reads the outbox with its own connection and upserts to Supabase."""

    def __init__(self, journal_path: str | Path, client: Any, *, batch_size: int = 500,
                 poll_interval: float = 0.2, backoff_base: float = 0.25, backoff_cap: float = 30.0,
                 lag_after: float = 5.0,
                 on_status: Callable[[ReplicationStatus], None] | None = None) -> None:
        self.path = Path(journal_path)
        self.client = client
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.lag_after = lag_after
        self.on_status = on_status
        self.sent = 0
        self.rejected = 0
        self.failures = 0  # consecutive transient failures
        self.last_error = ""
        self.last_rejection = ""
        self.stopped = False
        self.requests = 0
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self.status = ReplicationStatus(HEALTHY, 0, 0.0, 0, 0)

    # -- life ------------------------------------------------------------------------------------
    def start(self) -> Replicator:
        self._thread = threading.Thread(target=self._run, name="replicator", daemon=True)
        self._thread.start()
        return self

    def stop(self, drain_timeout: float = 0.0) -> ReplicationStatus:
        """Stops the thread; with `drain_timeout`, first gives it that long to send what the
        outbox holds, counted in the file itself (the published status can predate the last
        records: a session's stop, its last equity point). Says what is left, if anything."""
        deadline = time.monotonic() + drain_timeout
        left = 0
        with contextlib.closing(connect(self.path)) as conn:
            while True:
                left = backlog_of(conn)[0]
                if left == 0 or self.stopped or not drain_timeout or time.monotonic() >= deadline:
                    break
                self._wake.set()  # now, not after a backoff
                time.sleep(0.02)
        self._halt.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._conn is not None:
            self._publish()
        if left:
            why = self.last_error or "the deadline passed"
            log.warning("replication: %d record(s) not sent at exit (%s); they go at the next "
                        "start, or with `python app.py store replay-to-supabase`", left, why)
        return self.status

    def nudge(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._halt.is_set():
            try:
                moved = self.step()
            except Exception as exc:  # never let the thread die silently
                log.exception("replicator step failed")
                self.last_error = f"{type(exc).__name__}: {exc}"
                moved = False
                self._publish()
            if self.stopped:
                self._halt.wait()
                break
            if self.last_error and not moved:
                self._wake.wait(self._backoff())  # a nudge (the drain at exit) cuts it short
                self._wake.clear()
            elif not moved:
                self._wake.wait(self.poll_interval)
                self._wake.clear()

    def _backoff(self) -> float:
        """Exponential backoff with full jitter (AWS's "full jitter"), capped."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** min(self.failures, 16))
        return random.uniform(0, ceiling)

    # -- one step --------------------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self.path)
        return self._conn

    def step(self) -> bool:
        """Sends the next window of the outbox; True if it sent anything."""
        rows = self.conn.execute(
            "SELECT seq, tbl, payload FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL "
            "ORDER BY seq LIMIT ?", (self.batch_size,)).fetchall()
        if not rows:
            self.failures = 0
            self.last_error = ""
            self._publish()
            return False
        try:
            self._send_window(rows)
        except TransientError as exc:
            self.failures += 1
            self.last_error = str(exc)
            log.warning("replication: %s (attempt %d); retrying with backoff", exc, self.failures)
            self._publish()
            return False
        except PermanentError as exc:
            self.last_error = str(exc)
            if exc.config:
                self.stopped = True
                log.error("replication stopped: %s", exc)
                self._remember("stopped", str(exc))
                self._publish()
                return False
            self._isolate(rows)
            self._publish()
            return True
        self._mark_sent([seq for seq, _, _ in rows])
        if self.failures or self.last_error:
            log.info("replication: sending again after %d failed attempt(s)", self.failures)
        self.failures = 0
        self.last_error = ""
        self._publish()
        return True

    def _send_window(self, rows: list[tuple[int, str, str]]) -> None:
        by_table: dict[str, list[dict]] = {}
        for _, table, payload in rows:  # tables in order of first appearance; rows in order
            by_table.setdefault(table, []).append(json.loads(payload))
        for table, payloads in by_table.items():
            self._upsert(table, payloads)

    def _upsert(self, table: str, payloads: list[dict]) -> None:
        self.requests += 1
        last = getattr(self.client, "last_response", None)
        if last is not None:
            last.status = None
        try:
            (self.client.table(table)
             .upsert(payloads, on_conflict=TABLES[table].key, returning="minimal")
             .execute())
        except Exception as exc:
            raise classify(exc, table, last.status if last is not None else None) from exc

    def _isolate(self, rows: list[tuple[int, str, str]]) -> None:
        """A window with a record that was refused: sends one by one, sets the bad ones aside."""
        for seq, table, payload in rows:
            try:
                self._upsert(table, [json.loads(payload)])
            except PermanentError as exc:
                if exc.config:
                    raise
                self.rejected += 1
                self.last_rejection = str(exc)
                log.error("replication: record %s/%d set aside: %s", table, seq, exc)
                self.conn.execute("UPDATE outbox SET failed_at = ?, error = ? WHERE seq = ?",
                                  (time.time(), str(exc), seq))
                self._remember("last_rejected", str(exc))
                continue
            self._mark_sent([seq])

    def _mark_sent(self, seqs: list[int]) -> None:
        now = time.time()
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany("UPDATE outbox SET sent_at = ? WHERE seq = ?", [(now, s) for s in seqs])
        # Records went through: a configuration error kept from an earlier run is history.
        self.conn.execute("DELETE FROM replication_state WHERE key = 'stopped'")
        self.conn.execute("INSERT INTO replication_state (key, value, updated_at) VALUES "
                          "('last_sent', ?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                          "excluded.value, updated_at = excluded.updated_at",
                          (datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"), now))
        self.conn.execute("COMMIT")
        self.sent += len(seqs)

    def _remember(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO replication_state (key, value, updated_at) VALUES (?,?,?) "
                          "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                          "updated_at = excluded.updated_at", (key, value, time.time()))

    def _publish(self) -> None:
        backlog, oldest = backlog_of(self.conn)
        age = time.time() - oldest if oldest else 0.0
        if self.stopped or (self.last_error and self.failures >= 3) or self.rejected:
            state = FAILING
        elif self.last_error or (backlog and age > self.lag_after):
            state = LAGGING
        else:
            state = HEALTHY
        self.status = ReplicationStatus(state, backlog, age, self.sent, self.rejected,
                                        self.last_error, self.stopped, self.last_rejection)
        if self.on_status is not None:
            self.on_status(self.status)

    def drain(self, timeout: float = 60.0) -> ReplicationStatus:
        """Sends everything now, in this thread (for `store replay-to-supabase` and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            moved = self.step()
            if self.stopped or (not moved and not self.last_error):
                break
            if not moved:
                time.sleep(self._backoff())
        return self.status


def backlog_of(conn: sqlite3.Connection) -> tuple[int, float | None]:
    """(records not yet sent, write time of the oldest of them)."""
    count, oldest = conn.execute(
        "SELECT count(*), min(created_at) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL"
    ).fetchone()
    return count, oldest
