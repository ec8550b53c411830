"""The Alpaca adapter with the real alpaca-py clients against the local Alpaca-compatible server:
every call, every error, and no submit ever sent twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from fake_alpaca import (
    FakeAlpaca,
    Fault,
    broker_config,
    eventually,
    flat_minute,
    paper_engine,
)

from daytrader.broker import (
    BrokerAuthError,
    BrokerRejected,
    BrokerUnavailable,
    DuplicateClientOrderId,
    InsufficientBuyingPower,
    InsufficientQty,
    NotCancelable,
    NotFound,
    RateLimited,
)
from daytrader.broker.alpaca import AlpacaBroker, quiet_client
from daytrader.clock import EXCHANGE_TZ
from daytrader.models import (
    Bar,
    OrderIntent,
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
)
from daytrader.orders import OrderManager, SubmitStatus

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=EXCHANGE_TZ)
SYMBOLS = ("AAPL", "MSFT", "NVDA")


@pytest.fixture
def server(calendar):
    srv = FakeAlpaca(SYMBOLS, calendar, T0).start()
    srv.push_bars(flat_minute(SYMBOLS, T0, 100.0))
    yield srv
    srv.stop()


@pytest.fixture
async def broker(server):
    b = AlpacaBroker(broker_config(server))
    updates = []
    b.set_listener(updates.append)
    b.updates = updates  # type: ignore[attr-defined]
    await b.start()
    yield b
    await b.stop()


def bracket(cid: str, symbol: str = "AAPL", qty: int = 10) -> OrderRequest:
    return OrderRequest(cid, symbol, Side.BUY, qty, OrderType.MARKET,
                        stop_loss=Decimal("98.05"), take_profit=Decimal("104.37"))


async def test_account_clock_calendar_and_assets_convert_exactly(server, broker):
    account = await broker.get_account()
    assert account.cash == Decimal("1000000.00") and isinstance(account.cash, Decimal)
    assert account.equity == account.buying_power == Decimal("1000000.00")
    clock = await broker.get_clock()
    assert clock.is_open and clock.timestamp == T0 + timedelta(minutes=1)
    assert clock.next_close == datetime(2026, 11, 24, 16, 0, tzinfo=EXCHANGE_TZ)
    days = await broker.get_calendar(T0.date(), T0.date() + timedelta(days=3))
    assert [d.date.isoformat() for d in days] == ["2026-11-24", "2026-11-25", "2026-11-27"]
    assert days[2].early_close  # the day after Thanksgiving closes at 13:00
    server.shortable.discard("NVDA")
    asset = await broker.get_asset("NVDA")
    assert asset.tradable and not asset.shortable
    with pytest.raises(NotFound):
        await broker.get_asset("NOPE")


@pytest.fixture
def venue_server(calendar, request):
    """A server whose undocumented behaviour goes the way the test's parameters say."""
    srv = FakeAlpaca(SYMBOLS, calendar, T0, **request.param).start()
    srv.push_bars(flat_minute(SYMBOLS, T0, 100.0))
    yield srv
    srv.stop()


@pytest.mark.parametrize("venue_server", [{"held_listed_as_open": False},
                                          {"held_listed_as_open": True},
                                          {"legs_in_flat_listing": False}], indirect=True)
