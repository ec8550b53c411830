"""Runs the engine on its own asyncio loop in a thread, with thread-safe doors in and out.

The console (and the control API) live on other loops. They read `latest`, an immutable
snapshot republished a few times a second, and send commands that are queued onto the engine's
loop. The halt flag is the one thing set directly from the caller's thread, so `disable` and the
first step of the emergency stop take effect before anything is drawn or sent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from daytrader.engine import Engine
from daytrader.models import OrderIntent
from daytrader.runtime import Runtime
from daytrader.snapshot import CommandResult, EngineSnapshot

log = logging.getLogger(__name__)
T = TypeVar("T")


class EngineHost:
    def __init__(self, runtime: Runtime, publish_interval: float = 0.1) -> None:
        self.runtime = runtime
        self.engine: Engine = runtime.engine
        self.publish_interval = publish_interval
        self.error: BaseException | None = None  # what killed the engine, shown by the console
        self.feed_done = False
        self._latest: EngineSnapshot = self.engine.snapshot()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="engine", daemon=True)

    # -- life ------------------------------------------------------------------------------------
    def start(self) -> EngineHost:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        # A Runner, like asyncio.run: on the way out it cancels what is still pending and closes
        # async generators (the paced feed the run stopped reading) before closing the loop, so
        # nothing is left to be "destroyed but pending" at exit.
        with asyncio.Runner() as runner:
            self._loop = runner.get_loop()
            runner.run(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        publisher = asyncio.create_task(self._publish_forever())
        self._ready.set()
        try:
            await self.runtime.run(self._stop, on_feed_end=self._feed_ended, linger=True)
        except Exception as exc:  # the console shows it; trading must not go on blind
            self.engine.enabled = False
            log.exception("engine stopped by an error")
            self.engine.record("error", "engine", f"ENGINE ERROR: {exc!r}; trading disabled")
            # Published before the error is: whoever sees the error (the console, on its own
            # thread) reads a snapshot that already says DISABLED, never "ENABLED" beside it.
            self.publish()
            self.error = exc
            await self._stop.wait()
        finally:
            publisher.cancel()
            self.publish()
            self.runtime.close("error" if self.error else "stopped")

    def _feed_ended(self) -> None:
        self.feed_done = True
        self.engine.record("info", "data", "feed ended: no more bars; controls stay available")

    async def _publish_forever(self) -> None:
        while True:
            self.publish()
            await asyncio.sleep(self.publish_interval)

    def publish(self) -> EngineSnapshot:
        self._latest = self.engine.snapshot()
        return self._latest

    # -- doors in ----------------------------------------------------------------------------------
    @property
    def latest(self) -> EngineSnapshot:
        return self._latest

    def run(self, coro_factory: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """Runs a coroutine on the engine's loop; the snapshot is republished after it."""
        assert self._loop is not None, "the host is not started"

        async def wrapped() -> T:
            try:
                return await coro_factory()
            finally:
                self.publish()

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop)

    def call(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Runs a plain engine method on the engine's loop."""

        async def as_coro() -> T:
            return fn(*args)

        return self.run(as_coro)

    # -- the engine's commands, by name: each answers a CommandResult ---------------------------
    def enable(self, source: str = "console") -> Future[CommandResult]:
        return self.call(self.engine.enable, source)

    def disable(self, source: str = "console", emergency: bool = False) -> Future[CommandResult]:
        self.engine.enabled = False  # at once, from this thread: nothing new is opened after this
        return self.call(self.engine.disable, source, emergency)

    def emergency_stop(self, source: str = "console") -> Future[CommandResult]:
        self.engine.enabled = False

        async def stop() -> CommandResult:
            report = await self.engine.emergency_stop(source)
            return CommandResult(report.flat, report.message, report)

        return self.run(stop)

    def close_position(self, symbol: str, source: str = "console") -> Future[CommandResult]:
        return self.run(lambda: self.engine.close_position(symbol, source))

    def cancel_order(self, order_id: str, source: str = "console") -> Future[CommandResult]:
        return self.run(lambda: self.engine.cancel_order(order_id, source))

    def submit(self, intent: OrderIntent, source: str = "console") -> Future[CommandResult]:
        async def send() -> CommandResult:
            result = await self.engine.submit(intent, source)
            return CommandResult(result.ok, result.message, result)

        return self.run(send)

    def sync(self, source: str = "console") -> Future[CommandResult]:
        return self.run(lambda: self.engine.sync(source))

    def reset_breaker(self, source: str = "console") -> Future[CommandResult]:
        return self.call(self.engine.reset_breaker, source)

    def set_strategy_enabled(self, name: str, enabled: bool,
                             source: str = "console") -> Future[CommandResult]:
        return self.call(self.engine.set_strategy_enabled, name, enabled, source)
