"""Order input, checked once for every front end: the control API, the console's order form and
`ctl`. What a person or a script typed (text, or a JSON value) becomes an OrderIntent or a list
of field errors, each naming the field and what it expects.

Every check is cheap whatever comes in: text is measured before it is converted (`1E+500000`
never becomes a 500,000-digit integer), numbers are range-checked before `int()`, and non-finite
values (`inf`, `NaN`, `sNaN`, JSON's `1e400`) are refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from daytrader.models import OrderIntent, OrderType, Side, to_price
from daytrader.symbols import MAX_SYMBOL_CHARS, is_symbol, normalize_symbol

MAX_QTY = 1_000_000  # a typo guard: no manual order is that big
MIN_PRICE = Decimal("0.0001")  # Alpaca's sub-penny tick below $1
MAX_PRICE = Decimal("10000000")  # ten times the dearest US share (BRK.A): surely a typo above
MAX_NUMBER_CHARS = 24  # "1,000,000" or "189.5500": anything longer is not a quantity or a price
MAX_TEXT_CHARS = 200  # free text (the reason) is cut to this
MAX_ORDER_ID_CHARS = 64
PRICE_FIELDS = ("limit_price", "stop_price", "stop_loss", "take_profit")
FIELDS = ("symbol", "side", "qty", "type", *PRICE_FIELDS, "reason")

# A plain decimal number as people type it: optional sign, thousands commas, a fraction, an
# exponent, ASCII digits only. Anything else (hex, underscores, "Infinity", "NaN", other
# scripts' digits) is not a number here.
_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ORDER_ID = re.compile(r"[A-Za-z0-9_.:-]+")


class OrderInputError(ValueError):
    """One bad field: `field` names it, the message says what it expects."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass(frozen=True, slots=True)
class CheckedOrder:
    """An intent when every field is good; otherwise every bad field with its message."""

    intent: OrderIntent | None
    errors: dict[str, str] = field(default_factory=dict)  # field -> message, in field order

    @property
    def ok(self) -> bool:
        return self.intent is not None

    @property
    def first_error(self) -> tuple[str, str]:
        return next(iter(self.errors.items()), ("", ""))


def shown(value: Any, limit: int = 24) -> str:
    """A value as an error message quotes it: short, whatever its size."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    if value is None:
        return "nothing"
    if isinstance(value, list | dict):
        return f"a JSON {'array' if isinstance(value, list) else 'object'}"
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def _decimal(field_name: str, value: Any, what: str) -> Decimal:
    """A JSON value or typed text as a finite Decimal, or OrderInputError naming the field."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise OrderInputError(field_name, f"{field_name} must be {what}, got {shown(value)}")
    if isinstance(value, int):
        if abs(value) > 10 ** 15:  # compared as integers: never printed or converted
            raise OrderInputError(field_name, f"{field_name}: a number with {_digits(value)} digits "
                                              "is out of range")
        return Decimal(value)
    if isinstance(value, float | Decimal):
        if value != value or value in (float("inf"), float("-inf")) or (
                isinstance(value, Decimal) and not value.is_finite()):
            raise OrderInputError(field_name, f"{field_name} must be {what}, got {value}")
        return Decimal(str(value)) if isinstance(value, float) else value
    if len(value) > MAX_NUMBER_CHARS + 16:  # measured before anything else looks at it
        raise OrderInputError(field_name, f"{field_name} must be {what}, got {shown(value)}")
    text = value.strip()
    if len(text) > MAX_NUMBER_CHARS:
        raise OrderInputError(field_name, f"{field_name} must be {what}, got {shown(value)}")
    plain = text.lstrip("$") if field_name != "qty" else text
    if not _NUMBER.fullmatch(plain):
        raise OrderInputError(field_name, f"{field_name} must be {what}, got {shown(value)}")
    try:
        number = Decimal(plain.replace(",", ""))
    except InvalidOperation:  # an exponent beyond Decimal's range
        raise OrderInputError(field_name, f"{field_name} {text}: out of range") from None
    return number


def _digits(value: int) -> str:
    return f"about {int(value.bit_length() * 0.30103):,}"


def _positive(field_name: str, value: Any, what: str, limit: Decimal | int,
              too_big: str) -> tuple[Decimal, Any] | None:
    """A given number above zero and at most `limit` (with the value as typed, for messages);
    None when nothing was given."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = _decimal(field_name, value, what)
    raw = value.strip() if isinstance(value, str) else value
    if number <= 0:
        raise OrderInputError(field_name, f"{field_name} {raw}: must be more than zero")
    if number > limit:
        raise OrderInputError(field_name, f"{field_name} {shown(raw)}: {too_big}")
    return number, raw


def parse_qty(value: Any, field_name: str = "qty") -> int:
    """A whole number of shares, 1 to MAX_QTY."""
    given = _positive(field_name, value, "a number of whole shares", MAX_QTY,
                      f"more than {MAX_QTY:,} shares is surely a typo")
    if given is None:
        raise OrderInputError(field_name, f"{field_name} is required")
    number, raw = given
    if number != number.to_integral_value():
        raise OrderInputError(field_name, f"{field_name} {raw}: whole shares only (fractional "
                                          "qty is not allowed)")
    return int(number)


def parse_price(value: Any, field_name: str) -> Decimal | None:
    """A positive, finite price within range, rounded to the broker's tick; None when empty."""
    given = _positive(field_name, value, "a price", MAX_PRICE,
                      f"above {MAX_PRICE:,} is not a share price")
    if given is None:
        return None
    number, raw = given
    price = to_price(number)
    if price < MIN_PRICE:
        raise OrderInputError(field_name, f"{field_name} {raw}: below the smallest tick "
                                          f"({MIN_PRICE})")
    return price


