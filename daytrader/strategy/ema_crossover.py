"""The seed strategy: long when EMA(9) crosses above EMA(21), stop 2xATR(14), take-profit 4xATR(14)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from daytrader.config import Settings
from daytrader.indicators import ATR, EMA
from daytrader.models import Bar, Signal, to_price


@dataclass(frozen=True, slots=True)
class CrossoverParams:
    fast: int = 9
    slow: int = 21
    atr_period: int = 14
    stop_atr_mult: float = 2.0
    take_profit_atr_mult: float = 4.0
    allow_shorts: bool = False

    @classmethod
    def from_settings(cls, s: Settings) -> CrossoverParams:
        return cls(s.ema_fast, s.ema_slow, s.atr_period, s.stop_atr_mult,
                   s.take_profit_atr_mult, s.allow_shorts)


class _SymbolState:
    __slots__ = ("fast", "slow", "atr", "above")

    def __init__(self, p: CrossoverParams) -> None:
        self.fast, self.slow, self.atr = EMA(p.fast), EMA(p.slow), ATR(p.atr_period)
        self.above: bool | None = None  # fast above slow on the previous bar

    def update(self, bar: Bar) -> tuple[bool | None, bool | None, float | None]:
        """Returns (was_above, is_above, atr); None where the indicators are not ready."""
        fast = self.fast.update(bar.close)
        slow = self.slow.update(bar.close)
        atr = self.atr.update(bar.high, bar.low, bar.close)
        if fast is None or slow is None:
            return None, None, atr
        was, self.above = self.above, fast > slow
        return was, self.above, atr


class EmaCrossover:
    name = "ema_cross"

    def __init__(self, params: CrossoverParams | None = None) -> None:
        self.params = params or CrossoverParams()
        self._state: dict[str, _SymbolState] = {}

    def _symbol(self, symbol: str) -> _SymbolState:
        state = self._state.get(symbol)
        if state is None:
            state = self._state[symbol] = _SymbolState(self.params)
        return state

    def warm_up(self, bar: Bar) -> None:
        self._symbol(bar.symbol).update(bar)

    def indicators(self, symbol: str) -> tuple[float | None, float | None, float | None]:
        """Current (fast EMA, slow EMA, ATR) of a symbol, for display and manual orders."""
        s = self._state.get(symbol)
        return (s.fast.value, s.slow.value, s.atr.value) if s else (None, None, None)

    def on_bar(self, bar: Bar, position_qty: int) -> Signal | None:
        was, now, atr = self._symbol(bar.symbol).update(bar)
        if was is None or now is None or was == now:
            return None
        if position_qty > 0 and not now:
            return self._exit(bar, "ema_cross_down")
        if position_qty < 0 and now:
            return self._exit(bar, "ema_cross_up")
        if position_qty != 0 or atr is None or atr <= 0:
            return None
        p = self.params
        if now:
            return Signal(bar.symbol, "enter_long", bar.ts, to_price(bar.close),
                          stop_loss=to_price(bar.close - p.stop_atr_mult * atr),
                          take_profit=to_price(bar.close + p.take_profit_atr_mult * atr),
                          atr=atr, reason="ema_cross_up")
        if p.allow_shorts:
            return Signal(bar.symbol, "enter_short", bar.ts, to_price(bar.close),
                          stop_loss=to_price(bar.close + p.stop_atr_mult * atr),
                          take_profit=to_price(bar.close - p.take_profit_atr_mult * atr),
                          atr=atr, reason="ema_cross_down")
        return None

    @staticmethod
    def _exit(bar: Bar, reason: str) -> Signal:
        return Signal(bar.symbol, "exit", bar.ts, to_price(bar.close), reason=reason)


def size_entry(equity: Decimal, risk_pct: float, price: Decimal, stop: Decimal,
               cash_cap: Decimal) -> int:
    """Shares so that hitting the stop loses at most risk_pct of equity, capped by the cash cap.

    The stop distance is the rounded one the broker will hold (about stop_mult x ATR), so the
    order always passes the risk-per-trade check it was sized for.
    """
    distance = abs(price - stop)
    if distance <= 0 or price <= 0:
        return 0
    by_risk = math.floor(equity * Decimal(str(risk_pct)) / 100 / distance)
    by_cash = math.floor(cash_cap / price) if cash_cap > 0 else 0
    return max(0, min(by_risk, by_cash))
