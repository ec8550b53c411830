"""Paper trading under faults, against the local Alpaca-compatible server: idempotency with 1,000
intents, stream loss during fills, restart, and the emergency stop with 50 positions."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from fake_alpaca import FakeAlpaca, Fault, broker_config, eventually, flat_minute, paper_engine

from daytrader.broker.alpaca import AlpacaBroker
from daytrader.clock import EXCHANGE_TZ
from daytrader.models import OrderIntent, OrderRole, OrderStatus, OrderType, Side
from daytrader.orders import SubmitStatus

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=EXCHANGE_TZ)
MINUTE = timedelta(minutes=1)


def engine_positions(engine) -> dict[str, int]:
    return {p.symbol: p.qty for p in engine.book.positions()}


async def test_1000_intents_with_random_faults_never_make_two_orders(calendar):
    symbols = tuple(f"S{i:02d}" for i in range(20))
    # About faults, not the request budget: the server's 200-per-minute limit is off here.
    server = FakeAlpaca(symbols, calendar, T0, cash=Decimal("1000000000"),
                        rate_limit=None).start()
    try:
        server.push_bars(flat_minute(symbols, T0, 50.0))
        broker = AlpacaBroker(broker_config(server, timeout=0.4, requests_per_minute=0))
        engine = paper_engine(server, calendar, broker=broker)
        # About idempotency under faults: entries do not wait out the broker's ill health here
        # (that pause is tested in test_alpaca_broker.py).
        engine.pause_entries_on = ("data", "trade_stream")
        await broker.start()
        await engine.sync("test")
        server.faults.rate = 0.3
        server.faults.methods = ("POST", "GET")
        server.faults.rng = random.Random(6)
        server.faults.kinds = (Fault("latency", seconds=0.05), Fault("latency", seconds=0.6),
                               Fault("status", 429), Fault("status", 500), Fault("status", 503),
                               Fault("drop_before"), Fault("drop_after"),
                               Fault("hang", seconds=0.6))
        rng = random.Random(7)
        intents = []
        for i in range(1000):
            symbol = symbols[i % len(symbols)]
            kind = rng.random()
            if kind < 0.1:
                symbol = "ZZZZ"  # unknown at the broker: rejected
            if kind < 0.85:
                intent = OrderIntent(symbol, Side.BUY, 1 + i, ref_price=Decimal("50"), ts=T0)
            else:  # far below the market: stays open until canceled
                intent = OrderIntent(symbol, Side.BUY, 1 + i, OrderType.LIMIT,
                                     limit_price=Decimal("10.00"), ref_price=Decimal("10"), ts=T0)
            intents.append(intent)
        gate = asyncio.Semaphore(40)

        async def send(intent):
            async with gate:
                return await engine.submit(intent, source="test")

        results = await asyncio.gather(*(send(i) for i in intents))
        cids = [r.client_order_id for r in results]
        assert len(set(cids)) == 1000, "each intent has its own client order id"
        server.faults.rate = 0.0
        await eventually(lambda: server.inflight == 0, what="late requests to land")
        server.push_bars(flat_minute(symbols, T0 + MINUTE, 50.0))  # market orders fill
        await engine.sync("test")  # settles every unknown outcome
        await broker.cancel_all()  # the limit orders end canceled
        await eventually(lambda: not server.open_orders(), what="cancels")
        await eventually(lambda: not engine.open_orders, what="cancel events")
        await engine.sync("test")

        # At the server: no client order id twice, no intent as two orders.
        assert max(server.created.values()) == 1
        assert len(server.all_orders()) == sum(server.created.values())
        # In the engine: every intent ended exactly once: filled, canceled or rejected.
        outcomes = Counter()
        per_cid = Counter(o.client_order_id for o in engine.known_orders.values())
        for intent, cid in zip(intents, cids, strict=True):
            at_server = server.order_for(cid)
            result = engine.orders.results.get(cid)
            if result is None:  # refused before sending: entries paused while the broker failed
                assert at_server is None
                outcomes["paused"] += 1
                continue
            if result.order is not None:
                assert per_cid[cid] == 1
                final = engine.known_orders[result.order.id]
                assert at_server is not None and final.status.value == at_server.status
                assert final.status in (OrderStatus.FILLED, OrderStatus.CANCELED)
                outcomes[final.status.value] += 1
            else:
                assert at_server is None, f"{cid} is at the broker but unknown to the engine"
                assert result.status in (SubmitStatus.BROKER_REJECTED, SubmitStatus.NOT_SENT)
                outcomes[result.status.value] += 1
            if intent.symbol == "ZZZZ":
                assert result.order is None
        assert sum(outcomes.values()) == 1000
        # Every path was taken; with 30% of calls failing the broker often shows unhealthy
        # (3 failures in a row), and entries wait for it (the "paused" ones).
        assert outcomes["filled"] > 600 and outcomes["canceled"] > 100, outcomes
        assert outcomes["paused"] == 0
        assert sum(server.faults.injected.values()) > 300, server.faults.injected
        assert engine_positions(engine) == server.positions()
        await broker.stop()
    finally:
        server.stop()


@pytest.mark.parametrize("drop_after_events", [1, 7])
async def test_stream_lost_during_fills_positions_equal_the_servers_after_reconnect(
        calendar, drop_after_events):
    symbols = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF")
    server = FakeAlpaca(symbols, calendar, T0, split_fills=True).start()
    try:
        server.push_bars(flat_minute(symbols, T0, 20.0))
        engine = paper_engine(server, calendar)
        await engine.broker.start()
        await engine.sync("test")
        for n, symbol in enumerate(symbols):
            result = await engine.submit(OrderIntent(symbol, Side.BUY, 10 + n,
                                                     ref_price=Decimal("20")))
            assert result.ok, result.message
        server.drop_trade_stream_after = drop_after_events  # mid-fill: partial seen, rest lost
        server.push_bars(flat_minute(symbols, T0 + MINUTE, 20.5))
        assert server.events_lost > 0
        await eventually(lambda: engine.broker.reconciliations >= 1, what="reconnect")
        await eventually(lambda: engine_positions(engine) == server.positions(),
                         what="positions to match after the reconnect")
        assert engine.health["trade_stream"].ok
        # Fills after the reconnect are counted once, on top of the reconciled book.
        for symbol in symbols[:3]:
            await engine.close_position(symbol, source="test")
        server.push_bars(flat_minute(symbols, T0 + 2 * MINUTE, 21.0))
        await eventually(lambda: engine_positions(engine) == server.positions(),
                         what="positions after closes")
        assert set(server.positions()) == set(symbols[3:])
        assert engine.book.cash == server.cash()
        await engine.broker.stop()
    finally:
        server.stop()


async def test_restart_keeps_state_sends_nothing_twice_and_protection_stays(calendar):
    symbols = ("AAA", "BBB", "CCC", "DDD")
    server = FakeAlpaca(symbols, calendar, T0).start()
    try:
        server.push_bars(flat_minute(symbols, T0, 40.0))
        first = paper_engine(server, calendar)
        await first.broker.start()
        await first.sync("start-up")
        intents = [OrderIntent(s, Side.BUY, 25, ref_price=Decimal("40"), stop_loss=Decimal("38"),
                               take_profit=Decimal("44"), ts=T0 + MINUTE) for s in symbols[:3]]
        intents.append(OrderIntent("DDD", Side.BUY, 5, OrderType.LIMIT,
                                   limit_price=Decimal("30.00"), ts=T0 + MINUTE))
        for intent in intents:
            assert (await first.submit(intent, "test")).ok
        server.push_bars(flat_minute(symbols, T0 + MINUTE, 40.0))
        await eventually(lambda: len(first.book.positions()) == 3, what="fills")
        before_posts = sum(server.order_posts.values())
        await first.broker.stop()  # the process goes away with positions and open orders

        second = paper_engine(server, calendar)
        await second.broker.start()
        await second.sync("start-up")
        assert engine_positions(second) == server.positions() == {s: 25 for s in symbols[:3]}
        # Every order working at the broker, the held stop-losses its open listing leaves out
        # included.
        assert {o.id for o in second.open_orders.values()} == {o.id for o in server.open_orders()}
        roles = Counter(o.role for o in second.open_orders.values())
        assert roles == {OrderRole.STOP_LOSS: 3, OrderRole.TAKE_PROFIT: 3, OrderRole.ENTRY: 1}
        for p in second.book.positions():  # the protective orders are still in place
            assert (p.stop_loss, p.take_profit) == (Decimal("38.00"), Decimal("44.00"))
        for intent in intents:  # the same decisions again: nothing is sent
            result = await second.submit(intent, "test")
            assert result.status is SubmitStatus.DUPLICATE
        assert sum(server.order_posts.values()) == before_posts
        assert max(server.created.values()) == 1
        # The adopted legs still work: a drop to the stop closes the positions at the broker.
        server.push_bars(flat_minute(symbols, T0 + 2 * MINUTE, 37.5))
        await eventually(lambda: not second.book.positions(), what="stop-loss fills")
        assert server.positions() == {}
        assert {t.exit_reason for t in second.book.trades} == {"stop_loss"}
        await second.broker.stop()
    finally:
        server.stop()


async def test_emergency_stop_with_50_positions_and_100_open_orders_ends_flat(calendar):
    symbols = tuple(f"E{i:02d}" for i in range(50))
    server = FakeAlpaca(symbols, calendar, T0, cash=Decimal("10000000"),
                        instant_fills=True).start()
    try:
        server.push_bars(flat_minute(symbols, T0, 30.0))
        engine = paper_engine(server, calendar)
        await engine.broker.start()
        await engine.sync("test")
        await asyncio.gather(*(engine.submit(OrderIntent(
            s, Side.BUY, 100, ref_price=Decimal("30"), stop_loss=Decimal("28"),
            take_profit=Decimal("35")), "test") for s in symbols))
        await eventually(lambda: len(engine.book.positions()) == 50 and len(engine.open_orders)
                         == 100, what="50 positions with 100 protective orders")
        assert len(server.open_orders()) == 100
        report = await engine.emergency_stop("test", flat_timeout=10)
        assert report.flat, report.message
        assert report.canceled == 100 and report.close_orders == 50
        assert report.disabled_after_ms < 1
        assert server.positions() == {} and server.open_orders() == []
        await eventually(lambda: not engine.book.positions(), what="close fills")
        assert "EMERGENCY STOP complete" in engine.events[-1].message or any(
            "EMERGENCY STOP complete" in e.message for e in engine.events)
        assert not engine.enabled
        await engine.broker.stop()
    finally:
        server.stop()
