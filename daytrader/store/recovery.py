"""Restart: what the journal says a crashed session had, and how the engine takes it back.

A session that did not stop cleanly, with the same mode, data source and symbols, is resumed:
its intents (so no client order id is ever sent twice), its fills (positions, cash, trades), the
orders still working at the kill (bracket legs protect the positions), the trading state, the
day's start equity and a tripped breaker. This module reads it into a `Recovered` value;
`Engine.restore` takes it back (in sim the exchange, which lived in the process, is rebuilt from
the same records; with a real broker the broker is the source of truth and the engine syncs with
it after this).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from daytrader.models import (
    Fill,
    Order,
    OrderIntent,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
)
from daytrader.orders import SubmitResult, SubmitStatus
from daytrader.risk import BreakerTrip


@dataclass(slots=True)
class Recovered:
    session_id: str
    account: str
    intents: dict[str, OrderIntent] = field(default_factory=dict)
    outcomes: dict[str, SubmitResult] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)  # every order's latest state
    last_minute: datetime | None = None  # end of the last minute the engine finished
    curve: list[tuple[datetime, float]] = field(default_factory=list)
    day: date | None = None
    start_of_day_equity: Decimal | None = None
    trip: BreakerTrip | None = None
    enabled: bool | None = None

    @property
    def open_orders(self) -> list[Order]:
        return [o for o in self.orders if o.status.is_open]

    def summary(self) -> str:
        at = f", resuming after {self.last_minute:%Y-%m-%d %H:%M}" if self.last_minute else ""
        state = "" if self.enabled is None else f", trading {'enabled' if self.enabled else 'disabled'}"
        tripped = ", circuit breaker tripped" if self.trip else ""
        return (f"recovered session {self.session_id} from the journal: {len(self.intents)} "
                f"intents (never sent again), {len(self.fills)} fills, {len(self.open_orders)} "
                f"working orders{state}{tripped}{at}")


def _rows(conn: sqlite3.Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    cur = conn.execute(sql, args)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# Sessions this process started: one that is still unstopped was not left by a crash (it is
# still running, or was dropped without a close, as tests do), so it is never resumed.
STARTED_HERE: set[str] = set()


def find_resumable(conn: sqlite3.Connection, mode: str, source: str,
                   symbols: tuple[str, ...]) -> str | None:
    """The id of the newest session if it did not stop cleanly, was started by another process
    (one that died) and ran the same thing."""
    rows = _rows(conn, "SELECT * FROM sessions ORDER BY rowid DESC LIMIT 1")
    if not rows:
        return None
    s = rows[0]
    if s["session_id"] in STARTED_HERE:
        return None
    if s["stopped_at"] is None and (s["mode"], s["source"], s["symbols"]) == (
            mode, source, ",".join(symbols)):
        return s["session_id"]
    return None


def load(conn: sqlite3.Connection, session_id: str) -> Recovered:
    account = conn.execute("SELECT account FROM sessions WHERE session_id = ?",
                           (session_id,)).fetchone()[0]
    rec = Recovered(session_id, account)
    for r in _rows(conn, "SELECT * FROM intents WHERE session_id = ? ORDER BY rowid", session_id):
        rec.intents[r["client_order_id"]] = OrderIntent(
            r["symbol"], Side(r["side"]), r["qty"], OrderType(r["order_type"]),
            _dec(r["limit_price"]), _dec(r["stop_price"]), _dec(r["stop_loss"]),
            _dec(r["take_profit"]), _dec(r["ref_price"]), bool(r["reduce_only"]), r["reason"],
            r["strategy"], _ts(r["ts"]))
    latest: dict[str, Order] = {}
    results: dict[str, tuple[str, str]] = {}
    for r in _rows(conn, "SELECT * FROM order_events WHERE session_id = ? ORDER BY rowid",
                   session_id):
        if r["event"].startswith("submit_"):
            results[r["client_order_id"]] = (r["event"][7:], r["detail"])
            continue
        latest[r["order_id"]] = Order(
            r["order_id"], r["client_order_id"], r["symbol"], Side(r["side"]), r["qty"],
            OrderType(r["order_type"]), OrderStatus(r["status"]), _ts(r["ts"]),
            OrderRole(r["role"]), _dec(r["limit_price"]), _dec(r["stop_price"]),
            r["filled_qty"] or 0, _dec(r["filled_avg_price"]), r["parent_id"], _ts(r["ts"]),
            r["detail"])
    rec.orders = list(latest.values())
    by_client = {o.client_order_id: o for o in rec.orders}
    for cid, intent in rec.intents.items():
        order = by_client.get(cid)
        status, error = results.get(cid, ("", ""))
        if order is not None:
            outcome = SubmitResult(SubmitStatus.SUBMITTED, cid, intent, order=order)
        elif status:
            outcome = SubmitResult(SubmitStatus(status), cid, intent, error=error)
        else:
            outcome = SubmitResult(SubmitStatus.UNKNOWN, cid, intent,
                                   error="journaled before a crash; the send was not confirmed")
        rec.outcomes[cid] = outcome
    for r in _rows(conn, "SELECT * FROM fills WHERE session_id = ? ORDER BY rowid", session_id):
        rec.fills.append(Fill(r["broker_fill_id"], r["order_id"], r["client_order_id"],
                              r["symbol"], Side(r["side"]), r["qty"], Decimal(r["price"]),
                              Decimal(r["commission"]), datetime.fromisoformat(r["ts"]),
                              OrderRole(r["role"])))
    for r in _rows(conn, "SELECT ts, kind, equity FROM equity_points WHERE session_id = ? "
                   "ORDER BY rowid", session_id):
        ts = datetime.fromisoformat(r["ts"])
        if r["kind"] in ("minute", "eod"):
            rec.curve.append((ts, float(r["equity"])))
            rec.last_minute = ts
        elif r["kind"] == "sod":
            rec.day, rec.start_of_day_equity = ts.date(), Decimal(r["equity"])
    for r in _rows(conn, "SELECT * FROM breaker_events WHERE session_id = ? ORDER BY rowid",
                   session_id):
        if r["action"] == "trip":
            rec.trip = BreakerTrip(datetime.fromisoformat(r["ts"]), r["loss_pct"] or 0.0,
                                   Decimal(r["equity"] or 0), Decimal(r["baseline"] or 0))
        else:
            rec.trip = None
    for r in _rows(conn, "SELECT action FROM control_actions WHERE session_id = ? ORDER BY rowid",
                   session_id):
        if r["action"] == "enable":
            rec.enabled = True
        elif r["action"] in ("disable", "emergency_stop"):
            rec.enabled = False
    return rec
