"""The seed strategy on crafted series: EMA crossover entries, brackets from ATR, exits."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from conftest import at

from daytrader.indicators import ATR, EMA
from daytrader.models import Bar
from daytrader.strategy.ema_crossover import CrossoverParams, EmaCrossover

PARAMS = CrossoverParams(fast=2, slow=4, atr_period=3)
DOWN_THEN_UP = [100, 99, 98, 97, 96, 97, 99]  # the fast EMA crosses above on the last bar
UP_THEN_DOWN = [96, 97, 98, 99, 100, 99, 97]


def bars(closes: list[float], symbol: str = "AAA", spread: float = 0.5) -> list[Bar]:
    start = at("10:00")
    return [Bar(symbol, start + timedelta(minutes=i), c, c + spread, c - spread, c, 1000)
            for i, c in enumerate(closes)]


def run(strategy: EmaCrossover, series: list[Bar], qty: int = 0) -> list:
    return [strategy.on_bar(b, qty) for b in series]


def reference(closes: list[float], spread: float = 0.5) -> tuple[list, list, list]:
    fast, slow, atr = EMA(PARAMS.fast), EMA(PARAMS.slow), ATR(PARAMS.atr_period)
    return ([fast.update(c) for c in closes], [slow.update(c) for c in closes],
            [atr.update(c + spread, c - spread, c) for c in closes])


def test_long_entry_on_the_bar_where_the_fast_ema_crosses_above():
    signals = run(EmaCrossover(PARAMS), bars(DOWN_THEN_UP))
    assert signals[:-1] == [None] * 6
    entry = signals[-1]
    fast, slow, atr = reference(DOWN_THEN_UP)
    assert fast[-2] <= slow[-2] and fast[-1] > slow[-1]  # the crafted series really crosses here
    assert entry.action == "enter_long" and entry.reason == "ema_cross_up"
    assert entry.price == Decimal("99.00")
    assert entry.stop_loss == Decimal(str(round(99 - 2 * atr[-1], 2)))
    assert entry.take_profit == Decimal(str(round(99 + 4 * atr[-1], 2)))


def test_no_signal_before_the_slow_ema_is_ready():
    strategy = EmaCrossover(PARAMS)
    assert run(strategy, bars([100, 101, 102]))[:3] == [None, None, None]


def test_no_second_entry_while_a_position_is_held():
    signals = run(EmaCrossover(PARAMS), bars(DOWN_THEN_UP), qty=10)
    assert all(s is None for s in signals)


def test_exit_when_the_fast_ema_crosses_back_down():
    signals = run(EmaCrossover(PARAMS), bars(UP_THEN_DOWN), qty=10)
    exits = [s for s in signals if s is not None]
    assert len(exits) == 1
    assert exits[0].action == "exit" and exits[0].reason == "ema_cross_down"
    assert signals.index(exits[0]) == 6


def test_shorts_are_off_by_default():
    assert all(s is None for s in run(EmaCrossover(PARAMS), bars(UP_THEN_DOWN)))


def test_short_entry_when_enabled_has_its_stop_above_and_target_below():
    params = CrossoverParams(fast=2, slow=4, atr_period=3, allow_shorts=True)
    entry = run(EmaCrossover(params), bars(UP_THEN_DOWN))[-1]
    assert entry.action == "enter_short"
    assert entry.stop_loss > entry.price > entry.take_profit


def test_a_short_is_exited_on_the_cross_up():
    params = CrossoverParams(fast=2, slow=4, atr_period=3, allow_shorts=True)
    signals = run(EmaCrossover(params), bars(DOWN_THEN_UP), qty=-10)
    assert signals[-1].action == "exit" and signals[-1].reason == "ema_cross_up"


def test_multipliers_are_settings():
    params = CrossoverParams(fast=2, slow=4, atr_period=3, stop_atr_mult=1, take_profit_atr_mult=3)
    entry = run(EmaCrossover(params), bars(DOWN_THEN_UP))[-1]
    atr = reference(DOWN_THEN_UP)[2][-1]
    assert entry.stop_loss == Decimal(str(round(99 - atr, 2)))
    assert entry.take_profit == Decimal(str(round(99 + 3 * atr, 2)))


def test_symbols_are_tracked_separately():
    strategy = EmaCrossover(PARAMS)
    interleaved = [b for pair in zip(bars(DOWN_THEN_UP, "AAA"), bars(UP_THEN_DOWN, "BBB"),
                                     strict=True) for b in pair]
    signals = [s for s in (strategy.on_bar(b, 0) for b in interleaved) if s is not None]
    assert [(s.symbol, s.action) for s in signals] == [("AAA", "enter_long")]


def test_warm_up_feeds_indicators_without_signals():
    strategy = EmaCrossover(PARAMS)
    series = bars(DOWN_THEN_UP)
    for b in series[:-1]:
        strategy.warm_up(b)
    assert strategy.on_bar(series[-1], 0).action == "enter_long"


def _fed(closes: list[float]) -> EmaCrossover:
    strategy = EmaCrossover(PARAMS)
    for b in bars(closes):
        strategy.on_bar(b, 0)
    return strategy


def test_indicator_values_name_each_indicator_and_chart_lines_are_the_emas():
    strategy = _fed(DOWN_THEN_UP)
    fast, slow, atr = reference(DOWN_THEN_UP)
    assert strategy.indicator_values("AAA") == {"EMA2": fast[-1], "EMA4": slow[-1], "ATR3": atr[-1]}
    assert strategy.chart_lines() == ("EMA2", "EMA4")
    assert strategy.indicator_values("ZZZ") == {"EMA2": None, "EMA4": None, "ATR3": None}
    assert strategy.next_signal("ZZZ", 0) is None


def test_next_signal_is_the_close_that_makes_the_emas_cross_on_the_next_bar():
    history = DOWN_THEN_UP[:-1]  # fast below slow: the next signal is a cross up, a long entry
    nxt = _fed(history).next_signal("AAA", 0)
    assert (nxt.action, nxt.above, nxt.event) == ("enter_long", True, "EMA2 crosses above EMA4")
    assert history[-1] < nxt.trigger < DOWN_THEN_UP[-1]
    # A cent above the trigger crosses; a cent below does not: the figure is exact.
    above = _fed(history).on_bar(bars(history + [nxt.trigger + 0.01])[-1], 0)
    below = _fed(history).on_bar(bars(history + [nxt.trigger - 0.01])[-1], 0)
    assert above is not None and above.action == "enter_long"
    assert below is None


def test_next_signal_of_a_long_position_above_is_its_exit_on_a_cross_down():
    nxt = _fed(UP_THEN_DOWN[:-1]).next_signal("AAA", 10)
    assert (nxt.action, nxt.above) == ("exit", False)
    flat = _fed(UP_THEN_DOWN[:-1]).next_signal("AAA", 0)
    assert flat.action == ""  # shorts are off: a cross down does nothing when flat
    crossed = _fed(UP_THEN_DOWN[:-1]).on_bar(bars(UP_THEN_DOWN[:-1] + [nxt.trigger - 0.01])[-1], 10)
    assert crossed is not None and crossed.action == "exit"


def test_bracket_is_the_strategy_own_atr_distances():
    from daytrader.models import Side, to_price

    strategy = _fed(DOWN_THEN_UP)
    atr = reference(DOWN_THEN_UP)[2][-1]
    stop, take = strategy.bracket("AAA", Side.BUY, Decimal("100"))
    assert (stop, take) == (to_price(100 - 2 * atr), to_price(100 + 4 * atr))
    short_stop, short_take = strategy.bracket("AAA", Side.SELL, Decimal("100"))
    assert short_stop > 100 > short_take
    assert strategy.bracket("ZZZ", Side.BUY, Decimal("100")) == (None, None)