async def test_a_bracket_entrys_legs_are_known_by_id_whatever_the_listing_shows(venue_server):
    server = venue_server
    broker = AlpacaBroker(broker_config(server))
    broker.updates = []  # type: ignore[attr-defined]
    broker.set_listener(broker.updates.append)
    await broker.start()
    order = await broker.submit_order(bracket("dt-test-1"))
    assert order.status is OrderStatus.NEW and order.role is OrderRole.ENTRY and order.qty == 10
    # The submit's answer names both legs: held until the entry fills.
    assert {(leg.role, leg.status, leg.parent_id) for leg in order.legs} == {
        (OrderRole.STOP_LOSS, OrderStatus.HELD, order.id),
        (OrderRole.TAKE_PROFIT, OrderStatus.HELD, order.id)}
    stop_id = next(leg.id for leg in order.legs if leg.role is OrderRole.STOP_LOSS)
    server.push_bars([Bar("AAPL", T0 + timedelta(minutes=1), 100.07, 100.5, 100.0, 100.2, 900)])
    await eventually(lambda: any(u.fill for u in broker.updates), what="the fill event")
    fill = next(u.fill for u in broker.updates if u.fill)
    assert fill.price == Decimal("100.07") and fill.qty == 10 and fill.role is OrderRole.ENTRY
    assert (await broker.get_order(order.id)).status is OrderStatus.FILLED
    found = await broker.get_order_by_client_id("dt-test-1")
    assert found is not None and found.filled_avg_price == Decimal("100.07")
    assert await broker.get_order_by_client_id("dt-never-sent") is None
    # Alpaca's take-profit works; its stop-loss stays held, and a listing may not show it...
    listed = {(o.role, o.status) for o in await broker.list_orders(open_only=True)}
    if server.venue.legs_in_flat_listing is False:
        assert listed == set()
    elif server.venue.held_listed_as_open:
        assert listed == {(OrderRole.TAKE_PROFIT, OrderStatus.NEW),
                          (OrderRole.STOP_LOSS, OrderStatus.HELD)}
    else:
        assert listed == {(OrderRole.TAKE_PROFIT, OrderStatus.NEW)}
    # ...but by its id it is always there, with its role and price.
    stop = await broker.get_order(stop_id)
    assert (stop.role, stop.status, stop.stop_price) == (OrderRole.STOP_LOSS, OrderStatus.HELD,
                                                         Decimal("98.05"))
    [position] = await broker.list_positions()
    assert (position.symbol, position.qty, position.avg_entry_price, position.last_price) == (
        "AAPL", 10, Decimal("100.07"), Decimal("100.2"))
    held = await broker.get_position("AAPL")
    assert held is not None and (held.qty, held.avg_entry_price) == (10, Decimal("100.07"))
    assert await broker.get_position("MSFT") is None
    await broker.stop()


async def test_legs_hold_the_shares_until_canceled_then_close_one_cancel_all_close_all(
        server, broker):
    a = await broker.submit_order(bracket("dt-a", "AAPL"))
    await broker.submit_order(bracket("dt-b", "MSFT"))
    limit = await broker.submit_order(OrderRequest("dt-c", "NVDA", Side.BUY, 5, OrderType.LIMIT,
                                                   limit_price=Decimal("50.00")))
    server.push_bars(flat_minute(SYMBOLS, T0 + timedelta(minutes=1), 100.0))
    await eventually(lambda: len(server.open_orders()) == 5, what="legs working")
    await broker.cancel_order(limit.id)
    with pytest.raises(NotCancelable, match="not cancelable"):
        await broker.cancel_order(limit.id)
    with pytest.raises(NotFound):
        await broker.cancel_order(str(uuid.uuid4()))
    # The legs hold AAPL's shares: closing is refused until they are canceled (Alpaca's 403).
    with pytest.raises(InsufficientQty, match=r"insufficient qty available for order "
                                              r"\(requested: 10, available: 0\)"):
        await broker.close_position("AAPL")
    with pytest.raises(InsufficientQty):
        await broker.submit_order(OrderRequest("dt-x", "AAPL", Side.SELL, 10, OrderType.MARKET,
                                               position_intent="sell_to_close"))
    for leg in a.legs:
        await broker.cancel_order(leg.id)
    close = await broker.close_position("AAPL")
    assert close.role is OrderRole.EXIT and close.side is Side.SELL and close.qty == 10
    with pytest.raises(NotFound, match="position not found"):
        await broker.close_position("NVDA")
    canceled = await broker.cancel_all()
    assert len(canceled) == 3  # MSFT's two legs and the AAPL close, not filled yet
    server.push_bars(flat_minute(SYMBOLS, T0 + timedelta(minutes=2), 100.0))
    assert server.positions() == {"AAPL": 10, "MSFT": 10}
    closes = await broker.close_all()
    assert sorted((o.symbol, o.role) for o in closes) == [("AAPL", OrderRole.EXIT),
                                                          ("MSFT", OrderRole.EXIT)]
    server.push_bars(flat_minute(SYMBOLS, T0 + timedelta(minutes=3), 100.0))
    assert server.positions() == {} and await broker.list_orders() == []


