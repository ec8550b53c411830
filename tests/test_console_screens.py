"""The console's Backtest and Checklist screens, its alerts (bell + notification) and the start-up
recovery display, driven with Pilot while the live engine keeps running."""

from __future__ import annotations

import itertools
import os
import threading
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from textual.widgets import DataTable, Input, ProgressBar, Static
from ui_factory import SESSION_NOON, make_app, settled, shared_calendar, until

from daytrader.backtest_cli import metrics_rows
from daytrader.config import Settings
from daytrader.data.synthetic import synthetic_frame
from daytrader.models import Bar, TradingState
from daytrader.runtime import RunOptions, build_runtime
from daytrader.store import recovery
from widgets.backtest import BacktestScreen
from widgets.checklist import ChecklistScreen
from widgets.event_log import EventLog

SIZE = (120, 40)


def text(widget) -> str:
    return str(widget.content)


def notifications(app) -> list:
    return list(app._notifications)


@pytest.fixture(scope="module")
def bars_file(tmp_path_factory) -> Path:
    """Two sessions of synthetic minute bars for two symbols, as Parquet."""
    sessions = [(s.open, s.close) for s in list(shared_calendar().sessions_from(date(2026, 3, 2)))[:2]]
    path = tmp_path_factory.mktemp("bars") / "bars.parquet"
    synthetic_frame(("AAPL", "MSFT"), sessions, 5).write_parquet(path)
    return path


async def open_backtest(pilot) -> BacktestScreen:
    await until(pilot, lambda: pilot.app.snapshot is not None, what="the engine")
    await pilot.press("b")
    await until(pilot, lambda: isinstance(pilot.app.screen, BacktestScreen), what="the screen")
    return pilot.app.screen


async def type_in(pilot, screen: BacktestScreen, path: str, fast: str = "", slow: str = "") -> None:
    screen.query_one("#backtest-path", Input).value = path
    screen.query_one("#backtest-fast", Input).value = fast
    screen.query_one("#backtest-slow", Input).value = slow
    screen.query_one("#backtest-path", Input).focus()
    await pilot.press("enter")


async def test_b_backtests_a_file_with_a_progress_bar_while_the_live_engine_keeps_going(
        bars_file, tmp_path):
    messages: list = []
    app = make_app("390m", speed=600.0, settings=Settings(sim_seed=42, data_dir=tmp_path))
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        screen = await open_backtest(pilot)
        await type_in(pilot, screen, str(bars_file), fast="8")
        await until(pilot, lambda: screen.last_run is not None, timeout=20, what="the backtest")
        progress = [m for m in messages if isinstance(m, BacktestScreen.Progressed)]
        assert progress and progress[-1].done == progress[-1].total, "progress up to 100%"
        assert screen.query_one(ProgressBar).percentage == 1.0
        result = screen.last_run.result
        assert result.settings.ema_fast == 8 and result.settings.ema_slow == 21
        table = screen.query_one("#backtest-metrics", DataTable)
        shown = [tuple(table.get_row_at(i)) for i in range(table.row_count)]
        assert shown == metrics_rows(result), "the rows of `python app.py backtest`"
        assert {"win rate", "profit factor", "max drawdown", "fill rate"} <= {k for k, _ in shown}
        assert screen.query_one("#backtest-equity").points == len(result.equity_curve) > 100
        assert screen.query_one("#backtest-drawdown").points == len(result.equity_curve)
        status = text(screen.query_one("#backtest-status", Static))
        assert "Backtest of AAPL, MSFT: 2026-03-02 to 2026-03-03" in status
        trades = text(screen.query_one("#backtest-trades", Static))
        parquet = screen.last_run.trades_parquet
        assert str(parquet) in trades and parquet.is_relative_to(tmp_path / "backtests")
        assert pl.read_parquet(parquet).height == len(result.trades)
        # the live engine was not touched and keeps trading its own symbols under the screen
        engine = app.host.engine
        assert engine.settings.symbols == app.settings.symbols and engine.settings.ema_fast == 9
        minute = engine.clock.now()
        await until(pilot, lambda: engine.clock.now() > minute, what="the next live bar")
        await pilot.press("escape")
        assert not isinstance(app.screen, BacktestScreen)
        await pilot.press("d")  # main-screen keys work again
        assert app.host.engine.state is TradingState.DISABLED


