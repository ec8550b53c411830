"""Backtest screen (`b`): `python app.py backtest` in the console. A file of bars and optional EMA
periods in, then a progress bar while the engine replays them in a thread worker, then the CLI's
report rows, the equity curve and drawdown, and where the trades were written.

The backtest builds its own engine (`run_backtest`), so the live engine keeps trading meanwhile;
Esc closes the screen and stops a run that is still going.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Input, Label, ProgressBar, Static
from textual.worker import Worker, WorkerState, get_current_worker
from textual_plotext import PlotextPlot

from daytrader.backtest import BacktestInputError, BacktestRun, apply_params, backtest_file
from daytrader.backtest_cli import metrics_rows as report_rows
from daytrader.charting import drawdown_axis, drawdown_pct, equity_axis, time_ticks
from daytrader.clock import EXCHANGE_TZ, MarketCalendar
from daytrader.config import Settings, SettingsError
from widgets.inputs import FieldInput

SUFFIXES = (".csv", ".parquet")
MAX_POINTS = 2000  # points per chart: enough for any terminal width


class BacktestCanceled(Exception):
    """The screen was closed while the backtest ran."""


def checked_path(text: str) -> Path:
    """The bars file named in the form; raises BacktestInputError naming it when it cannot be read."""
    text = text.strip()
    if not text:
        raise BacktestInputError("enter the path of a CSV or Parquet file of minute bars")
    path = Path(text).expanduser()
    if path.suffix.lower() not in SUFFIXES:
        raise BacktestInputError(f"{path}: not a bars file (expected .csv or .parquet)")
    if not path.is_file():
        raise BacktestInputError(f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise BacktestInputError(f"{path}: not readable (permission denied)")
    return path


def checked_settings(base: Settings, fast: str, slow: str) -> Settings:
    """The live settings with the form's EMA periods (blank keeps the setting), validated like
    `--param fast=... --param slow=...`."""
    params = {name: value.strip() for name, value in (("fast", fast), ("slow", slow))
              if value.strip()}
    try:
        return apply_params(base, params).with_overrides(mode="backtest")
    except SettingsError as exc:
        raise BacktestInputError(str(exc)) from None


class CurveChart(PlotextPlot):
    """One series of a finished backtest against time."""

    def __init__(self, title: str, *, drawdown: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.chart_title = title
        self.drawdown = drawdown  # percent below the peak; otherwise dollars of equity
        self.points = 0

    def show(self, times: Sequence[datetime], values: Sequence[float]) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        self.points = len(values)
        if values:
            xs = list(range(len(values)))
            plt.plot(xs, list(values), marker="braille")
            plt.xticks(*time_ticks(times))
            # A flat curve is a flat line near its value (plotext spreads it over +-50%).
            if self.drawdown:
                plt.ylim(*drawdown_axis(values))
            else:
                low, high, ticks, labels = equity_axis(values)
                plt.ylim(low, high)
                plt.yticks(ticks, labels)
        plt.title(self.chart_title)
        self.refresh()


class BacktestScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "close", "Close")]

    class Progressed(Message):
        def __init__(self, done: int, total: int) -> None:
            super().__init__()
            self.done = done
            self.total = total

    class Finished(Message):
        def __init__(self, run: BacktestRun) -> None:
            super().__init__()
            self.run = run

    def __init__(self, settings: Settings, calendar: MarketCalendar | None = None,
                 path: str = "") -> None:
        super().__init__(id="backtest")
        self.settings = settings
        self.calendar = calendar
        self.initial_path = path
        self.last_run: BacktestRun | None = None

    def compose(self) -> ComposeResult:
        s = self.settings
        with Vertical(classes="modal-box", id="backtest-box"):
            yield Label("Backtest", classes="modal-title")
            with Horizontal(id="backtest-form"):
                yield Label("File")
                yield FieldInput(self.initial_path, placeholder="bars.csv or bars.parquet",
                                 id="backtest-path")
                yield Label("fast")
                yield FieldInput(placeholder=str(s.ema_fast), id="backtest-fast", type="integer")
                yield Label("slow")
                yield FieldInput(placeholder=str(s.ema_slow), id="backtest-slow", type="integer")
                yield Button("Run", id="backtest-run", variant="primary")
            yield Static("", id="backtest-error", classes="form-error", markup=False)
            with Horizontal(id="backtest-status-line"):
                yield Static("Enter a file of minute bars and press Enter or Run.",
                             id="backtest-status", markup=False)
                yield ProgressBar(id="backtest-progress", show_eta=False)
            with Horizontal(id="backtest-results"):
                yield DataTable(id="backtest-metrics", show_cursor=False, zebra_stripes=True)
                with Vertical(id="backtest-charts"):
                    yield CurveChart("Equity", id="backtest-equity")
                    yield CurveChart("Drawdown %", drawdown=True, id="backtest-drawdown")
            yield Static("", id="backtest-trades", markup=False)
            yield Static("Esc closes (and stops a run) · the live engine keeps trading meanwhile",
                         classes="modal-hint", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#backtest-metrics", DataTable).add_columns("metric", "value")
        self.query_one("#backtest-path", Input).focus()

    # -- running ---------------------------------------------------------------------------------
    @on(Input.Submitted)
    @on(Button.Pressed, "#backtest-run")
    def _run_pressed(self) -> None:
        error = self.query_one("#backtest-error", Static)
        try:
            path = checked_path(self.query_one("#backtest-path", Input).value)
            settings = checked_settings(self.settings,
                                        self.query_one("#backtest-fast", Input).value,
                                        self.query_one("#backtest-slow", Input).value)
        except BacktestInputError as exc:
            error.update(str(exc))
            return
        error.update("")
        self.last_run = None
        self.set_class(True, "-running")
        self.set_class(False, "-done")
        self.query_one("#backtest-run", Button).disabled = True
        self.query_one(ProgressBar).update(total=None, progress=0)
        self.query_one("#backtest-status", Static).update(f"loading {path}")
        self._run(path, settings)

    @work(thread=True, exclusive=True, exit_on_error=False, group="backtest", name="backtest")
    def _run(self, path: Path, settings: Settings) -> None:
        worker = get_current_worker()

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled:
                raise BacktestCanceled
            self.post_message(self.Progressed(done, total))

        folder = settings.data_dir / "backtests" / datetime.now(EXCHANGE_TZ).strftime(
            "%Y%m%d-%H%M%S")
        run = backtest_file(path, settings, folder, calendar=self.calendar, progress=progress)
        self.post_message(self.Finished(run))

    @on(Progressed)
    def _progressed(self, message: Progressed) -> None:
        self.query_one(ProgressBar).update(total=message.total, progress=message.done)
        self.query_one("#backtest-status", Static).update(
            f"running: minute {message.done:,} of {message.total:,}")

    @on(Finished)
    def _finished(self, message: Finished) -> None:
        run = self.last_run = message.run
        result = run.result
        table = self.query_one("#backtest-metrics", DataTable)
        table.clear()
        for name, value in report_rows(result):
            table.add_row(name, value, key=name)
        curve = result.equity_curve[:: max(1, len(result.equity_curve) // MAX_POINTS)]
        times = [ts for ts, _ in curve]
        values = [v for _, v in curve]
        self.query_one("#backtest-equity", CurveChart).show(times, values)
        self.query_one("#backtest-drawdown", CurveChart).show(times, drawdown_pct(values))
        span = (f"{curve[0][0]:%Y-%m-%d} to {curve[-1][0]:%Y-%m-%d}" if curve else "no minutes")
        self.query_one("#backtest-status", Static).update(
            f"Backtest of {', '.join(run.symbols)}: {span} · {result.bars:,} bars in "
            f"{result.elapsed:.2f}s")
        self.query_one("#backtest-trades", Static).update(
            f"{len(result.trades)} trades written to {run.trades_parquet} and {run.trades_csv}")
        self._stopped(done=True)

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        """The one place a failed backtest is shown: inline, since live trading is not affected."""
        if event.worker.group != "backtest" or event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, BacktestCanceled):
            return
        text = str(error) if isinstance(error, BacktestInputError) else f"backtest failed: {error!r}"
        self.query_one("#backtest-error", Static).update(text)
        self.query_one("#backtest-status", Static).update("nothing ran to the end")
        self._stopped(done=False)

    def _stopped(self, done: bool) -> None:
        self.set_class(False, "-running")
        self.set_class(done, "-done")
        self.query_one("#backtest-run", Button).disabled = False

    def action_close(self) -> None:
        self.workers.cancel_group(self, "backtest")
        self.dismiss(None)