async def test_a_sell_with_nothing_held_opens_a_short_at_alpaca_unless_it_says_to_close(
        server, broker):
    """What makes a late exit dangerous (Alpaca-API #85, #86), and the intent that guards it."""
    with pytest.raises(InsufficientQty):
        await broker.submit_order(OrderRequest("dt-late-exit", "AAPL", Side.SELL, 7,
                                               OrderType.MARKET, position_intent="sell_to_close"))
    await broker.submit_order(OrderRequest("dt-naked", "AAPL", Side.SELL, 7, OrderType.MARKET))
    server.push_bars(flat_minute(SYMBOLS, T0 + timedelta(minutes=1), 100.0))
    assert server.positions() == {"AAPL": -7}


@pytest.mark.parametrize(("fault", "error", "text"), [
    (Fault("status", 429), RateLimited, "rate limited by Alpaca (429"),
    (Fault("status", 500), BrokerUnavailable, "Alpaca server error 500 on list positions: "
                                              "Internal Server Error"),
    (Fault("status", 503), BrokerUnavailable, "Alpaca server error 503 on list positions: "
                                              "503 Service Temporarily Unavailable"),
    (Fault("drop_before"), BrokerUnavailable, "connection to Alpaca failed or dropped"),
    (Fault("hang", seconds=3), BrokerUnavailable, "no answer from Alpaca in 1s"),
])
async def test_server_faults_become_clear_errors_without_blind_retries(server, broker, fault,
                                                                       error, text):
    server.faults.queued.append(("GET", "/v2/positions", fault))
    started = time.monotonic()
    with pytest.raises(error) as caught:
        await broker.list_positions()
    assert text in str(caught.value)
    assert time.monotonic() - started < 2.5  # no 3 s sleeps inside alpaca-py
    assert server.requests["GET /v2/positions"] == 1  # alpaca-py's own retries are off
    assert await broker.list_positions() == []  # and the next call works


async def test_order_errors_name_the_problem(server, broker):
    with pytest.raises(InsufficientBuyingPower, match="insufficient buying power"):
        await broker.submit_order(OrderRequest("dt-big", "AAPL", Side.BUY, 100_000,
                                               OrderType.MARKET))
    await broker.submit_order(bracket("dt-once"))
    with pytest.raises(DuplicateClientOrderId, match="client_order_id must be unique") as dup:
        await broker.submit_order(bracket("dt-once"))
    assert dup.value.code == 40010001
    with pytest.raises(BrokerRejected, match="asset ZZZZ not found"):
        await broker.submit_order(OrderRequest("dt-z", "ZZZZ", Side.BUY, 1, OrderType.MARKET))
    with pytest.raises(NotFound, match="order not found"):
        await broker.get_order(str(uuid.uuid4()))


@pytest.mark.parametrize(("secret", "forbidden"), [("wrong", True), ("", False)])
async def test_bad_keys_at_start_name_the_key_settings(server, secret, forbidden):
    config = broker_config(server, secret_key=secret or "x",
                           api_key=server.key if forbidden else "PKWRONG")
    b = AlpacaBroker(config)
    with pytest.raises(BrokerAuthError) as caught:
        await b.start()
    message = str(caught.value)
    assert "ALPACA_API_KEY" in message and "ALPACA_SECRET_KEY" in message
    assert ("403 forbidden." if forbidden else "401 unauthorized.") in message
    assert "x" not in message.split("(")[0] and config.secret_key not in message.split(": ")[-1]
    await b.stop()


def test_quiet_client_turns_off_alpaca_pys_blocking_retries():
    from alpaca.trading.client import TradingClient

    client = quiet_client(TradingClient("k", "s", url_override="http://127.0.0.1:9"), 1.5)
    assert client._retry == 0 and client._retry_codes == []
    assert client._session.timeout == 1.5


