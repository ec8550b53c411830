"""What the screen, the API and `ctl` say is what the broker holds: protective legs known by id
after a stream drop and after kill -9 + restart, UNPROTECTED when a stop is gone (and an alert
after 30 s), and the console's `c` and `ctl close` closing a bracketed paper position."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fake_alpaca import FakeAlpaca, eventually, flat_minute, paper_engine
from ui_factory import until

from app import DayTraderApp
from daytrader.clock import EXCHANGE_TZ
from daytrader.data.feed import SimFeed
from daytrader.host import EngineHost
from daytrader.models import OrderIntent, Side
from daytrader.runtime import RunOptions, Runtime
from widgets.confirm import ConfirmModal
from widgets.positions import PositionsTable

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=EXCHANGE_TZ)
MINUTE = timedelta(minutes=1)
SYMBOLS = ("AAPL", "MSFT")
D = Decimal


def bracket_at_server(server: FakeAlpaca, symbol: str, qty: int = 10) -> None:
    """A bracket entry placed at the account (by DayTrader before a crash, or by hand)."""
    server.submit(symbol=symbol, side="buy", qty=qty, order_class="bracket",
                  stop_loss={"stop_price": "98.00"}, take_profit={"limit_price": "104.00"})


def stop_of(server: FakeAlpaca, symbol: str):
    return next(o for o in server.open_orders() if o.symbol == symbol and o.leg == "stop_loss")


@pytest.fixture
def server(calendar):
    srv = FakeAlpaca(SYMBOLS, calendar, T0, instant_fills=True).start()
    srv.push_bars(flat_minute(SYMBOLS, T0, 100.0))
    yield srv
    srv.stop()


async def test_after_a_stream_drop_the_positions_show_the_legs_working_at_the_broker(server,
                                                                                      calendar):
    engine = paper_engine(server, calendar)
    await engine.broker.start()
    await engine.sync("start-up")
    for symbol in SYMBOLS:
        assert (await engine.submit(OrderIntent(symbol, Side.BUY, 10, ref_price=D("100"),
                                                stop_loss=D("98.00"),
                                                take_profit=D("104.00")))).ok
    server.push_bars(flat_minute(SYMBOLS, T0 + MINUTE, 100.0))
    await eventually(lambda: len(engine.book.positions()) == 2, what="entries")
    # While the stream is down, Alpaca stops listing legs and the MSFT stop is canceled.
    server.venue.legs_in_flat_listing = False
    server.disconnect_trade_streams()
    await eventually(lambda: not engine.health["trade_stream"].ok, what="the drop")
    server.call(server.venue.cancel, stop_of(server, "MSFT").id)
    await eventually(lambda: engine.broker.reconciliations >= 1 and engine.health[
        "trade_stream"].ok, what="the reconnect and its reconciliation")
    await eventually(lambda: not {p.symbol: p for p in engine.positions_view()}["MSFT"].protected,
                     what="MSFT's stop known canceled")
    view = {p.symbol: p for p in engine.positions_view()}
    assert (view["AAPL"].stop_loss, view["AAPL"].take_profit) == (D("98.00"), D("104.00"))
    assert view["AAPL"].stop_order_id == stop_of(server, "AAPL").id
    assert view["MSFT"].stop_loss is None and view["MSFT"].take_profit == D("104.00")
    await engine.broker.stop()


async def test_unprotected_for_30_seconds_is_an_error_and_an_alert(server, calendar):
    from daytrader.alerts import alert_for

    engine = paper_engine(server, calendar)
    wall = [datetime(2026, 11, 24, 10, 5, tzinfo=EXCHANGE_TZ)]
    engine.wall_clock = lambda: wall[0]
    server.submit(symbol="AAPL", side="buy", qty=5)  # no bracket: nothing protects it
    server.push_bars(flat_minute(SYMBOLS, T0 + MINUTE, 100.0))
    await engine.broker.start(stream=False)
    await engine.sync("start-up")
    assert [p.protected for p in engine.positions_view()] == [False]
    assert engine.check_protection() == []
    wall[0] += timedelta(seconds=29)
    assert engine.check_protection() == []
    wall[0] += timedelta(seconds=2)
    assert engine.check_protection() == ["AAPL"]
    event = engine.events[-1]
    assert event.level == "error" and "AAPL UNPROTECTED for 31s" in event.message
    alert = alert_for(event)
    assert alert is not None and alert.kind == "unprotected"
    wall[0] += timedelta(seconds=60)
    assert engine.check_protection() == []  # once per episode
    await engine.broker.stop()


async def test_the_consoles_c_closes_a_bracketed_paper_position(server, calendar, tmp_path):
    bracket_at_server(server, "AAPL")
    server.push_bars(flat_minute(SYMBOLS, T0 + MINUTE, 100.0))
    engine = paper_engine(server, calendar)

    def host_factory() -> EngineHost:
        async def prepare() -> None:
            await engine.broker.start()
            await engine.sync("start-up")

        runtime = Runtime(engine.settings, RunOptions(), calendar, SimFeed(T0, [], iter(())),
                          engine, "paper (test server)", prepare=prepare,
                          shutdown=engine.broker.stop)
        return EngineHost(runtime, publish_interval=0.02)

    app = DayTraderApp(engine.settings, RunOptions(), host_factory=host_factory,
                       poll_interval=0.05)
    async with app.run_test(size=(160, 48)) as pilot:
        positions = app.query_one(PositionsTable)
        await until(pilot, lambda: "AAPL" in positions.keys, what="the adopted position")
        await until(pilot, lambda: "98.00" in positions.row_text("AAPL"), what="its stop")
        positions.focus()
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        await until(pilot, lambda: server.positions() == {} and not server.open_orders(),
                    timeout=10, what="flat at the server")
        await until(pilot, lambda: "AAPL" not in positions.keys, what="the row gone")
    assert server.venue.shorts_opened == []


def _env(server: FakeAlpaca, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "API_"))}
    env.update(ALPACA_API_KEY=server.key, ALPACA_SECRET_KEY=server.secret,
               ALPACA_BASE_URL=server.url, ALPACA_DATA_URL=server.url,
               ALPACA_STREAM_URL=server.trade_stream_url,
               ALPACA_DATA_STREAM_URL=server.data_stream_url, ALPACA_TIMEOUT="3",
               SYMBOLS=",".join(SYMBOLS), DATA_DIR=str(data_dir), TRADING_MODE="paper",
               PYTHONUNBUFFERED="1")
    return env


def _ctl(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "app.py"), "ctl", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def _start(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--mode", "paper",
                             "--headless", "--quiet"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _positions(env: dict[str, str], proc: subprocess.Popen) -> dict[str, dict]:
    deadline = time.monotonic() + 90  # a loaded machine starts Python slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"DayTrader stopped: {proc.stderr.read()}")
        answer = _ctl(env, "positions", "--json")
        if answer.returncode == 0:
            return {p["symbol"]: p for p in json.loads(answer.stdout)}
        time.sleep(0.2)
    raise AssertionError("the control API never answered")


def test_after_kill_9_and_restart_the_legs_are_read_by_id(server, tmp_path):
    """The journal keeps the legs' ids; after a restart they are looked up one by one, so a
    stop the listings no longer show still protects, and one canceled meanwhile reads
    UNPROTECTED (API and ctl). Then `ctl close` and `ctl emergency-stop` end flat."""
    for symbol in SYMBOLS:
        bracket_at_server(server, symbol)
    server.push_bars(flat_minute(SYMBOLS, T0 + MINUTE, 100.0))
    env = _env(server, tmp_path)
    first = _start(env)
    try:
        held = _positions(env, first)
        assert {s: (p["stop_loss"], p["protected"]) for s, p in held.items()} == {
            "AAPL": ("98.00", True), "MSFT": ("98.00", True)}
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    # While DayTrader is down: Alpaca stops listing legs, and MSFT's stop is canceled.
    server.venue.legs_in_flat_listing = False
    server.call(server.venue.cancel, stop_of(server, "MSFT").id)
    second = _start(env)
    try:
        held = _positions(env, second)
        assert (held["AAPL"]["stop_loss"], held["AAPL"]["take_profit"]) == ("98.00", "104.00")
        assert held["AAPL"]["protected"] is True
        assert held["MSFT"]["protected"] is False and held["MSFT"]["stop_loss"] is None
        shown = _ctl(env, "positions")
        assert shown.returncode == 0
        lines = {line.split()[0]: line for line in shown.stdout.splitlines()}
        assert "stop 98.00" in lines["AAPL"]
        assert "UNPROTECTED" in lines["MSFT"]
        closed = _ctl(env, "close", "AAPL")
        assert closed.returncode == 0, closed.stdout + closed.stderr
        assert "close AAPL: canceled 2" in closed.stdout
        assert "AAPL" not in server.positions()
        stop = _ctl(env, "emergency-stop")
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "EMERGENCY STOP complete: trading disabled, flat, no open orders" in stop.stdout
        assert "broker requests" in stop.stdout
        assert "waiting for the engine's report" in stop.stderr
        assert server.positions() == {} and server.open_orders() == []
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(15)
        except subprocess.TimeoutExpired:
            second.kill()
    assert server.venue.shorts_opened == []
