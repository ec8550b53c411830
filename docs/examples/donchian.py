"""Donchian breakout: long on a close above the highest close of the last `entry_bars`, out on a
close below the lowest of the last `exit_bars`, with a stop `stop_atr` ATRs below the entry."""

from collections import deque
from dataclasses import dataclass

from daytrader.indicators import ATR
from daytrader.models import Bar, Signal, to_price
from daytrader.strategy.params import param


@dataclass(frozen=True)
class DonchianParams:
    entry_bars: int = param(20, 5, 120, 5, "a close above the last N closes enters")
    exit_bars: int = param(10, 3, 60, 1, "a close below the last N closes exits")
    stop_atr: float = param(2.0, 0.5, 5.0, 0.5, "stop distance in ATR(14)s")


class Donchian:
    name = "donchian"
    Params = DonchianParams

    def __init__(self, params: DonchianParams | None = None) -> None:
        self.params = params or DonchianParams()
        self.closes: dict[str, deque] = {}
        self.atr: dict[str, ATR] = {}

    def _update(self, bar: Bar) -> tuple[list[float], float | None]:
        closes = self.closes.setdefault(bar.symbol, deque(maxlen=self.params.entry_bars + 1))
        atr = self.atr.setdefault(bar.symbol, ATR(14)).update(bar.high, bar.low, bar.close)
        closes.append(bar.close)
        return list(closes)[:-1], atr

    def warm_up(self, bar: Bar) -> None:
        self._update(bar)

    def on_bar(self, bar: Bar, position_qty: int) -> Signal | None:
        before, atr = self._update(bar)
        if len(before) < self.params.entry_bars or atr is None:
            return None
        if position_qty == 0 and bar.close > max(before):
            stop = to_price(bar.close - self.params.stop_atr * atr)
            return Signal(bar.symbol, "enter_long", bar.ts, to_price(bar.close), stop_loss=stop,
                          atr=atr, reason="new_high")
        if position_qty > 0 and bar.close < min(before[-self.params.exit_bars:]):
            return Signal(bar.symbol, "exit", bar.ts, to_price(bar.close), reason="new_low")
        return None
