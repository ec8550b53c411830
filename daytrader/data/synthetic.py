"""Seeded synthetic minute bars: U-shaped intraday volatility, trend regimes and overnight gaps.

Each symbol draws from its own random stream (keyed by seed and symbol), so adding a symbol never
changes another symbol's bars. Prices follow log-returns whose volatility is highest near the open
and the close; on top of the noise a drift switches every 20-90 minutes, so an EMA(9)/EMA(21)
crossover sees several crossings a session and some trends run far. Each session is generated in
one vectorized pass and sessions are generated lazily, so a simulation can run for days.
`volatility` scales the minute noise around the trends (1.0, the default, leaves the bars as they
always were): above 1 the market is choppier and the EMAs cross more often.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from daytrader.models import Bar

DEFAULT_START_PRICES: dict[str, float] = {
    "AAPL": 190.0,
    "MSFT": 415.0,
    "NVDA": 120.0,
    "AMZN": 180.0,
    "TSLA": 240.0,
    "META": 500.0,
    "GOOGL": 170.0,
    "AMD": 160.0,
    "SPY": 540.0,
    "QQQ": 470.0,
}

_MINUTES_PER_DAY = 390  # a regular session; daily volatility is quoted per 390 minutes
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _SessionBlock:
    """One session's numbers for every symbol: values[symbol, field, minute], field = OHLCV."""

    open: datetime
    minutes: int
    values: np.ndarray


def _symbol_rng(seed: int, symbol: str) -> np.random.Generator:
    key = int.from_bytes(hashlib.blake2b(symbol.encode(), digest_size=8).digest(), "little")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(key,))))


def _round_price(p: np.ndarray) -> np.ndarray:
    """Cents at or above $1, four decimals below; monotone, so OHLC order survives rounding."""
    return np.maximum(np.where(p >= 1.0, np.round(p, 2), np.round(p, 4)), 0.0001)


class _SymbolWalk:
    """The price path of one symbol, carried from session to session."""

    def __init__(self, symbol: str, seed: int, volatility: float = 1.0) -> None:
        self.rng = _symbol_rng(seed, symbol)
        self.volatility = volatility
        start = DEFAULT_START_PRICES.get(symbol)
        seeded_start = float(self.rng.uniform(20.0, 500.0))
        self.log_price = math.log(start if start is not None else seeded_start)
        self.daily_vol = float(self.rng.uniform(0.009, 0.016))  # noise only; trends add the rest
        self.shares_per_minute = float(self.rng.uniform(5e6, 4e7)) / math.exp(self.log_price)
        self.trend_sign = 1.0 if self.rng.random() < 0.5 else -1.0
        self.sessions = 0

    def next_session(self, n: int) -> np.ndarray:
        """OHLCV for the next `n` minutes, shape (5, n)."""
        rng = self.rng
        t = np.arange(n, dtype=np.float64)
        sigma_day = self.daily_vol * float(rng.lognormal(0.0, 0.25))
        sigma_min = sigma_day / math.sqrt(_MINUTES_PER_DAY)

        # U-shaped volatility, normalised to unit mean variance.
        shape = 1.0 + 1.6 * np.exp(-t / 25.0) + 0.9 * np.exp(-(n - 1 - t) / 20.0)
        shape /= math.sqrt(float(np.mean(shape * shape)))
        vol = sigma_min * shape
        if self.volatility != 1.0:  # the noise only: the trends' drift keeps its size
            vol = vol * self.volatility

        # Trend regimes: a drift that holds 20-90 minutes, usually changing direction.
        count = n // 20 + 2
        ends = np.cumsum(rng.integers(20, 91, size=count))
        strength = rng.uniform(0.0, 0.4, size=count)
        flips = np.cumsum(rng.random(count) < 0.7)
        signs = self.trend_sign * np.where(flips % 2 == 0, 1.0, -1.0)
        regime = np.searchsorted(ends, t, side="right")
        drift = (signs * strength)[regime] * sigma_min
        self.trend_sign = float(signs[regime[-1]])

        # Fat-tailed noise (Student t, 5 degrees of freedom, scaled to unit variance).
        z = rng.standard_t(5, size=n) / math.sqrt(5.0 / 3.0)
        returns = drift + vol * z
        gap = float(rng.normal(0.0, 0.4 * sigma_day)) if self.sessions else 0.0
        first = self.log_price + gap
        log_close = first + np.cumsum(returns)
        log_open = np.empty(n)
        log_open[0] = first
        log_open[1:] = log_close[:-1]
        self.log_price = float(log_close[-1])
        self.sessions += 1

        wick_up = np.abs(rng.standard_normal(n)) * vol * 0.6
        wick_down = np.abs(rng.standard_normal(n)) * vol * 0.6
        open_ = _round_price(np.exp(log_open))
        close = _round_price(np.exp(log_close))
        # Rounding is monotone, so these already bound open and close; the reduce makes it explicit.
        high = _round_price(np.exp(np.maximum(log_open, log_close) + wick_up))
        high = np.maximum.reduce([high, open_, close])
        low = _round_price(np.exp(np.minimum(log_open, log_close) - wick_down))
        low = np.minimum.reduce([low, open_, close])

        volume_shape = 1.0 + 2.5 * np.exp(-t / 15.0) + 1.8 * np.exp(-(n - 1 - t) / 15.0)
        activity = 0.7 + 0.3 * np.abs(z)
        noise = rng.lognormal(0.0, 0.35, size=n)
        volume = np.rint(self.shares_per_minute * volume_shape * activity * noise)
        return np.stack([open_, high, low, close, volume])


