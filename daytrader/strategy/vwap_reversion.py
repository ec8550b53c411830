"""Mean reversion to the session VWAP (`vwap_reversion`).

Rules, per symbol and per session:
1. VWAP starts again with each session: sum(typical x volume) / sum(volume), typical = (high +
   low + close) / 3. The band's width `sd` is the volume-weighted standard deviation of the
   typical price around VWAP.
2. No entries until `min_bars` bars of the session have been seen (the band needs data).
3. Long: the previous bar closed below VWAP - k x sd (stretched), and this bar closes above the
   previous close (it turns back). Short (only with `allow_shorts`): the previous bar closed above
   VWAP + k x sd and this bar closes below it.
4. Stop: `stop_atr_mult` x ATR(`atr_period`) from the entry. No take-profit order: the exit is
   VWAP itself, which moves.
5. Exit: a long exits on the first bar that closes at or above VWAP; a short at or below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from daytrader.indicators import ATR
from daytrader.models import Bar, Side, Signal, to_price
from daytrader.strategy import NextSignal
from daytrader.strategy.params import param


@dataclass(frozen=True, slots=True)
class VwapParams:
    k: float = param(2.0, 0.5, 5.0, 0.25, "stretch, in standard deviations from VWAP")
    stop_atr_mult: float = param(1.5, 0.25, 6.0, 0.25, "stop distance in ATRs")
    atr_period: int = param(14, 2, 100, 1, "ATR period")
    min_bars: int = param(15, 2, 200, 1, "bars of the session before the first entry")
    allow_shorts: bool = param(False, help="fade stretches above VWAP too")


class _Session:
    __slots__ = ("day", "bars", "pv", "v", "p2v", "prev_close", "prev_band")

    def __init__(self, day: date) -> None:
        self.day = day
        self.bars = 0
        self.pv = self.v = self.p2v = 0.0  # sums of price x volume, volume, price^2 x volume
        self.prev_close: float | None = None
        self.prev_band: tuple[float, float] | None = None  # (lower, upper) after the last bar

    def add(self, bar: Bar) -> None:
        typical = (bar.high + bar.low + bar.close) / 3
        self.bars += 1
        self.pv += typical * bar.volume
        self.v += bar.volume
        self.p2v += typical * typical * bar.volume

    @property
    def vwap(self) -> float | None:
        return self.pv / self.v if self.v > 0 else None

    @property
    def sd(self) -> float | None:
        vwap = self.vwap
        if vwap is None:
            return None
        return math.sqrt(max(0.0, self.p2v / self.v - vwap * vwap))


class VwapReversion:
    name = "vwap_reversion"
    Params = VwapParams

    def __init__(self, params: VwapParams | None = None) -> None:
        self.params = params or VwapParams()
        self._sessions: dict[str, _Session] = {}
        self._atr: dict[str, ATR] = {}

    def _update(self, bar: Bar) -> tuple[_Session, float | None, float | None,
                                         tuple[float, float] | None]:
        """Adds the bar; returns (session, ATR, the previous close, the band before this bar)."""
        atr = self._atr.get(bar.symbol)
        if atr is None:
            atr = self._atr[bar.symbol] = ATR(self.params.atr_period)
        value = atr.update(bar.high, bar.low, bar.close)
        s = self._sessions.get(bar.symbol)
        if s is None or s.day != bar.ts.date():
            s = self._sessions[bar.symbol] = _Session(bar.ts.date())
        prev_close, prev_band = s.prev_close, s.prev_band
        s.add(bar)
        vwap, sd = s.vwap, s.sd
        s.prev_close = bar.close
        s.prev_band = None if vwap is None or sd is None else (vwap - self.params.k * sd,
                                                               vwap + self.params.k * sd)
        return s, value, prev_close, prev_band

    def warm_up(self, bar: Bar) -> None:
        self._update(bar)

    def on_bar(self, bar: Bar, position_qty: int) -> Signal | None:
        s, atr, prev_close, prev_band = self._update(bar)
        vwap = s.vwap
        if vwap is None:
            return None
        if position_qty > 0 and bar.close >= vwap:
            return Signal(bar.symbol, "exit", bar.ts, to_price(bar.close), reason="vwap_reached")
        if position_qty < 0 and bar.close <= vwap:
            return Signal(bar.symbol, "exit", bar.ts, to_price(bar.close), reason="vwap_reached")
        if position_qty != 0 or s.bars <= self.params.min_bars or prev_band is None:
            return None
        if prev_close is None or not atr:
            return None
        lower, upper = prev_band
        if prev_close < lower and bar.close > prev_close:
            side, reason = Side.BUY, "vwap_stretch_down"
        elif prev_close > upper and bar.close < prev_close and self.params.allow_shorts:
            side, reason = Side.SELL, "vwap_stretch_up"
        else:
            return None
        stop = bar.close - side.sign * self.params.stop_atr_mult * atr
        if stop <= 0:
            return None
        return Signal(bar.symbol, "enter_long" if side is Side.BUY else "enter_short", bar.ts,
                      to_price(bar.close), stop_loss=to_price(stop), atr=atr, reason=reason)

    # -- what the console shows --------------------------------------------------------------------
    def indicator_values(self, symbol: str) -> dict[str, float | None]:
        s = self._sessions.get(symbol)
        atr = self._atr.get(symbol)
        band = s.prev_band if s else None
        return {"VWAP": s.vwap if s else None, "band low": band[0] if band else None,
                "band high": band[1] if band else None,
                f"ATR{self.params.atr_period}": atr.value if atr else None}

    def chart_lines(self) -> tuple[str, ...]:
        return ("VWAP", "band low", "band high")

    def next_signal(self, symbol: str, position_qty: int) -> NextSignal | None:
        s = self._sessions.get(symbol)
        if s is None or s.vwap is None or s.prev_band is None:
            return None
        if position_qty > 0:
            return NextSignal("close at or above VWAP", "exit", s.vwap, above=True)
        if position_qty < 0:
            return NextSignal("close at or below VWAP", "exit", s.vwap, above=False)
        return NextSignal("close below the lower band, then a higher close", "enter_long",
                          s.prev_band[0], above=False)

    def bracket(self, symbol: str, side: Side, price: Decimal
                ) -> tuple[Decimal | None, Decimal | None]:
        """A manual entry gets the strategy's ATR stop and no target (it exits at VWAP)."""
        atr = self._atr.get(symbol)
        if atr is None or not atr.value:
            return None, None
        stop = float(price) - side.sign * self.params.stop_atr_mult * atr.value
        return (to_price(stop), None) if stop > 0 else (None, None)
