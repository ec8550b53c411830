"""Fills blotter: the day's executions, newest first, to the second: symbol, side, qty, price,
what the fill was (entry, stop-loss, take-profit, exit) and the short id of its order."""

from __future__ import annotations

from collections.abc import Iterable

from daytrader.clock import EXCHANGE_TZ
from daytrader.engine import EngineSnapshot
from daytrader.models import Fill, OrderRole, short_order_id
from daytrader.wording import plural
from widgets.formatting import money, price
from widgets.live_table import Column, LiveTable, Row

FILL_COLUMNS = (
    Column("time", "Time", 8),
    Column("symbol", "Symbol", 6),
    Column("side", "Side", 4),
    Column("qty", "Qty", 6, "right"),
    Column("price", "Price", 9, "right"),
    Column("role", "What", 6),
    Column("value", "Value", 11, "right"),
    Column("order", "Order", 10),
)
ROLE_NAMES = {OrderRole.ENTRY: "entry", OrderRole.STOP_LOSS: "stop", OrderRole.TAKE_PROFIT: "target",
              OrderRole.EXIT: "exit"}


def fill_row(f: Fill) -> Row:
    return f.id, (
        f"{f.ts.astimezone(EXCHANGE_TZ):%H:%M:%S}",
        f.symbol,
        (f.side.value, "positive" if f.side.value == "buy" else "negative"),
        str(f.qty),
        price(f.price),
        (ROLE_NAMES.get(f.role, f.role.value), "warning" if f.role is OrderRole.STOP_LOSS else ""),
        money(f.price * f.qty),
        short_order_id(f.order_id),
    )


def fill_rows(fills: Iterable[Fill]) -> list[Row]:
    return [fill_row(f) for f in reversed(tuple(fills))]


class FillsTable(LiveTable):
    """Today's fills, newest on top."""

    def __init__(self, *, symbol: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(FILL_COLUMNS, empty_text="no fills today", fixed=2, id=id, classes=classes)
        self.border_title = "Fills"
        self.symbol = symbol  # only this symbol's fills (the symbol screen), else all

    def show(self, snapshot: EngineSnapshot) -> None:
        fills = [f for f in snapshot.fills if self.symbol is None or f.symbol == self.symbol]
        self.set_rows(fill_rows(fills))
        subtitle = f"{plural(len(fills), 'fill')} today" if fills else ""
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle
