"""Builds the console for tests: a seeded sim on a fixed session, a frozen wall clock, and helpers
that wait for the engine and the panes to settle (Posting-style app factory)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import datetime

from textual.widgets import RichLog

from app import DayTraderApp
from daytrader.clock import EXCHANGE_TZ, MarketCalendar
from daytrader.config import Settings
from daytrader.host import EngineHost
from daytrader.runtime import RunOptions, build_runtime

SESSION_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=EXCHANGE_TZ)  # feed starts at that day's open
FROZEN_WALL = datetime(2026, 11, 24, 10, 30, 2, tzinfo=EXCHANGE_TZ)


@functools.cache
def shared_calendar() -> MarketCalendar:
    return MarketCalendar()


def make_app(duration: str = "60m", speed: float = 0.0, *, seed: int = 42,
             crash: Exception | None = None,
             settings: Settings | None = None, journal: bool = False) -> DayTraderApp:
    """The console on synthetic bars from the 2026-11-24 open. speed 0 with a duration: the feed
    ends at once and the engine idles (controls stay available); a speed keeps bars coming.
    No journal unless asked (then give settings a data_dir of the test's own): no resume."""
    settings = settings or Settings(sim_seed=seed)
    options = RunOptions(speed=speed, duration=duration, journal=journal)

    def host_factory() -> EngineHost:
        runtime = build_runtime(settings, options, lambda: SESSION_NOON, shared_calendar())
        runtime.engine.wall_clock = lambda: FROZEN_WALL
        if crash is not None:
            async def broken(bars):
                raise crash

            runtime.engine.on_minute = broken
        return EngineHost(runtime, publish_interval=0.02)

    return DayTraderApp(settings, options, host_factory=host_factory, wall_clock=lambda: FROZEN_WALL,
                        poll_interval=0.1)


async def until(pilot, predicate: Callable[[], object], timeout: float = 15.0,
                what: str = "condition") -> None:
    """Lets the app run until `predicate()` is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def settled(pilot) -> None:
    """The feed has ended and the panes show the engine's final snapshot."""
    app: DayTraderApp = pilot.app
    await until(pilot, lambda: app.host is not None and app.host.feed_done, what="the feed to end")
    host = app.host
    await until(pilot, lambda: host.latest.event_seq == host.engine.event_seq, what="a fresh snapshot")
    await until(pilot, lambda: app.snapshot is host.latest or app.snapshot.event_seq == host.engine.event_seq,
                what="the panes to show it")
    app.poll_engine(force=True)
    await log_at_end(pilot)


async def caught_up(pilot) -> None:
    """The panes show everything the engine has recorded (after a command)."""
    app: DayTraderApp = pilot.app
    host = app.host
    await until(pilot, lambda: host.latest.event_seq == host.engine.event_seq, what="a fresh snapshot")
    app.poll_engine(force=True)
    await log_at_end(pilot)


async def log_at_end(pilot) -> None:
    """The event log has scrolled to its newest line (RichLog scrolls after a refresh)."""
    log = pilot.app.main_screen.query_one(RichLog)
    await pilot.pause()
    try:
        await until(pilot, lambda: not log._deferred_renders and log.scroll_y >= log.max_scroll_y,
                    what="the log at its end")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: scroll_y {log.scroll_y} of {log.max_scroll_y}, "
                             f"{len(log._deferred_renders)} deferred, virtual {log.virtual_size}, "
                             f"size {log.size}, auto_scroll {log.auto_scroll}") from None
    await pilot.pause()
