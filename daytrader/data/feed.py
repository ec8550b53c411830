"""Minute-bar feeds for the engine: the sim default (synthetic, warmed up) and pacing at a speed.

In sim and replay the clock is the data's clock: a feed decides what time it is. At speed N a
minute of market time passes in 60/N seconds of wall time; speed 0 means as fast as possible.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from daytrader.clock import MarketCalendar
from daytrader.data.synthetic import synthetic_bars
from daytrader.models import Bar


@dataclass(frozen=True, slots=True)
class SimFeed:
    start: datetime  # the sim clock's first moment
    warmup: list[Bar]  # history for the indicators, not traded
    minutes: Iterator[list[Bar]]  # the bars to trade, one list per minute


def synthetic_feed(symbols: Iterable[str], calendar: MarketCalendar, now: datetime,
                   seed: int) -> SimFeed:
    """Synthetic bars from the open of the most recent session on, after a warm-up on the
    previous session, so the strategy can trade from its first minutes."""
    symbols = list(symbols)
    first = calendar.latest_session_started(now)
    previous = calendar.previous_session(first.date)
    warmup = [bar for minute in synthetic_bars(symbols, [(previous.open, previous.close)], seed)
              for bar in minute]
    sessions = ((s.open, s.close) for s in calendar.sessions_from(first.date))
    # A different seed for the traded sessions keeps the warm-up independent of them.
    return SimFeed(first.open, warmup, synthetic_bars(symbols, sessions, seed + 1))


async def paced(minutes: Iterable[list[Bar]], speed: float, *, until: datetime | None = None,
                sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                ) -> AsyncIterator[list[Bar]]:
    """Yields each minute at its wall-clock moment (on a fixed schedule, so delays don't add up),
    stopping before the first minute at or after `until`."""
    interval = 60.0 / speed if speed > 0 else 0.0
    started = time.monotonic()
    for index, bars in enumerate(minutes):
        if until is not None and bars and bars[0].ts >= until:
            return
        if interval:
            delay = started + index * interval - time.monotonic()
            if delay > 0:
                await sleep(delay)
        elif index % 10 == 0:
            await sleep(0)  # at full speed, let commands and the API in every ten minutes
        yield bars
