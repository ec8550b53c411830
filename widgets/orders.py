"""Orders pane: time, symbol, side, qty, type, limit/stop, status, filled qty and avg, short id
(the broker order id as the log and `ctl` show it), and with the LLM advisor on, its opinion on
each strategy entry."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message

from daytrader.advisor.opinion import Opinion
from daytrader.clock import EXCHANGE_TZ
from daytrader.engine import EngineSnapshot
from daytrader.models import Order, OrderRole, OrderStatus, OrderType
from widgets.advice import ADVICE_WIDTH, advice_cell
from widgets.formatting import price
from widgets.live_table import Column, LiveTable, Row

ORDER_COLUMNS = (
    Column("time", "Time", 5),
    Column("symbol", "Symbol", 6),
    Column("side", "Side", 4),
    Column("qty", "Qty", 5, "right"),
    Column("type", "Type", 6),
    Column("price", "Lmt/Stp", 8, "right"),
    Column("status", "Status", 8),
    Column("filled", "Filled", 6, "right"),
    Column("avg", "Avg", 8, "right"),
    Column("id", "Id", 10),
    Column("strategy", "Strategy", 14),
)
ADVICE_COLUMN = Column("advice", "Advisor", ADVICE_WIDTH)

_TYPE = {OrderType.MARKET: "mkt", OrderType.LIMIT: "lmt", OrderType.STOP: "stp"}
_ROLE = {OrderRole.ENTRY: "", OrderRole.STOP_LOSS: " SL", OrderRole.TAKE_PROFIT: " TP",
         OrderRole.EXIT: " EX"}
_STATUS = {OrderStatus.PARTIALLY_FILLED: ("partial", "warning"), OrderStatus.FILLED: ("filled", ""),
           OrderStatus.CANCELED: ("canceled", "muted"), OrderStatus.EXPIRED: ("expired", "muted"),
           OrderStatus.REJECTED: ("rejected", "negative"), OrderStatus.NEW: ("new", "positive"),
           OrderStatus.HELD: ("held", "muted")}


def order_row(o: Order, strategy: str = "", advice: dict[str, Opinion] | None = None) -> Row:
    """One order's cells; with `advice` (the advisor is on), its opinion in the last column."""
    row = _order_row(o, strategy)
    if advice is None:
        return row
    return row[0], (*row[1], advice_cell(advice.get(o.client_order_id)))


def _order_row(o: Order, strategy: str) -> Row:
    status, status_tone = _STATUS.get(o.status, (o.status.value, ""))
    level = o.limit_price if o.limit_price is not None else o.stop_price
    return o.id, (
        f"{o.submitted_at.astimezone(EXCHANGE_TZ):%H:%M}",
        o.symbol,
        (o.side.value, "positive" if o.side.value == "buy" else "negative"),
        str(o.qty),
        _TYPE.get(o.order_type, o.order_type.value) + _ROLE.get(o.role, ""),
        price(level) if level is not None else "",
        (status, status_tone) if status_tone else status,
        str(o.filled_qty) if o.filled_qty else "",
        price(o.filled_avg_price) if o.filled_avg_price is not None else "",
        o.short_id,  # the one short id: the log and `ctl` show it, `ctl cancel` takes it
        strategy,
    )


class OrdersTable(LiveTable):
    """Orders, open ones by default (`a` shows all); `x` cancels the selected open order."""

    BINDINGS = [Binding("a", "toggle_filter", "Open/all orders")]

    class FilterChanged(Message):
        def __init__(self, show_all: bool) -> None:
            super().__init__()
            self.show_all = show_all

    def __init__(self, *, symbol: str | None = None, advisor: bool = False,
                 id: str | None = None, classes: str | None = None) -> None:
        columns = (*ORDER_COLUMNS, ADVICE_COLUMN) if advisor else ORDER_COLUMNS
        super().__init__(columns, empty_text="no open orders", fixed=2, id=id, classes=classes)
        self.symbol = symbol  # only this symbol's orders (the symbol screen), else all
        self.advisor = advisor
        self.show_all = False
        self._orders: dict[str, Order] = {}
        self._snapshot: EngineSnapshot | None = None
        self._title()

    def _title(self) -> None:
        self.border_title = f"Orders ({'all' if self.show_all else 'open'})"
        self.empty_text = "no orders" if self.show_all else "no open orders"

    def show(self, snapshot: EngineSnapshot) -> None:
        self._snapshot = snapshot
        orders = [o for o in snapshot.orders if (self.show_all or o.status.is_open)
                  and (self.symbol is None or o.symbol == self.symbol)]
        self._orders = {o.id: o for o in orders}
        advice = {a.client_order_id: a for a in snapshot.advice} if self.advisor else None
        self.set_rows([order_row(o, snapshot.order_strategies.get(o.id, ""), advice)
                       for o in orders])
        open_count = sum(o.status.is_open and (self.symbol is None or o.symbol == self.symbol)
                         for o in snapshot.orders)
        subtitle = f"{open_count} open · a: {'open' if self.show_all else 'all'}"
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle

    @property
    def selected_order(self) -> Order | None:
        key = self.selected_key
        return self._orders.get(key) if key is not None else None

    def action_toggle_filter(self) -> None:
        self.show_all = not self.show_all
        self._title()
        if self._snapshot is not None:
            self.show(self._snapshot)
        self.refresh()
        self.post_message(self.FilterChanged(self.show_all))
