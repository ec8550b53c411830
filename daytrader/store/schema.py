"""The journal's tables, their natural keys, and the migrations that bring a file up to date.

The same tables (same names, same columns) exist in Supabase (`supabase_schema.sql`); each row
is sent there keyed by its natural id, so a record sent twice is still one row.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    key: str  # the natural id: the unique column that `on_conflict` names
    columns: tuple[str, ...]


TABLES: dict[str, Table] = {t.name: t for t in (
    Table("sessions", "session_id", ("session_id", "mode", "version", "source", "symbols",
                                     "account", "started_at", "stopped_at", "stop_reason",
                                     "resumed")),
    Table("intents", "client_order_id", ("client_order_id", "session_id", "ts", "symbol", "side",
                                         "qty", "order_type", "limit_price", "stop_price",
                                         "stop_loss", "take_profit", "ref_price", "reduce_only",
                                         "reason", "strategy", "journaled_at")),
    Table("order_events", "event_id", ("event_id", "session_id", "ts", "event", "order_id",
                                       "client_order_id", "symbol", "side", "qty", "order_type",
                                       "status", "role", "limit_price", "stop_price", "filled_qty",
                                       "filled_avg_price", "parent_id", "detail")),
    Table("fills", "fill_id", ("fill_id", "session_id", "broker_fill_id", "order_id",
                               "client_order_id", "symbol", "side", "qty", "price", "commission",
                               "ts", "role")),
    Table("position_snapshots", "snapshot_id", ("snapshot_id", "session_id", "ts", "symbol", "qty",
                                                "avg_entry_price", "last_price", "stop_loss",
                                                "take_profit")),
    Table("risk_decisions", "decision_id", ("decision_id", "session_id", "ts", "client_order_id",
                                            "symbol", "side", "qty", "approved", "failed_check",
                                            "reason", "checks")),
    Table("breaker_events", "event_id", ("event_id", "session_id", "ts", "action", "source",
                                         "loss_pct", "equity", "baseline", "message")),
    Table("control_actions", "action_id", ("action_id", "session_id", "ts", "source", "action",
                                           "detail")),
    Table("equity_points", "point_id", ("point_id", "session_id", "ts", "kind", "equity", "cash",
                                        "state")),
    Table("model_calls", "call_id", ("call_id", "session_id", "ts", "kind", "subject", "symbol",
                                     "model", "mode", "prompt", "answer", "outcome", "verdict",
                                     "confidence", "reasons", "error", "latency_ms",
                                     "prompt_tokens", "completion_tokens", "journaled_at")),
)}

_V1 = """
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY, mode TEXT NOT NULL, version TEXT NOT NULL, source TEXT NOT NULL,
    symbols TEXT NOT NULL, account TEXT NOT NULL, started_at TEXT NOT NULL, stopped_at TEXT,
    stop_reason TEXT, resumed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE intents (
    client_order_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, ts TEXT NOT NULL,
    symbol TEXT NOT NULL, side TEXT NOT NULL, qty INTEGER NOT NULL, order_type TEXT NOT NULL,
    limit_price TEXT, stop_price TEXT, stop_loss TEXT, take_profit TEXT, ref_price TEXT,
    reduce_only INTEGER NOT NULL, reason TEXT NOT NULL, strategy TEXT NOT NULL,
    journaled_at TEXT NOT NULL);
CREATE TABLE order_events (
    event_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, ts TEXT NOT NULL, event TEXT NOT NULL,
    order_id TEXT, client_order_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT, qty INTEGER,
    order_type TEXT, status TEXT, role TEXT, limit_price TEXT, stop_price TEXT,
    filled_qty INTEGER, filled_avg_price TEXT, parent_id TEXT, detail TEXT NOT NULL DEFAULT '');
