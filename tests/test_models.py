"""The records that cross module boundaries: quick_init makes them cheaper to build and
worded_when_read cheaper to word, nothing else."""

from __future__ import annotations

import copy
import math
import pickle
from dataclasses import FrozenInstanceError, asdict, dataclass, fields, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daytrader.models import (
    CheckResult,
    LogEvent,
    Order,
    OrderStatus,
    OrderType,
    Side,
    quick_init,
    to_price,
)

T = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("America/New_York"))


def order(**changes) -> Order:
    return replace(Order("o1", "c1", "AAPL", Side.BUY, 10, OrderType.MARKET, OrderStatus.NEW, T),
                   **changes)


def test_defaults_and_keywords_are_the_dataclass_s():
    built = order()
    optional = fields(Order)[8:]
    assert [getattr(built, f.name) for f in optional] == [f.default for f in optional]
    assert Order(id="o1", client_order_id="c1", symbol="AAPL", side=Side.BUY, qty=10,
                 order_type=OrderType.MARKET, status=OrderStatus.NEW, submitted_at=T) == built


def test_a_default_factory_gives_each_record_its_own_value():
    a, b = LogEvent(T, "info", "order", "m"), LogEvent(T, "info", "order", "m")
    assert a.data == {} and a.data is not b.data
    assert LogEvent(T, "info", "order", "m", {"source": "api"}).data == {"source": "api"}


def test_make_builds_the_same_record_as_calling_the_class():
    made = Order.make("o1", "c1", "AAPL", Side.BUY, 10, OrderType.MARKET, OrderStatus.NEW, T)
    assert type(made) is Order and made == order() and hash(made) == hash(order())
    assert Order.make(id="o1", client_order_id="c1", symbol="AAPL", side=Side.BUY, qty=10,
                      order_type=OrderType.MARKET, status=OrderStatus.NEW, submitted_at=T,
                      filled_qty=3) == order(filled_qty=3)
    with pytest.raises(FrozenInstanceError):
        made.qty = 20  # type: ignore[misc]
    with pytest.raises(TypeError):
        Order.make("o1")  # a missing field is refused, as by the class
    a, b = LogEvent.make(T, "info", "order", "m"), LogEvent.make(T, "info", "order", "m")
    assert a == LogEvent(T, "info", "order", "m") and a.data == {} and a.data is not b.data
    worded = CheckResult.make("risk_per_trade", True, lambda: "$10.00", "$100.00")
    assert worded == CheckResult("risk_per_trade", True, "$10.00", "$100.00")


def test_records_stay_frozen_comparable_hashable_and_picklable():
    built = order()
    with pytest.raises(FrozenInstanceError):
        built.qty = 20  # type: ignore[misc]
    assert replace(built, status=OrderStatus.FILLED).status is OrderStatus.FILLED
    assert hash(built) == hash(order()) and built == order() and built != order(qty=11)
    assert pickle.loads(pickle.dumps(built)) == built  # sweeps send them to worker processes
    assert copy.deepcopy(built) == built and type(copy.copy(built)) is Order


def test_bad_arguments_fail_as_they_would_without_it():
    with pytest.raises(TypeError, match="missing"):
        Order("o1")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword"):
        Order("o1", "c1", "AAPL", Side.BUY, 10, OrderType.MARKET, OrderStatus.NEW, T, bogus=1)


def test_only_frozen_slotted_dataclasses_take_it():
    @dataclass
    class Plain:
        x: int

    with pytest.raises(TypeError, match="frozen slotted"):
        quick_init(Plain)


def test_a_check_worded_when_read_is_the_same_record_as_one_worded_at_once():
    calls = []

    def words() -> str:
        calls.append(1)
        return "$1,000.00"

    lazy = CheckResult("risk_per_trade", True, words, lambda: "$2,000.00 (1% of equity)")
    eager = CheckResult("risk_per_trade", True, "$1,000.00", "$2,000.00 (1% of equity)")
    assert calls == []  # nothing worded until read
    assert lazy == eager and hash(lazy) == hash(eager) and repr(lazy) == repr(eager)
    assert lazy.value == "$1,000.00" and lazy.value == "$1,000.00" and len(calls) == 1
    assert asdict(lazy) == asdict(eager)
    assert pickle.loads(pickle.dumps(CheckResult("x", True, lambda: "a", "b"))) == CheckResult(
        "x", True, "a", "b")
    with pytest.raises(FrozenInstanceError):
        lazy.value = "$0.00"  # type: ignore[misc]


def _price_written_out(value: float) -> Decimal:
    """to_price's rule as the seed wrote it: the float's shortest decimal, rounded half up to
    cents at or above $1 and to four decimals below."""
    d = Decimal(str(value))
    return d.quantize(Decimal("0.01") if d >= 1 else Decimal("0.0001"), ROUND_HALF_UP)


def _same_price(value: float) -> None:
    try:
        expected = repr(_price_written_out(value))
    except InvalidOperation as exc:
        expected = type(exc).__name__
    try:
        got = repr(to_price(value))
    except InvalidOperation as exc:
        got = type(exc).__name__
    assert got == expected, value  # the same digits, exponent and sign, or the same error


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_float_price_rounds_as_its_written_out_decimal_would(value):
    _same_price(value)


@given(st.integers(0, 10**8 - 1), st.sampled_from([100, 10_000]), st.integers(-4, 4))
def test_a_float_a_few_steps_from_a_half_cent_rounds_as_its_written_out_decimal_would(
        whole, per_unit, steps):
    """The hard cases: floats next to an exact half (123.125, 0.00005, ...), and next to $1."""
    value = float(Decimal(2 * whole + 1) / (2 * per_unit))
    for _ in range(abs(steps)):
        value = math.nextafter(value, math.inf if steps > 0 else -math.inf)
    _same_price(value)
    one = 1.0
    for _ in range(abs(steps) * 1000):
        one = math.nextafter(one, math.inf if steps > 0 else -math.inf)
    _same_price(one)
