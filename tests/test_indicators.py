"""Tests for daytrader.indicators: worked examples, incremental == batch, warm-up, per symbol."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daytrader.indicators import (
    ATR,
    EMA,
    add_indicators,
    atr_series,
    ema_series,
)

TOL = 1e-9


def close_enough(a: float | None, b: float | None) -> bool:
    """Both None, or equal to 1e-9 absolute (small values) or relative (large values)."""
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=TOL, abs_tol=TOL)


def assert_all_close(got: list[float | None], want: list[float | None]) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert close_enough(g, w), f"row {i}: {g!r} != {w!r}"


def stream_ema(period: int, values: list[float]) -> list[float | None]:
    ema = EMA(period)
    return [ema.update(x) for x in values]


def stream_atr(period: int, bars: list[tuple[float, float, float]]) -> list[float | None]:
    atr = ATR(period)
    return [atr.update(h, lo, c) for h, lo, c in bars]


def random_walk(n: int, seed: int, start: float = 100.0) -> list[tuple[float, float, float]]:
    """n (high, low, close) bars of a random walk with gaps between bars."""
    rng = random.Random(seed)
    bars = []
    close = start
    for _ in range(n):
        open_ = close * (1 + rng.gauss(0, 0.01))  # gap from the previous close
        close = open_ * (1 + rng.gauss(0, 0.01))
        high = max(open_, close) * (1 + abs(rng.gauss(0, 0.005)))
        low = min(open_, close) * (1 - abs(rng.gauss(0, 0.005)))
        bars.append((high, low, close))
    return bars


def columns(bars: list[tuple[float, float, float]]) -> tuple[pl.Series, pl.Series, pl.Series]:
    highs, lows, closes = zip(*bars, strict=True) if bars else ((), (), ())
    return (
        pl.Series("high", highs, dtype=pl.Float64),
        pl.Series("low", lows, dtype=pl.Float64),
        pl.Series("close", closes, dtype=pl.Float64),
    )


# Hypothesis: prices in a realistic range; a bar is three prices, high = max, low = min.
prices = st.floats(min_value=0.5, max_value=5000.0, allow_nan=False, allow_infinity=False)
one_bar = st.tuples(prices, prices, prices).map(lambda p: (max(p), min(p), p[2]))


@st.composite
def period_and_bars(draw: st.DrawFn) -> tuple[int, list[tuple[float, float, float]]]:
    """A period and a series whose length is around it (short, equal, one more) or far beyond."""
    period = draw(st.integers(min_value=1, max_value=30))
    around = st.integers(min_value=max(0, period - 2), max_value=period + 2)
    far = st.integers(min_value=period + 3, max_value=period * 10 + 50)
    n = draw(st.one_of(around, far))
    return period, draw(st.lists(one_bar, min_size=n, max_size=n))


# --------------------------------------------------------------------------- by hand


def test_ema3_matches_values_worked_by_hand() -> None:
    # EMA(3): alpha = 2 / (3 + 1) = 0.5
    closes = [2.0, 4.0, 6.0, 5.0, 9.0, 3.0]
    want = [
        None,  # 1 input: not ready
        None,  # 2 inputs: not ready
        4.0,  # seed = SMA(2, 4, 6) = 12 / 3 = 4.0
        4.5,  # 4.0 + 0.5 * (5 - 4.0) = 4.5
        6.75,  # 4.5 + 0.5 * (9 - 4.5) = 6.75
        4.875,  # 6.75 + 0.5 * (3 - 6.75) = 4.875
    ]
    assert stream_ema(3, closes) == want
    assert ema_series(pl.Series(closes), 3).to_list() == want


def test_atr3_matches_values_worked_by_hand() -> None:
    # (high, low, close); TR = max(high - low, |high - prev_close|, |low - prev_close|)
    bars = [
        (10.0, 8.0, 9.0),  # first bar: TR = high - low = 2
        (12.0, 9.0, 11.0),  # pc 9:    max(3, |12-9|=3, |9-9|=0)          = 3
        (11.5, 10.5, 11.0),  # pc 11:  max(1, 0.5, 0.5)                   = 1
        (16.0, 15.0, 15.5),  # pc 11, gap up:   max(1, |16-11|=5, 4)      = 5
        (10.5, 9.5, 10.0),  # pc 15.5, gap down: max(1, 5, |9.5-15.5|=6)  = 6
        (16.0, 9.0, 15.0),  # pc 10, wide bar:  max(16-9=7, 6, 1)         = 7
    ]
    # ATR(3), Wilder: atr = (prev * 2 + TR) / 3
    want = [
        None,
        None,
        2.0,  # seed = mean(2, 3, 1) = 6 / 3 = 2.0
        3.0,  # (2.0 * 2 + 5) / 3 = 9 / 3 = 3.0
        4.0,  # (3.0 * 2 + 6) / 3 = 12 / 3 = 4.0
        5.0,  # (4.0 * 2 + 7) / 3 = 15 / 3 = 5.0
    ]
    assert stream_atr(3, bars) == want
    assert atr_series(*columns(bars), 3).to_list() == want


def test_period_one_ema_is_the_input_and_atr_is_the_true_range() -> None:
    closes = [3.0, 7.0, 5.0]
    assert stream_ema(1, closes) == closes
    bars = [(10.0, 8.0, 9.0), (12.0, 9.0, 11.0)]  # TR 2, then max(3, 3, 0) = 3
    assert stream_atr(1, bars) == [2.0, 3.0]


# --------------------------------------------------------------------------- not ready yet


@pytest.mark.parametrize("period", [1, 5, 20])
def test_value_is_none_until_period_inputs_then_ready(period: int) -> None:
    ema, atr = EMA(period), ATR(period)
    for i, (h, lo, c) in enumerate(random_walk(period + 2, seed=period)):
        e, a = ema.update(c), atr.update(h, lo, c)
        ready = i >= period - 1
        assert (e is not None, a is not None) == (ready, ready)
        assert ema.ready is ready and atr.ready is ready
        assert ema.value == e and atr.value == a


def test_batch_nulls_before_the_period_and_float64() -> None:
    highs, lows, closes = columns(random_walk(30, seed=1))
    ema = ema_series(closes, 10)
    atr = atr_series(highs, lows, closes, 10)
    for s in (ema, atr):
        assert s.dtype == pl.Float64
        assert s.head(9).null_count() == 9
        assert s.slice(9).null_count() == 0


@pytest.mark.parametrize("n", [0, 1, 9])
def test_series_shorter_than_the_period_give_all_nulls(n: int) -> None:
    highs, lows, closes = columns(random_walk(n, seed=n))
    ema = ema_series(closes, 10)
    atr = atr_series(highs, lows, closes, 10)
    assert len(ema) == len(atr) == n
    assert ema.null_count() == atr.null_count() == n


def test_ema_series_accepts_integer_input() -> None:
    assert ema_series(pl.Series([2, 4, 6, 5]), 3).to_list() == [None, None, 4.0, 4.5]


# --------------------------------------------------------------------------- incremental == batch


@pytest.mark.parametrize("period", [1, 2, 9, 21, 50])
def test_incremental_equals_batch_on_a_long_random_walk(period: int) -> None:
    bars = random_walk(5000, seed=period)
    highs, lows, closes = columns(bars)
    assert_all_close(stream_ema(period, closes.to_list()), ema_series(closes, period).to_list())
    assert_all_close(stream_atr(period, bars), atr_series(highs, lows, closes, period).to_list())


def test_incremental_equals_batch_on_large_prices() -> None:
    bars = random_walk(2000, seed=7, start=250_000.0)  # BRK.A-sized prices: relative tolerance
    highs, lows, closes = columns(bars)
    assert_all_close(stream_ema(14, closes.to_list()), ema_series(closes, 14).to_list())
    assert_all_close(stream_atr(14, bars), atr_series(highs, lows, closes, 14).to_list())


@settings(max_examples=60, deadline=None)
@given(case=period_and_bars())
def test_incremental_equals_batch_for_any_bars(
    case: tuple[int, list[tuple[float, float, float]]],
) -> None:
    period, bars = case
    highs, lows, closes = columns(bars)
    assert_all_close(stream_ema(period, closes.to_list()), ema_series(closes, period).to_list())
    assert_all_close(stream_atr(period, bars), atr_series(highs, lows, closes, period).to_list())


# --------------------------------------------------------------------------- warm-up


@settings(max_examples=60, deadline=None)
@given(case=period_and_bars(), next_bar=one_bar)
def test_from_history_gives_the_same_next_update_as_streaming(
    case: tuple[int, list[tuple[float, float, float]]],
    next_bar: tuple[float, float, float],
) -> None:
    period, bars = case
    h, lo, c = next_bar
    highs, lows, closes = columns(bars)

    streamed_ema = EMA(period)
    for x in closes:
        streamed_ema.update(x)
    warmed_ema = EMA.from_history(period, closes)
    assert warmed_ema.ready is streamed_ema.ready
    assert close_enough(warmed_ema.value, streamed_ema.value)
    assert close_enough(warmed_ema.update(c), streamed_ema.update(c))

    streamed_atr = ATR(period)
    for bar in bars:
        streamed_atr.update(*bar)
    warmed_atr = ATR.from_history(period, highs, lows, closes)
    assert warmed_atr.ready is streamed_atr.ready
    assert close_enough(warmed_atr.value, streamed_atr.value)
    assert close_enough(warmed_atr.update(h, lo, c), streamed_atr.update(h, lo, c))


def test_from_history_accepts_plain_lists() -> None:
    ema = EMA.from_history(3, [2, 4, 6, 5])  # 4.0, then 4.5 (see the EMA(3) worked example)
    assert ema.value == 4.5
    assert ema.update(9.0) == 6.75
    atr = ATR.from_history(3, [10.0, 12.0, 11.5], [8.0, 9.0, 10.5], [9.0, 11.0, 11.0])
    assert atr.value == 2.0
    assert atr.update(16.0, 15.0, 15.5) == 3.0


def test_from_history_shorter_than_the_period_keeps_warming_up() -> None:
    ema = EMA.from_history(3, [2.0, 4.0])
    assert not ema.ready
    assert ema.update(6.0) == 4.0
    atr = ATR.from_history(3, [10.0], [8.0], [9.0])
    assert not atr.ready
    assert atr.update(12.0, 9.0, 11.0) is None
    assert atr.update(11.5, 10.5, 11.0) == 2.0


# --------------------------------------------------------------------------- per symbol


def test_add_indicators_computes_each_symbol_separately_when_interleaved() -> None:
    symbols = ["AAPL", "MSFT", "TSLA"]
    walks = {s: random_walk(200, seed=i, start=50.0 * (i + 1)) for i, s in enumerate(symbols)}
    rng = random.Random(0)
    start = datetime(2024, 3, 4, 9, 30)
    rows = []
    cursor = dict.fromkeys(symbols, 0)
    minute = 0
    while any(cursor[s] < len(walks[s]) for s in symbols):
        # symbols come in an irregular order, and not every symbol trades every minute
        for s in rng.sample(symbols, k=rng.randint(1, 3)):
            if cursor[s] < len(walks[s]):
                h, lo, c = walks[s][cursor[s]]
                cursor[s] += 1
                rows.append((start + timedelta(minutes=minute), s, c, h, lo, c, 100))
        minute += 1
    bars = pl.DataFrame(
        rows,
        schema=["timestamp", "symbol", "open", "high", "low", "close", "volume"],
        orient="row",
    )

    out = add_indicators(bars, fast=9, slow=21, atr_period=14)

    assert out.columns == [*bars.columns, "ema_fast", "ema_slow", "atr"]
    assert out.select(bars.columns).equals(bars)  # same rows, same order
    for s in symbols:
        one = bars.filter(pl.col("symbol") == s)
        got = out.filter(pl.col("symbol") == s)
        assert_all_close(got["ema_fast"].to_list(), ema_series(one["close"], 9).to_list())
        assert_all_close(got["ema_slow"].to_list(), ema_series(one["close"], 21).to_list())
        want_atr = atr_series(one["high"], one["low"], one["close"], 14)
        assert_all_close(got["atr"].to_list(), want_atr.to_list())
        # and the live indicators agree with the backtest columns
        assert_all_close(got["ema_fast"].to_list(), stream_ema(9, one["close"].to_list()))


def test_add_indicators_symbol_with_too_few_bars_gets_nulls() -> None:
    bars = pl.DataFrame(
        {
            "timestamp": [datetime(2024, 3, 4, 9, 30 + i) for i in range(4)],
            "symbol": ["AAPL", "XYZ", "AAPL", "AAPL"],
            "open": [2.0, 50.0, 4.0, 6.0],
            "high": [2.0, 50.0, 4.0, 6.0],
            "low": [2.0, 50.0, 4.0, 6.0],
            "close": [2.0, 50.0, 4.0, 6.0],
            "volume": [100, 100, 100, 100],
        }
    )
    out = add_indicators(bars, fast=3, slow=5, atr_period=3)
    assert out["ema_fast"].to_list() == [None, None, None, 4.0]
    assert out["ema_slow"].null_count() == 4


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("period", [0, -1])
def test_period_below_one_raises(period: int) -> None:
    with pytest.raises(ValueError, match="period"):
        EMA(period)
    with pytest.raises(ValueError, match="period"):
        ATR(period)
    with pytest.raises(ValueError, match="period"):
        ema_series(pl.Series([1.0, 2.0]), period)
    with pytest.raises(ValueError, match="period"):
        atr_series(pl.Series([1.0]), pl.Series([1.0]), pl.Series([1.0]), period)
    with pytest.raises(ValueError, match="period"):
        EMA.from_history(period, [1.0])


def test_add_indicators_rejects_a_bad_period() -> None:
    bars = pl.DataFrame(schema=["timestamp", "symbol", "open", "high", "low", "close", "volume"])
    with pytest.raises(ValueError, match="period"):
        add_indicators(bars, fast=0, slow=21, atr_period=14)
