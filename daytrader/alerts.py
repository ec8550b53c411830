"""Webhook alerts: breaker trips, emergency stops, broker rejections, long-unhealthy components
and engine errors, posted as JSON that Slack- and Discord-style incoming webhooks accept.

Alerts are deduplicated (the same alert within `dedupe_seconds` is sent once) and rate-limited,
and delivered by a background task with retries and backoff, so a slow or failing receiver never
blocks trading. Delivery trouble is reported as the engine's "alerts" health.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime

import httpx

from daytrader.clock import EXCHANGE_TZ
from daytrader.engine import Engine
from daytrader.models import Health, LogEvent

log = logging.getLogger(__name__)
_NUMBERS = re.compile(r"[0-9]+(\.[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Alert:
    # "breaker", "emergency_stop", "broker_rejection", "unhealthy", "engine_error", "unprotected"
    kind: str
    title: str
    message: str
    ts: datetime

    @property
    def key(self) -> str:
        """What makes two alerts the same: kind and message without its numbers and ids."""
        return f"{self.kind}:{_NUMBERS.sub('#', self.message)}"

    def payload(self, mode: str) -> dict:
        text = f"DayTrader [{mode.upper()}] {self.title}: {self.message}"
        # "text" is what Slack reads, "content" what Discord reads; the rest is for scripts.
        return {"text": text, "content": text[:2000], "kind": self.kind, "title": self.title,
                "message": self.message, "ts": self.ts.isoformat(), "mode": mode}


def alert_for(event: LogEvent) -> Alert | None:
    """The alert an engine event deserves, if any."""
    msg = event.message
    if event.kind == "breaker" and "tripped" in msg:
        return Alert("breaker", "circuit breaker tripped", msg, event.ts)
    # One alert per emergency stop, when it halts trading; its report alerts again only when it
    # did not end flat (an error), never for "complete, flat".
    if event.kind == "control" and msg.startswith("EMERGENCY STOP") and (
            event.data.get("action") == "emergency_stop" or event.level == "error"):
        return Alert("emergency_stop", "emergency stop", msg, event.ts)
    if event.kind == "broker" and event.level == "error":
        return Alert("broker_rejection", "broker error", msg, event.ts)
    if event.kind == "engine" and event.level == "error":
        return Alert("engine_error", "engine error", msg, event.ts)
    if event.kind == "strategy" and event.level == "error":
        return Alert("strategy_error", "strategy disabled", msg, event.ts)
    if event.kind == "protection" and event.level == "error":
        return Alert("unprotected", "position unprotected", msg, event.ts)
    return None


class Alerter:
    def __init__(self, engine: Engine, url: str, *, unhealthy_after: float = 60.0,
                 dedupe_seconds: float = 300.0, max_per_minute: int = 10,
                 attempts: int = 4, backoff: float = 1.0, timeout: float = 5.0,
                 client: httpx.AsyncClient | None = None) -> None:
        self.engine, self.url = engine, url
        self.unhealthy_after, self.dedupe_seconds = unhealthy_after, dedupe_seconds
        self.max_per_minute, self.attempts, self.backoff = max_per_minute, attempts, backoff
        self.client = client or httpx.AsyncClient(timeout=timeout)
        self.queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=1000)
        self.sent: list[Alert] = []
        self.dropped = 0
        self._last_sent: dict[str, float] = {}
        self._recent: deque[float] = deque()
        self._unhealthy_since: dict[str, float] = {}
        self._tasks: list[asyncio.Task] = []

    # -- intake ----------------------------------------------------------------------------------
    def on_event(self, event: LogEvent) -> None:
        alert = alert_for(event)
        if alert is not None:
            self.raise_alert(alert)

    def raise_alert(self, alert: Alert) -> bool:
        """Queues an alert unless it repeats a recent one or the rate limit is reached."""
        now = time.monotonic()
        last = self._last_sent.get(alert.key)
        if last is not None and now - last < self.dedupe_seconds:
            return False
        while self._recent and now - self._recent[0] > 60:
            self._recent.popleft()
        if len(self._recent) >= self.max_per_minute:
            self.dropped += 1
            return False
        self._last_sent[alert.key] = now
        self._recent.append(now)
        try:
            self.queue.put_nowait(alert)
        except asyncio.QueueFull:
            self.dropped += 1
            return False
        return True

    def check_health(self) -> None:
        now = time.monotonic()
        for h in self.engine.snapshot(events=0, orders=0).health:
            if h.name == "alerts":
                continue
            if h.ok:
                self._unhealthy_since.pop(h.name, None)
                continue
            since = self._unhealthy_since.setdefault(h.name, now)
            if now - since >= self.unhealthy_after:
                self.raise_alert(Alert("unhealthy", f"{h.name} unhealthy",
                                       f"{h.name} unhealthy for {now - since:.0f}s: {h.detail}",
                                       datetime.now(EXCHANGE_TZ)))

    # -- delivery --------------------------------------------------------------------------------
    async def _deliver(self, alert: Alert) -> None:
        payload = alert.payload(self.engine.settings.mode)
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self.client.post(self.url, json=payload)
                if response.status_code < 300:
                    self.sent.append(alert)
                    self.engine.health["alerts"] = Health("alerts", True, f"last sent: {alert.title}",
                                                          datetime.now(EXCHANGE_TZ))
                    return
                problem = f"HTTP {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code != 429:
                    break  # the receiver refuses this payload: retrying will not help
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1) * random.uniform(0.8, 1.2))
        self.engine.health["alerts"] = Health("alerts", False, f"webhook failing: {problem}")
        self.engine.record("warning", "alert", f"alert '{alert.title}' not delivered: {problem}")

    async def _sender(self) -> None:
        while True:
            alert = await self.queue.get()
            try:
                await self._deliver(alert)
            finally:
                self.queue.task_done()

    async def _watch_health(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.check_health()

    def start(self) -> Alerter:
        self.engine.listeners.append(self.on_event)
        self.engine.health["alerts"] = Health("alerts", True, "webhook configured")
        self._tasks = [asyncio.create_task(self._sender(), name="alerts"),
                       asyncio.create_task(self._watch_health(), name="alerts-health")]
        return self

    async def stop(self, drain: float = 3.0) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), drain)
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(ValueError):
            self.engine.listeners.remove(self.on_event)
        await self.client.aclose()
