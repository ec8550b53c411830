"""Headless runs as a user starts them: `python app.py --headless ...`, replay files, summaries."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from daytrader.clock import MarketCalendar
from daytrader.config import Settings
from daytrader.data.synthetic import synthetic_frame
from daytrader.headless import HeadlessRun, RunOptions

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = ("AAPL", "MSFT", "NVDA")


@pytest.fixture(scope="module")
def replay_csv(tmp_path_factory) -> Path:
    calendar = MarketCalendar()
    sessions = [(s.open, s.close) for s in list(calendar.sessions_from(date(2026, 11, 2)))[:3]]
    path = tmp_path_factory.mktemp("replay") / "bars.csv"
    synthetic_frame(SYMBOLS, sessions, seed=11).write_csv(path)
    return path


def run_app(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd or ROOT,
                          env={"PATH": "/usr/bin:/bin", **(env or {})})


async def replay_summary(path: Path) -> dict:
    settings = Settings(symbols=SYMBOLS)
    run = HeadlessRun(settings, RunOptions(replay=path, speed=0, quiet=True), io.StringIO(),
                      io.StringIO())
    return await run.run()


async def test_a_seeded_replay_is_deterministic(replay_csv):
    first, second = await replay_summary(replay_csv), await replay_summary(replay_csv)
    assert first["trades"], "the strategy should trade three sessions of trending bars"
    assert first["trades"] == second["trades"]
    assert first["equity"] == second["equity"]
    assert first["bars"] == 3 * 390 * len(SYMBOLS)


async def test_replay_ends_each_day_flat_and_reports_every_exit_reason(replay_csv):
    summary = await replay_summary(replay_csv)
    assert summary["open_positions"] == []
    reasons = {t["reason"] for t in summary["trades"]}
    assert reasons <= {"ema_cross_down", "stop_loss", "take_profit", "flatten_before_close"}
    for trade in summary["trades"]:
        assert trade["entry_time"] < trade["exit_time"]
        assert trade["stop_loss"] is not None and trade["take_profit"] is not None


def test_cli_json_summary_of_a_replay(replay_csv, tmp_path):
    proc = run_app("--headless", "--replay", str(replay_csv), "--speed", "max", "--json",
                   "--symbols", ",".join(SYMBOLS), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["bars"] == 3 * 390 * len(SYMBOLS)
    assert summary["trades"] and summary["metrics"]["trades"] == len(summary["trades"])
    assert set(summary) >= {"equity", "risk_rejections", "bad_bars", "breaker_trips", "trades"}
    assert "FILL" in proc.stderr  # the live log goes to stderr when stdout is JSON


def test_summary_measures_slippage_and_fill_rate_like_a_backtest(replay_csv):
    import asyncio

    from daytrader.backtest import run_backtest
    from daytrader.data.replay import load_bars

    summary = asyncio.run(replay_summary(replay_csv))
    m = summary["metrics"]
    assert m["slippage_bps"] is not None and m["fill_rate_pct"] is not None
    backtest = run_backtest(load_bars(replay_csv, SYMBOLS).bars, Settings(symbols=SYMBOLS))
    assert m["fill_rate_pct"] == round(backtest.metrics.fill_rate, 2)
    assert m["slippage_bps"] == round(backtest.metrics.slippage_bps, 3)


async def test_json_summary_writes_every_money_figure_as_a_string_with_cents(replay_csv):
    summary = await replay_summary(replay_csv)
    money = [*summary["equity"].values(), summary["metrics"]["max_drawdown"],
             summary["metrics"]["realized"], summary["metrics"]["expectancy"]]
    money += [t[k] for t in summary["trades"] for k in ("pnl", "commission")]
    assert all(isinstance(v, str) and v.replace("-", "").replace(".", "").isdigit()
               and len(v.rpartition(".")[2]) == 2 for v in money), money


def test_text_summary_reads_as_sentences_not_python(replay_csv, tmp_path):
    proc = run_app("--headless", "--replay", str(replay_csv), "--speed", "max", "--quiet",
                   "--symbols", ",".join(SYMBOLS), cwd=tmp_path,
                   env={"COOLDOWN_AFTER_STOPS": "1", "MAX_POSITIONS": "1"})
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "{" not in text and "}" not in text, text
    rejections = next(line for line in text.splitlines() if line.startswith("Risk rejections:"))
    assert "max_positions" in rejections and "'" not in rejections, rejections
    assert "Slippage vs signal:" in text and "n/a" not in text.split("Slippage")[1].split("\n")[0]
    # Money reads as money: "Equity: $100,000.00 -> $99,874.12  (max drawdown $312.40, ...".
    assert re.search(r"^Equity: \$[\d,]+\.\d\d -> \$[\d,]+\.\d\d  \(max drawdown \$[\d,]+\.\d\d, ",
                     text, re.M), text
    assert re.search(r"realized [+-]?\$[\d,]+\.\d\d$", text, re.M), text


def test_cli_sim_default_trades_within_the_first_minutes(tmp_path):
    proc = run_app("--headless", "--speed", "max", "--duration", "60m", "--json", "--quiet",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["bars"] == 60 * 6
    orders = summary["metrics"]["trades"] + len(summary["open_positions"])
    assert orders > 0, "a newcomer must see the strategy trade within the first hour of bars"


def test_cli_counts_bad_bars_in_the_summary(replay_csv, tmp_path):
    frame = pl.read_csv(replay_csv)
    bad = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 10).then(-1.0).otherwise(pl.col("low")).alias("low"),
        pl.when(pl.int_range(pl.len()) == 20).then(float("nan")).otherwise(pl.col("close"))
        .alias("close"))
    path = tmp_path / "bad.csv"
    bad.write_csv(path)
    proc = run_app("--headless", "--replay", str(path), "--speed", "max", "--json", "--quiet",
                   "--symbols", ",".join(SYMBOLS), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["bad_bars"] == {"nan": 1, "non_positive_price": 1}
    assert summary["bars"] == 3 * 390 * len(SYMBOLS) - 2


def test_cli_unreadable_file_stops_with_file_and_line(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text("timestamp,symbol,open,high,low,close,volume\n"
                    "2026-11-24T09:30:00-05:00,AAPL,1,2,0.5,1.5,100\n"
                    "2026-11-24T09:31:00-05:00,AAPL,1,2,0.5,1.5,100,999\n")
    proc = run_app("--headless", "--replay", str(path), "--speed", "max", cwd=tmp_path)
    assert proc.returncode == 2
    assert "broken.csv" in proc.stderr and "line 3" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_missing_file_is_a_clear_error(tmp_path):
    proc = run_app("--headless", "--replay", "nope.parquet", cwd=tmp_path)
    assert proc.returncode == 2
    assert "nope.parquet" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(("env", "name"), [
    ({"MAX_POSITIONS": "five"}, "MAX_POSITIONS"),
    ({"TRADING_MODE": "yolo"}, "TRADING_MODE"),
    ({"EMA_FAST": "30"}, "EMA_FAST"),
    ({"TRADING_MODE": "paper"}, "ALPACA_API_KEY"),
])
def test_cli_bad_setting_stops_start_up_naming_it(tmp_path, env, name):
    proc = run_app("--headless", "--speed", "max", "--duration", "5m", env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert name in proc.stderr and "Traceback" not in proc.stderr


def test_cli_reads_settings_from_the_env_file(tmp_path):
    (tmp_path / ".env").write_text("SYMBOLS=AMD,QQQ\nALPACA_SECRET_KEY=sk-very-secret-value\n")
    proc = run_app("--headless", "--speed", "max", "--duration", "30m", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["symbols"] == ["AMD", "QQQ"]
    assert "sk-very-secret-value" not in proc.stdout + proc.stderr


def test_help_explains_modes_and_settings():
    proc = run_app("--help")
    assert proc.returncode == 0
    for word in ("--headless", "--replay", "--speed", "--until", "--json", "paper", "live",
                 "backtest", "MAX_DAILY_LOSS_PCT"):
        assert word in proc.stdout
    # Plain `python app.py` is the console; the live log is what --headless prints.
    plain = next(line for line in proc.stdout.splitlines() if line.strip().startswith(
        "python app.py ") and line.split("python app.py")[1].startswith("  "))
    assert "console" in plain and "live log" not in plain, plain


def test_until_accepts_a_clock_time_on_the_first_day(tmp_path):
    proc = run_app("--headless", "--speed", "max", "--until", "10:00", "--json", "--quiet",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["bars"] == 30 * 6
    assert summary["end"].endswith("10:00:00-05:00")


def test_a_second_instance_on_the_same_data_dir_is_refused_until_the_first_is_gone(tmp_path):
    import signal
    import time

    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path / "data")}
    first = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--headless", "--speed", "30",
                              "--quiet"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        sock = tmp_path / "data" / "run" / "daytrader.sock"
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        second = run_app("--headless", "--speed", "max", "--duration", "5m", env=env, cwd=tmp_path)
        assert second.returncode == 2
        assert f"pid {first.pid}" in second.stderr and "DATA_DIR" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)  # a crash: the kernel releases the lock
        first.wait(10)
    again = run_app("--headless", "--speed", "max", "--duration", "5m", "--quiet", env=env,
                    cwd=tmp_path)
    assert again.returncode == 0, again.stderr
