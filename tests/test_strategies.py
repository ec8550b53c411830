"""The built-in strategies through the full engine, trade for trade against independent plain
implementations of their rules (tests/reference_strategies.py), on crafted series with known
breakouts and stretches and on seeded synthetic sessions; and their parameters."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from reference_strategies import (
    key,
    opening_range_decision,
    simulate,
    vwap_reversion_decision,
)

from daytrader.backtest import minutes_of
from daytrader.broker.sim import SimExchange
from daytrader.clock import EXCHANGE_TZ, SimClock
from daytrader.config import Settings
from daytrader.data.synthetic import synthetic_bars
from daytrader.engine import Engine
from daytrader.models import Bar
from daytrader.strategy.opening_range import OpeningRange, RangeParams
from daytrader.strategy.params import StrategyError, build_params, describe
from daytrader.strategy.vwap_reversion import VwapParams, VwapReversion

DAY = datetime(2026, 3, 3, 9, 30, tzinfo=EXCHANGE_TZ)


def unconstrained(symbols) -> Settings:
    """Nothing couples the symbols or sizes an entry away: the plain rules apply as written."""
    return Settings(symbols=tuple(symbols), starting_cash=Decimal("100000000"),
                    sim_slippage_bps=0.0, cooldown_after_stops=1000, max_daily_loss_pct=99.0,
                    max_positions=100, allow_shorts=True)


def engine_trades(bars: list[Bar], strategy, calendar) -> list:
    symbols = sorted({b.symbol for b in bars})
    settings = unconstrained(symbols)
    clock = SimClock(bars[0].ts)
    broker = SimExchange(symbols, calendar, clock, cash=settings.starting_cash)
    engine = Engine(settings, broker, calendar, clock, strategy=strategy)

    async def drive() -> None:
        for minute in minutes_of(bars):
            await engine.on_minute(minute)

    asyncio.run(drive())
    return list(engine.book.trades)


def synthetic(calendar, symbols=("AAPL", "MSFT", "NVDA"), days=6, seed=11) -> list[Bar]:
    sessions = [(s.open, s.close) for s in list(calendar.sessions_from(date(2026, 3, 2)))[:days]]
    return [b for minute in synthetic_bars(symbols, sessions, seed) for b in minute]


def day_of(prices: list[tuple[float, float, float, float]], symbol: str = "AAPL",
           volume: float = 1000, start: datetime = DAY) -> list[Bar]:
    return [Bar(symbol, start + timedelta(minutes=i), o, h, low, c, volume)
            for i, (o, h, low, c) in enumerate(prices)]


def flat(price: float, n: int, spread: float = 0.2) -> list[tuple[float, float, float, float]]:
    return [(price, price + spread / 2, price - spread / 2, price)] * n


# -- opening range ----------------------------------------------------------------------------------
def test_a_known_breakout_enters_once_and_reaches_its_target(calendar):
    # Range 99.9 - 100.1 for 15 minutes, then a close at 100.5 breaks out; the next bar opens
    # there and the price climbs through the target (2R above the entry).
    prices = flat(100.0, 15) + [(100.2, 100.6, 100.1, 100.5)] + [
        (100.5 + 0.1 * i, 100.6 + 0.1 * i, 100.4 + 0.1 * i, 100.55 + 0.1 * i) for i in range(16)]
    prices += [(101.5, 101.6, 100.0, 100.2)] * 3  # a later breakout the same day is not taken
    bars = day_of(prices)
    trades = engine_trades(bars, OpeningRange(RangeParams(minutes=15)), calendar)
    assert len(trades) == 1
    [t] = trades
    assert (t.entry_time, t.entry_price) == (DAY + timedelta(minutes=16), Decimal("100.5"))
    risk = Decimal("100.5") - Decimal("99.90")  # to the other side of the range
    assert t.exit_reason == "take_profit" and t.exit_price == Decimal("100.5") + 2 * risk
    reference = simulate(minutes_of(bars), opening_range_decision, RangeParams(minutes=15),
                         calendar)
    assert key(trades) == key(reference)


def test_a_range_too_narrow_is_not_traded(calendar):
    prices = flat(100.0, 15, spread=0.02) + [(100.0, 100.2, 99.99, 100.15)] * 5
    bars = day_of(prices)
    assert engine_trades(bars, OpeningRange(RangeParams(min_range_pct=0.05)), calendar) == []


@pytest.mark.parametrize("params", [RangeParams(), RangeParams(minutes=30, target_r=1.5),
                                    RangeParams(stop_atr_mult=1.5, allow_shorts=True)],
                         ids=["defaults", "30min-1.5R", "atr-stop-shorts"])
def test_opening_range_matches_the_plain_rules_on_synthetic_sessions(calendar, params):
    bars = synthetic(calendar)
    trades = engine_trades(bars, OpeningRange(params), calendar)
    reference = simulate(minutes_of(bars), opening_range_decision, params, calendar)
    assert len(trades) >= 6, "the sessions should give several breakouts"
    assert key(trades) == key(reference)


# -- vwap reversion ----------------------------------------------------------------------------------
def test_a_known_stretch_below_vwap_enters_on_the_turn_and_exits_at_vwap(calendar):
    # 20 calm bars around 100, a drop to 98 (far below the band), a turn up, then back to VWAP.
    prices = flat(100.0, 20, spread=0.4)
    prices += [(99.0, 99.1, 97.9, 98.0), (98.0, 98.6, 97.9, 98.5), (98.6, 99.2, 98.5, 99.1),
               (99.2, 100.1, 99.1, 100.05), (100.0, 100.2, 99.9, 100.1)]
    bars = day_of(prices)
    params = VwapParams(k=2.0, min_bars=10, stop_atr_mult=3.0)
    trades = engine_trades(bars, VwapReversion(params), calendar)
    assert len(trades) == 1
    [t] = trades
    assert t.entry_time == DAY + timedelta(minutes=22)  # signal on the turn (bar 21), next open
    assert t.exit_reason == "vwap_reached"
    assert key(trades) == key(simulate(minutes_of(bars), vwap_reversion_decision, params,
                                       calendar))


@pytest.mark.parametrize("params", [VwapParams(), VwapParams(k=1.5, min_bars=30),
                                    VwapParams(k=2.5, stop_atr_mult=1.0, allow_shorts=True)],
                         ids=["defaults", "k1.5", "k2.5-shorts"])
def test_vwap_reversion_matches_the_plain_rules_on_synthetic_sessions(calendar, params):
    bars = synthetic(calendar)
    trades = engine_trades(bars, VwapReversion(params), calendar)
    reference = simulate(minutes_of(bars), vwap_reversion_decision, params, calendar)
    assert len(trades) >= 6, "the sessions should give several stretches"
    assert key(trades) == key(reference)


# -- parameters --------------------------------------------------------------------------------------
def test_parameters_carry_their_sweep_bounds_and_refuse_bad_values():
    infos = {i.name: i for i in describe(RangeParams)}
    assert (infos["minutes"].kind, infos["minutes"].low, infos["minutes"].high) == ("int", 5, 120)
    assert infos["allow_shorts"].kind == "bool"
    assert build_params(RangeParams, {"minutes": "30", "target_r": "3"}, "opening_range") == \
        RangeParams(minutes=30, target_r=3.0)
    for values, message in [
        ({"minutes": "2"}, "parameter minutes: expected a whole number from 5 to 120, got '2'"),
        ({"minutes": "15.5"}, "expected a whole number"),
        ({"target_r": "nan"}, "parameter target_r: expected a number from 0.5 to 6"),
        ({"allow_shorts": "maybe"}, "expected true or false"),
        ({"minutess": "30"}, "unknown parameter minutess; known: minutes, target_r"),
    ]:
        with pytest.raises(StrategyError, match=message.replace("(", r"\(").replace(")", r"\)")):
            build_params(RangeParams, values, "opening_range")
