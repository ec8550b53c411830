"""`python app.py ctl ...`: talks to a running DayTrader over its control API and prints it.

It finds the instance through the settings: the Unix socket in DATA_DIR/run when it exists,
otherwise TCP on API_HOST:API_PORT with API_TOKEN. `--json` prints the API's answers as they are.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from typing import Any, TextIO

from daytrader.config import Settings
from daytrader.config import api_socket_path as socket_path
from daytrader.models import short_order_id
from daytrader.order_input import OrderInputError, check_order, parse_order_id, parse_symbol
from daytrader.wording import money, plural

ACTIONS = {
    # name: (method, path template, needs an argument)
    "status": ("GET", "/account", False),
    "health": ("GET", "/health", False),
    "positions": ("GET", "/positions", False),
    "orders": ("GET", "/orders?status=all", False),
    "enable": ("POST", "/trading/enable", False),
    "disable": ("POST", "/trading/disable", False),
    "emergency-stop": ("POST", "/emergency/stop", False),
    "close": ("POST", "/positions/{arg}/close", True),
    "cancel": ("POST", "/orders/{arg}/cancel", True),
    "sync": ("POST", "/sync", False),
    "strategies": ("GET", "/strategies", False),
    "strategy-enable": ("POST", "/strategies/{arg}/enable", True),
    "strategy-disable": ("POST", "/strategies/{arg}/disable", True),
    "buy": ("POST", "/orders/submit", True),
    "sell": ("POST", "/orders/submit", True),
}
ORDER_ACTIONS = ("buy", "sell")


# The engine's emergency stop verifies flat for up to 90 s; its report is worth the wait.
EMERGENCY_WAIT = 150.0


class CtlError(Exception):
    pass


class StillWorking(CtlError):
    """The request reached DayTrader, which has not answered yet (it is still working on it)."""


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=list(ACTIONS), help="what to ask the running instance")
    p.add_argument("arg", nargs="?", help="SYMBOL for close, buy and sell; ORDER_ID for cancel; "
                   "NAME for strategy-enable / strategy-disable")
    p.add_argument("qty", nargs="?", help="buy / sell: whole shares")
    p.add_argument("--limit", dest="limit_price", metavar="PRICE",
                   help="buy / sell: a limit order at this price (default: market)")
    p.add_argument("--stop", dest="stop_price", metavar="PRICE",
                   help="buy / sell: a stop order triggered at this price")
    p.add_argument("--stop-loss", metavar="PRICE", help="buy / sell: protective stop-loss leg")
    p.add_argument("--take-profit", metavar="PRICE", help="buy / sell: take-profit leg")
    p.add_argument("--json", dest="ctl_json", action="store_true", help="print raw JSON")
    p.add_argument("--timeout", type=float, default=None,
                   help=f"seconds to wait for an answer (default 30; emergency-stop "
                        f"{EMERGENCY_WAIT:g}: it waits for the engine's report, flat or not)")


def client(settings: Settings, timeout: float):
    import httpx

    path = socket_path(settings)
    headers = {}
    if settings.api_token:
        headers["Authorization"] = f"Bearer {settings.api_token.reveal()}"
    if settings.api_socket_enabled and path.exists():
        return httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), base_url="http://daytrader",
                            headers=headers, timeout=timeout)
    if settings.api_port:
        return httpx.Client(base_url=f"http://{settings.api_host}:{settings.api_port}",
                            headers=headers, timeout=timeout)
    raise CtlError(f"no running DayTrader found: {path} does not exist and API_PORT is not set "
                   "(start one with `python app.py` or `python app.py --headless`)")


def order_body(args: argparse.Namespace) -> dict[str, Any]:
    """`ctl buy|sell SYMBOL QTY [--limit P | --stop P]`, checked by the same order input rules as
    the API and the console's form before anything is sent (the symbol only for its form: the
    running instance knows its universe)."""
    values = {"symbol": args.arg, "side": args.action, "qty": args.qty}
    for name in ("limit_price", "stop_price", "stop_loss", "take_profit"):
        if getattr(args, name, None) is not None:
            values[name] = getattr(args, name)
    if values.get("limit_price") is not None:
        values["type"] = "limit"
    elif values.get("stop_price") is not None:
        values["type"] = "stop"
    checked = check_order(values, None, reason="ctl")
    if checked.intent is None:
        name, message = checked.first_error
        raise CtlError(f"bad {name}: {message}")
    return {k: str(v) for k, v in values.items()} | {"reason": "ctl"}


def target(action: str, arg: str | None) -> str:
    """The request path, with its argument checked (a symbol, an order id: never a path)."""
    method, template, needs_arg = ACTIONS[action]
    if needs_arg and not arg:
        what = {"cancel": "an ORDER_ID", "strategy-enable": "a strategy NAME",
                "strategy-disable": "a strategy NAME"}.get(action, "a SYMBOL")
        raise CtlError(f"ctl {action} needs {what}")
    try:
        if action == "close":
            arg = parse_symbol(arg)
        elif action == "cancel":
            arg = parse_order_id(arg)
    except OrderInputError as exc:
        raise CtlError(exc.message) from None
    if arg is not None and "{arg}" in template:  # a strategy name stays one path segment
        from urllib.parse import quote

        arg = quote(arg, safe="")
    return template.format(arg=arg)


def request(settings: Settings, action: str, arg: str | None, timeout: float,
            body: dict[str, Any] | None = None) -> tuple[int, Any]:
    method = ACTIONS[action][0]
    path = target(action, arg)
    import httpx

    with client(settings, timeout) as http:
        try:
            response = http.request(method, path, json=body)
        except (httpx.ReadTimeout, httpx.RemoteProtocolError) as exc:
            # Sent and received: no answer yet is not "cannot reach".
            raise StillWorking(f"DayTrader received {action} and is still working after "
                               f"{timeout:g}s ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise CtlError(f"cannot reach DayTrader: {exc}") from None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, {"error": response.text}


def _money(x: Any, signed: bool = False) -> str:
    """The API's money (strings, exact) as the console shows it: "$100,108.24", "-$49.92"."""
    return money(Decimal(str(x)), signed).lstrip()  # zero: "$0.00", not " $0.00"


