"""Status bar: mode badge, trading state, market state and countdown, money left before the
circuit breaker, component health, and the exchange's date and time. On a terminal under 110
columns it takes a second line, which also carries the day's P&L (the account pane is then on
another tab)."""

from __future__ import annotations

import re
import time
from datetime import datetime

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from daytrader.clock import EXCHANGE_TZ
from daytrader.engine import EngineSnapshot
from daytrader.models import TradingState
from widgets.fitted_text import FittedText
from widgets.formatting import money, seconds_ago, show_text, tone

STALE_SECONDS = 10.0
# A state shown at the key press wins over snapshots taken before the engine acted on it, for
# at most this long (a command that failed shows the engine's state again after it).
EXPECT_SECONDS = 3.0
ROOMY_WIDTH = 120  # from here the date has its year and every component its age
_MARKET = re.compile(r"^(?P<state>.+?), (?P<verb>closes|opens) (?P<when>.+?) ET"
                     r"(?P<early> \(early close\))? in (?P<left>\S+)$")
STATE_LABELS = {TradingState.ENABLED: "ENABLED", TradingState.DISABLED: "DISABLED",
                TradingState.HALTED: "HALTED (breaker)"}
E_STOP = "E-STOP"
STATE_CLASSES = {"ENABLED": "-enabled", "DISABLED": "-disabled", "HALTED (breaker)": "-halted",
                 E_STOP: "-estop", "STARTING": ""}


def market_texts(described: str) -> tuple[str, ...]:
    """The calendar's "open, closes 16:00 ET in 2h05m" as the bar can show it, longest first:
    "open · closes in 2h05m (16:00)", "open · closes in 2h05m", "open · 2h05m", "2h05m"."""
    m = _MARKET.match(described)
    if m is None:
        return (described,)
    early = ", early close" if m["early"] else ""
    countdown = f"{m['state']} · {m['verb']} in {m['left']}"
    return (f"{countdown} ({m['when']}{early})", countdown, f"{m['state']} · {m['left']}",
            m["left"])


def state_label(snapshot: EngineSnapshot) -> str:
    """ENABLED, DISABLED, HALTED (breaker), or E-STOP from an emergency stop until enabled."""
    if snapshot.emergency_stop:
        return E_STOP
    return STATE_LABELS[snapshot.state]


def breaker_text(snapshot: EngineSnapshot) -> tuple[str, str]:
    """How much may still be lost today before the breaker trips, and its tone."""
    if snapshot.breaker_tripped:
        return "BREAKER TRIPPED", "negative"
    room = snapshot.loss_to_breaker
    if room is None:
        return "", ""
    used = (snapshot.daily_loss_pct / snapshot.max_daily_loss_pct
            if snapshot.max_daily_loss_pct else 0.0)
    return (f"breaker {money(room)} away",
            "negative" if used >= 0.8 else "warning" if used >= 0.5 else "muted")


def clock_text(snapshot: EngineSnapshot, wide: bool) -> str:
    """The exchange's date and time: a sim day rolls over in minutes, so the date is always on."""
    ts = snapshot.ts.astimezone(EXCHANGE_TZ)
    return f"{ts:%a %Y-%m-%d %H:%M:%S} ET" if wide else f"{ts:%a %m-%d %H:%M:%S}"


def _set(widget: Static, text: str) -> None:
    show_text(widget, text)


def _tone(widget: Static, value: str) -> None:
    for name in ("positive", "negative", "warning", "muted"):
        widget.set_class(value == name, f"-{name}")


class StatusBar(Vertical):
    """One line across the top (two on a cramped terminal); LIVE is red and reversed, so it
    cannot be mistaken for SIM; E-STOP is red and reversed until trading is enabled again."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._expected: tuple[str, float] | None = None  # a state shown at the key press

    def compose(self) -> ComposeResult:
        with Horizontal(classes="status-line"):
            yield Static("SIM", id="mode-badge", markup=False)
            yield Static("STARTING", id="trading-state", markup=False)
            yield FittedText("engine starting…", id="market", markup=False)
            yield Static("", id="engine-error", markup=False)
            yield Static("", classes="breaker-room -wide-only", markup=False)
            yield Static("", classes="health -wide-only", markup=False)
            yield Static("--:--:-- ET", id="clock", markup=False)
        with Horizontal(classes="status-line -cramped-only"):
            yield Static("", id="account-line", markup=False)
            yield Static("", classes="breaker-room", markup=False)
            yield Static("", classes="health", markup=False)

    def expect(self, label: str) -> None:
        """Shows a state at once, on the key press, before the engine's next snapshot says so."""
        self._expected = (label, time.monotonic())
        self._show_state(label)

    def _show_state(self, label: str) -> None:
        state = self.query_one("#trading-state", Static)
        _set(state, label)
        for name, css in STATE_CLASSES.items():
            if css:
                state.set_class(label == name, css)

    def show(self, snapshot: EngineSnapshot, wall_now: datetime, error: BaseException | None) -> None:
        badge = self.query_one("#mode-badge", Static)
        mode = snapshot.mode.lower()
        _set(badge, f"‼ {mode.upper()} ‼" if mode == "live" else mode.upper())
        for name in ("sim", "paper", "live", "backtest"):
            badge.set_class(mode == name, f"-{name}")
        label = state_label(snapshot)
        if self._expected is not None:
            expected, since = self._expected
            if label == expected or time.monotonic() - since > EXPECT_SECONDS:
                self._expected = None
            else:
                label = expected  # this snapshot was taken before the engine acted on the key
        self._show_state(label)
        market = self.query_one("#market", FittedText)
        market.show(market_texts(snapshot.market_state))
        market.set_class(snapshot.market_open, "-open")
        error_label = self.query_one("#engine-error", Static)
        _set(error_label, f"ENGINE ERROR: {error!r}" if error is not None else "")
        error_label.display = error is not None
        # Under 120 columns the one-line bar keeps the market countdown whole: the date drops
        # its year, and a component's age is shown only when it is stale.
        roomy = self.size.width >= ROOMY_WIDTH or self.size.width == 0
        parts, brief = [], []
        stale = False
        for h in snapshot.health:
            mark = "✓" if h.ok else "✗"
            seen = f" {seconds_ago(h.last_seen, wall_now)}" if h.last_seen is not None else ""
            late = h.last_seen is not None and \
                (wall_now - h.last_seen).total_seconds() > STALE_SECONDS
            stale = stale or late or not h.ok
            parts.append(f"{h.name} {mark}{seen}")
            brief.append(f"{h.name} {mark}{seen if late else ''}")
        for health in self.query(".health").results(Static):
            short = not roomy and health.has_class("-wide-only")
            _set(health, " ".join(brief if short else parts))
            health.set_class(stale, "-stale")
        room, room_tone = breaker_text(snapshot)
        for widget in self.query(".breaker-room").results(Static):
            _set(widget, room)
            _tone(widget, room_tone)
        a = snapshot.account
        account = self.query_one("#account-line", Static)
        _set(account, f"Day {money(a.day_pnl, signed=True)} ({a.day_pnl_pct:+.2f}%)")
        _tone(account, tone(a.day_pnl))
        _set(self.query_one("#clock", Static), clock_text(snapshot, roomy))

    def show_error(self, error: BaseException | str) -> None:
        label = self.query_one("#engine-error", Static)
        _set(label, f"ENGINE ERROR: {error}")
        label.display = True
