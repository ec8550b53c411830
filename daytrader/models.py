"""Plain, immutable records that cross module boundaries: bars, orders, fills, positions, decisions."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from math import floor as _floor
from typing import Any, TypeVar

ZERO = Decimal(0)
CENT = Decimal("0.01")
SUB_PENNY = Decimal("0.0001")


R = TypeVar("R")
_NO_VALUE = object()


def quick_init(cls: type[R]) -> type[R]:
    """Makes a frozen, slotted dataclass quick to construct. The generated `__init__` stores
    each field through object.__setattr__ (the class forbids plain stores), a call per field,
    and orders, fills and updates are made several times per order. Instead each instance is
    filled in as a plain slotted twin of the class (same slots, stored with plain assignments)
    and then given its class: from then on it is as frozen as the dataclass makes it. The same
    parameters, defaults and default factories; no __post_init__ is supported."""
    if not (dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
            and "__slots__" in cls.__dict__ and not hasattr(cls, "__post_init__")
            and cls.__bases__ == (object,)):
        raise TypeError(f"{cls.__name__}: quick_init is for frozen slotted dataclasses")
    fields = dataclasses.fields(cls)
    twin = type(f"_{cls.__name__}Fields", (), {"__slots__": cls.__slots__})  # type: ignore[attr-defined]
    namespace: dict[str, object] = {"_NO_VALUE": _NO_VALUE, "_twin": twin}
    params, body = [], []
    for i, f in enumerate(fields):
        if not f.init:
            raise TypeError(f"{cls.__name__}.{f.name}: quick_init needs every field in __init__")
        value = f.name
        if f.default is not dataclasses.MISSING:
            namespace[f"_default{i}"] = f.default
            params.append(f"{f.name}=_default{i}")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory{i}"] = f.default_factory
            params.append(f"{f.name}=_NO_VALUE")
            value = f"_factory{i}() if {f.name} is _NO_VALUE else {f.name}"
        else:
            params.append(f.name)
        body.append(f"    self.{f.name} = {value}")
    fill_in = "".join(line + "\n" for line in body)
    namespace["_cls"] = cls
    source = (f"def __new__(cls, {', '.join(params)}):\n    self = _twin()\n{fill_in}"
              "    self.__class__ = cls\n    return self\n"
              f"def make({', '.join(params)}):\n    self = _twin()\n{fill_in}"
              "    self.__class__ = _cls\n    return self\n")
    exec(source, namespace)  # as dataclasses itself makes __init__
    new, make = namespace["__new__"], namespace["make"]
    new.__qualname__ = f"{cls.__qualname__}.__new__"  # type: ignore[attr-defined]
    make.__qualname__ = f"{cls.__qualname__}.make"  # type: ignore[attr-defined]
    cls.__new__ = new  # type: ignore[assignment]
    # `Cls.make(...)`: the same instance as `Cls(...)`, by a plain call: calling a class goes
    # through type.__call__ and a tuple of the arguments (a third of making an order).
    cls.make = staticmethod(make)  # type: ignore[attr-defined]
    # object.__init__ then does nothing (and accepts the arguments, __new__ being ours).
    del cls.__init__  # type: ignore[misc]
    names = tuple(f.name for f in fields)

    def __reduce__(self: object) -> tuple:  # pickle and copy: by the fields, through __new__
        return type(self), tuple(getattr(self, name) for name in names)

    cls.__reduce__ = __reduce__  # type: ignore[method-assign,assignment]
    return cls


def to_price(value: float | Decimal | str) -> Decimal:
    """A price as the broker accepts it: cents at or above $1, four decimals below (Alpaca's rule)."""
    if type(value) is float and 0.0 < value < 1e6:
        # The float's shortest decimal (str) rounded half up, without writing it out: scaled to
        # cents (or ten-thousandths), the float and that decimal differ by under 1e-7, so
        # rounding to nearest gives the same whole number unless the fraction is within that of
        # one half (or the price within that of $1, where the step changes): those, and
        # everything else, go the written-out way. A price per fill, signal and mark.
        scale, exponent = (100.0, -2) if value >= 1.0 else (10000.0, -4)
        scaled = value * scale
        whole = _floor(scaled)
        part = scaled - whole
        if not (0.4999 < part < 0.5001 or 0.9999 < value < 1.0001):
            return Decimal(whole + 1 if part > 0.5 else whole).scaleb(exponent)
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    # The rounding passed by position: by keyword costs a quarter of the call (prices are made
    # several times per order).
    return d.quantize(CENT if d >= 1 else SUB_PENNY, ROUND_HALF_UP)


def to_money(value: Decimal | float | int) -> Decimal:
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    return d.quantize(CENT, ROUND_HALF_UP)  # by position: see to_price


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    # Compared as the strings they are: an enum's class attributes are slow to look up (its
    # metaclass has __getattr__), and these run several times per order.
    @property
    def opposite(self) -> Side:
        return _SELL if self == "buy" else _BUY

    @property
    def sign(self) -> int:
        return 1 if self == "buy" else -1


_BUY, _SELL = Side.BUY, Side.SELL


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class OrderStatus(enum.StrEnum):
    NEW = "new"  # accepted by the broker, working
    HELD = "held"  # a bracket leg that is not active yet (Alpaca: the stop-loss until it triggers)
    PARTIALLY_FILLED = "partially_filled"
    PENDING_CANCEL = "pending_cancel"  # a cancel was asked for; it can still fill until confirmed
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self in OPEN_STATUSES


    @property
    def is_working(self) -> bool:
        """Open and not being canceled: what still protects or still means to trade."""
        return self in WORKING_STATUSES


# The sets behind is_open and is_working, for code that sorts every broker event by them (a set
# lookup there saves the property call).
OPEN_STATUSES = frozenset({OrderStatus.NEW, OrderStatus.HELD, OrderStatus.PARTIALLY_FILLED,
                           OrderStatus.PENDING_CANCEL})
WORKING_STATUSES = OPEN_STATUSES - {OrderStatus.PENDING_CANCEL}


class OrderRole(enum.StrEnum):
    ENTRY = "entry"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    EXIT = "exit"


class TradingState(enum.StrEnum):
    """What new orders may do: ENABLED trades; DISABLED opens nothing; HALTED (breaker) is reduce-only."""

    ENABLED = "ENABLED"
    DISABLED = "DISABLED"
    HALTED = "HALTED"


@quick_init
@dataclass(frozen=True, slots=True)
class Bar:
    """One minute of trading; `ts` is the tz-aware start of the minute (Alpaca's convention)."""

    symbol: str
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


@quick_init
@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What someone wants to trade, before it has an id or has passed risk."""

    symbol: str
    side: Side
    qty: int
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    # Bracket legs: protective orders the broker holds once the entry fills.
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    # The price the decision was made at (signal close or last trade); used for risk and slippage.
    ref_price: Decimal | None = None
    reduce_only: bool = False
    reason: str = ""
    strategy: str = "manual"
    ts: datetime | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What is sent to a broker: an intent with its idempotent client order id."""

    client_order_id: str
    symbol: str
    side: Side
    qty: int
    order_type: OrderType
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    # Alpaca's second guard on exits ("sell_to_close", "buy_to_close"); None lets the broker infer.
    position_intent: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class Order:
    id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: int
    order_type: OrderType
    status: OrderStatus
    submitted_at: datetime
    role: OrderRole = OrderRole.ENTRY
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    filled_qty: int = 0
    filled_avg_price: Decimal | None = None
    parent_id: str | None = None
    updated_at: datetime | None = None
    reject_reason: str = ""
    # A bracket entry's legs as the broker answered the submit (their ids are how protection
    # is tracked); empty for everything else.
    legs: tuple[Order, ...] = ()

    @property
    def short_id(self) -> str:
        return short_order_id(self.id)


def short_order_id(order_id: str) -> str:
    """The one short form of a broker order id that the console, the log and `ctl` all show (and
    `ctl cancel` accepts): the sim's ids as they are ("sim-000014"), a UUID's first 8 characters
    (Alpaca's, "61e69015"), any other long id its last 12."""
    if len(order_id) == 36 and order_id.count("-") == 4:
        return order_id[:8]
    return order_id if len(order_id) <= 12 else order_id[-12:]


@quick_init
@dataclass(frozen=True, slots=True)
class Fill:
    id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: int
    price: Decimal
    commission: Decimal
    ts: datetime
    role: OrderRole = OrderRole.ENTRY


@quick_init
@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    qty: int  # negative when short
    avg_entry_price: Decimal
    last_price: Decimal
    opened_at: datetime
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    # The protective orders working at the broker now, by id (set by the engine's snapshot from
    # its order book); no stop order means the position is UNPROTECTED.
    stop_order_id: str | None = None
    take_profit_order_id: str | None = None
    strategy: str = ""

    @property
    def protected(self) -> bool:
        return self.stop_order_id is not None

    @property
    def market_value(self) -> Decimal:
        return self.last_price * self.qty

    @property
    def unrealized_pnl(self) -> Decimal:
        return to_money((self.last_price - self.avg_entry_price) * self.qty)

    @property
    def unrealized_pct(self) -> float:
        if not self.avg_entry_price:
            return 0.0
        return float((self.last_price / self.avg_entry_price - 1) * (1 if self.qty > 0 else -1) * 100)


@quick_init
@dataclass(frozen=True, slots=True)
class Account:
    cash: Decimal
    equity: Decimal
    buying_power: Decimal
    start_of_day_equity: Decimal

    @property
    def day_pnl(self) -> Decimal:
        return self.equity - self.start_of_day_equity

    @property
    def day_pnl_pct(self) -> float:
        if not self.start_of_day_equity:
            return 0.0
        return float(self.day_pnl / self.start_of_day_equity * 100)


@quick_init
@dataclass(frozen=True, slots=True)
class Signal:
    """A strategy's decision on one bar: enter or exit a symbol, with the levels it computed."""

    symbol: str
    action: str  # "enter_long", "enter_short", "exit"
    ts: datetime
    price: Decimal
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    atr: float | None = None
    reason: str = ""


def worded_when_read(*names: str) -> Callable[[type[R]], type[R]]:
    """Lets a frozen slotted record be given any of the text fields `names` as a function that
    words it: the text is made when the field is first read, then kept, and reads, compares,
    hashes and converts (asdict, pickle) as the text. For wording that costs more than the work
    it describes and that most runs never read (a passing check's money, on every order of a
    backtest)."""

    def wrap(cls: type[R]) -> type[R]:
        for name in names:
            stored = cls.__dict__[name]  # the slot itself (frozen records refuse plain stores)

            def read(self: object, stored: Any = stored) -> str:
                text = stored.__get__(self)
                if text.__class__ is not str:
                    text = text()
                    stored.__set__(self, text)
                return text

            setattr(cls, name, property(read))
        return cls

    return wrap


@worded_when_read("value", "limit")
@quick_init
@dataclass(frozen=True, slots=True)
class CheckResult:
    """One pre-trade check: its name, whether it passed, and the value it saw against its limit
    (either may be given as a function that words it: see worded_when_read)."""

    name: str
    passed: bool
    value: str
    limit: str
    reason: str = ""


@quick_init
@dataclass(frozen=True, slots=True)
class RiskDecision:
    checks: tuple[CheckResult, ...]

    @property
    def approved(self) -> bool:
        for check in self.checks:  # noqa: SIM110 (a loop costs a third of all(...) per order)
            if not check.passed:
                return False
        return True

    @property
    def failed(self) -> CheckResult | None:
        return next((c for c in self.checks if not c.passed), None)

    @property
    def reason(self) -> str:
        failed = self.failed
        return failed.reason if failed else "all checks passed"


@quick_init
@dataclass(frozen=True, slots=True)
class Trade:
    """A finished round trip: entry and exit of one position."""

    symbol: str
    side: Side  # side of the entry
    qty: int
    entry_time: datetime
    entry_price: Decimal
    exit_time: datetime
    exit_price: Decimal
    pnl: Decimal
    exit_reason: str
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    commission: Decimal = ZERO
    strategy: str = ""  # the strategy whose entry opened it ("" when not known: adopted)


@quick_init
@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """A broker event about one order, like Alpaca's trade_updates: new, fill, canceled, ..."""

    event: str  # "new", "fill", "partial_fill", "canceled", "rejected", "expired", "replaced"
    order: Order
    fill: Fill | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class LogEvent:
    ts: datetime
    level: str  # "info", "warning", "error"
    kind: str  # "order", "fill", "reject", "breaker", "control", "broker", "data", "engine"
    message: str
    data: dict = field(default_factory=dict, compare=False)
    seq: int = 0  # 1, 2, 3, ... per engine: readers ask for what is newer than what they saw


@dataclass(frozen=True, slots=True)
class Health:
    """How one component is doing: the console's status bar and the API's /health read it."""

    name: str  # "broker", "data", "store"
    ok: bool
    detail: str
    last_seen: datetime | None = None  # wall time of the component's last message


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One exchange with the LLM advisor, as the journal keeps it for audit: what was sent, what
    came back, and what was made of it."""

    call_id: str
    ts: datetime  # market time (for an entry: its signal's)
    kind: str  # "entry", "debrief", "ask"
    subject: str  # an entry's client order id, a debrief's date, an ask's question
    symbol: str
    model: str
    mode: str  # off / advise / veto at the time
    prompt: str  # the messages sent, as JSON
    answer: str | None  # the model's raw content (None when there was none)
    outcome: str  # agree / caution / veto / answered / skipped / dropped
    verdict: str | None = None
    confidence: float | None = None
    reasons: tuple[str, ...] = ()
    error: str = ""  # why the answer was not used
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