async def test_backtest_bad_input_is_an_inline_error_naming_the_file_and_nothing_runs(
        bars_file, tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text("timestamp,symbol\n2026-03-02 09:30,AAPL\n")  # no price columns
    locked = tmp_path / "locked.parquet"
    locked.write_bytes(bars_file.read_bytes())
    locked.chmod(0)
    cases = [
        (str(tmp_path / "missing.parquet"), "", "missing.parquet: no such file"),
        (str(tmp_path / "notes.txt"), "", "expected .csv or .parquet"),
        ("", "", "enter the path"),
        (str(broken), "", "broken.csv"),
        (str(bars_file), "40", "EMA_FAST"),  # fast must stay below slow (21)
    ]
    if os.geteuid() != 0:  # root reads anything
        cases.append((str(locked), "", "locked.parquet: not readable"))
    app = make_app(settings=Settings(sim_seed=42, data_dir=tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_backtest(pilot)
        error = screen.query_one("#backtest-error", Static)
        for path, fast, expected in cases:
            await type_in(pilot, screen, path, fast=fast)
            await until(pilot, lambda e=expected: e in text(error), what=expected)
            assert not screen.has_class("-done") and screen.last_run is None
        assert not (tmp_path / "backtests").exists(), "no trades were written"
        assert app.host.engine.state is TradingState.ENABLED, "live trading not affected"
    locked.chmod(0o600)


async def test_k_shows_the_checklist_items_and_the_verdict(tmp_path):
    settings = Settings(sim_seed=42, data_dir=tmp_path, live_max_capital=Decimal("10000"),
                        alert_webhook_url="https://hooks.example.com/x")
    app = make_app(settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, ChecklistScreen), what="the screen")
        screen = app.screen
        verdict = screen.query_one("#checklist-verdict", Static)
        await until(pilot, lambda: "READY" in text(verdict), what="the verdict")
        table = screen.query_one(DataTable)
        rows = {row[1]: row for row in (tuple(table.get_row_at(i)) for i in range(table.row_count))}
        assert rows["paper trades"] == ("FAIL", "paper trades", "0 paper trades", ">= 300")
        assert rows["win rate (paper)"][0] == "?" and rows["win rate (paper)"][2] == "no records yet"
        assert rows["alerting configured"] == ("PASS", "alerting configured",
                                               "ALERT_WEBHOOK_URL set", "a webhook for alerts")
        assert rows["live capital allocation small"][0] == "PASS"
        assert len(rows) == len(screen.checklist.items) == 10
        assert text(verdict).startswith("NOT READY for live: ")
        assert f"of {len(rows)} items open" in text(verdict)
        await pilot.press("escape")
        assert not isinstance(app.screen, ChecklistScreen)


async def test_a_breaker_trip_rings_the_bell_and_notifies_once(monkeypatch):
    app = make_app()
    bells: list[int] = []
    monkeypatch.setattr(app, "bell", lambda: bells.append(1))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settled(pilot)
        assert bells == [] and not notifications(app)
        engine = app.host.engine
        assert engine.book.positions(), "positions to lose money on"
        crash = [Bar(symbol, engine.clock.now(), price * 0.5, price * 0.5, price * 0.5,
                     price * 0.5, 1000) for symbol, price in engine.last_prices.items()]
        app.host.run(lambda: engine.on_minute(crash)).result(5)  # halves every price
        assert engine.breaker.tripped
        await until(pilot, lambda: notifications(app), what="a notification")
        alert = notifications(app)[0]
        assert "circuit breaker" in alert.title and alert.severity == "error"
        assert "tripped" in alert.message
        assert bells == [1]
        for _ in range(5):  # later polls and snapshots do not alert the same event again
            app.poll_engine(force=True)
            await pilot.pause(0.05)
        assert bells == [1] and len(notifications(app)) == 1
        await until(pilot, lambda: app.screen.query("Toast"), what="the toast")
        assert any("circuit breaker" in str(t.render()) for t in app.screen.query("Toast"))


async def test_start_up_after_a_crash_shows_what_was_recovered(tmp_path):
    settings = Settings(sim_seed=42, data_dir=tmp_path)
    options = RunOptions(speed=0.0, duration="30m", journal=True)
    crashed = build_runtime(settings, options, lambda: SESSION_NOON, shared_calendar())
    await crashed.run()  # then "killed": the session is never marked stopped
    crashed.store.journal.flush()
    session_id = crashed.store.journal.session_id
    recovery.STARTED_HERE.discard(session_id)  # as if another process had started it
    app = make_app(duration="60m", settings=settings, journal=True)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        recovered = app.host.runtime.store.recovered
        assert recovered is not None and recovered.session_id == session_id
        shown = [n for n in notifications(app) if n.title == "Recovered from the journal"]
        assert len(shown) == 1 and shown[0].message == recovered.summary()
        assert f"recovered session {session_id}" in shown[0].message
        lines = app.query_one(EventLog).visible_lines()
        assert sum(recovered.summary() in line for line in lines) == 1
    crashed.store.journal.close("test over")


async def test_escape_during_a_backtest_closes_the_screen_and_stops_the_run(
        bars_file, tmp_path, monkeypatch):
    stopped = threading.Event()

    def endless(bars, settings, *, calendar, progress, bad_bars):  # a run that never ends by itself
        try:
            for done in itertools.count():
                progress(done, 10**9)
                time.sleep(0.01)
        finally:
            stopped.set()

    monkeypatch.setattr("daytrader.backtest.run_backtest", endless)
    messages: list = []
    app = make_app(settings=Settings(sim_seed=42, data_dir=tmp_path))
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        screen = await open_backtest(pilot)
        await type_in(pilot, screen, str(bars_file))
        await until(pilot, lambda: any(isinstance(m, BacktestScreen.Progressed) for m in messages),
                    what="the run under way")
        assert screen.has_class("-running") and screen.query_one(ProgressBar).display
        await pilot.press("escape")
        assert not isinstance(app.screen, BacktestScreen)
        await until(pilot, stopped.is_set, what="the run stopped")
        assert not any(isinstance(m, BacktestScreen.Finished) for m in messages)
        assert not (tmp_path / "backtests").exists()
