"""In-process exchange that behaves like the broker: orders, brackets (OCO), fills on the next bar.

Matching rules, per one-minute bar, for orders working before the bar:
- market: fills at the bar's open, plus slippage against the taker;
- limit: fills at the open if the bar opens through the limit, else at the limit if the range
  reaches it;
- stop: triggers at the open if the bar gaps through the stop (fills at the open), else at the
  stop when the range reaches it; slippage applies as for market orders.
Bracket legs become active when their parent fills and may trigger in the same bar. When one
bar reaches both the stop-loss and the take-profit, the stop-loss fills (we cannot know the
order inside the bar, so the pessimistic outcome is taken) unless the bar opened beyond the
take-profit. A filled leg cancels its sibling.

Bracket legs report their status as Alpaca does (shared/notes/alpaca.md, "Brackets after the
entry fills"): both are `held` until the entry fills; then the take-profit turns `new` (with a
"new" trade update) while the stop-loss stays `held` until it triggers, filling or canceling
from `held`. Whether an order can fill is therefore not read from its status but kept apart, in
`_Working.armed`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from daytrader.broker import (
    BrokerRejected,
    DuplicateClientOrderId,
    InsufficientBuyingPower,
    InsufficientQty,
    MarketClosed,
    NotCancelable,
    NotFound,
    UnknownSymbol,
    UpdateListener,
)
from daytrader.clock import Clock, MarketCalendar
from daytrader.models import (
    OPEN_STATUSES,
    ZERO,
    Account,
    Bar,
    Fill,
    Order,
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    Side,
    to_money,
    to_price,
)
from daytrader.positions import PositionBook

log = logging.getLogger(__name__)
_BPS = Decimal("0.0001")
_NO_COMMISSION = to_money(ZERO)
# Members by module name: looking one up on its enum class is slow (EnumType has __getattr__),
# and these are looked at on every bar of a held symbol and every order.
_NEW, _HELD, _FILLED, _CANCELED = (OrderStatus.NEW, OrderStatus.HELD, OrderStatus.FILLED,
                                   OrderStatus.CANCELED)
_ENTRY, _EXIT, _STOP_LOSS, _TAKE_PROFIT = (OrderRole.ENTRY, OrderRole.EXIT, OrderRole.STOP_LOSS,
                                           OrderRole.TAKE_PROFIT)
_MARKET, _LIMIT, _STOP = OrderType.MARKET, OrderType.LIMIT, OrderType.STOP


@dataclass(slots=True)
class _Working:
    """A live order inside the exchange; `Order` snapshots are made from it."""

    order: Order
    children: list[str] = field(default_factory=list)
    sibling: str | None = None
    limit: float | None = None  # float copies of the prices for matching on float bars
    stop: float | None = None
    # For a bracket leg with a sibling: the prices strictly between its stop and target, where
    # a bar touches neither (most bars, settled with two comparisons).
    band: tuple[float, float] | None = None
    # Whether it can fill: a NEW order, or a bracket leg whose parent filled. Not its status,
    # because a live stop-loss leg still reports HELD, as at Alpaca (see the module docstring).
    # Cleared when it fills or is canceled.
    armed: bool = False


def _pair(a: _Working, b: _Working) -> None:
    """Makes two bracket legs one-cancels-other."""
    a.sibling, b.sibling = b.order.id, a.order.id
    stop, take = (a, b) if a.order.role is _STOP_LOSS else (b, a)
    if stop.stop is not None and take.limit is not None:
        a.band = b.band = ((stop.stop, take.limit) if stop.order.side == "sell"
                           else (take.limit, stop.stop))


class SimExchange:
    name = "sim"
    in_process = True  # its calls answer at once; a cancel is final when it returns

    def __init__(self, symbols: Collection[str], calendar: MarketCalendar, clock: Clock, *,
                 cash: Decimal = Decimal("100000"), slippage_bps: float = 0.0,
                 commission_per_share: Decimal = ZERO,
                 buying_power_multiplier: Decimal = Decimal("1")) -> None:
        self.symbols = frozenset(symbols)
        self.calendar = calendar
        self.clock = clock
        self.book = PositionBook(Decimal(cash))
        self.slippage = Decimal(str(slippage_bps)) * _BPS
        # What a taker's price is multiplied by, per side (worked out once, not on each fill).
        self._taker_factor = {side: 1 + self.slippage * side.sign for side in Side}
        self.commission_per_share = Decimal(commission_per_share)
        self.multiplier = Decimal(buying_power_multiplier)
        self.last_equity = self.book.equity()
        self._orders: dict[str, _Working] = {}
        self._open: dict[str, _Working] = {}  # the open subset, so checks never scan history
        self._by_client_id: dict[str, str] = {}
        self._working: dict[str, list[str]] = {}  # symbol -> ids of orders that can fill
        # symbol -> the prices strictly between its bracket's stop and target, while those two
        # legs are all it has working: a bar inside them (most bars of a held symbol) is settled
        # in `on_bars` without a call. Set by `_match`; dropped by any change to the symbol's
        # orders (`_set`, `_add`, `restore`), so it never outlives the legs it describes.
        self._quiet: dict[str, tuple[float, float]] = {}
        self._last: dict[str, float] = {}
        self._ids = itertools.count(1)
        self._fill_ids = itertools.count(1)
        self._listener: UpdateListener | None = None
        self._session_day = None
        # The account is asked for several times per order (sizing, risk, this venue's own
        # check) while nothing changes: it is kept until the next change of orders or prices.
        self._version = 0
        self._account: tuple[int, Account] | None = None

    # -- wiring --------------------------------------------------------------------------------
    def set_listener(self, listener: UpdateListener) -> None:
        self._listener = listener

    def _emit(self, event: str, order: Order, fill: Fill | None = None) -> None:
        if self._listener is not None:
            self._listener(OrderUpdate.make(event, order, fill))

    # -- market data and matching --------------------------------------------------------------
    def on_bars(self, bars: Sequence[Bar]) -> None:
        ts = None
        working, last, quiet = self._working, self._last, self._quiet
        positions = self.book.open_positions
        for bar in bars:
            # A minute's bars share their time (one object from replay): the day is looked at
            # once. An equal time in another object only looks again, to the same effect.
            if bar.ts is not ts:
                ts = bar.ts
                day = ts.date()
                if day != self._session_day:
                    if self._session_day is not None:
                        self.last_equity = self.book.equity()
                    self._session_day = day
            symbol = bar.symbol
            ids = working.get(symbol)
            if ids:
                band = quiet.get(symbol)
                if band is None or not band[0] < bar.low or not bar.high < band[1]:
                    self._match(bar, ids)
            last[symbol] = bar.close
            # Marked after its bar's fills, which set it to their price.
            pos = positions.get(symbol)
            if pos is not None:  # set_last, written out: a call per bar of each held symbol
                pos.last = bar.close
                pos._last_price = None
        self._version += 1  # prices moved: the account is worked out again when next asked

    def _changed(self) -> None:
        """Orders, fills or prices changed: the account is worked out again when next asked."""
        self._version += 1

    def _match(self, bar: Bar, ids: list[str]) -> None:
        orders = self._orders
        if len(ids) == 2:  # a held position's two legs, which most bars touch neither of
            first = orders[ids[0]]
            band = first.band
            if (band is not None and first.sibling == ids[1] and first.armed
                    and orders[ids[1]].armed):
                self._quiet[bar.symbol] = band  # until either leg changes (see on_bars)
                if band[0] < bar.low and bar.high < band[1]:
                    return
        checked = None  # the sibling of a pair of legs just matched together
        for order_id in list(ids):  # arrival order; entries before the legs they activate
            if order_id == checked:
                continue  # its pair was settled with its sibling (one check covers both)
            working = orders[order_id]
            if not working.armed:  # filled or canceled by an earlier order of this bar
                continue
            band = working.band
            if (band is None or not band[0] < bar.low or not bar.high < band[1]
                    or not orders[working.sibling].armed):
                self._match_one(working, bar, gap=True)
            checked = working.sibling

    def _match_one(self, w: _Working, bar: Bar, *, gap: bool) -> None:
        sibling = self._orders[w.sibling] if w.sibling else None
        if sibling is not None and sibling.armed:
            self._match_oco(w, sibling, bar, gap=gap)
            return
        price = self._trigger_price(w, bar, gap=gap)
        if price is None:
            return
        self._fill(w, price, bar.ts)
        for child_id in w.children:
            child = self._orders[child_id]
            if child.order.status is _HELD and not child.armed:
                # Both legs can fill from now on, but only the take-profit turns NEW and is
                # announced: at Alpaca the stop-loss stays HELD until it triggers.
                if child.order.role is not _STOP_LOSS:
                    self._set(child, _NEW, child.order.updated_at)
                    self._emit("new", child.order)
                self._arm(child)
        matched = None  # the sibling of a pair of legs just matched together (one check)
        for child_id in w.children:
            child = self._orders[child_id]
            if child_id != matched and child.armed:
                self._match_one(child, bar, gap=False)
                matched = child.sibling

    def _match_oco(self, a: _Working, b: _Working, bar: Bar, *, gap: bool) -> None:
        """Stop-loss and take-profit legs reached in one bar: the stop wins unless the bar
        opened beyond the take-profit."""
        stop, take = (a, b) if a.order.role is _STOP_LOSS else (b, a)
        # Most bars touch neither leg: settle that with two comparisons (a gap through a level
        # is inside the bar's range too).
        if stop.order.side == "sell":
            if bar.low > stop.stop and bar.high < take.limit:
                return
        elif bar.high < stop.stop and bar.low > take.limit:
            return
        if gap:
            for leg in (stop, take):
                price = self._trigger_price(leg, bar, gap=True)
                if price == bar.open:
                    self._fill(leg, price, bar.ts)
                    return
        for leg in (stop, take):
            price = self._trigger_price(leg, bar, gap=False)
            if price is not None:
                self._fill(leg, price, bar.ts)
                return

    def _trigger_price(self, w: _Working, bar: Bar, *, gap: bool) -> float | None:
        """The price at which `w` fills in `bar`, or None. `gap` is False for legs activated
        inside this bar, which only see the range after the parent's fill at the open."""
        o = w.order
        buy = o.side == "buy"
        if o.order_type is _MARKET:
            return bar.open
        if o.order_type is _LIMIT:
            assert w.limit is not None
            if gap and (bar.open <= w.limit if buy else bar.open >= w.limit):
                return bar.open
            return w.limit if (bar.low <= w.limit if buy else bar.high >= w.limit) else None
        assert w.stop is not None
        if gap and (bar.open >= w.stop if buy else bar.open <= w.stop):
            return bar.open
        return w.stop if (bar.high >= w.stop if buy else bar.low <= w.stop) else None

    def _fill(self, w: _Working, raw_price: float, ts: datetime) -> None:
        o = w.order
        if o.order_type is not _LIMIT and self.slippage:
            # Takers pay the slippage; resting limits don't.
            price = to_price(Decimal(str(raw_price)) * self._taker_factor[o.side])
        else:
            price = to_price(raw_price)
        commission = (to_money(self.commission_per_share * o.qty) if self.commission_per_share
                      else _NO_COMMISSION)
        self._set(w, _FILLED, ts, o.qty, price)
        self._unwork(o)
        # zfill, not a format spec: half the cost (an id per order and per fill).
        fill = Fill.make("sim-fill-" + str(next(self._fill_ids)).zfill(6), o.id, o.client_order_id,
                         o.symbol, o.side, o.qty, price, commission, ts, o.role)
        self.book.apply_fill(fill)
        self._version += 1  # the account: see _changed
        self._emit("fill", w.order, fill)
        if w.sibling:
            sibling = self._orders[w.sibling]
            if sibling.order.status in OPEN_STATUSES:
                self._cancel(sibling, ts)

    # -- orders --------------------------------------------------------------------------------
    def _new_id(self) -> str:
        return "sim-" + str(next(self._ids)).zfill(6)  # as f"{n:06d}", at half the cost

    def _set(self, w: _Working, status: OrderStatus, updated_at: datetime | None,
             filled_qty: int | None = None, filled_avg_price: Decimal | None = None) -> None:
        o = w.order
        # Written out rather than dataclasses.replace: a third of the cost, on every fill and cancel.
        w.order = Order.make(o.id, o.client_order_id, o.symbol, o.side, o.qty, o.order_type, status,
                             o.submitted_at, o.role, o.limit_price, o.stop_price,
                             o.filled_qty if filled_qty is None else filled_qty,
                             o.filled_avg_price if filled_avg_price is None else filled_avg_price,
                             o.parent_id, updated_at, o.reject_reason, o.legs)
        if status in OPEN_STATUSES:
            self._open[o.id] = w
        else:
            self._open.pop(o.id, None)
            w.armed = False  # filled or canceled: it can no longer fill
        self._quiet.pop(o.symbol, None)
        self._version += 1  # the account: see _changed

    def _arm(self, w: _Working) -> None:
        """Lets `w` fill on the bars from now on (its status is set apart: see `armed`)."""
        w.armed = True
        symbol = w.order.symbol
        self._working.setdefault(symbol, []).append(w.order.id)
        # A change to the symbol's working orders: the quiet band no longer holds (a stop-loss
        # armed without a change of status does not pass through `_set`).
        self._quiet.pop(symbol, None)

    def _unwork(self, order: Order) -> None:
        ids = self._working.get(order.symbol)
        if ids and order.id in ids:
            ids.remove(order.id)

    def _cancel(self, w: _Working, ts: datetime) -> None:
        self._set(w, _CANCELED, ts)
        self._unwork(w.order)
        self._emit("canceled", w.order)
        for child_id in w.children:
            child = self._orders[child_id]
            if child.order.status in OPEN_STATUSES:
                self._cancel(child, ts)

    def _reject(self, request: OrderRequest, error: BrokerRejected) -> BrokerRejected:
        log.info("sim rejected %s %s %s: %s", request.side, request.qty, request.symbol, error)
        return error

    def _held_for_sale(self, symbol: str, side: Side) -> int:
        """Shares already promised to open orders that would reduce the position (Alpaca's
        "insufficient qty available" counts them the same way)."""
        held = 0
        for w in self._open.values():
            o = w.order
            if (o.symbol != symbol or o.side is not side or o.role is OrderRole.ENTRY
                    or not o.status.is_open):
                continue
            if (o.role is OrderRole.TAKE_PROFIT and w.sibling
                    and self._orders[w.sibling].order.status.is_open):
                continue  # one-cancels-other: a bracket's two legs hold the same shares once
            held += o.qty - o.filled_qty
        return held

    def _check(self, request: OrderRequest, now: datetime) -> bool:
        """Refuses what the broker would; answers whether the order reduces the position."""
        if request.client_order_id in self._by_client_id:
            raise self._reject(request, DuplicateClientOrderId("client_order_id must be unique"))
        if request.symbol not in self.symbols:
            raise self._reject(request, UnknownSymbol(f"asset {request.symbol} not found"))
        if request.qty <= 0:
            raise self._reject(request, BrokerRejected(f"qty must be > 0, got {request.qty}"))
        if not self.calendar.is_open(now):
            raise self._reject(request, MarketClosed(
                f"market is closed at {now:%Y-%m-%d %H:%M %Z}; sim accepts orders in session only"))
        if request.order_type is _LIMIT and request.limit_price is None:
            raise self._reject(request, BrokerRejected("limit orders need a limit_price"))
        if request.order_type is _STOP and request.stop_price is None:
            raise self._reject(request, BrokerRejected("stop orders need a stop_price"))
        position = self.book.qty(request.symbol)
        sign = request.side.sign
        reducing = position * sign < 0
        if (request.position_intent or "").endswith("_to_close") and not reducing:
            # Alpaca refuses a closing intent with nothing to close (shared/notes/alpaca.md).
            raise self._reject(request, InsufficientQty(
                f"insufficient qty available for order (requested: {request.qty}, available: 0)"))
        if reducing:
            available = abs(position) - self._held_for_sale(request.symbol, request.side)
            if request.qty > available:
                raise self._reject(request, InsufficientQty(
                    f"insufficient qty available for order (requested: {request.qty}, "
                    f"available: {available})"))
            if request.stop_loss or request.take_profit:
                raise self._reject(request, BrokerRejected("bracket orders must open a position"))
            return True
        price = request.limit_price or request.stop_price
        if price:
            ref = float(price)
        else:
            last = self._last.get(request.symbol)
            if last is None:
                raise self._reject(request, BrokerRejected(f"no price yet for {request.symbol}"))
            price, ref = Decimal(str(last)), last  # the float of that Decimal is `last` again
        if request.stop_loss is not None and not float(request.stop_loss) * sign < ref * sign:
            raise self._reject(request, BrokerRejected(
                f"stop_loss.stop_price {request.stop_loss} must be on the losing side of {price}"))
        if request.take_profit is not None and not float(request.take_profit) * sign > ref * sign:
            raise self._reject(request, BrokerRejected(
                f"take_profit.limit_price {request.take_profit} must be on the winning side of "
                f"{price}"))
        cost = price * request.qty
        buying_power = self.account().buying_power
        if cost > buying_power:
            raise self._reject(request, InsufficientBuyingPower(
                f"insufficient buying power (needs {to_money(cost)}, has {buying_power})"))
        return False

    def _pending_entry_cost(self) -> Decimal:
        total = ZERO
        for w in self._open.values():
            o = w.order
            if o.role is _ENTRY and o.status is _NEW:
                price = o.limit_price or o.stop_price or Decimal(str(self._last.get(o.symbol, 0)))
                total += price * (o.qty - o.filled_qty)
        return total

    def _buying_power(self, equity: Decimal, gross_exposure: Decimal) -> Decimal:
        used = gross_exposure + self._pending_entry_cost()
        return max(ZERO, to_money(equity * self.multiplier - used))

    def _add(self, cid: str, symbol: str, side: Side, qty: int, order_type: OrderType,
             status: OrderStatus, now: datetime, role: OrderRole, limit_price: Decimal | None,
             stop_price: Decimal | None, parent_id: str | None) -> _Working:
        order = Order.make(self._new_id(), cid, symbol, side, qty, order_type, status, now, role,
                           limit_price, stop_price, 0, None, parent_id, now)
        armed = status is _NEW  # a bracket's legs (HELD) wait for their parent's fill
        w = _Working(order, [], None, float(limit_price) if limit_price else None,
                     float(stop_price) if stop_price else None, None, armed)
        order_id = order.id
        self._orders[order_id] = w
        self._open[order_id] = w
        self._by_client_id[cid] = order_id
        if armed:
            self._working.setdefault(symbol, []).append(order_id)
        self._quiet.pop(symbol, None)
        self._version += 1  # the account: see _changed
        return w

    async def submit_order(self, request: OrderRequest) -> Order:
        return self.submit(request)

    def submit(self, request: OrderRequest, role: OrderRole | None = None) -> Order:
        now = self.clock.now()  # one time for the order and its legs
        reducing = self._check(request, now)
        cid, symbol, qty = request.client_order_id, request.symbol, request.qty
        parent = self._add(cid, symbol, request.side, qty, request.order_type, _NEW, now,
                           role or (_EXIT if reducing else _ENTRY), request.limit_price,
                           request.stop_price, None)
        if request.stop_loss is None and request.take_profit is None:
            self._emit("new", parent.order)
            return parent.order
        legs = []
        parent_id, exit_side = parent.order.id, request.side.opposite
        if request.stop_loss is not None:
            legs.append(self._add(cid + "-stop_loss", symbol, exit_side, qty, _STOP, _HELD, now,
                                  _STOP_LOSS, None, request.stop_loss, parent_id))
        if request.take_profit is not None:
            legs.append(self._add(cid + "-take_profit", symbol, exit_side, qty, _LIMIT, _HELD,
                                  now, _TAKE_PROFIT, request.take_profit, None, parent_id))
        parent.children = [leg.order.id for leg in legs]
        if len(legs) == 2:
            _pair(legs[0], legs[1])
        self._emit("new", parent.order)
        o = parent.order
        return Order.make(o.id, o.client_order_id, o.symbol, o.side, o.qty, o.order_type, o.status,
                          o.submitted_at, o.role, o.limit_price, o.stop_price, o.filled_qty,
                          o.filled_avg_price, o.parent_id, o.updated_at, o.reject_reason,
                          tuple([leg.order for leg in legs]))

    def restore(self, fills: Sequence[Fill], orders: Sequence[Order],
                last_prices: dict[str, float]) -> None:
        """Rebuilds the exchange after a restart from what the journal recorded: the fills
        (cash and positions), every order's latest state (open ones work again, bracket legs
        keep their one-cancels-other pairing; the legs of a filled entry can fill, the
        stop-loss still reading HELD as at Alpaca) and the last prices. New ids continue after
        the restored ones, so no id is reused."""
        for fill in fills:
            self.book.apply_fill(fill)
        for symbol, price in last_prices.items():
            self._last[symbol] = price
            self.book.mark(symbol, price)
        legs: dict[str, list[_Working]] = {}
        for order in orders:
            w = _Working(order, limit=float(order.limit_price) if order.limit_price else None,
                         stop=float(order.stop_price) if order.stop_price else None,
                         armed=order.status is OrderStatus.NEW)
            self._orders[order.id] = w
            self._by_client_id[order.client_order_id] = order.id
            if order.parent_id is not None:
                legs.setdefault(order.parent_id, []).append(w)
        for parent_id, children in legs.items():
            parent = self._orders.get(parent_id)
            if parent is not None:
                parent.children = [c.order.id for c in children]
            open_legs = [c for c in children if c.order.status.is_open]
            if len(open_legs) == 2:
                _pair(open_legs[0], open_legs[1])
            parent_done = parent is None or parent.order.status is OrderStatus.FILLED
            for leg in open_legs:
                if leg.order.status is OrderStatus.HELD and parent_done:
                    # Live again. A take-profit the journal caught before its "new" reads NEW;
                    # a stop-loss reads HELD until it triggers, as at Alpaca.
                    if leg.order.role is not _STOP_LOSS:
                        leg.order = replace(leg.order, status=OrderStatus.NEW)
                    leg.armed = True
        for w in self._orders.values():
            if w.order.status.is_open:
                self._open[w.order.id] = w
                if w.armed:
                    self._working.setdefault(w.order.symbol, []).append(w.order.id)

        def after(ids: Iterable[str]) -> int:
            numbers = [int(i.rsplit("-", 1)[1]) for i in ids if i.rsplit("-", 1)[-1].isdigit()]
            return max(numbers, default=0) + 1

        self._quiet.clear()
        self._ids = itertools.count(after(o.id for o in orders))
        self._fill_ids = itertools.count(after(f.id for f in fills))
        self._changed()

    def _get(self, order_id: str) -> _Working:
        w = self._orders.get(order_id)
        if w is None:
            raise NotFound("order not found")
        return w

    async def get_order(self, order_id: str) -> Order:
        return self._get(order_id).order

    async def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        order_id = self._by_client_id.get(client_order_id)
        return self._orders[order_id].order if order_id else None

    def orders(self, open_only: bool = True) -> list[Order]:
        source = self._open if open_only else self._orders
        return [w.order for w in source.values()]

    async def list_orders(self, open_only: bool = True,
                          since: datetime | None = None) -> list[Order]:
        orders = self.orders(open_only)
        return orders if since is None else [o for o in orders if o.submitted_at >= since]

    async def list_positions(self) -> list[Position]:
        return self.book.positions()

    async def get_position(self, symbol: str) -> Position | None:
        return self.book.position(symbol)

    async def get_account(self) -> Account:
        return self.account()

    def account_view(self) -> Account:
        return self.account()

    def account(self) -> Account:
        if self._account is not None and self._account[0] == self._version:
            return self._account[1]
        book = self.book
        value, gross = book.value_and_exposure()
        equity = to_money(book.cash + value)  # book.equity()
        account = Account.make(to_money(book.cash), equity, self._buying_power(equity, gross),
                               self.last_equity)
        self._account = (self._version, account)
        return account

    def cancel(self, order_id: str) -> None:
        w = self._get(order_id)
        if not w.order.status.is_open:
            raise NotCancelable("order is not cancelable")
        self._cancel(w, self.clock.now())

    async def cancel_order(self, order_id: str) -> None:
        self.cancel(order_id)

    async def cancel_all(self) -> list[str]:
        canceled = []
        for w in list(self._open.values()):
            if w.order.status.is_open:  # a parent's cancel may already have taken its legs
                self._cancel(w, self.clock.now())
                canceled.append(w.order.id)
        return canceled

    def close(self, symbol: str) -> Order:
        qty = self.book.qty(symbol)
        if qty == 0:
            raise NotFound("position not found")
        request = OrderRequest(client_order_id=f"close-{symbol}-{next(self._ids):06d}",
                               symbol=symbol, side=Side.SELL if qty > 0 else Side.BUY,
                               qty=abs(qty), order_type=OrderType.MARKET)
        return self.submit(request, OrderRole.EXIT)

    async def close_position(self, symbol: str) -> Order:
        return self.close(symbol)

    async def close_all(self) -> list[Order]:
        await self.cancel_all()
        return [self.close(symbol) for symbol in self.book.symbols()]
