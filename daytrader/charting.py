"""What the terminal charts (plotext) share: time labels for the x axis instead of point numbers,
and a y range that a flat series does not blow up (plotext spreads equal values over +-50%)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from daytrader.clock import EXCHANGE_TZ


def time_ticks(times: Sequence[datetime], count: int = 5) -> tuple[list[int], list[str]]:
    """About `count` evenly spaced positions into `times` with their labels: HH:MM within one
    day, MM-DD HH:MM within a few days, MM-DD beyond; the last point is always labelled."""
    if not times:
        return [], []
    local = [t.astimezone(EXCHANGE_TZ) for t in (times[0], times[-1])]
    days = (local[1].date() - local[0].date()).days
    fmt = "%H:%M" if days == 0 else "%m-%d %H:%M" if days <= 3 else "%m-%d"
    step = max(1, (len(times) - 1) // max(1, count - 1))
    positions = list(range(0, len(times), step))
    if positions[-1] != len(times) - 1:
        if len(times) - 1 - positions[-1] <= step / 2 and len(positions) > 1:
            positions.pop()  # too close to the last one to be readable
        positions.append(len(times) - 1)
    return positions, [f"{times[i].astimezone(EXCHANGE_TZ):{fmt}}" for i in positions]


def padded_range(values: Sequence[float], min_span: float, pad: float = 0.05
                 ) -> tuple[float, float] | None:
    """A y range around `values` at least `min_span` high (centred when they are flat) with
    `pad` of the span above and below; None for no values."""
    finite = [v for v in values if v is not None]
    if not finite:
        return None
    low, high = min(finite), max(finite)
    span = high - low
    if span < min_span:
        middle = (low + high) / 2
        low, high, span = middle - min_span / 2, middle + min_span / 2, min_span
    return low - span * pad, high + span * pad


def money_ticks(low: float, high: float, count: int = 4) -> tuple[list[float], list[str]]:
    """`count` evenly spaced y ticks from low to high, labelled in whole dollars ("100,108")."""
    if count < 2 or high <= low:
        return [low], [f"{low:,.0f}"]
    step = (high - low) / (count - 1)
    values = [low + i * step for i in range(count)]
    return values, [f"{v:,.0f}" for v in values]


def equity_axis(values: Sequence[float]) -> tuple[float, float, list[float], list[str]]:
    """An equity chart's y range and dollar ticks: at least 0.05% of the equity ($10 at the
    least) high, so a flat day is a flat line near its value, not plotext's +-50% of it."""
    low, high = padded_range(values, min_span=max(10.0, abs(values[-1]) * 0.0005))
    return low, high, *money_ticks(low, high)


def drawdown_axis(values: Sequence[float]) -> tuple[float, float]:
    """A drawdown chart's y range (percent): from a little below its deepest point (0.1% at
    the least) to a little above 0, where a curve with no drawdown lies."""
    deepest = min(min(values, default=0.0), -0.1)
    return deepest * 1.05, -deepest * 0.05


def drawdown_pct(values: Sequence[float]) -> list[float]:
    """Each point's distance below the running peak, in percent (0 at a new high)."""
    peak, out = float("-inf"), []
    for v in values:
        peak = max(peak, v)
        out.append((v - peak) / peak * 100 if peak > 0 else 0.0)
    return out
