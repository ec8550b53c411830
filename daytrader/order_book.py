"""The order book: every order the engine knows, by id, with why it was sent and which orders
protect which position.

Protection is known by order id: a bracket's legs are registered from the broker's answer to the
submit (and from trade updates and by-id lookups), never inferred from what an open-orders
listing happens to show (Alpaca stops nesting the legs once the entry fills and may leave a held
stop-loss out of `status=open` listings). A position's stop and target are the legs working at
the broker now; a position without a working stop is unprotected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, replace

from daytrader.models import OPEN_STATUSES, WORKING_STATUSES, Order, OrderRole, quick_init

PROTECTIVE = (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT)


@quick_init
@dataclass(frozen=True, slots=True)
class Protection:
    """The legs protecting one position now (None: none working)."""

    stop: Order | None = None
    take_profit: Order | None = None


class OrderBook:
    def __init__(self) -> None:
        self.known: dict[str, Order] = {}  # id -> latest state, in the order first seen
        self.open: dict[str, Order] = {}  # the open subset, for checks on every order
        self.reasons: dict[str, str] = {}  # client order id -> why it was sent
        self.strategies: dict[str, str] = {}  # symbol -> strategy that opened its position
        self.roles: dict[str, OrderRole] = {}  # leg id -> its role, from the submit answer
        self.parents: dict[str, str] = {}  # leg id -> entry id
        self._version = 0
        self._changed: asyncio.Event | None = None

    # -- learning ----------------------------------------------------------------------------------
    def remember(self, order: Order) -> Order:
        """Records an order's state (and its legs', when the answer carries them). A role or
        parent learned earlier by id wins over one the broker's listing suggests."""
        if order.legs:  # the legs are remembered on their own
            for leg in order.legs:
                self.roles[leg.id] = leg.role
                self.parents[leg.id] = order.id
                self.remember(leg)
            prev = self.known.get(order.id)
            if (prev is not None and prev.status is order.status
                    and prev.filled_qty == order.filled_qty):
                return prev  # the answer to a submit the stream already told: only its legs are new
            order = Order.make(order.id, order.client_order_id, order.symbol, order.side, order.qty,
                               order.order_type, order.status, order.submitted_at, order.role,
                               order.limit_price, order.stop_price, order.filled_qty,
                               order.filled_avg_price, order.parent_id, order.updated_at,
                               order.reject_reason)
        prev = self.known.get(order.id)
        if prev is not None and is_older(order, prev):
            return prev  # an answer sent before what the stream already told: never go back
        return self.record(order)

    def record(self, order: Order) -> Order:
        """Records a state of an order known to be no older than what is held, without legs
        (`remember`, or a broker event already compared with what is held)."""
        order_id = order.id
        role = self.roles.get(order_id)
        if role is None:
            if order.role in PROTECTIVE:  # a leg first seen on its own (listing, journal)
                self.roles[order_id] = order.role
                if order.parent_id:
                    self.parents[order_id] = order.parent_id
        else:
            parent = self.parents.get(order_id)
            if role is not order.role or (parent and parent != order.parent_id):
                order = replace(order, role=role, parent_id=parent or order.parent_id)
        self.known[order_id] = order
        if order.status in OPEN_STATUSES:
            self.open[order_id] = order
        else:
            self.open.pop(order_id, None)
        self._version += 1  # a change: wake whoever waits for one (see changed)
        if self._changed is not None:
            self._changed.set()
        return order

    async def changed(self, timeout: float) -> bool:
        """Waits until any order changes (or `timeout` seconds); True if one did."""
        if self._changed is None:
            self._changed = asyncio.Event()
        version = self._version
        self._changed.clear()
        try:
            async with asyncio.timeout(timeout):
                while self._version == version:
                    await self._changed.wait()
                    self._changed.clear()
        except TimeoutError:
            return False
        return True

    # -- reading -----------------------------------------------------------------------------------
    def get(self, order_id: str) -> Order | None:
        return self.known.get(order_id)

    def working(self, symbol: str) -> list[Order]:
        """The symbol's open orders, legs included, whatever a listing shows."""
        return [o for o in self.open.values() if o.symbol == symbol]

    def legs(self) -> list[str]:
        """Ids of every protective leg ever registered that is not known to be done."""
        return [i for i in self.roles if (o := self.known.get(i)) is None or o.status.is_open]

    def protection(self, symbol: str) -> Protection:
        stop = take = None
        for o in self.open.values():
            if o.symbol != symbol or o.status not in WORKING_STATUSES:
                continue
            if o.role is OrderRole.STOP_LOSS:
                stop = o
            elif o.role is OrderRole.TAKE_PROFIT:
                take = o
        return Protection(stop, take)

    def protections(self, symbols: Iterable[str]) -> dict[str, Protection]:
        wanted = set(symbols)
        found: dict[str, list[Order | None]] = {s: [None, None] for s in wanted}
        for o in self.open.values():
            if o.symbol in wanted and o.status.is_working and o.role in PROTECTIVE:
                found[o.symbol][o.role is OrderRole.TAKE_PROFIT] = o
        return {s: Protection(stop, take) for s, (stop, take) in found.items()}

    def open_entries(self) -> list[Order]:
        return [o for o in self.open.values() if o.role is OrderRole.ENTRY]


def is_older(order: Order, known: Order) -> bool:
    """Whether `order` is an earlier state than `known`: fewer shares filled, or open again
    after it was done (a final state is final)."""
    return order.filled_qty < known.filled_qty or (
        known.status not in OPEN_STATUSES and order.status in OPEN_STATUSES)
