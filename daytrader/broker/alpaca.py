"""Alpaca through alpaca-py: the Broker protocol over TradingClient, fills from TradingStream.

alpaca-py does blocking HTTP with no timeout and sleeps inside a call to retry 429/504, POST
included. Here every call runs in a worker thread with an explicit deadline (and a socket timeout),
alpaca-py's own retries are off, and an order submit is never retried: a timeout, a dropped
connection, a 429 or a 5xx raise `BrokerUnavailable`, so the OrderManager looks the order up by its
client order id before anything is sent again.

trade_updates drive fills and positions. Events missed while the stream is down are not replayed,
so every (re)connection after the first calls the gap handler, which reconciles over REST.
An authentication that never answers times out and is retried with backoff.

Every REST call waits its turn in one `RequestBudget` (Alpaca: 200 per minute per account), orders
ahead of reads; a 429 pauses all calls until the reset Alpaca names. Calls that cannot reach
Alpaca mark the broker unhealthy (entries pause; closes keep trying) until one gets through.
Listings are flat (`nested=false`) and paged, and a bracket's legs are named in the submit answer,
because Alpaca stops nesting legs under a filled entry (see shared/notes/alpaca.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import html
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import pydantic
import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, PositionIntent, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.requests import (
    GetCalendarRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
)
from alpaca.trading.stream import TradingStream

from daytrader.broker import (
    BrokerAuthError,
    BrokerError,
    BrokerRejected,
    BrokerUnavailable,
    BrokerUnreachable,
    DuplicateClientOrderId,
    InsufficientBuyingPower,
    InsufficientQty,
    NotCancelable,
    NotFound,
    RateLimited,
    UpdateListener,
)
from daytrader.broker.budget import ORDER, READ, RequestBudget
from daytrader.clock import EXCHANGE_TZ, Session
from daytrader.models import (
    ZERO,
    Account,
    Bar,
    Fill,
    Health,
    Order,
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    Side,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class _OneLine(logging.Filter):
    """alpaca-py's streams log every failed connection with a full traceback; the guard below
    reports each in one line already, so their records keep the message only."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = record.exc_text = None
        return True


for _name in ("alpaca.trading.stream", "alpaca.data.live.websocket"):
    logging.getLogger(_name).addFilter(_OneLine())
KEY_SETTINGS = "ALPACA_API_KEY / ALPACA_SECRET_KEY"
PAGE = 500  # Alpaca's largest page of orders
MAX_PAGES = 4  # the newest 2,000 orders: a trading day's, with room to spare
UNHEALTHY_AFTER = 3  # calls in a row that cannot get through mark the broker unhealthy
# alpaca-py's own endpoints when no URL is set (named in messages about an unreachable broker).
DEFAULT_URLS = {True: ("https://paper-api.alpaca.markets", "wss://paper-api.alpaca.markets/stream"),
                False: ("https://api.alpaca.markets", "wss://api.alpaca.markets/stream")}

_STATUS = {
    "new": OrderStatus.NEW, "accepted": OrderStatus.NEW, "pending_new": OrderStatus.NEW,
    "accepted_for_bidding": OrderStatus.NEW,
    "pending_replace": OrderStatus.NEW, "pending_review": OrderStatus.NEW,
    "calculated": OrderStatus.NEW, "stopped": OrderStatus.NEW, "suspended": OrderStatus.NEW,
    "done_for_day": OrderStatus.NEW, "held": OrderStatus.HELD,
    "pending_cancel": OrderStatus.PENDING_CANCEL,
    "partially_filled": OrderStatus.PARTIALLY_FILLED, "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED, "replaced": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED, "rejected": OrderStatus.REJECTED,
}


