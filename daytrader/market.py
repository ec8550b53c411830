"""Each symbol's session as the console shows it: the day's bars, its open, volume and VWAP, the
strategy's chart lines bar by bar, and the quote a watchlist row is made of.

The engine owns one `SessionTape`, records every regular-session bar into it after the strategy
has seen the bar, and publishes immutable `Quote`s in its snapshot and a `SymbolChart` on request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from daytrader.models import Bar, Fill, Order, Position
from daytrader.strategy import NextSignal

VWAP = "VWAP"  # the session's volume-weighted average price, drawn on every chart


@dataclass(frozen=True, slots=True)
class Quote:
    """One symbol now: price against the session's open, volume, the strategy's readings."""

    symbol: str
    last: float | None
    open: float | None = None  # the session's first open; None before its first bar
    high: float | None = None
    low: float | None = None
    volume: float = 0.0
    bar_ts: datetime | None = None  # start of the latest session bar
    bars: int = 0  # session bars so far
    indicators: dict[str, float | None] = field(default_factory=dict)
    next_signal: NextSignal | None = None

    @property
    def change(self) -> float | None:
        if self.last is None or self.open is None:
            return None
        return self.last - self.open

    @property
    def change_pct(self) -> float | None:
        change = self.change
        return None if change is None or not self.open else change / self.open * 100

    @property
    def signal_distance(self) -> float | None:
        """How far the close has to move for the next signal (signed: + up, - down)."""
        nxt = self.next_signal
        if nxt is None or nxt.trigger is None or self.last is None:
            return None
        return nxt.trigger - self.last

    @property
    def signal_distance_pct(self) -> float | None:
        distance = self.signal_distance
        return None if distance is None or not self.last else distance / self.last * 100


@dataclass(frozen=True, slots=True)
class SymbolChart:
    """What the symbol screen draws: the session's candles with the strategy's lines and VWAP
    (one value per bar, None where not ready), the symbol's fills, and the levels working now."""

    symbol: str
    bars: tuple[Bar, ...]
    lines: dict[str, tuple[float | None, ...]]
    fills: tuple[Fill, ...] = ()
    position: Position | None = None
    orders: tuple[Order, ...] = ()  # the symbol's open orders (protective legs included)
    stop_loss: Decimal | None = None  # the working stop and target, when there are
    take_profit: Decimal | None = None


class _Session:
    __slots__ = ("bars", "lines", "pv", "volume", "high", "low")

    def __init__(self) -> None:
        self.bars: list[Bar] = []
        self.lines: dict[str, list[float | None]] = {}
        self.pv = 0.0  # sum of typical price x volume, for VWAP
        self.volume = 0.0
        self.high = float("-inf")
        self.low = float("inf")


class SessionTape:
    """The current session's bars and chart lines per symbol; `reset` at each new trading day."""

    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}

    def reset(self) -> None:
        self._sessions = {}

    def record(self, bar: Bar, lines: dict[str, float | None]) -> None:
        """One regular-session bar, with the strategy's line values after it."""
        s = self._sessions.get(bar.symbol)
        if s is None:
            s = self._sessions[bar.symbol] = _Session()
        index = len(s.bars)
        s.bars.append(bar)
        s.pv += (bar.high + bar.low + bar.close) / 3 * bar.volume
        s.volume += bar.volume
        s.high = max(s.high, bar.high)
        s.low = min(s.low, bar.low)
        values = {**lines, VWAP: s.pv / s.volume if s.volume > 0 else bar.close}
        for name, value in values.items():
            series = s.lines.get(name)
            if series is None:
                series = s.lines[name] = [None] * index  # a line that appeared late
            series.append(value)

    def count(self, symbol: str) -> int:
        s = self._sessions.get(symbol)
        return len(s.bars) if s else 0

    def quote(self, symbol: str, last: float | None, indicators: dict[str, float | None],
              next_signal: NextSignal | None) -> Quote:
        s = self._sessions.get(symbol)
        if s is None or not s.bars:
            return Quote(symbol, last, indicators=indicators, next_signal=next_signal)
        return Quote(symbol, last, s.bars[0].open, s.high, s.low, s.volume, s.bars[-1].ts,
                     len(s.bars), indicators, next_signal)

    def chart(self, symbol: str) -> tuple[tuple[Bar, ...], dict[str, tuple[float | None, ...]]]:
        s = self._sessions.get(symbol)
        if s is None:
            return (), {}
        n = len(s.bars)
        return tuple(s.bars), {name: tuple(v) + (None,) * (n - len(v)) for name, v in s.lines.items()}
