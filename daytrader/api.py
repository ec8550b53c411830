"""The control API: the seed's REST endpoints, served from the engine's own event loop.

Every endpoint calls the same engine commands the console uses, on the loop the engine runs on,
so the API never races the engine. By default it listens on a Unix socket readable only by its
owner; on TCP it requires a bearer token and refuses non-loopback addresses unless told.
Errors are JSON `{"error": ...}` with a 4xx for bad input; never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import json
import logging
import os
import socket
from dataclasses import asdict, is_dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from daytrader import __version__
from daytrader.advisor.opinion import Opinion
from daytrader.clock import EXCHANGE_TZ
from daytrader.config import Settings, SettingsError, api_host_problem, api_socket_path
from daytrader.engine import Engine
from daytrader.models import OrderIntent
from daytrader.order_input import (
    FIELDS,
    MAX_PRICE,
    MAX_QTY,
    MIN_PRICE,
    PRICE_FIELDS,
    OrderInputError,
    check_order,
    parse_order_id,
    parse_symbol,
    shown,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def plain(value: Any) -> Any:
    """Records as JSON: money as strings (exact), times in ISO 8601, enums by value."""
    if is_dataclass(value) and not isinstance(value, type):
        return {k: plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


MAX_BODY_BYTES = 4096  # an order is a few hundred bytes
MAX_QUERY_BYTES = 2048
MAX_PATH_BYTES = 256


def intent_from(params: dict[str, Any], settings: Settings) -> OrderIntent:
    """An order intent from query parameters or a JSON body, checked by the shared order input
    rules; a bad field is a 422 that names it (all bad fields are listed in `errors`)."""
    checked = check_order(params, settings.symbols, reason="api", strategy="manual")
    if checked.intent is None:
        name, message = checked.first_error
        raise ApiError(422, message, field=name, errors=checked.errors)
    return checked.intent


def json_object(body: bytes) -> dict[str, Any]:
    """A request body as a flat JSON object: bounded in size before it is parsed (the body limit
    runs first), refused when it nests (an order's fields are plain values)."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: deep nesting
        raise ApiError(422, f"malformed JSON body: {str(exc)[:120]}", field="body") from None
    if not isinstance(payload, dict):
        raise ApiError(422, "the JSON body must be an object of order fields", field="body")
    for key, value in payload.items():
        if isinstance(value, dict | list):
            raise ApiError(422, f"{shown(key, 32)}: a plain value is expected, not a nested "
                                "object or array", field=key if len(key) <= 32 else "body")
    return payload


def _refusal(status: int, message: str, field: str) -> tuple[int, bytes]:
    return status, json.dumps({"error": message, "field": field}).encode()


class BodyTooLarge(Exception):
    """A chunked body grew past MAX_BODY_BYTES while it was being read."""


def _refusal(status: int, message: str, field: str) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status,
                        headers={"connection": "close"})


class RequestLimits:
    """ASGI middleware that refuses an oversized path, query string or body before anything
    reads or parses it: the declared Content-Length first, then the bytes that actually arrive
    (a chunked body). The API shares the engine's loop: nothing a client sends may hold it.
    (FastAPI's own `max_body_size` answers in plain text, not the API's JSON.)"""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = None
        length = dict(scope.get("headers", ())).get(b"content-length", b"0")
        if len(scope.get("raw_path") or scope["path"].encode()) > MAX_PATH_BYTES:
            refusal = _refusal(414, f"path longer than {MAX_PATH_BYTES} bytes", "path")
        elif len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
            refusal = _refusal(414, f"query string longer than {MAX_QUERY_BYTES} bytes", "query")
        elif not length.isdigit() or len(length) > 12 or int(length) > MAX_BODY_BYTES:
            refusal = _refusal(413, f"request body larger than {MAX_BODY_BYTES} bytes", "body")
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        received = 0

        async def bounded_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, bounded_receive, send)
        except BodyTooLarge:
            await _refusal(413, f"request body larger than {MAX_BODY_BYTES} bytes", "body")(
                scope, receive, send)


