"""Console latency under load: 200 positions and 200 open orders changing 20 times a second, and
a 100-symbol watchlist (last, change, volume, the strategy's indicators and next signal) that
moves every second.

Prints key press -> action handled (p50, p99), frames per second, CPU used by the UI thread, and
start-up to first frame of `python app.py` in a pseudo-terminal. Aim: p99 key latency < 50 ms,
first frame < 1 s.

    python benchmarks/ui_latency.py [--seconds 10] [--size 160x48]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import pty
import random
import select
import signal
import statistics
import struct
import subprocess
import sys
import termios
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from fcntl import ioctl
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402
from textual._compositor import CompositorUpdate  # noqa: E402

from app import DayTraderApp  # noqa: E402
from daytrader.clock import EXCHANGE_TZ  # noqa: E402
from daytrader.engine import CommandResult, EngineSnapshot  # noqa: E402
from daytrader.market import Quote  # noqa: E402
from daytrader.metrics import compute  # noqa: E402
from daytrader.models import (  # noqa: E402
    Account,
    CheckResult,
    Health,
    LogEvent,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TradingState,
)
from daytrader.strategy import NextSignal  # noqa: E402

POSITIONS = ORDERS = 200
WATCHLIST = 100  # symbols in the universe: one watchlist row each
UPDATES_PER_SECOND = 20
QUOTES_EVERY = UPDATES_PER_SECOND  # ticks between watchlist updates: once a second


class SyntheticHost:
    """Looks like an EngineHost to the app: `latest` is replaced 20 times a second by a thread,
    every position's last price moves and a tenth of the orders fill a little more each time."""

    def __init__(self) -> None:
        self.error = None
        self.feed_done = False
        self.engine = self
        self.runtime = SimpleNamespace(store=None, calendar=None)  # no journal, no calendar
        self.running = True
        self._stop = threading.Event()
        self._rng = random.Random(7)
        start = datetime(2026, 11, 24, 9, 30, tzinfo=EXCHANGE_TZ)
        self._now = start
        symbols = [f"S{i:03d}" for i in range(POSITIONS)]
        self._positions = [Position(s, 100, Decimal("100.00"), Decimal("100.00"), start,
                                    Decimal("98.00"), Decimal("104.00")) for s in symbols]
        self._orders = [Order(f"o{i}", f"dt-bench-{i:020x}", symbols[i % POSITIONS], Side.SELL,
                              100, OrderType.LIMIT, OrderStatus.NEW, start, OrderRole.TAKE_PROFIT,
                              limit_price=Decimal("104.00")) for i in range(ORDERS)]
        self.universe = tuple(symbols[:WATCHLIST])
        self.quote_updates = 0
        self._quotes = self._make_quotes()
        self.updates = 0
        self.latest = self._snapshot()

    def _make_quotes(self) -> tuple[Quote, ...]:
        """Every symbol of the universe moves: last, change since the open, volume, EMAs, ATR
        and the trigger of its next signal."""
        rng = self._rng
        quotes = []
        for s in self.universe:
            last = 100 + rng.uniform(-2, 2)
            fast, slow = last + rng.uniform(-0.5, 0.5), last + rng.uniform(-0.5, 0.5)
            above = fast > slow
            quotes.append(Quote(
                s, last, 100.0, last + 1, last - 1, 1e6 + self.quote_updates * 1e3,
                self._now, 60 + self.quote_updates,
                {"EMA9": fast, "EMA21": slow, "ATR14": rng.uniform(0.1, 0.5)},
                NextSignal("EMA9 crosses", "exit" if above else "enter_long",
                           last + rng.uniform(-1, 1), not above)))
        return tuple(quotes)

    def _snapshot(self) -> EngineSnapshot:
        account = Account(Decimal("50000"), Decimal("100000"), Decimal("50000"), Decimal("100000"))
        risk = tuple(CheckResult(n, True, "ok", "ok") for n in (
            "trading_enabled", "circuit_breaker", "market_open", "max_positions",
            "risk_per_trade", "buying_power"))
        return EngineSnapshot(
            ts=self._now, mode="sim", state=TradingState.ENABLED, market_open=True,
            market_state="open, closes 16:00 ET in 6h00m", account=account,
            positions=tuple(self._positions), orders=tuple(self._orders), risk=risk,
            breaker_tripped=False, daily_loss_pct=0.0, max_daily_loss_pct=5.0, trades=(),
            equity_curve=((self._now, 100000.0),),
            events=(LogEvent(self._now, "info", "data", f"update {self.updates}", {},
                             self.updates + 1),),
            event_seq=self.updates + 1, metrics=compute([]),
            health=(Health("broker", True, "bench"),), symbols=self.universe,
            quotes=self._quotes, loss_to_breaker=Decimal("5000.00"))

    def _tick(self) -> None:
        self.updates += 1
        self._now += timedelta(seconds=3)
        rng = self._rng
        self._positions = [replace(p, last_price=Decimal(f"{100 + rng.uniform(-2, 2):.2f}"))
                           for p in self._positions]
        for i in rng.sample(range(ORDERS), ORDERS // 10):
            o = self._orders[i]
            self._orders[i] = replace(o, filled_qty=(o.filled_qty + 1) % o.qty,
                                      status=OrderStatus.PARTIALLY_FILLED)
        if self.updates % QUOTES_EVERY == 0:
            self.quote_updates += 1
            self._quotes = self._make_quotes()
        self.latest = self._snapshot()

    def _run(self) -> None:
        while not self._stop.wait(1 / UPDATES_PER_SECOND):
            self._tick()

    # -- what the app calls --------------------------------------------------------------------------
    def start(self) -> SyntheticHost:
        threading.Thread(target=self._run, daemon=True, name="synthetic feed").start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self.running = False

    def _done(self, value) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_result(value)
        return future

    def disable(self, source: str = "console") -> concurrent.futures.Future:
        return self._done(CommandResult(True, "trading disabled"))

    def call(self, fn, *args) -> concurrent.futures.Future:
        return self._done(CommandResult(True, "ok"))


class BenchApp(DayTraderApp):
    CSS_PATH = str(ROOT / "styles.tcss")  # relative paths resolve against this file

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.handled: list[float] = []
        self.frames = 0

    def action_disable(self) -> None:
        self.handled.append(time.perf_counter())
        super().action_disable()

    def _display(self, screen, renderable) -> None:
        # Headless Textual composes each frame but skips turning it into terminal output; do that
        # too, so frames and CPU include all the work a real terminal gets.
        if isinstance(renderable, CompositorUpdate) and not self._batch_count:
            renderable.render_segments(self.console)
            self.frames += 1
        super()._display(screen, renderable)


async def measure_under_load(seconds: float, size: tuple[int, int]) -> dict:
    host = SyntheticHost()
    app = BenchApp(host_factory=lambda: host, poll_interval=0.2)
    async with app.run_test(size=size) as pilot:
        while app.snapshot is None:
            await pilot.pause(0.05)
        await pilot.pause(0.5)
        frames0, updates0, quotes0 = app.frames, host.updates, host.quote_updates
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        rng = random.Random(3)
        sent: list[float] = []
        while time.perf_counter() - wall0 < seconds:
            # As a terminal delivers it: a key event queued to the app at a random moment,
            # whatever the app is doing then (applying a snapshot, laying out, rendering).
            await asyncio.sleep(rng.uniform(0.02, 0.08))
            sent.append(time.perf_counter())
            app.post_message(events.Key("d", "d"))
            if len(sent) % 20 == 0:
                app.clear_notifications()  # toasts would pile up otherwise
        await pilot.pause(0.5)
        latencies = [handled - t0 for t0, handled in zip(sent, app.handled, strict=False)]
        wall = time.perf_counter() - wall0
        cpu = time.thread_time() - cpu0
        result = {
            "wall": wall, "frames": app.frames - frames0, "updates": host.updates - updates0,
            "cpu": cpu, "latencies": latencies, "polls": app.polls,
            "renders": app.query_one("#positions").renders + app.query_one("#orders").renders,
            "watchlist_renders": app.query_one("#watchlist").renders,
            "watchlist_rows": app.query_one("#watchlist").row_count,
            "quote_updates": host.quote_updates - quotes0,
        }
    host.stop()
    return result


def first_frame(size: tuple[int, int], timeout: float = 20.0) -> tuple[float, float]:
    """Seconds from spawning `python app.py` in a pty to the first frame with the panes, and to
    the first frame showing the engine's state."""
    master, slave = pty.openpty()
    ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(size[0]), "LINES": str(size[1])}
    cwd = Path(os.environ.get("TMPDIR", "/tmp")) / f"daytrader-bench-{os.getpid()}"
    cwd.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], stdin=slave, stdout=slave,
                            stderr=slave, env=env, cwd=cwd, start_new_session=True)
    os.close(slave)
    seen = b""
    panes = state = None
    try:
        while time.perf_counter() - t0 < timeout and state is None:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
            if panes is None and b"Positions" in seen:
                panes = time.perf_counter() - t0
            if b"ENABLED" in seen:
                state = time.perf_counter() - t0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the process group this script started
        proc.wait(10)
        os.close(master)
    return panes or float("nan"), state or float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--size", default="160x48")
    args = p.parse_args()
    size = tuple(int(x) for x in args.size.split("x"))
    r = asyncio.run(measure_under_load(args.seconds, size))
    lat = sorted(x * 1000 for x in r["latencies"])
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
    panes, state = first_frame(size)
    print(f"ui_latency: {POSITIONS} positions + {ORDERS} open orders, "
          f"{r['updates'] / r['wall']:.1f} snapshot updates/s; a {r['watchlist_rows']}-symbol "
          f"watchlist, {r['quote_updates'] / r['wall']:.1f} updates/s; terminal "
          f"{size[0]}x{size[1]}, {r['wall']:.1f} s")
    print(f"  key press -> action handled: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {lat[-1]:.1f} ms "
          f"({len(lat)} presses)   aim: p99 < 50 ms")
    print(f"  frames rendered: {r['frames'] / r['wall']:.1f} per second")
    print(f"  UI thread CPU: {r['cpu'] / r['wall'] * 100:.1f}% of one core")
    print(f"  table rows re-rendered: {r['renders']} positions/orders, "
          f"{r['watchlist_renders']} watchlist (cache hits are free)")
    print(f"  start-up to first frame (python app.py in a pty): {panes * 1000:.0f} ms; "
          f"to engine state shown: {state * 1000:.0f} ms   aim: < 1000 ms")


if __name__ == "__main__":
    main()
