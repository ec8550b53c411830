"""How the panes write money, prices, percents and ages: one place, so every pane agrees."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from textual.widgets import Static

from daytrader.clock import format_duration
from daytrader.wording import money  # noqa: F401  (the panes' money, the same as the log's)


def show_text(widget: Static, text: str) -> None:
    """Updates a Static only when its text changed, and asks for a layout only when its length
    changed (a layout pass per snapshot would cost more than the whole update)."""
    old = str(widget.content)
    if old != text:
        widget.update(text, layout=len(old) != len(text))


def price(value: Decimal | float | None) -> str:
    if value is None:
        return "-"
    v = float(value)
    return f"{v:,.4f}" if 0 < v < 1 else f"{v:,.2f}"


def compact_number(value: float) -> str:
    """A volume in at most six characters: 950, 12.3K, 4.56M, 1.2B."""
    v = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if v >= limit:
            scaled = value / limit
            return f"{scaled:.{2 if abs(scaled) < 10 else 1 if abs(scaled) < 100 else 0}f}{suffix}"
    return f"{value:.0f}"


def pct(value: float, signed: bool = True) -> str:
    return f"{value:+.2f}%" if signed else f"{value:.2f}%"


def tone(value: Decimal | float) -> str:
    """The tone a number is shown in: styles.tcss colours it."""
    return "positive" if value > 0 else "negative" if value < 0 else "muted"


def age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "-"
    return format_duration(max(timedelta(0), now - since))


def seconds_ago(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "never"
    seconds = max(0.0, (now - since).total_seconds())
    if seconds < 60:
        return f"{seconds:.0f}s"
    return format_duration(timedelta(seconds=seconds))
