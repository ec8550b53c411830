"""The SQLite journal: every intent, broker event, fill, decision and control action, on disk.

One file in the data directory, in WAL mode. Writes that the engine acts on (an intent before it
is sent, a broker event as soon as it is learned, a control action, a breaker trip) are committed
at once; the rest (equity points, position snapshots, risk rejections) wait in memory for the
next commit, at most `flush_interval` seconds. Commits do not fsync (`synchronous=NORMAL`): a
committed record survives a crash or a kill -9 of the process; a background thread checkpoints
the WAL (which fsyncs) every second, so the event loop never waits on the disk for long.

Each record is written together with its outbox row, in the same transaction, for the
Supabase replicator (`replicator.py`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from daytrader.models import Fill, ModelCall, OrderIntent, OrderUpdate, Position, RiskDecision
from daytrader.store.schema import SCHEMA_VERSION, TABLES, migrate

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.sqlite"


class JournalError(RuntimeError):
    """The journal could not write; an intent that cannot be journaled is not sent."""


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, no fsync on commit."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False, timeout=5)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def to_cell(value: Any) -> Any:
    """A value as both SQLite and JSON take it: text for decimals, times and enums."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _wall() -> str:
    return datetime.now(UTC).isoformat()


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


def _unwritable(exc: Exception) -> bool:
    """True when the file cannot take any record (locked, read-only, disk full or damaged), as
    opposed to one record it refuses (a value out of SQLite's range, a constraint)."""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


@dataclass(frozen=True, slots=True)
class SessionInfo:
    session_id: str
    account: str
    resumed: bool


class NullJournal:
    """The engine's default: journals nothing (tests that build an Engine directly use it)."""

    path: Path | None = None
    session_id = ""
    keeps = False  # nothing is kept: the engine skips making what only the journal reads

    def intent(self, cid: str, intent: OrderIntent, decision: RiskDecision) -> None: ...
    def submit_result(self, ts: datetime, cid: str, status: str, order_id: str | None,
                      error: str) -> None: ...
    def order_update(self, ts: datetime, update: OrderUpdate) -> None: ...
    def position(self, ts: datetime, symbol: str, position: Position | None) -> None: ...
    def risk_rejected(self, ts: datetime, cid: str, intent: OrderIntent,
                      decision: RiskDecision) -> None: ...
    def breaker(self, ts: datetime, action: str, source: str, message: str,
                loss_pct: float | None = None, equity: Any = None, baseline: Any = None) -> None: ...
    def control(self, ts: datetime, source: str, action: str, detail: str) -> None: ...
    def equity(self, ts: datetime, kind: str, equity: Any, cash: Any, state: str) -> None: ...
    def model_call(self, call: ModelCall, session_id: str | None = None) -> None: ...
    def flush(self) -> None: ...
    def commit(self, strict: bool = False) -> None: ...
    def close(self, reason: str = "stopped") -> None: ...


