"""The session's candles for one symbol (textual-plotext), with the strategy's lines and VWAP,
entries and exits marked where they filled, and the working stop and target drawn across."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from daytrader.charting import padded_range, time_ticks
from daytrader.market import SymbolChart
from daytrader.models import Bar, OrderRole

# Minutes per candle, smallest first: the chart uses the first that fits its width.
CANDLE_MINUTES = (1, 2, 3, 5, 10, 15, 30, 60)
LINE_COLORS = ("cyan", "magenta", "yellow", "blue", "white")
STOP_COLOR, TARGET_COLOR = "red", "green"
# Marks for fills: an entry long and a buy exit point up, the others down.
BUY_MARK, SELL_MARK = "▲", "▼"


@dataclass(frozen=True, slots=True)
class Candle:
    ts: datetime
    open: float
    high: float
    low: float
    close: float


def candles(bars: Sequence[Bar], minutes: int) -> list[Candle]:
    """Bars merged `minutes` at a time, from the session's first bar."""
    out: list[Candle] = []
    for start in range(0, len(bars), minutes):
        group = bars[start:start + minutes]
        out.append(Candle(group[0].ts, group[0].open, max(b.high for b in group),
                          min(b.low for b in group), group[-1].close))
    return out


def candle_minutes(bars: int, columns: int) -> int:
    """The candle size that puts at most one candle in every other column of the plot."""
    room = max(1, columns // 2)
    return next((m for m in CANDLE_MINUTES if bars / m <= room), CANDLE_MINUTES[-1])


class CandleChart(PlotextPlot):
    """Redrawn when a chart arrives; `show` is cheap to call with the same chart again."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.chart: SymbolChart | None = None
        self.minutes = 1
        self._drawn: tuple | None = None

    def show(self, chart: SymbolChart) -> None:
        self.chart = chart
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def render(self) -> RenderResult:
        # A charting library's failure must not take the trading console down with it.
        try:
            return super().render()
        except Exception as exc:  # shown where the chart would be
            return Text(f"chart unavailable: {exc!r}", style="italic")

    def _draw(self) -> None:
        chart = self.chart
        if chart is None:
            return
        columns = max(10, self.size.width - 10)  # less the y axis labels
        minutes = candle_minutes(len(chart.bars), columns)
        key = (id(chart), minutes, self.size)
        if key == self._drawn:
            return
        self._drawn, self.minutes = key, minutes
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        title = f"{chart.symbol} · {minutes}-minute candles" if chart.bars else \
            f"{chart.symbol} · no bars this session yet"
        plt.title(title)
        if not chart.bars:
            self.refresh()
            return
        bars = chart.bars
        group = candles(bars, minutes)
        xs = list(range(len(group)))
        plt.candlestick(xs, {"Open": [c.open for c in group], "Close": [c.close for c in group],
                             "High": [c.high for c in group], "Low": [c.low for c in group]})
        levels = [c.high for c in group] + [c.low for c in group]
        for color, (name, values) in zip(LINE_COLORS, chart.lines.items(), strict=False):
            # The line's value at the close of each candle.
            points = [(i, values[min(len(values), (i + 1) * minutes) - 1]) for i in xs]
            points = [(x, v) for x, v in points if v is not None]
            if len(points) >= 2:  # plotext's legend fails on a one-point line
                plt.plot([x for x, _ in points], [v for _, v in points], color=color, label=name,
                         marker="braille")
                # In the y range: a labelled line wholly outside it breaks plotext's legend.
                levels.extend(v for _, v in points)
        first = bars[0].ts
        for fill in chart.fills:
            x = min(len(group) - 1, max(0, int((fill.ts - first).total_seconds() // 60) // minutes))
            buy = fill.side.value == "buy"
            plt.scatter([x], [float(fill.price)], marker=BUY_MARK if buy else SELL_MARK,
                        color="green" if buy else "red")
            levels.append(float(fill.price))
        span = [-0.4, max(0.4, len(group) - 1)]  # two distinct points even for one candle
        for level, color, name in ((chart.stop_loss, STOP_COLOR, "stop"),
                                   (chart.take_profit, TARGET_COLOR, "target")):
            if level is not None:
                value = float(level)
                plt.plot(span, [value, value], color=color, label=f"{name} {value:,.2f}")
                levels.append(value)
        entries = [float(f.price) for f in chart.fills if f.role is OrderRole.ENTRY]
        if chart.position is not None:
            levels.append(float(chart.position.avg_entry_price))
        low, high = padded_range(levels + entries, min_span=max(0.05, bars[-1].close * 0.002))
        plt.ylim(low, high)
        ticks, labels = time_ticks([c.ts for c in group])
        plt.xticks(ticks, labels)
        plt.xlim(-0.5, len(group) - 0.5)
        self.refresh()
