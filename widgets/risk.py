"""Risk pane: the six pre-trade checks, each value against its limit; the daily-loss gauge."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from daytrader.engine import EngineSnapshot
from daytrader.models import CheckResult, TradingState
from widgets.formatting import money, show_text
from widgets.live_table import Column, LiveTable, Row

RISK_COLUMNS = (
    Column("mark", "", 1),
    Column("check", "Check", 15),
    Column("value", "Now", 12, "right"),  # "$100,108.24" in full
    Column("limit", "Limit", 10, "right"),
    Column("rejected", "Rej", 3, "right"),
)
TITLES = {"trading_enabled": "Trading enabled", "circuit_breaker": "Circuit breaker",
          "market_open": "Market open", "max_positions": "Max positions",
          "risk_per_trade": "Risk per trade", "buying_power": "Buying power"}
GAUGE_WIDTH = 20


def _amount(text: str) -> Decimal | None:
    try:
        return Decimal(text.split(" ")[0].lstrip("$").replace(",", ""))
    except (InvalidOperation, IndexError):
        return None


def risk_rows(snapshot: EngineSnapshot) -> list[Row]:
    """Each check as the console shows it. The engine's checks of a zero-size probe order give the
    state checks; for the two order-size checks the pane shows what is at stake now instead: the
    largest open risk to its stop, and the buying power left."""
    checks: dict[str, CheckResult] = {c.name: c for c in snapshot.risk}
    rows: list[Row] = []
    for name, title in TITLES.items():
        check = checks.get(name)
        if check is None:
            continue
        value, limit, passed = check.value, check.limit, check.passed
        if name == "trading_enabled":
            # Only ENABLED opens positions: halted by the breaker or stopped is not a pass.
            value = ("e-stop" if snapshot.emergency_stop and snapshot.state is not
                     TradingState.ENABLED else snapshot.state.value.lower())
            passed = snapshot.state is TradingState.ENABLED
        elif name == "circuit_breaker":
            value = "TRIPPED" if snapshot.breaker_tripped else f"{snapshot.daily_loss_pct:.2f}%"
        elif name == "risk_per_trade":
            risks = [abs(p.avg_entry_price - p.stop_loss) * abs(p.qty)
                     for p in snapshot.positions if p.stop_loss is not None]
            worst = max(risks, default=Decimal(0))
            allowed = _amount(check.limit)
            value, limit = money(worst), money(allowed) if allowed is not None else check.limit
            passed = allowed is None or worst <= allowed
        elif name == "buying_power":
            value, limit = money(snapshot.account.buying_power), "order cost"
            passed = snapshot.account.buying_power > 0
        rejected = snapshot.rejections_by_check.get(name, 0)
        rows.append((name, (("✓", "positive") if passed else ("✗", "negative"), title,
                            value if passed else (value, "negative"), limit,
                            (str(rejected), "warning") if rejected else ("0", "muted"))))
    return rows


def gauge(loss_pct: float, limit_pct: float, width: int = GAUGE_WIDTH) -> str:
    """The day's loss against the breaker's limit; the figures come first so that a narrow pane
    cuts the bar, never the limit."""
    filled = 0 if limit_pct <= 0 else round(min(1.0, loss_pct / limit_pct) * width)
    return f"Loss {loss_pct:.2f}% of {limit_pct:.2f}% {'█' * filled}{'░' * (width - filled)}"


class RiskPane(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Risk"

    def compose(self) -> ComposeResult:
        table = LiveTable(RISK_COLUMNS, id="risk-table")
        table.can_focus = False
        yield table
        yield Static(gauge(0.0, 5.0), id="loss-gauge", markup=False)

    def show(self, snapshot: EngineSnapshot) -> None:
        self.query_one("#risk-table", LiveTable).set_rows(risk_rows(snapshot))
        text = gauge(snapshot.daily_loss_pct, snapshot.max_daily_loss_pct)
        widget = self.query_one("#loss-gauge", Static)
        show_text(widget, text)
        share = snapshot.daily_loss_pct / snapshot.max_daily_loss_pct if snapshot.max_daily_loss_pct else 0
        widget.set_class(snapshot.breaker_tripped, "-tripped")
        widget.set_class(not snapshot.breaker_tripped and share >= 0.5, "-warning")
        checks = {c.name: c for c in snapshot.risk}
        slots = checks.get("max_positions")
        used = f"positions {slots.value} of {slots.limit}" if slots else ""
        if self.border_subtitle != used:
            self.border_subtitle = used
