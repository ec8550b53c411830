"""An Alpaca brokerage account as Alpaca documents it and as its users report it behaves.

This is the order and position model behind the local Alpaca-compatible server
(`fake_alpaca.py`). It is written from Alpaca's API documentation and public issue threads, not
from DayTrader's sim exchange, so DayTrader's assumptions are tested against someone else's. The
facts, with their sources, are collected in `shared/notes/alpaca.md`; the ones this model follows:

- A bracket is three orders. Before the entry fills both legs are `held`; once it fills the
  take-profit is `new` and the stop-loss stays `held` until it triggers
  (alpacahq/alpaca-trade-api-python #322).
- Once the entry has filled the legs are "no longer nested": a nested open listing returns nothing
  for them (alpacahq/alpaca-trade-api-js #80, #87). Whether they then appear as top-level orders
  in a nested listing is not documented: `legs_after_fill` is "hidden" or "top_level".
- A held leg can be missing from `status=open` listings (#322): `held_listed_as_open`. Whether
  flat (`nested=false`) listings show legs at all is not documented: `legs_in_flat_listing`.
- The legs hold the position's shares: any other order that would sell them, and
  `DELETE /v2/positions/{symbol}`, is refused with 403 / 40310000 "insufficient qty available for
  order (requested: N, available: M)" until the legs are canceled.
- Alpaca does not flip a position in one order: a sell larger than a long position is refused
  the same way (Alpaca-API #90, alpaca-trade-api-python #129); but a sell that arrives when the
  position is already flat opens a short on a margin account (Alpaca-API #85, #86).
- `position_intent=sell_to_close` with no position is refused per users' reports
  (Alpaca-API #250); not documented, so `close_intent_enforced` turns it off (then it opens a short).
- A cancel is a request: the order is `pending_cancel` until the venue confirms it, and it can
  still fill in between (`cancel_delay`, seconds; 0 confirms at once).
- Whether canceling one leg also cancels its sibling is not documented: `cancel_leg_cancels_sibling`.
- When one leg fills the other is canceled, but the trade stream may not send that `canceled`
  (alpacahq/alpaca-py #198): `stream_oco_cancels`.
- Orders outside regular hours are accepted and wait for the open (day orders).
- Errors: 422 / 40010001 "client_order_id must be unique"; 403 / 40310000 "insufficient buying
  power"; 404 / 40410000 "order not found" / "position not found"; 422 / 42210000 "order is not
  cancelable".

Matching on one-minute bars: market orders fill at the next bar's open (or at once at the last
price with `instant_fills`); limits at the open when it is through the limit, else at the limit
when the range reaches it; stops likewise. A stop-loss and take-profit reached in one bar: the
stop fills unless the bar opened beyond the take-profit.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from daytrader.models import Bar

_NS = uuid.UUID("6f1c1e2a-0000-4000-8000-000000000006")
OPEN = frozenset({"new", "accepted", "held", "partially_filled", "pending_cancel"})
ZERO = Decimal(0)


class VenueError(Exception):
    """An error answer: HTTP status, Alpaca's code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def insufficient_qty(requested: int, available: int) -> VenueError:
    return VenueError(403, 40310000, f"insufficient qty available for order "
                                     f"(requested: {requested}, available: {available})")


@dataclass(slots=True)
class VOrder:
    id: str
    client_order_id: str
    symbol: str
    side: str  # "buy" | "sell"
    qty: int
    type: str  # "market" | "limit" | "stop"
    status: str
    created_at: datetime
    order_class: str = "simple"  # "simple" | "bracket" | "oto"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    position_intent: str | None = None
    filled_qty: int = 0
    filled_avg_price: Decimal | None = None
    updated_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    parent_id: str | None = None
    legs: list[str] = field(default_factory=list)
    leg: str = ""  # "take_profit" | "stop_loss" for a bracket's legs

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def remaining(self) -> int:
        return self.qty - self.filled_qty

    @property
    def sign(self) -> int:
        return 1 if self.side == "buy" else -1


@dataclass(slots=True)
class VPosition:
    symbol: str
    qty: int  # negative when short
    avg_entry_price: Decimal
    last: Decimal


@dataclass(frozen=True, slots=True)
class VFill:
    order: VOrder
    qty: int
    price: Decimal
    position_qty: int
    ts: datetime
    execution_id: str


Listener = Callable[[str, VOrder, "VFill | None"], None]
Scheduler = Callable[[float, Callable[[], None]], None]


