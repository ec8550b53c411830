"""One request budget for every REST call to a broker: Alpaca allows 200 per minute per account.

A sliding window of the last minute's requests rather than a refilling bucket: a bucket lets a
full burst plus a minute of refill through in one 60 s window, the window never does. Orders
(submit, cancel, close) may use the whole budget less a safety margin; reads (polls, listings,
account refreshes) stop short of it, so a burst of polling always leaves room for orders. A 429
from the broker pauses everything until the reset time it names.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

ORDER, READ = "order", "read"


class RequestBudget:
    def __init__(self, per_minute: int = 200, *, margin: int = 10, order_reserve: int = 40,
                 window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        """`per_minute` 0 means unlimited (a local test server without a limit)."""
        self.per_minute = per_minute
        self.window = window
        self.clock = clock
        self.order_cap = max(1, per_minute - margin)
        self.read_cap = max(1, self.order_cap - order_reserve)
        self.used = 0  # requests let through, in all
        self.waited = 0.0  # seconds callers spent waiting for room
        self._sent: deque[float] = deque()
        self._paused_until = 0.0

    @property
    def unlimited(self) -> bool:
        return self.per_minute <= 0

    def in_window(self) -> int:
        self._expire(self.clock())
        return len(self._sent)

    def _expire(self, now: float) -> None:
        while self._sent and now - self._sent[0] >= self.window:
            self._sent.popleft()

    def delay(self, kind: str = READ) -> float:
        """Seconds until a request of this kind may go (0: now)."""
        now = self.clock()
        wait = max(0.0, self._paused_until - now)  # a 429 holds even an unlimited budget
        if self.unlimited:
            return wait
        self._expire(now)
        cap = self.order_cap if kind == ORDER else self.read_cap
        if len(self._sent) >= cap:
            # Room opens when enough of the oldest requests leave the window.
            oldest = self._sent[len(self._sent) - cap]
            wait = max(wait, oldest + self.window - now)
        return wait

    async def acquire(self, kind: str = READ) -> None:
        """Waits for room, then counts one request."""
        while (wait := self.delay(kind)) > 0:
            self.waited += wait
            await asyncio.sleep(wait)
        self.used += 1
        if not self.unlimited:
            self._sent.append(self.clock())

    def pause(self, seconds: float) -> None:
        """The broker answered 429: nothing goes until it says the window resets."""
        self._paused_until = max(self._paused_until, self.clock() + max(0.0, seconds))