def _session_minutes(open_: datetime, close: datetime) -> int:
    if open_.tzinfo is None or close.tzinfo is None:
        raise ValueError(f"session times must be tz-aware: {open_!r} - {close!r}")
    seconds = (close.astimezone(UTC) - open_.astimezone(UTC)).total_seconds()
    return max(0, math.ceil(seconds / 60.0))


def _session_blocks(
    symbols: Sequence[str], sessions: Iterable[tuple[datetime, datetime]], seed: int,
    volatility: float = 1.0,
) -> Iterator[_SessionBlock]:
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"duplicate symbols in {list(symbols)}")
    if not volatility > 0:
        raise ValueError(f"volatility must be positive, got {volatility}")
    walks = [_SymbolWalk(symbol, seed, volatility) for symbol in symbols]
    for open_, close in sessions:
        n = _session_minutes(open_, close)
        if n == 0 or not walks:
            continue
        values = np.stack([walk.next_session(n) for walk in walks])
        yield _SessionBlock(open_, n, values)


def _minute_starts(open_: datetime, n: int) -> list[datetime]:
    start = open_.astimezone(UTC)
    return [(start + timedelta(minutes=i)).astimezone(open_.tzinfo) for i in range(n)]


def synthetic_bars(
    symbols: Sequence[str], sessions: Iterable[tuple[datetime, datetime]], seed: int,
    volatility: float = 1.0,
) -> Iterator[list[Bar]]:
    """One list per minute (a Bar per symbol, in `symbols` order) for each minute of each session.

    Minutes run from each session's open (inclusive) to its close (exclusive); timestamps keep the
    sessions' time zone. The same seed always gives the same bars.
    """
    symbols = list(symbols)
    for block in _session_blocks(symbols, sessions, seed, volatility):
        per_symbol = [list(zip(*rows, strict=True)) for rows in block.values.tolist()]
        for i, ts in enumerate(_minute_starts(block.open, block.minutes)):
            yield [Bar(symbol, ts, *rows[i]) for symbol, rows in zip(symbols, per_symbol, strict=True)]


def synthetic_frame(
    symbols: Sequence[str], sessions: Iterable[tuple[datetime, datetime]], seed: int,
    volatility: float = 1.0,
) -> pl.DataFrame:
    """The bars of `synthetic_bars` as a replay frame (timestamp, symbol, open ... volume).

    Rows are in minute order, symbols in the given order within a minute.
    """
    symbols = list(symbols)
    frames: list[pl.DataFrame] = []
    tz_name = "UTC"
    for block in _session_blocks(symbols, sessions, seed, volatility):
        tz_name = getattr(block.open.tzinfo, "key", None) or "UTC"
        start_us = (block.open.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
        minute_us = start_us + np.arange(block.minutes, dtype=np.int64) * 60_000_000
        columns = {
            name: block.values[:, field, :].T.ravel()
            for field, name in enumerate(("open", "high", "low", "close", "volume"))
        }
        frames.append(
            pl.DataFrame(
                {
                    "timestamp": np.repeat(minute_us, len(symbols)),
                    "symbol": np.tile(np.array(symbols, dtype=object), block.minutes).tolist(),
                    **columns,
                }
            )
        )
    schema = {
        "timestamp": pl.Int64,
        "symbol": pl.String,
        **{name: pl.Float64 for name in ("open", "high", "low", "close", "volume")},
    }
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    return frame.with_columns(
        pl.col("timestamp").cast(pl.Datetime("us", "UTC")).dt.convert_time_zone(tz_name)
    )
