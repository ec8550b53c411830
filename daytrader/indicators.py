"""EMA and Wilder ATR: incremental classes for live bars, polars versions for warm-up and backtests.

Both come in two forms that agree to floating-point rounding:

- `EMA` / `ATR` take one bar at a time; `update()` is a handful of float operations.
- `ema_series` / `atr_series` / `add_indicators` compute a whole column with polars.

`EMA.from_history` and `ATR.from_history` use the batch form to warm up an incremental
indicator, so a live session can start from a day of bars without replaying them in Python.

Definitions:

- EMA(N): alpha = 2/(N+1). No value until N inputs; the first value is the simple mean of the
  first N inputs; after that ema = prev + alpha * (x - prev).
- ATR(N), Wilder: TR = max(high - low, |high - prev_close|, |low - prev_close|), and TR = high - low
  on the first bar. No value until N true ranges; the first ATR is the mean of the first N TRs;
  after that atr = (prev * (N - 1) + TR) / N.

The batch versions use one identity: an EMA seeded with the SMA of the first N inputs is exactly
`ewm_mean(alpha, adjust=False)` run over a series whose first N inputs are replaced by a single
value, their mean, at position N-1 (and nulls before it). Wilder's smoothing is the same recursion
with alpha = 1/N.

Inputs are assumed to be finite and without nulls; a series shorter than N gives all nulls.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

__all__ = [
    "ATR",
    "EMA",
    "add_indicators",
    "atr_expr",
    "atr_series",
    "ema_expr",
    "ema_series",
    "true_range_expr",
]


def _check_period(period: int) -> None:
    if period < 1:
        raise ValueError(f"indicator period must be at least 1, got {period}")


def _as_float_series(values: Sequence[float] | pl.Series, name: str = "") -> pl.Series:
    if isinstance(values, pl.Series):
        return values.cast(pl.Float64)
    return pl.Series(name, values, dtype=pl.Float64, strict=False)


# --------------------------------------------------------------------------- batch (polars)


def _sma_seeded_ewm(x: pl.Expr, period: int, alpha: float) -> pl.Expr:
    """The SMA-seeded exponential recursion of `x`: null for the first period-1 rows."""
    row = pl.int_range(pl.len())
    seeded = (
        pl.when(row < period - 1)
        .then(None)
        .when(row == period - 1)
        .then(x.head(period).mean())
        .otherwise(x)
    )
    return seeded.ewm_mean(alpha=alpha, adjust=False)


def ema_expr(x: pl.Expr, period: int) -> pl.Expr:
    """EMA(period) of `x` as a polars expression; add `.over(...)` to compute it per group."""
    _check_period(period)
    return _sma_seeded_ewm(x.cast(pl.Float64), period, 2.0 / (period + 1))


def true_range_expr(high: pl.Expr, low: pl.Expr, close: pl.Expr) -> pl.Expr:
    """True range per row; on the first row (no previous close) it is high - low."""
    prev_close = close.shift(1)
    # max_horizontal skips nulls, so the first row reduces to high - low.
    return pl.max_horizontal(
        high - low,
        (high - prev_close).abs(),
        (low - prev_close).abs(),
    )


def atr_expr(high: pl.Expr, low: pl.Expr, close: pl.Expr, period: int) -> pl.Expr:
    """Wilder ATR(period) as a polars expression; add `.over(...)` to compute it per group."""
    _check_period(period)
    tr = true_range_expr(high.cast(pl.Float64), low.cast(pl.Float64), close.cast(pl.Float64))
    return _sma_seeded_ewm(tr, period, 1.0 / period)


def ema_series(values: pl.Series, period: int) -> pl.Series:
    """EMA(period) of `values` as Float64, null for the first period-1 rows."""
    _check_period(period)
    frame = pl.DataFrame({"x": values.cast(pl.Float64)})
    return frame.select(ema_expr(pl.col("x"), period)).to_series().alias(values.name)


def atr_series(high: pl.Series, low: pl.Series, close: pl.Series, period: int) -> pl.Series:
    """Wilder ATR(period) as Float64, null for the first period-1 rows."""
    _check_period(period)
    if not len(high) == len(low) == len(close):
        lengths = f"{len(high)}, {len(low)}, {len(close)}"
        raise ValueError(f"high, low and close must have the same length, got {lengths}")
    frame = pl.DataFrame({"high": high, "low": low, "close": close})
    atr = atr_expr(pl.col("high"), pl.col("low"), pl.col("close"), period)
    return frame.select(atr).to_series().alias("atr")


def add_indicators(bars: pl.DataFrame, fast: int, slow: int, atr_period: int) -> pl.DataFrame:
    """`bars` with ema_fast, ema_slow (of close) and atr columns, each computed per symbol.

    `bars` has columns timestamp, symbol, open, high, low, close, volume and is sorted by
    timestamp; symbols may be interleaved. Row order is kept.
    """
    high, low, close = pl.col("high"), pl.col("low"), pl.col("close")
    return bars.with_columns(
        ema_expr(close, fast).over("symbol").alias("ema_fast"),
        ema_expr(close, slow).over("symbol").alias("ema_slow"),
        atr_expr(high, low, close, atr_period).over("symbol").alias("atr"),
    )


# --------------------------------------------------------------------------- incremental


class EMA:
    """Exponential moving average, one input at a time. `value` is None until `period` inputs."""

    __slots__ = ("period", "value", "_alpha", "_count", "_sum")

    def __init__(self, period: int) -> None:
        _check_period(period)
        self.period = period
        self.value: float | None = None
        self._alpha = 2.0 / (period + 1)
        self._count = 0  # inputs seen during warm-up
        self._sum = 0.0  # their sum, for the SMA seed

    @property
    def ready(self) -> bool:
        return self.value is not None

    def update(self, x: float) -> float | None:
        """Take the next input and return the current EMA (None until ready)."""
        value = self.value
        if value is None:
            return self._warm_up(x)
        value += self._alpha * (x - value)
        self.value = value
        return value

    def _warm_up(self, x: float) -> float | None:
        self._count += 1
        self._sum += x
        if self._count == self.period:
            self.value = self._sum / self.period
        return self.value

    @classmethod
    def from_history(cls, period: int, values: Sequence[float] | pl.Series) -> EMA:
        """An EMA in the state it would have after `update()` on every value, via `ema_series`."""
        ema = cls(period)
        series = _as_float_series(values)
        if len(series) < period:
            for x in series:  # fewer than `period` values: still warming up, replay them
                ema.update(x)
            return ema
        ema._count = len(series)
        ema.value = ema_series(series, period)[-1]
        return ema

    def __repr__(self) -> str:
        return f"EMA(period={self.period}, value={self.value})"


class ATR:
    """Wilder's average true range, one bar at a time. `value` is None until `period` bars."""

    __slots__ = ("period", "value", "_prev_close", "_prev_weight", "_divisor", "_count", "_sum")

    def __init__(self, period: int) -> None:
        _check_period(period)
        self.period = period
        self.value: float | None = None
        self._prev_close: float | None = None
        self._prev_weight = float(period - 1)  # N - 1, as a float for the float-only hot path
        self._divisor = float(period)
        self._count = 0  # true ranges seen during warm-up
        self._sum = 0.0  # their sum, for the first ATR

    @property
    def ready(self) -> bool:
        return self.value is not None

    def update(self, high: float, low: float, close: float) -> float | None:
        """Take the next bar and return the current ATR (None until ready)."""
        prev_close = self._prev_close
        self._prev_close = close
        if prev_close is None:
            tr = high - low
        else:
            # max(high - low, |high - pc|, |low - pc|) == max(high, pc) - min(low, pc) when
            # high >= low; written with conditionals because max()/min() calls cost more here.
            tr = (high if high > prev_close else prev_close) - (
                low if low < prev_close else prev_close
            )
        value = self.value
        if value is None:
            return self._warm_up(tr)
        value = (value * self._prev_weight + tr) / self._divisor
        self.value = value
        return value

    def _warm_up(self, tr: float) -> float | None:
        self._count += 1
        self._sum += tr
        if self._count == self.period:
            self.value = self._sum / self.period
        return self.value

    @classmethod
    def from_history(
        cls,
        period: int,
        high: Sequence[float] | pl.Series,
        low: Sequence[float] | pl.Series,
        close: Sequence[float] | pl.Series,
    ) -> ATR:
        """An ATR in the state it would have after `update()` on every bar, via `atr_series`."""
        atr = cls(period)
        high_s, low_s, close_s = (_as_float_series(s) for s in (high, low, close))
        if len(close_s) < period:
            for h, lo, c in zip(high_s, low_s, close_s, strict=True):  # still warming up
                atr.update(h, lo, c)
            return atr
        atr._count = len(close_s)
        atr._prev_close = close_s[-1]
        atr.value = atr_series(high_s, low_s, close_s, period)[-1]
        return atr

    def __repr__(self) -> str:
        return f"ATR(period={self.period}, value={self.value})"
