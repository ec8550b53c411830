"""DayTrader: a terminal console for intraday trading of US stocks. `python app.py --help`.

The Textual app composes the panes in widgets/, starts the engine in an EngineHost (its own thread
and asyncio loop), picks up the engine's latest snapshot a few times a second and sends commands
through the host. Styling lives in styles.tcss.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and {"-h", "--help", "--version"} & set(sys.argv[1:]):
    from daytrader.cli import main as _cli_main  # answers without loading the console

    sys.exit(_cli_main())

import concurrent.futures  # noqa: E402
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Grid
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Footer, Input
from textual.worker import Worker, WorkerState

from daytrader.alerts import alert_for
from daytrader.cli import main as cli_main
from daytrader.clock import EXCHANGE_TZ
from daytrader.config import Settings
from daytrader.engine import CommandResult, EmergencyReport, EngineSnapshot
from daytrader.host import EngineHost
from daytrader.market import SymbolChart
from daytrader.models import Order, OrderIntent, OrderRole, RiskDecision, Side
from daytrader.runtime import RunOptions, build_runtime
from daytrader.snapshot import TicketDefaults
from widgets.account import AccountPane
from widgets.ask import AskModal
from widgets.backtest import BacktestScreen
from widgets.checklist import ChecklistScreen
from widgets.confirm import ConfirmModal
from widgets.debrief import DebriefScreen
from widgets.emergency import EmergencyModal
from widgets.error_modal import ErrorModal
from widgets.event_log import EventLog
from widgets.fills import FillsTable
from widgets.help import HelpScreen
from widgets.order_form import OrderForm
from widgets.orders import OrdersTable
from widgets.pane_tabs import PaneTabs
from widgets.pnl import PnlPane
from widgets.positions import PositionsTable
from widgets.quit_warning import QuitWarning
from widgets.reset_breaker import ResetBreakerModal
from widgets.risk import RiskPane
from widgets.status_bar import E_STOP, StatusBar
from widgets.strategies import StrategiesScreen
from widgets.symbol_screen import SymbolScreen
from widgets.symbol_table import SymbolTable
from widgets.watchlist import WatchlistTable

SOURCE = "console"
W = TypeVar("W", bound=Widget)
POLL_INTERVAL = 0.2  # seconds between snapshot pick-ups: 5 a second
# Behind a modal the panes are dimmed and re-compositing them is costly: once a second is enough.
MODAL_POLL_INTERVAL = 1.0
# Keys that act on the main screen; a modal on top (order form, confirmations) disables them.
MAIN_SCREEN_ACTIONS = {"enable", "disable", "close_position", "cancel_order", "new_order", "sync",
                       "reset_breaker", "help", "search_log", "backtest", "checklist", "show_pane",
                       "zoom", "strategies", "debrief", "ask"}
PANE_ACTIONS = {"show_pane", "zoom", "search_log", "close_position", "cancel_order", "new_order"}
# The panes of the main screen, in the order of their number keys. When the terminal is too
# small for all of them (under 110 columns or 32 lines) one is shown at a time, with tabs.
PANES = (("watchlist", "Watchlist"), ("positions", "Positions"), ("orders", "Orders"),
         ("fills", "Fills"), ("event-log", "Events"), ("summary", "Account & risk"))
# How loud each engine alert is in the console (alerts.alert_for decides what is an alert).
ALERT_SEVERITY = {"breaker": "error", "engine_error": "error", "broker_rejection": "error",
                  "emergency_stop": "warning"}

NAVIGATION_KEYS = (
    ("1 ... 6", "show and focus a pane: " + ", ".join(f"{i} {title}" for i, (_, title)
                                                      in enumerate(PANES, start=1))),
    ("z", "one pane on the whole screen / all panes (below 110x32 it is always one, with tabs)"),
    ("tab / shift+tab", "next / previous pane"),
    ("up / down", "previous / next row of the focused table"),
    ("left / right", "scroll a table's columns"),
    ("pageup / pagedown", "a page of rows up / down"),
    ("home / end", "first / last row"),
    ("enter", "watchlist or positions: open the symbol's screen (chart, orders, fills, keys)"),
    ("o / O", "watchlist: next sort (symbol, distance to signal, change, volume, P&L) / reverse"),
    ("a", "orders pane: show open orders / all orders"),
    ("l", "event log: show all levels / warnings and errors / errors only"),
    ("ctrl+p", "command palette: every key above as a command"),
)
FORM_KEYS = (
    ("tab / shift+tab", "next / previous field"),
    ("enter / ctrl+s", "submit (only when every field is valid)"),
    ("esc", "cancel: nothing is sent"),
    ("f / esc", "emergency modal: flatten everything / keep positions"),
    ("y / n", "confirmations: yes / no"),
)


class DayTraderApp(App[int]):
    """The console. `host_factory` builds the engine host (tests and benchmarks pass their own)."""

    CSS_PATH = "styles.tcss"
    TITLE = "DayTrader"
    AUTO_FOCUS = "#watchlist"
    # Under 110 columns (the account, risk and P&L panes side by side need them to show every
    # figure whole) or 32 lines the main screen shows one pane at a time; modals get compact
    # fields under 46 lines (styles.tcss).
    HORIZONTAL_BREAKPOINTS = [(0, "-cramped"), (110, "-narrow"), (158, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-medium"), (46, "-tall")]
    BINDINGS = [
        Binding("exclamation_mark", "emergency_stop", "STOP", key_display="!", priority=True,
                tooltip="emergency stop: disables trading at once, then asks to flatten "
                        "(f cancels all orders and closes all positions)"),
        Binding("e", "enable", "Enable", tooltip="enable trading"),
        Binding("d", "disable", "Disable", tooltip="disable trading: no new orders"),
        Binding("c", "close_position", "Close", tooltip="close the selected position (confirm)"),
        Binding("x", "cancel_order", "Cancel", tooltip="cancel the selected open order"),
        Binding("n", "new_order", "Order", tooltip="new order form with a live risk preview"),
        Binding("s", "sync", "Sync", tooltip="sync account, positions and orders from the broker"),
        Binding("r", "reset_breaker", "Reset", tooltip="reset the circuit breaker (type RESET)"),
        Binding("slash", "search_log", "Search", key_display="/", show=False,
                tooltip="search the event log"),
        Binding("question_mark", "help", "Help", key_display="?", tooltip="this list of keys"),
        Binding("q", "quit", "Quit", tooltip="quit (warns when positions are open)"),
        # Last of the shown keys: at 80 columns the footer has room up to q, at 120 for all of
        # them (hence "Checks", not "Checklist"); help lists these too.
        Binding("b", "backtest", "Backtest",
                tooltip="backtest a CSV/Parquet file (the live engine keeps trading)"),
        Binding("k", "checklist", "Checks",
                tooltip="the production checklist: READY / NOT READY for live"),
        # Listed in help (?) and the command palette; the footer keeps its room for the above.
        Binding("p", "debrief", "Debrief", show=False,
                tooltip="the daily debrief from the journal: figures, trades, rejections, "
                        "breaker, advisor, what went well and badly"),
        Binding("i", "ask", "Ask", show=False,
                tooltip="ask the journal: why was the AAPL entry at 10:42 refused?"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, tooltip="like q"),
        Binding("z", "zoom", "Zoom", tooltip="one pane on the whole screen / all panes"),
        Binding("g", "strategies", "Strategies",
                tooltip="each strategy's symbols, state, parameters and today's figures; "
                        "space enables or disables one"),
        *(Binding(str(number), f"show_pane('{pane}')", title, show=False,
                  tooltip=f"show the {title.lower()} pane")
          for number, (pane, title) in enumerate(PANES, start=1)),
    ]

    class EngineStarted(Message):
        def __init__(self, host: EngineHost) -> None:
            super().__init__()
            self.host = host

    class CommandDone(Message):
        def __init__(self, name: str, result: Any) -> None:
            super().__init__()
            self.name = name
            self.result = result

    class TradingDisabled(Message):
        def __init__(self, source: str) -> None:
            super().__init__()
            self.source = source

    class OrdersCanceled(Message):
        def __init__(self, count: int) -> None:
            super().__init__()
            self.count = count

    class PositionsClosed(Message):
        def __init__(self, closes_sent: int, flat: bool) -> None:
            super().__init__()
            self.closes_sent = closes_sent
            self.flat = flat

    def __init__(self, settings: Settings | None = None, options: RunOptions | None = None, *,
                 host_factory: Callable[[], EngineHost] | None = None,
                 wall_clock: Callable[[], datetime] | None = None,
                 poll_interval: float = POLL_INTERVAL, publish_interval: float = 0.1) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.options = options or RunOptions()
        self._host_factory = host_factory or self._default_host
        self.wall_clock = wall_clock or (lambda: datetime.now(EXCHANGE_TZ))
        self.poll_interval = poll_interval
        self.publish_interval = publish_interval
        self.host: EngineHost | None = None
        self.snapshot: EngineSnapshot | None = None
        self.polls = 0  # snapshots applied to the panes
        self._pending_disable = False
        self._crash_shown = False
        self._applied_at = 0.0
        self._closing = False
        self.alerted_seq = 0  # the newest engine event already checked for an alert
        self.active_pane = PANES[0][0]  # the pane on screen when only one fits, and the zoomed one

    def _default_host(self) -> EngineHost:
        return EngineHost(build_runtime(self.settings, self.options), self.publish_interval)

    # -- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield PaneTabs(PANES, id="pane-tabs")
        # One grid; styles.tcss places the panes for each terminal size.
        with Grid(id="body"):
            with Grid(id="summary", classes="pane"):
                yield AccountPane(id="account")
                yield RiskPane(id="risk")
                yield PnlPane(id="pnl")
            yield WatchlistTable(id="watchlist", classes="pane")
            yield PositionsTable(id="positions", classes="pane")
            yield OrdersTable(id="orders", classes="pane",
                              advisor=self.settings.advisor_mode != "off")
            yield FillsTable(id="fills", classes="pane")
            yield EventLog(id="event-log", classes="pane")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.main_screen = self.screen
        self._mark_active_pane()
        # After the first frame: building the runtime (calendar, journal) takes a while and should
        # not hold up the first picture.
        self.call_after_refresh(self.start_engine)

    def pane(self, kind: type[W]) -> W:
        """A pane of the main screen, even while a modal is on top."""
        return self.main_screen.query_one(kind)

    def on_unmount(self) -> None:
        self._closing = True
        if self.host is not None:
            self.host.stop()

    # -- the engine --------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="engine", name="engine start")
    def start_engine(self) -> None:
        host = self._host_factory()
        host.start()
        if self._closing:
            host.stop()
            return
        self.post_message(self.EngineStarted(host))

    @on(EngineStarted)
    def _engine_started(self, message: EngineStarted) -> None:
        self.host = message.host
        if self._pending_disable:
            self.host.disable(f"{SOURCE} (emergency stop before start)")
        self._show_recovery()
        self.poll_engine()
        self.set_interval(self.poll_interval, self.poll_engine, name="snapshot poll")

    def poll_engine(self, force: bool = False) -> None:
        """Applies the engine's latest snapshot to every pane; each pane changes only what differs."""
        host = self.host
        if host is None or not self.screen_stack:  # not started yet, or shutting down
            return
        if host.error is not None and not self._crash_shown:
            self._crash_shown = True
            self.push_screen(ErrorModal("The engine stopped", f"{host.error!r}\n\nTrading is "
                                        "DISABLED. Positions and their protective orders stay at "
                                        "the broker. Restart the console to trade again."))
        snapshot = host.latest
        if snapshot is self.snapshot:
            return
        self._ring_alerts(snapshot)
        now = time.monotonic()
        if (not force and isinstance(self.screen, ModalScreen)
                and now - self._applied_at < MODAL_POLL_INTERVAL):
            return  # the panes are dimmed behind a modal: redraw them once a second only
        self._applied_at = now
        try:
            panes = (self.pane(StatusBar), self.pane(AccountPane), self.pane(RiskPane),
                     self.pane(WatchlistTable), self.pane(PositionsTable), self.pane(OrdersTable),
                     self.pane(FillsTable), self.pane(PnlPane), self.pane(EventLog))
            self.snapshot = snapshot
            status, *others = panes
            with self.batch_update():
                status.show(snapshot, self.wall_clock(), host.error)
                for pane in others:
                    pane.show(snapshot)
                for screen in self.screen_stack[1:]:  # e.g. a symbol's screen: it has its own
                    show = getattr(screen, "show_snapshot", None)
                    if show is not None:
                        show(snapshot, self.wall_clock(), host.error)
        except NoMatches:  # shutting down: the panes (or their parts) are already gone
            return
        self.polls += 1

    def _ring_alerts(self, snapshot: EngineSnapshot) -> None:
        """Bell and a notification for each new engine event that is an alert (breaker trip,
        emergency stop, broker error, engine error); event seq numbers keep it to once each."""
        if snapshot.event_seq <= self.alerted_seq:
            return
        fresh = [e for e in snapshot.events if e.seq > self.alerted_seq]
        self.alerted_seq = snapshot.event_seq
        for event in fresh:
            alert = alert_for(event)
            if alert is not None and alert.kind == "emergency_stop" and \
                    event.data.get("source") == SOURCE:
                continue  # this console's own stop: its modal and its report say it, once
            if alert is not None:
                self.bell()
                self.notify(alert.message, title=alert.title,
                            severity=ALERT_SEVERITY.get(alert.kind, "warning"), timeout=15)

    def _show_recovery(self) -> None:
        """After a crash, what the journal gave back; the engine also logged it as an event."""
        store = self.host.runtime.store if self.host is not None else None
        if store is not None and store.recovered is not None:
            self.notify(store.recovered.summary(), title="Recovered from the journal",
                        severity="warning", timeout=20)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """The one place a failed worker turns into a visible error, with trading disabled."""
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        if self.host is not None:
            self.host.disable(f"{SOURCE} (after an error)")
        self.pane(StatusBar).show_error(repr(error))
        title = ("The engine could not start" if event.worker.group == "engine"
                 else f"{event.worker.name} failed")
        self.push_screen(ErrorModal(title, f"{error!r}\n\nTrading is DISABLED."))

    @work(thread=True, exit_on_error=False, group="commands", name="engine command")
    def await_command(self, name: str, future: concurrent.futures.Future, timeout: float) -> None:
        self.post_message(self.CommandDone(name, future.result(timeout)))

    def _command(self, name: str, send: Callable[[EngineHost], concurrent.futures.Future],
                 timeout: float = 30.0) -> bool:
        if self.host is None:
            self.notify("The engine is still starting.", severity="warning")
            return False
        self.await_command(name, send(self.host), timeout)
        return True

    @on(CommandDone)
    def _command_done(self, message: CommandDone) -> None:
        result = message.result
        if isinstance(result, CommandResult) and isinstance(result.detail, EmergencyReport):
            result = result.detail
            self.post_message(self.OrdersCanceled(result.canceled))
            self.post_message(self.PositionsClosed(result.close_orders, result.flat))
            self.notify(result.message, title="Emergency stop",
                        severity="information" if result.flat else "error", timeout=15)
        elif isinstance(result, CommandResult) or hasattr(result, "ok"):
            self.notify(result.message, title=message.name,
                        severity="information" if result.ok else "warning")
        self.poll_engine()

    def _preview(self, intent: OrderIntent) -> RiskDecision:
        assert self.host is not None
        return self.host.call(self.host.engine.preview, intent).result(timeout=5)

    # -- keys --------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MAIN_SCREEN_ACTIONS and isinstance(self.screen, ModalScreen):
            return False
        # The panes' keys mean nothing on another full screen (a symbol's).
        return not (action in PANE_ACTIONS and self.screen_stack
                    and self.screen is not self.screen_stack[0])

    def _expect_state(self, label: str) -> None:
        """The status bar shows the new state on the key press, not at the next snapshot."""
        with suppress(NoMatches):
            self.pane(StatusBar).expect(label)

    def action_enable(self) -> None:
        if self._command("enable", lambda h: h.enable(SOURCE)):
            snapshot = self.snapshot
            self._expect_state("HALTED (breaker)" if snapshot is not None
                               and snapshot.breaker_tripped else "ENABLED")

    def action_disable(self) -> None:
        if self._command("disable", lambda h: h.disable(SOURCE)):
            # A plain disable does not end an emergency stop: it still reads E-STOP.
            stopped = self.snapshot is not None and self.snapshot.emergency_stop
            self._expect_state(E_STOP if stopped else "DISABLED")
            self.post_message(self.TradingDisabled(SOURCE))

    def action_emergency_stop(self) -> None:
        if isinstance(self.screen, EmergencyModal):
            return
        if self.host is None:
            self._pending_disable = True
            self.notify("Trading will be disabled as soon as the engine starts.",
                        title="Emergency stop", severity="error")
            return
        # The halt flag is set before this returns; the modal is the feedback, the log has the rest.
        self.host.disable(SOURCE, emergency=True)
        self._expect_state(E_STOP)
        self.post_message(self.TradingDisabled(f"{SOURCE} (emergency stop)"))
        snapshot = self.host.latest
        open_orders = sum(o.status.is_open for o in snapshot.orders)
        self.push_screen(EmergencyModal(len(snapshot.positions), open_orders),
                         callback=self._after_emergency_modal)

    def _after_emergency_modal(self, flatten: bool | None) -> None:
        if flatten:
            self._command("emergency stop", lambda h: h.emergency_stop(SOURCE), timeout=180.0)
        else:
            self.notify("Trading stays disabled; positions and orders kept.", title="Emergency stop")

    def selected_symbol(self) -> str | None:
        """The symbol of the watchlist's row when the watchlist has focus, else the positions
        pane's: what `c` closes and what `n` fills in."""
        if isinstance(self.focused, WatchlistTable):
            return self.focused.selected_symbol
        return self.pane(PositionsTable).selected_symbol

    def action_close_position(self) -> None:
        self.close_position(self.selected_symbol())

    def close_position(self, symbol: str | None) -> None:
        """Asks, then closes the position in `symbol` (the symbol screen's `c` comes here too)."""
        position = next((p for p in self.snapshot.positions if p.symbol == symbol), None) \
            if self.snapshot is not None and symbol else None
        if position is None:
            self.notify(f"No position in {symbol}." if symbol else
                        "No position selected: pick a row in the positions pane (2) or the "
                        "watchlist (1).", severity="warning")
            return
        side = "sell" if position.qty > 0 else "buy"
        body = (f"{side.capitalize()} {abs(position.qty)} {position.symbol} at market, after "
                "canceling its stop-loss and take-profit orders.")
        self.push_screen(ConfirmModal(f"Close {position.symbol}?", body, "Close (y)",
                                      id="close-confirm"),
                         callback=partial(self._after_close_confirm, position.symbol))

    def _after_close_confirm(self, symbol: str, confirmed: bool | None) -> None:
        if confirmed:
            self._command(f"close {symbol}",
                          lambda h: h.close_position(symbol, SOURCE))

    def action_cancel_order(self) -> None:
        self.cancel_order(self.pane(OrdersTable).selected_order)

    def cancel_order(self, order: Order | None) -> None:
        """Cancels the selected open order (the symbol screen's `x` comes here too)."""
        if order is None or not order.status.is_open:
            self.notify("No open order selected: move to the orders pane (tab) and pick a row.",
                        severity="warning")
            return

        def cancel() -> None:
            self._command(f"cancel {order.short_id}",
                          lambda h: h.cancel_order(order.id, SOURCE))

        if order.role not in (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT):
            cancel()
            return
        leg = "stop-loss" if order.role is OrderRole.STOP_LOSS else "take-profit"
        after = (f"{order.symbol} will be UNPROTECTED: nothing at the broker limits its loss"
                 if order.role is OrderRole.STOP_LOSS else
                 f"{order.symbol} keeps its stop-loss but loses its profit target")
        self.push_screen(ConfirmModal(f"Cancel the {leg} of {order.symbol}?",
                                      f"{leg} {order.side} {order.qty} {order.symbol} @ "
                                      f"{order.stop_price or order.limit_price}. {after}.",
                                      f"Cancel the {leg} (y)"),
                         callback=lambda yes: cancel() if yes else None)

    def action_new_order(self) -> None:
        if self.host is None or self.snapshot is None:
            self.notify("The engine is still starting.", severity="warning")
            return
        self.open_ticket(self.selected_symbol() or "", "buy")

    def open_ticket(self, symbol: str, side: str) -> None:
        """The order ticket for `symbol` (may be empty) on `side`. It opens at once, so keys
        typed right after `n` land in it; the engine's size and bracket fill in a moment later
        (the ticket asks for them itself)."""
        if self.host is None or self.snapshot is None:
            self.notify("The engine is still starting.", severity="warning")
            return
        self.push_screen(
            OrderForm(self.snapshot.symbols,
                      buying_power=lambda: self.snapshot.account.buying_power
                      if self.snapshot else Decimal(0),
                      last_prices=lambda: self.snapshot.last_prices if self.snapshot else {},
                      preview=self._preview, symbol=symbol, side=side,
                      suggest=self._ticket_defaults,
                      held=lambda: {p.symbol: p.qty for p in self.snapshot.positions}
                      if self.snapshot else {}),
            callback=self._after_order_form)

    def _ticket_defaults(self, symbol: str, side: Side, price: Decimal | None) -> TicketDefaults:
        assert self.host is not None
        return self.host.call(self.host.engine.ticket, symbol, side, price).result(timeout=5)

    def _after_order_form(self, intent: OrderIntent | None) -> None:
        if intent is not None:
            self._command(f"order {intent.side} {intent.qty} {intent.symbol}",
                          lambda h: h.submit(intent, SOURCE))

    def action_sync(self) -> None:
        self._command("sync", lambda h: h.sync(SOURCE))

    def action_reset_breaker(self) -> None:
        if self.snapshot is None or not self.snapshot.breaker_tripped:
            self.notify("The circuit breaker is not tripped.", title="Reset breaker")
            return
        self.push_screen(ResetBreakerModal(self.snapshot.daily_loss_pct,
                                           self.snapshot.max_daily_loss_pct),
                         callback=self._after_reset_confirm)

    def _after_reset_confirm(self, confirmed: bool | None) -> None:
        if confirmed:
            self._command("reset breaker", lambda h: h.reset_breaker(SOURCE))

    def action_backtest(self) -> None:
        calendar = self.host.runtime.calendar if self.host is not None else None
        self.push_screen(BacktestScreen(self.settings, calendar))

    def action_checklist(self) -> None:
        self.push_screen(ChecklistScreen(self.settings))

    def action_strategies(self) -> None:
        def switch(name: str, enable: bool) -> None:
            self._command(f"strategy {name}",
                          lambda h: h.set_strategy_enabled(name, enable, SOURCE))

        self.push_screen(StrategiesScreen(lambda: self.snapshot, switch))

    def action_debrief(self) -> None:
        self.push_screen(DebriefScreen(self._debrief, self._trading_days))

    def _debrief(self, day: date | None) -> concurrent.futures.Future:
        """The debrief of `day`, built on the engine's loop (LLM advisory in the runtime)."""
        host = self._host_with_advisory()
        return host.run(lambda: host.runtime.advisory.debrief(day))

    def _trading_days(self) -> list[date]:
        from daytrader.advisor.dayfacts import trading_days
        from daytrader.store.wiring import journal_path

        return trading_days(journal_path(self.settings))

    def action_ask(self) -> None:
        self.push_screen(AskModal(self._ask))

    def _ask(self, question: str) -> concurrent.futures.Future:
        host = self._host_with_advisory()
        return host.run(lambda: host.runtime.advisory.ask(question))

    def _host_with_advisory(self) -> EngineHost:
        if self.host is None or self.host.runtime.advisory is None:
            raise RuntimeError("the engine is still starting")
        return self.host

    def action_search_log(self) -> None:
        self.action_show_pane("event-log")
        self.pane(EventLog).action_search()

    # -- a symbol's screen -------------------------------------------------------------------------
    @on(SymbolTable.OpenSymbol)
    def _open_symbol(self, message: SymbolTable.OpenSymbol) -> None:
        self.open_symbol(message.symbol)

    def open_symbol(self, symbol: str) -> None:
        if self.host is None or self.snapshot is None:
            self.notify("The engine is still starting.", severity="warning")
            return
        symbols = [q.symbol for q in self.snapshot.quotes] or list(self.snapshot.symbols)
        screen = SymbolScreen(symbol, symbols, self._symbol_chart)
        self.push_screen(screen)
        self.call_after_refresh(self.poll_engine, True)

    def _symbol_chart(self, symbol: str) -> SymbolChart:
        assert self.host is not None
        return self.host.call(self.host.engine.symbol_chart, symbol).result(timeout=5)

    @on(SymbolScreen.Trade)
    def _trade_from_symbol(self, message: SymbolScreen.Trade) -> None:
        self.open_ticket(message.symbol, message.side)

    @on(SymbolScreen.Close)
    def _close_from_symbol(self, message: SymbolScreen.Close) -> None:
        self.close_position(message.symbol)

    @on(SymbolScreen.Cancel)
    def _cancel_from_symbol(self, message: SymbolScreen.Cancel) -> None:
        self.cancel_order(message.order)

    # -- panes -------------------------------------------------------------------------------------
    def action_show_pane(self, pane: str) -> None:
        """Puts a pane on screen (when one is shown at a time) and focuses it."""
        self.active_pane = pane
        self._mark_active_pane()
        widget = self.main_screen.query_one(f"#{pane}")
        # Not a text field (the log's search): the number keys must keep working after.
        target = widget if widget.can_focus else next(
            (w for w in widget.query("*") if w.focusable and not isinstance(w, Input)), None)
        if target is not None:
            target.focus()

    def action_zoom(self) -> None:
        """One pane on the whole body (the active one: picked by its number or by focus), or all
        of them again."""
        self.main_screen.toggle_class("-zoomed")
        self._mark_active_pane()

    def _mark_active_pane(self) -> None:
        with suppress(NoMatches):
            for widget in self.main_screen.query(".pane"):
                widget.set_class(widget.id == self.active_pane, "-active")
            self.pane(PaneTabs).set_active(self.active_pane)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """Tab into a pane makes it the active one (the one a zoom shows)."""
        pane = next((a for a in event.widget.ancestors_with_self if a.has_class("pane")), None)
        if pane is not None and pane.id and pane.id != self.active_pane:
            self.active_pane = pane.id
            self._mark_active_pane()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_sections()))

    async def action_quit(self) -> None:
        snapshot = self.snapshot
        if snapshot is not None and snapshot.positions and not isinstance(self.screen, QuitWarning):
            open_orders = sum(o.status.is_open for o in snapshot.orders)
            self.push_screen(QuitWarning(snapshot.positions, open_orders, snapshot.mode),
                             callback=self._after_quit_warning)
            return
        self.exit(0)

    def _after_quit_warning(self, confirmed: bool | None) -> None:
        if confirmed:
            self.exit(0)

    # -- what the help screen and the command palette list -----------------------------------------
    def help_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        trading = [(b.key_display or b.key, b.tooltip or b.description)
                   for b in self.BINDINGS if isinstance(b, Binding)]
        return [("Trading and app", trading), ("Moving around", list(NAVIGATION_KEYS)),
                ("In forms and modals", list(FORM_KEYS))]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for b in self.BINDINGS:
            if isinstance(b, Binding) and b.key != "ctrl+c":
                yield SystemCommand(f"{b.description} ({b.key_display or b.key})",
                                    b.tooltip or b.description,
                                    partial(self.call_later, self.run_action, b.action))
        yield from super().get_system_commands(screen)


def run_console(settings: Settings, options: RunOptions) -> int:
    app = DayTraderApp(settings, options)
    app.run()
    return app.return_code or 0


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, run_console)


if __name__ == "__main__":
    sys.exit(main())