def parse_symbol(value: Any, symbols: Collection[str] | None = None) -> str:
    """A ticker (any well-formed one when `symbols` is None, else one of them)."""
    if not isinstance(value, str) or not value.strip():
        if value in (None, ""):
            raise OrderInputError("symbol", "symbol is required")
        if not isinstance(value, str):
            raise OrderInputError("symbol", f"symbol must be a ticker, got {shown(value)}")
        raise OrderInputError("symbol", "symbol is required")
    symbol = normalize_symbol(value)
    if not is_symbol(symbol):
        raise OrderInputError("symbol", f"symbol must be a ticker (1-{MAX_SYMBOL_CHARS} letters, "
                                        f"digits or dots), got {shown(value)}")
    if symbols is not None and symbol not in symbols:
        raise OrderInputError("symbol", f"unknown symbol {symbol}: this session trades "
                                        f"{', '.join(symbols)}")
    return symbol


def _choice(field_name: str, value: Any, choices: tuple[str, ...]) -> str:
    text = value.strip().lower() if isinstance(value, str) and len(value) <= 32 else None
    if text not in choices:
        raise OrderInputError(field_name, f"{field_name} must be {' or '.join(choices)}, "
                                          f"got {shown(value)}")
    return text


def parse_side(value: Any) -> Side:
    if value is None or value == "":
        raise OrderInputError("side", "side is required (buy or sell)")
    return Side(_choice("side", value, ("buy", "sell")))


def parse_order_type(value: Any) -> OrderType:
    if value is None or value == "":
        return OrderType.MARKET
    return OrderType(_choice("type", value, ("market", "limit", "stop")))


def parse_order_id(value: Any) -> str:
    """A broker or client order id as it may appear in a path: short, no slashes or spaces."""
    if not isinstance(value, str) or not value or len(value) > MAX_ORDER_ID_CHARS \
            or not _ORDER_ID.fullmatch(value):
        raise OrderInputError("order_id", f"order_id must be 1-{MAX_ORDER_ID_CHARS} letters, "
                                          f"digits or - _ . :, got {shown(value)}")
    return value


def _text(value: Any, default: str) -> str:
    if not isinstance(value, str) or not value.strip():
        return default
    return "".join(c for c in value.strip()[:MAX_TEXT_CHARS] if c.isprintable())


def check_order(values: Mapping[str, Any], symbols: Collection[str] | None, *,
                reason: str = "manual order", strategy: str = "manual") -> CheckedOrder:
    """Every field of an order as given (text or JSON values), checked; all errors at once.

    Fields: symbol, side, qty, type (or order_type), limit_price, stop_price, stop_loss,
    take_profit, reason. A market order takes no limit or stop price; a limit order needs
    limit_price, a stop order stop_price.
    """
    errors: dict[str, str] = {}
    unknown = [k for k in values if k not in FIELDS and k != "order_type"]
    if unknown:
        errors[unknown[0] if len(unknown[0]) <= 32 else "body"] = (
            f"unknown field(s): {', '.join(shown(k, 32) for k in unknown[:5])}; an order has "
            f"{', '.join(FIELDS)}")
    parsed: dict[str, Any] = {}

    def take(name: str, parse, *args) -> None:
        try:
            parsed[name] = parse(*args)
        except OrderInputError as exc:
            errors.setdefault(exc.field, exc.message)

    take("symbol", parse_symbol, values.get("symbol"), symbols)
    take("side", parse_side, values.get("side"))
    take("qty", parse_qty, values.get("qty"))
    take("type", parse_order_type, values.get("type", values.get("order_type")))
    for name in PRICE_FIELDS:
        take(name, parse_price, values.get(name), name)
    order_type = parsed.get("type")
    limit, stop = parsed.get("limit_price"), parsed.get("stop_price")
    if order_type is OrderType.MARKET:
        for name, given in (("limit_price", limit), ("stop_price", stop)):
            if given is not None:
                errors.setdefault(name, f"a market order takes no price: remove {name} or "
                                        f"pick type {name.split('_')[0]}")
    elif order_type is OrderType.LIMIT:
        if limit is None and "limit_price" not in errors:
            errors["limit_price"] = "a limit order needs a limit price (limit_price)"
        if stop is not None:
            errors.setdefault("stop_price", "a limit order takes no stop_price")
    elif order_type is OrderType.STOP:
        if stop is None and "stop_price" not in errors:
            errors["stop_price"] = "a stop order needs a stop price (stop_price)"
        if limit is not None:
            errors.setdefault("limit_price", "a stop order takes no limit_price")
    if errors:
        return CheckedOrder(None, {k: errors[k] for k in sorted(errors, key=_field_rank)})
    intent = OrderIntent(parsed["symbol"], parsed["side"], parsed["qty"], parsed["type"],
                         limit_price=limit, stop_price=stop, stop_loss=parsed["stop_loss"],
                         take_profit=parsed["take_profit"],
                         reason=_text(values.get("reason"), reason), strategy=strategy)
    return CheckedOrder(intent)


def _field_rank(name: str) -> int:
    return FIELDS.index(name) if name in FIELDS else len(FIELDS)