@dataclass(frozen=True, slots=True)
class AlpacaConfig:
    """Where and how to reach Alpaca. URLs left empty mean alpaca-py's own paper/live hosts."""

    api_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    paper: bool = True
    url: str = ""  # trading REST, without /v2
    trade_stream_url: str = ""  # full WebSocket URL of trade_updates
    timeout: float = 10.0  # seconds for any one REST call
    auth_timeout: float = 10.0  # seconds for a stream's authentication reply
    reconnect_min: float = 1.0
    reconnect_max: float = 30.0
    workers: int = 16
    requests_per_minute: int = 200  # Alpaca's limit per account; 0: no budget (local servers)

    @classmethod
    def from_settings(cls, settings: Any) -> AlpacaConfig:
        return cls(api_key=settings.alpaca_api_key.reveal(),
                   secret_key=settings.alpaca_secret_key.reveal(),
                   paper=settings.mode != "live", url=settings.alpaca_base_url,
                   trade_stream_url=settings.alpaca_stream_url, timeout=settings.alpaca_timeout,
                   auth_timeout=settings.alpaca_timeout,
                   requests_per_minute=settings.alpaca_requests_per_minute)

    @property
    def base_url(self) -> str:
        return self.url or DEFAULT_URLS[self.paper][0]

    @property
    def stream_url(self) -> str:
        return self.trade_stream_url or DEFAULT_URLS[self.paper][1]


@dataclass(frozen=True, slots=True)
class MarketClock:
    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


@dataclass(frozen=True, slots=True)
class AssetInfo:
    symbol: str
    tradable: bool
    shortable: bool
    easy_to_borrow: bool
    fractionable: bool
    status: str


# -- conversions ---------------------------------------------------------------------------------
def to_decimal(value: Any, what: str = "amount") -> Decimal:
    """Alpaca sends money and quantities as strings: read them exactly (never via float)."""
    if value is None or value == "":
        return ZERO
    try:
        return Decimal(value if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise BrokerError(f"unreadable {what} from Alpaca: {value!r}", status=502) from None


def to_qty(value: Any) -> int:
    """Whole shares (bracket orders are whole-share only); a fraction is kept as its integer part
    with a warning, since the engine books whole shares."""
    d = to_decimal(value, "quantity")
    q = int(d)
    if q != d:
        log.warning("fractional quantity %s from Alpaca booked as %d", d, q)
    return q


def _enum_value(x: Any) -> str:
    return str(getattr(x, "value", x) or "")


def _order_type(o: AlpacaOrder) -> OrderType:
    kind = _enum_value(o.order_type or o.type)
    if kind == "market":
        return OrderType.MARKET
    if kind == "limit":
        return OrderType.LIMIT
    if kind in ("stop", "stop_limit", "trailing_stop"):
        return OrderType.STOP
    return OrderType.LIMIT if o.limit_price is not None else OrderType.MARKET


def _price(value: Any) -> Decimal | None:
    return None if value is None or value == "" else to_decimal(value, "price")


_TAGS = re.compile(r"<[^>]+>")


def _body_text(raw: str, limit: int = 160) -> str:
    """A non-JSON error body (an HTML 503 page, plain text) as one short readable line."""
    text = " ".join(html.unescape(_TAGS.sub(" ", raw or "")).split())
    return (text[:limit] + "...") if len(text) > limit else (text or "empty body")


def map_api_error(exc: APIError, what: str) -> BrokerError:
    """alpaca-py's APIError (read defensively: a non-JSON body makes `.code` raise) -> one of ours."""
    status = 0
    try:
        status = int(exc.status_code or 0)
    except (TypeError, ValueError):
        status = 0
    raw = str(exc)
    code: int | None = None
    try:
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise ValueError
        message = str(body.get("message") or "").strip() or _body_text(raw)
        code = int(body["code"]) if body.get("code") is not None else None
    except (ValueError, TypeError):
        message = _body_text(raw)
    low = message.lower()
    if status == 401 or (status == 403 and code is None):
        return BrokerAuthError(f"Alpaca refused the API keys ({status} {message}): check "
                               f"{KEY_SETTINGS} (paper keys for paper, live keys for live)",
                               status=status)
    if status == 429:
        limited = RateLimited(f"rate limited by Alpaca (429 {message}) on {what}; not processed")
        limited.retry_after = _reset_in(exc)
        return limited
    if status >= 500:
        return BrokerUnavailable(f"Alpaca server error {status} on {what}: {message}",
                                 status=status)
    if "client_order_id must be unique" in low or (code == 40010001 and "client_order_id" in low):
        return DuplicateClientOrderId(message, code=code)
    if status == 403 and "buying power" in low:
        return InsufficientBuyingPower(message, code=code)
    if status == 403 and "qty" in low:
        return InsufficientQty(message, code=code)
    if status == 404:
        return NotFound(message, code=code)
    if status == 422 and "cancelable" in low:
        return NotCancelable(message, code=code)
    return BrokerRejected(f"{what} refused by Alpaca ({status}): {message}",
                          code=code or (status * 100000 if status else None),
                          status=status or None)


def _reset_in(exc: APIError) -> float:
    """How long to hold every call after a 429: until X-RateLimit-Reset (epoch seconds) when
    X-RateLimit-Remaining says the quota is used up, else a short breath."""
    try:
        headers = exc.response.headers if exc.response is not None else {}
        if headers.get("X-RateLimit-Remaining") != "0":
            return 0.25
        reset = float(headers.get("X-RateLimit-Reset", ""))
    except (AttributeError, TypeError, ValueError):
        return 1.0
    return min(60.0, max(0.0, reset - time.time()))


class _TimeoutSession(requests.Session):
    """A requests session whose every request has a timeout (alpaca-py sets none)."""

    def __init__(self, timeout: float, pool: int) -> None:
        super().__init__()
        self.timeout = timeout
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method, url, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, **kwargs)


