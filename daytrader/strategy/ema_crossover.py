"""The seed strategy (`ema_cross`): EMA(9)/EMA(21) crossover, stop 2xATR(14), take-profit 4xATR(14).

Rules, per symbol:
1. Each bar updates EMA(`fast`), EMA(`slow`) (SMA-seeded) and Wilder's ATR(`atr_period`).
2. Flat, the fast EMA crossing above the slow one enters long; crossing below enters short
   (only with `allow_shorts`).
3. Stop `stop_atr_mult` x ATR from the entry; take-profit `take_profit_atr_mult` x ATR.
4. Long, a cross down exits; short, a cross up exits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
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
    """One symbol's EMA(fast), EMA(slow), ATR and where the EMAs stood on the previous bar.

    Until all three are ready they warm up in the indicator classes (`EMA`, `ATR`), which own
    the seeding; from then on the three are plain floats here, moved by the same formulas in
    `EmaCrossover.on_bars` (three method calls per bar were a sixth of a backtest's strategy
    time)."""

    __slots__ = ("fast", "slow", "atr", "above", "warming", "prev_close", "a_fast", "a_slow",
                 "atr_weight", "atr_divisor")

    def __init__(self, p: CrossoverParams) -> None:
        self.fast: float | None = None
        self.slow: float | None = None
        self.atr: float | None = None
        self.above: bool | None = None  # fast above slow on the previous bar
        self.warming: tuple[EMA, EMA, ATR] | None = (EMA(p.fast), EMA(p.slow), ATR(p.atr_period))
        self.prev_close = 0.0
        # The coefficients EMA and ATR use, as they compute them (the same floats, so the same
        # values to the last bit).
        self.a_fast, self.a_slow = 2.0 / (p.fast + 1), 2.0 / (p.slow + 1)
        self.atr_weight, self.atr_divisor = float(p.atr_period - 1), float(p.atr_period)

    def update(self, high: float, low: float, close: float) -> None:
        """Moves the indicators by one bar while they warm up (`fast`, `slow`, `atr`: None until
        ready). Once warm, `EmaCrossover.on_bars` moves the floats itself."""
        fast, slow, atr = self.warming  # type: ignore[misc]
        self.fast, self.slow = fast.update(close), slow.update(close)
        self.atr = atr.update(high, low, close)
        self.prev_close = close
        if self.fast is not None and self.slow is not None and self.atr is not None:
            self.warming = None  # all ready: floats from here on


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
        # A decision with no position, its signal unused: the indicators and the cross move
        # exactly as on a bar that trades, by the one path that moves them.
        self.on_bar(bar, 0)

    def indicators(self, symbol: str) -> tuple[float | None, float | None, float | None]:
        """Current (fast EMA, slow EMA, ATR) of a symbol."""
        s = self._state.get(symbol)
        return (s.fast, s.slow, s.atr) if s else (None, None, None)

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
        # One bar is a minute of one: the decision is on_bars' alone, so the two cannot differ.
        for signal in self.on_bars((bar,), {bar.symbol: position_qty}):
            return signal
        return None

    def on_bars(self, bars: Sequence[Bar], positions: Mapping[str, int]) -> Iterator[Signal]:
        """Each bar's decision in turn (see `Strategy`): the indicators move inline, and the
        position is read only when the EMAs cross (a call and two lookups per bar were a
        tenth of a backtest that trades often)."""
        states = self._state
        for bar in bars:
            state = states.get(bar.symbol)
            if state is None:
                state = self._symbol(bar.symbol)
            close = bar.close
            if state.warming is None:
                # Warm: the indicators moved here, by the formulas EMA and ATR use.
                fast = state.fast
                fast = state.fast = fast + state.a_fast * (close - fast)
                slow = state.slow
                slow = state.slow = slow + state.a_slow * (close - slow)
                high, low, prev = bar.high, bar.low, state.prev_close
                tr = (high if high > prev else prev) - (low if low < prev else prev)
                atr = state.atr = (state.atr * state.atr_weight + tr) / state.atr_divisor
                state.prev_close = close
            else:
                state.update(bar.high, bar.low, close)
                fast, slow, atr = state.fast, state.slow, state.atr
                if fast is None or slow is None:
                    continue
            now = fast > slow
            was = state.above
            if was == now:  # no cross (most bars): `above` stands
                continue
            state.above = now
            if was is not None:
                signal = self._crossed(bar, now, atr, positions.get(bar.symbol, 0))
                if signal is not None:
                    yield signal

    def _crossed(self, bar: Bar, up: bool, atr: float | None, position_qty: int
                 ) -> Signal | None:
        if position_qty > 0 and not up:
            return self._exit(bar, "ema_cross_down")
        if position_qty < 0 and up:
            return self._exit(bar, "ema_cross_up")
        if position_qty != 0 or atr is None or atr <= 0:
            return None
        p = self.params
        if up:
            # Signal's fields by position: symbol, action, time, price, stop, take-profit, ATR,
            # reason (keywords cost a third more).
            return Signal.make(bar.symbol, "enter_long", bar.ts, to_price(bar.close),
                               to_price(bar.close - p.stop_atr_mult * atr),
                               to_price(bar.close + p.take_profit_atr_mult * atr), atr,
                               "ema_cross_up")
        if p.allow_shorts:
            return Signal.make(bar.symbol, "enter_short", bar.ts, to_price(bar.close),
                               to_price(bar.close + p.stop_atr_mult * atr),
                               to_price(bar.close - p.take_profit_atr_mult * atr), atr,
                               "ema_cross_down")
        return None

    @staticmethod
    def _exit(bar: Bar, reason: str) -> Signal:
        return Signal.make(bar.symbol, "exit", bar.ts, to_price(bar.close), None, None, None, reason)
