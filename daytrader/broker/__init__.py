"""The Broker protocol every execution venue implements, and the errors a broker raises."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from daytrader.models import Account, Bar, Fill, Order, OrderRequest, OrderUpdate, Position


class BrokerError(Exception):
    """A broker said no, or could not be asked. `code` and `status` follow Alpaca's API."""

    status: int = 500
    code: int = 50000000

    def __init__(self, message: str, *, code: int | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return f"{self.message} (code {self.code})"


class BrokerRejected(BrokerError):
    status, code = 422, 42210000


class DuplicateClientOrderId(BrokerRejected):
    status, code = 422, 40010001


class InsufficientBuyingPower(BrokerRejected):
    status, code = 403, 40310000


class InsufficientQty(BrokerRejected):
    status, code = 403, 40310000


class MarketClosed(BrokerRejected):
    status, code = 422, 42210000


class UnknownSymbol(BrokerRejected):
    status, code = 422, 40010001


class NotFound(BrokerError):
    status, code = 404, 40410000


class NotCancelable(BrokerError):
    status, code = 422, 42210000


class BrokerUnavailable(BrokerError):
    """Timeout, dropped connection or 5xx: whether the request landed is unknown."""

    status, code = 503, 50300000


class RateLimited(BrokerUnavailable):
    """HTTP 429: the request was not processed; safe to send again after a pause."""

    status, code = 429, 42910000
    retry_after: float = 1.0  # seconds until the broker's window resets (its X-RateLimit-Reset)


class BrokerUnreachable(BrokerError):
    """At start-up an endpoint could not be reached; the message names its setting and URL."""

    status, code = 503, 50300001


class BrokerAuthError(BrokerError):
    """The broker refused the API keys (401/403 without an order-related code)."""

    status, code = 401, 40110000


UpdateListener = Callable[[OrderUpdate], None]


class Broker(Protocol):
    name: str
    # True for a venue inside this process (the sim exchange): every call completes without
    # waiting on anything, so a cancel is final when it returns. The engine then runs a close
    # in line instead of on tasks of its own (concurrent requests buy nothing there), and the
    # order manager sends without a timer. A wrapper that can wait must say False.
    in_process: bool

    def set_listener(self, listener: UpdateListener) -> None: ...

    def on_bars(self, bars: Sequence[Bar]) -> None:
        """Market data the venue should see; the sim exchange matches orders on it."""

    def account_view(self) -> Account | None:
        """The account as it stands now without asking over the network (the sim exchange
        knows it exactly), or None: the engine then keeps a copy refreshed from get_account."""

    async def get_account(self) -> Account: ...

    async def submit_order(self, request: OrderRequest) -> Order:
        """The order as accepted, with a bracket's legs in `legs` (their ids track protection)."""

    async def get_order(self, order_id: str) -> Order: ...

    async def get_order_by_client_id(self, client_order_id: str) -> Order | None: ...

    async def list_orders(self, open_only: bool = True,
                          since: datetime | None = None) -> list[Order]:
        """Every order the broker lists (open ones, or all submitted after `since`), legs as
        orders of their own, all pages. A listing may leave out held legs: look those up by id."""

    async def list_positions(self) -> list[Position]: ...

    async def get_position(self, symbol: str) -> Position | None:
        """The broker's position in `symbol` now; None when flat."""

    async def cancel_order(self, order_id: str) -> None: ...

    async def cancel_all(self) -> list[str]: ...

    async def close_position(self, symbol: str) -> Order: ...

    async def close_all(self) -> list[Order]: ...

    def restore(self, fills: Sequence[Fill], orders: Sequence[Order],
                last_prices: dict[str, float]) -> None:
        """After a crash, what the journal holds: an in-process venue rebuilds itself from it;
        a real broker, which outlived the process, ignores it (the engine syncs instead)."""


def is_in_process(broker: object) -> bool:
    """Whether `broker` says it is a venue in this process (`Broker.in_process`); one that does
    not say is taken as one that can wait."""
    return getattr(broker, "in_process", False) is True
