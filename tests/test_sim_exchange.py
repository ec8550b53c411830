"""The sim exchange behaves like the broker: next-bar fills, brackets (OCO), rejections, cancels, account."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from daytrader.broker import (
    BrokerRejected,
    DuplicateClientOrderId,
    InsufficientBuyingPower,
    InsufficientQty,
    MarketClosed,
    NotCancelable,
    NotFound,
    UnknownSymbol,
)
from daytrader.broker.sim import SimExchange
from daytrader.clock import MarketCalendar, SimClock
from daytrader.models import (
    Bar,
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
)

NY = ZoneInfo("America/New_York")
SESSION_MINUTE = datetime(2026, 11, 24, 10, 0, tzinfo=NY)  # a Tuesday, regular session
CASH = Decimal("100000")
D = Decimal


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return MarketCalendar()


class Venue:
    """A SimExchange on the real calendar with a sim clock, the updates it sent, and a bar feed."""

    def __init__(self, calendar: MarketCalendar, start: datetime = SESSION_MINUTE,
                 symbols: tuple[str, ...] = ("AAPL", "MSFT"), **options) -> None:
        self.clock = SimClock(start)
        self.exchange = SimExchange(symbols, calendar, self.clock, cash=CASH, **options)
        self.updates: list[OrderUpdate] = []
        self.exchange.set_listener(self.updates.append)

    def seed(self, symbol: str = "AAPL", price: float = 100.0) -> None:
        """The bar that closed just before the clock: gives the symbol a last price."""
        ts = self.clock.now() - timedelta(minutes=1)
        self.exchange.on_bars([Bar(symbol, ts, price, price, price, price, 1000)])

    def bar(self, open: float, high: float, low: float, close: float, symbol: str = "AAPL") -> Bar:
        """Trades the current minute, then moves the clock to the next one."""
        bar = Bar(symbol, self.clock.now(), open, high, low, close, 1000)
        self.exchange.on_bars([bar])
        self.clock.advance(timedelta(minutes=1))
        return bar

    def submit(self, side: Side = Side.BUY, qty: int = 100, symbol: str = "AAPL",
               order_type: OrderType = OrderType.MARKET, cid: str | None = None, **prices):
        cid = cid or f"t-{len(self.exchange.orders(open_only=False)) + 1}"
        return self.exchange.submit(OrderRequest(cid, symbol, side, qty, order_type, **prices))

    def order(self, order_id: str):
        return self.exchange._get(order_id).order

    def legs(self, parent_id: str) -> dict[OrderRole, object]:
        return {o.role: o for o in self.exchange.orders(open_only=False) if o.parent_id == parent_id}

    def fills(self):
        return [u.fill for u in self.updates if u.fill is not None]

    def events(self, order_id: str) -> list[str]:
        return [u.event for u in self.updates if u.order.id == order_id]

    @property
    def cash(self) -> Decimal:
        return self.exchange.account().cash

    def qty(self, symbol: str = "AAPL") -> int:
        return self.exchange.book.qty(symbol)


@pytest.fixture
def venue(calendar) -> Venue:
    v = Venue(calendar)
    v.seed()
    return v


# --- market orders ------------------------------------------------------------------------------


def test_market_order_waits_for_the_next_bar_and_fills_at_its_open(venue):
    order = venue.submit()
    assert order.status is OrderStatus.NEW
    assert venue.fills() == [] and venue.qty() == 0 and venue.cash == CASH

    bar = venue.bar(101.0, 102.0, 100.5, 101.5)

    [fill] = venue.fills()
    assert fill.price == D("101.00") and fill.qty == 100 and fill.ts == bar.ts
    assert venue.order(order.id).status is OrderStatus.FILLED
    assert venue.order(order.id).filled_avg_price == D("101.00")
    assert venue.qty() == 100
    assert venue.cash == CASH - D("10100.00")


def test_market_buy_pays_slippage_above_the_open_and_commission_per_share(calendar):
    venue = Venue(calendar, slippage_bps=10, commission_per_share=D("0.005"))
    venue.seed()
    venue.submit(qty=100)
    venue.bar(100.0, 100.5, 99.5, 100.2)

    [fill] = venue.fills()
    assert fill.price == D("100.10")  # 10 bps against the buyer
    assert fill.commission == D("0.50")
    assert venue.cash == CASH - D("10010.00") - D("0.50")


def test_market_sell_pays_slippage_below_the_open(calendar):
    venue = Venue(calendar, slippage_bps=10, commission_per_share=D("0.005"))
    venue.seed()
    venue.submit(Side.BUY, 100)
    venue.bar(100.0, 100.5, 99.5, 100.0)
    venue.submit(Side.SELL, 100)
    venue.bar(100.0, 100.5, 99.5, 100.0)

    buy, sell = venue.fills()
    assert sell.price == D("99.90")  # 10 bps against the seller
    assert venue.qty() == 0
    assert venue.cash == CASH - D("10010.00") + D("9990.00") - D("1.00")
    [trade] = venue.exchange.book.trades
    assert trade.pnl == D("-20.00") and trade.commission == D("1.00")


# --- limit and stop orders -----------------------------------------------------------------------


def test_limit_buy_fills_at_the_open_when_the_bar_opens_below_the_limit(venue):
    order = venue.submit(order_type=OrderType.LIMIT, limit_price=D("100.00"))
    venue.bar(99.0, 99.5, 98.5, 99.2)
    assert venue.order(order.id).filled_avg_price == D("99.00")


def test_limit_buy_fills_at_the_limit_when_only_the_low_reaches_it(venue):
    order = venue.submit(order_type=OrderType.LIMIT, limit_price=D("99.50"))
    venue.bar(100.0, 100.2, 99.3, 99.8)
    assert venue.order(order.id).filled_avg_price == D("99.50")


def test_limit_buy_rests_when_the_bar_never_reaches_it(venue):
    order = venue.submit(order_type=OrderType.LIMIT, limit_price=D("99.00"))
    venue.bar(100.0, 100.5, 99.01, 100.2)
    assert venue.order(order.id).status is OrderStatus.NEW
    assert venue.fills() == [] and venue.qty() == 0


def test_limit_orders_take_no_slippage(calendar):
    venue = Venue(calendar, slippage_bps=50)
    venue.seed()
    order = venue.submit(order_type=OrderType.LIMIT, limit_price=D("99.50"))
    venue.bar(100.0, 100.2, 99.3, 99.8)
    assert venue.order(order.id).filled_avg_price == D("99.50")


def _long_100_at_100(venue: Venue) -> None:
    venue.submit(Side.BUY, 100)
    venue.bar(100.0, 100.0, 100.0, 100.0)
    assert venue.qty() == 100


def test_stop_sell_fills_at_the_open_when_the_bar_gaps_through_it(venue):
    _long_100_at_100(venue)
    stop = venue.submit(Side.SELL, 100, order_type=OrderType.STOP, stop_price=D("98.00"))
    assert stop.role is OrderRole.EXIT
    venue.bar(97.0, 97.5, 96.5, 97.2)
    assert venue.order(stop.id).filled_avg_price == D("97.00")
    assert venue.qty() == 0


def test_stop_sell_fills_at_the_stop_when_the_range_reaches_it(venue):
    _long_100_at_100(venue)
    stop = venue.submit(Side.SELL, 100, order_type=OrderType.STOP, stop_price=D("98.00"))
    venue.bar(99.0, 99.5, 97.5, 98.5)
    assert venue.order(stop.id).filled_avg_price == D("98.00")


def test_stop_sell_rests_while_the_price_stays_above_it(venue):
    _long_100_at_100(venue)
    stop = venue.submit(Side.SELL, 100, order_type=OrderType.STOP, stop_price=D("98.00"))
    venue.bar(99.0, 99.5, 98.01, 98.5)
    assert venue.order(stop.id).status is OrderStatus.NEW
    assert venue.qty() == 100


# --- brackets ------------------------------------------------------------------------------------


def _bracket(venue: Venue, stop: str = "98.00", take: str = "105.00", **kw):
    return venue.submit(Side.BUY, 100, stop_loss=D(stop), take_profit=D(take), **kw)


def test_bracket_legs_are_held_until_the_entry_fills(venue):
    parent = _bracket(venue, order_type=OrderType.LIMIT, limit_price=D("99.00"))
    legs = venue.legs(parent.id)
    assert {r: o.status for r, o in legs.items()} == {
        OrderRole.STOP_LOSS: OrderStatus.HELD, OrderRole.TAKE_PROFIT: OrderStatus.HELD}
    assert legs[OrderRole.STOP_LOSS].side is Side.SELL
    assert legs[OrderRole.STOP_LOSS].order_type is OrderType.STOP
    assert legs[OrderRole.STOP_LOSS].stop_price == D("98.00")
    assert legs[OrderRole.TAKE_PROFIT].order_type is OrderType.LIMIT
    assert legs[OrderRole.TAKE_PROFIT].limit_price == D("105.00")

    venue.bar(100.0, 106.0, 99.5, 100.0)  # would hit the take-profit, but the entry rests
    assert venue.order(parent.id).status is OrderStatus.NEW
    assert all(o.status is OrderStatus.HELD for o in venue.legs(parent.id).values())
    assert venue.fills() == []

    venue.bar(99.5, 100.0, 98.5, 99.5)  # entry fills at 99; legs go live
    assert venue.order(parent.id).status is OrderStatus.FILLED
    legs = venue.legs(parent.id)
    # As at Alpaca (shared/notes/alpaca.md): only the take-profit turns new; the stop-loss
    # stays held, with no update, until it triggers.
    assert legs[OrderRole.TAKE_PROFIT].status is OrderStatus.NEW
    assert venue.events(legs[OrderRole.TAKE_PROFIT].id) == ["new"]
    assert legs[OrderRole.STOP_LOSS].status is OrderStatus.HELD
    assert venue.events(legs[OrderRole.STOP_LOSS].id) == []
    assert venue.qty() == 100


def test_the_held_stop_loss_triggers_and_fills_from_held(venue):
    parent = _bracket(venue)
    venue.bar(100.0, 101.0, 99.5, 100.5)  # entry fills at 100
    for _ in range(3):  # bars between the legs touch neither
        venue.bar(100.0, 101.0, 98.5, 100.0)
    stop = venue.legs(parent.id)[OrderRole.STOP_LOSS]
    assert stop.status is OrderStatus.HELD and venue.qty() == 100

    venue.bar(99.0, 99.5, 97.0, 97.5)

    legs = venue.legs(parent.id)
    assert legs[OrderRole.STOP_LOSS].status is OrderStatus.FILLED
    assert legs[OrderRole.STOP_LOSS].filled_avg_price == D("98.00")
    assert venue.events(stop.id) == ["fill"]  # straight from held, as at Alpaca
    assert legs[OrderRole.TAKE_PROFIT].status is OrderStatus.CANCELED
    assert venue.events(legs[OrderRole.TAKE_PROFIT].id) == ["new", "canceled"]
    assert venue.qty() == 0 and venue.exchange.orders() == []


def test_a_stop_loss_only_bracket_stays_held_and_still_fills(venue):
    parent = venue.submit(Side.BUY, 100, stop_loss=D("98.00"))
    venue.bar(100.0, 101.0, 99.5, 100.5)
    [stop] = venue.legs(parent.id).values()
    assert stop.status is OrderStatus.HELD and venue.events(stop.id) == []

    venue.bar(97.0, 97.5, 96.5, 97.2)  # gaps through the stop: fills at the open

    assert venue.order(stop.id).status is OrderStatus.FILLED
    assert venue.order(stop.id).filled_avg_price == D("97.00")
    assert venue.events(stop.id) == ["fill"]
    assert venue.qty() == 0


def test_canceling_the_held_stop_loss_leaves_the_take_profit_working(venue):
    parent = _bracket(venue)
    venue.bar(100.0, 101.0, 99.5, 100.5)
    stop = venue.legs(parent.id)[OrderRole.STOP_LOSS]
    assert stop.status is OrderStatus.HELD

    venue.exchange.cancel(stop.id)
    assert venue.order(stop.id).status is OrderStatus.CANCELED
    assert venue.events(stop.id) == ["canceled"]
    with pytest.raises(NotCancelable):
        venue.exchange.cancel(stop.id)

    venue.bar(99.0, 99.5, 97.0, 97.5)  # through the old stop: nothing fills
    assert venue.fills()[-1].role is OrderRole.ENTRY and venue.qty() == 100
    venue.bar(101.0, 105.5, 100.5, 105.2)
    take = venue.legs(parent.id)[OrderRole.TAKE_PROFIT]
    assert take.status is OrderStatus.FILLED and take.filled_avg_price == D("105.00")
    assert venue.qty() == 0


def test_take_profit_fill_cancels_the_stop_leg(venue):
    parent = _bracket(venue)
    venue.bar(100.0, 101.0, 99.5, 100.5)
    venue.bar(101.0, 105.5, 100.5, 105.2)

    legs = venue.legs(parent.id)
    assert legs[OrderRole.TAKE_PROFIT].status is OrderStatus.FILLED
    assert legs[OrderRole.TAKE_PROFIT].filled_avg_price == D("105.00")
    assert legs[OrderRole.STOP_LOSS].status is OrderStatus.CANCELED
    assert venue.events(legs[OrderRole.STOP_LOSS].id) == ["canceled"]  # from held
    assert venue.qty() == 0
    assert venue.cash == CASH + D("500.00")
    [trade] = venue.exchange.book.trades
    assert trade.exit_reason == "take_profit" and trade.pnl == D("500.00")
    assert trade.entry_price == D("100.00") and trade.exit_price == D("105.00")


def test_stop_loss_fill_cancels_the_take_profit_leg(venue):
    parent = _bracket(venue)
    venue.bar(100.0, 101.0, 99.5, 100.5)
    venue.bar(99.0, 99.5, 97.0, 97.5)

    legs = venue.legs(parent.id)
    assert legs[OrderRole.STOP_LOSS].status is OrderStatus.FILLED
    assert legs[OrderRole.STOP_LOSS].filled_avg_price == D("98.00")
    assert legs[OrderRole.TAKE_PROFIT].status is OrderStatus.CANCELED
    assert venue.qty() == 0
    assert venue.cash == CASH - D("200.00")
    [trade] = venue.exchange.book.trades
    assert trade.exit_reason == "stop_loss" and trade.pnl == D("-200.00")


def test_bar_reaching_both_legs_fills_the_stop_loss(venue):
    parent = _bracket(venue)
    venue.bar(100.0, 100.5, 99.5, 100.0)
    venue.bar(100.0, 106.0, 97.0, 104.0)  # which came first is unknowable: assume the worst

    legs = venue.legs(parent.id)
    assert legs[OrderRole.STOP_LOSS].status is OrderStatus.FILLED
    assert legs[OrderRole.TAKE_PROFIT].status is OrderStatus.CANCELED
    assert venue.exchange.book.trades[-1].exit_reason == "stop_loss"
    assert venue.cash == CASH - D("200.00")


def test_bar_opening_beyond_the_take_profit_fills_it_at_the_open_even_if_the_stop_is_reached(venue):
    parent = _bracket(venue)
    venue.bar(100.0, 100.5, 99.5, 100.0)
    venue.bar(106.0, 106.5, 97.0, 97.5)

    legs = venue.legs(parent.id)
    assert legs[OrderRole.TAKE_PROFIT].status is OrderStatus.FILLED
    assert legs[OrderRole.TAKE_PROFIT].filled_avg_price == D("106.00")
    assert legs[OrderRole.STOP_LOSS].status is OrderStatus.CANCELED
    assert venue.exchange.book.trades[-1].exit_reason == "take_profit"
    assert venue.cash == CASH + D("600.00")


def test_bracket_legs_can_trigger_in_the_bar_that_fills_the_entry(venue):
    parent = _bracket(venue)
    venue.bar(100.0, 100.5, 97.5, 98.0)  # entry at the open, then the stop is hit

    assert venue.order(parent.id).status is OrderStatus.FILLED
    legs = venue.legs(parent.id)
    assert legs[OrderRole.STOP_LOSS].status is OrderStatus.FILLED
    assert legs[OrderRole.STOP_LOSS].filled_avg_price == D("98.00")
    assert legs[OrderRole.TAKE_PROFIT].status is OrderStatus.CANCELED
    assert [f.role for f in venue.fills()] == [OrderRole.ENTRY, OrderRole.STOP_LOSS]
    assert venue.qty() == 0 and venue.cash == CASH - D("200.00")
    assert venue.exchange.book.trades[-1].exit_reason == "stop_loss"


def test_short_bracket_take_profit_below_and_stop_above(venue):
    parent = venue.submit(Side.SELL, 100, stop_loss=D("102.00"), take_profit=D("95.00"))
    venue.bar(100.0, 100.5, 99.5, 100.0)
    assert venue.qty() == -100
    venue.bar(99.0, 99.5, 94.5, 95.0)

    legs = venue.legs(parent.id)
    assert legs[OrderRole.TAKE_PROFIT].side is Side.BUY
    assert legs[OrderRole.TAKE_PROFIT].status is OrderStatus.FILLED
    assert legs[OrderRole.STOP_LOSS].status is OrderStatus.CANCELED
    assert venue.qty() == 0 and venue.cash == CASH + D("500.00")
    [trade] = venue.exchange.book.trades
    assert trade.side is Side.SELL and trade.pnl == D("500.00")


# --- rejections ----------------------------------------------------------------------------------


def test_order_beyond_buying_power_is_rejected_with_403(venue):
    with pytest.raises(InsufficientBuyingPower) as err:
        venue.submit(Side.BUY, 1001)  # 100,100 at $100 against 100,000
    assert (err.value.status, err.value.code) == (403, 40310000)
    assert "buying power" in str(err.value)
    assert venue.exchange.orders(open_only=False) == []


def test_reused_client_order_id_is_rejected_and_the_first_order_is_untouched(venue):
    first = venue.submit(Side.BUY, 10, cid="same-id")
    with pytest.raises(DuplicateClientOrderId) as err:
        venue.submit(Side.BUY, 20, cid="same-id")
    assert (err.value.status, err.value.code) == (422, 40010001)
    assert venue.exchange.orders() == [first]
    venue.bar(100.0, 100.0, 100.0, 100.0)
    assert venue.qty() == 10


@pytest.mark.parametrize("moment", [
    datetime(2026, 11, 26, 11, 0, tzinfo=NY),  # Thanksgiving
    datetime(2026, 11, 24, 8, 0, tzinfo=NY),  # before the open
    datetime(2026, 11, 24, 16, 0, tzinfo=NY),  # at the close
], ids=["holiday", "pre-market", "close"])
def test_orders_outside_the_session_are_rejected_as_market_closed(calendar, moment):
    venue = Venue(calendar, start=moment)
    with pytest.raises(MarketClosed) as err:
        venue.submit()
    assert err.value.status == 422
    assert "market is closed" in str(err.value)
    assert venue.exchange.orders(open_only=False) == []


def test_unknown_symbol_is_rejected(venue):
    with pytest.raises(UnknownSymbol) as err:
        venue.submit(symbol="ZZZZ")
    assert "ZZZZ" in str(err.value)


@pytest.mark.parametrize("qty", [0, -5])
def test_zero_or_negative_qty_is_rejected(venue, qty):
    with pytest.raises(BrokerRejected, match="qty must be > 0"):
        venue.submit(qty=qty)


@pytest.mark.parametrize(("side", "stop", "take"), [
    (Side.BUY, "101.00", "105.00"),  # long stop above the price
    (Side.BUY, "98.00", "99.00"),  # long take-profit below the price
    (Side.SELL, "98.00", "95.00"),  # short stop below the price
])
def test_bracket_with_a_level_on_the_wrong_side_is_rejected(venue, side, stop, take):
    with pytest.raises(BrokerRejected, match="side of"):
        venue.submit(side, 10, stop_loss=D(stop), take_profit=D(take))
    assert venue.exchange.orders(open_only=False) == []


def test_selling_shares_held_by_bracket_legs_is_rejected_for_insufficient_qty(venue):
    _bracket(venue)
    venue.bar(100.0, 100.5, 99.5, 100.0)
    with pytest.raises(InsufficientQty) as err:
        venue.submit(Side.SELL, 100)
    assert (err.value.status, err.value.code) == (403, 40310000)
    assert "available: 0" in str(err.value)


def test_shares_outside_a_bracket_stay_sellable(venue):
    venue.submit(Side.BUY, 100)
    _bracket(venue)
    venue.bar(100.0, 100.5, 99.5, 100.0)
    assert venue.qty() == 200

    exit_order = venue.submit(Side.SELL, 100)  # the bracket's OCO legs hold the other 100 once
    with pytest.raises(InsufficientQty, match="available: 0"):
        venue.submit(Side.SELL, 1)
    venue.bar(100.0, 100.5, 99.5, 100.0)
    assert venue.order(exit_order.id).status is OrderStatus.FILLED
    assert venue.qty() == 100


# --- cancels -------------------------------------------------------------------------------------


def test_cancel_an_open_order(venue):
    order = venue.submit(order_type=OrderType.LIMIT, limit_price=D("95.00"))
    venue.exchange.cancel(order.id)
    assert venue.order(order.id).status is OrderStatus.CANCELED
    assert venue.events(order.id) == ["new", "canceled"]
    venue.bar(94.0, 94.5, 93.0, 94.0)
    assert venue.fills() == []


async def test_canceling_a_bracket_entry_cancels_its_held_legs(venue):
    parent = _bracket(venue, order_type=OrderType.LIMIT, limit_price=D("99.00"))
    await venue.exchange.cancel_order(parent.id)
    assert venue.order(parent.id).status is OrderStatus.CANCELED
    assert {o.status for o in venue.legs(parent.id).values()} == {OrderStatus.CANCELED}
    assert venue.exchange.orders() == []


async def test_cancel_of_an_unknown_order_is_not_found(venue):
    with pytest.raises(NotFound) as err:
        await venue.exchange.cancel_order("sim-999999")
    assert err.value.status == 404


async def test_cancel_of_a_filled_order_is_not_cancelable(venue):
    order = venue.submit()
    venue.bar(100.0, 100.0, 100.0, 100.0)
    with pytest.raises(NotCancelable) as err:
        await venue.exchange.cancel_order(order.id)
    assert (err.value.status, err.value.code) == (422, 42210000)
    assert venue.order(order.id).status is OrderStatus.FILLED


# --- closing -------------------------------------------------------------------------------------


async def test_close_position_sends_a_market_exit_that_fills_on_the_next_bar(venue):
    _long_100_at_100(venue)
    exit_order = await venue.exchange.close_position("AAPL")
    assert (exit_order.side, exit_order.qty, exit_order.order_type) == (Side.SELL, 100, OrderType.MARKET)
    assert exit_order.role is OrderRole.EXIT
    assert venue.qty() == 100  # not yet: it fills on the next bar

    venue.bar(101.0, 101.5, 100.5, 101.0)
    assert venue.qty() == 0
    assert venue.cash == CASH + D("100.00")
    assert venue.exchange.book.trades[-1].exit_reason == "exit"


async def test_close_position_without_a_position_is_not_found(venue):
    with pytest.raises(NotFound):
        await venue.exchange.close_position("AAPL")


async def test_cancel_all_and_close_all_leave_nothing_open_and_flat_after_the_next_bar(venue):
    venue.seed("MSFT", 200.0)
    _bracket(venue)
    venue.submit(Side.SELL, 50, symbol="MSFT")
    venue.bar(100.0, 100.5, 99.5, 100.0)
    venue.bar(200.0, 200.5, 199.5, 200.0, symbol="MSFT")
    venue.submit(order_type=OrderType.LIMIT, limit_price=D("90.00"), qty=10)
    assert (venue.qty("AAPL"), venue.qty("MSFT")) == (100, -50)

    canceled = await venue.exchange.cancel_all()
    assert canceled
    assert await venue.exchange.list_orders() == []
    exits = await venue.exchange.close_all()
    assert {(o.symbol, o.side, o.qty) for o in exits} == {("AAPL", Side.SELL, 100), ("MSFT", Side.BUY, 50)}

    venue.exchange.on_bars([Bar("AAPL", venue.clock.now(), 100.0, 100.0, 100.0, 100.0, 1000),
                            Bar("MSFT", venue.clock.now(), 200.0, 200.0, 200.0, 200.0, 1000)])
    assert await venue.exchange.list_positions() == []
    assert await venue.exchange.list_orders() == []
    assert venue.cash == CASH


# --- lookups and the account ---------------------------------------------------------------------


async def test_get_order_by_client_id_finds_orders_and_their_legs(venue):
    parent = _bracket(venue, cid="dt-ema-abc")
    # The submit's answer names the legs (protection is tracked by their ids); lookups give
    # each order on its own.
    assert [(leg.role, leg.parent_id) for leg in parent.legs] == [
        (OrderRole.STOP_LOSS, parent.id), (OrderRole.TAKE_PROFIT, parent.id)]
    alone = replace(parent, legs=())
    assert await venue.exchange.get_order_by_client_id("dt-ema-abc") == alone
    stop = await venue.exchange.get_order_by_client_id("dt-ema-abc-stop_loss")
    assert stop is not None and stop.parent_id == parent.id and stop.id == parent.legs[0].id
    assert await venue.exchange.get_order_by_client_id("nope") is None
    assert await venue.exchange.get_order(parent.id) == alone


async def test_equity_is_cash_plus_positions_at_the_last_price(venue):
    _long_100_at_100(venue)
    venue.bar(100.0, 103.0, 99.5, 102.5)
    account = await venue.exchange.get_account()
    assert account.cash == CASH - D("10000.00")
    assert account.equity == account.cash + D("10250.00")
    [position] = await venue.exchange.list_positions()
    assert position.last_price == D("102.50") and position.unrealized_pnl == D("250.00")


def test_buying_power_falls_with_exposure_and_pending_entries(venue):
    assert venue.exchange.account().buying_power == CASH
    _long_100_at_100(venue)
    assert venue.exchange.account().buying_power == CASH - D("10000.00")
    venue.submit(order_type=OrderType.LIMIT, limit_price=D("90.00"), qty=100)
    assert venue.exchange.account().buying_power == CASH - D("10000.00") - D("9000.00")
    with pytest.raises(InsufficientBuyingPower):
        venue.submit(qty=811)  # 81,100 at $100 > 81,000 left


# --- restart -------------------------------------------------------------------------------------


def _restarted(calendar, before: Venue, orders=None) -> Venue:
    """A new exchange rebuilt from what `before` would have left in the journal."""
    after = Venue(calendar, start=before.clock.now())
    orders = before.exchange.orders(open_only=False) if orders is None else orders
    after.exchange.restore(before.fills(), orders, dict(before.exchange._last))
    return after


def test_after_a_restart_the_held_stop_loss_still_triggers(calendar, venue):
    parent = _bracket(venue)
    venue.bar(100.0, 101.0, 99.5, 100.5)  # entry fills; the stop reads held
    after = _restarted(calendar, venue)
    legs = after.legs(parent.id)
    assert legs[OrderRole.STOP_LOSS].status is OrderStatus.HELD
    assert legs[OrderRole.TAKE_PROFIT].status is OrderStatus.NEW
    assert after.qty() == 100

    after.bar(100.0, 101.0, 98.5, 100.0)  # between the legs
    after.bar(99.0, 99.5, 97.0, 97.5)

    stop = after.order(legs[OrderRole.STOP_LOSS].id)
    assert stop.status is OrderStatus.FILLED and stop.filled_avg_price == D("98.00")
    assert after.events(stop.id) == ["fill"]
    assert after.order(legs[OrderRole.TAKE_PROFIT].id).status is OrderStatus.CANCELED
    assert after.qty() == 0 and after.exchange.orders() == []


def test_after_a_restart_the_take_profit_still_cancels_the_held_stop(calendar, venue):
    parent = _bracket(venue)
    venue.bar(100.0, 101.0, 99.5, 100.5)
    after = _restarted(calendar, venue)
    after.bar(101.0, 105.5, 100.5, 105.2)
    legs = after.legs(parent.id)
    assert legs[OrderRole.TAKE_PROFIT].status is OrderStatus.FILLED
    assert legs[OrderRole.STOP_LOSS].status is OrderStatus.CANCELED
    assert after.qty() == 0


def test_after_a_restart_legs_the_journal_has_as_new_or_held_all_work(calendar, venue):
    """A journal may show either: legs from before the entry's fill (both held) or a stop
    recorded new (written before the sim reported stops as Alpaca does)."""
    parent = _bracket(venue)
    venue.bar(100.0, 101.0, 99.5, 100.5)
    for status in (OrderStatus.NEW, OrderStatus.HELD):
        journal = [replace(o, status=status) if o.parent_id == parent.id else o
                   for o in venue.exchange.orders(open_only=False)]
        after = _restarted(calendar, venue, journal)
        legs = after.legs(parent.id)
        assert legs[OrderRole.STOP_LOSS].status is status  # as recorded
        assert legs[OrderRole.TAKE_PROFIT].status is OrderStatus.NEW  # its parent filled
        after.bar(99.0, 99.5, 97.0, 97.5)
        assert after.order(legs[OrderRole.STOP_LOSS].id).filled_avg_price == D("98.00")
        assert after.qty() == 0


def test_after_a_restart_the_legs_of_a_resting_entry_wait_for_it(calendar, venue):
    parent = _bracket(venue, order_type=OrderType.LIMIT, limit_price=D("99.00"))
    after = _restarted(calendar, venue)
    after.bar(100.0, 106.0, 99.5, 100.0)  # would reach the take-profit; the entry rests
    assert after.fills() == []
    assert {o.status for o in after.legs(parent.id).values()} == {OrderStatus.HELD}

    after.bar(99.5, 100.0, 97.5, 98.0)  # entry fills at 99, then the stop is reached
    legs = after.legs(parent.id)
    assert [f.role for f in after.fills()] == [OrderRole.ENTRY, OrderRole.STOP_LOSS]
    assert legs[OrderRole.STOP_LOSS].status is OrderStatus.FILLED
    assert legs[OrderRole.TAKE_PROFIT].status is OrderStatus.CANCELED
