"""Plain, independent implementations of the built-in strategies' rules and of the sim's fills,
written from the rules at the top of each strategy module, not from its code: slow loops that
recompute everything from the bars seen so far. The tests compare them trade for trade with the
full engine.

Fill rules (the sim exchange's, as documented in daytrader/broker/sim.py): an order placed at a
bar's close fills at the next bar's open; a bracket's legs work from the entry's fill and can
trigger in the rest of that bar (its range, not its open); when one bar reaches both, the stop
fills unless the bar opened beyond the target; a leg fills at the open when the bar gaps through
it. An exit signal cancels the legs and sells at the next open. Five minutes before the close
everything is closed at the next open and no new entries are taken. No slippage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from daytrader.clock import MarketCalendar
from daytrader.models import Bar, to_price

FLATTEN_MINUTES = 5


@dataclass(frozen=True)
class RefTrade:
    symbol: str
    side: str  # "long" | "short"
    entry_time: datetime
    entry_price: float
    exit_time: datetime
    exit_price: float
    reason: str


def wilder_atr(bars: list[Bar], period: int) -> float | None:
    """Wilder's ATR over `bars` (oldest first): the first value is the mean of the first
    `period` true ranges (the first bar's is high - low), then (prev x (n-1) + tr) / n."""
    trs = []
    for i, b in enumerate(bars):
        if i == 0:
            trs.append(b.high - b.low)
        else:
            pc = bars[i - 1].close
            trs.append(max(b.high, pc) - min(b.low, pc))
    if len(trs) < period:
        return None
    atr = sum(trs[:period]) / period
    for tr in trs[period:]:
        atr = (atr * (period - 1) + tr) / period
    return atr


def cents(x: float) -> float:
    return float(to_price(x))


# -- the strategies' rules, plainly -----------------------------------------------------------------
def opening_range_decision(history: list[Bar], bar: Bar, position: int, taken: set, p) -> dict | None:
    """Rules 1-5 of daytrader/strategy/opening_range.py for one bar."""
    if position != 0:
        return None
    today = [b for b in history if b.ts.date() == bar.ts.date()]
    start = today[0].ts
    in_range = [b for b in today if b.ts < start + timedelta(minutes=p.minutes)]
    if bar.ts < start + timedelta(minutes=p.minutes) or (bar.symbol, bar.ts.date()) in taken:
        return None
    high, low = max(b.high for b in in_range), min(b.low for b in in_range)
    if high - low < bar.close * p.min_range_pct / 100:
        return None
    if bar.close > high:
        side = 1
    elif bar.close < low and p.allow_shorts:
        side = -1
    else:
        return None
    if p.stop_atr_mult > 0:
        atr = wilder_atr(history, p.atr_period)
        if atr is None:
            return None
        stop = bar.close - side * p.stop_atr_mult * atr
    else:
        stop = low if side > 0 else high
    risk = (bar.close - stop) * side
    if risk <= 0:
        return None
    taken.add((bar.symbol, bar.ts.date()))
    return {"side": side, "stop": cents(stop), "take": cents(bar.close + side * p.target_r * risk)}


def vwap_reversion_decision(history: list[Bar], bar: Bar, position: int, taken: set,
                            p) -> dict | None:
    """Rules 1-5 of daytrader/strategy/vwap_reversion.py for one bar."""
    today = [b for b in history if b.ts.date() == bar.ts.date()]

    def band(bars: list[Bar]) -> tuple[float, float, float] | None:
        volume = sum(b.volume for b in bars)
        if volume <= 0:
            return None
        typical = [(b.high + b.low + b.close) / 3 for b in bars]
        vwap = sum(t * b.volume for t, b in zip(typical, bars, strict=True)) / volume
        var = sum(b.volume * (t - vwap) ** 2 for t, b in zip(typical, bars, strict=True)) / volume
        sd = math.sqrt(max(0.0, var))
        return vwap, vwap - p.k * sd, vwap + p.k * sd

    now = band(today)
    if now is None:
        return None
    vwap = now[0]
    if position > 0 and bar.close >= vwap:
        return {"exit": "vwap_reached"}
    if position < 0 and bar.close <= vwap:
        return {"exit": "vwap_reached"}
    if position != 0 or len(today) <= p.min_bars or len(today) < 2:
        return None
    before = band(today[:-1])
    atr = wilder_atr(history, p.atr_period)
    if before is None or not atr:
        return None
    prev = today[-2].close
    if prev < before[1] and bar.close > prev:
        side = 1
    elif prev > before[2] and bar.close < prev and p.allow_shorts:
        side = -1
    else:
        return None
    stop = bar.close - side * p.stop_atr_mult * atr
    if stop <= 0:
        return None
    return {"side": side, "stop": cents(stop), "take": None}


# -- the fills, plainly ------------------------------------------------------------------------------
def simulate(minutes: list[list[Bar]], decide, params, calendar: MarketCalendar) -> list[RefTrade]:
    history: dict[str, list[Bar]] = {}
    positions: dict[str, dict] = {}  # symbol -> {side, entry_time, entry_price, stop, take}
    pending: dict[str, dict] = {}  # orders to fill at the next open: entry or exit
    taken: set = set()
    trades: list[RefTrade] = []

    def close(symbol: str, when: datetime, price: float, reason: str) -> None:
        pos = positions.pop(symbol)
        trades.append(RefTrade(symbol, "long" if pos["side"] > 0 else "short", pos["entry_time"],
                               pos["entry_price"], when, price, reason))

    def legs(symbol: str, bar: Bar, gap: bool) -> None:
        pos = positions[symbol]
        side, stop, take = pos["side"], pos["stop"], pos["take"]
        hit_stop = (bar.low <= stop) if side > 0 else (bar.high >= stop)
        hit_take = take is not None and ((bar.high >= take) if side > 0 else (bar.low <= take))
        if gap:
            if (bar.open <= stop) if side > 0 else (bar.open >= stop):
                close(symbol, bar.ts, bar.open, "stop_loss")
                return
            if take is not None and ((bar.open >= take) if side > 0 else (bar.open <= take)):
                close(symbol, bar.ts, bar.open, "take_profit")
                return
        if hit_stop:
            close(symbol, bar.ts, stop, "stop_loss")
        elif hit_take:
            close(symbol, bar.ts, take, "take_profit")

    for bars in minutes:
        session = calendar.session_at(bars[0].ts)
        now = bars[0].ts + timedelta(minutes=1)
        for bar in bars:  # the fills of this bar
            order = pending.pop(bar.symbol, None)
            if order is not None and order["kind"] == "exit" and bar.symbol in positions:
                close(bar.symbol, bar.ts, bar.open, order["reason"])
            elif order is not None and order["kind"] == "entry":
                positions[bar.symbol] = {"side": order["side"], "entry_time": bar.ts,
                                         "entry_price": bar.open, "stop": order["stop"],
                                         "take": order["take"]}
                legs(bar.symbol, bar, gap=False)
            elif bar.symbol in positions:
                legs(bar.symbol, bar, gap=True)
            history.setdefault(bar.symbol, []).append(bar)
        flatten = session is not None and now >= session.close - timedelta(
            minutes=FLATTEN_MINUTES)
        for bar in bars:  # the decisions at this bar's close
            held = positions.get(bar.symbol)
            position = held["side"] if held else 0
            if flatten:
                if held:
                    pending[bar.symbol] = {"kind": "exit", "reason": "flatten_before_close"}
                continue
            decision = decide(history[bar.symbol], bar, position, taken, params)
            if decision is None:
                continue
            if "exit" in decision:
                pending[bar.symbol] = {"kind": "exit", "reason": decision["exit"]}
            else:
                pending[bar.symbol] = {"kind": "entry", **decision}
    return trades


def key(trades) -> list[tuple]:
    """Engine trades and reference trades, comparable: symbol, times, prices to the cent, reason."""
    out = []
    for t in trades:
        reason = getattr(t, "exit_reason", None) or getattr(t, "reason", "")
        out.append((t.symbol, t.entry_time, round(float(t.entry_price), 2), t.exit_time,
                    round(float(t.exit_price), 2), reason))
    return sorted(out)
