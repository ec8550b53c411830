"""Engine speed: bar in -> order at the sim broker (p50/p99), and headless replay throughput.

    python benchmarks/engine_latency.py [--bars 100000] [--days 60] [--symbols 10]

1. Latency: the engine processes 100k synthetic bars in memory; for every minute that sends an
   order, the time from the minute's bars arriving to the broker receiving the order.
2. Throughput: `python app.py --headless --replay FILE --speed max` over 10 symbols x 60 days of
   minute bars (234,000 bars) as a user runs it, next to a bare per-bar Python loop computing the
   same EMA crossover over the same bars (the reference, measured in the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daytrader.broker.sim import SimExchange  # noqa: E402
from daytrader.clock import MarketCalendar, SimClock  # noqa: E402
from daytrader.config import Settings  # noqa: E402
from daytrader.data.replay import load_bars  # noqa: E402
from daytrader.data.synthetic import synthetic_bars, synthetic_frame  # noqa: E402
from daytrader.engine import Engine  # noqa: E402

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOGL", "AMD", "SPY", "QQQ")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def latency(total_bars: int, symbols: tuple[str, ...]) -> None:
    calendar = MarketCalendar()
    minutes_needed = total_bars // len(symbols)
    sessions = []
    for session in calendar.sessions_from(date(2026, 1, 2)):
        sessions.append(session)
        if sum(s.minutes for s in sessions) >= minutes_needed:
            break
    settings = Settings(symbols=symbols)
    clock = SimClock(sessions[0].open)
    broker = SimExchange(symbols, calendar, clock, cash=settings.starting_cash,
                         slippage_bps=settings.sim_slippage_bps)
    engine = Engine(settings, broker, calendar, clock)
    minutes = list(synthetic_bars(symbols, [(s.open, s.close) for s in sessions], seed=3))
    minutes = minutes[:minutes_needed]

    arrived = 0.0
    order_latencies: list[float] = []
    submit = broker.submit_order

    async def timed_submit(request):
        order_latencies.append(time.perf_counter() - arrived)
        return await submit(request)

    broker.submit_order = timed_submit  # type: ignore[method-assign]
    minute_times: list[float] = []
    started = time.perf_counter()
    for bars in minutes:
        arrived = time.perf_counter()
        await engine.on_minute(bars)
        minute_times.append(time.perf_counter() - arrived)
    elapsed = time.perf_counter() - started
    bars = sum(len(m) for m in minutes)
    us = 1e6
    print(f"latency: {bars:,} bars ({len(minutes):,} minutes x {len(symbols)} symbols), "
          f"{len(order_latencies)} orders, {elapsed:.2f}s, {bars / elapsed:,.0f} bars/s in memory")
    print(f"  bar in -> order at broker: p50 {percentile(order_latencies, 50) * us:,.0f} us, "
          f"p99 {percentile(order_latencies, 99) * us:,.0f} us, "
          f"max {max(order_latencies) * us:,.0f} us")
    print(f"  one minute of bars processed: p50 {percentile(minute_times, 50) * us:,.0f} us, "
          f"p99 {percentile(minute_times, 99) * us:,.0f} us")


def bare_loop(path: Path) -> tuple[int, float]:
    """The reference: a plain loop over the same bars with the same EMA/ATR crossover, no risk,
    no orders, no exchange."""
    bars = load_bars(path).bars
    a_fast, a_slow = 2 / 10, 2 / 22
    state: dict[str, list] = {}
    signals = 0
    started = time.perf_counter()
    for bar in bars:
        s = state.get(bar.symbol)
        if s is None:
            s = state[bar.symbol] = [bar.close, bar.close, bar.high - bar.low, bar.close, None]
        fast = s[0] = s[0] + a_fast * (bar.close - s[0])
        slow = s[1] = s[1] + a_slow * (bar.close - s[1])
        tr = max(bar.high, s[3]) - min(bar.low, s[3])
        s[2] = (s[2] * 13 + tr) / 14
        s[3] = bar.close
        above = fast > slow
        if s[4] is not None and above != s[4]:
            signals += 1
        s[4] = above
    return len(bars), time.perf_counter() - started


def throughput(days: int, symbols: tuple[str, ...]) -> None:
    calendar = MarketCalendar()
    sessions = [(s.open, s.close) for s in list(calendar.sessions_from(date(2026, 1, 2)))[:days]]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bars.parquet"
        synthetic_frame(symbols, sessions, seed=5).write_parquet(path)
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(ROOT / "app.py"), "--headless", "--replay", str(path), "--speed",
             "max", "--json", "--quiet", "--symbols", ",".join(symbols)],
            capture_output=True, text=True, cwd=tmp, check=True)
        wall = time.perf_counter() - started
        summary = json.loads(proc.stdout)
        n, bare = bare_loop(path)
    engine_rate = summary["bars"] / summary["elapsed_seconds"]
    print(f"throughput: headless --replay --speed max, {summary['bars']:,} bars "
          f"({len(symbols)} symbols x {days} days), {summary['metrics']['trades']} trades")
    print(f"  engine loop: {summary['elapsed_seconds']:.2f}s = {engine_rate:,.0f} bars/s; "
          f"whole command incl. start-up and loading: {wall:.2f}s = {summary['bars'] / wall:,.0f} "
          "bars/s")
    print(f"  reference bare per-bar loop: {n / bare:,.0f} bars/s; "
          f"engine is {n / bare / engine_rate:.1f}x slower than the bare loop")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bars", type=int, default=100_000)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--symbols", type=int, default=10)
    args = p.parse_args()
    symbols = SYMBOLS[: args.symbols]
    asyncio.run(latency(args.bars, symbols))
    throughput(args.days, symbols)
    print(f"(one run each; Python {sys.version.split()[0]} on {sys.platform})")


if __name__ == "__main__":
    main()
