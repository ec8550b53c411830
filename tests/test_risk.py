"""Pre-trade risk: the seed's six checks and the stop-loss cooldown, the circuit breaker, sizing."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daytrader.config import Settings
from daytrader.models import OrderIntent, OrderType, RiskDecision, Side, TradingState, to_price
from daytrader.risk import (
    CHECK_NAMES,
    CircuitBreaker,
    RiskContext,
    RiskLimits,
    StopCooldown,
    check_order,
    size_entry,
)

ET = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 10, 10, 30, tzinfo=ET)
D = Decimal


def ctx(**changes) -> RiskContext:
    """A healthy account mid-morning: $100,000 equity, flat on the day, nothing open."""
    base = dict(state=TradingState.ENABLED, now=NOW, market_open=True, equity=D("100000"),
                start_of_day_equity=D("100000"), buying_power=D("100000"))
    return RiskContext(**{**base, **changes})


def buy(symbol: str = "AAPL", qty: int = 100, price: str | None = "100.00",
        stop: str | None = "98.00", **changes) -> OrderIntent:
    return OrderIntent(symbol, Side.BUY, qty, ref_price=D(price) if price else None,
                       stop_loss=D(stop) if stop else None, **changes)


def check(decision: RiskDecision, name: str):
    return next(c for c in decision.checks if c.name == name)


def refused_by(decision: RiskDecision, name: str) -> str:
    """Asserts the order is refused and `name` is the first failing check; returns its reason."""
    assert not decision.approved
    assert decision.failed is not None and decision.failed.name == name
    assert decision.reason == decision.failed.reason
    return decision.reason


def test_limits_default_to_the_seed_values():
    limits = RiskLimits()
    assert (limits.max_daily_loss_pct, limits.max_positions, limits.risk_per_trade_pct) == (5.0, 5, 1.0)
    assert (limits.cooldown_after_stops, limits.cooldown_minutes) == (3, 60)
    assert RiskLimits.from_settings(Settings()) == limits


def test_a_sound_order_passes_all_seven_checks_in_order():
    decision = check_order(buy(), ctx(), RiskLimits())
    assert decision.approved
    assert decision.reason == "all checks passed"
    assert tuple(c.name for c in decision.checks) == CHECK_NAMES
    assert CHECK_NAMES == ("trading_enabled", "circuit_breaker", "market_open", "max_positions",
                           "risk_per_trade", "buying_power", "stop_cooldown")


def test_every_check_is_reported_in_order_even_after_an_early_failure():
    everything_wrong = ctx(state=TradingState.DISABLED, breaker_tripped=True, market_open=False,
                           equity=D("90000"), buying_power=D("1000"),
                           open_symbols=frozenset({"A", "B", "C", "D", "E"}),
                           cooldown_until={"AAPL": NOW + timedelta(minutes=30)})
    decision = check_order(buy(qty=1000, stop=None), everything_wrong, RiskLimits())
    assert tuple(c.name for c in decision.checks) == CHECK_NAMES
    assert [c.passed for c in decision.checks] == [False] * 7
    assert all(c.reason for c in decision.checks)
    assert refused_by(decision, "trading_enabled") == "trading is disabled"


# --- 1. trading enabled --------------------------------------------------------------------------


def test_disabled_trading_refuses_new_entries():
    decision = check_order(buy(), ctx(state=TradingState.DISABLED), RiskLimits())
    assert refused_by(decision, "trading_enabled") == "trading is disabled"
    assert check(decision, "trading_enabled").value == "disabled"
    assert [c.name for c in decision.checks if not c.passed] == ["trading_enabled"]


def test_halted_by_the_breaker_refuses_entries_through_the_breaker_check():
    decision = check_order(buy(), ctx(state=TradingState.HALTED, breaker_tripped=True,
                                      equity=D("94000")), RiskLimits())
    assert check(decision, "trading_enabled").passed
    assert "circuit breaker tripped" in refused_by(decision, "circuit_breaker")


# --- 2. circuit breaker at 5% daily loss ---------------------------------------------------------


def test_daily_loss_of_4_99_percent_still_passes():
    decision = check_order(buy(), ctx(equity=D("95010")), RiskLimits())
    assert decision.approved
    assert check(decision, "circuit_breaker").value == "4.99%"
    assert check(decision, "circuit_breaker").limit == "5.00%"


def test_daily_loss_of_exactly_5_percent_refuses_and_names_loss_and_limit():
    decision = check_order(buy(), ctx(equity=D("95000")), RiskLimits())
    reason = refused_by(decision, "circuit_breaker")
    assert reason == "daily loss 5.00% is at or over the 5.00% limit"


def test_a_5_percent_loss_that_binary_floats_would_round_down_still_refuses():
    # (39999.60 - 37999.62) / 39999.60 is exactly 5%; in floats it came out as 4.99999999999999%.
    decision = check_order(buy(), ctx(equity=D("37999.62"), start_of_day_equity=D("39999.60"),
                                      buying_power=D("37999.62")), RiskLimits())
    assert "5.00%" in refused_by(decision, "circuit_breaker")


def test_a_day_in_profit_shows_no_loss():
    decision = check_order(buy(), ctx(equity=D("103000")), RiskLimits())
    assert check(decision, "circuit_breaker").value == "0.00%"
    assert decision.approved


def test_tripped_breaker_refuses_even_after_equity_recovers():
    decision = check_order(buy(), ctx(breaker_tripped=True, equity=D("99000")), RiskLimits())
    reason = refused_by(decision, "circuit_breaker")
    assert reason.startswith("circuit breaker tripped: daily loss 1.00% reached the 5.00% limit")
    assert "$100,000.00" in reason


@settings(max_examples=300, deadline=None)
@given(
    pair=st.one_of(
        st.integers(1, 10**9).flatmap(lambda sod: st.tuples(st.just(sod), st.integers(0, 2 * sod))),
        # Exactly the limit away: the boundary binary floats get wrong.
        st.integers(1, 5 * 10**7).map(lambda k: (20 * k, 19 * k)),
    ),
    limit=st.sampled_from([5.0, 1.0, 2.5, 3.3, 10.0]),
)
def test_breaker_check_refuses_exactly_when_loss_reaches_the_limit(pair, limit):
    sod_cents, equity_cents = pair
    sod, equity = D(sod_cents) / 100, D(equity_cents) / 100
    reaches_limit = Fraction(sod_cents - equity_cents, sod_cents) * 100 >= Fraction(str(limit))
    limits = RiskLimits(max_daily_loss_pct=limit)
    decision = check_order(buy(price="1.00", stop="0.99", qty=1),
                           ctx(equity=equity, start_of_day_equity=sod, buying_power=D(10**9)), limits)
    assert check(decision, "circuit_breaker").passed is not reaches_limit

    breaker = CircuitBreaker(limit)
    breaker.start_day(NOW.date(), sod)
    assert (breaker.update(equity, NOW) is not None) is reaches_limit


# --- 3. market open ------------------------------------------------------------------------------


def test_closed_market_refuses_and_says_what_state_it_is_in():
    decision = check_order(buy(), ctx(market_open=False), RiskLimits())
    assert refused_by(decision, "market_open") == "market is closed"
    decision = check_order(buy(), ctx(market_open=False, market_state="pre-market"), RiskLimits())
    assert refused_by(decision, "market_open") == "market is pre-market"
    assert check(decision, "market_open").limit == "open"


def test_open_market_passes():
    assert check(check_order(buy(), ctx(), RiskLimits()), "market_open").passed


# --- 4. max five positions -----------------------------------------------------------------------

FOUR = frozenset({"MSFT", "NVDA", "AMZN", "TSLA"})
FIVE = FOUR | {"META"}


def test_with_four_positions_a_fifth_symbol_passes():
    decision = check_order(buy("AAPL"), ctx(open_symbols=FOUR), RiskLimits())
    assert decision.approved
    assert (check(decision, "max_positions").value, check(decision, "max_positions").limit) == ("4", "5")


def test_with_five_positions_a_sixth_symbol_is_refused():
    decision = check_order(buy("AAPL"), ctx(open_symbols=FIVE), RiskLimits())
    assert refused_by(decision, "max_positions") == "5 positions open or pending, the maximum is 5"


def test_with_five_positions_adding_to_a_held_symbol_passes():
    assert check_order(buy("META"), ctx(open_symbols=FIVE), RiskLimits()).approved


def test_max_positions_follows_the_configured_limit():
    decision = check_order(buy("AAPL"), ctx(open_symbols=FOUR), RiskLimits(max_positions=4))
    assert refused_by(decision, "max_positions") == "4 positions open or pending, the maximum is 4"


# --- 5. risk at most 1% of equity per trade ------------------------------------------------------


def test_risk_of_exactly_one_percent_passes():
    decision = check_order(buy(qty=1, price="1500.00", stop="500.00"), ctx(), RiskLimits())
    assert decision.approved
    assert check(decision, "risk_per_trade").value == "$1,000.00"
    assert check(decision, "risk_per_trade").limit == "$1,000.00 (1% of equity)"


def test_risk_one_cent_over_one_percent_is_refused_naming_risk_and_limit():
    decision = check_order(buy(qty=1, price="1500.00", stop="499.99"), ctx(), RiskLimits())
    reason = refused_by(decision, "risk_per_trade")
    assert reason == "risk $1,000.01 (1 x $1,000.01 to stop 499.99) is over $1,000.00 (1% of equity)"


def test_risk_is_qty_times_the_distance_to_the_stop():
    assert check_order(buy(qty=500, price="100.00", stop="98.00"), ctx(), RiskLimits()).approved
    decision = check_order(buy(qty=501, price="100.00", stop="98.00"), ctx(), RiskLimits())
    assert "risk $1,002.00 (501 x $2.00 to stop 98.00)" in refused_by(decision, "risk_per_trade")


def test_a_short_risks_the_distance_up_to_its_stop():
    short = OrderIntent("AAPL", Side.SELL, 500, ref_price=D("100.00"), stop_loss=D("102.00"))
    assert check_order(short, ctx(), RiskLimits()).approved
    short = OrderIntent("AAPL", Side.SELL, 500, ref_price=D("100.00"), stop_loss=D("102.01"))
    assert not check(check_order(short, ctx(), RiskLimits()), "risk_per_trade").passed


def test_without_a_stop_the_whole_notional_counts_as_risk():
    assert check_order(buy(qty=10, stop=None), ctx(), RiskLimits()).approved  # $1,000 notional
    decision = check_order(buy(qty=11, stop=None), ctx(), RiskLimits())
    reason = refused_by(decision, "risk_per_trade")
    assert reason == "risk $1,100.00 (11 x $100.00 to no stop) is over $1,000.00 (1% of equity)"


def test_a_limit_order_is_measured_from_its_limit_price():
    order = buy(qty=1000, price="100.00", stop="99.00", order_type=OrderType.LIMIT,
                limit_price=D("100.50"))
    decision = check_order(order, ctx(), RiskLimits())
    assert check(decision, "risk_per_trade").value == "$1,500.00"
    assert not decision.approved


def test_an_order_without_any_price_is_refused_with_a_clear_reason():
    decision = check_order(buy(price=None), ctx(), RiskLimits())
    assert refused_by(decision, "risk_per_trade") == (
        "no price for AAPL yet, so the risk cannot be measured")
    assert check(decision, "risk_per_trade").value == "unknown"
    assert check(decision, "buying_power").reason == (
        "no price for AAPL yet, so the cost cannot be measured")


def test_risk_limit_scales_with_equity_and_the_configured_percent():
    half = ctx(equity=D("50000"), start_of_day_equity=D("50000"), buying_power=D("50000"))
    limits = RiskLimits(risk_per_trade_pct=0.5)
    decision = check_order(buy(qty=125, stop="98.00"), half, limits)  # 125 x $2 = 0.5% of $50,000
    assert decision.approved
    assert check(decision, "risk_per_trade").limit == "$250.00 (0.5% of equity)"
    assert not check_order(buy(qty=126, stop="98.00"), half, limits).approved


# --- 6. buying power -----------------------------------------------------------------------------


def test_cost_equal_to_buying_power_passes():
    decision = check_order(buy(qty=500, stop="99.00"), ctx(buying_power=D("50000")), RiskLimits())
    assert decision.approved
    assert (check(decision, "buying_power").value, check(decision, "buying_power").limit) == (
        "$50,000.00", "$50,000.00")


def test_cost_over_buying_power_is_refused_naming_cost_and_buying_power():
    decision = check_order(buy(qty=500, stop="99.00"), ctx(buying_power=D("49999.99")), RiskLimits())
    assert refused_by(decision, "buying_power") == "order costs $50,000.00, buying power is $49,999.99"


# --- 7. stop-loss cooldown -----------------------------------------------------------------------


def test_a_symbol_cooling_down_is_refused_until_the_cooldown_ends():
    cooling = ctx(cooldown_until={"AAPL": NOW + timedelta(minutes=60)})
    decision = check_order(buy("AAPL"), cooling, RiskLimits())
    reason = refused_by(decision, "stop_cooldown")
    assert reason.startswith("AAPL is cooling down after 3 stop-outs in a row: no entries until 11:30")
    assert check(decision, "stop_cooldown").value == "60 min left"
    assert check(decision, "stop_cooldown").limit == "3 stops -> 60 min"


def test_cooldown_time_left_rounds_up_to_the_minute():
    cooling = ctx(cooldown_until={"AAPL": NOW + timedelta(minutes=4, seconds=1)})
    assert check(check_order(buy(), cooling, RiskLimits()), "stop_cooldown").value == "5 min left"


def test_cooldown_of_one_symbol_does_not_block_another():
    cooling = ctx(cooldown_until={"AAPL": NOW + timedelta(minutes=60)})
    assert check_order(buy("MSFT"), cooling, RiskLimits()).approved


def test_an_expired_cooldown_passes():
    assert check_order(buy(), ctx(cooldown_until={"AAPL": NOW}), RiskLimits()).approved
    assert check_order(buy(), ctx(cooldown_until={"AAPL": NOW - timedelta(minutes=1)}),
                       RiskLimits()).approved


# --- closing is never blocked --------------------------------------------------------------------


@pytest.mark.parametrize("state", list(TradingState))
def test_reduce_only_orders_pass_even_when_disabled_tripped_and_over_every_limit(state):
    everything_wrong = ctx(state=state, breaker_tripped=True, market_open=False, equity=D("50000"),
                           buying_power=D("0"), open_symbols=FIVE,
                           cooldown_until={"AAPL": NOW + timedelta(minutes=60)},
                           position_qty={"AAPL": 10_000})
    close = OrderIntent("AAPL", Side.SELL, 10_000, reduce_only=True)
    decision = check_order(close, everything_wrong, RiskLimits())
    assert decision.approved
    assert [c.name for c in decision.checks] == ["reduce_only"]


# --- reduce only: an exit never takes the broker's position past zero ------------------------------


@pytest.mark.parametrize(("held", "side", "qty", "passes", "why"), [
    (100, Side.SELL, 100, True, ""),
    (100, Side.SELL, 40, True, ""),
    (100, Side.SELL, 101, False, "from +100 to -1"),
    (0, Side.SELL, 100, False, "no AAPL position at the broker"),  # the stop filled first
    (100, Side.BUY, 10, False, "from +100 to +110"),  # an "exit" that adds
    (-50, Side.BUY, 50, True, ""),
    (-50, Side.BUY, 60, False, "from -50 to +10"),
])
def test_an_exit_is_judged_against_the_brokers_position(held, side, qty, passes, why):
    close = OrderIntent("AAPL", side, qty, reduce_only=True)
    result = check(check_order(close, ctx(position_qty={"AAPL": held}), RiskLimits()), "reduce_only")
    assert result.passed is passes
    assert why in result.reason
    assert result.value == f"position {held:+d} -> {held + side.sign * qty:+d}"


def test_with_shorts_off_no_entry_takes_a_position_below_zero():
    sell = OrderIntent("AAPL", Side.SELL, 10, ref_price=D("100"), stop_loss=D("102"))
    off = check_order(sell, ctx(allow_shorts=False), RiskLimits())
    assert not off.approved and off.failed.name == "reduce_only"
    assert "would open a short (-10) and ALLOW_SHORTS=false" in off.reason
    assert check_order(sell, ctx(allow_shorts=True), RiskLimits()).approved
    # Selling part of a long is fine either way; selling through it is a flip, refused.
    held = {"AAPL": 30}
    assert check_order(sell, ctx(allow_shorts=False, position_qty=held), RiskLimits()).approved
    flip = OrderIntent("AAPL", Side.SELL, 40, ref_price=D("100"), stop_loss=D("102"))
    decision = check_order(flip, ctx(allow_shorts=True, position_qty=held), RiskLimits())
    assert decision.failed.name == "reduce_only" and "would flip the position" in decision.reason
    # A plain buy with nothing held does not even show the check.
    assert "reduce_only" not in [c.name for c in check_order(buy(), ctx(), RiskLimits()).checks]


# --- the circuit breaker -------------------------------------------------------------------------


def minutes(n: int) -> datetime:
    return NOW + timedelta(minutes=n)


def test_breaker_trips_on_the_update_that_crosses_five_percent_and_only_once():
    breaker = CircuitBreaker(5.0)
    breaker.start_day(NOW.date(), D("100000"))
    results = [breaker.update(equity, minutes(i))
               for i, equity in enumerate([100000, 96000, 95001, 95000, 94000])]
    assert [r is not None for r in results] == [False, False, False, True, False]
    assert breaker.tripped
    assert breaker.trips == [results[3]]
    trip = results[3]
    assert (trip.ts, trip.loss_pct, trip.equity, trip.baseline) == (minutes(3), 5.0, D("95000.00"),
                                                                    D("100000"))
    assert trip.message == ("circuit breaker tripped: daily loss 5.00% "
                            "(equity $95,000.00 vs start-of-day $100,000.00)")


def test_breaker_judges_float_equity_estimates_in_cents():
    breaker = CircuitBreaker(5.0)
    breaker.start_day(NOW.date(), D("39999.60"))
    assert breaker.update(37999.620000000003, NOW) is not None  # exactly 5% down, in cents


def test_breaker_stays_tripped_when_equity_recovers():
    breaker = CircuitBreaker(5.0)
    breaker.start_day(NOW.date(), D("100000"))
    breaker.update(D("94000"), minutes(1))
    assert breaker.update(D("101000"), minutes(2)) is None
    assert breaker.tripped
    assert len(breaker.trips) == 1


def test_a_new_trading_day_clears_the_breaker_and_measures_from_the_new_equity():
    breaker = CircuitBreaker(5.0)
    breaker.start_day(date(2026, 3, 10), D("100000"))
    breaker.update(D("94000"), minutes(1))
    assert breaker.start_day(date(2026, 3, 11), D("94000")) is True
    assert not breaker.tripped
    assert breaker.baseline == D("94000")
    assert breaker.loss_pct(D("94000")) == 0.0
    assert breaker.update(D("89301"), minutes(2)) is None  # 4.999% from the new baseline
    assert breaker.update(D("89300"), minutes(3)) is not None  # 5% from the new baseline
    assert len(breaker.trips) == 2


def test_a_new_day_without_a_trip_reports_nothing_cleared():
    breaker = CircuitBreaker(5.0)
    assert breaker.start_day(date(2026, 3, 10), D("100000")) is False


def test_reset_clears_the_trip_and_measures_from_the_equity_at_that_moment():
    breaker = CircuitBreaker(5.0)
    breaker.start_day(NOW.date(), D("100000"))
    breaker.update(D("95000"), minutes(1))
    breaker.reset(D("95000"))
    assert not breaker.tripped
    assert breaker.baseline == D("95000")
    assert breaker.update(D("90251"), minutes(2)) is None  # 4.999% below the reset equity
    assert breaker.update(D("90250"), minutes(3)) is not None  # 5% below it
    assert len(breaker.trips) == 2


def test_breaker_does_nothing_before_the_day_has_a_baseline():
    breaker = CircuitBreaker(5.0)
    assert breaker.update(D("1"), NOW) is None
    assert not breaker.tripped


# --- the stop-loss cooldown ----------------------------------------------------------------------


def test_three_stop_outs_in_a_row_start_a_cooldown_of_the_configured_minutes():
    cooldown = StopCooldown(3, 60)
    assert cooldown.record_exit("AAPL", "stop_loss", minutes(0)) is None
    assert cooldown.record_exit("AAPL", "stop_loss", minutes(10)) is None
    assert cooldown.record_exit("AAPL", "stop_loss", minutes(20)) == minutes(80)
    assert cooldown.until == {"AAPL": minutes(80)}


def test_cooldown_length_and_streak_follow_the_settings():
    cooldown = StopCooldown(2, 15)
    cooldown.record_exit("AAPL", "stop_loss", minutes(0))
    assert cooldown.record_exit("AAPL", "stop_loss", minutes(5)) == minutes(20)


@pytest.mark.parametrize("other_exit", ["take_profit", "ema_cross_down", "flatten_before_close",
                                        "emergency_stop", "exit"])
def test_any_other_exit_in_between_resets_the_stop_streak(other_exit):
    cooldown = StopCooldown(3, 60)
    cooldown.record_exit("AAPL", "stop_loss", minutes(0))
    cooldown.record_exit("AAPL", "stop_loss", minutes(1))
    cooldown.record_exit("AAPL", other_exit, minutes(2))
    assert cooldown.record_exit("AAPL", "stop_loss", minutes(3)) is None
    assert cooldown.record_exit("AAPL", "stop_loss", minutes(4)) is None
    assert cooldown.until == {}
    assert cooldown.record_exit("AAPL", "stop_loss", minutes(5)) == minutes(65)


def test_stop_streaks_are_counted_per_symbol():
    cooldown = StopCooldown(3, 60)
    for i, symbol in enumerate(["AAPL", "MSFT", "AAPL", "MSFT", "MSFT"]):
        cooldown.record_exit(symbol, "stop_loss", minutes(i))
    assert cooldown.until == {"MSFT": minutes(64)}


def test_a_cooldown_blocks_entries_on_that_symbol_until_it_ends():
    cooldown = StopCooldown(3, 60)
    for i in range(3):
        cooldown.record_exit("AAPL", "stop_loss", minutes(i))
    during = check_order(buy(), ctx(now=minutes(2), cooldown_until=cooldown.until), RiskLimits())
    assert check(during, "stop_cooldown").value == "60 min left"
    assert "no entries until 11:32" in refused_by(during, "stop_cooldown")
    after = check_order(buy(), ctx(now=minutes(62), cooldown_until=cooldown.until), RiskLimits())
    assert after.approved


# --- sizing an entry -----------------------------------------------------------------------------


def test_entry_size_is_one_percent_of_equity_over_the_stop_distance():
    assert size_entry(D("100000"), 1.0, D("100.00"), D("98.00"), D("100000")) == 500
    assert size_entry(D("100000"), 1.0, D("100.00"), D("97.00"), D("100000")) == 333


def test_entry_size_is_capped_by_the_cash_available():
    assert size_entry(D("100000"), 1.0, D("100.00"), D("99.90"), D("25000")) == 250


def test_entry_size_is_zero_without_a_stop_distance_or_cash():
    assert size_entry(D("100000"), 1.0, D("100.00"), D("100.00"), D("100000")) == 0
    assert size_entry(D("100000"), 1.0, D("100.00"), D("98.00"), D("0")) == 0
    assert size_entry(D("100000"), 1.0, D("100.00"), D("98.00"), D("50")) == 0


@settings(max_examples=300, deadline=None)
@given(
    price=st.floats(0.5, 3000.0).map(to_price),
    atr_fraction=st.floats(0.0005, 0.2),
    stop_mult=st.sampled_from([1.0, 1.5, 2.0, 3.0]),
    equity_cents=st.integers(100_000, 10**9),
    cash_share=st.floats(0.05, 1.0),
    risk_pct=st.sampled_from([0.25, 0.5, 1.0, 2.0]),
    side=st.sampled_from(list(Side)),
)
def test_sized_entry_is_the_largest_order_that_passes_risk_and_buying_power(
        price, atr_fraction, stop_mult, equity_cents, cash_share, risk_pct, side):
    atr = float(price) * atr_fraction
    stop = to_price(float(price) - side.sign * stop_mult * atr)
    equity = D(equity_cents) / 100
    cash = (equity * D(str(cash_share))).quantize(D("0.01"))
    if stop <= 0 or stop == price:
        return
    qty = size_entry(equity, risk_pct, price, stop, cash)

    by_risk = math.floor(Fraction(equity) * Fraction(str(risk_pct)) / 100 / abs(Fraction(price - stop)))
    by_cash = math.floor(Fraction(cash) / Fraction(price))
    assert qty == max(0, min(by_risk, by_cash))

    if qty == 0:
        return
    account = ctx(equity=equity, start_of_day_equity=equity, buying_power=cash)
    limits = RiskLimits(risk_per_trade_pct=risk_pct)
    decision = check_order(OrderIntent("AAPL", side, qty, ref_price=price, stop_loss=stop), account, limits)
    assert check(decision, "risk_per_trade").passed, check(decision, "risk_per_trade")
    assert check(decision, "buying_power").passed
    bigger = check_order(OrderIntent("AAPL", side, qty + 1, ref_price=price, stop_loss=stop), account, limits)
    assert not bigger.approved
