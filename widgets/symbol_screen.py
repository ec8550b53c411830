"""A symbol's screen (Enter on the watchlist or positions): the session's candles with the
strategy's lines, fills and working stop and target; its quote and readings; its position and
P&L, orders and fills; `b` / `s` open the order ticket, `c` closes the position, `x` cancels
the selected order, `[` / `]` step through the watchlist, Esc goes back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from daytrader.engine import EngineSnapshot
from daytrader.market import Quote, SymbolChart
from daytrader.models import Order, Position
from widgets.candle_chart import CandleChart
from widgets.fills import FillsTable
from widgets.fitted_text import FittedText
from widgets.formatting import compact_number, money, pct, price, show_text, tone
from widgets.orders import OrdersTable
from widgets.status_bar import StatusBar
from widgets.watchlist import signal_text


def quote_lines(q: Quote | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The symbol's two lines, each in forms from the longest down, so a narrow screen drops
    words and whole figures, never part of one: last, change since the open, range and volume;
    the readings and the next signal."""
    if q is None:
        return ("no quote yet",), ("",)
    last = f"{q.symbol}  {price(q.last)}"
    change = (f"  {q.change:+,.2f} ({pct(q.change_pct)})"
              if q.change is not None and q.change_pct is not None else "")
    since = f" since the open {price(q.open)}" if change else ""
    span = f"  ·  high {price(q.high)} low {price(q.low)}" if q.bars else ""
    volume = f"  ·  volume {compact_number(q.volume)}" if q.bars else ""
    head = (last + change + since + span + volume, last + change + since + span,
            last + change + span, last + change)
    readings = "  ".join(f"{name} {price(v) if v is not None else '-'}"
                         for name, v in q.indicators.items())
    signal, distance = signal_text(q)
    signal_words = signal if isinstance(signal, str) else signal[0]
    distance_words = distance if isinstance(distance, str) else distance[0]
    tail = f"next: {signal_words}" + (f" ({distance_words} away)" if distance_words else "")
    return head, ((f"{readings}  ·  {tail}", tail) if readings else (tail,))


def position_text(position: Position | None, realized, stop, take) -> tuple[str, str]:
    """The position and the symbol's P&L today, with the levels protecting it."""
    real = f"realized today {money(realized, signed=True)}"
    if position is None:
        return f"flat  ·  {real}", tone(realized)
    levels = (f"stop {price(stop) if stop is not None else 'NONE'}  ·  "
              f"target {price(take) if take is not None else 'none'}")
    return (f"{position.qty:+d} @ {price(position.avg_entry_price)}  ·  unrealized "
            f"{money(position.unrealized_pnl, signed=True)} ({position.unrealized_pct:+.2f}%)  ·  "
            f"{real}\n{levels}", tone(position.unrealized_pnl + realized))


