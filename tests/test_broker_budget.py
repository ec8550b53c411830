"""Alpaca's 200 requests a minute, shared by every call: the request budget, 429s honoured, the
emergency stop inside the limit, the account kept fresh, and an unreachable broker at start-up
(one line naming the setting, exit 2)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fake_alpaca import FakeAlpaca, broker_config, eventually, flat_minute, paper_engine

from daytrader.broker import RateLimited
from daytrader.broker.alpaca import AlpacaBroker
from daytrader.broker.budget import ORDER, READ, RequestBudget
from daytrader.clock import EXCHANGE_TZ
from daytrader.models import OrderIntent, Side, Signal
from daytrader.strategy import NoReadings

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=EXCHANGE_TZ)
MINUTE = timedelta(minutes=1)
D = Decimal


# -- the budget itself ------------------------------------------------------------------------------
class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_reads_stop_short_of_the_limit_so_orders_always_have_room():
    clock = FakeTime()
    budget = RequestBudget(200, margin=10, order_reserve=40, clock=clock)
    for _ in range(150):
        assert budget.delay(READ) == 0
        budget._sent.append(clock())
    assert budget.delay(READ) == pytest.approx(60)  # reads wait from 150 in the window...
    assert budget.delay(ORDER) == 0  # ...orders may go up to 190
    clock.now += 1
    budget._sent.extend([clock()] * 40)
    assert budget.delay(ORDER) == pytest.approx(59)  # when the oldest leave the window
    clock.now += 59.5
    assert budget.delay(READ) == 0 and budget.in_window() == 40


async def test_acquire_waits_for_room_and_a_429_pauses_everything():
    budget = RequestBudget(3, margin=0, order_reserve=1, window=0.3)
    started = asyncio.get_running_loop().time()
    for _ in range(4):
        await budget.acquire(ORDER)
    assert asyncio.get_running_loop().time() - started >= 0.29  # the 4th waited for the window
    budget.pause(0.2)
    assert budget.delay(ORDER) >= 0.19
    assert RequestBudget(0).delay(READ) == 0  # 0: no budget


async def test_the_broker_honours_alpacas_429_and_its_reset_header(calendar):
    server = FakeAlpaca(("AAPL",), calendar, T0, rate_limit=5).start()
    try:
        broker = AlpacaBroker(broker_config(server, requests_per_minute=0))  # our budget off
        for _ in range(5):
            await broker.list_positions()
        with pytest.raises(RateLimited, match="rate limited by Alpaca"):
            await broker.list_positions()
        # Remaining 0: every call holds until the window resets (up to a minute here).
        assert broker.budget.delay(ORDER) > 50
        assert server.rate_limited == 1
    finally:
        server.stop()


# -- the emergency stop inside Alpaca's limit ---------------------------------------------------------
@pytest.mark.parametrize("venue", [{}, {"cancel_delay": 0.2, "legs_in_flat_listing": False}],
                         ids=["documented", "slow-cancels"])
async def test_emergency_stop_with_50_positions_and_100_orders_stays_inside_200_a_minute(
        calendar, venue):
    symbols = tuple(f"E{i:02d}" for i in range(50))
    server = FakeAlpaca(symbols, calendar, T0, cash=D("10000000"), instant_fills=True,
                        **venue).start()
    try:
        server.latency = 0.02
        server.push_bars(flat_minute(symbols, T0, 30.0))
        engine = paper_engine(server, calendar)
        await engine.broker.start()
        await engine.sync("test")
        results = await asyncio.gather(*(engine.submit(OrderIntent(
            s, Side.BUY, 100, ref_price=D("30"), stop_loss=D("28"), take_profit=D("35")), "test")
            for s in symbols))
        assert all(r.ok for r in results)
        await eventually(lambda: len(engine.book.positions()) == 50, what="50 positions")
        assert len([o for o in server.open_orders()]) == 100
        report = await engine.emergency_stop("test", flat_timeout=60)
        assert report.flat, report.message
        assert server.positions() == {} and server.open_orders() == []
        assert server.venue.shorts_opened == []
        assert server.rate_limited == 0  # Alpaca never had to say no
        assert server.max_requests_in(60) <= 200
        assert report.broker_requests < 200
        await engine.broker.stop()
    finally:
        server.stop()


# -- the account, refreshed -------------------------------------------------------------------------
class EntersOnce(NoReadings):
    name = "enters-once"

    def __init__(self, signal: Signal) -> None:
        self.signal: Signal | None = signal

    def warm_up(self, bar) -> None:
        pass

    def on_bar(self, bar, position_qty: int) -> Signal | None:
        if self.signal is None or bar.symbol != self.signal.symbol:
            return None
        signal, self.signal = self.signal, None
        return signal


async def test_entries_are_sized_on_buying_power_read_after_the_last_fill(calendar):
    server = FakeAlpaca(("AAPL", "MSFT"), calendar, T0, cash=D("20000"),
                        instant_fills=True).start()
    try:
        server.push_bars(flat_minute(("AAPL", "MSFT"), T0, 100.0))
        engine = paper_engine(server, calendar, max_positions=5, risk_per_trade_pct=50.0)
        await engine.broker.start()
        await engine.sync("start-up")
        assert engine.account.buying_power == D("20000")
        # Money leaves the account outside this engine's view (another order at the account).
        server.submit(symbol="MSFT", side="buy", qty=150)
        server.push_bars(flat_minute(("AAPL", "MSFT"), T0 + MINUTE, 100.0))
        await eventually(lambda: engine.account_stale, what="the fill seen by the engine")
        engine.strategy = EntersOnce(Signal("AAPL", "enter_long", T0 + 2 * MINUTE, D("100"),
                                            stop_loss=D("99"), take_profit=D("102"),
                                            reason="test"))
        bars = flat_minute(("AAPL", "MSFT"), T0 + 2 * MINUTE, 100.0)
        server.push_bars(bars)
        await engine.on_minute(bars)  # the strategy's path: refresh, then size
        assert engine.account.buying_power == D("5000.00")
        [entry] = [o for o in server.all_orders() if o.symbol == "AAPL" and o.parent_id is None]
        assert entry.qty * 100 <= 5000 / 4  # a quarter of the fresh buying power (4 free slots)
        await engine.broker.stop()
    finally:
        server.stop()


async def test_the_account_refresher_runs_after_fills_and_every_interval(calendar):
    server = FakeAlpaca(("AAPL",), calendar, T0).start()
    try:
        server.push_bars(flat_minute(("AAPL",), T0, 100.0))
        engine = paper_engine(server, calendar)
        await engine.broker.start()
        task = asyncio.create_task(engine.keep_account_fresh(interval=0.3))
        await eventually(lambda: server.requests["GET /v2/account"] >= 3, timeout=5,
                         what="refreshes every interval")
        task.cancel()
        await engine.broker.stop()
    finally:
        server.stop()


# -- an unreachable broker at start-up -----------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Silent:
    """A TCP server that accepts connections and never answers (a broker that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def _run_paper(env_changes: dict[str, str], tmp_path: Path, server: FakeAlpaca,
               console: bool = False) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "API_"))}
    env.update(ALPACA_API_KEY=server.key, ALPACA_SECRET_KEY=server.secret,
               ALPACA_BASE_URL=server.url, ALPACA_DATA_URL=server.url,
               ALPACA_STREAM_URL=server.trade_stream_url,
               ALPACA_DATA_STREAM_URL=server.data_stream_url, ALPACA_TIMEOUT="1",
               SYMBOLS="AAPL", DATA_DIR=str(tmp_path))
    env.update(env_changes)
    args = [sys.executable, str(ROOT / "app.py"), "--mode", "paper", "--no-api"]
    if not console:
        args += ["--headless", "--quiet", "--duration", "1m"]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("where", ["ALPACA_BASE_URL", "ALPACA_STREAM_URL", "ALPACA_DATA_URL",
                                   "ALPACA_DATA_STREAM_URL"])