def order_line(body: dict) -> str:
    """A submitted order as a trader reads it, by the short id the console and the log show:
    "submitted: buy 5 AAPL limit @ 150.00 (order sim-000004; stop 149.32, target 151.37)"."""
    order = body.get("order")
    if not order:
        return f"{body['status']}: {body.get('message', '')}"
    at = order.get("limit_price") or order.get("stop_price")
    legs = [f"{'stop' if leg['role'] == 'stop_loss' else 'target'} "
            f"{leg.get('stop_price') or leg.get('limit_price')}" for leg in order.get("legs", ())]
    return (f"{body['status']}: {order['side']} {order['qty']} {order['symbol']} "
            f"{order['order_type']}{f' @ {at}' if at else ''} "
            f"(order {short_order_id(order['id'])}{'; ' + ', '.join(legs) if legs else ''})")


def render(action: str, status: int, body: Any, out: TextIO) -> None:
    if status >= 400 and not (action == "health" and "components" in body):
        field = f" [{body['field']}]" if body.get("field") else ""
        print(f"error ({status}){field}: {body.get('error', body)}", file=out)
        if body.get("failed_check"):
            print(f"  failed check: {body['failed_check']}", file=out)
        return
    if action == "status":
        state = "E-STOP (emergency stop: `ctl enable` trades again)" if body.get(
            "emergency_stop") else body["state"]
        room = body.get("loss_to_breaker")
        print(f"trading {state}{' (circuit breaker tripped)' if body['breaker_tripped'] else ''}"
              f"  equity {_money(body['equity'])}  cash {_money(body['cash'])}  buying power "
              f"{_money(body['buying_power'])}  day P&L {_money(body['day_pnl'], True)} "
              f"({body['day_pnl_pct']:+.2f}%)  daily loss {body['daily_loss_pct']:.2f}%"
              + (f" (breaker {_money(room)} away)" if room is not None else ""), file=out)
    elif action == "health":
        print(f"{body['status']}  trading {body['trading']}", file=out)
        for c in body["components"]:
            age = "" if c["age_seconds"] is None else f" ({c['age_seconds']:.0f}s ago)"
            print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['name']:<8} {c['detail']}{age}", file=out)
    elif action == "positions":
        if not body:
            print("no positions", file=out)
        for p in body:
            guard = (f"stop {p['stop_loss']}" if p.get("protected")
                     else "UNPROTECTED (no working stop at the broker)")
            print(f"{p['symbol']:<6} {p['qty']:>7} @ {p['avg_entry_price']:>10}  last "
                  f"{p['last_price']:>10}  P&L {_money(p['unrealized_pnl'], True):>11} "
                  f"({p['unrealized_pct']:+.2f}%)  {guard}  tp {p['take_profit']}", file=out)
    elif action == "orders":
        if not body:
            print("no orders", file=out)
        for o in body:
            price = o["limit_price"] or o["stop_price"] or ""
            print(f"{o['submitted_at'][11:19]} {short_order_id(o['id']):<12} {o['symbol']:<6} "
                  f"{o['side']:<4} "
                  f"{o['qty']:>6} {o['order_type']:<6} {price:>9} {o['status']:<16} "
                  f"{o['role']}", file=out)
    elif action == "strategies":
        for s in body:
            state = "enabled" if s["enabled"] else f"DISABLED{': ' + s['error'] if s['error'] else ''}"
            m = s.get("metrics") or {}
            params = " ".join(f"{k}={v}" for k, v in s["params"].items())
            print(f"{s['name']:<16} {state:<10} {','.join(s['symbols']):<24} trades "
                  f"{m.get('trades', 0)}  P&L {_money(m.get('realized', 0), True)}  {params}", file=out)
    elif action == "emergency-stop":
        print(body["message"], file=out)
        if body.get("positions_left"):
            print(f"  positions left: {', '.join(body['positions_left'])}", file=out)
        # Trading stays off after an emergency stop until `ctl enable`: the state reads E-STOP.
        print(f"  trading E-STOP (`ctl enable` trades again); cancel-all and close-all sent "
              f"{body['requests_after_ms']:.0f} ms after the halt, "
              f"{plural(body.get('broker_requests', 0), 'broker request')}", file=out)
    elif action in ORDER_ACTIONS:
        print(order_line(body), file=out)
    else:
        print(body.get("message") or json.dumps(body), file=out)


def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout,
        err: TextIO = sys.stderr) -> int:
    timeout = args.timeout or (EMERGENCY_WAIT if args.action == "emergency-stop" else 30.0)
    if args.action == "emergency-stop":
        print("emergency stop: trading is disabled at once; waiting for the engine's report "
              "(cancel all, close all, flat check)...", file=err, flush=True)
    try:
        order = order_body(args) if args.action in ORDER_ACTIONS else None
        status, body = request(settings, args.action, args.arg, timeout, order)
    except StillWorking as exc:
        follow = "; trading is disabled" if args.action == "emergency-stop" else ""
        print(f"still working: {exc}{follow}; follow it with `python app.py ctl positions` "
              "and `ctl orders`", file=err)
        return 1
    except CtlError as exc:
        print(f"error: {exc}", file=err)
        return 2
    if args.ctl_json:
        print(json.dumps(body, indent=2), file=out)
    else:
        render(args.action, status, body, out)
    if status >= 400:
        return 1
    if args.action == "emergency-stop" and not body.get("flat", False):
        return 1
    return 0