@pytest.mark.parametrize("kind", ["drop_after", "hang_after"])
async def test_an_order_whose_answer_is_lost_is_looked_up_not_sent_again(server, broker, kind):
    fault = Fault("drop_after") if kind == "drop_after" else Fault("latency", seconds=1.5)
    server.faults.queued.append(("POST", "/v2/orders", fault))
    manager = OrderManager(broker)
    intent = OrderIntent("AAPL", Side.BUY, 10, ref_price=Decimal("100"), ts=T0,
                         stop_loss=Decimal("98"), take_profit=Decimal("104"))
    result = await manager.submit(intent, lambda i: _approve())
    assert result.status is SubmitStatus.SUBMITTED, result.message
    await eventually(lambda: server.inflight == 0, what="the slow request to finish")
    assert server.created[result.client_order_id] == 1
    if kind == "drop_after":
        assert server.order_posts[result.client_order_id] == 1  # found by the lookup
    else:  # the lookup ran before the slow send landed: the retry was refused as a duplicate
        assert server.order_posts[result.client_order_id] == 2


async def test_a_rate_limited_submit_is_looked_up_then_sent_once(server, broker):
    server.faults.queued.append(("POST", "/v2/orders", Fault("status", 429)))
    manager = OrderManager(broker)
    intent = OrderIntent("MSFT", Side.BUY, 3, ref_price=Decimal("100"), ts=T0)
    result = await manager.submit(intent, lambda i: _approve())
    assert result.status is SubmitStatus.SUBMITTED
    assert server.requests["GET /v2/orders:by_client_order_id"] == 1  # looked up first
    assert server.requests["POST /v2/orders"] == 2
    assert server.created[result.client_order_id] == 1


async def test_broker_errors_reach_the_engines_log(server, calendar):
    engine = paper_engine(server, calendar)
    await engine.broker.start()
    await engine.sync("test")
    server.faults.queued.append(("POST", "/v2/orders", Fault("status", 503)))
    server.faults.queued.append(("GET", "/v2/orders:by_client_order_id", Fault("status", 500)))
    server.faults.queued.append(("POST", "/v2/orders", Fault("status", 503)))
    server.faults.queued.append(("GET", "/v2/orders:by_client_order_id", Fault("status", 500)))
    result = await engine.submit(OrderIntent("AAPL", Side.BUY, 5, ref_price=Decimal("100")))
    assert result.status is SubmitStatus.UNKNOWN
    assert "Alpaca server error 503" in engine.events[-1].message
    # Calls in a row failed: the broker shows unhealthy and entries wait for it.
    assert not engine.health["broker"].ok and "3 calls failed" in engine.health["broker"].detail
    paused = await engine.submit(OrderIntent("MSFT", Side.BUY, 9, ref_price=Decimal("100")))
    assert paused.status is SubmitStatus.RISK_REJECTED
    assert "entries paused: broker: Alpaca at http://127.0.0.1" in paused.message
    assert (await engine.sync("test")).ok  # a call that gets through: healthy again
    assert engine.health["broker"].ok and engine.entries_paused() == ""
    bad = await engine.submit(OrderIntent("ZZZZ", Side.BUY, 9, ref_price=Decimal("100")))
    assert bad.status is SubmitStatus.BROKER_REJECTED
    assert "refused by Alpaca (422): asset ZZZZ not found" in engine.events[-1].message
    await engine.sync("test")  # reconciliation settles the unknown send: it never landed
    assert engine.orders.results[result.client_order_id].status is SubmitStatus.NOT_SENT
    await engine.broker.stop()


def _approve():
    from daytrader.models import CheckResult, RiskDecision

    return RiskDecision((CheckResult("test", True, "", ""),))


async def test_trade_stream_auth_that_never_answers_times_out_and_recovers(server, calendar):
    server.trade_auth_hang = True
    engine = paper_engine(server, calendar)
    started = time.monotonic()
    await engine.broker.start(wait=1.0)
    assert time.monotonic() - started < 3
    health = engine.health["trade_stream"]
    assert not health.ok and "no answer to connect/authentication in 0.5s" in health.detail
    assert "trade_stream" in engine.entries_paused()
    result = await engine.submit(OrderIntent("AAPL", Side.BUY, 1, ref_price=Decimal("100")))
    assert result.status is SubmitStatus.RISK_REJECTED and "entries paused" in result.message
    server.trade_auth_hang = False
    await eventually(lambda: engine.health["trade_stream"].ok, what="the stream to connect")
    assert engine.entries_paused() == ""
    await engine.broker.stop()
    await asyncio.sleep(0)
