"""Pre-trade risk: the seed's six checks plus the stop-loss cooldown, and the circuit breaker.

Checks are pure functions of (intent, context, limits) returning a RiskDecision that names each
check with the value it saw and its limit, so a refusal always says which rule and why. Orders
that only reduce a position are never blocked by them: closing must work while halted. They
face one check of their own, `reduce_only`, against the broker's position: an exit may bring a
position to zero, never past it. The same check stops an entry that would flip a position in
one order, or open a short while shorts are off.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from daytrader.config import Settings
from daytrader.models import CheckResult, OrderIntent, RiskDecision, TradingState, quick_init
from daytrader.wording import plural

CHECK_NAMES = ("trading_enabled", "circuit_breaker", "market_open", "max_positions",
               "risk_per_trade", "buying_power", "stop_cooldown")
# Every exit's one check, and an entry's last one where it can bite (see check_order).
REDUCE_ONLY = "reduce_only"


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_daily_loss_pct: float = 5.0
    max_positions: int = 5
    risk_per_trade_pct: float = 1.0
    cooldown_after_stops: int = 3
    cooldown_minutes: int = 60

    @classmethod
    def from_settings(cls, s: Settings) -> RiskLimits:
        return cls(s.max_daily_loss_pct, s.max_positions, s.risk_per_trade_pct,
                   s.cooldown_after_stops, s.cooldown_minutes)


@quick_init
@dataclass(frozen=True, slots=True)
class RiskContext:
    """What the checks read: the account and engine state at the moment of the decision."""

    state: TradingState
    now: datetime
    market_open: bool
    equity: Decimal
    start_of_day_equity: Decimal
    buying_power: Decimal
    breaker_tripped: bool = False
    # Symbols holding a position or a working entry order: each takes one of the max slots.
    open_symbols: frozenset[str] = frozenset()
    cooldown_until: Mapping[str, datetime] = field(default_factory=dict)
    market_state: str = ""
    # Positions by symbol as the broker holds them (for an exit: read from the broker just before).
    position_qty: Mapping[str, int] = field(default_factory=dict)
    allow_shorts: bool = True


def _money(x: Decimal | float) -> str:
    return f"${x:,.2f}"


def _decimal(x: Decimal | float) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(str(x))


@functools.lru_cache(maxsize=64)
def _as_decimal(x: float) -> Decimal:
    """A setting's float as the decimal it reads as (one per setting, asked per order)."""
    return Decimal(str(x))


def daily_loss_pct(equity: Decimal | float, start_of_day_equity: Decimal | float) -> float:
    """Loss since the start of the day as a percent of start-of-day equity; 0 when up.

    Worked out in decimal so a loss of exactly the limit (e.g. $37,999.62 from $39,999.60, 5%)
    is the limit, not 4.99999999999999% as binary floats would make it.
    """
    sod = _decimal(start_of_day_equity)
    if sod <= 0:
        return 0.0
    return max(0.0, float((sod - _decimal(equity)) / sod * 100))


def order_price(intent: OrderIntent) -> Decimal | None:
    return intent.limit_price or intent.stop_price or intent.ref_price


@functools.lru_cache(maxsize=512)
def _passed(name: str, value: str, limit: str) -> CheckResult:
    """A check that passed. The same few recur on every order (a result is immutable, so one
    is shared): built once, not once per order."""
    return CheckResult(name, True, value, limit)


def check_trading_enabled(ctx: RiskContext) -> CheckResult:
    if ctx.state is not TradingState.DISABLED:
        return _passed("trading_enabled", "enabled", "enabled")
    return CheckResult("trading_enabled", False, "disabled", "enabled", "trading is disabled")


@functools.lru_cache(maxsize=64)
def _percent(x: float) -> str:
    return f"{x:.2f}%"


