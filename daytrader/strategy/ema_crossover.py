"""The seed strategy (`ema_cross`): EMA(9)/EMA(21) crossover, stop 2xATR(14), take-profit 4xATR(14).

Rules, per symbol:
1. Each bar updates EMA(`fast`), EMA(`slow`) (SMA-seeded) and Wilder's ATR(`atr_period`).
2. Flat, the fast EMA crossing above the slow one enters long; crossing below enters short
   (only with `allow_shorts`).
3. Stop `stop_atr_mult` x ATR from the entry; take-profit `take_profit_atr_mult` x ATR.
4. Long, a cross down exits; short, a cross up exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from daytrader.config import Settings
from daytrader.indicators import ATR, EMA
from daytrader.models import Bar, Side, Signal, to_price
from daytrader.strategy import NextSignal
from daytrader.strategy.params import param


@dataclass(frozen=True, slots=True)
class CrossoverParams:
    fast: int = param(9, 2, 100, 1, "fast EMA period")
    slow: int = param(21, 3, 400, 1, "slow EMA period")
    atr_period: int = param(14, 2, 100, 1, "ATR period")
    stop_atr_mult: float = param(2.0, 0.25, 10.0, 0.25, "stop distance in ATRs")
    take_profit_atr_mult: float = param(4.0, 0.25, 20.0, 0.25, "take-profit distance in ATRs")
    allow_shorts: bool = param(False, help="enter short on a cross down")

    def __post_init__(self) -> None:
        if self.fast >= self.slow:
            raise ValueError(f"the fast EMA ({self.fast}) must be shorter than the slow "
                             f"one ({self.slow})")

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
    Params = CrossoverParams

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
        """Current (fast EMA, slow EMA, ATR) of a symbol."""
        s = self._state.get(symbol)
        return (s.fast.value, s.slow.value, s.atr.value) if s else (None, None, None)

    def _names(self) -> tuple[str, str, str]:
        p = self.params
        return f"EMA{p.fast}", f"EMA{p.slow}", f"ATR{p.atr_period}"

    def indicator_values(self, symbol: str) -> dict[str, float | None]:
        return dict(zip(self._names(), self.indicators(symbol), strict=True))

    def chart_lines(self) -> tuple[str, ...]:
        return self._names()[:2]

    def next_signal(self, symbol: str, position_qty: int) -> NextSignal | None:
        """The close that makes the EMAs cross on the next bar. With a = 2/(N+1) each EMA moves
        to ema + a(close - ema), so they meet where fast + af(c - fast) = slow + as(c - slow):
        c = (slow(1 - as) - fast(1 - af)) / (af - as). Above it the fast EMA ends above."""
        fast, slow, _ = self.indicators(symbol)
        s = self._state.get(symbol)
        if fast is None or slow is None or s is None:
            return None
        a_fast, a_slow = 2 / (self.params.fast + 1), 2 / (self.params.slow + 1)
        trigger = (slow * (1 - a_slow) - fast * (1 - a_fast)) / (a_fast - a_slow)
        fast_name, slow_name, _ = self._names()
        if fast > slow:  # the next crossing is downwards
            action = ("exit" if position_qty > 0 else
                      "enter_short" if position_qty == 0 and self.params.allow_shorts else "")
            return NextSignal(f"{fast_name} crosses below {slow_name}", action,
                              trigger if trigger > 0 else None, above=False)
        action = "exit" if position_qty < 0 else "enter_long" if position_qty == 0 else ""
        return NextSignal(f"{fast_name} crosses above {slow_name}", action,
                          trigger if trigger > 0 else None, above=True)

    def bracket(self, symbol: str, side: Side, price: Decimal
                ) -> tuple[Decimal | None, Decimal | None]:
        """Stop stop_atr_mult x ATR away, take-profit take_profit_atr_mult x ATR: the same
        distances as the strategy's own entries."""
        atr = self.indicators(symbol)[2]
        if not atr or atr <= 0 or price <= 0:
            return None, None
        p, ref, sign = self.params, float(price), side.sign
        stop = ref - sign * p.stop_atr_mult * atr
        take = ref + sign * p.take_profit_atr_mult * atr
        if stop <= 0 or take <= 0:
            return None, None
        return to_price(stop), to_price(take)

    def on_bar(self, bar: Bar, position_qty: int) -> Signal | None:
        state = self._state.get(bar.symbol) or self._symbol(bar.symbol)
        # _SymbolState.update, written out: this runs on every bar of a backtest.
        close = bar.close
        fast = state.fast.update(close)
        slow = state.slow.update(close)
        atr = state.atr.update(bar.high, bar.low, close)
        if fast is None or slow is None:
            return None
        was, now = state.above, fast > slow
        state.above = now
        if was is None or was == now:
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
