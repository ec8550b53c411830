"""What the engine publishes and what its commands answer: immutable values the console, the
control API and headless mode read, and all that the widgets import from the engine's side."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from daytrader.advisor.opinion import Opinion
from daytrader.market import Quote
from daytrader.metrics import Metrics
from daytrader.models import (
    Account,
    CheckResult,
    Fill,
    Health,
    LogEvent,
    Order,
    Position,
    Side,
    Trade,
    TradingState,
    quick_init,
    worded_when_read,
)
from daytrader.strategy.running import StrategyState
from daytrader.wording import plural


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What every engine command answers: did it work, in words, and what it produced (an
    emergency stop's report, a submit's result, a close's report), if anything."""

    ok: bool
    message: str
    detail: Any = None


@worded_when_read("message")  # one per close: a backtest's strategy exits make thousands
@quick_init
@dataclass(frozen=True, slots=True)
class CloseReport:
    """What one close did: the orders it canceled, what filled meanwhile, what it sent."""

    symbol: str
    ok: bool
    message: str
    canceled: tuple[str, ...] = ()  # order ids confirmed canceled
    filled_meanwhile: tuple[str, ...] = ()  # orders (legs) found filled instead of canceled
    close_qty: int = 0  # shares of the closing order sent (0: none was needed or sent)
    close_order_id: str | None = None
    flat: bool = False  # the broker held nothing when the close ended
    elapsed_ms: float = 0.0


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
    broker_requests: int = 0  # REST requests the stop used (its share of the rate limit)

    @property
    def message(self) -> str:
        head = ("EMERGENCY STOP complete: trading disabled, flat, no open orders" if self.flat
                else f"EMERGENCY STOP: trading disabled; NOT FLAT: positions left "
                     f"{', '.join(self.positions_left) or 'none'}, open orders "
                     f"{self.open_orders_left}")
        tail = f"; errors: {'; '.join(self.errors)}" if self.errors else ""
        return (f"{head} (canceled {plural(self.canceled, 'order')}, sent "
                f"{plural(self.close_orders, 'close')}, {self.elapsed_ms:.0f} ms){tail}")


@dataclass(frozen=True, slots=True)
class TicketDefaults:
    """What the order ticket is pre-filled with (Engine.ticket): the size and the bracket the
    strategy would use for an entry at `entry` now."""

    symbol: str
    side: Side
    last: Decimal | None  # the last price, for the fat-finger check
    entry: Decimal | None  # the price the bracket and the risk are measured from
    qty: int  # sized to risk `risk_per_trade_pct` of equity to the stop; a close: the position
    stop_loss: Decimal | None
    take_profit: Decimal | None
    equity: Decimal
    risk_per_trade_pct: float
    position_qty: int = 0  # held now (negative when short)


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    ts: datetime
    mode: str
    state: TradingState
    market_open: bool
    market_state: str
    account: Account
    # Each with the stop and target of the legs working at the broker now (by order id).
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
    strategies: tuple[StrategyState, ...] = ()  # each with its symbols, state and parameters
    strategy_metrics: dict[str, Metrics] = field(default_factory=dict)  # today's, per strategy
    order_strategies: dict[str, str] = field(default_factory=dict)  # order id -> its strategy
    strategy_metrics: dict[str, Metrics] = field(default_factory=dict)  # today's, per strategy
    order_strategies: dict[str, str] = field(default_factory=dict)  # order id -> its strategy
    # The watchlist: one quote per symbol of the universe (and any other symbol held).
    quotes: tuple[Quote, ...] = ()
    fills: tuple[Fill, ...] = ()  # the day's latest fills, oldest first
    realized_by_symbol: dict[str, Decimal] = field(default_factory=dict)  # today's, net
    emergency_stop: bool = False  # disabled by an emergency stop, until trading is enabled again
    loss_to_breaker: Decimal | None = None  # what the account may still lose today before it trips
    advice: tuple[Opinion, ...] = ()  # the advisor's latest opinions on entries, oldest first

    def advice_for(self, client_order_id: str) -> Opinion | None:
        """The advisor's opinion on the entry with this client order id, if it was asked."""
        return next((a for a in reversed(self.advice) if a.client_order_id == client_order_id),
                    None)
