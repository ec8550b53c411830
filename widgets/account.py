"""Account pane: equity, cash, buying power, day P&L in $ and %, start-of-day equity."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid
from textual.widgets import Label, Static

from daytrader.engine import EngineSnapshot
from widgets.formatting import money, show_text, tone

FIELDS = (("equity", "Equity"), ("cash", "Cash"), ("buying-power", "Buying power"),
          ("day-pnl", "Day P&L"), ("day-pnl-pct", "Day P&L %"), ("sod", "Start of day"))


class AccountPane(Grid):
    """Label/value pairs; the day's P&L is coloured by its sign in styles.tcss."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Account"

    def compose(self) -> ComposeResult:
        for key, label in FIELDS:
            yield Label(label, classes="field-label")
            yield Static("-", id=f"account-{key}", classes="field-value", markup=False)

    def show(self, snapshot: EngineSnapshot) -> None:
        a = snapshot.account
        values = {
            "equity": money(a.equity), "cash": money(a.cash),
            "buying-power": money(a.buying_power),
            "day-pnl": money(a.day_pnl, signed=True), "day-pnl-pct": f"{a.day_pnl_pct:+.2f}%",
            "sod": money(a.start_of_day_equity),
        }
        for key, text in values.items():
            widget = self.query_one(f"#account-{key}", Static)
            show_text(widget, text)
        for key in ("day-pnl", "day-pnl-pct"):
            widget = self.query_one(f"#account-{key}", Static)
            for name in ("positive", "negative", "muted"):
                widget.set_class(tone(a.day_pnl) == name, f"-{name}")