@pytest.mark.parametrize("how", ["refused", "never-answers"])
def test_an_unreachable_endpoint_at_start_is_one_line_and_exit_2(calendar, tmp_path, where, how):
    server = FakeAlpaca(("AAPL",), calendar, T0).start()
    silent = Silent()
    try:
        port = _closed_port() if how == "refused" else silent.port
        scheme = "ws" if "STREAM" in where else "http"
        url = f"{scheme}://127.0.0.1:{port}" + ("/stream" if where == "ALPACA_STREAM_URL" else
                                                "/v2/iex" if "DATA_STREAM" in where else "")
        done = _run_paper({where: url}, tmp_path, server)
    finally:
        silent.close()
        server.stop()
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert f"{where}={url}" in errors[0]


def test_the_console_says_so_before_drawing(calendar, tmp_path):
    server = FakeAlpaca(("AAPL",), calendar, T0).start()
    try:
        url = f"http://127.0.0.1:{_closed_port()}"
        done = _run_paper({"ALPACA_BASE_URL": url}, tmp_path, server, console=True)
    finally:
        server.stop()
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"error: cannot reach Alpaca's trading API at ALPACA_BASE_URL={url}" in done.stderr


def test_ctl_emergency_stop_says_still_working_not_cannot_reach(tmp_path):
    """An engine busy flattening has the request and has not answered: that is not an outage."""
    import os

    silent = Silent()
    env = {k: v for k, v in os.environ.items() if not k.startswith("API_")}
    env.update(API_PORT=str(silent.port), API_TOKEN="t0ken", API_SOCKET="false",
               DATA_DIR=str(tmp_path))
    try:
        done = subprocess.run([sys.executable, str(ROOT / "app.py"), "ctl", "emergency-stop",
                               "--timeout", "1"], env=env, capture_output=True, text=True,
                              timeout=60, cwd=ROOT)
    finally:
        silent.close()
    assert done.returncode == 1, done.stderr
    assert "waiting for the engine's report" in done.stderr
    assert "still working: DayTrader received emergency-stop and is still working after 1s" \
        in done.stderr and "trading is disabled" in done.stderr
    assert "cannot reach" not in done.stderr
    refused = subprocess.run([sys.executable, str(ROOT / "app.py"), "ctl", "emergency-stop",
                              "--timeout", "1"], env={**env, "API_PORT": str(_closed_port())},
                             capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert refused.returncode == 2 and "cannot reach DayTrader" in refused.stderr
