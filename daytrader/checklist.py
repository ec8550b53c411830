"""The production checklist, computed from the journal: what must be true before live money.

Each item passes, fails or is unknown (no records to judge by), with the figure it saw. Live mode
uses `evaluate(...).ready` as its gate; `python app.py checklist` and the console show the items.
Round trips are rebuilt from the journaled fills with the same PositionBook the engine uses, and
measured with the same metrics module, so the figures match what the console showed.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TextIO

from daytrader import metrics
from daytrader.config import Settings
from daytrader.metrics import Execution
from daytrader.models import Fill, OrderRole, Side, Trade
from daytrader.positions import PositionBook
from daytrader.wording import plural

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = ROOT / "docs" / "runbook.md"

MIN_PAPER_TRADES = 300
MIN_WIN_RATE = 60.0
MIN_PROFIT_FACTOR = 1.5
MAX_LIVE_CAPITAL = Decimal("25000")  # "small": under the pattern-day-trader threshold


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Item:
    name: str
    status: Status
    figure: str
    requirement: str


@dataclass(frozen=True, slots=True)
class Checklist:
    items: tuple[Item, ...]
    # The paper-trading items again for each strategy's own round trips: which strategy earns
    # the total, and which one drags it (shown; the gate is the total).
    by_strategy: dict[str, tuple[Item, ...]] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(i.status is Status.PASS for i in self.items)

    @property
    def failing(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.status is not Status.PASS)


@dataclass(frozen=True, slots=True)
class Records:
    """What the checklist judges, read from the journal (or built by tests)."""

    paper_trades: tuple[Trade, ...] = ()
    paper_executions: tuple[Execution, ...] = ()
    paper_orders_sent: int = 0
    paper_orders_filled: int = 0
    breaker_trips: int = 0  # in paper or sim sessions
    emergency_stops: int = 0  # in paper or sim sessions
    duplicate_orders: int = 0  # client order ids that became more than one broker order
    modes_seen: frozenset[str] = field(default_factory=frozenset)


def _rows(conn: sqlite3.Connection, sql: str, *args) -> list[sqlite3.Row]:
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # a table from a later migration is missing: no records
        return []


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def trades_from_fills(fills: Iterable[Fill], reasons: dict[str, str],
                      strategies: dict[str, str] | None = None) -> list[Trade]:
    """Round trips rebuilt by booking fills in order, as the engine did when they happened;
    each counted for the strategy of the entry that opened it (`strategies`: client order id
    -> strategy)."""
    book = PositionBook(Decimal(0))
    for fill in fills:
        if fill.role is OrderRole.ENTRY and fill.symbol not in book:
            book.set_strategy(fill.symbol, (strategies or {}).get(fill.client_order_id, ""))
        book.apply_fill(fill, "" if fill.role is OrderRole.ENTRY
                        else reasons.get(fill.client_order_id, ""))
    return list(book.trades)


def read_records(path: Path) -> Records:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        modes = {r["session_id"]: r["mode"] for r in _rows(conn, "SELECT session_id, mode FROM sessions")}
        paper = {s for s, m in modes.items() if m == "paper"}
        rehearsal = {s for s, m in modes.items() if m in ("paper", "sim")}
        intents = {r["client_order_id"]: r for r in _rows(conn, "SELECT * FROM intents")}
        reasons = {cid: r["reason"] for cid, r in intents.items()}
        strategies = {cid: r["strategy"] for cid, r in intents.items()}
        fills, executions = [], []
        for r in _rows(conn, "SELECT * FROM fills ORDER BY ts, rowid"):
            if r["session_id"] not in paper:
                continue
            fill = Fill(r["broker_fill_id"], r["order_id"], r["client_order_id"], r["symbol"],
                        Side(r["side"]), int(r["qty"]), Decimal(r["price"]),
                        Decimal(r["commission"]), _ts(r["ts"]), OrderRole(r["role"]))
            fills.append(fill)
            intent = intents.get(fill.client_order_id)
            if intent is not None and intent["ref_price"]:
                executions.append(Execution(fill.side.sign, Decimal(intent["ref_price"]),
                                            fill.price))
        sent = [cid for cid, r in intents.items() if r["session_id"] in paper]
        filled_cids = {f.client_order_id for f in fills}
        events = _rows(conn, "SELECT session_id, action FROM breaker_events")
        trips = sum(1 for r in events if r["action"] == "trip" and r["session_id"] in rehearsal)
        stops = sum(1 for r in _rows(conn, "SELECT session_id, action FROM control_actions")
                    if r["action"] == "emergency_stop" and r["session_id"] in rehearsal)
        dupes = _rows(conn, "SELECT client_order_id FROM order_events WHERE order_id IS NOT NULL "
                            "GROUP BY client_order_id HAVING COUNT(DISTINCT order_id) > 1")
        return Records(tuple(trades_from_fills(fills, reasons, strategies)), tuple(executions),
                       len(sent),
                       len(filled_cids & set(sent)), trips, stops, len(dupes),
                       frozenset(modes.values()))
    finally:
        conn.close()


def _judged(ok: bool, figure: str, requirement: str, name: str, known: bool = True) -> Item:
    if not known:
        return Item(name, Status.UNKNOWN, "no records yet", requirement)
    return Item(name, Status.PASS if ok else Status.FAIL, figure, requirement)


def _performance(trades: Sequence[Trade]) -> tuple[Item, ...]:
    """The paper-trading performance items, for all trades or one strategy's."""
    m = metrics.compute(trades)
    pf, has = m.profit_factor, m.trades > 0
    return (
        _judged(m.trades >= MIN_PAPER_TRADES, plural(m.trades, "paper trade"),
                f">= {MIN_PAPER_TRADES}", "paper trades"),
        _judged(m.win_rate >= MIN_WIN_RATE, f"{m.win_rate:.1f}%", f">= {MIN_WIN_RATE:.0f}%",
                "win rate (paper)", has),
        _judged(pf is None or pf >= MIN_PROFIT_FACTOR,
                "no losing trade" if pf is None else f"{pf:.2f}", f">= {MIN_PROFIT_FACTOR}",
                "profit factor (paper)", has),
    )


