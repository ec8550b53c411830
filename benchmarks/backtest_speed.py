"""Backtest speed: the full engine, the vectorized sweep, a bare loop, backtesting.py, backtrader.

    pip install -e ".[bench]" && python benchmarks/backtest_speed.py [--days 60] [--symbols 10]
        [--case today|order-heavy|all] [--repeat 3] [--clock wall|cpu] [--combos 100]
        [--skip-others] [--skip-backtrader]

All run the same strategy (EMA(9)/EMA(21) crossover, long only, stop 2xATR(14), take-profit
4xATR(14)) over the same seeded minute bars (10 symbols x 60 days x 390 = 234,000 by default),
in one process, in turns (each the best of `--repeat` runs), and the figures are printed side
by side with ratios.
Two cases: `today` (seed 5, the default market) and `order-heavy` (seed 5 with twice the minute
noise, where the seed strategy trades over 4,000 times, so the cost of each order dominates).
The aim: the full engine at least 2.5x backtesting.py's bars/s, measured in the same run, on both.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from daytrader.backtest import Screener, prepare_frame, run_backtest, screen  # noqa: E402
from daytrader.clock import MarketCalendar  # noqa: E402
from daytrader.config import Settings  # noqa: E402
from daytrader.data.replay import load_bars  # noqa: E402
from daytrader.data.synthetic import synthetic_frame  # noqa: E402

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOGL", "AMD", "SPY", "QQQ")


def bare_loop(frame: pl.DataFrame) -> int:
    """The reference: the strategy in a plain per-bar loop, with entries, stops, targets and
    cross exits, but no risk checks, orders, exchange or records."""
    trades = 0
    for symbol_frame in frame.partition_by("symbol", maintain_order=True):
        o, h, low, c = (symbol_frame[k].to_list() for k in ("open", "high", "low", "close"))
        af, aslow = 2 / 10, 2 / 22
        fast = slow = c[0]
        atr = h[0] - low[0]
        prev_close = c[0]
        above = None
        pos_stop = pos_take = None
        pending = False
        for i in range(len(c)):
            if pending:
                pending = False
            if pos_stop is not None and (low[i] <= pos_stop or h[i] >= pos_take):
                pos_stop = pos_take = None
                trades += 1
            fast += af * (c[i] - fast)
            slow += aslow * (c[i] - slow)
            tr = max(h[i], prev_close) - min(low[i], prev_close)
            atr += (tr - atr) / 14
            prev_close = c[i]
            now = fast > slow
            if above is not None and now != above:
                if now and pos_stop is None:
                    pos_stop, pos_take = c[i] - 2 * atr, c[i] + 4 * atr
                    pending = True
                elif not now and pos_stop is not None:
                    pos_stop = pos_take = None
                    trades += 1
            above = now
        del o
    return trades


def run_backtesting_py(frame: pl.DataFrame) -> int:
    import warnings

    import pandas as pd
    from backtesting import Backtest, Strategy

    def ema(values, n):
        return pd.Series(values).ewm(span=n, adjust=False).mean().to_numpy()

    def atr(high, low, close, n):
        prev = pd.Series(close).shift(1)
        tr = pd.concat([pd.Series(high) - pd.Series(low), (pd.Series(high) - prev).abs(),
                        (pd.Series(low) - prev).abs()], axis=1).max(axis=1)
        return tr.ewm(alpha=1 / n, adjust=False).mean().to_numpy()

    class Cross(Strategy):
        def init(self):
            self.fast = self.I(ema, self.data.Close, 9)
            self.slow = self.I(ema, self.data.Close, 21)
            self.atr = self.I(atr, self.data.High, self.data.Low, self.data.Close, 14)

        def next(self):
            f0, f1, s0, s1 = self.fast[-1], self.fast[-2], self.slow[-1], self.slow[-2]
            price = self.data.Close[-1]
            if not self.position and f1 <= s1 and f0 > s0:
                self.buy(size=0.2, sl=price - 2 * self.atr[-1], tp=price + 4 * self.atr[-1])
            elif self.position and f1 >= s1 and f0 < s0:
                self.position.close()

    trades = 0
    for symbol_frame in frame.partition_by("symbol", maintain_order=True):
        df = symbol_frame.select(
            pl.col("timestamp").dt.replace_time_zone(None), pl.col("open").alias("Open"),
            pl.col("high").alias("High"), pl.col("low").alias("Low"),
            pl.col("close").alias("Close"), pl.col("volume").alias("Volume"),
        ).to_pandas().set_index("timestamp")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stats = Backtest(df, Cross, cash=100_000, commission=0.0,
                             finalize_trades=True).run()
        trades += int(stats["# Trades"])
    return trades


def run_backtrader(frame: pl.DataFrame) -> int:
    import backtrader as bt

    class Cross(bt.Strategy):
        def __init__(self):
            self.signals = {}
            for d in self.datas:
                fast, slow = bt.ind.EMA(d.close, period=9), bt.ind.EMA(d.close, period=21)
                self.signals[d] = (bt.ind.CrossOver(fast, slow), bt.ind.ATR(d, period=14))
            self.trades = 0

        def notify_trade(self, trade):
            if trade.isclosed:
                self.trades += 1

        def next(self):
            for d, (cross, atr) in self.signals.items():
                pos = self.getposition(d).size
                if not pos and cross[0] > 0:
                    price = d.close[0]
                    self.buy_bracket(data=d, size=10, exectype=bt.Order.Market,
                                     stopprice=price - 2 * atr[0], limitprice=price + 4 * atr[0])
                elif pos and cross[0] < 0:
                    self.close(data=d)

    cerebro = bt.Cerebro(runonce=True, preload=True, stdstats=False)
    for symbol_frame in frame.partition_by("symbol", maintain_order=True):
        df = symbol_frame.select(
            pl.col("timestamp").dt.replace_time_zone(None), "open", "high", "low", "close",
            "volume").to_pandas().set_index("timestamp")
        cerebro.adddata(bt.feeds.PandasData(dataname=df, timeframe=bt.TimeFrame.Minutes))
    cerebro.addstrategy(Cross)
    cerebro.broker.setcash(10_000_000)
    (strategy,) = cerebro.run()
    return strategy.trades


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def timed(runs: dict[str, Callable[[], int]], bars: int, results: dict, repeat: int = 1,
          clock: str = "wall") -> None:
    """The best of `repeat` runs of each, taken in turns (A B C, A B C, ...): a machine whose
    speed drifts (other work, another tenant) slows each of them alike, so their ratios hold
    where back-to-back blocks would each catch a different stretch of it."""
    now = CLOCKS[clock]
    best = dict.fromkeys(runs, math.inf)
    trades = dict.fromkeys(runs, 0)
    for turn in range(repeat):
        for label, fn in runs.items():
            print(f"  running {label} ({turn + 1}/{repeat})...", file=sys.stderr, flush=True)
            started = now()
            trades[label] = fn()
            best[label] = min(best[label], now() - started)
    for label in runs:
        results[label] = (bars / best[label], best[label], trades[label])


@dataclass(frozen=True)
class Case:
    name: str
    seed: int
    volatility: float
    about: str


CASES = (
    Case("today", 5, 1.0, "the default synthetic market"),
    # Choppier minutes around the same trends: the EMAs cross more often, so the seed strategy
    # trades over 4,000 times and the cost of each order (risk, orders, closes) dominates.
    Case("order-heavy", 5, 2.0, "twice the minute noise: per-order cost dominates"),
)
ENGINE = "full engine (risk, orders, sim exchange)"
BARE = "bare per-bar Python loop (reference)"
BT_PY = "backtesting.py"
AIM = 2.5  # the full engine's bars/s over backtesting.py's, on every case


def run_case(case: Case, args, calendar: MarketCalendar) -> tuple[dict, pl.DataFrame, int]:
    sessions = [(s.open, s.close)
                for s in list(calendar.sessions_from(date(2026, 1, 2)))[: args.days]]
    symbols = SYMBOLS[: args.symbols]
    frame = synthetic_frame(symbols, sessions, case.seed, case.volatility)
    path = ROOT / "benchmarks" / ".bench_bars.parquet"
    frame.write_parquet(path)
    bars = load_bars(path).bars
    path.unlink()
    n = len(bars)
    print(f"case {case.name}: {n:,} bars, {len(symbols)} symbols x {len(sessions)} days x 390 "
          f"minutes (seed {case.seed}, volatility {case.volatility:g}: {case.about}); "
          f"{args.clock} clock, best of {args.repeat}")
    results: dict[str, tuple[float, float, int]] = {}
    settings = Settings(symbols=symbols)
    prepared = prepare_frame(frame, calendar, 5)
    screener = Screener(prepared)
    screener.trades(9, 21, 14, 2.0, 4.0)  # indicator columns computed once, as in a sweep
    runs = {
        ENGINE: lambda: len(run_backtest(bars, settings, calendar=calendar).trades),
        "vectorized screen, one combination": lambda: len(screener.trades(9, 21, 14, 2.0, 4.0)),
        BARE: lambda: bare_loop(frame),
    }
    if not args.skip_others:
        runs[BT_PY] = lambda: run_backtesting_py(frame)
        if not args.skip_backtrader:
            runs["backtrader (runonce)"] = lambda: run_backtrader(frame)
    timed(runs, n, results, args.repeat, args.clock)

    width = max(len(k) for k in results)
    bt_py = results.get(BT_PY, (None,))[0]
    bare = results[BARE][0]
    print(f"{'':<{width}}  {'bars/s':>12}  {'seconds':>8}  {'trades':>7}  {'vs backtesting.py':>18}"
          f"  {'vs bare loop':>12}")
    for label, (rate, elapsed, trades) in results.items():
        vs_bt = f"{rate / bt_py:.2f}x" if bt_py else "-"
        print(f"{label:<{width}}  {rate:>12,.0f}  {elapsed:>8.2f}  {trades:>7}  {vs_bt:>18}  "
              f"{rate / bare:>11.2f}x")
    print()
    return results, prepared, n


def versions() -> str:
    """What the figures were measured with: a ratio against a reference holds for its versions
    (and this machine) only."""
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"Python {sys.version.split()[0]}"]
    for name in ("polars", "backtesting", "pandas", "numpy", "backtrader"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} not installed")
    return "measured with " + ", ".join(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--symbols", type=int, default=10)
    p.add_argument("--case", choices=[c.name for c in CASES] + ["all"], default="all")
    p.add_argument("--repeat", type=int, default=1, help="time each the best of N runs")
    p.add_argument("--clock", choices=list(CLOCKS), default="wall",
                   help="wall time, or this process's CPU time (steadier on a busy machine; "
                   "the vectorized screen's threads add up in it)")
    p.add_argument("--combos", type=int, default=100, help="combinations in the timed sweep "
                   "(0: no sweep)")
    p.add_argument("--skip-others", action="store_true", help="skip backtrader/backtesting.py")
    p.add_argument("--skip-backtrader", action="store_true", help="skip backtrader (the slowest)")
    args = p.parse_args()
    logging.disable(logging.WARNING)
    print(versions())
    calendar = MarketCalendar()
    ran = {}
    for case in CASES:
        if args.case in ("all", case.name):
            ran[case.name] = run_case(case, args, calendar)

    if not args.skip_others:
        print(f"full engine vs backtesting.py (aim: at least {AIM:g}x on every case):")
        for name, (results, _, _) in ran.items():
            ratio = results[ENGINE][0] / results[BT_PY][0]
            print(f"  {name:<12} {ratio:5.2f}x  ({results[ENGINE][2]} trades)  "
                  f"{'ok' if ratio >= AIM else 'BELOW THE AIM'}")

    if args.combos <= 0:
        return
    from daytrader.backtest import combinations, parse_sweep

    _, prepared, n = next(iter(ran.values()))
    grid = parse_sweep(["fast=5:14", "slow=20:38:2"])
    combos = combinations(grid, Settings(symbols=SYMBOLS[: args.symbols]))[: args.combos]
    started = time.perf_counter()
    screened = screen(prepared, combos, workers=2)
    wall = time.perf_counter() - started
    per = sum(r.elapsed for r in screened) / len(screened)
    print(f"\nsweep ({next(iter(ran))}): {len(combos)} combinations on 2 processes in {wall:.1f}s "
          f"wall ({n / per:,.0f} bars/s per combination, {n * len(combos) / wall:,.0f} "
          "bar-combinations/s)")


if __name__ == "__main__":
    main()