class SymbolScreen(Screen[None]):
    """Everything about one symbol. Its data comes from the engine's snapshots and, for the
    chart, from `fetch_chart` (the engine's `symbol_chart`, asked on the engine's loop)."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("b", "buy", "Buy"),
        Binding("n", "buy", "Order", show=False),
        Binding("s", "sell", "Sell"),
        Binding("c", "close", "Close"),
        Binding("x", "cancel", "Cancel"),
        Binding("left_square_bracket", "step(-1)", "Previous symbol", key_display="[",
                show=False),
        Binding("right_square_bracket", "step(1)", "Next symbol", key_display="]", show=False),
    ]
    # Nothing focused at first: the footer then starts with this screen's keys (and `!`), and
    # `x` cancels the orders pane's highlighted row; Tab moves into the orders and fills.
    AUTO_FOCUS = None

    class Trade(Message):
        """b / s: the app opens the order ticket for this symbol and side."""

        def __init__(self, symbol: str, side: str) -> None:
            super().__init__()
            self.symbol = symbol
            self.side = side

    class Close(Message):
        def __init__(self, symbol: str) -> None:
            super().__init__()
            self.symbol = symbol

    class Cancel(Message):
        def __init__(self, order: Order | None) -> None:
            super().__init__()
            self.order = order

    class ChartReady(Message):
        def __init__(self, chart: SymbolChart | None, error: str = "") -> None:
            super().__init__()
            self.chart = chart
            self.error = error

    def __init__(self, symbol: str, symbols: Sequence[str],
                 fetch_chart: Callable[[str], SymbolChart]) -> None:
        super().__init__(id="symbol-screen")
        self.symbol = symbol
        self.symbols = tuple(symbols)
        self._fetch_chart = fetch_chart
        self._chart_key: tuple | None = None
        self.snapshot: EngineSnapshot | None = None
        self._shown: tuple[EngineSnapshot, datetime, BaseException | None] | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar(id="symbol-status")
        yield FittedText("", id="symbol-quote", markup=False)
        with Horizontal(id="symbol-main"):
            yield CandleChart(id="symbol-chart")
            with Vertical(id="symbol-side"):
                yield Static("", id="symbol-position", markup=False)
                yield OrdersTable(symbol=self.symbol, id="symbol-orders")
                yield FillsTable(symbol=self.symbol, id="symbol-fills")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._titles()

    def _titles(self) -> None:
        self.query_one("#symbol-orders", OrdersTable).border_title = f"{self.symbol} orders"
        self.query_one("#symbol-fills", FillsTable).border_title = f"{self.symbol} fills"
        self.sub_title = self.symbol

    def show_snapshot(self, snapshot: EngineSnapshot, wall_now: datetime,
                      error: BaseException | None) -> None:
        """Called by the app with each snapshot it applies."""
        self.snapshot = snapshot
        self._shown = (snapshot, wall_now, error)
        self.query_one(StatusBar).show(snapshot, wall_now, error)
        quote = next((q for q in snapshot.quotes if q.symbol == self.symbol), None)
        self.query_one("#symbol-quote", FittedText).show(*quote_lines(quote))
        position = next((p for p in snapshot.positions if p.symbol == self.symbol), None)
        orders = [o for o in snapshot.orders if o.symbol == self.symbol and o.status.is_open]
        realized = snapshot.realized_by_symbol.get(self.symbol, 0)
        chart = self.query_one(CandleChart).chart
        stop = next((o.stop_price for o in orders if o.role.value == "stop_loss"), None)
        take = next((o.limit_price for o in orders if o.role.value == "take_profit"), None)
        if position is not None:
            stop = stop if stop is not None else position.stop_loss
            take = take if take is not None else position.take_profit
        text, text_tone = position_text(position, realized, stop, take)
        widget = self.query_one("#symbol-position", Static)
        show_text(widget, text)
        for name in ("positive", "negative", "muted"):
            widget.set_class(text_tone == name, f"-{name}")
        self.query_one("#symbol-orders", OrdersTable).show(snapshot)
        self.query_one("#symbol-fills", FillsTable).show(snapshot)
        # The chart is asked for again when the symbol's bars, fills or working orders change.
        key = (quote.bars if quote else 0, quote.last if quote else None,
               sum(1 for f in snapshot.fills if f.symbol == self.symbol),
               tuple(sorted(o.id for o in orders)), position.qty if position else 0)
        if key != self._chart_key or chart is None:
            self._chart_key = key
            self.load_chart(self.symbol)

    @work(thread=True, exclusive=True, exit_on_error=False, group="symbol-chart")
    def load_chart(self, symbol: str) -> None:
        try:
            chart = self._fetch_chart(symbol)
        except Exception as exc:  # shown on the chart; the engine may be down
            self.post_message(self.ChartReady(None, f"chart unavailable: {exc!r}"))
            return
        self.post_message(self.ChartReady(chart))

    @on(ChartReady)
    def _chart_ready(self, message: ChartReady) -> None:
        if message.chart is None:
            self.query_one(CandleChart).plt.title(message.error)
            self.query_one(CandleChart).refresh()
        elif message.chart.symbol == self.symbol:
            self.query_one(CandleChart).show(message.chart)

    # -- keys ------------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.dismiss(None)

    def action_buy(self) -> None:
        self.post_message(self.Trade(self.symbol, "buy"))

    def action_sell(self) -> None:
        self.post_message(self.Trade(self.symbol, "sell"))

    def action_close(self) -> None:
        self.post_message(self.Close(self.symbol))

    def action_cancel(self) -> None:
        self.post_message(self.Cancel(self.query_one("#symbol-orders", OrdersTable).selected_order))

    def action_step(self, step: int) -> None:
        """The previous / next symbol of the universe, on this screen."""
        if self.symbol not in self.symbols:
            return
        self.symbol = self.symbols[(self.symbols.index(self.symbol) + step) % len(self.symbols)]
        self.query_one("#symbol-orders", OrdersTable).symbol = self.symbol
        self.query_one("#symbol-fills", FillsTable).symbol = self.symbol
        self._titles()
        self._chart_key = None
        if self._shown is not None:
            self.show_snapshot(*self._shown)
