"""Webhook alerts delivered to a local HTTP receiver: what alerts, dedupe, retry, failure."""

from __future__ import annotations

import asyncio
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import at, flat_bars, make_engine

from daytrader.alerts import Alert, Alerter
from daytrader.models import OrderIntent, OrderType, Side


class Receiver:
    """An incoming-webhook endpoint on 127.0.0.1 that fails its first `fail` requests."""

    def __init__(self, fail: int = 0, status: int = 500) -> None:
        self.received: list[dict] = []
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.attempts += 1
                if receiver.attempts <= fail:
                    self.send_response(status)
                    self.end_headers()
                    return
                receiver.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


async def wait_until(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_breaker_trip_posts_one_alert_usable_by_slack_and_discord(calendar, receiver):
    engine = make_engine(calendar, risk_per_trade_pct=100.0)
    alerter = Alerter(engine, receiver.url, backoff=0.01).start()
    try:
        await engine.on_minute(flat_bars(at("09:30"), AAA=100))
        await engine.submit(OrderIntent("AAA", Side.BUY, 500, OrderType.MARKET,
                                        stop_loss=Decimal("1")))
        await engine.on_minute(flat_bars(at("09:31"), AAA=100))
        await engine.on_minute(flat_bars(at("09:32"), AAA=80))  # -20%: trips
        await engine.on_minute(flat_bars(at("09:33"), AAA=79))
        await wait_until(lambda: receiver.received)
        await asyncio.sleep(0.1)
        (payload,) = receiver.received
        assert payload["kind"] == "breaker" and "circuit breaker tripped" in payload["text"]
        assert payload["content"] == payload["text"] and payload["mode"] == "sim"
    finally:
        await alerter.stop()


async def test_emergency_stop_alerts(calendar, receiver):
    engine = make_engine(calendar)
    alerter = Alerter(engine, receiver.url, backoff=0.01).start()
    try:
        await engine.on_minute(flat_bars(at("09:30"), AAA=100))
        await engine.emergency_stop("test", flat_timeout=0.1)
        await wait_until(lambda: receiver.received)
        await asyncio.sleep(0.1)
        # One alert: the halt. The report ("complete", flat) is in the log, not a second alert.
        (payload,) = receiver.received
        assert payload["kind"] == "emergency_stop" and "by test" in payload["text"]
    finally:
        await alerter.stop()


async def test_the_same_alert_is_sent_once_and_the_rate_is_limited(calendar, receiver):
    engine = make_engine(calendar)
    alerter = Alerter(engine, receiver.url, max_per_minute=5, backoff=0.01).start()
    try:
        same = Alert("broker_rejection", "broker error", "order 1 rejected: 403", at("09:31"))
        again = Alert("broker_rejection", "broker error", "order 2 rejected: 403", at("09:32"))
        assert alerter.raise_alert(same) and not alerter.raise_alert(again)  # same but for ids
        for n in range(10):
            alerter.raise_alert(Alert("unhealthy", f"c{n}", f"component {chr(65 + n)} down",
                                      at("09:33")))
        await wait_until(lambda: len(receiver.received) == 5)
        await asyncio.sleep(0.2)
        assert len(receiver.received) == 5 and alerter.dropped == 6
    finally:
        await alerter.stop()


async def test_delivery_is_retried_with_backoff_until_the_receiver_recovers(calendar):
    receiver = Receiver(fail=2)
    engine = make_engine(calendar)
    alerter = Alerter(engine, receiver.url, backoff=0.01).start()
    try:
        alerter.raise_alert(Alert("engine_error", "engine error", "boom", at("09:31")))
        await wait_until(lambda: receiver.received)
        assert receiver.attempts == 3
        assert engine.health["alerts"].ok
    finally:
        await alerter.stop()
        receiver.close()


async def test_a_dead_receiver_is_shown_and_never_blocks_trading(calendar):
    engine = make_engine(calendar)
    alerter = Alerter(engine, "http://127.0.0.1:9/hook", attempts=2, backoff=0.01,
                      timeout=0.5).start()
    try:
        alerter.raise_alert(Alert("engine_error", "engine error", "boom", at("09:31")))
        for minute in range(3):  # the engine keeps trading while delivery fails
            await engine.on_minute(flat_bars(at(f"09:3{minute}"), AAA=100 + minute))
        await wait_until(lambda: "alerts" in engine.health and not engine.health["alerts"].ok)
        assert "webhook failing" in engine.health["alerts"].detail
        assert any(e.kind == "alert" for e in engine.events)
        assert engine.clock.now() == at("09:33")
    finally:
        await alerter.stop()


async def test_a_component_unhealthy_too_long_alerts(calendar, receiver):
    engine = make_engine(calendar)  # no bars yet: "data" is unhealthy
    alerter = Alerter(engine, receiver.url, unhealthy_after=0.0, backoff=0.01).start()
    try:
        alerter.check_health()
        await wait_until(lambda: receiver.received)
        assert receiver.received[0]["kind"] == "unhealthy"
        assert "data unhealthy" in receiver.received[0]["text"]
    finally:
        await alerter.stop()
