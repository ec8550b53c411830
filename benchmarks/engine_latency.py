"""Engine speed: bar in -> order at the sim broker (p50/p99), headless replay throughput, and
the same with the LLM advisor in veto mode.

    python benchmarks/engine_latency.py [--bars 100000] [--days 60] [--symbols 10]
    python benchmarks/engine_latency.py --advisor-only     (section 3 alone)

1. Latency: the engine processes 100k synthetic bars in memory; for every minute that sends an
   order, the time from the minute's bars arriving to the broker receiving the order.
2. Throughput: `python app.py --headless --replay FILE --speed max` over 10 symbols x 60 days of
   minute bars (234,000 bars) as a user runs it, next to a bare per-bar Python loop computing the
   same EMA crossover over the same bars (the reference, measured in the same run).
3. Advisor: the engine with ADVISOR_MODE=veto asking a local OpenAI-compatible server (tests/
   fake_llm.py, a process of its own, the real `openai` client over HTTP) that answers in 300 ms
   (a mix of agree, caution and veto), minutes arriving at a steady pace (default 0.5 s: 120x
   real time). Bar -> order at the broker for advised entries (p50/p99/max, against the
   deadline + 1 ms); whether any minute started late (its lag behind the pace) and how long a
   minute's bars take with and without the advisor, so that no other symbol's bar waits for a
   model. Then a model slower than the deadline (1 s against 0.5 s): every entry goes at the
   deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daytrader.advisor.service import Advisory  # noqa: E402
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


class ModelServer:
    """tests/fake_llm.py in a process of its own (its work never shares the engine's GIL)."""

    def __init__(self, latency: float) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_llm.py"),
                                      "--latency", str(latency)], stdout=subprocess.PIPE,
                                     text=True)
        self.url = self.proc.stdout.readline().strip()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def trading_minutes(symbols: tuple[str, ...], count: int, warmup: int) -> tuple[list, list]:
    calendar = MarketCalendar()
    session = next(iter(calendar.sessions_from(date(2026, 1, 5))))
    minutes = list(synthetic_bars(symbols, [(session.open, session.close)], seed=3))
    return minutes[:warmup], minutes[warmup:warmup + count]


def advised_engine(symbols: tuple[str, ...], start, url: str | None, timeout: float):
    overrides = {} if url is None else {"advisor_mode": "veto", "llm_model": "fake-model",
                                        "llm_base_url": url, "advisor_timeout": timeout,
                                        "advisor_calls_per_hour": 100_000}
    settings = Settings(symbols=symbols, **overrides)
    calendar = MarketCalendar()
    clock = SimClock(start)
    broker = SimExchange(symbols, calendar, clock, cash=settings.starting_cash,
                         slippage_bps=settings.sim_slippage_bps)
    engine = Engine(settings, broker, calendar, clock)
    return engine, Advisory.from_settings(settings, engine)


async def paced_run(engine, minutes: list, pace: float) -> dict:
    """Feeds `minutes` one every `pace` seconds; times each minute and each order."""
    arrived: dict = {}  # the minute's bar time -> when its bars arrived
    to_order: list[float] = []
    submit = engine.broker.submit_order

    async def timed_submit(request):
        intent = engine.orders.intents.get(request.client_order_id)
        if intent is not None and not intent.reduce_only and intent.ts in arrived:
            to_order.append(time.perf_counter() - arrived[intent.ts])
        return await submit(request)

    engine.broker.submit_order = timed_submit  # type: ignore[method-assign]
    overshoot: list[float] = []

    async def reference_timer() -> None:
        """How late a plain timer of this loop fires (the machine's scheduling, for comparison
        with the deadline's)."""
        while True:
            wanted = time.perf_counter() + 0.05
            await asyncio.sleep(0.05)
            overshoot.append(max(0.0, time.perf_counter() - wanted))

    ticker = asyncio.create_task(reference_timer())
    lags, durations = [], []
    held = 0  # minutes that began with an earlier entry still waiting for the model
    started = time.perf_counter()
    for n, bars in enumerate(minutes):
        due = started + n * pace
        if due - time.perf_counter() > 0.002:  # the loop's timer ticks in milliseconds:
            await asyncio.sleep(due - time.perf_counter() - 0.002)
        while time.perf_counter() < due:  # the last two are spun, the loop still turning
            await asyncio.sleep(0)
        begin = time.perf_counter()
        lags.append(max(0.0, begin - due))
        arrived[bars[0].ts] = begin
        held += bool(engine.waiting_entries)
        await engine.on_minute(bars)
        durations.append(time.perf_counter() - begin)
    await engine.settle_entries()
    ticker.cancel()
    return {"lags": lags, "durations": durations, "to_order": to_order, "held": held,
            "overshoot": overshoot}


