"""The order form's rules, as pure functions: what a trader may type and what is refused."""

from __future__ import annotations

from dataclasses import replace
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


# -- the ticket's own rules: the bracket's sides, closing orders, fat fingers ----------------------
def ticket(held: dict | None = None, **fields):
    from widgets.order_form import parse_ticket

    draft = OrderDraft(**{"symbol": "AAPL", "qty": "10", **fields})
    return parse_ticket(draft, SYMBOLS, Decimal("100000"), PRICES, held or {})


def test_the_ticket_sends_its_stop_loss_and_take_profit_with_any_order_type():
    market = ticket(stop_loss="186.20", take_profit="197.60").intent
    assert (market.stop_loss, market.take_profit) == (Decimal("186.20"), Decimal("197.60"))
    limit = ticket(order_type="limit", price="189", stop_loss="185", take_profit="195").intent
    assert (limit.limit_price, limit.stop_loss, limit.take_profit) == (
        Decimal("189.00"), Decimal("185.00"), Decimal("195.00"))
    short = ticket(side="sell", stop_loss="194", take_profit="186").intent
    assert short.stop_loss == Decimal("194.00")


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"stop_loss": "191"}, "stop", "stop-loss 191.00 must be below the entry 190.00 of a buy"),
    ({"take_profit": "189"}, "target", "take-profit 189.00 must be above the entry 190.00"),
    ({"side": "sell", "stop_loss": "185"}, "stop", "must be above the entry 190.00 of a sell"),
    ({"order_type": "limit", "price": "180", "stop_loss": "181"}, "stop",
     "must be below the entry 180.00"),
    ({"stop_loss": "1.86"}, "stop", "is 99.0% from the entry 190.00: a typo?"),
    ({"take_profit": "abc"}, "target", "take_profit must be a price, got 'abc'"),
    ({"stop_loss": "-5"}, "stop", "must be more than zero"),
    ({"order_type": "limit", "price": "1900"}, "price",
     "limit 1900.00 is 900.0% above the last price 190.00: a typo? (more than 10% away)"),
    ({"order_type": "stop", "price": "150", "side": "sell"}, "price",
     "stop 150.00 is 21.1% below the last price 190.00"),
])
def test_the_ticket_refuses_a_bracket_on_the_wrong_side_and_fat_fingers(fields, field, message):
    parsed = ticket(**fields)
    assert not parsed.ok
    assert message in parsed.errors[field], parsed.errors


def test_an_order_that_reduces_a_position_takes_no_bracket():
    assert ticket({"AAPL": 50}, side="sell").ok
    refused = ticket({"AAPL": 50}, side="sell", stop_loss="195")
    assert "reduces the +50 AAPL held" in refused.errors["stop"]


def test_risk_text_is_qty_times_the_stop_distance_in_dollars_and_percent_of_equity():
    from daytrader.models import OrderIntent
    from daytrader.snapshot import TicketDefaults
    from widgets.order_form import risk_text

    defaults = TicketDefaults("AAPL", Side.BUY, Decimal("190.00"), Decimal("190.00"), 50,
                              Decimal("188.00"), Decimal("194.00"), Decimal("100000"), 1.0)
    intent = OrderIntent("AAPL", Side.BUY, 50, stop_loss=Decimal("188.00"),
                         take_profit=Decimal("194.00"))
    text, tone = risk_text(intent, defaults, Decimal("190.00"))
    assert "risk $100.00 (0.10% of equity) to the stop" in text and "(2.0R)" in text
    assert "value $9,500.00" in text and tone == "positive"
    big, tone = risk_text(replace(intent, qty=1000), defaults, Decimal("190.00"))
    assert "(2.00% of equity)" in big and tone == "warning"  # over the 1% per trade
    bare, _ = risk_text(replace(intent, stop_loss=None, take_profit=None), defaults,
                        Decimal("190.00"))
    assert "risk $100.00" in bare and "the strategy's bracket" in bare  # what the engine adds
    naked, tone = risk_text(replace(intent, stop_loss=None), defaults, Decimal("190.00"))
    assert "NO STOP-LOSS" in naked and tone == "negative"
