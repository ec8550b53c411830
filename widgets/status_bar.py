"""Status bar: mode badge, market state and countdown, trading state, component health, clock."""

from __future__ import annotations

import re
from datetime import datetime

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from daytrader.clock import EXCHANGE_TZ
from daytrader.engine import EngineSnapshot
from daytrader.models import TradingState
from widgets.formatting import seconds_ago, show_text

STALE_SECONDS = 10.0
_MARKET = re.compile(r"^(?P<state>.+?), (?P<verb>closes|opens) (?P<when>.+?) ET"
                     r"(?P<early> \(early close\))? in (?P<left>\S+)$")


def market_text(described: str) -> str:
    """The calendar's "open, closes 16:00 ET in 2h05m" with the countdown first, so a narrow
    terminal cuts the least useful part: "open · closes in 2h05m (16:00)"."""
    m = _MARKET.match(described)
    if m is None:
        return described
    early = ", early close" if m["early"] else ""
    return f"{m['state']} · {m['verb']} in {m['left']} ({m['when']}{early})"


def _set(widget: Static, text: str) -> None:
    show_text(widget, text)


class StatusBar(Horizontal):
    """One line across the top; LIVE is red and reversed, so it cannot be mistaken for SIM."""

    def compose(self) -> ComposeResult:
        yield Static("SIM", id="mode-badge", markup=False)
        yield Static("STARTING", id="trading-state", markup=False)
        yield Static("engine starting…", id="market", markup=False)
        yield Static("", id="engine-error", markup=False)
        yield Static("", id="health", markup=False)
        yield Static("--:--:-- ET", id="clock", markup=False)

    def show(self, snapshot: EngineSnapshot, wall_now: datetime, error: BaseException | None) -> None:
        badge = self.query_one("#mode-badge", Static)
        mode = snapshot.mode.lower()
        _set(badge, f"‼ {mode.upper()} ‼" if mode == "live" else mode.upper())
        for name in ("sim", "paper", "live", "backtest"):
            badge.set_class(mode == name, f"-{name}")
        state = self.query_one("#trading-state", Static)
        label = {TradingState.ENABLED: "ENABLED", TradingState.DISABLED: "DISABLED",
                 TradingState.HALTED: "HALTED (breaker)"}[snapshot.state]
        _set(state, label)
        for value in TradingState:
            state.set_class(snapshot.state is value, f"-{value.value.lower()}")
        market = self.query_one("#market", Static)
        _set(market, market_text(snapshot.market_state))
        market.set_class(snapshot.market_open, "-open")
        error_label = self.query_one("#engine-error", Static)
        _set(error_label, f"ENGINE ERROR: {error!r}" if error is not None else "")
        error_label.display = error is not None
        parts = []
        stale = False
        for h in snapshot.health:
            mark = "✓" if h.ok else "✗"
            seen = f" {seconds_ago(h.last_seen, wall_now)}" if h.last_seen is not None else ""
            if h.last_seen is not None and (wall_now - h.last_seen).total_seconds() > STALE_SECONDS:
                stale = True
            stale = stale or not h.ok
            parts.append(f"{h.name} {mark}{seen}")
        health = self.query_one("#health", Static)
        _set(health, " ".join(parts))
        health.set_class(stale, "-stale")
        _set(self.query_one("#clock", Static), f"{snapshot.ts.astimezone(EXCHANGE_TZ):%H:%M:%S} ET")

    def show_error(self, error: BaseException | str) -> None:
        label = self.query_one("#engine-error", Static)
        _set(label, f"ENGINE ERROR: {error}")
        label.display = True