def submit_openapi(symbols: tuple[str, ...]) -> dict[str, Any]:
    """How /orders/submit takes an order, for the OpenAPI docs: query parameters or a JSON
    object with the same fields."""
    # Query parameters are text; in a JSON body, numbers (text is taken too, as in the query).
    price = {"type": "number", "minimum": float(MIN_PRICE), "maximum": float(MAX_PRICE),
             "description": "a positive price"}
    fields_schema = {
        "type": "object", "additionalProperties": False, "required": ["symbol", "side", "qty"],
        "properties": {
            "symbol": {"type": "string", "enum": list(symbols)},
            "side": {"type": "string", "enum": ["buy", "sell"]},
            "qty": {"type": "integer", "minimum": 1, "maximum": MAX_QTY,
                    "description": "whole shares, 1 to 1,000,000"},
            "type": {"type": "string", "enum": ["market", "limit", "stop"]},
            **{name: price for name in PRICE_FIELDS},
            "reason": {"type": "string", "maxLength": 200},
        },
    }
    return {
        "parameters": [{"name": name, "in": "query", "required": False,
                        "schema": {"type": "string"}} for name in FIELDS],
        "requestBody": {"required": False,
                        "content": {"application/json": {"schema": fields_schema}}},
    }


def _opinion(opinion: Opinion | None) -> dict | None:
    return None if opinion is None else plain(opinion) | {"label": opinion.label}


