"""Position book: cash, positions and round trips built from fills, marked to market by bars.

The same book keeps the sim exchange's account and the engine's own view, so the two can only
disagree when fills were missed, which is what `sync` reconciles.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from daytrader.models import ZERO, Bar, Fill, OrderRole, Position, Side, Trade, to_money, to_price


@dataclass(slots=True)
class _OpenPosition:
    symbol: str
    qty: int
    avg_price: Decimal
    opened_at: datetime
    last: float
    entry_commission: Decimal = ZERO
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    _last_price: Decimal | None = None  # `last` as a price, made once per mark when asked
    strategy: str = ""

    @property
    def last_price(self) -> Decimal:
        if self._last_price is None:
            self._last_price = to_price(self.last)
        return self._last_price

    def set_last(self, price: float) -> None:
        self.last = price
        self._last_price = None


_ROLE_REASON = {OrderRole.STOP_LOSS: "stop_loss", OrderRole.TAKE_PROFIT: "take_profit"}
_BUY, _SELL = Side.BUY, Side.SELL  # members by module name (an enum's class lookup is slow)


class PositionBook:
    def __init__(self, cash: Decimal) -> None:
        self.cash = Decimal(cash)
        self._open: dict[str, _OpenPosition] = {}
        # symbol -> signed shares of each open position, kept with `_open`: the strategies read
        # it on every bar, where a dict lookup costs a fraction of a call to `qty`.
        self.held: dict[str, int] = {}
        self.trades: list[Trade] = []
        self.realized = ZERO
        self.commissions = ZERO
        self._next_strategy: dict[str, str] = {}
        self._cash_seen: Decimal | None = None  # the cash `_cash_float` was made from
        self._cash_float = 0.0

    # -- reading -------------------------------------------------------------------------------
    @property
    def open_positions(self) -> dict[str, _OpenPosition]:
        """symbol -> its open position, live (the sim marks them as it matches a minute)."""
        return self._open

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._open

    def __len__(self) -> int:
        return len(self._open)

    def qty(self, symbol: str) -> int:
        pos = self._open.get(symbol)
        return pos.qty if pos else 0

    def symbols(self) -> list[str]:
        return list(self._open)

    def qtys(self) -> dict[str, int]:
        return dict(self.held)

    def position(self, symbol: str) -> Position | None:
        pos = self._open.get(symbol)
        if pos is None:
            return None
        # By position (keywords cost a third more): a close reads the broker's position.
        return Position.make(pos.symbol, pos.qty, pos.avg_price, pos.last_price, pos.opened_at,
                             pos.stop_loss, pos.take_profit, None, None, pos.strategy)

    def positions(self) -> list[Position]:
        return [p for s in sorted(self._open) if (p := self.position(s)) is not None]

    def market_value(self) -> Decimal:
        return sum((p.last_price * p.qty for p in self._open.values()), ZERO)

    def gross_exposure(self) -> Decimal:
        return sum((p.last_price * abs(p.qty) for p in self._open.values()), ZERO)

    def value_and_exposure(self) -> tuple[Decimal, Decimal]:
        """(market_value(), gross_exposure()) in one pass: an account needs both."""
        value = gross = ZERO
        for p in self._open.values():
            held = p.last_price * p.qty
            value += held
            gross += abs(held)  # exact, as last_price * abs(qty)
        return value, gross

    def equity(self) -> Decimal:
        return to_money(self.cash + self.market_value())

    def equity_estimate(self) -> float:
        """Equity in floats for the per-bar breaker check; `equity()` is the exact figure."""
        cash = self.cash
        if cash is not self._cash_seen:  # a Decimal's float is made through its string: once
            self._cash_seen, self._cash_float = cash, float(cash)
        total = self._cash_float
        for p in self._open.values():
            total += p.qty * p.last
        return total

    def unrealized(self) -> Decimal:
        return to_money(sum(((p.last_price - p.avg_price) * p.qty for p in self._open.values()),
                            ZERO))

    # -- changing ------------------------------------------------------------------------------
    def mark(self, symbol: str, price: float) -> None:
        pos = self._open.get(symbol)
        if pos is not None:
            pos.set_last(price)

    def mark_bars(self, bars: Iterable[Bar], last_prices: dict[str, float]) -> None:
        """Marks every position a bar closes, and notes each bar's close in `last_prices`
        (symbol -> price) in the same pass: a minute of bars at once, on the hot path."""
        held = self._open
        if not held:
            for bar in bars:
                last_prices[bar.symbol] = bar.close
            return
        for bar in bars:
            symbol, close = bar.symbol, bar.close
            last_prices[symbol] = close
            pos = held.get(symbol)
            if pos is not None:  # set_last, written out: a call per bar of each held symbol
                pos.last = close
                pos._last_price = None

    def set_strategy(self, symbol: str, strategy: str) -> None:
        """The strategy of the next entry in `symbol`: its round trip is counted for it."""
        self._next_strategy[symbol] = strategy

    def set_protection(self, symbol: str, stop_loss: Decimal | None,
                       take_profit: Decimal | None) -> None:
        pos = self._open.get(symbol)
        if pos is not None:
            pos.stop_loss, pos.take_profit = stop_loss, take_profit

    def apply_fill(self, fill: Fill, reason: str = "") -> Trade | None:
        """Books a fill; returns the round trip it completes, if it brings the position to zero."""
        # Side.sign written out and the Trade's fields by position (keywords cost a third more):
        # this runs for every fill in both books, the engine's and the sim's.
        signed = fill.qty if fill.side == "buy" else -fill.qty
        price, commission = fill.price, fill.commission
        if commission:
            self.cash -= price * signed + commission
            self.commissions += commission
        else:  # none (the sim's default): two decimal sums fewer, on every fill in both books
            self.cash -= price * signed
        pos = self._open.get(fill.symbol)
        if pos is None:
            self._open[fill.symbol] = _OpenPosition(
                fill.symbol, signed, price, fill.ts, float(price), commission, None, None, None,
                self._next_strategy.pop(fill.symbol, ""))
            self.held[fill.symbol] = signed
            return None
        pos.set_last(float(price))
        if (pos.qty > 0) == (signed > 0):  # adding to the position
            total = pos.qty + signed
            pos.avg_price = to_price((pos.avg_price * pos.qty + fill.price * signed) / total)
            pos.qty = self.held[fill.symbol] = total
            pos.entry_commission += fill.commission
            return None
        closed = min(abs(signed), abs(pos.qty))
        direction = 1 if pos.qty > 0 else -1
        pnl = to_money((fill.price - pos.avg_price) * closed * direction)
        self.realized += pnl
        remaining = pos.qty + signed
        if remaining != 0 and (remaining > 0) == (pos.qty > 0):
            pos.qty = self.held[fill.symbol] = remaining
            return None
        trade = Trade.make(pos.symbol, _BUY if direction > 0 else _SELL, closed, pos.opened_at,
                           pos.avg_price, fill.ts, price, pnl,
                           reason or _ROLE_REASON.get(fill.role, "exit"), pos.stop_loss,
                           pos.take_profit, pos.entry_commission + commission, pos.strategy)
        self.trades.append(trade)
        del self._open[fill.symbol]
        del self.held[fill.symbol]
        if remaining != 0:  # the fill went through zero: the rest opens the other way
            self._open[fill.symbol] = _OpenPosition(fill.symbol, remaining, fill.price, fill.ts,
                                                    float(fill.price))
            self.held[fill.symbol] = remaining
        return trade

    def replace_all(self, cash: Decimal, positions: list[Position]) -> None:
        """Adopts the broker's view (sync): cash and positions as it reports them."""
        kept = self._open
        self.cash = Decimal(cash)
        self._open = {}
        for p in positions:
            old = kept.get(p.symbol)
            self._open[p.symbol] = _OpenPosition(
                p.symbol, p.qty, p.avg_entry_price, old.opened_at if old else p.opened_at,
                float(p.last_price), old.entry_commission if old else ZERO,
                p.stop_loss or (old.stop_loss if old else None),
                p.take_profit or (old.take_profit if old else None),
                strategy=old.strategy if old else "")
        self.held = {p.symbol: p.qty for p in self._open.values()}
