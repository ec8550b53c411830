"""A local Alpaca-compatible server for tests: REST, trade_updates (JSON) and market data (msgpack).

It speaks the shapes and status codes of Alpaca's public API, so the real alpaca-py clients can be
pointed at it with `url_override`. Orders, legs and positions follow `alpaca_venue.AlpacaVenue`,
a model written from Alpaca's documentation and its users' reports (not from DayTrader's sim
exchange); its switches make each undocumented behaviour go either way, so both can be tested.
It runs on its own thread and event loop at 127.0.0.1 on a free port; nothing here reaches the
internet.

Like Alpaca it allows 200 trading REST requests per minute per account (429 beyond, with the
X-RateLimit-Limit / -Remaining / -Reset headers on every answer; `rate_limit=None` turns it off).
Faults are injected per request: latency, 429, 500/503 with non-JSON bodies, a connection dropped
after the order was accepted (or before it was read), a request that never gets an answer, a trade
stream that drops in the middle of a fill, and stream authentications that never answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgpack
from aiohttp import WSMsgType, web
from alpaca_venue import AlpacaVenue, VenueError, VFill, VOrder

from daytrader.clock import MarketCalendar, SimClock
from daytrader.models import Bar

KEY, SECRET = "PKTESTKEY0000000", "test-secret"
logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # injected drops are expected
_NS = uuid.UUID("6f1c1e2a-0000-4000-8000-000000000006")
NON_JSON = {500: "Internal Server Error",
            503: "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"}


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do to one request: "latency", "status", "drop_before", "drop_after" or "hang"."""

    kind: str
    status: int = 0
    seconds: float = 0.0