CREATE INDEX order_events_order ON order_events (order_id);
CREATE INDEX order_events_client ON order_events (client_order_id);
CREATE TABLE fills (
    fill_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, broker_fill_id TEXT NOT NULL,
    order_id TEXT NOT NULL, client_order_id TEXT NOT NULL, symbol TEXT NOT NULL,
    side TEXT NOT NULL, qty INTEGER NOT NULL, price TEXT NOT NULL, commission TEXT NOT NULL,
    ts TEXT NOT NULL, role TEXT NOT NULL);
CREATE INDEX fills_session ON fills (session_id, ts);
CREATE TABLE position_snapshots (
    snapshot_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, ts TEXT NOT NULL,
    symbol TEXT NOT NULL, qty INTEGER NOT NULL, avg_entry_price TEXT, last_price TEXT,
    stop_loss TEXT, take_profit TEXT);
CREATE TABLE risk_decisions (
    decision_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, ts TEXT NOT NULL,
    client_order_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL, qty INTEGER NOT NULL,
    approved INTEGER NOT NULL, failed_check TEXT, reason TEXT NOT NULL, checks TEXT NOT NULL);
CREATE TABLE breaker_events (
    event_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, ts TEXT NOT NULL, action TEXT NOT NULL,
    source TEXT NOT NULL, loss_pct REAL, equity TEXT, baseline TEXT, message TEXT NOT NULL);
CREATE TABLE control_actions (
    action_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, ts TEXT NOT NULL, source TEXT NOT NULL,
    action TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE equity_points (
    point_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, ts TEXT NOT NULL, kind TEXT NOT NULL,
    equity TEXT NOT NULL, cash TEXT NOT NULL, state TEXT NOT NULL);
CREATE INDEX equity_points_session ON equity_points (session_id, ts);
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, row_key TEXT NOT NULL,
    payload TEXT NOT NULL, created_at REAL NOT NULL, sent_at REAL);
"""

# v2: permanent replication errors are kept on the record they belong to (a dead letter), the
# pending records get their own index, and the replicator's last word is kept for `store status`.
_V2 = """
ALTER TABLE outbox ADD COLUMN failed_at REAL;
ALTER TABLE outbox ADD COLUMN error TEXT;
CREATE INDEX outbox_pending ON outbox (seq) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE TABLE replication_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at REAL NOT NULL);
"""

# v3: a record the journal could not write (a value out of SQLite's range, a constraint) is
# kept here as text with its error, so one bad record never costs the batch it came in.
_V3 = """
CREATE TABLE set_aside (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, payload TEXT NOT NULL,
    error TEXT NOT NULL, created_at REAL NOT NULL);
"""

# v4: every exchange with the LLM advisor (an entry's second opinion, a debrief's narrative, an
# answer to ask): the prompt sent, the answer, what was made of it, tokens and latency.
_V4 = """
CREATE TABLE model_calls (
    call_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, ts TEXT NOT NULL, kind TEXT NOT NULL,
    subject TEXT NOT NULL, symbol TEXT NOT NULL, model TEXT NOT NULL, mode TEXT NOT NULL,
    prompt TEXT NOT NULL, answer TEXT, outcome TEXT NOT NULL, verdict TEXT, confidence REAL,
    reasons TEXT NOT NULL, error TEXT NOT NULL, latency_ms REAL, prompt_tokens INTEGER,
    completion_tokens INTEGER, journaled_at TEXT NOT NULL);
CREATE INDEX model_calls_subject ON model_calls (subject);
CREATE INDEX model_calls_session ON model_calls (session_id, ts);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaError(RuntimeError):
    """The journal file was written by a newer DayTrader, or cannot be migrated."""


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> tuple[int, int]:
    """Brings the file to `target`, one version per transaction; returns (from, to)."""
    start = schema_version(conn)
    if start > SCHEMA_VERSION:
        raise SchemaError(f"journal schema version {start} is newer than this DayTrader "
                          f"understands ({SCHEMA_VERSION}); upgrade DayTrader")
    for version in range(start, target):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return start, max(start, target)