def evaluate(records: Records, settings: Settings, runbook: Path = RUNBOOK) -> Checklist:
    m = metrics.compute(records.paper_trades, executions=records.paper_executions,
                        orders_sent=records.paper_orders_sent,
                        orders_filled=records.paper_orders_filled)
    has_paper = m.trades > 0
    judged = _judged
    webhook = getattr(settings, "alert_webhook_url", "")
    cap = getattr(settings, "live_max_capital", Decimal(0))
    items = (
        *_performance(records.paper_trades),
        judged(records.breaker_trips > 0, f"{plural(records.breaker_trips, 'trip')} recorded",
               "a trip in paper or sim", "circuit breaker tested"),
        judged(records.emergency_stops > 0, f"{records.emergency_stops} recorded",
               "one in paper or sim", "emergency stop tested"),
        judged(records.duplicate_orders == 0, plural(records.duplicate_orders, "duplicate"),
               "none", "no duplicate orders", bool(records.modes_seen)),
        judged(m.slippage_bps is not None and m.fill_rate is not None,
               "n/a" if m.slippage_bps is None else
               f"slippage {m.slippage_bps:.2f} bps, fill rate {m.fill_rate or 0:.1f}%",
               "measured on paper fills", "slippage and fill rate monitored", has_paper),
        judged(bool(webhook), "ALERT_WEBHOOK_URL set" if webhook else "ALERT_WEBHOOK_URL unset",
               "a webhook for alerts", "alerting configured"),
        judged(runbook.is_file(), f"{runbook.name} present" if runbook.is_file()
               else f"{runbook.name} missing", "docs/runbook.md", "runbook present"),
        judged(0 < cap <= MAX_LIVE_CAPITAL, f"LIVE_MAX_CAPITAL {cap}" if cap else
               "LIVE_MAX_CAPITAL unset", f"set, at most {MAX_LIVE_CAPITAL}",
               "live capital allocation small"),
    )
    names = sorted({t.strategy or "adopted" for t in records.paper_trades})
    by_strategy = {name: _performance([t for t in records.paper_trades
                                       if (t.strategy or "adopted") == name]) for name in names}
    return Checklist(items, by_strategy)


def for_settings(settings: Settings) -> Checklist:
    from daytrader.store.wiring import journal_path

    path = journal_path(settings)
    records = read_records(path) if path.is_file() else Records()
    return evaluate(records, settings)


def render(checklist: Checklist, out: TextIO) -> None:
    mark = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.UNKNOWN: "  ? "}
    width = max(len(i.name) for i in checklist.items)
    for item in checklist.items:
        print(f"  [{mark[item.status]}] {item.name:<{width}}  {item.figure}  "
              f"(needs {item.requirement})", file=out)
    for name, items in checklist.by_strategy.items():
        figures = ", ".join(f"{i.figure} [{mark[i.status].strip() or '?'}]" for i in items)
        print(f"  strategy {name}: {figures}", file=out)
    verdict = "READY for live" if checklist.ready else (
        f"NOT READY for live: {len(checklist.failing)} of {len(checklist.items)} items open")
    print(f"\n{verdict}", file=out)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", dest="checklist_json", action="store_true",
                   help="print the items as JSON")


def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    checklist = for_settings(settings)
    if args.checklist_json:
        def rows(items):
            return [{"name": i.name, "status": i.status.value, "figure": i.figure,
                     "requirement": i.requirement} for i in items]

        print(json.dumps({"ready": checklist.ready, "items": rows(checklist.items),
                          "by_strategy": {k: rows(v) for k, v in checklist.by_strategy.items()}},
                         indent=2), file=out)
    else:
        print("Production checklist (from the journal):", file=out)
        render(checklist, out)
    return 0 if checklist.ready else 1
