"""Trading metrics from round trips and the equity curve: one module for console, API and reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from daytrader.models import ZERO, Trade


@dataclass(frozen=True, slots=True)
class Metrics:
    trades: int
    wins: int
    losses: int
    win_rate: float  # percent
    profit_factor: float | None  # None when there is no losing trade
    expectancy: Decimal  # mean P&L per trade
    realized: Decimal
    gross_profit: Decimal
    gross_loss: Decimal
    max_drawdown: float  # in money, from the equity curve
    max_drawdown_pct: float
    avg_hold: timedelta | None

    def as_dict(self) -> dict:
        return {
            "trades": self.trades, "wins": self.wins, "losses": self.losses,
            "win_rate_pct": round(self.win_rate, 2),
            "profit_factor": None if self.profit_factor is None else round(self.profit_factor, 3),
            "expectancy": str(self.expectancy), "realized": str(self.realized),
            "gross_profit": str(self.gross_profit), "gross_loss": str(self.gross_loss),
            "max_drawdown": round(self.max_drawdown, 2),
            "max_drawdown_pct": round(self.max_drawdown_pct, 3),
            "avg_hold_minutes": None if self.avg_hold is None
            else round(self.avg_hold.total_seconds() / 60, 1),
        }


def max_drawdown(equity: Sequence[float]) -> tuple[float, float]:
    """Largest peak-to-trough fall, in money and in percent of the peak."""
    peak = float("-inf")
    worst, worst_pct = 0.0, 0.0
    for value in equity:
        peak = max(peak, value)
        fall = peak - value
        if fall > worst:
            worst = fall
            worst_pct = fall / peak * 100 if peak > 0 else 0.0
    return worst, worst_pct


def compute(trades: Sequence[Trade], equity_curve: Sequence[tuple[datetime, float]] = ()) -> Metrics:
    net = [t.pnl - t.commission for t in trades]
    wins = [p for p in net if p > 0]
    losses = [p for p in net if p <= 0]
    gross_profit = sum(wins, ZERO)
    gross_loss = -sum(losses, ZERO)
    realized = sum(net, ZERO)
    dd, dd_pct = max_drawdown([v for _, v in equity_curve])
    holds = [t.exit_time - t.entry_time for t in trades]
    return Metrics(
        trades=len(trades), wins=len(wins), losses=len(losses),
        win_rate=len(wins) / len(trades) * 100 if trades else 0.0,
        profit_factor=float(gross_profit / gross_loss) if gross_loss > 0 else None,
        expectancy=(realized / len(trades)).quantize(Decimal("0.01")) if trades else ZERO,
        realized=realized, gross_profit=gross_profit, gross_loss=gross_loss,
        max_drawdown=dd, max_drawdown_pct=dd_pct,
        avg_hold=sum(holds, timedelta()) / len(holds) if holds else None,
    )