class FaultPlan:
    """Faults queued for the next matching requests, and optionally random ones at a rate."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, str, Fault]] = []
        self.rate = 0.0
        self.kinds: tuple[Fault, ...] = ()
        self.methods: Collection[str] = ()
        self.rng = random.Random(0)
        self.injected: Counter[str] = Counter()

    def pick(self, method: str, path: str) -> Fault | None:
        for i, (m, prefix, fault) in enumerate(self.queued):
            if m in (method, "*") and path.startswith(prefix):
                del self.queued[i]
                return self._count(fault)
        if self.rate and method in self.methods and self.rng.random() < self.rate:
            return self._count(self.rng.choice(self.kinds))
        return None

    def _count(self, fault: Fault) -> Fault:
        self.injected[fault.kind if fault.kind != "status" else str(fault.status)] += 1
        return fault


class _Conn:
    """One stream connection with an ordered outbox."""

    def __init__(self, ws: web.WebSocketResponse, binary: bool) -> None:
        self.ws = ws
        self.binary = binary
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.ready = False
        self.symbols: set[str] = set()
        self.writer = asyncio.ensure_future(self._write())

    def send(self, payload: Any) -> None:
        self.outbox.put_nowait(payload)

    def close(self) -> None:
        self.outbox.put_nowait(None)

    async def _write(self) -> None:
        while True:
            payload = await self.outbox.get()
            if payload is None:
                self.ready = False
                await self.ws.close()
                return
            try:
                if self.binary:
                    await self.ws.send_bytes(msgpack.packb(payload))
                else:
                    await self.ws.send_str(json.dumps(payload))
            except (ConnectionError, RuntimeError):
                return


class FakeAlpaca:
    """The server. Build it, `start()`, point alpaca-py at `url`, `trade_stream_url`,
    `data_stream_url`; drive the market with `push_bars`; `stop()` at the end. Keyword
    arguments not named here go to `AlpacaVenue` (its switches for uncertain behaviour)."""

    def __init__(self, symbols: Iterable[str], calendar: MarketCalendar, start: datetime, *,
                 cash: Decimal = Decimal("1000000"), split_fills: bool = False,
                 page_size: int = 1000, rate_limit: int | None = 200, **venue: Any) -> None:
        self.symbols = tuple(symbols)
        self.calendar = calendar
        self.clock = SimClock(start)
        self.venue = AlpacaVenue(self.symbols, self.clock.now, cash=cash, **venue)
        self.venue.listener = self._on_event
        self.account_id = str(uuid.uuid5(_NS, "account"))
        self.key, self.secret = KEY, SECRET
        self.faults = FaultPlan()
        self.latency = 0.0  # seconds added to every REST request (the benchmark's 20 ms)
        self.split_fills = split_fills  # each fill arrives as partial_fill + fill
        self.page_size = page_size
        self.rate_limit = rate_limit  # trading REST requests per 60 s; None: unlimited
        self.history: list[Bar] = []
        # Stream faults.
        self.trade_auth_hang = False
        self.data_auth_hang = False
        self.data_connection_limit = False  # every data auth answers 406
        self.drop_trade_stream_after: int | None = None  # events, then the connection drops
        # What happened, for the tests' assertions.
        self.requests: Counter[str] = Counter()
        self.arrivals: list[tuple[float, str]] = []  # (perf_counter, "METHOD /path")
        self.created: Counter[str] = Counter()  # client order id -> orders created with it
        self.order_posts: Counter[str] = Counter()  # client order id -> POSTs that reached us
        self.rate_limited = 0  # requests answered 429 by the rate limit (not by a fault)
        self.events_sent = 0
        self.events_lost = 0
        self.trade_connections = 0
        self.data_connections = 0
        self.inflight = 0
        self._window: deque[float] = deque()  # monotonic times of trading requests in the last 60 s
        self._trade_conns: set[_Conn] = set()
        self._data_conns: set[_Conn] = set()
        self._all_conns: list[_Conn] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def shortable(self) -> set[str]:
        return self.venue.shortable

    # -- life ----------------------------------------------------------------------------------
    def start(self) -> FakeAlpaca:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-alpaca",
                                        daemon=True)
        self._thread.start()
        loop = self._loop
        self.venue.schedule = lambda delay, fn: loop.call_later(delay, fn)
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    async def _serve(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/v2/account", self._account)
        r.add_get("/v2/clock", self._clock)
        r.add_get("/v2/calendar", self._calendar)
        r.add_get("/v2/assets", self._assets)
        r.add_get("/v2/assets/{symbol}", self._asset)
        r.add_post("/v2/orders", self._submit)
        r.add_get("/v2/orders", self._orders)
        r.add_delete("/v2/orders", self._cancel_all)
        r.add_get("/v2/orders:by_client_order_id", self._order_by_client_id)
        r.add_get("/v2/orders/{order_id}", self._order)
        r.add_delete("/v2/orders/{order_id}", self._cancel)
        r.add_get("/v2/positions", self._positions)
        r.add_delete("/v2/positions", self._close_all)
        r.add_get("/v2/positions/{symbol}", self._position)
        r.add_delete("/v2/positions/{symbol}", self._close)
        r.add_get("/v2/stocks/bars", self._bars)
        r.add_get("/stream", self._trade_stream)
        r.add_get("/v2/{feed}", self._data_stream)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            for conn in list(self._trade_conns | self._data_conns):
                await conn.ws.close()
            for conn in self._all_conns:
                conn.writer.cancel()
            if self._runner is not None:
                await self._runner.cleanup()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def trade_stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    @property
    def data_stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v2/iex"

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Runs `fn` on the server's loop (where the venue lives) and returns its result."""
        assert self._loop is not None

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    # -- driving the market and reading the account --------------------------------------------
    def push_bars(self, bars: list[Bar]) -> None:
        """One minute of bars: the clock moves to the minute's end, orders match, bars stream."""

        def run() -> None:
            end = max(b.ts for b in bars) + timedelta(minutes=1)
            if end > self.clock.now():
                self.clock.set(end)
            self.venue.on_bars(bars)
            for conn in list(self._data_conns):
                out = [self._bar_msg(b) for b in bars
                       if conn.ready and (b.symbol in conn.symbols or "*" in conn.symbols)]
                if out:
                    conn.send(out)

        self.call(run)

    def set_time(self, ts: datetime) -> None:
        self.call(self.clock.set, ts)

    def disconnect_trade_streams(self) -> None:
        self.call(lambda: [c.close() for c in list(self._trade_conns)])

    def submit(self, **body: Any) -> VOrder:
        """An order placed at the account from outside DayTrader (another app, a person)."""
        body.setdefault("type", "market")
        body.setdefault("time_in_force", "day")
        return self.call(self.venue.submit, body)

    def order_for(self, client_order_id: str) -> VOrder | None:
        order_id = self.venue.by_client_id.get(client_order_id)
        return self.venue.orders[order_id] if order_id else None

    def positions(self) -> dict[str, int]:
        return self.call(lambda: {s: p.qty for s, p in self.venue.positions.items()})

    def open_orders(self) -> list[VOrder]:
        return self.call(lambda: [o for o in self.venue.orders.values() if o.is_open])

    def all_orders(self) -> list[VOrder]:
        return self.call(lambda: list(self.venue.orders.values()))

    def cash(self) -> Decimal:
        return self.call(lambda: self.venue.cash)

    def max_requests_in(self, seconds: float = 60.0, prefix: str = "") -> int:
        """The most trading REST requests that arrived within any `seconds` (sliding window)."""
        times = [t for t, what in self.arrivals if not what.split(" ", 1)[1].startswith(
            "/v2/stocks") and what.split(" ", 1)[1].startswith(prefix)]
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] > seconds:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    # -- JSON shapes -----------------------------------------------------------------------------
    def _order_json(self, o: VOrder, legs: list[VOrder] | None = None) -> dict:
        return {
            "id": o.id, "client_order_id": o.client_order_id,
            "created_at": _iso(o.created_at), "updated_at": _iso(o.updated_at),
            "submitted_at": _iso(o.created_at), "filled_at": _iso(o.filled_at),
            "expired_at": None, "canceled_at": _iso(o.canceled_at), "failed_at": None,
            "replaced_at": None, "replaced_by": None, "replaces": None,
            "asset_id": str(uuid.uuid5(_NS, o.symbol)), "symbol": o.symbol,
            "asset_class": "us_equity", "notional": None, "qty": str(o.qty),
            "filled_qty": str(o.filled_qty), "filled_avg_price": _str(o.filled_avg_price),
            "order_class": o.order_class, "order_type": o.type, "type": o.type, "side": o.side,
            "position_intent": o.position_intent, "time_in_force": "day",
            "limit_price": _str(o.limit_price), "stop_price": _str(o.stop_price),
            "status": o.status, "extended_hours": False,
            "legs": [self._order_json(leg) for leg in legs] if legs else None,
            "trail_percent": None, "trail_price": None, "hwm": None,
        }

    def _submitted_json(self, o: VOrder) -> dict:
        """A new bracket's answer names its legs (Alpaca's submit response nests them)."""
        return self._order_json(o, [self.venue.orders[i] for i in o.legs])

    def _position_json(self, symbol: str) -> dict:
        p = self.venue.positions[symbol]
        value = p.last * p.qty
        cost = p.avg_entry_price * p.qty
        return {
            "asset_id": str(uuid.uuid5(_NS, symbol)), "symbol": symbol, "exchange": "NASDAQ",
            "asset_class": "us_equity", "asset_marginable": True,
            "avg_entry_price": str(p.avg_entry_price), "qty": str(p.qty),
            "qty_available": str(self.venue.qty_available(symbol) * (1 if p.qty > 0 else -1)),
            "side": "long" if p.qty > 0 else "short",
            "market_value": str(value), "cost_basis": str(cost),
            "unrealized_pl": str(value - cost), "unrealized_plpc": "0",
            "unrealized_intraday_pl": str(value - cost), "unrealized_intraday_plpc": "0",
            "current_price": str(p.last), "lastday_price": str(p.last), "change_today": "0",
        }

    @staticmethod
    def _bar_msg(b: Bar) -> dict:
        seconds = int(b.ts.timestamp())
        return {"T": "b", "S": b.symbol, "o": b.open, "h": b.high, "l": b.low, "c": b.close,
                "v": int(b.volume), "t": msgpack.Timestamp(seconds, 0), "n": 10,
                "vw": round((b.high + b.low + b.close) / 3, 4)}

    # -- trade updates ---------------------------------------------------------------------------
    def _on_event(self, event: str, order: VOrder, fill: VFill | None) -> None:
        if fill is not None and self.split_fills and fill.qty > 1:
            half = fill.qty // 2
            partial = self._order_json(order) | {"status": "partially_filled",
                                                 "filled_qty": str(half)}
            self._emit("partial_fill", partial, fill, half, fill.position_qty - (
                fill.qty - half) * order.sign)
            self._emit("fill", self._order_json(order), fill, fill.qty - half, fill.position_qty)
            return
        self._emit(event, self._order_json(order), fill, fill.qty if fill else 0,
                   fill.position_qty if fill else 0)

    def _emit(self, event: str, order: dict, fill: VFill | None, qty: int,
              position_qty: int) -> None:
        data: dict[str, Any] = {"event": event, "order": order,
                                "timestamp": order["updated_at"] or _iso(self.clock.now())}
        if fill is not None:
            data.update(execution_id=f"{fill.execution_id}-{qty}", price=str(fill.price),
                        qty=str(qty), position_qty=str(position_qty))
        conns = [c for c in self._trade_conns if c.ready]
        if not conns:
            self.events_lost += 1
            return
        self.events_sent += 1
        for conn in conns:
            conn.send({"stream": "trade_updates", "data": data})
        if self.drop_trade_stream_after is not None:
            self.drop_trade_stream_after -= 1
            if self.drop_trade_stream_after <= 0:
                self.drop_trade_stream_after = None
                for conn in conns:
                    conn.ready = False
                    conn.close()

    async def _trade_stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = _Conn(ws, binary=False)
        self._all_conns.append(conn)
        self.trade_connections += 1
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT and msg.type is not WSMsgType.BINARY:
                    continue
                body = json.loads(msg.data)
                action, data = body.get("action"), body.get("data") or {}
                if action == "authenticate":
                    if self.trade_auth_hang:
                        continue  # never answered
                    ok = data.get("key_id") == self.key and data.get("secret_key") == self.secret
                    conn.send({"stream": "authorization",
                               "data": {"action": "authenticate",
                                        "status": "authorized" if ok else "unauthorized"}})
                    if not ok:
                        conn.close()
                elif action == "listen":
                    streams = (data.get("streams") or [])
                    conn.ready = "trade_updates" in streams
                    if conn.ready:
                        self._trade_conns.add(conn)
                    conn.send({"stream": "listening", "data": {"streams": streams}})
        finally:
            conn.ready = False
            self._trade_conns.discard(conn)
        return ws

    # -- market data stream ----------------------------------------------------------------------
    async def _data_stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = _Conn(ws, binary=True)
        self._all_conns.append(conn)
        self.data_connections += 1
        conn.send([{"T": "success", "msg": "connected"}])
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.BINARY and msg.type is not WSMsgType.TEXT:
                    continue
                raw = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                body = msgpack.unpackb(raw)
                action = body.get("action")
                if action == "auth":
                    if self.data_auth_hang:
                        continue
                    if body.get("key") != self.key or body.get("secret") != self.secret:
                        conn.send([{"T": "error", "code": 402, "msg": "auth failed"}])
                        conn.close()
                    elif self.data_connection_limit or any(c.ready for c in self._data_conns):
                        conn.send([{"T": "error", "code": 406, "msg": "connection limit exceeded"}])
                        conn.close()
                    else:
                        conn.ready = True
                        self._data_conns.add(conn)
                        conn.send([{"T": "success", "msg": "authenticated"}])
                elif action == "subscribe":
                    conn.symbols |= set(body.get("bars") or [])
                    conn.send([{"T": "subscription", "trades": [], "quotes": [],
                                "bars": sorted(conn.symbols), "updatedBars": [], "dailyBars": [],
                                "statuses": [], "lulds": [], "corrections": [],
                                "cancelErrors": []}])
        finally:
            conn.ready = False
            self._data_conns.discard(conn)
        return ws

    # -- REST plumbing ---------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler) -> web.StreamResponse:
        if request.path in ("/stream",) or (request.path.startswith("/v2/")
                                            and request.path.count("/") == 2
                                            and request.headers.get("Upgrade")):
            return await handler(request)
        self.inflight += 1
        try:
            return await self._handle(request, handler)
        finally:
            self.inflight -= 1

    def _rate_headers(self) -> dict[str, str]:
        """X-RateLimit-* as Alpaca sends them; Reset is when the oldest counted request expires."""
        if self.rate_limit is None:
            return {}
        now = time.monotonic()
        while self._window and now - self._window[0] >= 60:
            self._window.popleft()
        reset = time.time() + (60 - (now - self._window[0]) if self._window else 0)
        return {"X-RateLimit-Limit": str(self.rate_limit),
                "X-RateLimit-Remaining": str(max(0, self.rate_limit - len(self._window))),
                "X-RateLimit-Reset": str(int(reset) + 1)}

    def _over_limit(self, path: str) -> bool:
        if self.rate_limit is None or path.startswith("/v2/stocks"):  # the data API is apart
            return False
        self._rate_headers()  # drops what left the window
        if len(self._window) >= self.rate_limit:
            self.rate_limited += 1
            return True
        self._window.append(time.monotonic())
        return False

    async def _handle(self, request: web.Request, handler) -> web.StreamResponse:
        self.requests[f"{request.method} {request.path}"] += 1
        self.arrivals.append((time.perf_counter(), f"{request.method} {request.path}"))
        if self.latency:
            await asyncio.sleep(self.latency)
        if (request.headers.get("APCA-API-KEY-ID") != self.key
                or request.headers.get("APCA-API-SECRET-KEY") != self.secret):
            if request.headers.get("APCA-API-KEY-ID") == self.key:
                return web.json_response({"message": "forbidden."}, status=403)
            return web.json_response({"message": "unauthorized."}, status=401)
        if self._over_limit(request.path):
            return web.json_response({"code": 42910000, "message": "rate limit exceeded"},
                                     status=429, headers=self._rate_headers())
        fault = self.faults.pick(request.method, request.path)
        response = await self._faulted(request, handler, fault)
        response.headers.update(self._rate_headers())
        return response

    async def _faulted(self, request: web.Request, handler, fault: Fault | None) -> web.StreamResponse:
        if fault is None:
            return await handler(request)
        if fault.kind == "latency":  # lands even if the client gave up waiting
            return await asyncio.shield(self._late(request, handler, fault.seconds))
        if fault.kind == "status":
            if fault.status == 429:
                return web.json_response({"code": 42910000, "message": "rate limit exceeded"},
                                         status=429)
            return web.Response(status=fault.status, text=NON_JSON.get(fault.status, "error"),
                                content_type="text/html")
        if fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
            return self._drop(request)
        if fault.kind == "drop_before":
            return self._drop(request)
        if fault.kind == "drop_after":
            await handler(request)  # the request takes effect; its answer is lost
            return self._drop(request)
        raise AssertionError(f"unknown fault {fault}")

    async def _late(self, request: web.Request, handler, seconds: float) -> web.StreamResponse:
        self.inflight += 1
        try:
            await request.read()  # the body arrived; the answer is what is slow
            await asyncio.sleep(seconds)
            return await handler(request)
        finally:
            self.inflight -= 1

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        raise ConnectionResetError("fault injected: connection dropped")

    @staticmethod
    def _error(exc: VenueError) -> web.Response:
        return web.json_response({"code": exc.code, "message": exc.message}, status=exc.status)

    # -- REST handlers ---------------------------------------------------------------------------
    async def _account(self, request: web.Request) -> web.Response:
        a = self.venue.account()
        return web.json_response({
            "id": self.account_id, "account_number": "PA000FAKE", "status": "ACTIVE",
            "crypto_status": "INACTIVE", "currency": "USD", "buying_power": str(a["buying_power"]),
            "regt_buying_power": str(a["buying_power"]), "non_marginable_buying_power": str(a["cash"]),
            "cash": str(a["cash"]), "portfolio_value": str(a["equity"]), "equity": str(a["equity"]),
            "last_equity": str(a["last_equity"]), "multiplier": str(self.venue.margin_multiplier),
            "shorting_enabled": True, "trading_blocked": False, "transfers_blocked": False,
            "account_blocked": False, "trade_suspended_by_user": False,
            "created_at": "2024-01-02T15:00:00Z", "long_market_value": str(a["long_market_value"]),
            "short_market_value": str(a["short_market_value"]), "initial_margin": "0",
            "maintenance_margin": "0", "sma": "0", "daytrade_count": 0,
        })

    async def _clock(self, request: web.Request) -> web.Response:
        now = self.clock.now()
        return web.json_response({"timestamp": now.isoformat(), "is_open": self.calendar.is_open(now),
                                  "next_open": self.calendar.next_open(now).isoformat(),
                                  "next_close": self.calendar.next_close(now).isoformat()})

    async def _calendar(self, request: web.Request) -> web.Response:
        start = date.fromisoformat(request.query.get("start", self.clock.now().date().isoformat()))
        end = date.fromisoformat(request.query.get("end", start.isoformat()))
        out = []
        for s in self.calendar.sessions_from(start):
            if s.date > end:
                break
            out.append({"date": s.date.isoformat(), "open": f"{s.open:%H:%M}",
                        "close": f"{s.close:%H:%M}", "session_open": "0400",
                        "session_close": "2000", "settlement_date": s.date.isoformat()})
        return web.json_response(out)

    def _asset_json(self, symbol: str) -> dict:
        return {"id": str(uuid.uuid5(_NS, symbol)), "class": "us_equity", "exchange": "NASDAQ",
                "symbol": symbol, "name": f"{symbol} Inc.", "status": "active", "tradable": True,
                "marginable": True, "shortable": symbol in self.shortable,
                "easy_to_borrow": symbol in self.shortable, "fractionable": True,
                "attributes": []}

    async def _assets(self, request: web.Request) -> web.Response:
        return web.json_response([self._asset_json(s) for s in self.symbols])

    async def _asset(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        if symbol not in self.symbols:
            return web.json_response({"code": 40410000, "message": "asset not found"}, status=404)
        return web.json_response(self._asset_json(symbol))

    async def _submit(self, request: web.Request) -> web.Response:
        body = await request.json()
        cid = body.get("client_order_id") or str(uuid.uuid4())
        body["client_order_id"] = cid
        self.order_posts[cid] += 1
        try:
            order = self.venue.submit(body)
        except VenueError as exc:
            return self._error(exc)
        self.created[cid] += 1
        answer = self._submitted_json(order)  # as accepted; the fill (if any) streams after
        self.venue.fill_now(order)
        return web.json_response(answer)

    async def _orders(self, request: web.Request) -> web.Response:
        q = request.query
        status = q.get("status", "open")
        limit = min(int(q.get("limit", "50")), 500)
        nested = q.get("nested", "false").lower() == "true"
        symbols = set(q["symbols"].split(",")) if q.get("symbols") else None
        after = _when(q.get("after"))
        until = _when(q.get("until"))
        listed = [(o, legs) for o, legs in self.venue.listing(status, nested)
                  if (symbols is None or o.symbol in symbols)
                  and (after is None or o.created_at > after)
                  and (until is None or o.created_at <= until)]
        if q.get("direction", "desc") == "desc":
            listed.reverse()  # newest first, as Alpaca lists them
        return web.json_response([self._order_json(o, legs) for o, legs in listed[:limit]])

    async def _order(self, request: web.Request) -> web.Response:
        try:
            order = self.venue.order(request.match_info["order_id"])
        except VenueError as exc:
            return self._error(exc)
        legs = ([self.venue.orders[i] for i in order.legs]
                if request.query.get("nested", "").lower() == "true" else None)
        return web.json_response(self._order_json(order, legs))

    async def _order_by_client_id(self, request: web.Request) -> web.Response:
        try:
            order = self.venue.order_by_client_id(request.query.get("client_order_id", ""))
        except VenueError as exc:
            return self._error(exc)
        return web.json_response(self._order_json(order))

    async def _cancel(self, request: web.Request) -> web.Response:
        try:
            self.venue.cancel(request.match_info["order_id"])
        except VenueError as exc:
            return self._error(exc)
        return web.Response(status=204)

    async def _cancel_all(self, request: web.Request) -> web.Response:
        ids = self.venue.cancel_all()
        return web.json_response([{"id": i, "status": 200, "body": None} for i in ids],
                                 status=207)

    async def _positions(self, request: web.Request) -> web.Response:
        return web.json_response([self._position_json(s) for s in self.venue.positions])

    async def _position(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        if symbol not in self.venue.positions:
            return self._error(VenueError(404, 40410000, "position not found"))
        return web.json_response(self._position_json(symbol))

    async def _close(self, request: web.Request) -> web.Response:
        qty = request.query.get("qty")
        try:
            order = self.venue.close(request.match_info["symbol"], int(qty) if qty else None)
        except VenueError as exc:
            return self._error(exc)
        answer = self._order_json(order)
        self.venue.fill_now(order)
        return web.json_response(answer)

    async def _close_all(self, request: web.Request) -> web.Response:
        if request.query.get("cancel_orders", "").lower() == "true":
            self.venue.cancel_all()
        out = []
        for symbol in list(self.venue.positions):
            try:
                order = self.venue.close(symbol)
            except VenueError as exc:
                out.append({"symbol": symbol, "status": exc.status,
                            "body": {"code": exc.code, "message": exc.message,
                                     "symbol": symbol}})
                continue
            out.append({"symbol": symbol, "status": 200, "order_id": order.id,
                        "body": self._order_json(order)})
            self.venue.fill_now(order)
        return web.json_response(out, status=207)

    async def _bars(self, request: web.Request) -> web.Response:
        q = request.query
        symbols = set((q.get("symbols") or "").split(","))
        start = _when(q.get("start"))
        end = _when(q.get("end"))
        if q.get("feed", "iex") not in ("iex", "sip"):
            return web.json_response({"code": 42210000, "message": "invalid feed"}, status=422)
        rows = sorted((b for b in self.history if b.symbol in symbols
                       and (start is None or b.ts >= start) and (end is None or b.ts <= end)),
                      key=lambda b: (b.symbol, b.ts))
        offset = int(q.get("page_token") or 0)
        limit = min(int(q.get("limit") or 1000), self.page_size)
        page = rows[offset:offset + limit]
        token = str(offset + limit) if offset + limit < len(rows) else None
        bars: dict[str, list] = {}
        for b in page:
            bars.setdefault(b.symbol, []).append({
                "t": _iso(b.ts), "o": b.open, "h": b.high, "l": b.low, "c": b.close,
                "v": int(b.volume), "n": 10, "vw": round((b.high + b.low + b.close) / 3, 4)})
        return web.json_response({"bars": bars, "next_page_token": token})


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


# -- helpers for the tests: the real alpaca-py clients (through our adapters) on this server ------
def broker_config(server: FakeAlpaca, **changes: Any):
    from daytrader.broker.alpaca import AlpacaConfig

    values: dict[str, Any] = dict(api_key=server.key, secret_key=server.secret, url=server.url,
                                  trade_stream_url=server.trade_stream_url, timeout=1.0,
                                  auth_timeout=0.5, reconnect_min=0.05, reconnect_max=0.2)
    values.update(changes)
    return AlpacaConfig(**values)


def data_config(server: FakeAlpaca, **changes: Any):
    from daytrader.data.alpaca import AlpacaDataConfig

    values: dict[str, Any] = dict(api_key=server.key, secret_key=server.secret, url=server.url,
                                  stream_url=server.data_stream_url, timeout=2.0, auth_timeout=0.5,
                                  reconnect_min=0.05, reconnect_max=0.2, grace=0.2)
    values.update(changes)
    return AlpacaDataConfig(**values)


def paper_engine(server: FakeAlpaca, calendar: MarketCalendar, broker=None, strategy=None,
                 **overrides: Any):
    """An engine in paper mode on this server (sharing its clock), with a strategy that never
    signals (unless one is given), so each test decides every order."""
    from daytrader.broker.alpaca import AlpacaBroker
    from daytrader.config import Secret, Settings
    from daytrader.engine import Engine
    from daytrader.strategy import NoReadings

    class Idle(NoReadings):
        name = "idle"

        def warm_up(self, bar: Bar) -> None:
            pass

        def on_bar(self, bar: Bar, position_qty: int):
            return None

    values: dict[str, Any] = dict(mode="paper", symbols=server.symbols,
                                  alpaca_api_key=Secret(server.key),
                                  alpaca_secret_key=Secret(server.secret),
                                  max_positions=10_000, risk_per_trade_pct=100.0)
    values.update(overrides)
    settings = Settings(**values)
    broker = broker or AlpacaBroker(broker_config(server))
    engine = Engine(settings, broker, calendar, server.clock, strategy=strategy or Idle())
    broker.set_health_reporter(engine.report_health)
    broker.set_gap_handler(lambda: engine.sync("trade stream reconnect"))
    return engine


async def eventually(predicate: Callable[[], bool], timeout: float = 30.0,
                     what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def flat_minute(symbols: Iterable[str], ts: datetime, price: float) -> list[Bar]:
    return [Bar(s, ts, price, price, price, price, 1000) for s in symbols]
