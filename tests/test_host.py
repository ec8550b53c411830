"""The engine on its own thread and loop: snapshots out, commands in, failures shown."""

from __future__ import annotations

import time
from datetime import datetime

from daytrader.clock import EXCHANGE_TZ
from daytrader.config import Settings
from daytrader.host import EngineHost
from daytrader.models import TradingState
from daytrader.runtime import RunOptions, build_runtime


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def sim_host(duration: str = "390m", speed: float = 0, publish_interval: float = 0.02) -> EngineHost:
    settings = Settings(symbols=("AAPL", "MSFT", "NVDA"))
    now = datetime(2026, 11, 24, 12, 0, tzinfo=EXCHANGE_TZ)
    runtime = build_runtime(settings, RunOptions(speed=speed, duration=duration), lambda: now)
    return EngineHost(runtime, publish_interval=publish_interval)


def test_snapshots_follow_the_engine_and_controls_stay_after_the_feed_ends():
    host = sim_host("120m").start()
    try:
        wait_for(lambda: host.feed_done)
        wait_for(lambda: host.latest.event_seq == host.engine.event_seq)
        assert host.latest.equity_curve, "the snapshot shows the day's equity curve"
        assert host.running
        assert host.call(host.engine.enable, "test").result(5).ok
    finally:
        host.stop()
    assert not host.running


def test_disable_takes_effect_in_the_callers_thread_before_the_engine_runs_it():
    host = sim_host("390m", speed=60).start()  # one bar a second: the engine is mostly idle
    try:
        future = host.disable("test")
        assert host.engine.state is TradingState.DISABLED  # before the queued call has run
        assert future.result(5).ok
        wait_for(lambda: host.latest.state is TradingState.DISABLED)
    finally:
        host.stop()


def test_emergency_stop_through_the_host_ends_flat():
    host = sim_host("60m", speed=120).start()
    try:
        wait_for(lambda: host.latest.positions, timeout=30)
        result = host.emergency_stop("test").result(30)  # every command: a CommandResult
        report = result.detail
        assert result.ok and report.flat, result.message
        assert result.message == report.message
        assert host.latest.positions == () and host.latest.state is TradingState.DISABLED
    finally:
        host.stop()


def test_an_engine_crash_is_recorded_and_disables_trading():
    """The console reads the error and the snapshot from its own thread: the snapshot it gets
    with the error must already say DISABLED. The publisher here is slow, so the last periodic
    snapshot would still say ENABLED."""
    host = sim_host("390m", speed=0, publish_interval=600)

    async def broken(bars):
        raise RuntimeError("boom")

    host.engine.on_minute = broken
    host.start()
    try:
        wait_for(lambda: host.error is not None)
        snapshot = host.latest
        assert snapshot.state is TradingState.DISABLED
        assert any("ENGINE ERROR" in e.message for e in snapshot.events)
        assert host.running, "the host stays up so the console can show the error"
    finally:
        host.stop()


def test_stopping_mid_feed_leaves_no_pending_task_behind(caplog):
    # The console quits while the paced feed waits for its next bar: the feed's generator must
    # be closed on the engine's loop, not found pending when the loop is gone ("Task was
    # destroyed but it is pending!" on every exit).
    import gc
    import logging

    caplog.set_level(logging.ERROR, logger="asyncio")
    host = sim_host("390m", speed=60).start()
    wait_for(lambda: host.latest.equity_curve)
    host.stop()
    assert not host.running
    gc.collect()
    assert not [r for r in caplog.records if "destroyed but it is pending" in r.getMessage()]


def test_the_host_names_every_command_and_each_answers_a_command_result():
    from daytrader.models import OrderIntent, Side
    from daytrader.snapshot import CommandResult

    host = sim_host("60m", speed=120).start()
    try:
        wait_for(lambda: host.latest.last_prices, timeout=30)
        symbol = next(iter(host.latest.last_prices))
        answers = {
            "disable": host.disable("test").result(10),
            "enable": host.enable("test").result(10),
            "submit": host.submit(OrderIntent(symbol, Side.BUY, 1), "test").result(10),
            "sync": host.sync("test").result(10),
            "close": host.close_position("ZZZZ", "test").result(10),
            "cancel": host.cancel_order("sim-nope", "test").result(10),
            "reset": host.reset_breaker("test").result(10),
            "strategy": host.set_strategy_enabled("ema_cross", False, "test").result(10),
        }
        assert all(isinstance(a, CommandResult) for a in answers.values()), answers
        assert answers["submit"].detail.client_order_id.startswith("dt-")
        assert not answers["close"].ok and answers["close"].message == "no position in ZZZZ"
        assert answers["strategy"].message == "strategy ema_cross disabled"
        wait_for(lambda: not host.latest.strategies[0].enabled, timeout=5)
    finally:
        host.stop()
