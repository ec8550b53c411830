"""P&L pane: the intraday equity curve (textual-plotext) and the day's metrics."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid, Horizontal
from textual.widgets import Label, Static
from textual_plotext import PlotextPlot

from daytrader.charting import equity_axis, time_ticks
from daytrader.engine import EngineSnapshot
from widgets.formatting import money, show_text, tone

METRICS = (("realized", "Realized"), ("unrealized", "Unrealized"), ("trades", "Trades"),
           ("win-rate", "Win rate"), ("profit-factor", "Profit factor"), ("drawdown", "Max DD"))


class EquityChart(PlotextPlot):
    """Equity by minute since the day's first bar; redrawn only when a new point arrives."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._last: tuple | None = None

    def show(self, snapshot: EngineSnapshot) -> None:
        curve = snapshot.equity_curve
        key = (len(curve), curve[-1] if curve else None)
        if key == self._last:
            return
        self._last = key
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if curve:
            start = curve[0][0]
            xs = [(ts - start).total_seconds() / 60 for ts, _ in curve]
            ys = [value for _, value in curve]
            plt.plot(xs, ys, marker="braille")
            ticks, labels = time_ticks([ts for ts, _ in curve])
            plt.xticks([xs[i] for i in ticks], labels)
            # A flat day is a flat line near its value, not a +-50% axis; labels are dollars.
            low, high, ticks, tick_labels = equity_axis(ys)
            plt.ylim(low, high)
            plt.yticks(ticks, tick_labels)
        plt.title("Equity")
        self.refresh()


class DayMetrics(Grid):
    def compose(self) -> ComposeResult:
        for key, label in METRICS:
            yield Label(label, classes="field-label")
            yield Static("-", id=f"metric-{key}", classes="field-value", markup=False)

    def show(self, snapshot: EngineSnapshot) -> None:
        m = snapshot.metrics
        unrealized = sum((p.unrealized_pnl for p in snapshot.positions), start=0)
        values = {
            "realized": (money(m.realized, signed=True), tone(m.realized)),
            "unrealized": (money(unrealized, signed=True), tone(unrealized)),
            "trades": (f"{m.trades} ({m.wins}W/{m.losses}L)", ""),
            "win-rate": (f"{m.win_rate:.1f}%" if m.trades else "-", ""),
            "profit-factor": ("-" if m.profit_factor is None else f"{m.profit_factor:.2f}", ""),
            "drawdown": (f"{money(m.max_drawdown)} {m.max_drawdown_pct:.2f}%", ""),
        }
        for key, (text, value_tone) in values.items():
            widget = self.query_one(f"#metric-{key}", Static)
            show_text(widget, text)
            for name in ("positive", "negative", "muted"):
                widget.set_class(value_tone == name, f"-{name}")


class PnlPane(Horizontal):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "P&L"

    def compose(self) -> ComposeResult:
        yield EquityChart(id="equity-chart")
        yield DayMetrics(id="day-metrics")

    def show(self, snapshot: EngineSnapshot) -> None:
        self.query_one(EquityChart).show(snapshot)
        self.query_one(DayMetrics).show(snapshot)
