"""Backtests on the live engine, the vectorized sweep, and `python app.py backtest`."""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from conftest import at

from daytrader.backtest import (
    Screener,
    apply_params,
    combinations,
    minutes_of,
    parse_sweep,
    prepare_frame,
    run_backtest,
    screen,
)
from daytrader.broker.sim import SimExchange
from daytrader.clock import MarketCalendar, SimClock
from daytrader.config import Settings, SettingsError
from daytrader.data.synthetic import synthetic_bars, synthetic_frame
from daytrader.engine import Engine
from daytrader.models import Bar

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return MarketCalendar()


@pytest.fixture(scope="module")
def history(calendar) -> list[Bar]:
    sessions = [(s.open, s.close) for s in list(calendar.sessions_from(date(2026, 3, 2)))[:8]]
    return [b for minute in synthetic_bars(("AAPL", "MSFT"), sessions, 4) for b in minute]


def unconstrained(**changes) -> Settings:
    """Settings under which nothing couples the symbols: the screen's assumptions hold."""
    return Settings(symbols=("AAPL", "MSFT"), starting_cash=Decimal("100000000"),
                    sim_slippage_bps=0.0, cooldown_after_stops=1000, max_daily_loss_pct=99.0,
                    **changes)


def key(trades) -> list[tuple]:
    return sorted((t.symbol, t.entry_time, t.entry_price, t.exit_time, t.exit_price,
                   getattr(t, "exit_reason", getattr(t, "reason", None))) for t in trades)


def test_backtest_is_deterministic(history, calendar):
    settings = Settings(symbols=("AAPL", "MSFT"))
    first = run_backtest(history, settings, calendar=calendar)
    second = run_backtest(history, settings, calendar=calendar)
    assert first.trades and first.trades == second.trades
    assert first.final_equity == second.final_equity


def test_vectorized_screen_and_engine_agree_where_their_semantics_match(history, calendar):
    for fast, slow in ((9, 21), (5, 30)):
        settings = unconstrained(ema_fast=fast, ema_slow=slow)
        engine = run_backtest(history, settings, calendar=calendar)
        frame = prepare_frame(history, calendar, settings.flatten_minutes_before_close)
        vectorized = Screener(frame).trades(fast, slow, 14, 2.0, 4.0)
        assert len(engine.trades) > 20
        assert key(engine.trades) == key(vectorized)


def test_screen_results_are_the_same_on_two_processes(history, calendar):
    frame = prepare_frame(history, calendar, 5)
    combos = combinations(parse_sweep(["fast=5:8", "slow=20:30:10"]), Settings())
    one = screen(frame, combos, workers=1)
    two = screen(frame, combos, workers=2)
    assert sorted((tuple(r.params.items()), r.trades, r.total_r) for r in one) == \
        sorted((tuple(r.params.items()), r.trades, r.total_r) for r in two)


def crafted(calendar) -> list[Bar]:
    """Falls from 100 to 96, turns up to 99 at 09:36 (the cross), then: 09:37 opens 99.5,
    09:38 runs through the take-profit (stop 95.40, take-profit 106.20 from ATR(3) = 1.8)."""
    prices = [100, 99, 98, 97, 96, 97, 99]
    bars = [Bar("AAA", at(f"09:{30 + i}"), p, p + 0.5, p - 0.5, p, 1000)
            for i, p in enumerate(prices)]
    bars.append(Bar("AAA", at("09:37"), 99.5, 100, 99.4, 99.9, 1000))
    bars.append(Bar("AAA", at("09:38"), 100, 108, 99.9, 107, 1000))  # target is 106.20
    return bars


def test_crafted_series_gives_the_expected_take_profit(calendar):
    settings = Settings(symbols=("AAA",), ema_fast=2, ema_slow=4, atr_period=3,
                        sim_slippage_bps=0.0)
    result = run_backtest(crafted(calendar), settings, calendar=calendar)
    assert len(result.trades) == 1
    t = result.trades[0]
    assert (t.entry_time, t.entry_price) == (at("09:37"), Decimal("99.50"))
    assert t.exit_reason == "take_profit" and t.exit_time == at("09:38")
    assert t.exit_price == t.take_profit


def test_bar_reaching_stop_and_take_profit_fills_the_stop(calendar):
    settings = Settings(symbols=("AAA",), ema_fast=2, ema_slow=4, atr_period=3,
                        sim_slippage_bps=0.0)
    bars = crafted(calendar)[:-1]
    bars.append(Bar("AAA", at("09:38"), 99.8, 108, 90, 100, 1000))  # both levels inside
    t = run_backtest(bars, settings, calendar=calendar).trades[0]
    assert t.exit_reason == "stop_loss" and t.exit_price == t.stop_loss
    frame = prepare_frame(bars, calendar, 5)
    (v,) = Screener(frame).trades(2, 4, 3, 2.0, 4.0)
    assert (v.reason, v.exit_price) == ("stop_loss", t.stop_loss)


