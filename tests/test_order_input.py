"""The order input rules every front end shares (API, console form, ctl): bad values are refused
by field with what the field expects, whatever their type or size, and good ones become exact
intents."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daytrader.models import OrderType, Side
from daytrader.order_input import (
    FIELDS,
    MAX_PRICE,
    MAX_QTY,
    OrderInputError,
    check_order,
    parse_order_id,
    parse_price,
    parse_qty,
    parse_symbol,
)

SYMBOLS = ("AAPL", "BRK.B")


def errors(**fields):
    checked = check_order({"symbol": "AAPL", "side": "buy", "qty": "10", **fields}, SYMBOLS)
    assert checked.intent is None
    return checked.errors


@pytest.mark.parametrize("qty", [
    "1e308", "inf", "Infinity", "-inf", "NaN", "nan", "sNaN", "1e99999", "1E+500000",
    "1e99999999999999999999", float("inf"), float("nan"), 10 ** 4000, 1e308, True, [1], {"n": 1},
    "0x10", "1_000", "１０", "1,00", "x" * 2_000_000, "0", "-1", "2.5", 0.5,
])
def test_poison_quantities_are_refused_by_name(qty):
    problem = errors(qty=qty)
    assert list(problem) == ["qty"]
    assert problem["qty"].startswith("qty")
    assert len(problem["qty"]) < 200  # a 2 MB value is quoted, not echoed


@pytest.mark.parametrize(("qty", "expected"), [
    ("10", 10), (" 7 ", 7), ("1,000", 1000), ("1e3", 1000), ("+5", 5), ("10.", 10),
    ("10.000", 10), (12, 12), (12.0, 12), (str(MAX_QTY), MAX_QTY),
])
def test_whole_quantities_in_any_plain_spelling_are_taken(qty, expected):
    assert parse_qty(qty) == expected


@pytest.mark.parametrize(("qty", "message"), [
    (str(MAX_QTY + 1), "surely a typo"), ("2.5", "whole shares only"), ("0", "more than zero"),
    ("", "qty is required"), (None, "qty is required"), ("1e400", "surely a typo"),
])
def test_quantity_messages_say_what_is_expected(qty, message):
    with pytest.raises(OrderInputError, match=message) as caught:
        parse_qty(qty)
    assert caught.value.field == "qty"


@pytest.mark.parametrize("price", ["1e400", "1e27", 1e400, "NaN", "sNaN", "-1", "0", "0.00001",
                                   "abc", str(MAX_PRICE + 1), [1], True])
def test_prices_must_be_finite_positive_and_in_range(price):
    with pytest.raises(OrderInputError) as caught:
        parse_price(price, "limit_price")
    assert caught.value.field == "limit_price"


def test_prices_are_rounded_to_the_brokers_tick():
    assert parse_price("$189.555", "limit_price") == Decimal("189.56")
    assert parse_price("0.12345", "stop_price") == Decimal("0.1235")
    assert parse_price(" ", "stop_loss") is None


@pytest.mark.parametrize("symbol", ["", "\x00", "AAPL\x00", "a" * 2_000_000, "TOOLONGSYMBOL",
                                    "1ABC", "AA PL", "../x", 5, None])
def test_symbols_follow_the_ticker_rule(symbol):
    with pytest.raises(OrderInputError) as caught:
        parse_symbol(symbol)
    assert caught.value.field == "symbol"


def test_symbols_are_normalized_and_checked_against_the_universe():
    assert parse_symbol(" brk.b ") == "BRK.B"
    with pytest.raises(OrderInputError, match="unknown symbol MSFT"):
        parse_symbol("msft", SYMBOLS)


@pytest.mark.parametrize("order_id", ["", "a" * 65, "../trading/disable", "a b", "x\x00", 7])
def test_order_ids_in_paths_are_short_and_plain(order_id):
    with pytest.raises(OrderInputError):
        parse_order_id(order_id)


def test_type_and_price_must_agree():
    assert "a market order takes no price" in errors(limit_price="10")["limit_price"]
    assert "needs a limit price" in errors(type="limit")["limit_price"]
    assert "needs a stop price" in errors(type="stop")["stop_price"]
    assert "takes no limit_price" in errors(type="stop", stop_price="9", limit_price="10")[
        "limit_price"]
    assert "unknown field" in errors(limit="10")["limit"]  # a typo never becomes a market order


def test_every_bad_field_is_reported_at_once_in_field_order():
    checked = check_order({"symbol": "", "side": "hold", "qty": "0", "type": "iceberg"}, SYMBOLS)
    assert list(checked.errors) == ["symbol", "side", "qty", "type"]
    assert checked.first_error[0] == "symbol"


def test_a_good_order_becomes_an_exact_intent():
    intent = check_order({"symbol": "aapl", "side": "SELL", "qty": 5, "type": "limit",
                          "limit_price": 190.5, "stop_loss": "185", "take_profit": "$200",
                          "reason": "rebalance\x00"}, SYMBOLS).intent
    assert intent is not None
    assert (intent.symbol, intent.side, intent.qty, intent.order_type) == (
        "AAPL", Side.SELL, 5, OrderType.LIMIT)
    assert (intent.limit_price, intent.stop_loss, intent.take_profit) == (
        Decimal("190.50"), Decimal("185.00"), Decimal("200.00"))
    assert intent.reason == "rebalance"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3), max_leaves=6)
typed_text = st.text(alphabet=st.sampled_from("0123456789.,-+eE$ xinfNaS_"), max_size=30)


@settings(max_examples=400, deadline=None)
@given(values=st.dictionaries(st.sampled_from([*FIELDS, "order_type", "extra"]),
                              json_values | typed_text, max_size=8))
def test_any_input_gives_an_in_range_intent_or_named_errors(values):
    checked = check_order(values, SYMBOLS)
    if checked.intent is None:
        assert checked.errors
        assert set(checked.errors) <= {*FIELDS, "extra", "order_type", "body"}
        assert all(isinstance(m, str) and 0 < len(m) < 400 for m in checked.errors.values())
        return
    intent = checked.intent
    assert 1 <= intent.qty <= MAX_QTY and isinstance(intent.qty, int)
    assert intent.symbol in SYMBOLS
    for price in (intent.limit_price, intent.stop_price, intent.stop_loss, intent.take_profit):
        assert price is None or (price.is_finite() and 0 < price <= MAX_PRICE)