def check_circuit_breaker(ctx: RiskContext, limits: RiskLimits) -> CheckResult:
    limit = _percent(limits.max_daily_loss_pct)
    if (not ctx.breaker_tripped and ctx.equity >= ctx.start_of_day_equity
            and limits.max_daily_loss_pct > 0):
        # Not down on the day: no loss to work out (daily_loss_pct is 0 when up).
        return _passed("circuit_breaker", "0.00%", limit)
    loss = daily_loss_pct(ctx.equity, ctx.start_of_day_equity)
    if loss < limits.max_daily_loss_pct and not ctx.breaker_tripped:
        return CheckResult.make("circuit_breaker", True, lambda: f"{loss:.2f}%", limit)
    value = f"{loss:.2f}%"
    if ctx.breaker_tripped:
        return CheckResult("circuit_breaker", False, value, limit,
                           f"circuit breaker tripped: daily loss {value} reached the {limit} limit "
                           f"(start-of-day equity {_money(ctx.start_of_day_equity)}); "
                           "entries halted until the next trading day or a reset")
    return CheckResult("circuit_breaker", False, value, limit,
                       f"daily loss {value} is at or over the {limit} limit")


def check_market_open(ctx: RiskContext) -> CheckResult:
    state = ctx.market_state or ("open" if ctx.market_open else "closed")
    if ctx.market_open:
        return _passed("market_open", state, "open")
    return CheckResult("market_open", False, state, "open", f"market is {state}")


def check_max_positions(intent: OrderIntent, ctx: RiskContext, limits: RiskLimits) -> CheckResult:
    used = len(ctx.open_symbols)
    value, limit = str(used), str(limits.max_positions)
    if intent.symbol in ctx.open_symbols or used < limits.max_positions:
        return _passed("max_positions", value, limit)
    return CheckResult("max_positions", False, value, limit,
                       f"{plural(used, 'position')} open or pending, the maximum is "
                       f"{limits.max_positions}")


def check_risk_per_trade(intent: OrderIntent, ctx: RiskContext, limits: RiskLimits) -> CheckResult:
    price = order_price(intent)
    pct = limits.risk_per_trade_pct
    allowed = ctx.equity * _as_decimal(pct) / 100

    def limit() -> str:
        return f"{_money(allowed)} ({pct:g}% of equity)"

    if price is None:
        return CheckResult("risk_per_trade", False, "unknown", limit(),
                           f"no price for {intent.symbol} yet, so the risk cannot be measured")
    # Without a stop the whole notional is at risk.
    per_share = abs(price - intent.stop_loss) if intent.stop_loss is not None else price
    risk = per_share * intent.qty
    if risk <= allowed:  # worded when read (see CheckResult): a backtest never reads it
        return CheckResult.make("risk_per_trade", True, lambda: _money(risk), limit)
    value, limit_text = _money(risk), limit()
    stop = f"stop {intent.stop_loss}" if intent.stop_loss is not None else "no stop"
    return CheckResult("risk_per_trade", False, value, limit_text,
                       f"risk {value} ({intent.qty} x {_money(per_share)} to {stop}) is over "
                       f"{limit_text}")


def check_buying_power(intent: OrderIntent, ctx: RiskContext) -> CheckResult:
    price = order_price(intent)
    buying_power = ctx.buying_power
    if price is None:
        return CheckResult("buying_power", False, "unknown", _money(buying_power),
                           f"no price for {intent.symbol} yet, so the cost cannot be measured")
    cost = price * intent.qty
    if cost <= buying_power:  # worded when read, as in check_risk_per_trade
        return CheckResult.make("buying_power", True, lambda: _money(cost),
                                lambda: _money(buying_power))
    value, limit = _money(cost), _money(buying_power)
    return CheckResult("buying_power", False, value, limit,
                       f"order costs {value}, buying power is {limit}")


