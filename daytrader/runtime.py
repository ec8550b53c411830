"""Builds what a run needs from settings and options: the engine and its feed, for any front end.

Headless mode, the console and (later) the control API all start trading through here, so they
share one way of choosing the data source, the clock and the broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from daytrader.clock import EXCHANGE_TZ, MarketCalendar
from daytrader.config import Settings
from daytrader.data.feed import SimFeed, paced, synthetic_feed
from daytrader.data.replay import bars_by_minute, load_bars
from daytrader.engine import Engine, build_engine

log = logging.getLogger(__name__)


class UsageError(ValueError):
    """A command-line value that cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    replay: Path | None = None
    speed: float | None = None  # None: the SIM_SPEED setting; 0: as fast as possible
    until: str | None = None  # "HH:MM" (exchange time, first day), ISO datetime, or "close"
    duration: str | None = None  # market time: "90m", "6h", "3d"
    json_summary: bool = False
    quiet: bool = False


def parse_duration(text: str) -> timedelta:
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    text = text.strip().lower()
    try:
        value = float(text[:-1]) if text[-1] in units else float(text)
    except (ValueError, IndexError):
        raise UsageError(f"--duration: expected e.g. 90m, 6h or 2d, got {text!r}") from None
    if value <= 0:
        raise UsageError(f"--duration: must be positive, got {text!r}")
    return timedelta(**{units.get(text[-1], "minutes"): value})


def parse_until(text: str, start: datetime, calendar: MarketCalendar) -> datetime:
    """`--until`: "close" (of the first session), "HH:MM" on the first day, or an ISO time."""
    text = text.strip()
    first = calendar.session_at(start) or calendar.next_session(start)
    if text.lower() == "close":
        return first.close
    try:
        if len(text) <= 5 and ":" in text:
            hour, minute = (int(x) for x in text.split(":"))
            return datetime.combine(first.date, datetime.min.time(), EXCHANGE_TZ).replace(
                hour=hour, minute=minute)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--until: expected close, HH:MM or an ISO date-time, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=EXCHANGE_TZ)


@dataclass
class Runtime:
    settings: Settings
    options: RunOptions
    calendar: MarketCalendar
    feed: SimFeed
    engine: Engine
    source: str
    rejected_bars: dict[str, int] = field(default_factory=dict)
    bars_processed: int = 0

    @property
    def speed(self) -> float:
        return self.settings.sim_speed if self.options.speed is None else self.options.speed

    def until(self) -> datetime | None:
        ends = []
        if self.options.until:
            ends.append(parse_until(self.options.until, self.feed.start, self.calendar))
        if self.options.duration:
            ends.append(self.feed.start + parse_duration(self.options.duration))
        return min(ends) if ends else None

    async def run(self, stop: asyncio.Event | None = None,
                  on_minute: Callable[[], None] | None = None) -> None:
        """Warms up, then feeds the engine minute by minute until the feed ends or `stop`."""
        self.engine.warm_up(self.feed.warmup)
        async for minute in paced(self.feed.minutes, self.speed, until=self.until()):
            await self.engine.on_minute(minute)
            self.bars_processed += len(minute)
            if on_minute is not None:
                on_minute()
            if stop is not None and stop.is_set():
                self.engine.record("info", "engine", "stopped")
                break


def build_runtime(settings: Settings, options: RunOptions,
                  now: Callable[[], datetime] | None = None,
                  calendar: MarketCalendar | None = None) -> Runtime:
    """The engine and feed for sim mode: synthetic bars, or a replay file when given."""
    calendar = calendar or MarketCalendar()
    rejected: dict[str, int] = {}
    if options.replay is not None:
        data = load_bars(options.replay, settings.symbols)
        rejected = dict(data.rejected)
        if not data.bars:
            raise UsageError(f"{options.replay}: no valid bars for {', '.join(settings.symbols)}")
        missing = set(settings.symbols) - set(data.symbols)
        if missing:
            log.warning("%s has no bars for %s", options.replay, ", ".join(sorted(missing)))
        feed = SimFeed(data.bars[0].ts, [], bars_by_minute(data.bars))
        source = str(options.replay)
    else:
        moment = (now or (lambda: datetime.now(EXCHANGE_TZ)))()
        feed = synthetic_feed(settings.symbols, calendar, moment, settings.sim_seed)
        source = f"synthetic (seed {settings.sim_seed})"
    engine = build_engine(settings, calendar, start=feed.start)
    engine.bad_bars.update(rejected)
    return Runtime(settings, options, calendar, feed, engine, source, rejected)
