"""Opening-range breakout (`opening_range`).

Rules, per symbol and per session:
1. The opening range is the high and the low of the bars that start within the first `minutes`
   minutes of the session (counted from the session's first bar).
2. After the range is complete, the first bar that closes above the range high enters long; the
   first that closes below the range low enters short (only with `allow_shorts`). One entry per
   symbol per day: the first breakout is the only one taken, filled or not.
3. A range narrower than `min_range_pct` percent of the price is not traded (the stop would sit
   inside the noise).
4. Stop: the other side of the range; with `stop_atr_mult` > 0, `stop_atr_mult` x ATR(`atr_period`)
   from the entry instead.
5. Target: `target_r` times the risk (entry to stop) beyond the entry.
6. No exit signal of its own: the stop, the target and the engine's flatten before the close end
   the trade.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from daytrader.indicators import ATR
from daytrader.models import Bar, Side, Signal, to_price
from daytrader.strategy import NextSignal
from daytrader.strategy.params import param


@dataclass(frozen=True, slots=True)
class RangeParams:
    minutes: int = param(15, 5, 120, 5, "length of the opening range, in minutes")
    target_r: float = param(2.0, 0.5, 6.0, 0.5, "target distance in multiples of the risk")
    stop_atr_mult: float = param(0.0, 0.0, 5.0, 0.5,
                                 "0: stop at the other side of the range; else ATR multiple")
    atr_period: int = param(14, 2, 100, 1, "ATR period (for an ATR stop)")
    min_range_pct: float = param(0.05, 0.0, 5.0, 0.05, "narrowest range traded, % of price")
    allow_shorts: bool = param(False, help="take downside breakouts")


class _Day:
    __slots__ = ("day", "start", "high", "low", "done", "traded")

    def __init__(self, day: date, start: datetime) -> None:
        self.day, self.start = day, start
        self.high, self.low = float("-inf"), float("inf")
        self.done = False  # the range is complete
        self.traded = False  # today's one breakout has been taken


class OpeningRange:
    name = "opening_range"
    Params = RangeParams

    def __init__(self, params: RangeParams | None = None) -> None:
        self.params = params or RangeParams()
        self._days: dict[str, _Day] = {}
        self._atr: dict[str, ATR] = {}

    # -- state -------------------------------------------------------------------------------------
    def _update(self, bar: Bar) -> tuple[_Day, float | None, bool]:
        """Updates the symbol's range and ATR; returns (today, ATR, whether this bar may trade)."""
        atr = self._atr.get(bar.symbol)
        if atr is None:
            atr = self._atr[bar.symbol] = ATR(self.params.atr_period)
        value = atr.update(bar.high, bar.low, bar.close)
        day = self._days.get(bar.symbol)
        if day is None or day.day != bar.ts.date():
            day = self._days[bar.symbol] = _Day(bar.ts.date(), bar.ts)
        if bar.ts < day.start + timedelta(minutes=self.params.minutes):
            day.high, day.low = max(day.high, bar.high), min(day.low, bar.low)
            return day, value, False
        day.done = True
        return day, value, True

    def warm_up(self, bar: Bar) -> None:
        self._update(bar)

    def on_bar(self, bar: Bar, position_qty: int) -> Signal | None:
        day, atr, open_for_trade = self._update(bar)
        if not open_for_trade or day.traded or position_qty != 0:
            return None
        p = self.params
        if day.high - day.low < bar.close * p.min_range_pct / 100:
            return None
        if bar.close > day.high:
            side, reason = Side.BUY, "range_breakout_up"
        elif bar.close < day.low and p.allow_shorts:
            side, reason = Side.SELL, "range_breakout_down"
        else:
            return None
        stop, take = self._levels(day, side, bar.close, atr)
        if stop is None or take is None:
            return None
        day.traded = True
        return Signal(bar.symbol, "enter_long" if side is Side.BUY else "enter_short", bar.ts,
                      to_price(bar.close), stop_loss=stop, take_profit=take, atr=atr,
                      reason=reason)

    def _levels(self, day: _Day, side: Side, price: float,
                atr: float | None) -> tuple[Decimal | None, Decimal | None]:
        p, sign = self.params, side.sign
        if p.stop_atr_mult > 0:
            if not atr:
                return None, None
            stop = price - sign * p.stop_atr_mult * atr
        else:
            stop = day.low if side is Side.BUY else day.high
        risk = (price - stop) * sign
        if risk <= 0 or stop <= 0:
            return None, None
        return to_price(stop), to_price(price + sign * p.target_r * risk)

    # -- what the console shows --------------------------------------------------------------------
    def indicator_values(self, symbol: str) -> dict[str, float | None]:
        day = self._days.get(symbol)
        atr = self._atr.get(symbol)
        ready = day is not None and day.done
        return {"OR high": day.high if ready else None, "OR low": day.low if ready else None,
                f"ATR{self.params.atr_period}": atr.value if atr else None}

    def chart_lines(self) -> tuple[str, ...]:
        return ("OR high", "OR low")

    def next_signal(self, symbol: str, position_qty: int) -> NextSignal | None:
        day = self._days.get(symbol)
        if day is None or not day.done:
            return None
        if day.traded or position_qty != 0:
            return NextSignal("today's breakout is taken", "", None, above=True)
        return NextSignal("close above the opening-range high", "enter_long", day.high,
                          above=True)

    def bracket(self, symbol: str, side: Side, price: Decimal
                ) -> tuple[Decimal | None, Decimal | None]:
        """For a manual entry on a symbol this strategy trades: the same stop and target its own
        breakout would get at that price."""
        day = self._days.get(symbol)
        atr = self._atr.get(symbol)
        if day is None or not day.done:
            return None, None
        return self._levels(day, side, float(price), atr.value if atr else None)