def check_stop_cooldown(intent: OrderIntent, ctx: RiskContext, limits: RiskLimits) -> CheckResult:
    until = ctx.cooldown_until.get(intent.symbol)
    limit = f"{limits.cooldown_after_stops} stops -> {limits.cooldown_minutes} min"
    if until is None or ctx.now >= until:
        return _passed("stop_cooldown", "none", limit)
    left = math.ceil((until - ctx.now).total_seconds() / 60)
    return CheckResult("stop_cooldown", False, f"{left} min left", limit,
                       f"{intent.symbol} is cooling down after {limits.cooldown_after_stops} "
                       f"stop-outs in a row: no entries until {until:%H:%M %Z}")


def check_reduce_only(intent: OrderIntent, ctx: RiskContext) -> CheckResult:
    """An exit takes the broker's position toward zero and never past it; an entry never
    crosses zero in one order, nor goes short while shorts are off."""
    return _reduce_only(intent, ctx.position_qty.get(intent.symbol, 0), ctx.allow_shorts)


def check_exit(intent: OrderIntent, held: int) -> RiskDecision:
    """The decision on an order that only reduces (`reduce_only`): its one check, against
    `held`, the broker's position in the symbol. `check_order` decides an exit the same way;
    this needs no context, which an exit would otherwise build for nothing."""
    return RiskDecision.make((_reduce_only(intent, held, True),))


def _reduce_only(intent: OrderIntent, held: int, allow_shorts: bool) -> CheckResult:
    after = held + intent.side.sign * intent.qty

    def value() -> str:  # worded when read, as in check_risk_per_trade
        return f"position {held:+d} -> {after:+d}"

    if intent.reduce_only:
        limit = "toward 0, not past it"
        if held == 0:
            return CheckResult(REDUCE_ONLY, False, value(), limit,
                               f"no {intent.symbol} position at the broker: nothing to close")
        if held * after < 0 or abs(after) >= abs(held):
            return CheckResult(REDUCE_ONLY, False, value(), limit,
                               f"{intent.side} {intent.qty} {intent.symbol} would take the "
                               f"position from {held:+d} to {after:+d}; an exit only reduces")
        return CheckResult.make(REDUCE_ONLY, True, value, limit)
    limit = "no flip" if allow_shorts else "no flip, no shorts"
    if held * after < 0:
        return CheckResult(REDUCE_ONLY, False, value(), limit,
                           f"{intent.side} {intent.qty} {intent.symbol} would flip the position "
                           f"from {held:+d} to {after:+d} in one order; close it first")
    if after < 0 and not allow_shorts:
        return CheckResult(REDUCE_ONLY, False, value(), limit,
                           f"{intent.side} {intent.qty} {intent.symbol} would open a short "
                           f"({after:+d}) and ALLOW_SHORTS=false")
    return CheckResult.make(REDUCE_ONLY, True, value, limit)


def check_order(intent: OrderIntent, ctx: RiskContext, limits: RiskLimits) -> RiskDecision:
    """Every check on an order that opens or adds to a position, in the seed's order; an exit
    faces only `reduce_only`."""
    if intent.reduce_only:
        return check_exit(intent, ctx.position_qty.get(intent.symbol, 0))
    checks = (
        check_trading_enabled(ctx),
        check_circuit_breaker(ctx, limits),
        check_market_open(ctx),
        check_max_positions(intent, ctx, limits),
        check_risk_per_trade(intent, ctx, limits),
        check_buying_power(intent, ctx),
        check_stop_cooldown(intent, ctx, limits),
    )
    held = ctx.position_qty.get(intent.symbol, 0)
    if intent.side.sign * held < 0 or (intent.side.sign < 0 and not ctx.allow_shorts):
        # Only where it can bite: a sell with shorts off, or an order against a position.
        checks += (check_reduce_only(intent, ctx),)
    return RiskDecision.make(checks)


@dataclass(frozen=True, slots=True)
class BreakerTrip:
    ts: datetime
    loss_pct: float
    equity: Decimal
    baseline: Decimal

    @property
    def message(self) -> str:
        return (f"circuit breaker tripped: daily loss {self.loss_pct:.2f}% "
                f"(equity {_money(self.equity)} vs start-of-day {_money(self.baseline)})")


