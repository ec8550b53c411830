"""The engine: wires data -> strategy -> risk/orders -> broker -> fills -> positions, and the controls.

One place decides; the console, the control API and headless mode all call the same commands
(`enable`, `disable`, `emergency_stop`, `close_position`, `cancel_order`, `submit`, `sync`,
`reset_breaker`) and read the same immutable `EngineSnapshot`.

Closing is one routine (`close`) for every path: a strategy exit, the console, the API, `ctl`,
the flatten before the close and the emergency stop. It cancels the symbol's working orders
(bracket legs included, known by id), waits until each cancel is confirmed or the order is found
filled, reads the broker's position, and closes exactly that, through the `reduce_only` check.
A leg that fills meanwhile ends the close with nothing more sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from daytrader.advisor.context import AccountState, EntryContext, entry_context
from daytrader.advisor.opinion import Opinion, advisor_check
from daytrader.broker import Broker, BrokerError, NotCancelable, NotFound, is_in_process
from daytrader.clock import EXCHANGE_TZ, Clock, MarketCalendar, Session
from daytrader.config import Settings
from daytrader.market import Quote, SessionTape, SymbolChart
from daytrader.metrics import Metrics
from daytrader.metrics import compute as compute_metrics
from daytrader.models import (
    ZERO,
    Account,
    Bar,
    CheckResult,
    Fill,
    Health,
    LogEvent,
    Order,
    OrderIntent,
    OrderRole,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    RiskDecision,
    Side,
    Signal,
    TradingState,
    short_order_id,
    to_money,
    to_price,
)
from daytrader.order_book import OrderBook, is_older
from daytrader.orders import OrderManager, SubmitResult, SubmitStatus, client_order_id
from daytrader.positions import PositionBook
from daytrader.risk import (
    CircuitBreaker,
    RiskContext,
    RiskLimits,
    StopCooldown,
    check_exit,
    check_order,
    daily_loss_pct,
    size_entry,
)
from daytrader.snapshot import (
    CloseReport,
    CommandResult,
    EmergencyReport,
    EngineSnapshot,
    TicketDefaults,
)
from daytrader.store.journal import NullJournal
from daytrader.store.recovery import Recovered
from daytrader.strategy import Strategy
from daytrader.strategy.loader import assign
from daytrader.strategy.running import RunningStrategies
from daytrader.wording import money, plural

if TYPE_CHECKING:
    from daytrader.advisor.entries import EntryAdvisor, Question

log = logging.getLogger(__name__)
MINUTE = timedelta(minutes=1)
# Components whose trouble pauses new entries (closing is never paused).
PAUSE_ENTRIES_ON = ("data", "trade_stream", "broker")
UNPROTECTED_ALERT_SECONDS = 30.0
# Members looked at on every order and fill, by module name: looking one up on its enum class
# is slow (EnumType has __getattr__).
_ENTRY, _EXIT = OrderRole.ENTRY, OrderRole.EXIT
_MARKET = OrderType.MARKET
_RISK_REJECTED, _DUPLICATE = SubmitStatus.RISK_REJECTED, SubmitStatus.DUPLICATE
__all__ = ["CloseReport", "CommandResult", "EmergencyReport", "Engine", "EngineSnapshot"]


def _failed_close(symbol: str, error: BaseException | None) -> CloseReport:
    return CloseReport(symbol, False, f"close {symbol}: failed: {error!r}")


class Engine:
    def __init__(self, settings: Settings, broker: Broker, calendar: MarketCalendar,
                 clock: Clock, strategy: Strategy | Mapping[str, Strategy] | None = None) -> None:
        """`strategy`: one for every symbol, a strategy per symbol, or None for the settings'
        STRATEGY / STRATEGY_SYMBOLS."""
        self.settings = settings
        self.broker = broker
        self.calendar = calendar
        self.clock = clock
        plan = (assign(settings) if strategy is None else dict(strategy)
                if isinstance(strategy, Mapping) else dict.fromkeys(settings.symbols, strategy))
        self.strategies = RunningStrategies(plan, self._strategy_failed)
        self.limits = RiskLimits.from_settings(settings)
        self.orders = OrderManager(broker)
        self.book = PositionBook(settings.starting_cash)
        self.breaker = CircuitBreaker(settings.max_daily_loss_pct)
        self.cooldown = StopCooldown(settings.cooldown_after_stops, settings.cooldown_minutes)
        self.enabled = settings.trading_enabled_at_start
        self.pause_entries_on = PAUSE_ENTRIES_ON
        self.order_book = OrderBook()
        self.emergency_stopped = False  # set by an emergency stop, cleared by enable()
        self.tape = SessionTape()  # the session's bars and chart lines, for the console
        self.record_tape = True  # backtests turn it off: nobody looks at their charts
        # Backtests turn it off too: nobody reads their event log (a few per order), so only
        # errors are recorded there; trades, fills, rejections and metrics are kept as always.
        self.record_events = True
        self._day_fills = 0  # where today begins in `fills`
        self._quotes: dict[str, tuple[tuple, Quote]] = {}  # symbol -> (what it was built from, quote)
        self.account = Account(settings.starting_cash, settings.starting_cash,
                               settings.starting_cash, settings.starting_cash)
        self.start_of_day_equity = settings.starting_cash
        self.day: date | None = None
        self._day_starts = (0, 0)  # where today begins in book.trades and equity_curve
        self.last_prices: dict[str, float] = {}
        self.equity_curve: list[tuple[datetime, float]] = []
        self.events: deque[LogEvent] = deque(maxlen=1000)
        self.rejections_by_check: Counter[str] = Counter()
        self.bad_bars: Counter[str] = Counter()
        self.submitted: list[SubmitResult] = []
        self.fills: list[Fill] = []
        # Why a position closes when its closing order's id is not ours (close-all, a leg).
        self._close_reasons: dict[str, str] = {}
        self._closing: dict[str, asyncio.Future[CloseReport]] = {}  # symbol -> the close running
        self.cancel_confirm_timeout = 10.0  # seconds a close waits for its cancels to be confirmed
        # Remote brokers: the account copy is refreshed after fills and every minute.
        self.account_stale = False
        self._account_wanted: asyncio.Event | None = None
        self._unprotected_since: dict[str, datetime] = {}  # wall time a position lost its stop
        self._unprotected_told: set[str] = set()
        self.listeners: list[Callable[[LogEvent], None]] = []  # e.g. the headless live log
        self.event_seq = 0
        # Components report here (the store, the data stream); the broker and data are filled in
        # from what the engine sees.
        self.health: dict[str, Health] = {}
        self.last_bar_wall: datetime | None = None
        self._flatten_for: tuple[tuple[Session, int] | None, datetime | None] = (None, None)
        self._session: Session | None = None  # the last session a minute fell in
        self._account_for: tuple[Account | None, Decimal, Account | None] = (None, ZERO, None)
        # Wall time for health ages (the sim clock is the data's); tests freeze it.
        self.wall_clock: Callable[[], datetime] = lambda: datetime.now(EXCHANGE_TZ)
        # The journal (daytrader/store) is set by the runtime; the default writes nothing.
        self.journal = NullJournal()
        # The LLM advisor on entries (daytrader/advisor), set by the runtime in advise or veto
        # mode. An entry waits for its opinion on a task of its own while its symbol holds a
        # position slot, so no other bar waits for a model; exits never ask it.
        self.advisor: EntryAdvisor | None = None
        self.waiting_entries: dict[str, asyncio.Future] = {}  # symbol -> the opinion being asked
        self.advice: deque[Opinion] = deque(maxlen=200)
        self._entry_tasks: set[asyncio.Task] = set()
        broker.set_listener(self.apply_update)

    # -- state -----------------------------------------------------------------------------------
    @property
    def strategy(self) -> Strategy:
        """The run's strategy, when one trades every symbol (`strategies` holds them all)."""
        distinct = {id(s): s for s in self.strategies.by_symbol.values()}
        if len(distinct) != 1:
            raise AttributeError("several strategies run here: use engine.strategies.of(symbol)")
        return next(iter(distinct.values()))

    @strategy.setter
    def strategy(self, strategy: Strategy) -> None:
        self.strategies = RunningStrategies(dict.fromkeys(self.settings.symbols, strategy),
                                            self._strategy_failed)

    @property
    def known_orders(self) -> dict[str, Order]:
        return self.order_book.known

    @property
    def open_orders(self) -> dict[str, Order]:
        return self.order_book.open

    @property
    def state(self) -> TradingState:
        if not self.enabled:
            return TradingState.DISABLED
        return TradingState.HALTED if self.breaker.tripped else TradingState.ENABLED

    def record(self, level: str, kind: str, message: str | Callable[[], str],
               ts: datetime | None = None, **data) -> None:
        """An event for the log pane, the Python log and listeners. `message` may be a function
        that words it: called only if the event is recorded (see record_events)."""
        if not self.record_events and level != "error":
            return
        if not isinstance(message, str):
            message = message()
        self.event_seq += 1
        event = LogEvent(ts or self.clock.now(), level, kind, message, data, self.event_seq)
        self.events.append(event)
        # Refusals and fills are routine: the Python log shows only what needs a person.
        log.log(logging.ERROR if level == "error" else logging.INFO, "[%s] %s", kind, message)
        if "source" in data:  # a control action: who, what, when
            self.journal.control(event.ts, str(data["source"]), data.get("action", kind), message)
        for listener in self.listeners:
            listener(event)

    # -- commands --------------------------------------------------------------------------------
    def enable(self, source: str = "console") -> CommandResult:
        self.enabled = True
        self.emergency_stopped = False
        note = " (circuit breaker still tripped: entries stay halted)" if self.breaker.tripped else ""
        self.record("info", "control", f"trading enabled by {source}{note}", source=source,
                    action="enable")
        return CommandResult(True, f"trading enabled{note}")

    def disable(self, source: str = "console", emergency: bool = False) -> CommandResult:
        """Synchronous on purpose: it takes effect before anything else is drawn or sent.
        `emergency`: the first step of an emergency stop (the state reads E-STOP until enabled)."""
        self.enabled = False
        self._drop_waiting_entries("emergency stop" if emergency
                                   else f"trading disabled by {source}")
        if emergency:
            self.emergency_stopped = True
            self.record("error", "control", f"EMERGENCY STOP by {source}: trading disabled",
                        source=source, action="emergency_stop")
            return CommandResult(True, "emergency stop: trading disabled")
        self.record("warning", "control", f"trading disabled by {source}", source=source,
                    action="disable")
        return CommandResult(True, "trading disabled")

    def set_strategy_enabled(self, name: str, enabled: bool,
                             source: str = "console") -> CommandResult:
        """Stops or resumes one strategy's decisions; its positions keep their protection and
        close as any other. Enabling clears a failure (fix the strategy first)."""
        if name not in self.strategies.by_name:
            return CommandResult(False, f"no strategy {name!r}; running: "
                                        f"{', '.join(self.strategies.names)}")
        self.strategies.set_enabled(name, enabled)
        verb = "enabled" if enabled else "disabled"
        self.record("warning" if not enabled else "info", "control",
                    f"strategy {name} {verb} by {source}", source=source,
                    action=f"strategy_{'enable' if enabled else 'disable'}")
        return CommandResult(True, f"strategy {name} {verb}")

    def _strategy_failed(self, name: str, doing: str, exc: BaseException) -> None:
        symbols = self.strategies.symbols_of(name)
        held = [s for s in symbols if self.book.qty(s)]
        self.record("error", "strategy", f"strategy {name} failed ({doing}: "
                    f"{type(exc).__name__}: {exc}); it is disabled, the other strategies keep "
                    f"trading" + (f"; its positions {', '.join(held)} keep their protection"
                                  if held else ""),
                    source="engine", action="strategy_failed")

    def reset_breaker(self, source: str = "console") -> CommandResult:
        if not self.breaker.tripped:
            return CommandResult(False, "circuit breaker is not tripped")
        equity = self.book.equity()
        self.breaker.reset(equity)
        self.journal.breaker(self.clock.now(), "reset", source, "circuit breaker reset",
                             equity=equity, baseline=equity)
        self.record("warning", "breaker", f"circuit breaker reset by {source}; daily loss is now "
                  f"measured from equity {equity}", source=source, action="reset_breaker")
        return CommandResult(True, "circuit breaker reset")

    async def emergency_stop(self, source: str = "console",
                             flat_timeout: float = 90.0) -> EmergencyReport:
        """Disable first (no network needed), cancel all, close all, then verify flat: every
        position the close-all could not take (its legs were still canceling) goes through the
        close routine, and the account is re-read with backoff until flat."""
        t0 = time.perf_counter()
        self.enabled = False
        halted_before, self.emergency_stopped = self.emergency_stopped, True
        disabled_ms = (time.perf_counter() - t0) * 1000
        self._drop_waiting_entries("emergency stop")
        requests_before = self._requests_used()
        if halted_before:  # the halt was the first step (console `!`), already logged and alerted
            self.record("warning", "control", f"emergency stop by {source}: canceling all orders, "
                        "closing all positions", source=source, action="emergency_flatten")
        else:
            self.record("error", "control", f"EMERGENCY STOP by {source}: trading disabled",
                        source=source, action="emergency_stop")
        errors: list[str] = []
        canceled: list[str] = []
        closes: list[Order] = []
        try:
            canceled = await self.broker.cancel_all()
        except BrokerError as exc:
            errors.append(f"cancel all: {exc}")
        symbols = list(dict.fromkeys([*self.book.symbols(), *self._closing,
                                      *(o.symbol for o in self.open_orders.values())]))
        for symbol in symbols:
            self._close_reasons[symbol] = "emergency_stop"
        if self._closing:
            # A close is already on its way for some symbol: a close-all now could sell those
            # shares a second time. Every symbol goes through the close routine instead (the
            # running ones are joined, not repeated).
            reports = await self.close_many(symbols, "emergency_stop", source, listed=[])
            closes = [o for r in reports.values() if r.close_order_id
                      and (o := self.order_book.get(r.close_order_id)) is not None]
            errors.extend(r.message for r in reports.values() if not r.ok)
        else:
            closes = await self._close_all(symbols, errors)
        requests_ms = (time.perf_counter() - t0) * 1000
        self.record("warning", "control", f"emergency stop: canceled {plural(len(canceled), 'order')}"
                    f", sent {plural(len({o.id for o in closes}), 'close')}; waiting for fills")
        positions, open_orders = await self._wait_flat(flat_timeout, source, errors, closes)
        report = EmergencyReport(disabled_ms, requests_ms, len(canceled), len({o.id for o in closes}),
                                 not positions and not open_orders,
                                 tuple(p.symbol for p in positions), len(open_orders),
                                 tuple(errors), (time.perf_counter() - t0) * 1000,
                                 self._requests_used() - requests_before)
        self.record("info" if report.flat else "error", "control", report.message)
        return report

    async def _close_all(self, symbols: list[str], errors: list[str]) -> list[Order]:
        """The broker's one-call close of every position. While it is in flight each symbol
        counts as closing, so a strategy exit or a manual close meanwhile waits for it instead
        of sending a second sell."""
        loop = asyncio.get_running_loop()
        held = {symbol: loop.create_future() for symbol in symbols}
        self._closing.update(held)
        closes: list[Order] = []
        try:
            closes = await self.broker.close_all()
        except BrokerError as exc:
            errors.append(f"close all: {exc}")
        finally:
            sent = {o.symbol: o for o in closes}
            for order in closes:
                self.order_book.remember(order)
            for symbol, future in held.items():
                if self._closing.get(symbol) is future:
                    del self._closing[symbol]
                order = sent.get(symbol)
                future.set_result(CloseReport(
                    symbol, order is not None, f"close {symbol}: "
                    + (f"closed by the emergency stop's close-all (order {order.short_id})" if order
                       else "the emergency stop's close-all did not close it; it retries"),
                    close_qty=order.qty if order else 0, close_order_id=order.id if order
                    else None))
        return closes

    @property
    def journal(self) -> NullJournal:
        return self._journal

    @journal.setter
    def journal(self, journal: NullJournal) -> None:
        self._journal = journal
        # Whether it keeps what it is given, read once here rather than on every order and
        # event: what only it reads (an order's event, a position, the minute's equity in
        # cents, an intent before its send) is not made or sent to one that keeps nothing (a
        # backtest's).
        self._journal_keeps = getattr(journal, "keeps", True)
        self.orders.before_send = journal.intent if self._journal_keeps else None

    def _requests_used(self) -> int:
        budget = getattr(self.broker, "budget", None)
        return budget.used if budget is not None else 0

    async def _wait_flat(self, timeout: float, source: str, errors: list[str],
                         closes: list[Order]) -> tuple[list[Position], list[Order]]:
        """Re-reads positions and open orders, first soon, then less often (inside the request
        budget), waking early when trade updates arrive. A position with no closing order
        working is closed by the close routine."""
        loop = asyncio.get_running_loop()  # the loop's clock: a test may run it on virtual time
        deadline = loop.time() + timeout
        delay = 0.1
        while True:
            try:
                positions = await self.broker.list_positions()
                open_orders = await self.broker.list_orders(open_only=True)
            except BrokerError as exc:
                self.record("error", "broker", f"cannot verify flat: {exc}")
                positions, open_orders = self.book.positions(), list(self.open_orders.values())
            if (not positions and not open_orders) or loop.time() >= deadline:
                return positions, open_orders
            closing = {o.symbol for o in open_orders if o.role is OrderRole.EXIT}
            stuck = [p.symbol for p in positions if p.symbol not in closing]
            if stuck:
                reports = await self.close_many(stuck, "emergency_stop", source,
                                                listed=open_orders)
                errors.extend(r.message for r in reports.values() if not r.ok)
                closes.extend(o for r in reports.values() if r.close_order_id
                              and (o := self.order_book.get(r.close_order_id)) is not None)
            await self.order_book.changed(min(delay, max(0.0, deadline - loop.time())))
            delay = min(delay * 2, 5.0)

    async def close_position(self, symbol: str, source: str = "console",
                             reason: str = "manual_close") -> CommandResult:
        symbol = symbol.upper()
        if self.book.qty(symbol) == 0 and not self.order_book.working(symbol):
            return CommandResult(False, f"no position in {symbol}")
        report = await self.close(symbol, reason, source)
        return CommandResult(report.ok, report.message)

    async def close(self, symbol: str, reason: str, source: str,
                    listed: list[Order] | None = None) -> CloseReport:
        """Closes `symbol` at the broker (see the module's docstring)."""
        return (await self.close_many([symbol], reason, source, listed))[symbol]

    async def close_many(self, symbols: list[str], reason: str, source: str,
                         listed: list[Order] | None = None) -> dict[str, CloseReport]:
        """Closes several symbols in one pass (one listing, one position read for all). One
        close per symbol runs at a time: a symbol already closing gets the running report."""
        if not self._closing and self._in_process():
            # Nothing here waits (see Broker.in_process): the close runs in line, start to end,
            # before anything else can ask for one, so it needs no single-flight entry.
            fresh = list(dict.fromkeys(symbols))
            try:
                return await self._close(fresh, reason, source, listed)
            except Exception as exc:  # reported as the task's failure would be
                return {s: _failed_close(s, exc) for s in fresh}
        waiting: dict[str, asyncio.Future[CloseReport]] = {}
        fresh = []
        for symbol in dict.fromkeys(symbols):
            if symbol in self._closing:
                waiting[symbol] = self._closing[symbol]
            else:
                future = asyncio.get_running_loop().create_future()
                self._closing[symbol] = waiting[symbol] = future
                fresh.append(symbol)
        if fresh and self._in_process():
            # Nothing here waits (see Broker.in_process): the close runs in line, with no task
            # and no loop turn, and its reports are ready when it returns.
            try:
                reports = await self._close(fresh, reason, source, listed)
            except Exception as exc:  # reported as the task's failure would be
                self._settle_closes(fresh, None, exc)
            except BaseException as exc:
                self._settle_closes(fresh, None, exc)
                raise
            else:
                self._settle_closes(fresh, reports, None)
        elif fresh:
            # On a task of its own: a caller that gives up (a timed-out request) never stops a
            # close half-way, after its cancels and before its sell.
            batch = asyncio.ensure_future(self._close(fresh, reason, source, listed))

            def settle(task: asyncio.Future[dict[str, CloseReport]]) -> None:
                if task.cancelled():
                    self._settle_closes(fresh, None, None)
                else:
                    error = task.exception()
                    self._settle_closes(fresh, None if error else task.result(), error)

            batch.add_done_callback(settle)
        return {symbol: future.result() if future.done() else await asyncio.shield(future)
                for symbol, future in waiting.items()}

    def _settle_closes(self, symbols: list[str], reports: dict[str, CloseReport] | None,
                       error: BaseException | None) -> None:
        """Hands each close's report to whoever waits for it, and ends its single-flight."""
        for symbol in symbols:
            future = self._closing.pop(symbol, None)
            if future is None or future.done():
                continue
            if reports is None:
                future.set_result(_failed_close(symbol, error))
            else:
                future.set_result(reports[symbol])

    def _in_process(self) -> bool:
        return is_in_process(self.broker)

    async def _each(self, coros: list) -> list:
        """Runs the awaitables concurrently, or one after the other where that costs nothing
        (one of them, or an in-process broker): each task would be a loop turn for nothing."""
        if len(coros) <= 1 or self._in_process():
            results: list = []
            try:
                for coro in coros:
                    results.append(await coro)
            finally:
                for coro in coros[len(results) + 1:]:  # never started: one before them raised
                    coro.close()
            return results
        return list(await asyncio.gather(*coros))

    async def _close(self, symbols: list[str], reason: str, source: str,
                     listed: list[Order] | None) -> dict[str, CloseReport]:
        t0 = time.perf_counter()
        reports: dict[str, CloseReport] = {}
        for symbol in symbols:
            self._close_reasons[symbol] = reason
        wanted = set(symbols)
        in_process = self._in_process()
        working = {o.id: o for o in self.open_orders.values() if o.symbol in wanted}
        # Orders the engine does not know (placed elsewhere, or lost). A venue in this process
        # tells every change as it happens (its listener is called in line): none to find there.
        if listed is None and in_process:
            listed = []
        elif listed is None:
            try:
                listed = await self.broker.list_orders(open_only=True)
            except BrokerError as exc:
                self.record("warning", "broker", f"close: cannot list orders: {exc}")
                listed = []
        for order in listed:
            if order.symbol in wanted and order.status.is_open and order.id not in working:
                working[order.id] = self.order_book.remember(order)
        for symbol in symbols:
            held = self.book.qty(symbol)
            exiting = [o for o in working.values() if o.symbol == symbol and o.status.is_working
                       and o.role is OrderRole.EXIT and o.qty - o.filled_qty == abs(held)]
            if held and exiting:
                reports[symbol] = self._close_report(symbol, t0, True, f"close {symbol}: already "
                                                     f"closing (order {exiting[0].short_id} working)")
        ids = [o.id for o in working.values() if o.symbol not in reports]
        known = self.order_book.known
        if in_process:
            # A cancel there is final when it returns: what is still open after the cancels
            # stays so however long we wait (the general path would wait to learn the same).
            for i in ids:
                await self._cancel_for_close(known.get(i) or working[i])
            unconfirmed = {i for i in ids if (o := known.get(i)) is None or o.status.is_open}
        else:
            await self._each([self._cancel_for_close(self.order_book.get(i) or working[i])
                              for i in ids])
            unconfirmed = set(await self._await_done(ids, self.cancel_confirm_timeout))
        todo = [s for s in symbols if s not in reports]
        outcome: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        for symbol in todo:
            done_unfilled, done_filled, stuck = [], [], []  # the symbol's orders, as they ended
            for i in ids:
                o = known.get(i)
                if o is None or o.symbol != symbol:
                    continue
                if o.filled_qty > 0:
                    done_filled.append(i)
                elif not o.status.is_open:
                    done_unfilled.append(i)
                if i in unconfirmed:
                    stuck.append(i)
            canceled, filled = outcome[symbol] = tuple(done_unfilled), tuple(done_filled)
            if stuck:
                reports[symbol] = self._close_report(
                    symbol, t0, False, f"close {symbol}: {plural(len(stuck), 'order')} not confirmed "
                    f"canceled in {self.cancel_confirm_timeout:g}s "
                    f"({', '.join(short_order_id(i) for i in stuck)}); nothing "
                    "sent, since they may still hold or trade the shares", canceled, filled)
        todo = [s for s in todo if s not in reports]
        try:  # the broker's position now, after every cancel is confirmed
            if len(todo) == 1:
                position = await self.broker.get_position(todo[0])
                held = {todo[0]: position.qty if position is not None else 0}
            elif todo:
                held = {p.symbol: p.qty for p in await self.broker.list_positions()}
            else:
                held = {}
        except BrokerError as exc:
            for symbol in todo:
                reports[symbol] = self._close_report(
                    symbol, t0, False, f"close {symbol}: cannot read the position at the broker: "
                    f"{exc}", *outcome[symbol])
            return reports
        if any(self.book.qty(s) and not held.get(s) for s in todo):
            await self.sync("close reconciliation")  # a fill the stream never told: broker wins
        sends = [self._close_one(symbol, held.get(symbol, 0), reason, t0, *outcome[symbol])
                 for symbol in todo]
        for report in await self._each(sends):
            reports[report.symbol] = report
        return reports

    async def _close_one(self, symbol: str, qty: int, reason: str, t0: float,
                         canceled: tuple[str, ...], filled: tuple[str, ...]) -> CloseReport:
        """Closes exactly `qty`, the broker's position read after the cancels were confirmed."""
        if qty == 0:
            meanwhile = f"; {plural(len(filled), 'order')} filled while closing" if filled else ""
            return self._close_report(symbol, t0, True, f"close {symbol}: flat at the broker"
                                      f"{meanwhile} (canceled {len(canceled)})", canceled, filled,
                                      flat=True)
        side = Side.SELL if qty > 0 else Side.BUY
        last = self.last_prices.get(symbol)
        # By position (keywords cost a third more): symbol, side, qty, type, limit, stop, stop
        # loss, take-profit, reference price, reduce only, reason, strategy, time.
        intent = OrderIntent.make(symbol, side, abs(qty), _MARKET, None, None, None, None,
                                  to_price(last) if last else None, True, reason, "exit",
                                  self.clock.now())
        result = await self._send(intent, broker_qty=qty)
        order_id = result.order.id if result.order is not None else None

        def message() -> str:  # worded when read or recorded: a backtest does neither
            return (f"close {symbol}: canceled {len(canceled)}, {side!s} {abs(qty)} at market: "
                    f"{result.message}")

        return self._close_report(symbol, t0, result.ok, message, canceled, filled,
                                  abs(qty) if result.ok else 0, order_id)

    def _close_report(self, symbol: str, t0: float, ok: bool, message: str | Callable[[], str],
                      canceled: tuple[str, ...] = (), filled: tuple[str, ...] = (),
                      qty: int = 0, order_id: str | None = None, flat: bool = False) -> CloseReport:
        self.record("info" if ok else "error", "order" if ok else "broker", message)
        return CloseReport.make(symbol, ok, message, canceled, filled, qty, order_id, flat,
                                (time.perf_counter() - t0) * 1000)

    async def _cancel_for_close(self, order: Order) -> None:
        if order.status is OrderStatus.PENDING_CANCEL or not order.status.is_open:
            return
        try:
            await self.broker.cancel_order(order.id)
        except NotCancelable:  # done already (filled or canceled): learn which
            await self._refresh_order(order.id)
        except NotFound:
            self.order_book.remember(replace(order, status=OrderStatus.CANCELED))
        except BrokerError as exc:
            self.record("warning", "broker", f"cancel {order.short_id} ({order.symbol} {order.role}) "
                        f"before closing: {exc}")

    async def _await_done(self, ids: list[str], timeout: float) -> list[str]:
        """Waits until each order is final (canceled, filled, ...), from trade updates first and
        then by asking the broker for each by id (a stream can miss events, Alpaca's a leg's
        cancel), with backoff; returns the ids still open at the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.25
        pending = list(ids)
        while True:
            pending = [i for i in pending if (o := self.order_book.get(i)) is None
                       or o.status.is_open]
            left = deadline - loop.time()
            if not pending or left <= 0:
                return pending
            if not await self.order_book.changed(min(delay, left)):
                for order_id in pending:
                    await self._refresh_order(order_id)
                delay = min(delay * 2, 4.0)

    async def _refresh_order(self, order_id: str) -> None:
        """One order's state read by id, applied as if the stream had told it (a fill learned
        this way is booked once: the stream's own event for it, if it comes, is older)."""
        try:
            order = await self.broker.get_order(order_id)
        except NotFound:
            return
        except BrokerError as exc:
            self.record("warning", "broker", f"cannot read order {short_order_id(order_id)}: {exc}")
            return
        self.learn(order)

    def learn(self, order: Order) -> None:
        """A state of an order read over REST (a lookup, or the answer to our own submit),
        turned into the update the stream would send: a fill it shows that the engine has not
        booked is booked now, once (the stream's own event for it then finds it booked)."""
        prev = self.order_book.get(order.id)
        fill = None
        booked = prev.filled_qty if prev is not None else 0
        if order.filled_qty > booked and order.filled_avg_price:
            qty = order.filled_qty - booked
            before = (prev.filled_avg_price or ZERO) * booked if prev is not None else ZERO
            price = to_price((order.filled_avg_price * order.filled_qty - before) / qty)
            fill = Fill(f"{order.id}:{order.filled_qty}", order.id, order.client_order_id,
                        order.symbol, order.side, qty, price, ZERO,
                        order.updated_at or self.clock.now(),
                        prev.role if prev is not None else order.role)
        event = "fill" if fill is not None else order.status.value
        self.apply_update(OrderUpdate(event, order, fill))


    async def cancel_order(self, order_id: str, source: str = "console") -> CommandResult:
        found = self.find_order(order_id)
        if found is not None:
            order_id = found.id
        short = short_order_id(order_id)
        try:
            await self.broker.cancel_order(order_id)
        except BrokerError as exc:
            self.record("warning", "broker", f"cancel {short} by {source} failed: {exc}")
            return CommandResult(False, f"cancel {short}: {exc}")
        self.record("info", "control", f"order {short} canceled by {source}", source=source)
        return CommandResult(True, f"order {short} canceled")

    def find_order(self, ref: str) -> Order | None:
        """An order by its broker id, its client order id, or the short id the console, the log
        and `ctl` show (when it names exactly one order)."""
        order = self.known_orders.get(ref)
        if order is not None:
            return order
        matches = [o for o in self.known_orders.values()
                   if o.client_order_id == ref or short_order_id(o.id) == ref]
        return matches[0] if len(matches) == 1 else None

    async def submit(self, intent: OrderIntent, source: str = "console") -> SubmitResult:
        """A manual order: it goes through exactly the same risk checks as the strategy's."""
        intent = self._prepare_manual(intent)
        result = await self._send(intent)
        self.record("info" if result.ok else "warning", "order",
                  f"manual {intent.side} {intent.qty} {intent.symbol} by {source}: "
                  f"{result.message}", source=source)
        return result

    def preview(self, intent: OrderIntent) -> RiskDecision:
        """The risk decision an order would get now, for the order form; nothing is sent."""
        return check_order(self._prepare_manual(intent), self._risk_context(), self.limits)

    def ticket(self, symbol: str, side: Side, price: Decimal | None = None) -> TicketDefaults:
        """What the order ticket starts from: the last price, the strategy's bracket around the
        entry (`price`, else the last) and the size that risks RISK_PER_TRADE_PCT of equity to
        its stop, as the strategy's own entries are sized. An order against a held position
        is a close: its size is the position and it gets no bracket."""
        symbol = symbol.upper()
        last = to_price(self.last_prices[symbol]) if symbol in self.last_prices else None
        entry = price or last
        held = self.book.qty(symbol)
        stop = take = None
        qty = 0
        if held * side.sign < 0:
            qty = abs(held)
        elif entry is not None:
            stop, take = self.strategies.bracket(symbol, side, entry)
            if stop is not None:
                qty = self._size(entry, stop)
        return TicketDefaults(symbol, side, last, entry, qty, stop, take,
                              self._account_view().equity, self.limits.risk_per_trade_pct, held)

    async def sync(self, source: str = "console") -> CommandResult:
        """Adopts the broker's account, positions and orders: the broker says what exists.

        Recent orders are listed flat (legs as orders of their own, paged) before and after
        the positions; when a fill landed in between they are read again, so the orders' filled
        quantities match the positions and a stream event that arrives later is neither lost nor
        counted twice (see `_on_update`). Protective legs the listings leave out (Alpaca may not
        list a held stop-loss) are read by id, so a position's protection is what is working."""
        try:
            for _ in range(5):
                fills = len(self.fills)  # a fill told by the stream meanwhile: read again
                first = await self.broker.list_orders(open_only=False)
                positions = await self.broker.list_positions()
                orders = await self.broker.list_orders(open_only=False)
                if ({o.id: o.filled_qty for o in first} == {o.id: o.filled_qty for o in orders}
                        and len(self.fills) == fills):
                    break
            account = await self.broker.get_account()
            open_now = await self.broker.list_orders(open_only=True)
            listed = {o.id for o in orders} | {o.id for o in open_now}
            unlisted = [await self.broker.get_order(i) for i in self.order_book.legs()
                        if i not in listed]
        except BrokerError as exc:
            self.record("error", "broker", f"sync failed: {exc}")
            return CommandResult(False, f"sync failed: {exc}")
        before = {p.symbol: p.qty for p in self.book.positions()}
        after = {p.symbol: p.qty for p in positions}
        self.account = account
        self.account_stale = False
        if self.day is None:  # before the first bar: the broker's start-of-day equity
            self.start_of_day_equity = account.start_of_day_equity
        self.book.replace_all(account.cash, positions)
        now = self.clock.now()
        for order in [*orders, *unlisted]:
            if order.status.is_open and order.id not in self.known_orders:
                # Journaled so that a restart knows its id (and a leg its role) before listing.
                self.journal.order_update(now, OrderUpdate("adopted", order))
            self.order_book.remember(order)  # the broker's word, even over a newer event
            self.orders.adopt(order)
        still_open = {o.id for o in open_now} | {o.id for o in orders if o.status.is_open} | {
            o.id for o in unlisted if o.status.is_open}
        for order in open_now:
            if order.id not in self.known_orders:  # older than the listed window
                self.order_book.remember(order)
                self.orders.adopt(order)
        for order_id, order in list(self.open_orders.items()):
            if order_id not in still_open:  # gone from the broker's open orders
                self.order_book.remember(replace(order, status=OrderStatus.CANCELED))
        for result in await self.orders.resolve_unknown():
            if result.order is not None:
                self.order_book.reasons[result.client_order_id] = result.intent.reason
                if result.order.id not in self.known_orders:
                    self.order_book.remember(result.order)
            self.record("info" if result.order else "warning", "order",
                        f"{result.intent.side} {result.intent.qty} {result.intent.symbol}: "
                        f"unknown outcome resolved: {result.status.value} {result.message}")
        for p in positions:  # protective legs at the broker keep protecting after a restart
            guard = self.order_book.protection(p.symbol)
            if guard.stop is not None or guard.take_profit is not None:
                self.book.set_protection(p.symbol, guard.stop.stop_price if guard.stop else None,
                                         guard.take_profit.limit_price if guard.take_profit
                                         else None)
        diff = "" if before == after else f"; positions changed {before} -> {after}"
        self.record("info", "control", f"sync by {source}: {plural(len(positions), 'position')}, "
                    f"{plural(len(self.open_orders), 'open order')}{diff}", source=source)
        return CommandResult(True, f"synced: {plural(len(positions), 'position')}{diff}")

    async def refresh_account(self) -> Account:
        """The broker's account now (equity, cash, buying power): entries are sized on it."""
        account = await self.broker.get_account()
        self.account = account
        self.account_stale = False
        return account

    async def keep_account_fresh(self, interval: float = 60.0) -> None:
        """For a broker without a local account view: refresh after fills (coalesced) and at
        least every `interval` seconds, inside the broker's request budget."""
        self._account_wanted = asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._account_wanted.wait()
            self._account_wanted.clear()
            try:
                await self.refresh_account()
            except BrokerError as exc:
                log.warning("account refresh failed: %s", exc)

    async def watch_protection(self, every: float = 5.0) -> None:
        """Paper and live: a position without a working stop at the broker for longer than
        UNPROTECTED_ALERT_SECONDS is an error (and an alert), once per episode."""
        while True:
            self.check_protection()
            await asyncio.sleep(every)

    def check_protection(self) -> list[str]:
        """Symbols that just crossed the unprotected limit (each reported once per episode)."""
        now = self.wall_clock()
        positions = self.positions_view()
        crossed = []
        for p in positions:
            if p.protected or p.symbol in self._closing:
                self._unprotected_since.pop(p.symbol, None)
                self._unprotected_told.discard(p.symbol)
                continue
            seconds = (now - self._unprotected_since.setdefault(p.symbol, now)).total_seconds()
            if seconds >= UNPROTECTED_ALERT_SECONDS and p.symbol not in self._unprotected_told:
                crossed.append(p.symbol)
                self._unprotected_told.add(p.symbol)
                self.record("error", "protection", f"{p.symbol} UNPROTECTED for "
                            f"{seconds:.0f}s: {p.qty:+d} shares and no working stop at the broker")
        held = {p.symbol for p in positions}
        for symbol in [s for s in self._unprotected_since if s not in held]:
            del self._unprotected_since[symbol]
            self._unprotected_told.discard(symbol)
        return crossed

    def report_health(self, health: Health) -> None:
        """A component (broker stream, data stream) says how it is; a change is logged."""
        old = self.health.get(health.name)
        self.health[health.name] = health
        changed = old is None or (old.ok, old.detail) != (health.ok, health.detail)
        if changed and (not health.ok or (old is not None and not old.ok)):
            self.record("info" if health.ok else "warning", "data" if health.name == "data"
                        else "broker", f"{health.name}: {health.detail}")

    def entries_paused(self) -> str:
        """Why new entries wait (stale data or a trade stream that is down), or ""."""
        if not self.health:  # nothing reports (a backtest)
            return ""
        bad = [h for name in self.pause_entries_on if (h := self.health.get(name)) and not h.ok]
        return "; ".join(f"{h.name}: {h.detail}" for h in bad) if bad else ""

    # -- the data path ---------------------------------------------------------------------------
    def warm_up(self, bars: Iterable[Bar]) -> int:
        count = 0
        for bar in bars:
            self.strategies.warm_up(bar)
            self.last_prices[bar.symbol] = bar.close
            if self.advisor is not None:
                self.advisor.observe((bar,))
            count += 1
        return count

    async def on_minute(self, bars: list[Bar]) -> None:
        """Trades one minute of bars (same timestamp): match, mark, breaker, flatten, strategy;
        then journals its equity point (the journal's "minute done"). One coroutine, not one
        calling another: a backtest makes one per minute."""
        if not bars:
            return
        if self._entry_tasks:
            # An entry of an earlier minute still waiting for the advisor goes out before this
            # minute starts, as it would in real time (its deadline is seconds, a minute sixty):
            # only a sim running faster than the advisor answers ever waits here, and it waits so
            # as not to send an entry on a price the market has left.
            await self.settle_entries()
        bar_ts = bars[0].ts
        now = bar_ts + MINUTE  # the bar is complete at the end of its minute
        self.clock.advance_to(now)
        session = self._session
        if session is None or not session.open <= bar_ts < session.close:
            # A new session, or none: the calendar is asked once per session, not per minute.
            session = self.calendar.session_at(bar_ts)
            if session is not None:
                self._session = session
        if session is not None and session.date != self.day:
            self._start_day(session.date)
        self.last_bar_wall = self.wall_clock()
        self.broker.on_bars(bars)
        if self.advisor is not None:
            self.advisor.observe(bars)
        self.book.mark_bars(bars, self.last_prices)
        equity = self.book.equity_estimate()
        self.equity_curve.append((now, equity))
        trip = self.breaker.update(equity, now)
        if trip is not None:
            self.journal.breaker(now, "trip", "engine", trip.message, trip.loss_pct, trip.equity,
                                 trip.baseline)
            self.record("error", "breaker", trip.message + "; entries halted, closes still allowed",
                      loss_pct=trip.loss_pct)
        if session is not None:  # regular hours: decisions (outside them, marks only)
            if now >= self._flatten_at(session):
                await self._flatten(now)
                for bar in bars:
                    self.strategies.warm_up(bar)
            else:
                for signal in self.strategies.on_bars(bars, self.book.held):
                    await self._act(signal)
            if self.record_tape:
                for bar in bars:
                    names = self.strategies.chart_lines(bar.symbol)
                    values = self.strategies.indicator_values(bar.symbol)
                    self.tape.record(bar, {name: values.get(name) for name in names})
        if self._journal_keeps:
            kind = "eod" if session is not None and now >= session.close else "minute"
            self.journal.equity(now, kind, to_money(self.book.equity_estimate()),
                                to_money(self.book.cash), self.state.value)
            self.journal.flush()

    def _flatten_at(self, session: Session) -> datetime:
        """When the flatten before `session`'s close begins (worked out once a session)."""
        minutes = self.settings.flatten_minutes_before_close
        key, at = self._flatten_for
        if key is None or key[0] is not session or key[1] != minutes:
            # By identity: the minute loop keeps one session object all day (a tuple compare of
            # its close would cost more each minute than this does once a day).
            at = session.close - timedelta(minutes=minutes)
            self._flatten_for = ((session, minutes), at)
        return at

    def _start_day(self, day: date) -> None:
        self.day = day
        self.tape.reset()
        self._day_fills = len(self.fills)
        self._day_starts = (len(self.book.trades), len(self.equity_curve))
        self.account = self._account_view()
        self.start_of_day_equity = self.book.equity()
        self.journal.equity(self.clock.now(), "sod", self.start_of_day_equity,
                            to_money(self.book.cash), self.state.value)
        if self.breaker.start_day(day, self.start_of_day_equity):
            self.journal.breaker(self.clock.now(), "day_reset", "engine",
                                 f"circuit breaker reset for the new trading day {day}")
            self.record("info", "breaker", f"circuit breaker reset for the new trading day {day}")
        self.record("info", "engine", f"trading day {day}: start-of-day equity "
                    f"{money(self.start_of_day_equity)}")

    async def _flatten(self, now: datetime) -> None:
        self._drop_waiting_entries("flatten before the close")
        for order in list(self.open_orders.values()):
            if order.role is OrderRole.ENTRY and order.status.is_working:
                await self.cancel_order(order.id, "engine (flatten before close)")
        symbols = self.book.symbols()
        if symbols:
            await self.close_many(symbols, "flatten_before_close", "engine")

    async def _act(self, signal: Signal) -> None:
        if signal.action == "exit":
            await self.close(signal.symbol, signal.reason, "strategy")
            return
        side = Side.BUY if signal.action == "enter_long" else Side.SELL
        assert signal.stop_loss is not None
        if self.account_stale and self.broker.account_view() is None:
            try:  # size on the money the broker holds now, not before the last fill
                async with asyncio.timeout(self.settings.alpaca_timeout):
                    await self.refresh_account()
            except (BrokerError, TimeoutError) as exc:
                self.record("warning", "broker", f"account refresh before sizing failed: {exc}")
        qty = self._size(signal.price, signal.stop_loss)
        # By position, as in _close_one.
        intent = OrderIntent.make(signal.symbol, side, qty, _MARKET, None, None, signal.stop_loss,
                                  signal.take_profit, signal.price, False, signal.reason,
                                  self.strategies.name_of(signal.symbol), signal.ts)
        if qty <= 0:
            self.record("info", "order", f"signal {signal.reason} {signal.symbol} skipped: "
                      "position size rounds to 0 shares")
            return
        if self.advisor is None:
            await self._send(intent)
        else:
            await self._ask_advisor(signal, intent)

    # -- the advisor on entries ----------------------------------------------------------------
    async def _ask_advisor(self, signal: Signal, intent: OrderIntent) -> None:
        """Asks the advisor about an entry without holding up the minute: the opinion is awaited
        on a task of its own and the entry is sent when it arrives or the advisor's deadline
        passes, with the same intent (so the same client order id). Meanwhile its symbol holds a
        position slot, and the next minute starts only once it is out (see `on_minute`), so a
        symbol never has two entries waiting. An entry the risk checks refuse now is refused
        now, unasked."""
        assert self.advisor is not None
        if not self._check(intent).approved:
            await self._send(intent)  # refused (and journaled) as any entry
            return
        deadline = asyncio.get_running_loop().time() + self.advisor.timeout
        question = self.advisor.ask(self._entry_context(signal, intent),
                                    client_order_id(intent, self.orders.prefix))
        asking = asyncio.ensure_future(question.answer())
        self.waiting_entries[intent.symbol] = asking
        task = asyncio.create_task(self._send_when_advised(intent, question, asking, deadline),
                                   name=f"entry {intent.symbol} (advisor)")
        self._entry_tasks.add(task)
        task.add_done_callback(self._entry_tasks.discard)

    async def _send_when_advised(self, intent: OrderIntent, question: Question,
                                 asking: asyncio.Future, deadline: float) -> None:
        symbol = intent.symbol
        loop = asyncio.get_running_loop()
        try:
            # The wait ends a millisecond before the deadline: the loop's timer can fire up to a
            # millisecond late (epoll counts milliseconds) and the send takes far less.
            await asyncio.wait({asking}, timeout=max(0.0, deadline - loop.time() - 0.001))
            if asking.cancelled():  # dropped (disable, emergency stop, flatten)
                return
            if asking.done():
                opinion, call = asking.result()
            else:  # past the deadline: the entry goes now; the call is closed in the background
                asking.cancel()
                opinion, call = question.unanswered(
                    f"no answer within {question.advisor.timeout:g}s")
            self.journal.model_call(call)
            self.advice.append(opinion)
            what = f"{intent.side} {intent.qty} {symbol}"
            if opinion.verdict is None:
                self.record("warning", "advisor", f"{what}: {opinion.summary}; the entry goes "
                            "ahead", client_order_id=opinion.client_order_id)
            else:
                self.record("info", "advisor", f"{what}: {opinion.summary}",
                            client_order_id=opinion.client_order_id)
            await self._send(intent, advice=opinion)
        except Exception as exc:  # a task's error would otherwise go unseen
            log.exception("entry %s after the advisor", symbol)
            self.record("error", "engine", f"entry {symbol} after the advisor failed: {exc!r}")
        finally:
            if self.waiting_entries.get(symbol) is asking:
                del self.waiting_entries[symbol]

    def _drop_waiting_entries(self, why: str) -> None:
        """Entries still waiting for the advisor are not sent (nothing waits for a model once
        trading stops); one whose opinion arrived is already being sent and faces the checks."""
        for symbol, asking in list(self.waiting_entries.items()):
            if asking.cancel():
                del self.waiting_entries[symbol]  # its slot is free at once
                self.record("warning", "advisor", f"{symbol}: the entry waiting for the "
                            f"advisor is dropped: {why}")

    async def settle_entries(self, timeout: float | None = None) -> None:
        """Waits until every entry waiting for the advisor has been sent or refused (the run's
        end, tests); at most `timeout` seconds (default: the advisor's deadline and a second)."""
        if not self._entry_tasks:
            return
        if timeout is None:
            timeout = (self.advisor.timeout if self.advisor is not None else 0.0) + 1.0
        await asyncio.wait(list(self._entry_tasks), timeout=timeout)

    def _entry_context(self, signal: Signal, intent: OrderIntent) -> EntryContext:
        """What the advisor is told about an entry: facts the engine holds at the signal."""
        assert self.advisor is not None
        now = self.clock.now()
        account = self._account_view()
        session = self.calendar.session_at(signal.ts)
        sod = self.breaker.baseline or self.start_of_day_equity
        today = self.book.trades[self._day_starts[0]:]
        state = AccountState(
            account.equity, sod, account.buying_power, daily_loss_pct(account.equity, sod),
            self.limits.max_daily_loss_pct, self.breaker.tripped,
            len(self._open_symbols() | {intent.symbol}), self.limits.max_positions, len(today),
            sum((t.pnl for t in today), ZERO), self.limits.risk_per_trade_pct, self.state.value)
        return entry_context(
            symbol=intent.symbol, side=intent.side.value, action=signal.action,
            strategy=intent.strategy, reason=signal.reason, ts=now,
            minutes_to_close=int((session.close - now).total_seconds() // 60) if session else None,
            price=signal.price, qty=intent.qty, stop_loss=intent.stop_loss,
            take_profit=intent.take_profit, atr=signal.atr,
            indicators=self.strategies.indicator_values(intent.symbol),
            bars=self.advisor.bars_of(intent.symbol), account=state)

    def _size(self, price: Decimal, stop: Decimal) -> int:
        # Buying power is shared across the free position slots, as freqtrade does with an
        # unlimited stake, so one entry cannot starve the next four.
        account = self._account_view()
        equity, buying_power = account.equity, account.buying_power
        cap = self.settings.live_max_capital
        if self.settings.mode == "live" and cap > 0:
            # Live money trades a small allocation, whatever the account holds.
            exposure = sum((abs(p.market_value) for p in self.book.positions()), Decimal(0))
            equity = min(equity, cap)
            buying_power = min(buying_power, max(Decimal(0), cap - exposure))
        free_slots = max(1, self.limits.max_positions - len(self._open_symbols()))
        return size_entry(equity, self.limits.risk_per_trade_pct, price, stop,
                          buying_power / free_slots)

    def _prepare_manual(self, intent: OrderIntent) -> OrderIntent:
        """Stamps a manual order with the time and the last price, and gives an entry without a
        stop the bracket the symbol's strategy would give it at that price (market at the last
        price, limit at its limit), so no position is left without protective orders."""
        changes: dict = {}
        if intent.ts is None:
            changes["ts"] = self.clock.now()
        ref = intent.ref_price
        if ref is None and intent.symbol in self.last_prices:
            ref = changes["ref_price"] = to_price(self.last_prices[intent.symbol])
        at = intent.limit_price if intent.order_type is OrderType.LIMIT else ref
        # Not on an order that reduces a position: its shares are being sold, not protected.
        reduces = self.book.qty(intent.symbol) * intent.side.sign < 0
        if (not intent.reduce_only and not reduces and intent.stop_loss is None
                and at is not None and intent.order_type is not OrderType.STOP):
            stop, take = self.strategies.bracket(intent.symbol, intent.side, at)
            if stop is not None:
                changes["stop_loss"] = stop
                if intent.take_profit is None and take is not None:
                    changes["take_profit"] = take
        return replace(intent, **changes) if changes else intent

    async def _send(self, intent: OrderIntent, broker_qty: int | None = None,
                    advice: Opinion | None = None) -> SubmitResult:
        """Risk, journal, broker. `broker_qty`: the broker's position just read, which an exit's
        reduce-only check is judged against (otherwise the book's, kept by fills). `advice`: the
        advisor's opinion on an entry, one more check (refusing only in veto mode)."""
        check = self._check if broker_qty is None and advice is None else (
            lambda i: self._check(i, None if broker_qty is None else {i.symbol: broker_qty},
                                  advice))
        result = await self.orders.submit(intent, check)
        status = result.status
        # One time for the result's line and its legs' (none made for a journal keeping nothing).
        now = self.clock.now() if self._journal_keeps else None
        if now is not None:
            if status is _RISK_REJECTED and result.decision is not None:
                self.journal.risk_rejected(now, result.client_order_id, intent, result.decision)
            elif status is not _DUPLICATE:
                self.journal.submit_result(now, result.client_order_id, str(result.status),
                                           result.order.id if result.order else None,
                                           result.error)
        self.submitted.append(result)
        if status is _RISK_REJECTED:
            failed = result.decision.failed if result.decision else None
            if failed is not None:
                self.rejections_by_check[failed.name] += 1
            self.record("warning", "reject", f"{intent.side} {intent.qty} {intent.symbol} "
                        f"({intent.reason}) {result.message}",
                        check=failed.name if failed else None)
            return result
        if status is _DUPLICATE:
            first = f"order {result.order.short_id}" if result.order else "an order already sent"
            self.record("info", "order", f"{intent.symbol} {intent.side} {intent.qty}: duplicate of "
                        f"{first}, not sent again")
            return result
        if result.order is None:
            self.record("error", "broker", f"{intent.side} {intent.qty} {intent.symbol}: "
                        f"{result.message}", code=result.error_code)
            return result
        self.order_book.reasons[result.client_order_id] = intent.reason
        if not intent.reduce_only:
            self.order_book.strategies[intent.symbol] = intent.strategy
        if now is not None:
            for leg in result.order.legs:  # protection is tracked by these ids from now on
                self.journal.order_update(now, OrderUpdate("new", leg))
        if result.order.id not in self.known_orders:
            self.learn(result.order)  # an answer that says "filled" books that fill now
        elif result.order.legs:
            self.order_book.remember(result.order)
        if self.record_events:  # worded only when recorded (see record_events)
            bracket = (f" (stop {intent.stop_loss}, take-profit {intent.take_profit})"
                       if intent.stop_loss else "")
            self.record("info", "order", f"{intent.side.upper()} {intent.qty} {intent.symbol} "
                        f"{intent.order_type!s}{bracket}: {intent.reason or 'manual'} "
                        f"[{result.order.short_id}]", order_id=result.order.id)
        return result

    # -- risk ------------------------------------------------------------------------------------
    def _open_symbols(self) -> frozenset[str]:
        symbols = set(self.book.held)
        for order in self.open_orders.values():
            if order.role is _ENTRY:
                symbols.add(order.symbol)
        symbols.update(self.orders.pending_symbols())
        symbols.update(self.waiting_entries)  # an entry waiting for the advisor holds its slot
        return frozenset(symbols)

    def _account_view(self) -> Account:
        view = self.broker.account_view()
        if view is not None:
            # A broker that knows its account (the sim) hands out the same view until something
            # changes: so is ours, asked for by sizing and by risk on every entry.
            seen, sod, ours = self._account_for
            if view is seen and sod is self.start_of_day_equity and ours is not None:
                return ours
            ours = Account.make(view.cash, view.equity, view.buying_power, self.start_of_day_equity)
            self._account_for = (view, self.start_of_day_equity, ours)
            return ours
        equity = self.book.equity()
        return Account(to_money(self.book.cash), equity, self.account.buying_power,
                       self.start_of_day_equity)

    def _risk_context(self, positions: dict[str, int] | None = None) -> RiskContext:
        now = self.clock.now()
        account = self._account_view()
        market_open = self.calendar.is_open(now)
        position_qty = self.book.qtys()
        if positions:
            position_qty.update(positions)
        # By position (keywords cost a third more, on every entry), in RiskContext's order.
        return RiskContext.make(self.state, now, market_open, account.equity,
                                self.breaker.baseline or self.start_of_day_equity,
                                account.buying_power, self.breaker.tripped, self._open_symbols(),
                                self.cooldown.until,
                                "" if market_open else self.calendar.describe(now), position_qty,
                                self.settings.allow_shorts)

    def _check(self, intent: OrderIntent, positions: dict[str, int] | None = None,
               advice: Opinion | None = None) -> RiskDecision:
        if intent.reduce_only:  # check_order's one check for an exit, without its context
            held = positions.get(intent.symbol) if positions is not None else None
            return check_exit(intent, self.book.qty(intent.symbol) if held is None else held)
        decision = check_order(intent, self._risk_context(positions), self.limits)
        paused = self.entries_paused()
        if paused:
            decision = RiskDecision((CheckResult("components_healthy", False, "paused",
                                                 "data, trade stream and broker healthy",
                                                 f"entries paused: {paused}"),) + decision.checks)
        if advice is not None:
            decision = RiskDecision(decision.checks + (advisor_check(
                advice, advice.mode, self.settings.advisor_veto_confidence),))
        return decision

    # -- broker events ---------------------------------------------------------------------------
    def apply_update(self, update: OrderUpdate) -> None:
        """A broker event (the broker's listener), or an order state read over REST."""
        book, incoming = self.order_book, update.order
        prev = book.known.get(incoming.id)
        if prev is not None and is_older(incoming, prev):
            # Older than what a sync or a lookup adopted.
            self.journal.order_update(self.clock.now(), replace(update, fill=None))
            return
        order = book.remember(incoming) if incoming.legs else book.record(incoming)
        fill = update.fill
        if fill is not None and prev is not None and order.filled_qty <= prev.filled_qty:
            fill = None  # already in what sync adopted: journaled as an event, not a fill
        if fill is not None and fill.role is not order.role:
            fill = replace(fill, role=order.role)  # the role known by id wins over a guess
        if self._journal_keeps:
            if order is not update.order or fill is not update.fill:
                update = OrderUpdate(update.event, order, fill)
            self.journal.order_update(self.clock.now(), update)
        if update.event == "rejected":
            self.record("error", "broker", f"order {order.short_id} {order.symbol} rejected: "
                        f"{order.reject_reason}")
        if fill is None:
            return
        self.fills.append(fill)
        self.account_stale = True
        if self._account_wanted is not None:
            self._account_wanted.set()
        role = fill.role
        if role is _ENTRY and fill.symbol not in self.book:
            self.book.set_strategy(fill.symbol, self.order_book.strategies.get(fill.symbol, ""))
        reason = ""
        if role is _EXIT:
            reason = self.order_book.reasons.get(fill.client_order_id) or self._close_reasons.get(
                fill.symbol, "")
        trade = self.book.apply_fill(fill, reason)
        if self._journal_keeps:
            self.journal.position(fill.ts, fill.symbol, self.book.position(fill.symbol))
        if role is _ENTRY:
            guard = self.order_book.protection(fill.symbol)
            self.book.set_protection(fill.symbol, guard.stop.stop_price if guard.stop else None,
                                     guard.take_profit.limit_price if guard.take_profit else None)
        events = self.record_events  # routine lines are only worded when recorded
        if events:
            self.record("info", "fill", f"FILL {fill.side.upper()} {fill.qty} {fill.symbol} @ "
                        f"{fill.price} ({str(fill.role).replace('_', '-')})", ts=fill.ts,
                        order_id=fill.order_id)
        if trade is not None:
            self._close_reasons.pop(trade.symbol, None)
            until = self.cooldown.record_exit(trade.symbol, trade.exit_reason, fill.ts)
            if events:
                self.record("info", "trade", f"closed {trade.symbol} {trade.qty} @ "
                            f"{trade.exit_price}: {trade.exit_reason}, P&L "
                            f"{money(trade.pnl, signed=True)}", ts=fill.ts)
            if until is not None:
                self.record("warning", "reject", f"{trade.symbol}: {self.limits.cooldown_after_stops}"
                            f" stop-outs in a row, no entries until {until:%H:%M %Z}")

    # -- restart ---------------------------------------------------------------------------------
    def restore(self, rec: Recovered, last_prices: dict[str, float]) -> None:
        """Takes back what the journal says a crashed session had (store/recovery.py reads it):
        intents (never sent twice), orders and their legs, fills (positions, cash, trades), the
        day, a tripped breaker, the trading state, the equity curve."""
        self.broker.restore(rec.fills, rec.orders, last_prices)
        self.orders.results.update(rec.outcomes)
        self.orders.intents.update(rec.intents)
        for cid, intent in rec.intents.items():
            self.order_book.reasons[cid] = intent.reason
            if not intent.reduce_only:
                self.order_book.strategies[intent.symbol] = intent.strategy
        for order in rec.orders:
            self.order_book.remember(order)
        if rec.day is not None and rec.start_of_day_equity is not None:
            self.day = rec.day
            self.start_of_day_equity = rec.start_of_day_equity
            self.breaker.start_day(rec.day, rec.start_of_day_equity)
        for fill in rec.fills:
            intent = rec.intents.get(fill.client_order_id)
            reason = "" if fill.role is OrderRole.ENTRY or intent is None else intent.reason
            if fill.role is OrderRole.ENTRY and intent is not None:
                self.book.set_strategy(fill.symbol, intent.strategy)
            trade = self.book.apply_fill(fill, reason)
            if fill.role is OrderRole.ENTRY and intent is not None:
                self.book.set_protection(fill.symbol, intent.stop_loss, intent.take_profit)
            if trade is not None:
                self.cooldown.record_exit(trade.symbol, trade.exit_reason, fill.ts)
        for symbol, price in last_prices.items():
            self.book.mark(symbol, price)
            self.last_prices[symbol] = price
        if rec.trip is not None and self.breaker.day == rec.trip.ts.date():
            self.breaker.trip = rec.trip
            self.breaker.trips.append(rec.trip)
        if rec.enabled is not None:
            self.enabled = rec.enabled
        self.equity_curve.extend(rec.curve)
        day_start = next((i for i, (ts, _) in enumerate(rec.curve) if ts.date() == rec.day), 0)
        trades_before = sum(t.exit_time.date() != rec.day for t in self.book.trades)
        self._day_starts = (trades_before, day_start)
        if rec.last_minute is not None:
            self.clock.advance_to(rec.last_minute)

    # -- reading ---------------------------------------------------------------------------------
    def snapshot(self, events: int = 200, orders: int = 200, fills: int = 200) -> EngineSnapshot:
        """An immutable picture of everything the console shows; call it on the engine's loop."""
        now = self.clock.now()
        account = self._account_view()
        ctx = self._risk_context()
        probe = OrderIntent("", Side.BUY, 0, ref_price=Decimal(0))
        risk = check_order(probe, ctx, self.limits).checks
        listed = list(self.open_orders.values())
        for order in reversed(self.known_orders.values()):
            if len(listed) >= orders:
                break
            if not order.status.is_open:
                listed.append(order)
        return EngineSnapshot(
            ts=now, mode=self.settings.mode, state=self.state, market_open=ctx.market_open,
            market_state=self.calendar.describe(now), account=account,
            positions=self.positions_view(), orders=tuple(listed), risk=risk,
            breaker_tripped=self.breaker.tripped,
            daily_loss_pct=daily_loss_pct(account.equity, ctx.start_of_day_equity),
            max_daily_loss_pct=self.limits.max_daily_loss_pct,
            trades=tuple(self.book.trades),
            equity_curve=tuple(self.equity_curve[max(self._day_starts[1], len(self.equity_curve) - 1000):]),
            events=tuple(list(self.events)[-events:]) if events else (),
            event_seq=self.event_seq,
            metrics=compute_metrics(self.book.trades[self._day_starts[0]:],
                                    self.equity_curve[self._day_starts[1]:]),
            health=self._health(),
            symbols=self.settings.symbols,
            last_prices=dict(self.last_prices),
            rejections_by_check=dict(self.rejections_by_check),
            strategies=self.strategies.states(),
            strategy_metrics=self._strategy_metrics(),
            order_strategies={o.id: self.strategy_of_order(o) for o in listed},
            quotes=self._quote_list(),
            fills=tuple(self.fills[max(self._day_fills, len(self.fills) - fills):]),
            realized_by_symbol=self._realized_by_symbol(),
            emergency_stop=self.emergency_stopped and not self.enabled,
            loss_to_breaker=self._loss_to_breaker(account.equity, ctx.start_of_day_equity),
            advice=tuple(self.advice)[-50:])

    def _quote_list(self) -> tuple[Quote, ...]:
        """A quote per symbol of the universe and per other symbol held; each is rebuilt only when
        its symbol got a bar, its price or its position changed since the last snapshot."""
        symbols = list(self.settings.symbols)
        symbols += [s for s in self.book.symbols() if s not in symbols]
        quotes = []
        for symbol in symbols:
            qty = self.book.qty(symbol)
            key = (self.tape.count(symbol), self.last_prices.get(symbol), qty)
            cached = self._quotes.get(symbol)
            if cached is None or cached[0] != key:
                quote = self.tape.quote(symbol, key[1], self.strategies.indicator_values(symbol),
                                        self.strategies.next_signal(symbol, qty))
                cached = self._quotes[symbol] = (key, quote)
            quotes.append(cached[1])
        return tuple(quotes)

    def _realized_by_symbol(self) -> dict[str, Decimal]:
        realized: dict[str, Decimal] = {}
        for t in self.book.trades[self._day_starts[0]:]:
            realized[t.symbol] = realized.get(t.symbol, Decimal(0)) + t.pnl - t.commission
        return realized

    def _loss_to_breaker(self, equity: Decimal, baseline: Decimal) -> Decimal | None:
        if baseline <= 0:
            return None
        if self.breaker.tripped:
            return Decimal(0)
        floor = baseline * (1 - Decimal(str(self.limits.max_daily_loss_pct)) / 100)
        return to_money(max(Decimal(0), equity - floor))

    def symbol_chart(self, symbol: str) -> SymbolChart:
        """The session of one symbol for its chart; call it on the engine's loop."""
        symbol = symbol.upper()
        bars, lines = self.tape.chart(symbol)
        position = next((p for p in self.positions_view() if p.symbol == symbol), None)
        orders = tuple(o for o in self.open_orders.values() if o.symbol == symbol)
        if position is not None:  # the legs working at the broker now
            stop, take = position.stop_loss, position.take_profit
        else:  # a pending entry's legs, held until it fills
            stop = next((o.stop_price for o in orders if o.role is OrderRole.STOP_LOSS), None)
            take = next((o.limit_price for o in orders if o.role is OrderRole.TAKE_PROFIT), None)
        fills = tuple(f for f in self.fills[self._day_fills:] if f.symbol == symbol)
        return SymbolChart(symbol, bars, lines, fills, position, orders, stop, take)

    def metrics_by_strategy(self) -> dict[str, dict]:
        """Today's metrics of each strategy's round trips (the total is the snapshot's)."""
        return {name: m.as_dict() for name, m in self._strategy_metrics().items()}

    def _strategy_metrics(self) -> dict[str, Metrics]:
        today = self.book.trades[self._day_starts[0]:]
        return {name: compute_metrics([t for t in today if t.strategy == name])
                for name in self.strategies.names}

    def strategy_of_order(self, order: Order) -> str:
        """The strategy an order serves: its own intent's, or (a leg, an exit) the one whose
        entry opened the position."""
        intent = self.orders.intents.get(order.client_order_id)
        if intent is not None and intent.strategy not in ("exit", "broker"):
            return intent.strategy
        parent = self.order_book.get(order.parent_id) if order.parent_id else None
        if parent is not None and (first := self.orders.intents.get(parent.client_order_id)):
            return first.strategy
        return self.order_book.strategies.get(order.symbol, "")

    def positions_view(self) -> tuple[Position, ...]:
        """Positions with the stop and target of the legs working at the broker now (by id): a
        position whose stop is gone shows none, and reads UNPROTECTED."""
        positions = self.book.positions()
        guards = self.order_book.protections(p.symbol for p in positions)
        out = []
        for p in positions:
            guard = guards[p.symbol]
            out.append(replace(
                p, stop_loss=guard.stop.stop_price if guard.stop else None,
                take_profit=guard.take_profit.limit_price if guard.take_profit else None,
                stop_order_id=guard.stop.id if guard.stop else None,
                take_profit_order_id=guard.take_profit.id if guard.take_profit else None,
                strategy=p.strategy))
        return tuple(out)

    def _health(self) -> tuple[Health, ...]:
        broker = Health("broker", True, self.broker.name)
        if self.last_bar_wall is None:
            data = Health("data", False, "no bars yet")
        else:
            data = Health("data", True, f"last bar {self.clock.now():%H:%M}", self.last_bar_wall)
        items = {"broker": broker, "data": data, **self.health}
        if self.advisor is not None:
            items["advisor"] = self.advisor.health()
        return tuple(items.values())

    # -- running ---------------------------------------------------------------------------------
    async def run(self, minutes: AsyncIterable[list[Bar]]) -> None:
        async for bars in minutes:
            await self.on_minute(bars)
