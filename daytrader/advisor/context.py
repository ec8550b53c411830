"""The compact, factual context of an entry that the advisor is asked about.

Everything in it is a validated value: a ticker, numbers (finite, rounded), times the engine
formats, and names reduced to a short identifier. Nothing is copied from settings, so no key,
token or URL can reach a prompt through it.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from daytrader.models import Bar
from daytrader.symbols import is_symbol

BARS_KEPT = 30  # "the last 30 minutes of bars"
_IDENT = re.compile(r"[^A-Za-z0-9_.:()=,+ %-]")


def identifier(text: object, fallback: str = "?", limit: int = 40) -> str:
    """A name from code (a strategy, an indicator, a signal's reason) as a short, plain token."""
    cleaned = _IDENT.sub("", str(text))[:limit].strip()
    return cleaned or fallback


def number(value: object, places: int = 4) -> float | None:
    """A finite number rounded for a prompt, or None."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return round(x, places) if math.isfinite(x) else None


@dataclass(frozen=True, slots=True)
class BarsSummary:
    """The last minutes of one symbol in a few numbers."""

    minutes: int
    first: str  # HH:MM of the first bar
    last: str
    open: float
    high: float
    low: float
    close: float
    change_pct: float
    range_pct: float
    vwap: float | None
    volume: float
    last_volume: float
    avg_volume: float
    up_bars: int
    down_bars: int
    last_closes: tuple[float, ...]

    @classmethod
    def of(cls, bars: Sequence[Bar]) -> BarsSummary | None:
        if not bars:
            return None
        first, last = bars[0], bars[-1]
        high, low = max(b.high for b in bars), min(b.low for b in bars)
        volume = sum(b.volume for b in bars)
        vwap = (sum((b.high + b.low + b.close) / 3 * b.volume for b in bars) / volume
                if volume > 0 else None)
        return cls(len(bars), f"{first.ts:%H:%M}", f"{last.ts:%H:%M}", number(first.open) or 0.0,
                   number(high) or 0.0, number(low) or 0.0, number(last.close) or 0.0,
                   number((last.close / first.open - 1) * 100, 3) or 0.0 if first.open else 0.0,
                   number((high - low) / low * 100, 3) or 0.0 if low > 0 else 0.0,
                   number(vwap), number(volume, 0) or 0.0, number(last.volume, 0) or 0.0,
                   number(volume / len(bars), 0) or 0.0,
                   sum(b.close > b.open for b in bars), sum(b.close < b.open for b in bars),
                   tuple(number(b.close) or 0.0 for b in bars[-5:]))


@dataclass(frozen=True, slots=True)
class AccountState:
    """The account's risk state at the signal, as the engine sees it."""

    equity: Decimal
    start_of_day_equity: Decimal
    buying_power: Decimal
    daily_loss_pct: float
    max_daily_loss_pct: float
    breaker_tripped: bool
    positions_open: int  # positions and pending entries, this one included
    max_positions: int
    trades_today: int
    realized_today: Decimal
    risk_per_trade_pct: float
    trading_state: str


@dataclass(frozen=True, slots=True)
class EntryContext:
    symbol: str
    side: str  # buy | sell
    action: str  # enter_long | enter_short
    strategy: str
    signal_reason: str
    ts: datetime  # market time of the signal (the bar's close)
    minutes_to_close: int | None
    price: Decimal
    qty: int
    stop_loss: Decimal | None
    take_profit: Decimal | None
    atr: float | None
    indicators: tuple[tuple[str, float | None], ...]
    bars: BarsSummary | None
    account: AccountState

    def prompt_data(self) -> dict[str, Any]:
        """Plain JSON values for the prompt, in a fixed order."""
        price = float(self.price)
        stop = float(self.stop_loss) if self.stop_loss is not None else None
        take = float(self.take_profit) if self.take_profit is not None else None
        per_share = abs(price - stop) if stop is not None else None
        a = self.account
        equity = float(a.equity)
        risk = per_share * self.qty if per_share is not None else None
        data: dict[str, Any] = {
            "symbol": self.symbol,
            "time_et": self.ts.strftime("%Y-%m-%d %H:%M"),
            "minutes_to_close": self.minutes_to_close,
            "strategy": self.strategy,
            "signal": {"action": self.action, "reason": self.signal_reason,
                       "price": number(price), "atr": number(self.atr)},
            "order": {"side": self.side, "qty": self.qty, "type": "market"},
            "bracket": {"stop_loss": number(stop), "take_profit": number(take),
                        "risk_per_share": number(per_share),
                        "reward_to_risk": number(abs(take - price) / per_share, 2)
                        if take is not None and per_share else None},
            "indicators": {name: value for name, value in self.indicators},
            "last_30_minutes": None,
            "account": {
                "equity": number(equity, 2),
                "start_of_day_equity": number(float(a.start_of_day_equity), 2),
                "day_pnl": number(equity - float(a.start_of_day_equity), 2),
                "day_pnl_pct": number((equity / float(a.start_of_day_equity) - 1) * 100, 3)
                if a.start_of_day_equity else None,
                "daily_loss_pct": number(a.daily_loss_pct, 3),
                "daily_loss_limit_pct": number(a.max_daily_loss_pct, 3),
                "circuit_breaker_tripped": a.breaker_tripped,
                "buying_power": number(float(a.buying_power), 2),
                "positions_open_or_pending": a.positions_open,
                "max_positions": a.max_positions,
                "trades_closed_today": a.trades_today,
                "realized_pnl_today": number(float(a.realized_today), 2),
                "trade_risk": number(risk, 2),
                "trade_risk_pct_of_equity": number(risk / equity * 100, 3)
                if risk is not None and equity else None,
                "risk_per_trade_limit_pct": number(a.risk_per_trade_pct, 3),
                "trading_state": identifier(a.trading_state),
            },
        }
        if self.bars is not None:
            b = self.bars
            data["last_30_minutes"] = {
                "bars": b.minutes, "from": b.first, "to": b.last, "open": b.open, "high": b.high,
                "low": b.low, "close": b.close, "change_pct": b.change_pct,
                "range_pct": b.range_pct, "vwap": b.vwap, "volume": b.volume,
                "avg_volume_per_bar": b.avg_volume, "last_bar_volume": b.last_volume,
                "up_bars": b.up_bars, "down_bars": b.down_bars,
                "last_5_closes": list(b.last_closes)}
        return data


class RecentBars:
    """The last BARS_KEPT bars of each symbol (fed each minute while an advisor is on)."""

    def __init__(self, keep: int = BARS_KEPT) -> None:
        self.keep = keep
        self.by_symbol: dict[str, deque[Bar]] = {}

    def add(self, bars: Iterable[Bar]) -> None:
        for bar in bars:
            kept = self.by_symbol.get(bar.symbol)
            if kept is None:
                kept = self.by_symbol[bar.symbol] = deque(maxlen=self.keep)
            kept.append(bar)

    def of(self, symbol: str) -> list[Bar]:
        return list(self.by_symbol.get(symbol, ()))


def entry_context(*, symbol: str, side: str, action: str, strategy: str, reason: str,
                  ts: datetime, minutes_to_close: int | None, price: Decimal, qty: int,
                  stop_loss: Decimal | None, take_profit: Decimal | None, atr: float | None,
                  indicators: Mapping[str, object], bars: Sequence[Bar],
                  account: AccountState) -> EntryContext:
    """The context from the engine's values, each reduced to what a prompt may hold."""
    if not is_symbol(symbol):
        raise ValueError(f"not a ticker symbol: {symbol!r}")
    shown = tuple((identifier(name, "indicator", 24), number(value))
                  for name, value in list(indicators.items())[:12])
    return EntryContext(symbol, "buy" if side == "buy" else "sell", identifier(action, "enter"),
                        identifier(strategy, "strategy"), identifier(reason, "signal"), ts,
                        minutes_to_close, price, int(qty), stop_loss, take_profit, number(atr),
                        shown, BarsSummary.of(bars), account)
