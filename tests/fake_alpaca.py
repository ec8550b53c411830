"""A local Alpaca-compatible server for tests: REST, trade_updates (JSON) and market data (msgpack).

It speaks the shapes and status codes of Alpaca's public API, so the real alpaca-py clients can be
pointed at it with `url_override`, and it matches orders with the sim exchange. It runs on its own
thread and event loop at 127.0.0.1 on a free port; nothing here reaches the internet.

Faults are injected per request: latency, 429, 500/503 with non-JSON bodies, a connection dropped
after the order was accepted (or before it was read), a request that never gets an answer, a trade
stream that drops in the middle of a fill, and stream authentications that never answer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgpack
from aiohttp import WSMsgType, web

from daytrader.broker import BrokerError, NotFound
from daytrader.broker.sim import SimExchange
from daytrader.clock import MarketCalendar, SimClock
from daytrader.models import Bar, Fill, Order, OrderRequest, OrderRole, OrderStatus, OrderType, Side

KEY, SECRET = "PKTESTKEY0000000", "test-secret"
logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # injected drops are expected
_NS = uuid.UUID("6f1c1e2a-0000-4000-8000-000000000006")
_INTENT = {(OrderRole.ENTRY, Side.BUY): "buy_to_open", (OrderRole.ENTRY, Side.SELL): "sell_to_open"}
NON_JSON = {500: "Internal Server Error",
            503: "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"}


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _num(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


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
    `data_stream_url`; drive the market with `push_bars`; `stop()` at the end."""

    def __init__(self, symbols: Iterable[str], calendar: MarketCalendar, start: datetime, *,
                 cash: Decimal = Decimal("1000000"), split_fills: bool = False,
                 page_size: int = 1000, instant_fills: bool = False) -> None:
        self.symbols = tuple(symbols)
        self.calendar = calendar
        self.clock = SimClock(start)
        self.exchange = SimExchange(self.symbols, calendar, self.clock, cash=cash)
        self.exchange.set_listener(self._on_update)
        self.account_id = str(uuid.uuid5(_NS, "account"))
        self.key, self.secret = KEY, SECRET
        self.faults = FaultPlan()
        self.latency = 0.0  # seconds added to every REST request (the benchmark's 20 ms)
        self.split_fills = split_fills  # each fill arrives as partial_fill + fill
        self.instant_fills = instant_fills  # market orders fill at once at the last price
        self.page_size = page_size
        self.history: list[Bar] = []
        self.shortable: set[str] = set(self.symbols)
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
        self.events_sent = 0
        self.events_lost = 0
        self.trade_connections = 0
        self.data_connections = 0
        self.inflight = 0
        self._uuids: dict[str, str] = {}
        self._sim_ids: dict[str, str] = {}
        self._trade_conns: set[_Conn] = set()
        self._data_conns: set[_Conn] = set()
        self._all_conns: list[_Conn] = []
        self._exec_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- life ----------------------------------------------------------------------------------
    def start(self) -> FakeAlpaca:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-alpaca",
                                        daemon=True)
        self._thread.start()
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
        """Runs `fn` on the server's loop (where the sim lives) and returns its result."""
        assert self._loop is not None

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    # -- driving the market ----------------------------------------------------------------------
    def push_bars(self, bars: list[Bar]) -> None:
        """One minute of bars: the clock moves to the minute's end, orders match, bars stream."""

        def run() -> None:
            end = max(b.ts for b in bars) + timedelta(minutes=1)
            if end > self.clock.now():
                self.clock.set(end)
            self.exchange.on_bars(bars)
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

    def order_for(self, client_order_id: str) -> Order | None:
        sim_id = self.exchange._by_client_id.get(client_order_id)
        return self.exchange._orders[sim_id].order if sim_id else None

    def positions(self) -> dict[str, int]:
        return self.call(lambda: {p.symbol: p.qty for p in self.exchange.book.positions()})

    def open_orders(self) -> list[Order]:
        return self.call(lambda: self.exchange.orders(open_only=True))

    # -- JSON shapes -----------------------------------------------------------------------------
    def _uuid(self, sim_id: str) -> str:
        u = self._uuids.get(sim_id)
        if u is None:
            u = self._uuids[sim_id] = str(uuid.uuid5(_NS, sim_id))
            self._sim_ids[u] = sim_id
        return u

    def _order_json(self, o: Order, nested: bool = True) -> dict:
        w = self.exchange._orders[o.id]
        leg = o.parent_id is not None
        intent = _INTENT.get((o.role, o.side)) or f"{o.side.value}_to_close"
        legs = None
        if nested and w.children:
            legs = [self._order_json(self.exchange._orders[c].order, False) for c in w.children]
        status = o.status.value
        ts = o.updated_at or o.submitted_at
        return {
            "id": self._uuid(o.id), "client_order_id": o.client_order_id,
            "created_at": _iso(o.submitted_at), "updated_at": _iso(ts),
            "submitted_at": _iso(o.submitted_at),
            "filled_at": _iso(ts) if o.status is OrderStatus.FILLED else None,
            "expired_at": None, "canceled_at": _iso(ts) if o.status is OrderStatus.CANCELED else None,
            "failed_at": None, "replaced_at": None, "replaced_by": None, "replaces": None,
            "asset_id": str(uuid.uuid5(_NS, o.symbol)), "symbol": o.symbol,
            "asset_class": "us_equity", "notional": None, "qty": str(o.qty),
            "filled_qty": str(o.filled_qty),
            "filled_avg_price": None if o.filled_avg_price is None else str(o.filled_avg_price),
            "order_class": "bracket" if (w.children or leg) else "simple",
            "order_type": o.order_type.value, "type": o.order_type.value, "side": o.side.value,
            "position_intent": intent, "time_in_force": "day",
            "limit_price": None if o.limit_price is None else str(o.limit_price),
            "stop_price": None if o.stop_price is None else str(o.stop_price),
            "status": status, "extended_hours": False, "legs": legs,
            "trail_percent": None, "trail_price": None, "hwm": None,
        }

    def _position_json(self, symbol: str) -> dict:
        p = self.exchange.book.position(symbol)
        assert p is not None
        value = p.last_price * p.qty
        cost = p.avg_entry_price * p.qty
        return {
            "asset_id": str(uuid.uuid5(_NS, symbol)), "symbol": symbol, "exchange": "NASDAQ",
            "asset_class": "us_equity", "asset_marginable": True,
            "avg_entry_price": str(p.avg_entry_price), "qty": str(p.qty),
            "qty_available": str(p.qty), "side": "long" if p.qty > 0 else "short",
            "market_value": str(value), "cost_basis": str(cost),
            "unrealized_pl": str(value - cost), "unrealized_plpc": "0",
            "unrealized_intraday_pl": str(value - cost), "unrealized_intraday_plpc": "0",
            "current_price": str(p.last_price), "lastday_price": str(p.last_price),
            "change_today": "0",
        }

    @staticmethod
    def _bar_msg(b: Bar) -> dict:
        seconds = int(b.ts.timestamp())
        return {"T": "b", "S": b.symbol, "o": b.open, "h": b.high, "l": b.low, "c": b.close,
                "v": int(b.volume), "t": msgpack.Timestamp(seconds, 0), "n": 10,
                "vw": round((b.high + b.low + b.close) / 3, 4)}

    # -- trade updates ---------------------------------------------------------------------------
    def _on_update(self, update) -> None:
        order, fill = update.order, update.fill
        if fill is not None and self.split_fills and fill.qty > 1:
            half = fill.qty // 2
            partial = replace(order, status=OrderStatus.PARTIALLY_FILLED, filled_qty=half)
            self._emit("partial_fill", partial, replace(fill, qty=half))
            self._emit("fill", order, replace(fill, qty=fill.qty - half))
            return
        self._emit(update.event, order, fill)

    def _emit(self, event: str, order: Order, fill: Fill | None) -> None:
        data: dict[str, Any] = {"event": event, "order": self._order_json(order, nested=False),
                                "timestamp": _iso(order.updated_at or self.clock.now())}
        if fill is not None:
            data.update(execution_id=str(uuid.uuid5(_NS, f"exec-{next(self._exec_ids)}")),
                        price=str(fill.price), qty=str(fill.qty),
                        position_qty=str(self.exchange.book.qty(order.symbol)))
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
        fault = self.faults.pick(request.method, request.path)
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
    def _error(exc: BrokerError) -> web.Response:
        return web.json_response({"code": exc.code, "message": exc.message}, status=exc.status)

    def _fill_now(self, order: Order) -> None:
        """Instant fills: a market order fills at once at the symbol's last price."""
        last = self.exchange._last.get(order.symbol)
        if not self.instant_fills or order.order_type is not OrderType.MARKET or last is None:
            return
        ts = self.clock.now().replace(second=0, microsecond=0)
        self.exchange.on_bars([Bar(order.symbol, ts, last, last, last, last, 0)])

    def _sim_order(self, order_id: str) -> Order:
        sim_id = self._sim_ids.get(order_id)
        if sim_id is None:
            raise NotFound("order not found")
        return self.exchange._orders[sim_id].order

    # -- REST handlers ---------------------------------------------------------------------------
    async def _account(self, request: web.Request) -> web.Response:
        a = self.exchange.account()
        return web.json_response({
            "id": self.account_id, "account_number": "PA000FAKE", "status": "ACTIVE",
            "crypto_status": "INACTIVE", "currency": "USD", "buying_power": str(a.buying_power),
            "regt_buying_power": str(a.buying_power), "non_marginable_buying_power": str(a.cash),
            "cash": str(a.cash), "portfolio_value": str(a.equity), "equity": str(a.equity),
            "last_equity": str(a.start_of_day_equity), "multiplier": "1",
            "shorting_enabled": True, "trading_blocked": False, "transfers_blocked": False,
            "account_blocked": False, "trade_suspended_by_user": False,
            "created_at": "2024-01-02T15:00:00Z", "long_market_value": "0",
            "short_market_value": "0", "initial_margin": "0", "maintenance_margin": "0",
            "sma": "0", "daytrade_count": 0,
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
        self.order_posts[cid] += 1
        qty = Decimal(str(body["qty"]))
        if qty != int(qty):
            return web.json_response({"code": 40010001, "message": "qty must be integer"},
                                     status=422)
        req = OrderRequest(client_order_id=cid, symbol=body["symbol"], side=Side(body["side"]),
                           qty=int(qty), order_type=OrderType(body["type"]),
                           limit_price=_num(body.get("limit_price")),
                           stop_price=_num(body.get("stop_price")),
                           stop_loss=_num((body.get("stop_loss") or {}).get("stop_price")),
                           take_profit=_num((body.get("take_profit") or {}).get("limit_price")))
        try:
            order = self.exchange.submit(req)
        except BrokerError as exc:
            return self._error(exc)
        self.created[cid] += 1
        answer = self._order_json(order)  # as accepted; the fill (if any) streams after
        self._fill_now(order)
        return web.json_response(answer)

    async def _orders(self, request: web.Request) -> web.Response:
        status = request.query.get("status", "open")
        limit = int(request.query.get("limit", "50"))
        nested = request.query.get("nested", "false").lower() == "true"
        wanted = {"open": lambda o: o.status.is_open, "closed": lambda o: not o.status.is_open}.get(
            status, lambda o: True)

        def matches(o: Order) -> bool:  # nested: a parent is listed when it or a leg matches
            legs = self.exchange._orders[o.id].children if nested else []
            return wanted(o) or any(wanted(self.exchange._orders[c].order) for c in legs)

        orders = [o for o in self.exchange.orders(open_only=False)
                  if not (nested and o.parent_id) and matches(o)]
        orders = list(reversed(orders))[:limit]  # newest first, as Alpaca lists them
        return web.json_response([self._order_json(o, nested) for o in orders])

    async def _order(self, request: web.Request) -> web.Response:
        try:
            order = self._sim_order(request.match_info["order_id"])
        except BrokerError as exc:
            return self._error(exc)
        return web.json_response(self._order_json(order))

    async def _order_by_client_id(self, request: web.Request) -> web.Response:
        order = self.order_for(request.query.get("client_order_id", ""))
        if order is None:
            return self._error(NotFound("order not found"))
        return web.json_response(self._order_json(order))

    async def _cancel(self, request: web.Request) -> web.Response:
        try:
            order = self._sim_order(request.match_info["order_id"])
            self.exchange.cancel(order.id)
        except BrokerError as exc:
            return self._error(exc)
        return web.Response(status=204)

    async def _cancel_all(self, request: web.Request) -> web.Response:
        ids = await self.exchange.cancel_all()
        return web.json_response([{"id": self._uuid(i), "status": 200, "body": None} for i in ids],
                                 status=207)

    async def _positions(self, request: web.Request) -> web.Response:
        return web.json_response([self._position_json(s) for s in self.exchange.book.symbols()])

    async def _position(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        if self.exchange.book.qty(symbol) == 0:
            return self._error(NotFound("position not found"))
        return web.json_response(self._position_json(symbol))

    async def _close(self, request: web.Request) -> web.Response:
        try:
            order = self.exchange.close(request.match_info["symbol"])
        except BrokerError as exc:
            return self._error(exc)
        answer = self._order_json(order)
        self._fill_now(order)
        return web.json_response(answer)

    async def _close_all(self, request: web.Request) -> web.Response:
        if request.query.get("cancel_orders", "").lower() == "true":
            await self.exchange.cancel_all()
        out = []
        for symbol in self.exchange.book.symbols():
            try:
                order = self.exchange.close(symbol)
            except BrokerError as exc:
                out.append({"symbol": symbol, "status": exc.status,
                            "body": {"code": exc.code, "message": exc.message,
                                     "symbol": symbol}})
                continue
            out.append({"symbol": symbol, "status": 200, "order_id": self._uuid(order.id),
                        "body": self._order_json(order)})
            self._fill_now(order)
        return web.json_response(out, status=207)

    async def _bars(self, request: web.Request) -> web.Response:
        q = request.query
        symbols = set((q.get("symbols") or "").split(","))
        start = datetime.fromisoformat(q["start"].replace("Z", "+00:00")) if q.get("start") else None
        end = datetime.fromisoformat(q["end"].replace("Z", "+00:00")) if q.get("end") else None
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


def paper_engine(server: FakeAlpaca, calendar: MarketCalendar, broker=None, **overrides: Any):
    """An engine in paper mode on this server (sharing its clock), with a strategy that never
    signals, so each test decides every order."""
    from daytrader.broker.alpaca import AlpacaBroker
    from daytrader.config import Secret, Settings
    from daytrader.engine import Engine

    class Idle:
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
    engine = Engine(settings, broker, calendar, server.clock, strategy=Idle())
    broker.set_health_reporter(engine.report_health)
    broker.set_gap_handler(lambda: engine.sync("trade stream reconnect"))
    return engine


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0,
                     what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def flat_minute(symbols: Iterable[str], ts: datetime, price: float) -> list[Bar]:
    return [Bar(s, ts, price, price, price, price, 1000) for s in symbols]
