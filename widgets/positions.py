"""Positions pane: symbol, qty, unrealized $ and %, stop, take-profit, avg entry, last, age.

Stop and take-profit are the protective orders working at the broker now (known by order id);
a position without a working stop reads UNPROTECTED, in red."""

from __future__ import annotations

from datetime import datetime

from daytrader.engine import EngineSnapshot
from daytrader.models import Position
from widgets.formatting import age, money, price, tone
from widgets.live_table import Column, Row
from widgets.symbol_table import SymbolTable

# What protects and what it is worth first: a narrow pane cuts the entry price, not the stop.
POSITION_COLUMNS = (
    Column("symbol", "Symbol", 6),
    Column("qty", "Qty", 6, "right"),
    Column("upnl", "Unrl $", 10, "right"),
    Column("upct", "Unrl %", 7, "right"),
    Column("stop", "Stop", 11, "right"),
    Column("target", "Target", 8, "right"),
    Column("avg", "Avg entry", 9, "right"),
    Column("last", "Last", 9, "right"),
    Column("age", "Age", 6, "right"),
    Column("strategy", "Strategy", 14),
)


def position_row(p: Position, now: datetime) -> Row:
    pnl_tone = tone(p.unrealized_pnl)
    return p.symbol, (
        p.symbol,
        str(p.qty),
        (money(p.unrealized_pnl, signed=True), pnl_tone),
        (f"{p.unrealized_pct:+.2f}%", pnl_tone),
        # The stop working at the broker now; none means a loss has no floor.
        price(p.stop_loss) if p.protected else ("UNPROTECTED", "negative"),
        price(p.take_profit),
        price(p.avg_entry_price),
        price(p.last_price),
        age(p.opened_at, now),
        (p.strategy or "adopted", "" if p.strategy else "muted"),
    )


class PositionsTable(SymbolTable):
    """Open positions, one row per symbol; `c` closes the selected one (after a confirmation),
    Enter opens its symbol's screen."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(POSITION_COLUMNS, empty_text="no open positions", fixed=1, id=id,
                         classes=classes)
        self.border_title = "Positions"

    def show(self, snapshot: EngineSnapshot) -> None:
        self.set_rows([position_row(p, snapshot.ts) for p in snapshot.positions])
        subtitle = f"{len(snapshot.positions)} open"
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle

