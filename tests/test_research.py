"""Research beyond one machine: the market-data store (import reads back identically; an
interrupted fetch from the local Alpaca server resumes without duplicate rows), and sweeps and
walk-forward tests that give identical tables on local processes and on a local Ray instance."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from fake_alpaca import FakeAlpaca, data_config

from daytrader.clock import EXCHANGE_TZ
from daytrader.config import Settings
from daytrader.data.alpaca import AlpacaData
from daytrader.data.replay import read_checked
from daytrader.data.store import MarketStore, fetch, session_days
from daytrader.data.synthetic import synthetic_bars, synthetic_frame
from daytrader.models import Bar
from daytrader.research import (
    LocalExecutor,
    RayExecutor,
    grid_combinations,
    screen_universe,
    walk_forward,
    windows,
)

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = ("AAPL", "AMD", "MSFT", "NVDA", "TSLA")


def sessions(calendar, n: int, first: date = date(2026, 3, 2)):
    return [(s.open, s.close) for s in list(calendar.sessions_from(first))[:n]]


@pytest.fixture(scope="module")
def bars_file(tmp_path_factory, calendar) -> Path:
    """Eight sessions of five symbols, with a few broken rows a store must not take."""
    frame = synthetic_frame(SYMBOLS, sessions(calendar, 8), 13).with_columns(
        pl.col("timestamp").cast(pl.String))
    broken = pl.DataFrame({"timestamp": ["2026-03-02 10:00:00", "nonsense"],
                           "symbol": ["AAPL", "MSFT"], "open": [-1.0, 10.0],
                           "high": [1.0, 10.0], "low": [1.0, 10.0], "close": [1.0, 10.0],
                           "volume": [10.0, 10.0]})
    path = tmp_path_factory.mktemp("research") / "bars.csv"
    pl.concat([frame, broken], how="vertical_relaxed").write_csv(path)
    return path


@pytest.fixture(scope="module")
def store(bars_file, tmp_path_factory) -> MarketStore:
    market = MarketStore(tmp_path_factory.mktemp("store") / "market")
    market.import_file(bars_file)
    return market


@pytest.fixture(scope="module")
def ray_executor():
    executor = RayExecutor("local", num_cpus=2)
    yield executor
    executor.close()


def test_an_imported_file_reads_back_identically(bars_file, store, tmp_path):
    checked = read_checked(bars_file)
    assert checked.rejected == {"bad_timestamp": 1, "non_positive_price": 1}
    back = store.frame()
    assert back.equals(checked.accepted)
    assert store.symbols() == SYMBOLS
    [aapl] = [c for c in store.coverage() if c.symbol == "AAPL"]
    assert (aapl.first, aapl.days, aapl.rows) == (date(2026, 3, 2), 8, 8 * 390)
    # Lazily: a filter on symbol and day reads only those files.
    plan = store.scan(["NVDA"], date(2026, 3, 4), date(2026, 3, 4)).explain()
    assert "1/40" in plan or "hive" in plan.lower() or store.bar_count(
        ["NVDA"], date(2026, 3, 4), date(2026, 3, 4)) == 390
    # The same minutes, one day at a time, as the replay of the file.
    minutes = list(store.minutes(["AAPL", "MSFT"], date(2026, 3, 3), date(2026, 3, 3)))
    assert len(minutes) == 390 and [b.symbol for b in minutes[0]] == ["AAPL", "MSFT"]
    assert minutes[0][0].ts == datetime(2026, 3, 3, 9, 30, tzinfo=EXCHANGE_TZ)


def test_data_import_and_info_from_the_command_line(bars_file, tmp_path):
    env = {**os.environ, "DATA_DIR": str(tmp_path)}

    def app(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "app.py"), "data", *args], env=env,
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)

    done = app("import", str(bars_file))
    assert done.returncode == 0, done.stderr
    assert "imported 15,600 bars into 40 partitions" in done.stdout
    assert "bad_timestamp 1, non_positive_price 1" in done.stdout
    info = app("info")
    assert "5 symbols" in info.stdout and "2026-03-02 to 2026-03-11" in info.stdout
    again = app("import", str(bars_file))  # a second import replaces, never duplicates
    assert again.returncode == 0
    assert MarketStore(tmp_path / "market").bar_count() == 15_600
    bad = app("import", str(tmp_path / "missing.csv"))
    assert bad.returncode == 2 and "file not found" in bad.stderr


async def test_an_interrupted_fetch_resumes_without_duplicate_rows(calendar, tmp_path):
    days = session_days(calendar, date(2026, 3, 2), date(2026, 3, 6))
    server = FakeAlpaca(("AAPL", "MSFT"), calendar, datetime(2026, 3, 9, 10, 0,
                                                             tzinfo=EXCHANGE_TZ)).start()
    server.history = [b for minute in synthetic_bars(("AAPL", "MSFT"), sessions(calendar, 5), 3)
                      for b in minute]
    good = list(server.history)
    broken = server.history[-1]  # a bar whose high is below its low, on the last day
    server.history[-1] = Bar(broken.symbol, broken.ts, broken.open, broken.low - 1, broken.low,
                             broken.close, broken.volume)
    data = AlpacaData(data_config(server))
    store = MarketStore(tmp_path / "market")
    calls = []

    async def breaks_on_day_three(symbols, start, end):
        calls.append(start.date())
        if len(calls) == 3:
            raise ConnectionError("the network went away")
        return await data.history(symbols, start, end, keep_invalid=True)

    async def every_bar(symbols, start, end):
        return await data.history(symbols, start, end, keep_invalid=True)

    try:
        with pytest.raises(ConnectionError):
            await fetch(store, breaks_on_day_three, ("AAPL", "MSFT"), days)
        assert store.days() == days[:2]  # two whole days, nothing of the third
        report = await fetch(store, every_bar, ("AAPL", "MSFT"), days)
        assert (report.skipped, report.partitions) == (4, 6)  # resumed at day three
        assert report.rejected == {"high_below_low": 1}  # checked as a replay checks a file
        frame = store.frame()
        assert frame.height == 5 * 2 * 390 - 1
        assert frame.select(pl.struct("symbol", "ts_us").is_unique().all()).item()
        expected = sorted((b.symbol, b.ts, b.close) for b in good[:-1])
        from daytrader.data.replay import frame_to_bars

        got = sorted((b.symbol, b.ts, b.close) for b in frame_to_bars(frame))
        assert got == expected
    finally:
        await data.stop()
        server.stop()


def test_walk_forward_windows_roll_by_the_out_of_sample_length():
    days = [date(2026, 3, d) for d in range(2, 12)]
    pairs = windows(days, 4, 2)
    assert [(w[0][0].day, w[0][-1].day, w[1][0].day, w[1][-1].day) for w in pairs] == [
        (2, 5, 6, 7), (4, 7, 8, 9), (6, 9, 10, 11)]
    with pytest.raises(ValueError):
        windows(days, 0, 2)


def _table(results) -> list[tuple]:
    return [(tuple(sorted(r.params.items())), r.trades, r.win_rate, r.profit_factor, r.total_r,
             r.bars) for r in results]


def test_a_sweep_is_the_same_on_local_processes_and_on_ray(store, ray_executor):
    settings = Settings(symbols=SYMBOLS)
    combos = grid_combinations({"fast": [5, 9], "slow": [21, 30], "stop": [1.5, 2.0]}, settings)
    first, last = date(2026, 3, 2), date(2026, 3, 9)
    local = screen_universe(store, SYMBOLS, first, last, combos, LocalExecutor(2), 5,
                            group_size=2, block_size=3)
    on_ray = screen_universe(store, SYMBOLS, first, last, combos, ray_executor, 5,
                             group_size=2, block_size=3)
    assert _table(local) == _table(on_ray)
    one_process = screen_universe(store, SYMBOLS, first, last, combos, LocalExecutor(1), 5,
                                  group_size=5, block_size=8)
    assert _table(one_process) == _table(local)  # the cut into tasks changes nothing
    assert len({r.total_r for r in local}) > 1


def test_walk_forward_is_the_same_on_local_processes_and_on_ray(store, ray_executor):
    settings = Settings(symbols=SYMBOLS)
    combos = grid_combinations({"fast": [5, 9], "slow": [21, 30]}, settings)

    def table(wf):
        return ([(w.in_start, w.out_end, tuple(sorted(w.best.items())), w.screen.total_r,
                  w.in_sample.result.metrics.realized, w.out_of_sample.result.metrics.realized,
                  w.out_of_sample.result.final_equity) for w in wf.windows],
                wf.out_of_sample.realized, wf.out_of_sample.trades, wf.in_sample.realized,
                wf.combinations)

    local = walk_forward(store, settings, SYMBOLS, combos, 4, 2, LocalExecutor(2),
                         group_size=2, block_size=2)
    on_ray = walk_forward(store, settings, SYMBOLS, combos, 4, 2, ray_executor,
                          group_size=2, block_size=2)
    assert table(local) == table(on_ray)
    assert len(local.windows) == 2 and local.combinations == 4
    # The stitched out-of-sample record is the windows' out-of-sample runs, end to end.
    assert local.out_of_sample.trades == sum(w.out_of_sample.result.metrics.trades
                                             for w in local.windows)
    assert local.stitched_curve[0][0] >= datetime(2026, 3, 6, tzinfo=EXCHANGE_TZ)


def test_the_cli_gives_the_same_table_with_and_without_a_cluster(store, tmp_path):
    env = {**os.environ, "DATA_DIR": str(tmp_path)}

    def sweep(*extra: str) -> dict:
        done = subprocess.run(
            [sys.executable, str(ROOT / "app.py"), "backtest", "--data", str(store.root),
             "--sweep", "fast=5,9", "--sweep", "slow=21,30", "--walk-forward", "4:2", "--json",
             *extra], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    local = sweep()
    on_ray = sweep("--cluster", "local")
    assert local["executor"] == "local processes" and on_ray["executor"] == "Ray (local)"
    for report in (local, on_ray):
        report.pop("executor")
    assert local == on_ray
    assert local["combinations_per_window"] == 4 and len(local["windows"]) == 2


def _s3_symbols_days_and_sweep(url: str, combos: list, first: date, last: date) -> tuple:
    """The store at `url` read as a research node reads it, in a process of its own (see below)."""
    remote = MarketStore(url)
    swept = screen_universe(remote, SYMBOLS, first, last, combos, LocalExecutor(2), 5)
    return remote.symbols(), remote.days(), _table(swept)


def test_a_store_in_s3_compatible_object_storage_gives_the_same_sweep(store, monkeypatch):
    """Research nodes that share no disk read the store from object storage through polars;
    here a local S3-compatible server (moto) stands in for it. The remote read runs in a
    process of its own: polars' object-storage runtime keeps threads that tick for the rest of
    the process, and Textual's Pilot waits for an idle process after every key press, so every
    console test after this one would wait up to a second per key."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(port=0, ip_address="127.0.0.1")
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                            "AWS_ALLOW_HTTP": "true"}.items():
            monkeypatch.setenv(name, value)
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="research")
        for path in store.root.rglob("bars.parquet"):
            s3.upload_file(str(path), "research", f"market/{path.relative_to(store.root)}")
        first, last = date(2026, 3, 2), date(2026, 3, 5)
        combos = grid_combinations({"fast": [5, 9], "slow": [21]}, Settings(symbols=SYMBOLS))
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as node:
            symbols, days, there = node.submit(_s3_symbols_days_and_sweep, "s3://research/market",
                                               combos, first, last).result()
        assert symbols == SYMBOLS and days == store.days()
        here = screen_universe(store, SYMBOLS, first, last, combos, LocalExecutor(2), 5)
        assert _table(here) == there
    finally:
        server.stop()


def test_data_fetch_from_the_command_line(calendar, tmp_path):
    server = FakeAlpaca(("AAPL", "MSFT"), calendar, datetime(2026, 3, 9, 10, 0,
                                                             tzinfo=EXCHANGE_TZ)).start()
    server.history = [b for minute in synthetic_bars(("AAPL", "MSFT"), sessions(calendar, 3), 4)
                      for b in minute]
    (tmp_path / "universe.txt").write_text("AAPL\nMSFT\n")
    env = {**os.environ, "DATA_DIR": str(tmp_path), "ALPACA_API_KEY": server.key,
           "ALPACA_SECRET_KEY": server.secret, "ALPACA_DATA_URL": server.url,
           "ALPACA_BASE_URL": server.url}
    try:
        done = subprocess.run([sys.executable, str(ROOT / "app.py"), "data", "fetch", "--source",
                               "alpaca", "--symbols", "@universe.txt", "--from", "2026-03-02",
                               "--to", "2026-03-04"], env=env, capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    assert "2026-03-04: 2 symbol(s), 780 bars (3/3 days)" in done.stderr  # progress
    assert "fetched 2,340 bars into 6 partitions (0 already there)" in done.stdout
    assert MarketStore(tmp_path / "market").bar_count() == 2340
