"""The engine: wires data -> strategy -> risk/orders -> broker -> fills -> positions, and the controls.

One place decides; the console, the control API and headless mode all call the same commands
(`enable`, `disable`, `emergency_stop`, `close_position`, `cancel_order`, `submit`, `sync`,
`reset_breaker`) and read the same immutable `EngineSnapshot`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from daytrader.broker import Broker, BrokerError
from daytrader.broker.sim import SimExchange
from daytrader.clock import EXCHANGE_TZ, Clock, MarketCalendar, Session, SimClock
from daytrader.config import Settings
from daytrader.metrics import Metrics
from daytrader.metrics import compute as compute_metrics
from daytrader.models import (
    Account,
    Bar,
    CheckResult,
    Fill,
    Health,
    LogEvent,
    Order,
    OrderIntent,
    OrderRole,
    OrderType,
    OrderUpdate,
    Position,
    RiskDecision,
    Side,
    Signal,
    Trade,
    TradingState,
    to_money,
    to_price,
)
from daytrader.orders import OrderManager, SubmitResult, SubmitStatus
from daytrader.positions import PositionBook
from daytrader.risk import (
    CircuitBreaker,
    RiskContext,
    RiskLimits,
    StopCooldown,
    check_order,
    daily_loss_pct,
)
from daytrader.store.journal import NullJournal
from daytrader.strategy import Strategy
from daytrader.strategy.ema_crossover import CrossoverParams, EmaCrossover, size_entry

log = logging.getLogger(__name__)
MINUTE = timedelta(minutes=1)
# Components whose trouble pauses new entries (closing is never paused).
PAUSE_ENTRIES_ON = ("data", "trade_stream")


@dataclass(frozen=True, slots=True)
class EmergencyReport:
    disabled_after_ms: float
    requests_after_ms: float
    canceled: int
    close_orders: int
    flat: bool
    positions_left: tuple[str, ...]
    open_orders_left: int
    errors: tuple[str, ...]
    elapsed_ms: float

    @property
    def message(self) -> str:
        head = ("EMERGENCY STOP complete: trading disabled, flat, no open orders" if self.flat
                else f"EMERGENCY STOP: trading disabled; NOT FLAT: positions left "
                     f"{', '.join(self.positions_left) or 'none'}, open orders "
                     f"{self.open_orders_left}")
        tail = f"; errors: {'; '.join(self.errors)}" if self.errors else ""
        return (f"{head} (canceled {self.canceled} orders, sent {self.close_orders} closes, "
                f"{self.elapsed_ms:.0f} ms){tail}")


@dataclass(frozen=True, slots=True)
class CommandResult:
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    ts: datetime
    mode: str
    state: TradingState
    market_open: bool
    market_state: str
    account: Account
    positions: tuple[Position, ...]
    orders: tuple[Order, ...]  # open orders first, then the most recent others
    risk: tuple[CheckResult, ...]  # each check's current value against its limit
    breaker_tripped: bool
    daily_loss_pct: float
    max_daily_loss_pct: float
    trades: tuple[Trade, ...]  # every round trip of the run
    equity_curve: tuple[tuple[datetime, float], ...]
    events: tuple[LogEvent, ...]
    event_seq: int  # the seq of the newest event, even when `events` holds only a tail
    metrics: Metrics  # today's: realized, trades, win rate, profit factor, drawdown
    health: tuple[Health, ...]
    symbols: tuple[str, ...]
    last_prices: dict[str, float] = field(default_factory=dict)
    rejections_by_check: dict[str, int] = field(default_factory=dict)


class Engine:
    def __init__(self, settings: Settings, broker: Broker, calendar: MarketCalendar,
                 clock: Clock, strategy: Strategy | None = None) -> None:
        self.settings = settings
        self.broker = broker
        self.calendar = calendar
        self.clock = clock
        self.strategy: Strategy = strategy or EmaCrossover(CrossoverParams.from_settings(settings))
        self.limits = RiskLimits.from_settings(settings)
        self.orders = OrderManager(broker)
        self.book = PositionBook(settings.starting_cash)
        self.breaker = CircuitBreaker(settings.max_daily_loss_pct)
        self.cooldown = StopCooldown(settings.cooldown_after_stops, settings.cooldown_minutes)
        self.enabled = settings.trading_enabled_at_start
        self.known_orders: dict[str, Order] = {}
        self.open_orders: dict[str, Order] = {}  # the open subset, for checks on every order
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
        self._reasons: dict[str, str] = {}  # client order id -> why it was sent
        self._protection: dict[str, tuple[Decimal | None, Decimal | None]] = {}
        self._exiting: set[str] = set()
        self.listeners: list[Callable[[LogEvent], None]] = []  # e.g. the headless live log
        self.event_seq = 0
        # Components report here (the store, the data stream); the broker and data are filled in
        # from what the engine sees.
        self.health: dict[str, Health] = {}
        self.last_bar_wall: datetime | None = None
        # Wall time for health ages (the sim clock is the data's); tests freeze it.
        self.wall_clock: Callable[[], datetime] = lambda: datetime.now(EXCHANGE_TZ)
        # The journal (daytrader/store) is set by the runtime; the default writes nothing.
        self.journal: NullJournal = NullJournal()
        self.orders.before_send = lambda cid, intent, decision: self.journal.intent(
            cid, intent, decision)
        broker.set_listener(self._on_update)

    # -- state -----------------------------------------------------------------------------------
    @property
    def state(self) -> TradingState:
        if not self.enabled:
            return TradingState.DISABLED
        return TradingState.HALTED if self.breaker.tripped else TradingState.ENABLED

    def record(self, level: str, kind: str, message: str, ts: datetime | None = None, **data) -> None:
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
        note = " (circuit breaker still tripped: entries stay halted)" if self.breaker.tripped else ""
        self.record("info", "control", f"trading enabled by {source}{note}", source=source,
                    action="enable")
        return CommandResult(True, f"trading enabled{note}")

    def disable(self, source: str = "console") -> CommandResult:
        # Synchronous on purpose: it takes effect before anything else is drawn or sent.
        self.enabled = False
        self.record("warning", "control", f"trading disabled by {source}", source=source,
                    action="disable")
        return CommandResult(True, "trading disabled")

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
        """Disable first (no network needed), cancel all, close all, then verify flat."""
        t0 = time.perf_counter()
        self.enabled = False
        disabled_ms = (time.perf_counter() - t0) * 1000
        self.record("error", "control", f"EMERGENCY STOP by {source}: trading disabled",
                  source=source, action="emergency_stop")
        errors: list[str] = []
        canceled: list[str] = []
        closes: list[Order] = []
        try:
            canceled = await self.broker.cancel_all()
        except BrokerError as exc:
            errors.append(f"cancel all: {exc}")
        for symbol in self.book.symbols():
            self._exit_reason_for(symbol, "emergency_stop")
        try:
            closes = await self.broker.close_all()
        except BrokerError as exc:
            errors.append(f"close all: {exc}")
        requests_ms = (time.perf_counter() - t0) * 1000
        self.record("warning", "control", f"emergency stop: canceled {len(canceled)} orders, "
                  f"sent {len(closes)} closes; waiting for fills")
        positions, open_orders = await self._wait_flat(flat_timeout)
        report = EmergencyReport(disabled_ms, requests_ms, len(canceled), len(closes),
                                 not positions and not open_orders,
                                 tuple(p.symbol for p in positions), len(open_orders),
                                 tuple(errors), (time.perf_counter() - t0) * 1000)
        self.record("info" if report.flat else "error", "control", report.message)
        return report

    async def _wait_flat(self, timeout: float) -> tuple[list[Position], list[Order]]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                positions = await self.broker.list_positions()
                open_orders = await self.broker.list_orders(open_only=True)
            except BrokerError as exc:
                self.record("error", "broker", f"cannot verify flat: {exc}")
                positions, open_orders = self.book.positions(), []
            if (not positions and not open_orders) or time.monotonic() >= deadline:
                return positions, open_orders
            await asyncio.sleep(0.05)

    async def close_position(self, symbol: str, source: str = "console",
                             reason: str = "manual_close") -> CommandResult:
        symbol = symbol.upper()
        qty = self.book.qty(symbol)
        if qty == 0:
            return CommandResult(False, f"no position in {symbol}")
        result = await self._exit(symbol, reason, source)
        return CommandResult(result.ok, f"close {symbol}: {result.message}")

    async def cancel_order(self, order_id: str, source: str = "console") -> CommandResult:
        try:
            await self.broker.cancel_order(order_id)
        except BrokerError as exc:
            self.record("warning", "broker", f"cancel {order_id} by {source} failed: {exc}")
            return CommandResult(False, f"cancel {order_id}: {exc}")
        self.record("info", "control", f"order {order_id} canceled by {source}", source=source)
        return CommandResult(True, f"order {order_id} canceled")

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

    async def sync(self, source: str = "console") -> CommandResult:
        """Adopts the broker's account, positions and orders: the broker says what exists.

        Orders are read before and after the positions; when a fill landed in between, it is read
        again, so the orders' filled quantities match the positions and a stream event that
        arrives later is neither lost nor counted twice (see `_on_update`)."""
        try:
            for _ in range(5):
                first = await self.broker.list_orders(open_only=False)
                positions = await self.broker.list_positions()
                orders = await self.broker.list_orders(open_only=False)
                if {o.id: o.filled_qty for o in first} == {o.id: o.filled_qty for o in orders}:
                    break
            account = await self.broker.get_account()
            open_now = await self.broker.list_orders(open_only=True)
        except BrokerError as exc:
            self.record("error", "broker", f"sync failed: {exc}")
            return CommandResult(False, f"sync failed: {exc}")
        before = {p.symbol: p.qty for p in self.book.positions()}
        after = {p.symbol: p.qty for p in positions}
        self.account = account
        self.book.replace_all(account.cash, positions)
        for order in orders:
            self.known_orders[order.id] = order  # the broker's word, even over a newer event
            self._remember(order)
            self.orders.adopt(order)
        still_open = {o.id for o in open_now}
        for order in open_now:
            if order.id not in self.known_orders:  # older than the listed window
                self._remember(order)
                self.orders.adopt(order)
        for order_id in [i for i in self.open_orders if i not in still_open]:
            self.open_orders.pop(order_id, None)
        for result in await self.orders.resolve_unknown():
            if result.order is not None:
                self._reasons[result.client_order_id] = result.intent.reason
                if result.order.id not in self.known_orders:
                    self._remember(result.order)
            self.record("info" if result.order else "warning", "order",
                        f"{result.intent.side} {result.intent.qty} {result.intent.symbol}: "
                        f"unknown outcome resolved: {result.status.value} {result.message}")
        for p in positions:  # protective legs at the broker keep protecting after a restart
            legs = [o for o in self.open_orders.values() if o.symbol == p.symbol]
            stop = next((o.stop_price for o in legs if o.role is OrderRole.STOP_LOSS), None)
            take = next((o.limit_price for o in legs if o.role is OrderRole.TAKE_PROFIT), None)
            if stop is not None or take is not None:
                self.book.set_protection(p.symbol, stop, take)
        diff = "" if before == after else f"; positions changed {before} -> {after}"
        self.record("info", "control", f"sync by {source}: {len(positions)} positions, "
                  f"{len(self.open_orders)} open orders{diff}", source=source)
        return CommandResult(True, f"synced: {len(positions)} positions{diff}")

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
        bad = [h for name in PAUSE_ENTRIES_ON if (h := self.health.get(name)) and not h.ok]
        return "; ".join(f"{h.name}: {h.detail}" for h in bad)

    # -- the data path ---------------------------------------------------------------------------
    def warm_up(self, bars: Iterable[Bar]) -> int:
        count = 0
        for bar in bars:
            self.strategy.warm_up(bar)
            self.last_prices[bar.symbol] = bar.close
            count += 1
        return count

    async def on_minute(self, bars: list[Bar]) -> None:
        """Trades one minute, then journals its equity point (the journal's "minute done")."""
        if not bars:
            return
        session = await self._trade_minute(bars)
        now = bars[0].ts + MINUTE
        kind = "eod" if session is not None and now >= session.close else "minute"
        self.journal.equity(now, kind, to_money(self.book.equity_estimate()), to_money(self.book.cash),
                            self.state.value)
        self.journal.flush()

    async def _trade_minute(self, bars: list[Bar]) -> Session | None:
        """One minute of bars (same timestamp): match, mark, breaker, flatten, strategy.
        Returns the session the minute belongs to (None outside regular hours)."""
        bar_ts = bars[0].ts
        now = bar_ts + MINUTE  # the bar is complete at the end of its minute
        if isinstance(self.clock, SimClock) and now > self.clock.now():
            self.clock.set(now)
        session = self.calendar.session_at(bar_ts)
        if session is not None and session.date != self.day:
            self._start_day(session.date)
        self.last_bar_wall = self.wall_clock()
        self.broker.on_bars(bars)
        for bar in bars:
            self.last_prices[bar.symbol] = bar.close
            self.book.mark(bar.symbol, bar.close)
        equity = self.book.equity_estimate()
        self.equity_curve.append((now, equity))
        trip = self.breaker.update(equity, now)
        if trip is not None:
            self.journal.breaker(now, "trip", "engine", trip.message, trip.loss_pct, trip.equity,
                                 trip.baseline)
            self.record("error", "breaker", trip.message + "; entries halted, closes still allowed",
                      loss_pct=trip.loss_pct)
        if session is None:
            return None  # outside regular hours: marks only, no decisions
        flatten_at = session.close - timedelta(minutes=self.settings.flatten_minutes_before_close)
        if now >= flatten_at:
            await self._flatten(now)
            for bar in bars:
                self.strategy.warm_up(bar)
            return session
        for bar in bars:
            signal = self.strategy.on_bar(bar, self.book.qty(bar.symbol))
            if signal is not None:
                await self._act(signal)
        return session

    def _start_day(self, day: date) -> None:
        self.day = day
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
                  f"{self.start_of_day_equity}")

    async def _flatten(self, now: datetime) -> None:
        for symbol in self.book.symbols():
            if symbol not in self._exiting:
                await self._exit(symbol, "flatten_before_close", "engine")
        for order in list(self.open_orders.values()):
            if order.role is OrderRole.ENTRY:
                await self.cancel_order(order.id, "engine (flatten before close)")

    async def _act(self, signal: Signal) -> None:
        if signal.action == "exit":
            if signal.symbol not in self._exiting:
                await self._exit(signal.symbol, signal.reason, "strategy")
            return
        side = Side.BUY if signal.action == "enter_long" else Side.SELL
        assert signal.stop_loss is not None
        qty = self._size(signal.price, signal.stop_loss)
        intent = OrderIntent(signal.symbol, side, qty, OrderType.MARKET,
                             stop_loss=signal.stop_loss, take_profit=signal.take_profit,
                             ref_price=signal.price, reason=signal.reason,
                             strategy=self.strategy.name, ts=signal.ts)
        if qty <= 0:
            self.record("info", "order", f"signal {signal.reason} {signal.symbol} skipped: "
                      "position size rounds to 0 shares")
            return
        await self._send(intent)

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
        stop the strategy's bracket (2xATR / 4xATR) when the ATR is known, so no position is
        left without protective orders at the broker."""
        changes: dict = {}
        if intent.ts is None:
            changes["ts"] = self.clock.now()
        ref = intent.ref_price
        if ref is None and intent.symbol in self.last_prices:
            ref = changes["ref_price"] = to_price(self.last_prices[intent.symbol])
        atr = None
        if isinstance(self.strategy, EmaCrossover):
            atr = self.strategy.indicators(intent.symbol)[2]
        if (not intent.reduce_only and intent.stop_loss is None and ref is not None and atr
                and intent.order_type is OrderType.MARKET):
            p = self.strategy.params
            sign = intent.side.sign
            changes["stop_loss"] = to_price(float(ref) - sign * p.stop_atr_mult * atr)
            changes["take_profit"] = to_price(float(ref) + sign * p.take_profit_atr_mult * atr)
        return replace(intent, **changes) if changes else intent

    async def _send(self, intent: OrderIntent) -> SubmitResult:
        result = await self.orders.submit(intent, self._check)
        if result.status is SubmitStatus.RISK_REJECTED and result.decision is not None:
            self.journal.risk_rejected(self.clock.now(), result.client_order_id, intent,
                                       result.decision)
        elif result.status is not SubmitStatus.DUPLICATE:
            self.journal.submit_result(self.clock.now(), result.client_order_id,
                                       result.status.value, result.order.id if result.order else None,
                                       result.error)
        self.submitted.append(result)
        if result.status is SubmitStatus.RISK_REJECTED:
            failed = result.decision.failed if result.decision else None
            if failed is not None:
                self.rejections_by_check[failed.name] += 1
            self.record("warning", "reject", f"{intent.side} {intent.qty} {intent.symbol} "
                      f"({intent.reason}) {result.message}",
                      check=failed.name if failed else None)
            return result
        if result.status is SubmitStatus.DUPLICATE:
            self.record("info", "order", f"{intent.symbol} {intent.side} {intent.qty}: duplicate of "
                      f"{result.client_order_id}, not sent again")
            return result
        if result.order is None:
            self.record("error", "broker", f"{intent.side} {intent.qty} {intent.symbol}: "
                      f"{result.message}", code=result.error_code)
            return result
        self._reasons[result.client_order_id] = intent.reason
        self._protection[intent.symbol] = (intent.stop_loss, intent.take_profit)
        if result.order.id not in self.known_orders:
            self._remember(result.order)
        bracket = (f" (stop {intent.stop_loss}, take-profit {intent.take_profit})"
                   if intent.stop_loss else "")
        self.record("info", "order", f"{intent.side.upper()} {intent.qty} {intent.symbol} "
                  f"{intent.order_type}{bracket}: {intent.reason or 'manual'} "
                  f"[{result.client_order_id}]")
        return result

    async def _exit(self, symbol: str, reason: str, source: str) -> SubmitResult:
        """Cancels the symbol's working orders (its bracket legs), then closes with a market
        order that may only reduce the position."""
        self._exiting.add(symbol)
        try:
            for order in await self.broker.list_orders(open_only=True):
                if order.symbol == symbol:
                    try:
                        await self.broker.cancel_order(order.id)
                    except BrokerError as exc:
                        self.record("warning", "broker", f"cancel {order.id} before exit: {exc}")
            qty = self.book.qty(symbol)
            side = Side.SELL if qty > 0 else Side.BUY
            intent = OrderIntent(symbol, side, abs(qty), OrderType.MARKET,
                                 ref_price=to_price(self.last_prices.get(symbol, 0) or 0) or None,
                                 reduce_only=True, reason=reason, strategy="exit",
                                 ts=self.clock.now())
            return await self._send(intent)
        finally:
            self._exiting.discard(symbol)

    def _exit_reason_for(self, symbol: str, reason: str) -> None:
        self._protection.pop(symbol, None)
        self._reasons[f"close:{symbol}"] = reason

    # -- risk ------------------------------------------------------------------------------------
    def _open_symbols(self) -> frozenset[str]:
        pending = {o.symbol for o in self.open_orders.values() if o.role is OrderRole.ENTRY}
        return frozenset(self.book.symbols()) | pending | self.orders.pending_symbols()

    def _account_view(self) -> Account:
        if isinstance(self.broker, SimExchange):
            account = self.broker.account()
            return Account(account.cash, account.equity, account.buying_power,
                           self.start_of_day_equity)
        equity = self.book.equity()
        return Account(to_money(self.book.cash), equity, self.account.buying_power,
                       self.start_of_day_equity)

    def _risk_context(self) -> RiskContext:
        now = self.clock.now()
        account = self._account_view()
        market_open = self.calendar.is_open(now)
        return RiskContext(state=self.state, now=now, market_open=market_open,
                           equity=account.equity, start_of_day_equity=self.breaker.baseline
                           or self.start_of_day_equity,
                           buying_power=account.buying_power,
                           breaker_tripped=self.breaker.tripped,
                           open_symbols=self._open_symbols(),
                           cooldown_until=self.cooldown.until,
                           market_state="" if market_open else self.calendar.describe(now))

    def _check(self, intent: OrderIntent) -> RiskDecision:
        decision = check_order(intent, self._risk_context(), self.limits)
        paused = "" if intent.reduce_only else self.entries_paused()
        if paused:
            return RiskDecision((CheckResult("data_fresh", False, "paused", "fresh",
                                             f"entries paused: {paused}"),) + decision.checks)
        return decision

    # -- broker events ---------------------------------------------------------------------------
    def _remember(self, order: Order) -> None:
        self.known_orders[order.id] = order
        if order.status.is_open:
            self.open_orders[order.id] = order
        else:
            self.open_orders.pop(order.id, None)

    def _on_update(self, update: OrderUpdate) -> None:
        self.journal.order_update(self.clock.now(), update)  # as soon as it is learned
        order = update.order
        prev = self.known_orders.get(order.id)
        if prev is not None and (order.filled_qty < prev.filled_qty or (
                not prev.status.is_open and order.status.is_open)):
            return  # older than what sync already adopted from the broker
        self._remember(order)
        if update.event == "rejected":
            self.record("error", "broker", f"order {order.id} {order.symbol} rejected: "
                      f"{order.reject_reason}")
        if update.fill is None:
            return
        if prev is not None and order.filled_qty <= prev.filled_qty:
            return  # this fill is in the positions sync adopted already
        fill = update.fill
        self.fills.append(fill)
        reason = self._reasons.get(fill.client_order_id) or self._reasons.pop(
            f"close:{fill.symbol}", "")
        if fill.role is OrderRole.ENTRY:
            reason = ""
        trade = self.book.apply_fill(fill, reason)
        self.journal.position(fill.ts, fill.symbol, self.book.position(fill.symbol))
        if fill.role is OrderRole.ENTRY:
            stop, take = self._protection.get(fill.symbol, (None, None))
            self.book.set_protection(fill.symbol, stop, take)
        self.record("info", "fill", f"FILL {fill.side.upper()} {fill.qty} {fill.symbol} @ "
                  f"{fill.price} ({fill.role})", ts=fill.ts, order_id=fill.order_id)
        if trade is not None:
            until = self.cooldown.record_exit(trade.symbol, trade.exit_reason, fill.ts)
            self.record("info", "trade", f"closed {trade.symbol} {trade.qty} @ {trade.exit_price}: "
                      f"{trade.exit_reason}, P&L {trade.pnl:+}", ts=fill.ts)
            if until is not None:
                self.record("warning", "reject", f"{trade.symbol}: {self.limits.cooldown_after_stops}"
                          f" stop-outs in a row, no entries until {until:%H:%M %Z}")

    # -- reading ---------------------------------------------------------------------------------
    def snapshot(self, events: int = 200, orders: int = 200) -> EngineSnapshot:
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
            positions=tuple(self.book.positions()), orders=tuple(listed), risk=risk,
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
            rejections_by_check=dict(self.rejections_by_check))

    def _health(self) -> tuple[Health, ...]:
        broker = Health("broker", True, self.broker.name)
        if self.last_bar_wall is None:
            data = Health("data", False, "no bars yet")
        else:
            data = Health("data", True, f"last bar {self.clock.now():%H:%M}", self.last_bar_wall)
        items = {"broker": broker, "data": data, **self.health}
        return tuple(items.values())

    # -- running ---------------------------------------------------------------------------------
    async def run(self, minutes: AsyncIterable[list[Bar]]) -> None:
        async for bars in minutes:
            await self.on_minute(bars)


def build_engine(settings: Settings, calendar: MarketCalendar | None = None,
                 start: datetime | None = None) -> Engine:
    """A sim engine from settings: the sim exchange on a sim clock that starts at `start`."""
    calendar = calendar or MarketCalendar()
    clock = SimClock(start or calendar.latest_session_started(datetime.now(EXCHANGE_TZ)).open)
    broker = SimExchange(settings.symbols, calendar, clock, cash=settings.starting_cash,
                         slippage_bps=settings.sim_slippage_bps,
                         commission_per_share=settings.sim_commission_per_share,
                         buying_power_multiplier=settings.sim_buying_power_multiplier)
    return Engine(settings, broker, calendar, clock)