def test_gap_beyond_the_take_profit_fills_at_the_open(calendar):
    settings = Settings(symbols=("AAA",), ema_fast=2, ema_slow=4, atr_period=3,
                        sim_slippage_bps=0.0)
    bars = crafted(calendar)[:-1]
    bars.append(Bar("AAA", at("09:38"), 99.8, 99.9, 99.7, 99.8, 1000))
    bars.append(Bar("AAA", at("09:39"), 110, 111, 90, 100, 1000))  # opens above the target
    t = run_backtest(bars, settings, calendar=calendar).trades[0]
    assert (t.exit_reason, t.exit_price) == ("take_profit", Decimal("110.00"))


def test_params_are_validated_like_settings():
    s = apply_params(Settings(), {"fast": "5", "slow": "30", "stop": "1.5"})
    assert (s.ema_fast, s.ema_slow, s.stop_atr_mult) == (5, 30, 1.5)
    with pytest.raises(SettingsError, match="unknown parameter"):
        apply_params(Settings(), {"speed": "3"})
    with pytest.raises(SettingsError, match="EMA_FAST"):
        apply_params(Settings(), {"fast": "40"})


def test_sweep_ranges():
    assert parse_sweep(["fast=5:8", "slow=20:40:10", "stop=1.5,2"]) == {
        "fast": [5, 6, 7, 8], "slow": [20, 30, 40], "stop": [1.5, 2.0]}
    with pytest.raises(SettingsError):
        parse_sweep(["fast=9:5"])
    with pytest.raises(SettingsError, match="expected NAME=FROM:TO"):
        parse_sweep(["bogus"])
    with pytest.raises(SettingsError, match="ema_cross's screen sweeps fast, slow, atr, stop, "
                                            "take; not bogus"):
        combinations(parse_sweep(["bogus=1:2"]), Settings())
    combos = combinations({"fast": [5, 25], "slow": [20]}, Settings())
    assert combos == [{"fast": 5, "slow": 20, "atr": 14, "stop": 2.0, "take": 4.0}]


def run_app(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], capture_output=True,
                          text=True, timeout=180, cwd=cwd, env={"PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def parquet(tmp_path_factory, calendar) -> Path:
    sessions = [(s.open, s.close) for s in list(calendar.sessions_from(date(2026, 2, 2)))[:6]]
    path = tmp_path_factory.mktemp("bt") / "bars.parquet"
    synthetic_frame(("AAPL", "MSFT", "NVDA"), sessions, 21).write_parquet(path)
    return path


def test_cli_backtest_reports_and_writes_trades(parquet, tmp_path):
    proc = run_app("backtest", "--data", str(parquet), "--out", str(tmp_path / "out"),
                   "--param", "fast=8", "--capital", "50000", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for label in ("win rate", "profit factor", "max drawdown", "Sharpe", "exposure",
                  "slippage vs signal", "fill rate", "Equity", "Drawdown"):
        assert label in proc.stdout
    trades = pl.read_parquet(tmp_path / "out" / "trades.parquet")
    assert len(trades) > 0
    assert pl.read_csv(tmp_path / "out" / "trades.csv").height == trades.height
    assert "backtest 100%" in proc.stderr  # progress while it runs


def test_cli_backtest_json_counts_bad_bars(parquet, tmp_path):
    frame = pl.read_parquet(parquet)
    bad = frame.with_columns(pl.when(pl.int_range(pl.len()) == 5).then(float("nan"))
                             .otherwise(pl.col("close")).alias("close"))
    path = tmp_path / "bad.parquet"
    bad.write_parquet(path)
    proc = run_app("backtest", "--data", str(path), "--json", "--out", str(tmp_path / "o"),
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["bad_bars"] == {"nan": 1}
    assert report["bars"] == frame.height - 1


def test_cli_sweep_confirms_the_best_with_the_engine_out_of_sample(parquet, tmp_path):
    proc = run_app("backtest", "--data", str(parquet), "--sweep", "fast=5:7",
                   "--sweep", "slow=20:30:10", "--top", "2", "--oos", "0.34", "--json",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["combinations"] == 6 and len(report["best"]) == 2
    scores = [b["screen"]["total_r"] for b in report["best"]]
    assert scores == sorted(scores, reverse=True)
    assert all(b["out_of_sample"] is not None for b in report["best"])
    assert "Overfitting" in report["warning"]


def test_cli_backtest_bad_input_is_a_clear_error(tmp_path):
    proc = run_app("backtest", "--data", str(tmp_path / "none.csv"), cwd=tmp_path)
    assert proc.returncode == 2 and "none.csv" in proc.stderr
    proc = run_app("backtest", "--data", "x.csv", "--param", "fast", cwd=tmp_path)
    assert proc.returncode == 2 and "NAME=VALUE" in proc.stderr


def test_cli_backtest_from_alpaca_history_downloads_once_then_reads_the_cache(tmp_path, calendar):
    from fake_alpaca import FakeAlpaca

    days = list(calendar.sessions_from(date(2026, 3, 2)))[:2]
    server = FakeAlpaca(("AAPL", "MSFT"), calendar, days[0].open, page_size=500).start()
    try:
        server.history = [b for minute in synthetic_bars(("AAPL", "MSFT"),
                                                         [(s.open, s.close) for s in days], 8)
                          for b in minute]
        env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path / "data"),
               "ALPACA_API_KEY": server.key, "ALPACA_SECRET_KEY": server.secret,
               "ALPACA_DATA_URL": server.url}
        args = [sys.executable, str(ROOT / "app.py"), "backtest", "--source", "alpaca",
                "--from", "2026-03-02", "--to", "2026-03-03", "--symbols", "AAPL,MSFT", "--json",
                "--out", str(tmp_path / "out")]
        first = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path,
                               timeout=180)
        assert first.returncode == 0, first.stderr
        assert "downloading 2026-03-03 (2/2)" in first.stderr
        assert json.loads(first.stdout)["bars"] == 2 * 390 * 2
        assert list((tmp_path / "data" / "cache").glob("alpaca-iex-*.parquet"))
        server.history = []  # a second run must not need the server's data
        second = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path,
                                timeout=180)
        assert second.returncode == 0, second.stderr
        assert "using cached bars" in second.stderr
        assert json.loads(second.stdout)["bars"] == 2 * 390 * 2
    finally:
        server.stop()