class CircuitBreaker:
    """Trips on the first update whose realized + unrealized loss crosses the daily limit."""

    def __init__(self, max_loss_pct: float) -> None:
        self.max_loss_pct = max_loss_pct
        self.baseline = Decimal(0)
        self.day: date | None = None
        self.trip: BreakerTrip | None = None
        self.trips: list[BreakerTrip] = []
        self._clear: tuple[Decimal, float] | None = None  # (baseline, equity safely above the limit)

    @property
    def tripped(self) -> bool:
        return self.trip is not None

    def start_day(self, day: date, equity: Decimal) -> bool:
        """A new trading day: a fresh baseline, and a trip from an earlier day is cleared.
        Returns True when a trip was cleared."""
        cleared = self.trip is not None
        self.day, self.baseline, self.trip = day, Decimal(equity), None
        return cleared

    def loss_pct(self, equity: Decimal | float) -> float:
        return daily_loss_pct(equity, self.baseline)

    def update(self, equity: Decimal | float, now: datetime) -> BreakerTrip | None:
        """Returns the trip on the update that crosses the limit, None otherwise."""
        if self.trip is not None or self.baseline <= 0:
            return None
        if isinstance(equity, float):
            # A dollar above the limit is far from it whatever the rounding: no decimals needed
            # on the minutes (almost all) that settle it so.
            if self._clear is None or self._clear[0] is not self.baseline:
                limit = float(self.baseline) * (1 - self.max_loss_pct / 100)
                self._clear = (self.baseline, limit + 1.0)
            if equity > self._clear[1]:
                return None
        # Judged on the equity in cents, the figure the trip reports (per-bar estimates are floats).
        cents = _decimal(equity).quantize(Decimal("0.01"))
        loss = self.loss_pct(cents)
        if loss < self.max_loss_pct:
            return None
        self.trip = BreakerTrip(now, loss, cents, self.baseline)
        self.trips.append(self.trip)
        return self.trip

    def reset(self, equity: Decimal) -> None:
        """An explicit reset: the loss is measured again from the equity at this moment."""
        self.trip = None
        self.baseline = Decimal(equity)


class StopCooldown:
    """After N stop-outs in a row on a symbol, no entries on it for a set time."""

    def __init__(self, stops: int, minutes: int) -> None:
        self.stops, self.minutes = stops, minutes
        self.streak: dict[str, int] = {}
        self.until: dict[str, datetime] = {}

    def record_exit(self, symbol: str, reason: str, ts: datetime) -> datetime | None:
        """Counts a closed trade; returns the end of a cooldown it starts."""
        if reason != "stop_loss":
            self.streak[symbol] = 0
            return None
        streak = self.streak.get(symbol, 0) + 1
        if streak < self.stops:
            self.streak[symbol] = streak
            return None
        self.streak[symbol] = 0
        self.until[symbol] = ts + timedelta(minutes=self.minutes)
        return self.until[symbol]


def size_entry(equity: Decimal, risk_pct: float, price: Decimal, stop: Decimal,
               cash_cap: Decimal) -> int:
    """Shares so that hitting the stop loses at most risk_pct of equity, capped by the cash cap.

    The stop distance is the rounded one the broker will hold (about stop_mult x ATR), so the
    order always passes the risk-per-trade check it was sized for.
    """
    distance = abs(price - stop)
    if distance <= 0 or price <= 0:
        return 0
    # Whole shares by division to an integer of the exact products, not by rounded quotients
    # floored afterwards (it truncates toward zero: a negative equity still sizes to 0 below).
    by_risk = int(equity * _as_decimal(risk_pct) // (distance * 100))
    by_cash = int(cash_cap // price) if cash_cap > 0 else 0
    return max(0, min(by_risk, by_cash))
