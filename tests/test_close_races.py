"""A property test of closing against Alpaca's behaviour: random interleavings of stop-loss and
take-profit fills, strategy exits, manual closes and emergency stops, with 0-3 s on every request
and answer, never leave a position below zero with shorts off, and never send a closing order
when the position is already flat.

It runs the engine against `AlpacaVenue` (the model behind the local Alpaca server, written
from Alpaca's documentation and known issues) through an in-process adapter, on an event loop
whose clock is virtual: a 3 s latency costs no real time, so 1,000 runs take seconds. The HTTP
path through alpaca-py is covered by tests/test_closing.py; this one covers the timing.
"""

from __future__ import annotations

import asyncio
import os
import random
from datetime import datetime, timedelta
from decimal import Decimal

from alpaca_venue import AlpacaVenue, VenueError, VOrder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daytrader.broker import (
    BrokerRejected,
    InsufficientQty,
    NotCancelable,
    NotFound,
)
from daytrader.clock import EXCHANGE_TZ, MarketCalendar, SimClock
from daytrader.config import Settings
from daytrader.engine import Engine
from daytrader.models import (
    Account,
    Bar,
    Fill,
    Order,
    OrderIntent,
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    Side,
)

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=EXCHANGE_TZ)
RUNS = int(os.environ.get("RACE_RUNS", "1000"))  # the 1,000; fewer while iterating
SYMBOLS = ("AAPL", "MSFT")
D = Decimal
_STATUS = {"new": OrderStatus.NEW, "accepted": OrderStatus.NEW, "held": OrderStatus.HELD,
           "partially_filled": OrderStatus.PARTIALLY_FILLED, "filled": OrderStatus.FILLED,
           "canceled": OrderStatus.CANCELED, "pending_cancel": OrderStatus.PENDING_CANCEL,
           "rejected": OrderStatus.REJECTED, "expired": OrderStatus.EXPIRED}


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer whenever nothing is ready to run.
    Everything here is in-process (no I/O), so a sleep of 3 s takes no real time."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def _run_once(self) -> None:
        if not self._ready and self._scheduled:
            self.now = max(self.now, self._scheduled[0].when())
        super()._run_once()


class VenueBroker:
    """The Broker protocol over the venue, with a random delay on every request and answer,
    and trade updates streamed in order after their own delay."""

    name = "venue"

    def __init__(self, venue: AlpacaVenue, rng: random.Random, max_latency: float) -> None:
        self.venue = venue
        self.rng = rng
        self.max_latency = max_latency
        self.listener = None
        self.sent_when_flat: list[str] = []  # closing orders that arrived with nothing to close
        self.events: asyncio.Queue = asyncio.Queue()
        venue.listener = lambda event, order, fill: self.events.put_nowait(
            (event, self.order(order), fill))
        self.pump = asyncio.ensure_future(self._stream())

    async def _stream(self) -> None:
        while True:
            event, order, fill = await self.events.get()
            await asyncio.sleep(self.rng.uniform(0, 0.5))
            update_fill = None if fill is None else Fill(
                f"{fill.execution_id}", order.id, order.client_order_id, order.symbol, order.side,
                fill.qty, fill.price, D(0), fill.ts, order.role)
            if self.listener is not None:
                self.listener(OrderUpdate(event, order, update_fill))

    async def _travel(self) -> None:
        await asyncio.sleep(self.rng.uniform(0, self.max_latency))

    def order(self, o: VOrder, legs: bool = False) -> Order:
        role = (OrderRole.STOP_LOSS if o.leg == "stop_loss" else OrderRole.TAKE_PROFIT
                if o.leg == "take_profit" else OrderRole.EXIT
                if (o.position_intent or "").endswith("_to_close") else OrderRole.ENTRY)
        return Order(o.id, o.client_order_id, o.symbol, Side(o.side), o.qty, OrderType(o.type),
                     _STATUS[o.status], o.created_at, role, o.limit_price, o.stop_price,
                     o.filled_qty, o.filled_avg_price, o.parent_id, o.updated_at,
                     legs=tuple(self.order(self.venue.orders[i]) for i in o.legs) if legs else ())

    async def _call(self, fn, *args):
        await self._travel()
        try:
            result = fn(*args)
        except VenueError as exc:
            await self._travel()
            if exc.status == 404:
                raise NotFound(exc.message) from None
            if exc.code == 42210000 and "cancelable" in exc.message:
                raise NotCancelable(exc.message) from None
            if exc.code == 40310000:
                raise InsufficientQty(exc.message) from None
            raise BrokerRejected(exc.message, code=exc.code, status=exc.status) from None
        await self._travel()
        return result

    # -- the protocol ----------------------------------------------------------------------------
    def set_listener(self, listener) -> None:
        self.listener = listener

    def on_bars(self, bars) -> None:
        pass

    def account_view(self) -> Account | None:
        return None

    async def get_account(self) -> Account:
        a = await self._call(self.venue.account)
        return Account(a["cash"], a["equity"], a["buying_power"], a["last_equity"])

    def _submit(self, request: OrderRequest) -> VOrder:
        held = self.venue.positions.get(request.symbol)
        if (request.position_intent or "").endswith("_to_close") and held is None:
            self.sent_when_flat.append(f"{request.side} {request.qty} {request.symbol}")
        body = {"client_order_id": request.client_order_id, "symbol": request.symbol,
                "side": request.side.value, "qty": request.qty, "type": request.order_type.value,
                "position_intent": request.position_intent}
        if request.stop_loss is not None and request.take_profit is not None:
            body.update(order_class="bracket", stop_loss={"stop_price": str(request.stop_loss)},
                        take_profit={"limit_price": str(request.take_profit)})
        order = self.venue.submit(body)
        self.venue.fill_now(order)
        return order

    async def submit_order(self, request: OrderRequest) -> Order:
        o = await self._call(self._submit, request)
        return self.order(o, legs=True)

    async def get_order(self, order_id: str) -> Order:
        return self.order(await self._call(self.venue.order, order_id))

    async def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        try:
            return self.order(await self._call(self.venue.order_by_client_id, client_order_id))
        except NotFound:
            return None

    async def list_orders(self, open_only: bool = True, since=None) -> list[Order]:
        listed = await self._call(self.venue.listing, "open" if open_only else "all", False)
        return [self.order(o) for o, _ in listed]

    def _position(self, p) -> Position:
        return Position(p.symbol, p.qty, p.avg_entry_price, p.last, T0)

    async def list_positions(self) -> list[Position]:
        positions = await self._call(lambda: list(self.venue.positions.values()))
        return [self._position(p) for p in positions]

    async def get_position(self, symbol: str) -> Position | None:
        try:
            return self._position(await self._call(self.venue.position, symbol))
        except NotFound:
            return None

    async def cancel_order(self, order_id: str) -> None:
        await self._call(self.venue.cancel, order_id)

    async def cancel_all(self) -> list[str]:
        return await self._call(self.venue.cancel_all)

    async def close_position(self, symbol: str) -> Order:
        return self.order(await self._call(self.venue.close, symbol))

    async def close_all(self) -> list[Order]:
        def close_everything() -> list[VOrder]:
            self.venue.cancel_all()
            out = []
            for symbol in list(self.venue.positions):
                try:
                    order = self.venue.close(symbol)
                except VenueError:
                    continue
                self.venue.fill_now(order)
                out.append(order)
            return out

        return [self.order(o) for o in await self._call(close_everything)]