def test_cli_backtest_from_alpaca_needs_keys(tmp_path):
    proc = run_app("backtest", "--source", "alpaca", "--from", "2026-03-02", "--to", "2026-03-03",
                   cwd=tmp_path)
    assert proc.returncode == 2 and "ALPACA_API_KEY" in proc.stderr


class RemoteSim:
    """The sim exchange as a remote broker looks to the engine: not in process, and every
    request waits a turn of the loop before it is answered. The engine then takes its general
    path: closes on tasks of their own, cancels and sends side by side, submits under a timer."""

    name = "remote-sim"
    in_process = False

    def __init__(self, exchange: SimExchange) -> None:
        self.exchange = exchange

    def __getattr__(self, name: str):
        attr = getattr(self.exchange, name)
        if not inspect.iscoroutinefunction(attr):
            return attr  # set_listener, on_bars, account_view, restore: no request

        async def answered_later(*args, **kwargs):
            await asyncio.sleep(0)
            return await attr(*args, **kwargs)

        return answered_later


def engine_over(broker_of, bars: list[Bar], settings: Settings, calendar) -> Engine:
    """What run_backtest does, with the broker `broker_of(sim exchange)`."""
    settings = replace(settings, trading_enabled_at_start=True)
    clock = SimClock(bars[0].ts)
    sim = SimExchange(settings.symbols, calendar, clock, cash=settings.starting_cash,
                      slippage_bps=settings.sim_slippage_bps)
    engine = Engine(settings, broker_of(sim), calendar, clock)

    async def drive() -> None:
        for minute in minutes_of(bars):
            await engine.on_minute(minute)

    asyncio.run(drive())
    return engine


def test_the_in_process_fast_paths_trade_exactly_as_a_remote_broker_would(calendar):
    """Orders, closes and fills on an order-heavy market (twice the noise, two position slots
    for four symbols): the backtest's fast paths (closes in line, no timers, the sim's account
    kept between changes) give the very trades and fills the general path gives."""
    sessions = [(s.open, s.close) for s in list(calendar.sessions_from(date(2026, 3, 2)))[:8]]
    symbols = ("AAPL", "MSFT", "NVDA", "AMZN")
    bars = [b for minute in synthetic_bars(symbols, sessions, 5, volatility=2.0) for b in minute]
    settings = Settings(symbols=symbols, max_positions=2, sim_slippage_bps=1.0)

    fast = run_backtest(bars, settings, calendar=calendar)
    local = engine_over(lambda sim: sim, bars, settings, calendar)
    remote = engine_over(RemoteSim, bars, settings, calendar)

    reasons = {t.exit_reason for t in fast.trades}
    assert len(fast.trades) > 150
    assert {"ema_cross_down", "stop_loss", "take_profit", "flatten_before_close"} <= reasons
    assert local.rejections_by_check["max_positions"] > 0  # the slots bind
    assert list(fast.trades) == local.book.trades == remote.book.trades
    assert local.fills == remote.fills
    assert fast.final_equity == local.book.equity() == remote.book.equity()
    assert [(o.id, o.status) for o in local.known_orders.values()] == \
        [(o.id, o.status) for o in remote.known_orders.values()]
