"""The Strategy protocol: a strategy turns bars into signals; sizing and risk happen elsewhere.

Besides deciding, a strategy says where each symbol stands, for the console's watchlist and
charts (the engine asks and publishes; widgets never call a strategy): its indicator values,
which of them are price levels to draw over the candles, how far the next signal is, and the
bracket it would put on an entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from daytrader.models import Bar, Side, Signal


@dataclass(frozen=True, slots=True)
class NextSignal:
    """What would make the strategy act next on a symbol, and where."""

    event: str  # what has to happen, shortly: "EMA9 crosses above EMA21"
    action: str  # what the strategy would then do: "enter_long", "enter_short", "exit", "" (nothing)
    trigger: float | None  # the next bar's close that makes it happen; None when not a price
    above: bool  # True when the close has to rise to `trigger`, False when it has to fall


class Strategy(Protocol):
    """Optional, for speed: `on_bars(bars, positions) -> Iterator[Signal]`, a minute's bars
    (one per symbol, all the strategy's) decided in one call, each signal yielded as it comes
    (it is acted on before the generator resumes: `positions`, symbol -> signed shares, is read
    live). It decides exactly as `on_bar` would bar by bar; it is used when one strategy trades
    every symbol (see `RunningStrategies.on_bars`)."""

    name: str

    def warm_up(self, bar: Bar) -> None:
        """Feeds history to the indicators without producing signals."""

    def on_bar(self, bar: Bar, position_qty: int) -> Signal | None:
        """The decision on one completed bar, given the current position in its symbol."""

    def indicator_values(self, symbol: str) -> dict[str, float | None]:
        """The current value of each indicator by its display name (e.g. "EMA9"); None while an
        indicator is not ready. The same names in the same order every time."""

    def chart_lines(self) -> tuple[str, ...]:
        """The names in `indicator_values` that are price levels, drawn over the candles."""

    def next_signal(self, symbol: str, position_qty: int) -> NextSignal | None:
        """How far the next signal is; None while the indicators are not ready."""

    def bracket(self, symbol: str, side: Side, price: Decimal
                ) -> tuple[Decimal | None, Decimal | None]:
        """The stop-loss and take-profit the strategy would give an entry at `price` now;
        (None, None) while it cannot tell (e.g. no ATR yet)."""


class NoReadings:
    """For a strategy with nothing to show: no indicators, no lines, no next signal, no bracket."""

    def indicator_values(self, symbol: str) -> dict[str, float | None]:
        return {}

    def chart_lines(self) -> tuple[str, ...]:
        return ()

    def next_signal(self, symbol: str, position_qty: int) -> NextSignal | None:
        return None

    def bracket(self, symbol: str, side: Side, price: Decimal
                ) -> tuple[Decimal | None, Decimal | None]:
        return None, None
