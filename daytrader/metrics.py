"""Trading metrics from round trips and the equity curve: one module for console, API and reports.

Definitions (so that figures can be checked by hand):
- win rate: share of trades whose net P&L (after commission) is above zero;
- profit factor: gross profit / gross loss of net P&Ls (None when nothing was lost);
- expectancy: mean net P&L per trade; average win / loss: mean of the winners / losers;
- max drawdown: largest fall from a running peak of the equity curve, in money and in percent;
- Sharpe and Sortino: from daily returns (last equity of each exchange day against the previous
  day's, the first day against the starting equity), annualised with sqrt(252), risk-free 0;
  Sortino's downside deviation is sqrt(mean(min(r, 0)^2)) over all days;
- exposure: share of the curve's minutes in which at least one position was open;
- slippage: fill price against the price the decision was made at, in basis points, positive
  when it cost us (bought higher or sold lower);
- fill rate: orders filled / orders sent (bracket legs not counted: they exist only after a fill).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from daytrader.models import ZERO, Trade, quick_init

TRADING_DAYS = 252


@dataclass(frozen=True, slots=True)
class Metrics:
    trades: int
    wins: int
    losses: int
    win_rate: float  # percent
    profit_factor: float | None  # None when there is no losing trade
    expectancy: Decimal  # mean net P&L per trade
    realized: Decimal
    gross_profit: Decimal
    gross_loss: Decimal
    max_drawdown: float  # in money, from the equity curve
    max_drawdown_pct: float
    avg_hold: timedelta | None
    avg_win: Decimal = ZERO
    avg_loss: Decimal = ZERO
    sharpe: float | None = None
    sortino: float | None = None
    exposure_pct: float = 0.0
    slippage_bps: float | None = None  # mean over fills with a decision price
    fill_rate: float | None = None  # percent
    rejections_by_check: Mapping[str, int] = field(default_factory=dict)
    breaker_trips: int = 0

    def as_dict(self) -> dict:
        def rnd(x: float | None, n: int) -> float | None:
            return None if x is None else round(x, n)

        return {
            "trades": self.trades, "wins": self.wins, "losses": self.losses,
            "win_rate_pct": round(self.win_rate, 2),
            "profit_factor": rnd(self.profit_factor, 3),
            "expectancy": str(self.expectancy), "realized": str(self.realized),
            "gross_profit": str(self.gross_profit), "gross_loss": str(self.gross_loss),
            "avg_win": str(self.avg_win), "avg_loss": str(self.avg_loss),
            "max_drawdown": f"{self.max_drawdown:.2f}",  # money: a string, like the others
            "max_drawdown_pct": round(self.max_drawdown_pct, 3),
            "sharpe": rnd(self.sharpe, 3), "sortino": rnd(self.sortino, 3),
            "exposure_pct": round(self.exposure_pct, 2),
            "avg_hold_minutes": None if self.avg_hold is None
            else round(self.avg_hold.total_seconds() / 60, 1),
            "slippage_bps": rnd(self.slippage_bps, 3),
            "fill_rate_pct": rnd(self.fill_rate, 2),
            "rejections_by_check": dict(self.rejections_by_check),
            "breaker_trips": self.breaker_trips,
        }


@quick_init
@dataclass(frozen=True, slots=True)
class Execution:
    """One fill next to the price its decision was made at, for slippage."""

    side_sign: int  # +1 buy, -1 sell
    decision_price: Decimal
    fill_price: Decimal


def max_drawdown(equity: Iterable[float]) -> tuple[float, float]:
    """Largest peak-to-trough fall, in money and in percent of the peak (the first such fall)."""
    values = np.fromiter(equity, dtype=float)
    if not len(values):
        return 0.0, 0.0
    peaks = np.maximum.accumulate(values)
    falls = peaks - values
    at = int(falls.argmax())
    worst, peak = float(falls[at]), float(peaks[at])
    if not worst > 0:
        return 0.0, 0.0
    return worst, worst / peak * 100 if peak > 0 else 0.0


def daily_returns(equity_curve: Sequence[tuple[datetime, float]],
                  starting_equity: float | None = None) -> list[float]:
    """Return of each exchange day: its last equity against the previous day's last."""
    values = list({ts.date(): value for ts, value in equity_curve}.values())  # each day's last
    previous = starting_equity if starting_equity is not None else (
        equity_curve[0][1] if equity_curve else None)
    returns = []
    for value in values:
        if previous:
            returns.append(value / previous - 1)
        previous = value
    return returns