class AlpacaVenue:
    """One account. Not thread-safe: the server calls it from its own event loop."""

    def __init__(self, symbols: tuple[str, ...], now: Callable[[], datetime], *,
                 cash: Decimal = Decimal("1000000"), instant_fills: bool = False,
                 legs_after_fill: str = "hidden", held_listed_as_open: bool = False,
                 legs_in_flat_listing: bool = True,
                 close_intent_enforced: bool = True, cancel_delay: float = 0.0,
                 cancel_leg_cancels_sibling: bool = False, stream_oco_cancels: bool = True,
                 margin_multiplier: Decimal = Decimal("1")) -> None:
        assert legs_after_fill in ("hidden", "top_level")
        self.symbols = symbols
        self.now = now
        self.cash = Decimal(cash)
        self.last_equity = self.cash
        self.instant_fills = instant_fills
        self.legs_after_fill = legs_after_fill
        self.held_listed_as_open = held_listed_as_open
        self.legs_in_flat_listing = legs_in_flat_listing
        self.close_intent_enforced = close_intent_enforced
        self.cancel_delay = cancel_delay
        self.cancel_leg_cancels_sibling = cancel_leg_cancels_sibling
        self.stream_oco_cancels = stream_oco_cancels
        self.margin_multiplier = Decimal(margin_multiplier)
        self.shortable: set[str] = set(symbols)
        self.orders: dict[str, VOrder] = {}  # by id, in creation order
        self.by_client_id: dict[str, str] = {}
        self.positions: dict[str, VPosition] = {}
        self.last: dict[str, Decimal] = {}
        self.listener: Listener | None = None
        # How a delayed cancel is confirmed later; the server passes its loop's call_later.
        self.schedule: Scheduler = lambda delay, fn: fn()
        self.shorts_opened: list[tuple[str, int]] = []  # (symbol, qty) of every flat -> short
        self._seq = itertools.count(1)
        self._exec = itertools.count(1)

    # -- events ------------------------------------------------------------------------------------
    def _emit(self, event: str, order: VOrder, fill: VFill | None = None) -> None:
        if self.listener is not None:
            self.listener(event, order, fill)

    # -- reading -----------------------------------------------------------------------------------
    def order(self, order_id: str) -> VOrder:
        o = self.orders.get(order_id)
        if o is None:
            raise VenueError(404, 40410000, "order not found")
        return o

    def order_by_client_id(self, client_order_id: str) -> VOrder:
        order_id = self.by_client_id.get(client_order_id)
        if order_id is None:
            raise VenueError(404, 40410000, "order not found")
        return self.orders[order_id]

    def position(self, symbol: str) -> VPosition:
        p = self.positions.get(symbol)
        if p is None:
            raise VenueError(404, 40410000, "position not found")
        return p

    def qty_available(self, symbol: str) -> int:
        """Shares of the position not promised to open orders that would reduce it; a bracket's
        two legs promise the same shares once."""
        p = self.positions.get(symbol)
        if p is None:
            return 0
        closing_side = "sell" if p.qty > 0 else "buy"
        held = 0
        counted_parents: set[str] = set()
        for o in self.orders.values():
            if o.symbol != symbol or o.side != closing_side or not o.is_open:
                continue
            if o.parent_id is not None:
                parent = self.orders[o.parent_id]
                if parent.status != "filled":
                    continue  # legs of an unfilled entry hold nothing yet
                if o.parent_id in counted_parents:
                    continue
                counted_parents.add(o.parent_id)
            held += o.remaining
        return max(0, abs(p.qty) - held)

    def visible(self, o: VOrder, status: str) -> bool:
        if status == "open":
            if not o.is_open:
                return False
            return o.status != "held" or self.held_listed_as_open
        if status == "closed":
            return not o.is_open
        return True

    def listing(self, status: str = "open", nested: bool = False) -> list[tuple[VOrder, list[VOrder]]]:
        """What GET /v2/orders lists, oldest first: (order, the legs shown nested under it)."""
        out: list[tuple[VOrder, list[VOrder]]] = []
        for o in self.orders.values():
            if not nested:
                if self.visible(o, status) and (o.parent_id is None or self.legs_in_flat_listing):
                    out.append((o, []))
                continue
            if o.parent_id is not None:
                parent = self.orders[o.parent_id]
                # Un-nested after the entry fills: hidden altogether, or listed on their own.
                if (parent.status == "filled" and self.legs_after_fill == "top_level"
                        and self.visible(o, status)):
                    out.append((o, []))
                continue
            legs = [self.orders[i] for i in o.legs] if o.status != "filled" else []
            shown = [leg for leg in legs if self.visible(leg, status)]
            if self.visible(o, status) or shown:
                out.append((o, legs))
        return out

    def account(self) -> dict[str, Decimal]:
        long_value = sum((p.last * p.qty for p in self.positions.values() if p.qty > 0), ZERO)
        short_value = sum((p.last * p.qty for p in self.positions.values() if p.qty < 0), ZERO)
        equity = self.cash + long_value + short_value
        exposure = long_value - short_value
        pending = ZERO
        for o in self.orders.values():
            if o.is_open and o.parent_id is None and not self._reduces(o):
                price = o.limit_price or o.stop_price or self.last.get(o.symbol, ZERO)
                pending += price * o.remaining
        buying_power = max(ZERO, equity * self.margin_multiplier - exposure - pending)
        return {"cash": self.cash, "equity": equity, "buying_power": buying_power,
                "last_equity": self.last_equity, "long_market_value": long_value,
                "short_market_value": short_value}

    # -- orders ------------------------------------------------------------------------------------
    def _new(self, **fields: Any) -> VOrder:
        n = next(self._seq)
        now = self.now()
        o = VOrder(id=str(uuid.uuid5(_NS, f"order-{n}")), created_at=now, updated_at=now, **fields)
        self.orders[o.id] = o
        self.by_client_id[o.client_order_id] = o.id
        return o

    def _reduces(self, o: VOrder) -> bool:
        p = self.positions.get(o.symbol)
        return p is not None and p.qty * o.sign < 0

    def submit(self, body: dict[str, Any]) -> VOrder:
        """POST /v2/orders."""
        cid = str(body.get("client_order_id") or uuid.uuid4())
        if cid in self.by_client_id:
            raise VenueError(422, 40010001, "client_order_id must be unique")
        symbol = str(body.get("symbol") or "")
        if symbol not in self.symbols:
            raise VenueError(422, 40010001, f"asset {symbol} not found")
        try:
            qty_dec = Decimal(str(body.get("qty")))
        except ArithmeticError:
            raise VenueError(422, 40010001, "invalid qty") from None
        if qty_dec <= 0 or qty_dec != int(qty_dec):
            raise VenueError(422, 40010001, "qty must be a positive whole number for this order")
        qty = int(qty_dec)
        side, kind = str(body.get("side")), str(body.get("type") or body.get("order_type"))
        if side not in ("buy", "sell") or kind not in ("market", "limit", "stop"):
            raise VenueError(422, 40010001, "invalid side or type")
        limit = _dec(body.get("limit_price"))
        stop = _dec(body.get("stop_price"))
        if kind == "limit" and limit is None:
            raise VenueError(422, 40010001, "limit_price is required for limit orders")
        if kind == "stop" and stop is None:
            raise VenueError(422, 40010001, "stop_price is required for stop orders")
        order_class = str(body.get("order_class") or "simple")
        take = _dec((body.get("take_profit") or {}).get("limit_price"))
        loss = _dec((body.get("stop_loss") or {}).get("stop_price"))
        intent = body.get("position_intent")
        sign = 1 if side == "buy" else -1
        p = self.positions.get(symbol)
        held_qty = p.qty if p else 0
        closing = held_qty * sign < 0
        if intent in ("sell_to_close", "buy_to_close") and self.close_intent_enforced:
            wanted = "sell" if intent == "sell_to_close" else "buy"
            if side != wanted or not closing:
                raise insufficient_qty(qty, 0)
        if closing:
            available = self.qty_available(symbol)
            if qty > available:  # never flips, and never sells shares the legs hold
                raise insufficient_qty(qty, available)
            if order_class != "simple":
                raise VenueError(422, 42210000, "bracket orders must be entry orders")
        else:
            if held_qty == 0 and side == "sell" and symbol not in self.shortable:
                raise VenueError(403, 40310000, f"asset {symbol} cannot be sold short")
            base = limit or stop or self.last.get(symbol)
            if base is None:
                raise VenueError(422, 42210000, "no trade price for the asset yet")
            if order_class in ("bracket", "oto"):
                if loss is not None and not loss * sign <= (base - Decimal("0.01") * sign) * sign:
                    raise VenueError(422, 42210000, f"stop_loss.stop_price must be "
                                     f"{'<=' if sign > 0 else '>='} base_price "
                                     f"{'-' if sign > 0 else '+'} 0.01")
                if take is not None and not take * sign >= (base + Decimal("0.01") * sign) * sign:
                    raise VenueError(422, 42210000, f"take_profit.limit_price must be "
                                     f"{'>=' if sign > 0 else '<='} base_price "
                                     f"{'+' if sign > 0 else '-'} 0.01")
                if order_class == "bracket" and (loss is None or take is None):
                    raise VenueError(422, 40010001, "bracket orders need take_profit and stop_loss")
            if base * qty > self.account()["buying_power"]:
                raise VenueError(403, 40310000, "insufficient buying power")
        o = self._new(client_order_id=cid, symbol=symbol, side=side, qty=qty, type=kind,
                      status="new", order_class=order_class, limit_price=limit, stop_price=stop,
                      position_intent=intent or ("buy_to_open" if side == "buy" and not closing
                                                 else "sell_to_open" if not closing
                                                 else f"{side}_to_close"))
        exit_side = "sell" if side == "buy" else "buy"
        if take is not None:
            leg = self._new(client_order_id=f"{uuid.uuid4()}", symbol=symbol, side=exit_side,
                            qty=qty, type="limit", status="held", order_class=order_class,
                            limit_price=take, parent_id=o.id, leg="take_profit",
                            position_intent=f"{exit_side}_to_close")
            o.legs.append(leg.id)
        if loss is not None:
            leg = self._new(client_order_id=f"{uuid.uuid4()}", symbol=symbol, side=exit_side,
                            qty=qty, type="stop", status="held", order_class=order_class,
                            stop_price=loss, parent_id=o.id, leg="stop_loss",
                            position_intent=f"{exit_side}_to_close")
            o.legs.append(leg.id)
        self._emit("new", o)
        return o

    def fill_now(self, o: VOrder) -> None:
        """`instant_fills`: a market order fills at once at the symbol's last price."""
        if self.instant_fills and o.type == "market" and o.is_open and o.symbol in self.last:
            self._fill(o, self.last[o.symbol])

    def cancel(self, order_id: str) -> None:
        """DELETE /v2/orders/{id}: accepted (204); confirmed now or after `cancel_delay`."""
        o = self.order(order_id)
        if not o.is_open:
            raise VenueError(422, 42210000, "order is not cancelable")
        if o.status == "pending_cancel":
            return
        targets = [o]
        if o.parent_id is None:
            targets += [self.orders[i] for i in o.legs if self.orders[i].is_open]
        elif self.cancel_leg_cancels_sibling:
            parent = self.orders[o.parent_id]
            targets += [self.orders[i] for i in parent.legs
                        if i != o.id and self.orders[i].is_open]
        for t in targets:
            self._request_cancel(t)

    def _request_cancel(self, o: VOrder) -> None:
        if self.cancel_delay <= 0:
            self._canceled(o)
            return
        o.status, o.updated_at = "pending_cancel", self.now()
        self._emit("pending_cancel", o)
        self.schedule(self.cancel_delay, lambda: self._canceled(o) if o.is_open else None)

    def _canceled(self, o: VOrder, emit: bool = True) -> None:
        o.status = "canceled"
        o.updated_at = o.canceled_at = self.now()
        if emit:
            self._emit("canceled", o)

    def cancel_all(self) -> list[str]:
        """DELETE /v2/orders: every open order is asked to cancel."""
        ids = [o.id for o in self.orders.values() if o.is_open and o.status != "pending_cancel"]
        for order_id in ids:
            o = self.orders[order_id]
            if o.is_open and o.status != "pending_cancel":
                self._request_cancel(o)
        return ids

    def close(self, symbol: str, qty: int | None = None) -> VOrder:
        """DELETE /v2/positions/{symbol}: a market order for the position (or `qty` of it),
        refused while open orders (a bracket's legs) hold the shares."""
        p = self.position(symbol)
        want = abs(p.qty) if qty is None else qty
        available = self.qty_available(symbol)
        if want > available:
            raise insufficient_qty(want, available)
        side = "sell" if p.qty > 0 else "buy"
        o = self._new(client_order_id=str(uuid.uuid4()), symbol=symbol, side=side, qty=want,
                      type="market", status="new", position_intent=f"{side}_to_close")
        self._emit("new", o)
        return o

    # -- matching ----------------------------------------------------------------------------------
    def on_bars(self, bars: list[Bar]) -> None:
        for bar in bars:
            self._match(bar)
            price = Decimal(str(bar.close))
            self.last[bar.symbol] = price
            p = self.positions.get(bar.symbol)
            if p is not None:
                p.last = price

    def _match(self, bar: Bar) -> None:
        # Orders working before the bar, in arrival order; legs activated by a fill in this bar
        # see only the bar's range (not its open).
        working = [o for o in self.orders.values()
                   if o.symbol == bar.symbol and o.is_open and o.parent_id is None]
        filled_now: set[str] = set()
        for o in working:
            if o.is_open:
                price = _trigger(o, bar, gap=True)
                if price is not None:
                    self._fill(o, price)
                    filled_now.add(o.id)
                    self._match_legs(o, bar, gap=False)
        parents = dict.fromkeys(o.parent_id for o in self.orders.values()
                                if o.symbol == bar.symbol and o.parent_id and o.is_open)
        for parent_id in parents:
            if parent_id not in filled_now and self.orders[parent_id].status == "filled":
                self._match_legs(self.orders[parent_id], bar, gap=True)

    def _match_legs(self, parent: VOrder, bar: Bar, *, gap: bool) -> None:
        legs = [self.orders[i] for i in parent.legs if self.orders[i].is_open]
        if not legs:
            return
        stop = next((leg for leg in legs if leg.leg == "stop_loss"), None)
        take = next((leg for leg in legs if leg.leg == "take_profit"), None)
        hits = [(leg, price) for leg in (stop, take) if leg is not None
                and (price := _trigger(leg, bar, gap=gap)) is not None]
        if not hits:
            return
        if len(hits) == 2 and gap and _trigger(take, bar, gap=True) == Decimal(str(bar.open)):
            hits = [h for h in hits if h[0] is take]  # opened beyond the take-profit
        leg, price = hits[0]
        self._fill(leg, price)

    def _fill(self, o: VOrder, price: Decimal) -> None:
        qty = o.remaining
        now = self.now()
        p = self.positions.get(o.symbol)
        before = p.qty if p else 0
        after = before + qty * o.sign
        self.cash -= price * qty * o.sign
        if after == 0:
            self.positions.pop(o.symbol, None)
        elif p is None or before * after < 0:
            self.positions[o.symbol] = VPosition(o.symbol, after, price, price)
            if after < 0:
                self.shorts_opened.append((o.symbol, after))
        elif abs(after) > abs(before):
            p.avg_entry_price = ((p.avg_entry_price * abs(before) + price * qty)
                                 / abs(after)).quantize(Decimal("0.0001"))
            p.qty = after
        else:
            p.qty = after
        o.filled_avg_price = price
        o.filled_qty = o.qty
        o.status = "filled"
        o.updated_at = o.filled_at = now
        fill = VFill(o, qty, price, after, now, str(uuid.uuid5(_NS, f"exec-{next(self._exec)}")))
        self._emit("fill", o, fill)
        if o.parent_id is None:
            for leg_id in o.legs:  # the entry filled: its legs start working
                leg = self.orders[leg_id]
                if leg.status == "held" and leg.leg == "take_profit":
                    leg.status, leg.updated_at = "new", now
                    self._emit("new", leg)
            return
        parent = self.orders[o.parent_id]
        for sibling_id in parent.legs:  # one leg filled: the other is canceled
            sibling = self.orders[sibling_id]
            if sibling_id != o.id and sibling.is_open:
                self._canceled(sibling, emit=self.stream_oco_cancels)

    def end_day(self) -> None:
        self.last_equity = self.account()["equity"]


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise VenueError(422, 40010001, f"invalid price {value!r}") from None


def _trigger(o: VOrder, bar: Bar, *, gap: bool) -> Decimal | None:
    """The price at which `o` fills in `bar`, or None."""
    op, hi, lo = (Decimal(str(x)) for x in (bar.open, bar.high, bar.low))
    buy = o.side == "buy"
    if o.type == "market":
        return op
    if o.type == "limit":
        limit = o.limit_price
        assert limit is not None
        if gap and (op <= limit if buy else op >= limit):
            return op
        return limit if (lo <= limit if buy else hi >= limit) else None
    stop = o.stop_price
    assert stop is not None
    if gap and (op >= stop if buy else op <= stop):
        return op
    return stop if (hi >= stop if buy else lo <= stop) else None