def show(values: list[float], unit: float = 1000, fmt: str = ",.1f", name: str = "ms") -> str:
    if not values:
        return "n/a"
    p50, p99, top = (percentile(values, 50) * unit, percentile(values, 99) * unit,
                     max(values) * unit)
    return f"p50 {p50:{fmt}} {name}, p99 {p99:{fmt}} {name}, max {top:{fmt}} {name}"


async def advisor_case(symbols: tuple[str, ...], minutes_count: int, pace: float,
                       latency: float, timeout: float) -> None:
    warmup, minutes = trading_minutes(symbols, minutes_count, 60)
    server = ModelServer(latency)
    try:
        engine, advisory = advised_engine(symbols, minutes[0][0].ts, server.url, timeout)
        await advisory.prepare()
        engine.warm_up(b for m in warmup for b in m)
        advised = await paced_run(engine, minutes, pace)
        opinions = list(engine.advice)
        await advisory.aclose()
    finally:
        server.stop()
    plain, _ = advised_engine(symbols, minutes[0][0].ts, None, timeout)
    plain.warm_up(b for m in warmup for b in m)
    alone = await paced_run(plain, minutes, pace)
    verdicts = {v: sum(o.verdict == v for o in opinions) for v in ("agree", "caution", "veto")}
    skipped = sum(o.verdict is None for o in opinions)
    refused = engine.rejections_by_check.get("advisor", 0)
    deadline_ms = timeout * 1000 + 1
    p99 = percentile(advised["to_order"], 99) * 1000 if advised["to_order"] else float("nan")
    print(f"advisor (veto mode), model latency {latency * 1000:.0f} ms, deadline "
          f"{timeout * 1000:.0f} ms: {len(symbols)} symbols x {len(minutes)} minutes, one every "
          f"{pace * 1000:.0f} ms")
    print(f"  {len(opinions)} entries asked: " + ", ".join(f"{k} {v}" for k, v in verdicts.items())
          + f", skipped {skipped}; {refused} refused by the advisor check, "
          f"{len(advised['to_order'])} sent")
    print(f"  bar in -> order at broker (advised entries): {show(advised['to_order'])}; p99 "
          f"{'within' if p99 <= deadline_ms else 'OVER'} the deadline + 1 ms ({deadline_ms:,.0f} ms)")
    print(f"  for reference, a plain 50 ms timer of the same loop fires late by "
          f"{show(advised['overshoot'])} (the machine's scheduling)")
    waited = sum(1 for x in advised["lags"] if x > 0.001) - sum(
        1 for x in alone["lags"] if x > 0.001)
    print(f"  minute start behind its time (the loop's wake-up): advisor on {show(advised['lags'])}"
          f"; off {show(alone['lags'])}; minutes more than 1 ms late, on minus off: {waited}")
    print(f"  minutes that waited for an earlier minute's entry (a model slower than the pace):"
          f" {advised['held']} of {len(minutes)}")
    print(f"  one minute of bars, advisor on:  {show(advised['durations'], 1e6, ',.0f', 'us')}")
    print(f"  one minute of bars, advisor off: {show(alone['durations'], 1e6, ',.0f', 'us')}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bars", type=int, default=100_000)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--symbols", type=int, default=10)
    p.add_argument("--advisor-minutes", type=int, default=120,
                   help="minutes fed to the advised engine (one every --advisor-pace seconds)")
    p.add_argument("--advisor-pace", type=float, default=0.5)
    p.add_argument("--advisor-only", action="store_true", help="section 3 alone")
    p.add_argument("--skip-advisor", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    symbols = SYMBOLS[: args.symbols]
    if not args.advisor_only:
        asyncio.run(latency(args.bars, symbols))
        throughput(args.days, symbols)
    if not args.skip_advisor:
        asyncio.run(advisor_case(symbols, args.advisor_minutes, args.advisor_pace, 0.3, 2.0))
        asyncio.run(advisor_case(symbols, max(5, args.advisor_minutes // 2),
                                 max(args.advisor_pace, 0.6), 1.0, 0.5))
    print(f"(one run each; Python {sys.version.split()[0]} on {sys.platform})")


if __name__ == "__main__":
    main()