def quiet_client(client: Any, timeout: float, pool: int = 16) -> Any:
    """An alpaca-py REST client with a socket timeout and without its blind 429/504 retries
    (its constructor only accepts retry_attempts > 0, so they are turned off afterwards)."""
    client._retry = 0
    client._retry_wait = 0
    client._retry_codes = []
    client._session = _TimeoutSession(timeout, pool)
    return client


async def call_in_thread(pool: concurrent.futures.Executor, timeout: float, what: str,
                         fn: Callable[..., T], *args: Any) -> T:
    """Runs a blocking alpaca-py call in a worker thread with a deadline; errors become ours."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(pool, functools.partial(fn, *args))
    try:
        return await asyncio.wait_for(future, timeout)
    except TimeoutError:
        raise BrokerUnavailable(f"no answer from Alpaca in {timeout:g}s on {what}") from None
    except APIError as exc:
        raise map_api_error(exc, what) from None
    except requests.Timeout:  # the socket's deadline (same length) can fire first: same story
        raise BrokerUnavailable(f"no answer from Alpaca in {timeout:g}s on {what}") from None
    except requests.ConnectionError as exc:
        reason = type(exc.__context__ or exc).__name__
        raise BrokerUnavailable(f"connection to Alpaca failed or dropped on {what} "
                                f"({reason}); outcome unknown") from None
    except (requests.RequestException, ValueError, pydantic.ValidationError) as exc:
        # A 200 whose body is not what Alpaca sends: treat the outcome as unknown.
        raise BrokerUnavailable(f"unreadable answer from Alpaca on {what}: "
                                f"{_body_text(str(exc), 120)}") from None


class GuardedStream:
    """Mixed into alpaca-py's streams, which wait forever for an authentication reply and drop
    silently: a deadline on connect + authentication, and every up and down told to the owner.
    Subclasses name themselves (`label`) and say how they report (`_down`, `_up`)."""

    label = "stream"

    def _guard(self, owner: Any, reconnect_min: float, reconnect_max: float) -> None:
        self._owner = owner
        self._reconnect_min_backoff = reconnect_min
        self._reconnect_max_backoff = reconnect_max

    def _down(self, detail: str) -> None:
        raise NotImplementedError

    def _up(self) -> None:
        raise NotImplementedError

    def _refused(self, exc: ValueError) -> str:
        return f"Alpaca refused the keys; check {KEY_SETTINGS}"

    async def _start_ws(self) -> None:
        timeout = self._owner.config.auth_timeout
        try:
            await asyncio.wait_for(super()._start_ws(), timeout)  # type: ignore[misc]
        except TimeoutError:
            self._down(f"{self.label}: no answer to connect/authentication in {timeout:g}s; "
                       "retrying")
            raise
        except ValueError as exc:
            self._down(f"{self.label}: {self._refused(exc)}")
            raise
        except OSError as exc:
            self._down(f"{self.label}: cannot connect ({type(exc).__name__})")
            raise
        self._up()

    async def _consume(self) -> Any:
        try:
            return await super()._consume()  # type: ignore[misc]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._down(f"{self.label} disconnected ({type(exc).__name__}); reconnecting")
            raise


class _TradeStream(GuardedStream, TradingStream):
    """alpaca-py's TradingStream, guarded: trade updates feed the broker's listener."""

    label = "trade stream"

    def __init__(self, owner: AlpacaBroker) -> None:
        cfg = owner.config
        super().__init__(cfg.api_key, cfg.secret_key, paper=cfg.paper, raw_data=True,
                         url_override=cfg.trade_stream_url or None)
        self._guard(owner, cfg.reconnect_min, cfg.reconnect_max)

    def _down(self, detail: str) -> None:
        self._owner._stream_down(detail)

    def _up(self) -> None:
        self._owner._stream_up()


class AlpacaBroker:
    """The Broker protocol on Alpaca (paper, live or a local Alpaca-compatible server)."""

    in_process = False  # every call crosses the network

    def __init__(self, config: AlpacaConfig, client: TradingClient | None = None) -> None:
        self.config = config
        self.name = "alpaca-paper" if config.paper else "alpaca-LIVE"
        self.client = client or TradingClient(config.api_key, config.secret_key, paper=config.paper,
                                              url_override=config.url or None)
        quiet_client(self.client, config.timeout, config.workers)
        self._pool = concurrent.futures.ThreadPoolExecutor(config.workers,
                                                           thread_name_prefix="alpaca")
        self.budget = RequestBudget(config.requests_per_minute)
        self.reachable = True  # False after UNHEALTHY_AFTER calls in a row could not get through
        self.failures = 0
        self._listener: UpdateListener | None = None
        self._gap_handler: Callable[[], Awaitable[Any]] | None = None
        self._health: Callable[[Health], None] | None = None
        self._roles: dict[str, OrderRole] = {}
        self._parents: dict[str, str] = {}
        self._stream: _TradeStream | None = None
        self._stream_task: asyncio.Task | None = None
        self._connected = asyncio.Event()
        self._attempted = asyncio.Event()  # the stream's first connection attempt has ended
        self._connections = 0
        self.stream_ok = False
        self.stream_detail = ""
        self.reconciliations = 0

    # -- wiring --------------------------------------------------------------------------------
    def set_listener(self, listener: UpdateListener) -> None:
        self._listener = listener

    def set_gap_handler(self, handler: Callable[[], Awaitable[Any]]) -> None:
        """Called after every stream reconnection: events during the gap are not replayed."""
        self._gap_handler = handler

    def set_health_reporter(self, report: Callable[[Health], None]) -> None:
        self._health = report

    def on_bars(self, bars: list[Bar]) -> None:
        """Alpaca matches orders itself; bars are not needed here."""

    def account_view(self) -> Account | None:
        return None  # the engine keeps a copy refreshed over REST

    def restore(self, fills: Any, orders: Any, last_prices: Any) -> None:
        """Alpaca outlived the process: what it holds is read back by the engine's sync."""

    async def _call(self, what: str, fn: Callable[..., T], *args: Any, kind: str = READ) -> T:
        await self.budget.acquire(kind)
        try:
            result = await call_in_thread(self._pool, self.config.timeout, what, fn, *args)
        except RateLimited as exc:
            self.budget.pause(exc.retry_after)
            raise
        except BrokerUnavailable as exc:
            self.failures += 1
            if self.failures >= UNHEALTHY_AFTER:
                self._reachable(False, f"Alpaca at {self.config.base_url} unavailable "
                                       f"({self.failures} calls failed): {exc.message}")
            raise
        except BrokerError:
            self._reachable(True)
            raise
        self._reachable(True)
        return result

    def _reachable(self, ok: bool, detail: str = "") -> None:
        if ok:
            self.failures = 0
        if ok == self.reachable:
            return
        self.reachable = ok
        if self._health is not None:
            self._health(Health("broker", ok, detail or f"{self.name}: answering again",
                                datetime.now(EXCHANGE_TZ)))

    # -- life ----------------------------------------------------------------------------------
    async def start(self, stream: bool = True, wait: float | None = None,
                    require_stream: bool = False) -> Account:
        """Checks the keys (a 401/403 names the key settings), then starts trade_updates and
        waits (up to `wait` seconds) for it to be connected. An unreachable endpoint raises
        BrokerUnreachable naming its setting and URL (with `require_stream`, the stream's too)."""
        try:
            account = await self.get_account()
        except BrokerUnavailable as exc:
            raise BrokerUnreachable(f"cannot reach Alpaca's trading API at ALPACA_BASE_URL="
                                    f"{self.config.base_url}: {exc.message}") from None
        if stream:
            self.start_stream()
            ready = self._attempted if require_stream else self._connected
            try:
                await asyncio.wait_for(ready.wait(),
                                       wait if wait is not None else self.config.auth_timeout + 5)
                if not self.stream_ok:  # the first attempt failed: at start, that is the answer
                    raise TimeoutError
            except TimeoutError:
                if require_stream:
                    await self.stop()
                    raise BrokerUnreachable(
                        f"cannot connect to Alpaca's trade stream at ALPACA_STREAM_URL="
                        f"{self.config.stream_url}: {self.stream_detail or 'no answer'}") from None
                log.warning("trade stream not connected yet; entries pause until it is")
        return account

    def start_stream(self) -> None:
        if self._stream_task is not None:
            return
        self._stream = _TradeStream(self)
        self._stream.subscribe_trade_updates(self._on_trade_update)
        self._stream_task = asyncio.get_running_loop().create_task(self._stream._run_forever(),
                                                                   name="alpaca-trade-stream")

    async def stop(self) -> None:
        if self._stream is not None and self._stream_task is not None:
            await self._stream.stop_ws()
            self._stream_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._stream_task
            with contextlib.suppress(Exception):  # a half-closed socket; nothing left to do
                await self._stream.close()
        self._stream = self._stream_task = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _report(self, ok: bool, detail: str) -> None:
        if self._health is not None:
            self._health(Health("trade_stream", ok, detail, datetime.now(EXCHANGE_TZ)))

    def _stream_down(self, detail: str) -> None:
        self.stream_detail = detail
        self._attempted.set()
        was = self.stream_ok
        self.stream_ok = False
        self._connected.clear()
        if was or "authentication" in detail or "refused" in detail:
            log.warning(detail)
        self._report(False, detail)

    def _stream_up(self) -> None:
        self._attempted.set()
        self._connections += 1
        self.stream_ok = True
        self._connected.set()
        self._report(True, f"trade stream connected ({self._connections})")
        if self._connections > 1 and self._gap_handler is not None:
            self.reconciliations += 1
            asyncio.get_running_loop().create_task(self._reconcile())

    async def _reconcile(self) -> None:
        assert self._gap_handler is not None
        try:
            await self._gap_handler()
        except Exception:
            log.exception("reconciliation after a stream gap failed")

    # -- trade updates ---------------------------------------------------------------------------
    async def _on_trade_update(self, msg: dict) -> None:
        try:
            update = self.update_from_message(msg)
        except Exception:
            log.exception("unreadable trade update: %.300s", msg)
            return
        if update is not None and self._listener is not None:
            self._listener(update)

    def update_from_message(self, msg: dict) -> OrderUpdate | None:
        data = msg.get("data") or {}
        if "order" not in data:
            return None
        event = str(data.get("event", ""))
        order = self.order_from(AlpacaOrder(**data["order"]))
        fill = None
        if event in ("fill", "partial_fill") and data.get("qty") and data.get("price"):
            ts = data.get("timestamp")
            when = datetime.fromisoformat(ts.replace("Z", "+00:00")) if isinstance(ts, str) else (
                order.updated_at or order.submitted_at)
            fill = Fill(id=str(data.get("execution_id") or f"{order.id}-{order.filled_qty}"),
                        order_id=order.id, client_order_id=order.client_order_id,
                        symbol=order.symbol, side=order.side, qty=to_qty(data["qty"]),
                        price=to_decimal(data["price"], "price"), commission=ZERO,
                        ts=when.astimezone(EXCHANGE_TZ), role=order.role)
        return OrderUpdate(event, order, fill)

    # -- conversions -----------------------------------------------------------------------------
    def _remember_legs(self, o: AlpacaOrder) -> None:
        for leg in o.legs or []:
            leg_id = str(leg.id)
            self._parents[leg_id] = str(o.id)
            self._roles[leg_id] = (OrderRole.STOP_LOSS if _order_type(leg) is OrderType.STOP
                                   else OrderRole.TAKE_PROFIT)

    def _role(self, o: AlpacaOrder) -> OrderRole:
        known = self._roles.get(str(o.id))
        if known is not None:
            return known
        intent = _enum_value(o.position_intent)
        closing = intent.endswith("_to_close")
        if _enum_value(o.order_class) in ("bracket", "oco", "oto") and closing:
            return OrderRole.STOP_LOSS if _order_type(o) is OrderType.STOP else OrderRole.TAKE_PROFIT
        if closing or o.client_order_id.startswith("dt-exit-"):
            return OrderRole.EXIT
        return OrderRole.ENTRY

    def order_from(self, o: AlpacaOrder) -> Order:
        self._remember_legs(o)
        legs = tuple(self.order_from(leg) for leg in o.legs or [])
        order_id = str(o.id)
        status = _STATUS.get(_enum_value(o.status), OrderStatus.NEW)
        side = Side.BUY if _enum_value(o.side) == "buy" else Side.SELL
        return Order(id=order_id, client_order_id=o.client_order_id, symbol=o.symbol or "",
                     side=side, qty=to_qty(o.qty), order_type=_order_type(o), status=status,
                     submitted_at=o.submitted_at.astimezone(EXCHANGE_TZ), role=self._role(o),
                     limit_price=_price(o.limit_price), stop_price=_price(o.stop_price),
                     filled_qty=to_qty(o.filled_qty), filled_avg_price=_price(o.filled_avg_price),
                     parent_id=self._parents.get(order_id),
                     updated_at=o.updated_at.astimezone(EXCHANGE_TZ) if o.updated_at else None,
                     reject_reason="rejected by Alpaca" if status is OrderStatus.REJECTED else "",
                     legs=legs)

    @staticmethod
    def order_request(r: OrderRequest) -> MarketOrderRequest | LimitOrderRequest | StopOrderRequest:
        common: dict[str, Any] = dict(symbol=r.symbol, qty=r.qty,
                                      side=OrderSide.BUY if r.side is Side.BUY else OrderSide.SELL,
                                      time_in_force=TimeInForce.DAY,
                                      client_order_id=r.client_order_id)
        if r.position_intent:
            common["position_intent"] = PositionIntent(r.position_intent)
        if r.stop_loss is not None and r.take_profit is not None:
            common.update(order_class=OrderClass.BRACKET,
                          take_profit=TakeProfitRequest(limit_price=float(r.take_profit)),
                          stop_loss=StopLossRequest(stop_price=float(r.stop_loss)))
        elif r.stop_loss is not None:
            common.update(order_class=OrderClass.OTO,
                          stop_loss=StopLossRequest(stop_price=float(r.stop_loss)))
        elif r.take_profit is not None:
            common.update(order_class=OrderClass.OTO,
                          take_profit=TakeProfitRequest(limit_price=float(r.take_profit)))
        if r.order_type is OrderType.LIMIT:
            assert r.limit_price is not None
            return LimitOrderRequest(limit_price=float(r.limit_price), **common)
        if r.order_type is OrderType.STOP:
            assert r.stop_price is not None
            return StopOrderRequest(stop_price=float(r.stop_price), **common)
        return MarketOrderRequest(**common)

    # -- account, clock, calendar, assets --------------------------------------------------------
    async def get_account(self) -> Account:
        a = await self._call("get account", self.client.get_account)
        cash = to_decimal(a.cash, "cash")
        equity = to_decimal(a.equity or a.portfolio_value, "equity")
        return Account(cash=cash, equity=equity, buying_power=to_decimal(a.buying_power),
                       start_of_day_equity=to_decimal(a.last_equity) if a.last_equity else equity)

    async def get_clock(self) -> MarketClock:
        c = await self._call("get clock", self.client.get_clock)
        return MarketClock(c.timestamp.astimezone(EXCHANGE_TZ), bool(c.is_open),
                           c.next_open.astimezone(EXCHANGE_TZ), c.next_close.astimezone(EXCHANGE_TZ))

    async def get_calendar(self, start: date, end: date) -> list[Session]:
        days = await self._call("get calendar", self.client.get_calendar,
                                GetCalendarRequest(start=start, end=end))
        # alpaca-py parses "HH:MM" as naive New York times.
        return [Session(d.date, d.open.replace(tzinfo=EXCHANGE_TZ),
                        d.close.replace(tzinfo=EXCHANGE_TZ)) for d in days]

    async def get_asset(self, symbol: str) -> AssetInfo:
        a = await self._call(f"get asset {symbol}", self.client.get_asset, symbol)
        return AssetInfo(a.symbol, bool(a.tradable), bool(a.shortable), bool(a.easy_to_borrow),
                         bool(a.fractionable), _enum_value(a.status))

    # -- orders ----------------------------------------------------------------------------------
    async def submit_order(self, request: OrderRequest) -> Order:
        """Sent once. Any doubt about whether it landed raises BrokerUnavailable: the caller
        looks it up by client order id before it may send again."""
        what = f"submit {request.side} {request.qty} {request.symbol} [{request.client_order_id}]"
        o = await self._call(what, self.client.submit_order, self.order_request(request),
                             kind=ORDER)
        return self.order_from(o)

    async def get_order(self, order_id: str) -> Order:
        o = await self._call(f"get order {order_id}", self.client.get_order_by_id, order_id)
        return self.order_from(o)

    async def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        try:
            o = await self._call(f"look up {client_order_id}", self.client.get_order_by_client_id,
                                 client_order_id)
        except NotFound:
            return None
        return self.order_from(o)

    async def list_orders(self, open_only: bool = True,
                          since: datetime | None = None) -> list[Order]:
        """Flat (legs listed as orders of their own), newest first, every page."""
        status = QueryOrderStatus.OPEN if open_only else QueryOrderStatus.ALL
        found: dict[str, Order] = {}
        until: datetime | None = None
        for _ in range(MAX_PAGES):
            page = await self._call("list orders", self.client.get_orders, GetOrdersRequest(
                status=status, limit=PAGE, nested=False, after=since, until=until,
                direction=Sort.DESC))
            new = [o for o in page if str(o.id) not in found]
            for o in new:
                order = self.order_from(o)
                found[order.id] = order
            if len(page) < PAGE or not new:
                break
            until = min(o.submitted_at for o in page)  # the next page: older ones
        else:
            log.warning("order listing stopped after %d pages of %d", MAX_PAGES, PAGE)
        return list(found.values())

    async def cancel_order(self, order_id: str) -> None:
        await self._call(f"cancel order {order_id}", self.client.cancel_order_by_id, order_id,
                         kind=ORDER)

    async def cancel_all(self) -> list[str]:
        answers = await self._call("cancel all orders", self.client.cancel_orders, kind=ORDER)
        failed = [str(a.id) for a in answers if a.status >= 300]
        if failed:
            log.warning("cancel all: %d orders not canceled: %s", len(failed), ", ".join(failed))
        return [str(a.id) for a in answers if a.status < 300]

    # -- positions -------------------------------------------------------------------------------
    @staticmethod
    def position_from(p: Any) -> Position:
        qty = to_qty(p.qty)
        if _enum_value(p.side) == "short" and qty > 0:
            qty = -qty
        avg = to_decimal(p.avg_entry_price, "avg_entry_price")
        last = to_decimal(p.current_price) if p.current_price else avg
        return Position(symbol=p.symbol, qty=qty, avg_entry_price=avg, last_price=last,
                        opened_at=datetime.now(EXCHANGE_TZ))

    async def list_positions(self) -> list[Position]:
        positions = await self._call("list positions", self.client.get_all_positions)
        return [self.position_from(p) for p in positions]

    async def get_position(self, symbol: str) -> Position | None:
        try:
            p = await self._call(f"get position {symbol}", self.client.get_open_position, symbol)
        except NotFound:
            return None
        position = self.position_from(p)
        return position if position.qty else None

    async def close_position(self, symbol: str) -> Order:
        o = await self._call(f"close {symbol}", self.client.close_position, symbol, kind=ORDER)
        order = self.order_from(o)
        self._roles[order.id] = OrderRole.EXIT
        return Order(**{**_fields(order), "role": OrderRole.EXIT})

    async def close_all(self) -> list[Order]:
        """Alpaca's one call: cancel every open order, then close every position."""
        answers = await self._call("close all positions", self.client.close_all_positions, True,
                                   kind=ORDER)
        orders, failed = [], []
        for a in answers:
            if isinstance(a.body, AlpacaOrder) and (a.status or 200) < 300:
                order = self.order_from(a.body)
                self._roles[order.id] = OrderRole.EXIT
                orders.append(Order(**{**_fields(order), "role": OrderRole.EXIT}))
            else:
                failed.append(f"{a.symbol}: {getattr(a.body, 'message', a.body)}")
        if failed:
            log.warning("close all: %d positions not closed: %s", len(failed), "; ".join(failed))
        return orders


def _fields(order: Order) -> dict[str, Any]:
    return {name: getattr(order, name) for name in Order.__dataclass_fields__}