ACTIONS = ("stop_bar", "take_profit_bar", "flat_bar", "strategy_exit", "manual_close",
           "emergency_stop")
venues = st.fixed_dictionaries({
    "held_listed_as_open": st.booleans(), "legs_in_flat_listing": st.booleans(),
    "legs_after_fill": st.sampled_from(["hidden", "top_level"]),
    "cancel_delay": st.sampled_from([0.0, 0.2, 1.5]), "cancel_leg_cancels_sibling": st.booleans(),
    "stream_oco_cancels": st.booleans(), "close_intent_enforced": st.booleans(),
    "instant_fills": st.booleans()})
schedules = st.lists(st.tuples(st.floats(0, 20), st.sampled_from(ACTIONS),
                               st.sampled_from(SYMBOLS)), min_size=1, max_size=6)


async def scenario(venue_options: dict, schedule: list, seed: int, calendar) -> VenueBroker:
    clock = SimClock(T0)
    venue = AlpacaVenue(SYMBOLS, clock.now, cash=D("1000000"), **venue_options)
    loop = asyncio.get_running_loop()
    venue.schedule = lambda delay, fn: loop.call_later(delay, fn)
    broker = VenueBroker(venue, random.Random(seed), max_latency=3.0)
    engine = Engine(Settings(mode="paper", symbols=SYMBOLS, allow_shorts=False,
                             max_positions=100, risk_per_trade_pct=100.0),
                    broker, calendar, clock)
    minute = [0]

    def bars(price: float, symbols=SYMBOLS) -> None:
        minute[0] += 1
        clock.set(T0 + timedelta(minutes=minute[0]))
        venue.on_bars([Bar(s, clock.now(), price, price + 0.1, price - 0.1, price, 100)
                       for s in symbols])

    bars(100.0)
    for symbol in SYMBOLS:
        result = await engine.submit(OrderIntent(symbol, Side.BUY, 10, ref_price=D("100"),
                                                 stop_loss=D("98.00"), take_profit=D("104.00")))
        assert result.ok, result.message
    bars(100.0)
    for _ in range(100):
        if all(engine.book.qty(s) == 10 for s in SYMBOLS):
            break
        await asyncio.sleep(0.5)

    async def act(at: float, action: str, symbol: str) -> None:
        await asyncio.sleep(at)
        if action == "stop_bar":
            bars(97.5, [symbol])
        elif action == "take_profit_bar":
            bars(104.5, [symbol])
        elif action == "flat_bar":
            bars(100.0)
        elif action == "strategy_exit":
            await engine.close(symbol, "strategy_exit", "strategy")
        elif action == "manual_close":
            await engine.close_position(symbol, "test")
        else:
            await engine.emergency_stop("test", flat_timeout=30)

    await asyncio.gather(*(act(*step) for step in schedule))
    for _ in range(30):  # let market orders fill and every event arrive
        bars(100.0)
        await asyncio.sleep(1.0)
    broker.pump.cancel()
    assert venue.shorts_opened == [], f"a position went below zero: {venue.shorts_opened}"
    for symbol in SYMBOLS:
        assert venue.positions.get(symbol) is None or venue.positions[symbol].qty > 0
    return broker


@settings(max_examples=RUNS, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(venue_options=venues, schedule=schedules, seed=st.integers(0, 2**16))
def test_no_interleaving_goes_short_or_closes_a_flat_position(venue_options, schedule, seed):
    loop = VirtualTimeLoop()
    try:
        broker = loop.run_until_complete(scenario(venue_options, schedule, seed, _calendar()))
        loop.run_until_complete(asyncio.sleep(0))  # the stream pump sees its cancellation
    finally:
        loop.close()
    assert broker.sent_when_flat == [], (
        f"closing orders sent after the position was flat: {broker.sent_when_flat}")


_CAL: list[MarketCalendar] = []


def _calendar() -> MarketCalendar:
    if not _CAL:
        _CAL.append(MarketCalendar())
    return _CAL[0]