def create_app(engine: Engine, *, token: str | None = None) -> FastAPI:
    """The API over `engine`. With `token`, every request needs `Authorization: Bearer token`."""
    app = FastAPI(title="DayTrader control API", version=__version__,
                  description="The seed's endpoints over the running engine: the same commands "
                              "as the console's keys.")
    settings = engine.settings
    app.add_middleware(RequestLimits)  # added last: runs first, before the token check

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        if token is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError):
        return JSONResponse({"error": exc.message, **plain(exc.extra)}, status_code=exc.status)

    @app.exception_handler(OrderInputError)
    async def bad_field(_: Request, exc: OrderInputError):
        return JSONResponse({"error": exc.message, "field": exc.field}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                             for e in exc.errors())
        first = next(iter(exc.errors()), {})
        field = str((first.get("loc") or ("", ""))[-1])
        return JSONResponse({"error": f"bad request: {problems}", "field": field},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(Exception)
    async def crash(_: Request, exc: Exception):
        log.exception("control API error")
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    @app.get("/")
    async def info() -> dict:
        return {"service": "daytrader", "version": __version__, "mode": settings.mode,
                "state": engine.state.value, "symbols": list(settings.symbols), "docs": "/docs"}

    @app.get("/health")
    async def health():
        now = datetime.now(EXCHANGE_TZ)
        snap = engine.snapshot(events=0, orders=0)
        items = [{"name": h.name, "ok": h.ok, "detail": h.detail,
                  "age_seconds": None if h.last_seen is None
                  else round((now - h.last_seen).total_seconds(), 3)} for h in snap.health]
        ok = all(i["ok"] for i in items)
        body = {"status": "ok" if ok else "degraded", "trading": snap.state.value,
                "components": items}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/account")
    async def account() -> dict:
        snap = engine.snapshot(events=0, orders=0)
        a = snap.account
        return {**plain(a), "day_pnl": str(a.day_pnl), "day_pnl_pct": round(a.day_pnl_pct, 4),
                "state": snap.state.value, "breaker_tripped": snap.breaker_tripped,
                "emergency_stop": snap.emergency_stop,
                "daily_loss_pct": round(snap.daily_loss_pct, 4),
                "loss_to_breaker": None if snap.loss_to_breaker is None
                else str(snap.loss_to_breaker)}

    @app.get("/metrics")
    async def metrics_() -> dict:
        snap = engine.snapshot(events=0, orders=0)
        return {"today": snap.metrics.as_dict(), "by_strategy": engine.metrics_by_strategy(),
                "rejections_by_check": snap.rejections_by_check,
                "breaker_trips": len(engine.breaker.trips), "trades_total": len(snap.trades),
                "risk": plain(snap.risk)}

    @app.get("/positions")
    async def positions() -> list:
        # Stop and target are the legs working at the broker now; no stop: "protected": false.
        return [{**plain(p), "unrealized_pnl": str(p.unrealized_pnl),
                 "unrealized_pct": round(p.unrealized_pct, 4), "protected": p.protected}
                for p in engine.positions_view()]

    @app.get("/orders")
    async def orders(status: str = "open") -> list:
        if status not in ("open", "all"):
            raise ApiError(422, f"status must be open or all, got {shown(status)}", field="status")
        source = engine.open_orders if status == "open" else engine.known_orders
        # An entry the advisor was asked about carries its opinion (null otherwise).
        advice = {a.client_order_id: a for a in engine.advice}
        return [{**plain(o), "short_id": o.short_id,
                 "advice": _opinion(advice.get(o.client_order_id))} for o in source.values()]

    @app.get("/advisor")
    async def advisor() -> dict:
        """The LLM advisor on entries: mode, health, budget, and its latest opinions."""
        adv = engine.advisor
        health = next((h for h in engine.snapshot(events=0, orders=0).health
                       if h.name == "advisor"), None)
        return {"mode": settings.advisor_mode, "model": settings.llm_model or None,
                "timeout_seconds": settings.advisor_timeout,
                "veto_confidence": settings.advisor_veto_confidence,
                "health": plain(health),
                "budget": None if adv is None else {"per_hour": adv.client.budget.limit,
                                                    "left": adv.client.budget.left},
                "calls": None if adv is None else adv.client.stats.as_dict(),
                "waiting": sorted(engine.waiting_entries),
                "opinions": [_opinion(a) for a in engine.advice]}

    @app.post("/orders/submit", openapi_extra=submit_openapi(settings.symbols))
    async def submit(request: Request) -> dict:
        """An order from query parameters and/or a JSON object (the body wins). Bad input is a
        422 naming the field; nothing is sent."""
        params: dict[str, Any] = dict(request.query_params)
        body = await request.body()
        if body.strip():
            params.update(json_object(body))
        intent = intent_from(params, settings)
        result = await engine.submit(intent, source="api")
        body_out = {"status": result.status.value, "client_order_id": result.client_order_id,
                    "message": result.message, "order": plain(result.order),
                    "checks": plain(result.decision.checks) if result.decision else []}
        if result.status.value == "risk_rejected":
            failed = result.decision.failed if result.decision else None
            raise ApiError(422, result.message, rejected_by="risk",
                           failed_check=failed.name if failed else None,
                           checks=body_out["checks"])
        if result.status.value == "broker_rejected":
            raise ApiError(422, result.message, rejected_by="broker", code=result.error_code)
        if result.status.value == "unknown":
            raise ApiError(504, result.message, client_order_id=result.client_order_id)
        return body_out

    @app.post("/orders/{order_id}/cancel")
    async def cancel(order_id: str) -> dict:
        order_id = parse_order_id(order_id)
        order = engine.find_order(order_id)  # its id, client order id or short id
        if order is None:
            raise ApiError(404, f"order {order_id} not found")
        if not order.status.is_open:
            raise ApiError(409, f"order {order.short_id} is not cancelable: it is "
                                f"{order.status.value}")
        result = await engine.cancel_order(order.id, source="api")
        if not result.ok:
            raise ApiError(502, result.message)
        return {"ok": True, "message": result.message}

    @app.post("/positions/{symbol}/close")
    async def close(symbol: str) -> dict:
        symbol = parse_symbol(symbol)
        if engine.book.qty(symbol) == 0:
            raise ApiError(404, f"no position in {symbol}")
        result = await engine.close_position(symbol, source="api")
        if not result.ok:
            raise ApiError(422, result.message)
        return {"ok": True, "message": result.message}

    @app.post("/trading/enable")
    async def enable() -> dict:
        return plain(engine.enable("api")) | {"state": engine.state.value}

    @app.post("/trading/disable")
    async def disable() -> dict:
        return plain(engine.disable("api")) | {"state": engine.state.value}

    @app.post("/emergency/stop")
    async def emergency() -> dict:
        report = await engine.emergency_stop("api")
        return plain(report) | {"message": report.message, "state": engine.state.value,
                                "emergency_stop": engine.emergency_stopped}

    @app.post("/sync")
    async def sync() -> dict:
        return plain(await engine.sync("api"))

    @app.get("/strategies")
    async def strategies() -> list:
        """Each strategy with its symbols, state, parameters, readings and today's metrics."""
        snap = engine.snapshot(events=0, orders=0)
        today = engine.metrics_by_strategy()
        return [plain(s) | {"metrics": today.get(s.name, {}), "readings": {
            sym: engine.strategies.indicator_values(sym) for sym in s.symbols}}
            for s in snap.strategies]

    @app.post("/strategies/{name}/{action}")
    async def switch_strategy(name: str, action: str) -> dict:
        if action not in ("enable", "disable"):
            raise ApiError(404, f"no such action {action!r}: enable or disable")
        if name not in engine.strategies.names:
            raise ApiError(404, f"no strategy {name!r}; running: "
                                f"{', '.join(engine.strategies.names)}")
        return plain(engine.set_strategy_enabled(name, action == "enable", "api"))

    return app


def socket_path(settings: Settings) -> Path:
    return api_socket_path(settings)


def unix_socket(path: Path) -> socket.socket:
    """A listening Unix socket only its owner can use: in a 0700 folder, itself 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    if path.exists():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # left by a process that died: nobody listens on it
        else:
            probe.close()
            raise OSError(f"{path} is in use: another DayTrader is running with this DATA_DIR")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, 0o600)
    sock.listen(64)
    return sock


def tcp_listener(settings: Settings) -> socket.socket:
    """A listening TCP socket on API_HOST:API_PORT, or SettingsError naming what to change."""
    s = settings
    problem = api_host_problem(s)
    if problem:
        raise SettingsError(f"API_HOST: {problem}")
    if not s.api_token:
        raise SettingsError("API_TOKEN: required when API_PORT is set (the TCP API always needs "
                            "a bearer token)")
    family = socket.AF_INET6 if ":" in s.api_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((s.api_host, s.api_port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        why = ("already in use (another program listens there)"
               if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc))
        raise SettingsError(f"API_PORT: cannot listen on {s.api_host}:{s.api_port}: {why}; "
                            "expected a free TCP port (or 0 for no TCP API)") from None
    return sock


def check_can_listen(settings: Settings) -> None:
    """Before a run starts: the TCP port can be had (it is bound and let go at once; the run
    binds it again, and says so the same way if someone took it meanwhile)."""
    if settings.api_port:
        tcp_listener(settings).close()


class ApiServer:
    """uvicorn on the current event loop (the engine's), on a Unix socket and/or TCP."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine, self.settings = engine, settings
        self.sockets: list[socket.socket] = []
        self.addresses: list[str] = []
        self._server = None
        self._task: asyncio.Task | None = None

    def _bind(self) -> None:
        """Binds every listener or none: a failure closes what was bound and removes the
        socket file, then says which setting to change (SettingsError, exit 2)."""
        try:
            self._bind_all()
        except BaseException:
            self._close_sockets()
            raise

    def _bind_all(self) -> None:
        s = self.settings
        if s.api_socket_enabled:
            path = socket_path(s)
            self.sockets.append(unix_socket(path))
            self.addresses.append(f"unix:{path}")
        if s.api_port:
            sock = tcp_listener(s)
            self.sockets.append(sock)
            self.addresses.append(f"http://{s.api_host}:{sock.getsockname()[1]}")

    def _close_sockets(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self.sockets.clear()
        if self.settings.api_socket_enabled:
            with contextlib.suppress(OSError):
                socket_path(self.settings).unlink()

    async def start(self) -> ApiServer:
        import uvicorn

        self._bind()
        if not self.sockets:
            return self
        token = self.settings.api_token.reveal() if self.settings.api_port else None
        unix_only = not self.settings.api_port
        app = create_app(self.engine, token=None if unix_only else token)
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # the host owns signals
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=self.sockets), name="control-api")
        for _ in range(200):
            if server.started or self._task.done():
                break
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()
        self.engine.record("info", "engine", f"control API on {', '.join(self.addresses)}")
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 5)
        self._close_sockets()
