"""Idempotent orders: one decision is one order at the broker, whatever repeats, races or timeouts."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daytrader.broker import BrokerUnavailable
from daytrader.broker.sim import SimExchange
from daytrader.clock import MarketCalendar, SimClock
from daytrader.models import (
    Bar,
    CheckResult,
    OrderIntent,
    OrderRequest,
    OrderStatus,
    OrderType,
    RiskDecision,
    Side,
)
from daytrader.orders import (
    OrderManager,
    SubmitStatus,
    _utc_minute,
    client_order_id,
    plain_decimal,
    within,
)

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 24, 10, 0, 12, tzinfo=NY)
ALPACA_CLIENT_ID_MAX = 128

INTENT = OrderIntent(symbol="AAPL", side=Side.BUY, qty=10, ref_price=Decimal("100.00"),
                     stop_loss=Decimal("98.00"), take_profit=Decimal("105.00"),
                     strategy="ema_crossover", ts=NOW)


def approve(intent: OrderIntent) -> RiskDecision:
    return RiskDecision((CheckResult("max_positions", True, "0", "3"),))


def refuse(intent: OrderIntent) -> RiskDecision:
    return RiskDecision((CheckResult("max_positions", False, "3", "3", "3 positions open, limit 3"),))


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return MarketCalendar()


@pytest.fixture
def exchange(calendar) -> SimExchange:
    clock = SimClock(NOW)
    sim = SimExchange(["AAPL", "MSFT"], calendar, clock, cash=Decimal("100000"))
    sim.on_bars([Bar("AAPL", NOW.replace(second=0) - timedelta(minutes=1), 100, 100, 100, 100, 1000)])
    return sim


def all_orders(exchange: SimExchange):
    """Orders the broker accepted, bracket legs aside."""
    return [o for o in exchange.orders(open_only=False) if o.parent_id is None]


class Edge:
    """The network between the manager and the sim exchange; subclasses break it in one way."""

    in_process = False  # a network in between: its calls can wait (and time out)

    def __init__(self, exchange: SimExchange) -> None:
        self.exchange = exchange
        self.sends: list[str] = []
        self.lookups = 0

    def __getattr__(self, name):
        return getattr(self.exchange, name)

    async def submit_order(self, request: OrderRequest):
        self.sends.append(request.client_order_id)
        return await self.exchange.submit_order(request)

    async def get_order_by_client_id(self, client_order_id: str):
        self.lookups += 1
        return await self.exchange.get_order_by_client_id(client_order_id)


class SlowEdge(Edge):
    """Every send takes a moment, so concurrent sends truly overlap."""

    async def submit_order(self, request: OrderRequest):
        self.sends.append(request.client_order_id)
        await asyncio.sleep(0.01)
        return await self.exchange.submit_order(request)


class AnswerLost(Edge):
    """The order lands at the exchange, then the connection drops before the answer arrives."""

    async def submit_order(self, request: OrderRequest):
        self.sends.append(request.client_order_id)
        await self.exchange.submit_order(request)
        raise BrokerUnavailable("connection reset by peer")


class AnswerNeverComes(Edge):
    """The order lands at the exchange, then the answer hangs until the manager gives up."""

    async def submit_order(self, request: OrderRequest):
        self.sends.append(request.client_order_id)
        await self.exchange.submit_order(request)
        await asyncio.sleep(60)


class FailsOnceBeforeLanding(Edge):
    """The first send never reaches the exchange; the next one goes through."""

    async def submit_order(self, request: OrderRequest):
        self.sends.append(request.client_order_id)
        if len(self.sends) == 1:
            raise BrokerUnavailable("503 service unavailable")
        return await self.exchange.submit_order(request)


class Down(Edge):
    """Nothing gets through: sends hang, lookups fail."""

    async def submit_order(self, request: OrderRequest):
        self.sends.append(request.client_order_id)
        await asyncio.sleep(60)

    async def get_order_by_client_id(self, client_order_id: str):
        self.lookups += 1
        raise BrokerUnavailable("503 service unavailable")


# --- client order ids ----------------------------------------------------------------------------


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_prices_enter_the_id_in_plain_notation_whatever_their_exponent(price):
    assert plain_decimal(price) == f"{price:f}"


def test_the_id_is_the_seed_formula():
    key = "AAPL|buy|10|100.00|202611241500|ema_crossover"  # 10:00 New York is 15:00 UTC
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    assert client_order_id(INTENT) == f"dt-ema_crossove-{digest}"


def test_same_intent_in_the_same_minute_gets_the_same_id():
    later_that_minute = replace(INTENT, ts=NOW.replace(second=59), reason="pressed again")
    assert client_order_id(INTENT) == client_order_id(later_that_minute)


def test_same_intent_in_the_next_minute_gets_a_new_id():
    next_minute = replace(INTENT, ts=NOW.replace(second=0) + timedelta(minutes=1))
    assert client_order_id(INTENT) != client_order_id(next_minute)


def test_the_hour_repeated_when_dst_ends_gives_each_minute_its_own_id():
    """1:30 New York comes twice on 2026-11-01 (EDT, then EST): equal as local times, an hour
    apart as instants. Each is its own minute, however recently the other was asked for."""
    first = datetime(2026, 11, 1, 1, 30, tzinfo=NY)
    second = first.replace(fold=1)
    ids = [client_order_id(replace(INTENT, ts=ts)) for ts in (first, second, first, second)]
    assert ids[0] != ids[1] and ids[:2] == ids[2:]
    key = "AAPL|buy|10|100.00|202611010630|ema_crossover"  # 1:30 EST is 6:30 UTC
    assert ids[1] == f"dt-ema_crossove-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=datetime(1800, 1, 1), max_value=datetime(2200, 1, 1),
                    timezones=st.none() | st.timezones(), allow_imaginary=True))
def test_an_ids_minute_is_the_utc_minute_in_any_zone_and_fold(ts):
    """The minute in an id is the instant's UTC minute, whatever the zone (half-hour and
    45-minute offsets, old local mean time with seconds), the fold or a naive time."""
    utc = ts.astimezone(UTC)
    assert _utc_minute(ts) == f"{utc:%Y%m%d%H%M}"


@pytest.mark.parametrize("change", [
    {"qty": 11},
    {"side": Side.SELL},
    {"symbol": "MSFT"},
    {"strategy": "manual"},
    {"ref_price": Decimal("100.01")},
    {"order_type": OrderType.LIMIT, "limit_price": Decimal("99.50")},
], ids=lambda change: "+".join(change))
def test_a_different_intent_gets_a_different_id(change):
    assert client_order_id(INTENT) != client_order_id(replace(INTENT, **change))


def test_an_intent_without_a_timestamp_cannot_get_an_id():
    with pytest.raises(ValueError, match="timestamp"):
        client_order_id(replace(INTENT, ts=None))


@settings(max_examples=50, deadline=None)
@given(strategy=st.text(min_size=1, max_size=300), symbol=st.text(min_size=1, max_size=20))
def test_the_id_fits_alpacas_128_character_limit(strategy, symbol):
    cid = client_order_id(replace(INTENT, strategy=strategy, symbol=symbol))
    assert 0 < len(cid) <= ALPACA_CLIENT_ID_MAX


# --- one decision, one order ---------------------------------------------------------------------


async def test_submitting_the_same_intent_twice_sends_one_order(exchange):
    manager = OrderManager(exchange)
    first = await manager.submit(INTENT, approve)
    second = await manager.submit(replace(INTENT, ts=NOW.replace(second=40)), approve)

    assert first.status is SubmitStatus.SUBMITTED and first.order.status is OrderStatus.NEW
    assert second.status is SubmitStatus.DUPLICATE
    assert second.order == first.order
    assert second.client_order_id == first.client_order_id
    assert [o.id for o in all_orders(exchange)] == [first.order.id]


async def test_a_hundred_concurrent_identical_intents_send_one_order(exchange):
    manager = OrderManager(exchange)
    results = await asyncio.gather(*(manager.submit(INTENT, approve) for _ in range(100)))

    assert len(all_orders(exchange)) == 1
    statuses = [r.status for r in results]
    assert statuses.count(SubmitStatus.SUBMITTED) == 1
    assert statuses.count(SubmitStatus.DUPLICATE) == 99
    assert {r.order.id for r in results} == {all_orders(exchange)[0].id}


async def test_a_hundred_overlapping_sends_of_one_intent_reach_the_broker_once(exchange):
    edge = SlowEdge(exchange)
    manager = OrderManager(edge)
    results = await asyncio.gather(*(manager.submit(INTENT, approve) for _ in range(100)))

    assert len(edge.sends) == 1
    assert len(all_orders(exchange)) == 1
    assert sorted(r.status for r in results) == [SubmitStatus.DUPLICATE] * 99 + [SubmitStatus.SUBMITTED]
    assert {r.order.id for r in results} == {all_orders(exchange)[0].id}


async def test_an_intent_without_a_timestamp_is_refused_before_sending(exchange):
    edge = Edge(exchange)
    with pytest.raises(ValueError):
        await OrderManager(edge).submit(replace(INTENT, ts=None), approve)
    assert edge.sends == []


# --- risk ----------------------------------------------------------------------------------------


async def test_a_risk_rejected_intent_is_not_sent_and_may_pass_later(exchange):
    edge = Edge(exchange)
    manager = OrderManager(edge)

    refused = await manager.submit(INTENT, refuse)
    assert refused.status is SubmitStatus.RISK_REJECTED and refused.order is None
    assert refused.message == "refused by max_positions: 3 positions open, limit 3"
    assert edge.sends == [] and all_orders(exchange) == []

    passed = await manager.submit(INTENT, approve)  # a position closed meanwhile
    assert passed.status is SubmitStatus.SUBMITTED
    assert len(edge.sends) == 1 and len(all_orders(exchange)) == 1


# --- the broker already has it -------------------------------------------------------------------


async def test_broker_duplicate_id_counts_as_the_first_send_having_landed(exchange):
    cid = client_order_id(INTENT)
    landed = exchange.submit(OrderRequest(cid, "AAPL", Side.BUY, 10, OrderType.MARKET))

    result = await OrderManager(exchange).submit(INTENT, approve)

    assert result.status is SubmitStatus.SUBMITTED
    assert result.order == landed
    assert len(all_orders(exchange)) == 1


# --- lost answers and timeouts -------------------------------------------------------------------


async def test_lost_answer_is_found_by_client_order_id_and_not_sent_again(exchange):
    edge = AnswerLost(exchange)
    result = await OrderManager(edge, timeout=0.05).submit(INTENT, approve)

    assert result.status is SubmitStatus.SUBMITTED
    assert result.order == all_orders(exchange)[0]
    assert len(edge.sends) == 1 and edge.lookups == 1
    assert len(all_orders(exchange)) == 1


async def test_timed_out_send_that_landed_is_found_and_not_sent_again(exchange):
    edge = AnswerNeverComes(exchange)
    result = await OrderManager(edge, timeout=0.05).submit(INTENT, approve)

    assert result.status is SubmitStatus.SUBMITTED
    assert result.order.client_order_id == client_order_id(INTENT)
    assert len(edge.sends) == 1
    assert len(all_orders(exchange)) == 1


async def test_send_that_failed_before_landing_is_retried_once_with_the_same_id(exchange):
    edge = FailsOnceBeforeLanding(exchange)
    result = await OrderManager(edge, timeout=0.05).submit(INTENT, approve)

    assert result.status is SubmitStatus.SUBMITTED
    assert edge.sends == [client_order_id(INTENT)] * 2
    assert edge.lookups == 1  # looked up before the retry
    assert len(all_orders(exchange)) == 1


async def test_broker_down_gives_unknown_and_the_same_intent_is_never_resent(exchange):
    edge = Down(exchange)
    manager = OrderManager(edge, timeout=0.02, attempts=2)

    result = await manager.submit(INTENT, approve)
    assert result.status is SubmitStatus.UNKNOWN
    assert result.order is None and not result.ok
    assert "no answer from the broker" in result.message
    assert result.error_code == BrokerUnavailable.code
    assert len(edge.sends) == 2 and edge.lookups == 2

    again = await manager.submit(replace(INTENT, ts=NOW.replace(second=50)), approve)
    assert again.status is SubmitStatus.DUPLICATE
    assert again.order is None
    assert "unknown" in again.message
    assert len(edge.sends) == 2
    assert all_orders(exchange) == []


# --- broker rejections ---------------------------------------------------------------------------


async def test_broker_rejection_carries_its_code_and_message(exchange):
    too_big = replace(INTENT, qty=5000)  # 500,000 at $100 against 100,000
    result = await OrderManager(exchange).submit(too_big, approve)

    assert result.status is SubmitStatus.BROKER_REJECTED
    assert result.order is None
    assert result.error_code == 40310000
    assert "insufficient buying power" in result.message
    assert all_orders(exchange) == []


# --- the send's timeout, armed only when the broker makes it wait ----------------------------------


async def answers_at_once() -> str:
    return "accepted"


async def answers_after(seconds: float, log: list[str]) -> str:
    try:
        await asyncio.sleep(seconds)
        await asyncio.sleep(0)
        return "accepted later"
    finally:
        log.append("left")


async def fails_after_a_wait() -> str:
    await asyncio.sleep(0)
    raise BrokerUnavailable("connection reset by peer")


async def test_an_answer_given_at_once_needs_no_timer(monkeypatch):
    armed: list[float] = []
    real = asyncio.timeout

    def spy(delay):
        armed.append(delay)
        return real(delay)

    monkeypatch.setattr(asyncio, "timeout", spy)
    assert await within(answers_at_once(), 10.0) == "accepted"
    assert armed == []
    assert await within(answers_after(0, []), 10.0) == "accepted later"
    assert armed == [10.0]


async def test_an_answer_that_waits_is_awaited_to_its_end_within_the_timeout():
    log: list[str] = []
    assert await within(answers_after(0.01, log), 5.0) == "accepted later"
    assert log == ["left"]


async def test_an_answer_that_waits_too_long_times_out_and_the_call_is_abandoned():
    log: list[str] = []
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):
        await within(answers_after(60, log), 0.05)
    assert asyncio.get_running_loop().time() - started < 5
    assert log == ["left"]  # the broker call itself was cancelled, not left running


async def test_an_error_after_a_wait_reaches_the_sender():
    with pytest.raises(BrokerUnavailable, match="connection reset"):
        await within(fails_after_a_wait(), 5.0)


async def test_a_sender_cancelled_while_waiting_cancels_the_call():
    log: list[str] = []
    task = asyncio.ensure_future(within(answers_after(60, log), 30.0))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["left"]