class Journal(NullJournal):
    """The journal file: open it (migrations run), start or resume a session, append records."""

    keeps = True

    def __init__(self, path: str | Path, *, flush_interval: float = 0.1,
                 checkpoint_interval: float = 1.0, max_pending: int = 256) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.path.exists():  # owner-only; SQLite gives its -wal and -shm files this mode
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.session_id = ""
        self.account = ""
        self._lock = threading.RLock()
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._pending_since = 0.0
        self._closed = False
        self.write_errors = 0
        self.last_error = ""
        self.set_aside = 0  # records that could not be written and were kept aside
        self.last_set_aside = ""
        self.on_set_aside: Callable[[], None] | None = None  # the store's health listens
        self.conn = connect(self.path)
        self.migrated = migrate(self.conn)
        # Checkpoints (and their fsync) happen on a thread of their own, never in a commit.
        self.conn.execute("PRAGMA wal_autocheckpoint=0")
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop,
                                              args=(checkpoint_interval,), daemon=True,
                                              name="journal-checkpoint")
        self._checkpointer.start()

    # -- sessions --------------------------------------------------------------------------------
    def start_session(self, mode: str, version: str, source: str, symbols: tuple[str, ...],
                      account: str | None = None, resume: str | None = None) -> SessionInfo:
        """A new session row, or the resumed one marked as such; every record carries its id."""
        if resume:
            self.session_id = resume
            row = self.conn.execute("SELECT account FROM sessions WHERE session_id = ?",
                                    (resume,)).fetchone()
            self.account = row[0]
            self._upsert_session(resume, {"resumed": 1, "stopped_at": None, "stop_reason": None})
            return SessionInfo(resume, self.account, True)
        self.session_id = _new_id()
        self.account = account or f"{mode}-{self.session_id[:8]}"
        self._append("sessions", {
            "session_id": self.session_id, "mode": mode, "version": version, "source": source,
            "symbols": ",".join(symbols), "account": self.account, "started_at": _wall(),
            "stopped_at": None, "stop_reason": None, "resumed": False}, commit=True)
        return SessionInfo(self.session_id, self.account, False)

    def _upsert_session(self, session_id: str, changes: Mapping[str, Any]) -> None:
        """Session rows change (stop, resume): the new state goes to the outbox as a whole row."""
        with self._lock:
            self._begin()
            try:
                sets = ", ".join(f"{k} = ?" for k in changes)
                self.conn.execute(f"UPDATE sessions SET {sets} WHERE session_id = ?",
                                  (*changes.values(), session_id))
                cur = self.conn.execute("SELECT * FROM sessions WHERE session_id = ?",
                                        (session_id,))
                names = [d[0] for d in cur.description]
                row = dict(zip(names, cur.fetchone(), strict=True))
                row["resumed"] = bool(row["resumed"])
                self._outbox("sessions", row)
                self.conn.execute("COMMIT")
            except Exception as exc:
                self._rollback()
                self._failed(exc)

    # -- what the engine writes ------------------------------------------------------------------
    def intent(self, cid: str, intent: OrderIntent, decision: RiskDecision) -> None:
        """Write-ahead: committed before the order is sent; raises JournalError if it cannot be."""
        row = {
            "client_order_id": cid, "session_id": self.session_id, "ts": to_cell(intent.ts),
            "symbol": intent.symbol, "side": to_cell(intent.side), "qty": intent.qty,
            "order_type": to_cell(intent.order_type), "limit_price": to_cell(intent.limit_price),
            "stop_price": to_cell(intent.stop_price), "stop_loss": to_cell(intent.stop_loss),
            "take_profit": to_cell(intent.take_profit), "ref_price": to_cell(intent.ref_price),
            "reduce_only": intent.reduce_only, "reason": intent.reason,
            "strategy": intent.strategy, "journaled_at": _wall()}
        self._append("intents", row)
        self._append("risk_decisions", self._decision_row(intent.ts, cid, intent, decision))
        self._commit(required=(row,))

    def submit_result(self, ts: datetime, cid: str, status: str, order_id: str | None,
                      error: str) -> None:
        self._append("order_events", {
            "event_id": _new_id(), "session_id": self.session_id, "ts": to_cell(ts),
            "event": f"submit_{status}", "order_id": order_id, "client_order_id": cid,
            "symbol": "", "side": None, "qty": None, "order_type": None, "status": None,
            "role": None, "limit_price": None, "stop_price": None, "filled_qty": None,
            "filled_avg_price": None, "parent_id": None, "detail": error}, commit=True)

    def order_update(self, ts: datetime, update: OrderUpdate) -> None:
        """A broker event and its fill, committed as soon as they are learned."""
        o = update.order
        self._append("order_events", {
            "event_id": _new_id(), "session_id": self.session_id,
            "ts": to_cell(o.updated_at or ts), "event": update.event, "order_id": o.id,
            "client_order_id": o.client_order_id, "symbol": o.symbol, "side": to_cell(o.side),
            "qty": o.qty, "order_type": to_cell(o.order_type), "status": to_cell(o.status),
            "role": to_cell(o.role), "limit_price": to_cell(o.limit_price),
            "stop_price": to_cell(o.stop_price), "filled_qty": o.filled_qty,
            "filled_avg_price": to_cell(o.filled_avg_price), "parent_id": o.parent_id,
            "detail": o.reject_reason})
        if update.fill is not None:
            self._append("fills", self.fill_row(update.fill))
        self.commit()

    def fill_row(self, fill: Fill) -> dict[str, Any]:
        return {"fill_id": f"{self.account}:{fill.id}", "session_id": self.session_id,
                "broker_fill_id": fill.id, "order_id": fill.order_id,
                "client_order_id": fill.client_order_id, "symbol": fill.symbol,
                "side": to_cell(fill.side), "qty": fill.qty, "price": to_cell(fill.price),
                "commission": to_cell(fill.commission), "ts": to_cell(fill.ts),
                "role": to_cell(fill.role)}

    def position(self, ts: datetime, symbol: str, position: Position | None) -> None:
        p = position
        self._append("position_snapshots", {
            "snapshot_id": _new_id(), "session_id": self.session_id, "ts": to_cell(ts),
            "symbol": symbol, "qty": p.qty if p else 0,
            "avg_entry_price": to_cell(p.avg_entry_price) if p else None,
            "last_price": to_cell(p.last_price) if p else None,
            "stop_loss": to_cell(p.stop_loss) if p else None,
            "take_profit": to_cell(p.take_profit) if p else None}, commit=False)

    def risk_rejected(self, ts: datetime, cid: str, intent: OrderIntent,
                      decision: RiskDecision) -> None:
        self._append("risk_decisions", self._decision_row(ts, cid, intent, decision), commit=False)

    def _decision_row(self, ts: datetime | None, cid: str, intent: OrderIntent,
                      decision: RiskDecision) -> dict[str, Any]:
        failed = decision.failed
        checks = [{"name": c.name, "passed": c.passed, "value": c.value, "limit": c.limit,
                   "reason": c.reason} for c in decision.checks]
        return {"decision_id": _new_id(), "session_id": self.session_id, "ts": to_cell(ts),
                "client_order_id": cid, "symbol": intent.symbol, "side": to_cell(intent.side),
                "qty": intent.qty, "approved": decision.approved,
                "failed_check": failed.name if failed else None, "reason": decision.reason,
                "checks": json.dumps(checks)}

    def breaker(self, ts: datetime, action: str, source: str, message: str,
                loss_pct: float | None = None, equity: Any = None, baseline: Any = None) -> None:
        self._append("breaker_events", {
            "event_id": _new_id(), "session_id": self.session_id, "ts": to_cell(ts),
            "action": action, "source": source, "loss_pct": loss_pct, "equity": to_cell(equity),
            "baseline": to_cell(baseline), "message": message}, commit=True)

    def control(self, ts: datetime, source: str, action: str, detail: str) -> None:
        self._append("control_actions", {
            "action_id": _new_id(), "session_id": self.session_id, "ts": to_cell(ts),
            "source": source, "action": action, "detail": detail}, commit=True)

    def equity(self, ts: datetime, kind: str, equity: Any, cash: Any, state: str) -> None:
        self._append("equity_points", {
            "point_id": f"{self.session_id}:{kind}:{to_cell(ts)}", "session_id": self.session_id,
            "ts": to_cell(ts), "kind": kind, "equity": to_cell(equity), "cash": to_cell(cash),
            "state": state}, commit=False)
        if kind != "minute":
            self.commit()

    def model_call(self, call: ModelCall, session_id: str | None = None) -> None:
        """An exchange with the LLM advisor, under this session or the one it is about (a
        debrief's day, an ask's). An entry's goes out with the intent's write-ahead just after;
        any other is committed now."""
        self._append("model_calls", {
            "call_id": call.call_id, "session_id": session_id or self.session_id,
            "ts": to_cell(call.ts),
            "kind": call.kind, "subject": call.subject, "symbol": call.symbol,
            "model": call.model, "mode": call.mode, "prompt": call.prompt, "answer": call.answer,
            "outcome": call.outcome, "verdict": call.verdict, "confidence": call.confidence,
            "reasons": json.dumps(list(call.reasons)), "error": call.error,
            "latency_ms": call.latency_ms, "prompt_tokens": call.prompt_tokens,
            "completion_tokens": call.completion_tokens, "journaled_at": _wall()},
            commit=True if call.kind != "entry" else None)

    # -- writing ---------------------------------------------------------------------------------
    def _append(self, table: str, row: dict[str, Any], commit: bool | None = None) -> None:
        with self._lock:
            if not self._pending:
                self._pending_since = time.monotonic()
            self._pending.append((table, row))
            if commit or (commit is False and (
                    len(self._pending) >= self.max_pending
                    or time.monotonic() - self._pending_since >= self.flush_interval)):
                self.commit()

    def flush(self) -> None:
        """Commits what waits, if it has waited `flush_interval` (the engine calls this often)."""
        if self._pending and time.monotonic() - self._pending_since >= self.flush_interval:
            self.commit()

    def commit(self, strict: bool = False) -> None:
        """Writes every waiting record, with its outbox row, in one transaction.

        One bad record never costs the others: when the batch fails for any reason, it is rolled
        back and retried record by record; a record that still fails on its own is set aside
        (kept in the `set_aside` table with its error, logged and counted) and the rest commit.
        When the file itself cannot be written (locked, disk full), nothing is set aside: the
        records wait for the next commit. With `strict`, a record of this batch that could not
        be written raises JournalError."""
        self._commit(required=None if strict else ())

    def _commit(self, required: tuple[dict[str, Any], ...] | None) -> None:
        """`required`: the rows whose loss raises JournalError (None: every row)."""
        with self._lock:
            if not self._pending or self._closed:
                return
            rows, self._pending = self._pending, []
            try:
                self._write(rows)
                return
            except Exception as exc:
                self._rollback()
                if _unwritable(exc):
                    self._pending[:0] = rows  # kept, in order, for the next commit
                    self._failed(exc)
                    if required is None or required:
                        raise JournalError(f"journal write failed: {exc}") from exc
                    return
            lost: list[dict[str, Any]] = []
            for index, (table, row) in enumerate(rows):
                try:
                    self._write([(table, row)])
                except Exception as exc:
                    self._rollback()
                    if _unwritable(exc):  # the file, not the record: keep the rest waiting
                        self._pending[:0] = rows[index:]
                        self._failed(exc)
                        lost.extend(r for _, r in rows[index:])
                        break
                    self._set_aside(table, row, exc)
                    lost.append(row)
            if lost and (required is None or any(r is x for r in required for x in lost)):
                raise JournalError(f"journal write failed: {self.last_set_aside or self.last_error}")

    def _write(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        self._begin()
        for table, row in rows:
            spec = TABLES[table]
            cur = self.conn.execute(
                f"INSERT INTO {table} ({', '.join(spec.columns)}) VALUES "
                f"({', '.join('?' * len(spec.columns))}) ON CONFLICT ({spec.key}) DO NOTHING",
                [row[c] for c in spec.columns])
            if cur.rowcount:
                self._outbox(table, row)
        self.conn.execute("COMMIT")

    def _set_aside(self, table: str, row: dict[str, Any], exc: Exception) -> None:
        """A record that cannot be written: kept as text with its reason, logged, counted."""
        reason = f"{type(exc).__name__}: {str(exc)[:300]}"
        self.set_aside += 1
        self.last_set_aside = f"{table}: {reason}"
        try:
            payload = json.dumps(row, default=str)[:65536]
        except (TypeError, ValueError):
            payload = repr(row)[:65536]
        log.error("journal %s: %s record set aside (%s); the rest of the batch is written",
                  self.path, table, reason)
        try:
            self.conn.execute("INSERT INTO set_aside (tbl, payload, error, created_at) "
                              "VALUES (?,?,?,?)", (table, payload, reason, time.time()))
        except sqlite3.Error as write_error:
            log.error("journal %s: could not keep the set-aside record: %s", self.path, write_error)
        if self.on_set_aside is not None:
            self.on_set_aside()

    def _outbox(self, table: str, row: dict[str, Any]) -> None:
        self.conn.execute("INSERT INTO outbox (tbl, row_key, payload, created_at) VALUES (?,?,?,?)",
                          (table, row[TABLES[table].key], json.dumps(row), time.time()))

    def _begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("ROLLBACK")

    def _failed(self, exc: Exception) -> None:
        self.write_errors += 1
        self.last_error = str(exc)
        log.error("journal %s: write failed: %s", self.path, exc)

    def _checkpoint_loop(self, interval: float) -> None:
        conn = None
        while not self._stop.wait(interval):
            try:
                conn = conn or connect(self.path)
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # busy or gone: try again next time
                log.debug("journal checkpoint: %s", exc)
        if conn is not None:
            conn.close()

    def close(self, reason: str = "stopped") -> None:
        """Commits what waits, marks the session stopped, checkpoints and closes the file."""
        if self._closed:
            return
        self.commit()
        if self.session_id:
            self._upsert_session(self.session_id, {"stopped_at": _wall(), "stop_reason": reason})
        self._stop.set()
        self._checkpointer.join(5)
        with self._lock:
            self._closed = True
            try:
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.warning("journal checkpoint at close: %s", exc)
            self.conn.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, schema v{SCHEMA_VERSION}, session {self.session_id!r})"
