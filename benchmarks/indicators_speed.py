"""Speed of daytrader.indicators: updates per second, incremental and batch, against a bare loop.

Run from the project root:  python -m benchmarks.indicators_speed [n]

The reference is the same arithmetic written inline in a plain Python loop (no object, no method
call), measured in the same run on the same data, so the ratio shows what the class costs.
Each figure is the best of a few repetitions.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable

import polars as pl

from daytrader.indicators import ATR, EMA, atr_series, ema_series

PERIOD = 14
REPEATS = 3


def best_seconds(run: Callable[[], object], repeats: int = REPEATS) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def random_bars(n: int, seed: int = 0) -> tuple[list[float], list[float], list[float]]:
    rng = random.Random(seed)
    highs, lows, closes = [], [], []
    close = 100.0
    for _ in range(n):
        open_ = close * (1 + rng.gauss(0, 0.001))
        close = open_ * (1 + rng.gauss(0, 0.002))
        highs.append(max(open_, close) * (1 + abs(rng.gauss(0, 0.001))))
        lows.append(min(open_, close) * (1 - abs(rng.gauss(0, 0.001))))
        closes.append(close)
    return highs, lows, closes


# --------------------------------------------------------------------------- incremental


def ema_class(closes: list[float]) -> float | None:
    update = EMA(PERIOD).update
    value = None
    for x in closes:
        value = update(x)
    return value


def ema_inline(closes: list[float]) -> float:
    """The reference: EMA arithmetic inline, seeded with the SMA like the class."""
    alpha = 2.0 / (PERIOD + 1)
    value = sum(closes[:PERIOD]) / PERIOD
    for x in closes[PERIOD:]:
        value += alpha * (x - value)
    return value


def atr_class(highs: list[float], lows: list[float], closes: list[float]) -> float | None:
    update = ATR(PERIOD).update
    value = None
    for h, lo, c in zip(highs, lows, closes, strict=True):
        value = update(h, lo, c)
    return value


def atr_inline(highs: list[float], lows: list[float], closes: list[float]) -> float:
    """The reference: Wilder ATR arithmetic inline (the seed is computed the same way)."""
    weight, divisor = float(PERIOD - 1), float(PERIOD)
    prev_close = closes[0]
    total = highs[0] - lows[0]
    for i in range(1, PERIOD):
        h, lo = highs[i], lows[i]
        total += (h if h > prev_close else prev_close) - (lo if lo < prev_close else prev_close)
        prev_close = closes[i]
    value = total / PERIOD
    for h, lo, c in zip(highs[PERIOD:], lows[PERIOD:], closes[PERIOD:], strict=True):
        tr = (h if h > prev_close else prev_close) - (lo if lo < prev_close else prev_close)
        value = (value * weight + tr) / divisor
        prev_close = c
    return value


def main(n: int = 1_000_000) -> None:
    highs, lows, closes = random_bars(n)
    high_s, low_s, close_s = pl.Series(highs), pl.Series(lows), pl.Series(closes)

    # Same answers, so the loops being timed do the same work.
    assert abs(ema_class(closes) - ema_inline(closes)) < 1e-9
    assert abs(atr_class(highs, lows, closes) - atr_inline(highs, lows, closes)) < 1e-9

    timings = {
        "EMA.update": best_seconds(lambda: ema_class(closes)),
        "EMA inline loop": best_seconds(lambda: ema_inline(closes)),
        "ema_series": best_seconds(lambda: ema_series(close_s, PERIOD)),
        "ATR.update": best_seconds(lambda: atr_class(highs, lows, closes)),
        "ATR inline loop": best_seconds(lambda: atr_inline(highs, lows, closes)),
        "atr_series": best_seconds(lambda: atr_series(high_s, low_s, close_s, PERIOD)),
    }

    print(f"{n:,} values, period {PERIOD}, best of {REPEATS}; Python {sys.version.split()[0]}")
    for name, seconds in timings.items():
        print(f"  {name:<16} {n / seconds / 1e6:8.2f} M updates/s  ({seconds * 1e3:7.1f} ms)")
    for kind in ("EMA", "ATR"):
        series = f"{kind.lower()}_series"
        ratio = timings[f"{kind}.update"] / timings[f"{kind} inline loop"]
        batch = timings[f"{kind}.update"] / timings[series]
        print(f"  {kind}.update: {ratio:.2f}x inline loop time; {series} {batch:.0f}x faster")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
