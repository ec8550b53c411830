"""One trading day as the journal holds it: the records, and the day's figures computed from them.

The debrief and `ask` both read a day through here. Round trips are rebuilt from the journaled
fills with the engine's own PositionBook and measured with the metrics module, as the production
checklist does, so the figures are the ones the console showed. Read-only: the journal of a
running session can be read while it writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from daytrader import metrics
from daytrader.checklist import trades_from_fills
from daytrader.clock import EXCHANGE_TZ
from daytrader.metrics import Execution, Metrics
from daytrader.models import ZERO, Fill, OrderRole, Side, Trade


class NoRecords(LookupError):
    """The journal has nothing for the day asked (or no journal at all); the message says which."""


@dataclass(frozen=True, slots=True)
class Intent:
    client_order_id: str
    ts: datetime
    symbol: str
    side: str
    qty: int
    reduce_only: bool
    reason: str
    strategy: str
    ref_price: Decimal | None
    stop_loss: Decimal | None
    take_profit: Decimal | None


@dataclass(frozen=True, slots=True)
class Decision:
    """A risk decision: every approved order and every refusal, with the failing check."""

    ts: datetime
    client_order_id: str
    symbol: str
    side: str
    qty: int
    approved: bool
    check: str | None
    reason: str
    checks: tuple[dict, ...]


@dataclass(frozen=True, slots=True)
class OrderEvent:
    ts: datetime
    event: str
    order_id: str | None
    client_order_id: str
    symbol: str
    side: str | None
    qty: int | None
    status: str | None
    role: str | None
    filled_qty: int | None
    filled_avg_price: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    ts: datetime
    action: str
    source: str
    loss_pct: float | None
    message: str


@dataclass(frozen=True, slots=True)
class ControlAction:
    ts: datetime
    source: str
    action: str
    detail: str


@dataclass(frozen=True, slots=True)
class AdviceRecord:
    call_id: str
    ts: datetime
    kind: str
    subject: str
    symbol: str
    model: str
    mode: str
    outcome: str
    verdict: str | None
    confidence: float | None
    reasons: tuple[str, ...]
    error: str
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True, slots=True)
class DayJournal:
    """The records of one trading day, from the session(s) that traded it."""

    path: Path
    day: date
    mode: str
    sessions: tuple[str, ...]
    start_equity: Decimal | None
    end_equity: Decimal | None
    end_ts: datetime | None
    finished: bool  # the day's end-of-day point is journaled
    curve: tuple[tuple[datetime, float], ...]
    trades: tuple[Trade, ...]  # round trips closed this day
    fills: tuple[Fill, ...]
    executions: tuple[Execution, ...]
    intents: dict[str, Intent] = field(default_factory=dict)
    decisions: tuple[Decision, ...] = ()
    order_events: tuple[OrderEvent, ...] = ()
    breaker: tuple[BreakerEvent, ...] = ()
    controls: tuple[ControlAction, ...] = ()
    advice: tuple[AdviceRecord, ...] = ()
    entry_cids: dict[int, str] = field(default_factory=dict)  # trade index -> opening intent

    @property
    def orders_sent(self) -> int:
        return len(self.intents)

    @property
    def orders_filled(self) -> int:
        return len({f.client_order_id for f in self.fills} & set(self.intents))

    @property
    def rejections(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if not d.approved)

    def metrics(self) -> Metrics:
        trips = sum(1 for b in self.breaker if b.action == "trip")
        return metrics.compute(
            self.trades, self.curve,
            starting_equity=float(self.start_equity) if self.start_equity is not None else None,
            executions=self.executions, orders_sent=self.orders_sent,
            orders_filled=self.orders_filled,
            rejections_by_check=Counter(d.check or "?" for d in self.rejections),
            breaker_trips=trips)

    @property
    def commissions(self) -> Decimal:
        return sum((f.commission for f in self.fills), ZERO)


def _ts(text: str | None) -> datetime | None:
    if text is None:
        return None
    ts = datetime.fromisoformat(text)
    return ts.astimezone(EXCHANGE_TZ) if ts.tzinfo else ts.replace(tzinfo=EXCHANGE_TZ)


def _dec(text: str | None) -> Decimal | None:
    return None if text in (None, "") else Decimal(text)


def _rows(conn: sqlite3.Connection, sql: str, *args: Any) -> list[sqlite3.Row]:
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # a table of a later migration is missing: no records
        return []


def open_journal(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise NoRecords(f"no journal at {path}: nothing has been traded with this DATA_DIR yet")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def trading_days(path: Path) -> list[date]:
    """The days the journal has equity points for, oldest first."""
    conn = open_journal(path)
    try:
        days = {_ts(r["ts"]).date() for r in _rows(conn, "SELECT ts FROM equity_points")}
    finally:
        conn.close()
    return sorted(days)


def _sessions_of(conn: sqlite3.Connection, day: date, session: str | None) -> tuple[str, list[str]]:
    """The sessions whose records make the day: the newest session that traded it, and in paper
    or live the other sessions of that mode that day too (the same broker account restarted)."""
    points: dict[str, set[date]] = {}
    for r in _rows(conn, "SELECT session_id, ts FROM equity_points"):
        points.setdefault(r["session_id"], set()).add(_ts(r["ts"]).date())
    modes = {r["session_id"]: r["mode"] for r in _rows(
        conn, "SELECT session_id, mode FROM sessions ORDER BY rowid")}
    if session is not None:
        if session not in modes:
            raise NoRecords(f"no session {session!r} in the journal")
        return modes[session], [session]
    traded = [s for s in modes if day in points.get(s, ())]
    if not traded:
        raise NoRecords(f"the journal has no records for {day:%Y-%m-%d}")
    newest = traded[-1]
    mode = modes[newest]
    if mode in ("paper", "live"):
        return mode, [s for s in traded if modes[s] == mode]
    return mode, [newest]


def read_day(path: Path, day: date | None = None, session: str | None = None) -> DayJournal:
    """The journal's records for `day` (default: the last day it has)."""
    if day is None:
        days = trading_days(path)
        if not days:
            raise NoRecords(f"the journal at {path} has no trading day yet")
        day = days[-1]
    conn = open_journal(path)
    try:
        return _read(conn, path, day, session)
    finally:
        conn.close()


