"""The order form's rules, as pure functions: what a trader may type and what is refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from daytrader.models import CheckResult, OrderType, RiskDecision, Side
from widgets.order_form import OrderDraft, parse_order, preview_text

SYMBOLS = ("AAPL", "MSFT")
PRICES = {"AAPL": 190.0, "MSFT": 410.0}


def parse(**fields):
    draft = OrderDraft(**{"symbol": "AAPL", "qty": "10", **fields})
    return parse_order(draft, SYMBOLS, Decimal("10000"), PRICES)


def test_a_market_buy_becomes_an_intent():
    parsed = parse(symbol=" aapl ", qty="10")
    assert parsed.ok and parsed.errors == {}
    intent = parsed.intent
    assert (intent.symbol, intent.side, intent.qty, intent.order_type) == ("AAPL", Side.BUY, 10,
                                                                           OrderType.MARKET)
    assert intent.limit_price is None and intent.stop_price is None


def test_limit_and_stop_prices_go_to_their_own_fields_rounded_to_cents():
    limit = parse(order_type="limit", price="189.555").intent
    assert limit.limit_price == Decimal("189.56") and limit.stop_price is None
    stop = parse(order_type="stop", side="sell", price="$185").intent
    assert stop.stop_price == Decimal("185.00") and stop.side is Side.SELL


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"symbol": ""}, "symbol", "symbol is required"),
    ({"symbol": "GOOG"}, "symbol", "unknown symbol GOOG: this session trades AAPL, MSFT"),
    ({"qty": " "}, "qty", "qty is required"),
    ({"qty": "0"}, "qty", "must be more than zero"),
    ({"qty": "-1"}, "qty", "must be more than zero"),
    ({"qty": "2.5"}, "qty", "whole shares only"),
    ({"qty": "1e400"}, "qty", "surely a typo"),
    ({"qty": "abc"}, "qty", "must be a number of whole shares"),
    ({"qty": "nan"}, "qty", "must be a number of whole shares"),
    ({"price": "100"}, "price", "a market order takes no price"),
    ({"order_type": "limit"}, "price", "a limit order needs a limit price"),
    ({"order_type": "stop", "price": "0"}, "price", "must be more than zero"),
    ({"order_type": "limit", "price": "cheap"}, "price", "must be a price"),
    ({"qty": "60"}, "qty", "60 x $190.00 = $11,400.00 is over the buying power of $10,000.00"),
    ({"order_type": "limit", "price": "1000.01"}, "qty", "is over the buying power"),
    ({"side": "short"}, "side", "side must be buy or sell"),
])
def test_bad_input_is_refused_with_the_field_and_the_reason(fields, field, message):
    parsed = parse(**fields)
    assert not parsed.ok and parsed.intent is None
    assert message in parsed.errors[field]
    assert parsed.first_error


def test_a_sell_is_not_limited_by_buying_power():
    assert parse(side="sell", qty="60").ok


def test_every_error_is_reported_at_once():
    parsed = parse(symbol="", qty="0", price="5")
    assert set(parsed.errors) == {"symbol", "qty", "price"}


def test_the_preview_names_each_check_and_the_one_that_refuses():
    decision = RiskDecision((CheckResult("trading_enabled", True, "enabled", "enabled"),
                             CheckResult("market_open", False, "closed", "open", "market is closed")))
    text = preview_text(decision)
    assert "✓ trading_enabled" in text and "✗ market_open" in text
    assert "market is closed" in text and "would be REFUSED by market_open" in text
