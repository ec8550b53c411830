"""Metrics against values worked out by hand on crafted trade lists and equity curves."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import pytest
from conftest import at

from daytrader.metrics import Execution, compute, daily_returns, max_drawdown, sharpe_sortino
from daytrader.models import Side, Trade


def trade(pnl: str, minutes: int = 10, start: str = "10:00", commission: str = "0",
          symbol: str = "AAA") -> Trade:
    entry = at(start)
    return Trade(symbol, Side.BUY, 10, entry, Decimal("100"), entry + timedelta(minutes=minutes),
                 Decimal("101"), Decimal(pnl), "take_profit", commission=Decimal(commission))


def test_win_rate_profit_factor_expectancy_by_hand():
    # +300, -100, +50, -150, 0 -> wins 350, losses 250 (the flat trade counts as a loss)
    m = compute([trade("300"), trade("-100"), trade("50"), trade("-150"), trade("0")])
    assert (m.trades, m.wins, m.losses) == (5, 2, 3)
    assert m.win_rate == 40.0
    assert m.profit_factor == pytest.approx(350 / 250)
    assert m.expectancy == Decimal("20.00")  # 100 / 5
    assert m.avg_win == Decimal("175.00") and m.avg_loss == Decimal("-83.33")
    assert m.realized == Decimal("100")


def test_commission_turns_a_small_win_into_a_loss():
    m = compute([trade("5", commission="6")])
    assert m.wins == 0 and m.realized == Decimal("-1")


def test_no_losing_trade_means_no_profit_factor():
    assert compute([trade("10")]).profit_factor is None
    empty = compute([])
    assert empty.trades == 0 and empty.win_rate == 0.0 and empty.expectancy == 0


def test_max_drawdown_in_money_and_percent():
    # peak 110, trough 99: 11 down, 10% of the peak; a later, smaller fall does not count
    assert max_drawdown([100, 110, 105, 99, 120, 115]) == (11, pytest.approx(10.0))
    assert max_drawdown([100, 101, 102]) == (0.0, 0.0)


def test_daily_returns_sharpe_and_sortino_by_hand():
    curve = [(at("10:00", d), v) for d, v in
             ((at("00:00").date().replace(day=2), 100.0), (at("00:00").date().replace(day=2), 101.0),
              (at("00:00").date().replace(day=3), 99.99), (at("00:00").date().replace(day=4), 102.0))]
    returns = daily_returns(curve, starting_equity=100.0)
    assert returns == pytest.approx([0.01, 99.99 / 101 - 1, 102 / 99.99 - 1])
    sharpe, sortino = sharpe_sortino(returns)
    mean = sum(returns) / 3
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / 2)
    downside = math.sqrt((99.99 / 101 - 1) ** 2 / 3)
    assert sharpe == pytest.approx(mean / std * math.sqrt(252))
    assert sortino == pytest.approx(mean / downside * math.sqrt(252))
    assert sharpe_sortino([0.01]) == (None, None)


def test_exposure_counts_minutes_with_a_position_open():
    # ten minutes of curve, 10:00-10:10; trades hold 10:02-10:05 and 10:04-10:06 (overlapping)
    curve = [(at("10:00") + timedelta(minutes=i + 1), 100.0) for i in range(10)]
    trades = [trade("1", minutes=3, start="10:02"), trade("1", minutes=2, start="10:04")]
    assert compute(trades, curve).exposure_pct == pytest.approx(40.0)  # 10:02,03,04,05
    # A curve read back out of order (a journal's) counts the same minutes.
    assert compute(trades, curve[::-1]).exposure_pct == pytest.approx(40.0)


def test_slippage_is_positive_when_it_costs_us():
    executions = [Execution(+1, Decimal("100"), Decimal("100.10")),  # bought 10 bps higher
                  Execution(-1, Decimal("50"), Decimal("49.95"))]  # sold 10 bps lower
    assert compute([], executions=executions).slippage_bps == pytest.approx(10.0)
    improved = [Execution(+1, Decimal("100"), Decimal("99.90"))]
    assert compute([], executions=improved).slippage_bps == pytest.approx(-10.0)


def test_fill_rate_rejections_and_breaker_trips_are_reported():
    m = compute([], orders_sent=8, orders_filled=6, rejections_by_check={"buying_power": 2},
                breaker_trips=1)
    assert m.fill_rate == 75.0
    assert m.as_dict()["rejections_by_check"] == {"buying_power": 2}
    assert m.as_dict()["breaker_trips"] == 1


def test_average_holding_time():
    m = compute([trade("1", minutes=10), trade("1", minutes=20)])
    assert m.avg_hold == timedelta(minutes=15)