def sharpe_sortino(returns: Sequence[float]) -> tuple[float | None, float | None]:
    if len(returns) < 2:
        return None, None
    mean = sum(returns) / len(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    scale = math.sqrt(TRADING_DAYS)
    sharpe = mean / math.sqrt(var) * scale if var > 0 else None
    sortino = mean / downside * scale if downside > 0 else None
    return sharpe, sortino


def exposure_pct(trades: Sequence[Trade], equity_curve: Sequence[tuple[datetime, float]]) -> float:
    """Share of the curve's minutes (each point closes a minute) with a position open."""
    if not equity_curve or not trades:
        return 0.0
    merged: list[list[datetime]] = []
    for start, end in sorted((t.entry_time, t.exit_time) for t in trades):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    # Each point closes a minute: the ones whose minute starts inside an interval, counted by
    # bisection rather than a step per point (sorted: a journal's curve may come out of order;
    # a run's already is, which costs sorted() one pass).
    times = sorted(ts for ts, _ in equity_curve)
    minute = timedelta(minutes=1)
    exposed = sum(bisect_left(times, end + minute) - bisect_left(times, start + minute)
                  for start, end in merged)
    return exposed / len(equity_curve) * 100


def slippage_bps(executions: Iterable[Execution]) -> float | None:
    # In floats: a statistic, not money (Decimal division costs a microsecond per fill).
    values = [(float(e.fill_price) - price) / price * 10_000 * e.side_sign
              for e in executions if (price := float(e.decision_price)) > 0]
    return sum(values) / len(values) if values else None


def compute(trades: Sequence[Trade], equity_curve: Sequence[tuple[datetime, float]] = (), *,
            starting_equity: float | None = None, executions: Iterable[Execution] = (),
            orders_sent: int = 0, orders_filled: int = 0,
            rejections_by_check: Mapping[str, int] | None = None,
            breaker_trips: int = 0) -> Metrics:
    net = [t.pnl - t.commission for t in trades]
    wins = [p for p in net if p > 0]
    losses = [p for p in net if p <= 0]
    gross_profit = sum(wins, ZERO)
    gross_loss = -sum(losses, ZERO)
    realized = sum(net, ZERO)
    dd, dd_pct = max_drawdown(v for _, v in equity_curve)
    holds = [t.exit_time - t.entry_time for t in trades]
    sharpe, sortino = sharpe_sortino(daily_returns(equity_curve, starting_equity))
    cents = Decimal("0.01")
    return Metrics(
        trades=len(trades), wins=len(wins), losses=len(losses),
        win_rate=len(wins) / len(trades) * 100 if trades else 0.0,
        profit_factor=float(gross_profit / gross_loss) if gross_loss > 0 else None,
        expectancy=(realized / len(trades)).quantize(cents) if trades else ZERO,
        realized=realized, gross_profit=gross_profit, gross_loss=gross_loss,
        max_drawdown=dd, max_drawdown_pct=dd_pct,
        avg_hold=sum(holds, timedelta()) / len(holds) if holds else None,
        avg_win=(gross_profit / len(wins)).quantize(cents) if wins else ZERO,
        avg_loss=(-gross_loss / len(losses)).quantize(cents) if losses else ZERO,
        sharpe=sharpe, sortino=sortino,
        exposure_pct=exposure_pct(trades, equity_curve),
        slippage_bps=slippage_bps(executions),
        fill_rate=orders_filled / orders_sent * 100 if orders_sent else None,
        rejections_by_check=dict(rejections_by_check or {}),
        breaker_trips=breaker_trips,
    )