def _read(conn: sqlite3.Connection, path: Path, day: date, session: str | None) -> DayJournal:
    mode, sessions = _sessions_of(conn, day, session)
    marks = ",".join("?" * len(sessions))

    def rows(table: str, order: str = "rowid") -> list[sqlite3.Row]:
        return _rows(conn, f"SELECT * FROM {table} WHERE session_id IN ({marks}) ORDER BY {order}",
                     *sessions)

    def today(r: sqlite3.Row) -> bool:
        return _ts(r["ts"]).date() == day

    start = end = end_ts = None
    finished = False
    curve: list[tuple[datetime, float]] = []
    for r in rows("equity_points"):
        ts = _ts(r["ts"])
        if ts.date() != day:
            continue
        if r["kind"] == "sod":
            start = start if start is not None else Decimal(r["equity"])
            continue
        curve.append((ts, float(r["equity"])))
        end, end_ts = Decimal(r["equity"]), ts
        finished = finished or r["kind"] == "eod"
    intents_all = {r["client_order_id"]: Intent(
        r["client_order_id"], _ts(r["ts"]), r["symbol"], r["side"], r["qty"],
        bool(r["reduce_only"]), r["reason"], r["strategy"], _dec(r["ref_price"]),
        _dec(r["stop_loss"]), _dec(r["take_profit"])) for r in rows("intents")}
    fills_all = [Fill(r["broker_fill_id"], r["order_id"], r["client_order_id"], r["symbol"],
                      Side(r["side"]), int(r["qty"]), Decimal(r["price"]),
                      Decimal(r["commission"]), _ts(r["ts"]), OrderRole(r["role"]))
                 for r in rows("fills", "ts, rowid")]
    fills_all = [f for f in fills_all if f.ts.date() <= day]
    reasons = {cid: i.reason for cid, i in intents_all.items()}
    strategies = {cid: i.strategy for cid, i in intents_all.items()}
    trades_all = trades_from_fills(fills_all, reasons, strategies)
    # Which entry opened each round trip (the advisor's opinion is kept by its client order id).
    opened: dict[str, list[str]] = {}
    held: Counter[str] = Counter()
    for f in fills_all:
        if held[f.symbol] == 0:
            opened.setdefault(f.symbol, []).append(f.client_order_id)
        held[f.symbol] += f.qty * f.side.sign
    trades, entry_cids, seen = [], {}, Counter()
    for t in trades_all:
        cids = opened.get(t.symbol, [])
        cid = cids[seen[t.symbol]] if seen[t.symbol] < len(cids) else ""
        seen[t.symbol] += 1
        if t.exit_time.date() == day:
            entry_cids[len(trades)] = cid
            trades.append(t)
    fills = [f for f in fills_all if f.ts.date() == day]
    executions = [Execution(f.side.sign, intents_all[f.client_order_id].ref_price, f.price)
                  for f in fills if f.client_order_id in intents_all
                  and intents_all[f.client_order_id].ref_price]
    intents = {cid: i for cid, i in intents_all.items() if i.ts.date() == day}
    decisions = tuple(Decision(
        _ts(r["ts"]), r["client_order_id"], r["symbol"], r["side"], r["qty"],
        bool(r["approved"]), r["failed_check"], r["reason"], tuple(json.loads(r["checks"])))
        for r in rows("risk_decisions") if today(r))
    events = tuple(OrderEvent(
        _ts(r["ts"]), r["event"], r["order_id"], r["client_order_id"], r["symbol"], r["side"],
        r["qty"], r["status"], r["role"], r["filled_qty"], r["filled_avg_price"], r["detail"])
        for r in rows("order_events") if today(r))
    breaker = tuple(BreakerEvent(_ts(r["ts"]), r["action"], r["source"], r["loss_pct"],
                                 r["message"]) for r in rows("breaker_events") if today(r))
    controls = tuple(ControlAction(_ts(r["ts"]), r["source"], r["action"], r["detail"])
                     for r in rows("control_actions") if today(r))
    advice = tuple(AdviceRecord(
        r["call_id"], _ts(r["ts"]), r["kind"], r["subject"], r["symbol"], r["model"], r["mode"],
        r["outcome"], r["verdict"], r["confidence"], tuple(json.loads(r["reasons"] or "[]")),
        r["error"], r["latency_ms"], r["prompt_tokens"], r["completion_tokens"])
        for r in rows("model_calls") if today(r))
    return DayJournal(path, day, mode, tuple(sessions), start, end, end_ts, finished,
                      tuple(curve), tuple(trades), tuple(fills), tuple(executions), intents,
                      decisions, events, breaker, controls, advice, entry_cids)
