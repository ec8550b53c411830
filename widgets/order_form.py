"""Order form: symbol, side, qty, type, limit/stop price; validated as you type, with a live
preview of the engine's risk checks for this order. Bad input shows an inline error and sends
nothing: the form only ever returns a well-formed OrderIntent."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from daytrader.models import OrderIntent, RiskDecision, Side, to_price
from daytrader.order_input import MAX_QTY, check_order
from widgets.formatting import money
from widgets.inputs import FieldInput

FIELDS = ("symbol", "side", "qty", "type", "price")
# The shared rules' field names -> this form's fields (one Price box for limit and stop).
_FORM_FIELD = {"limit_price": "price", "stop_price": "price"}
__all__ = ["MAX_QTY", "OrderDraft", "OrderForm", "ParsedOrder", "parse_order", "preview_text"]


@dataclass(frozen=True, slots=True)
class OrderDraft:
    """What is in the form's fields, as typed."""

    symbol: str = ""
    side: str = "buy"
    qty: str = ""
    order_type: str = "market"
    price: str = ""


@dataclass(frozen=True, slots=True)
class ParsedOrder:
    intent: OrderIntent | None
    errors: dict[str, str] = field(default_factory=dict)  # field -> message

    @property
    def ok(self) -> bool:
        return self.intent is not None

    @property
    def first_error(self) -> str:
        return next(iter(self.errors.values()), "")


def parse_order(draft: OrderDraft, symbols: Collection[str], buying_power: Decimal,
                last_prices: Mapping[str, float]) -> ParsedOrder:
    """The shared order input rules (`daytrader.order_input`, as the API and `ctl` use them) on
    the form's fields, plus the form's own: a buy must fit the buying power. The one Price field
    is the limit or the stop price, by type; errors are reported under the form's field names."""
    values = {"symbol": draft.symbol, "side": draft.side, "qty": draft.qty,
              "type": draft.order_type}
    if draft.price.strip():
        values["stop_price" if draft.order_type == "stop" else "limit_price"] = draft.price
    checked = check_order(values, symbols, reason="manual order", strategy="manual")
    errors = {_FORM_FIELD.get(name, name): message for name, message in checked.errors.items()}
    intent = checked.intent
    if intent is not None and intent.side is Side.BUY:
        level = intent.limit_price or intent.stop_price
        ref = level if level is not None else (
            to_price(last_prices[intent.symbol]) if intent.symbol in last_prices else None)
        if ref is not None and ref * intent.qty > buying_power:
            errors["qty"] = (f"{intent.qty} x {money(ref)} = {money(ref * intent.qty)} is over the "
                             f"buying power of {money(buying_power)}")
    if errors:
        return ParsedOrder(None, errors)
    return ParsedOrder(intent)


def preview_text(decision: RiskDecision) -> str:
    lines = ["Risk checks for this order:"]
    width = max(len(c.name) for c in decision.checks)
    for c in decision.checks:
        mark = "✓" if c.passed else "✗"
        detail = f"{c.value} / {c.limit}" if c.passed else c.reason
        lines.append(f" {mark} {c.name:<{width}}  {detail}")
    lines.append("would be SENT" if decision.approved
                 else f"would be REFUSED by {decision.failed.name}" if decision.failed else "")
    return "\n".join(lines)


class OrderForm(ModalScreen[OrderIntent | None]):
    """Returns the intent on submit (Enter or ctrl+s) when the input is valid; None on Esc."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Submit"),
    ]

    class PreviewReady(Message):
        def __init__(self, draft: OrderDraft, decision: RiskDecision | None, error: str = "") -> None:
            super().__init__()
            self.draft = draft
            self.decision = decision
            self.error = error

    def __init__(self, symbols: Collection[str], buying_power: Callable[[], Decimal],
                 last_prices: Callable[[], Mapping[str, float]],
                 preview: Callable[[OrderIntent], RiskDecision] | None = None,
                 symbol: str = "", side: str = "buy") -> None:
        super().__init__(id="order-form")
        self.symbols = tuple(symbols)
        self._buying_power = buying_power
        self._last_prices = last_prices
        self._preview = preview
        self.initial_symbol = symbol
        self.initial_side = side
        self.parsed = ParsedOrder(None, {"qty": "qty is required"})

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Label("New order", classes="modal-title")
            with Grid(id="order-fields"):
                yield Label("Symbol")
                yield FieldInput(self.initial_symbol, placeholder=", ".join(self.symbols),
                            id="order-symbol")
                yield Label("Side")
                yield Select([("buy", "buy"), ("sell", "sell")], value=self.initial_side,
                             allow_blank=False, id="order-side")
                yield Label("Qty")
                yield FieldInput(placeholder="whole shares", id="order-qty")
                yield Label("Type")
                yield Select([("market", "market"), ("limit", "limit"), ("stop", "stop")],
                             value="market", allow_blank=False, id="order-type")
                yield Label("Price")
                yield FieldInput(placeholder="limit or stop price (none for market)", id="order-price")
            yield Static("", id="form-error", classes="form-error", markup=False)
            yield Static("Risk checks appear here once the order is valid.", id="order-preview",
                         markup=False)
            with Horizontal(classes="modal-buttons"):
                yield Button("Submit (Enter / ctrl+s)", id="submit", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#order-qty" if self.initial_symbol else "#order-symbol", Input).focus()
        self.validate()

    def draft(self) -> OrderDraft:
        return OrderDraft(
            symbol=self.query_one("#order-symbol", Input).value,
            side=str(self.query_one("#order-side", Select).value),
            qty=self.query_one("#order-qty", Input).value,
            order_type=str(self.query_one("#order-type", Select).value),
            price=self.query_one("#order-price", Input).value,
        )

    def validate(self) -> ParsedOrder:
        draft = self.draft()
        self.parsed = parse_order(draft, self.symbols, self._buying_power(), self._last_prices())
        for name in FIELDS:
            self.query_one(f"#order-{name}").set_class(name in self.parsed.errors, "-invalid")
        self.query_one("#form-error", Static).update(self.parsed.first_error)
        self.query_one("#submit", Button).disabled = not self.parsed.ok
        preview = self.query_one("#order-preview", Static)
        if self.parsed.intent is not None and self._preview is not None:
            self.run_preview(draft, self.parsed.intent)
        else:
            preview.update("Risk checks appear here once the order is valid.")
            preview.set_classes("")
        return self.parsed

    @work(thread=True, exclusive=True, exit_on_error=False, group="order-preview")
    def run_preview(self, draft: OrderDraft, intent: OrderIntent) -> None:
        assert self._preview is not None
        try:
            decision = self._preview(intent)
        except Exception as exc:  # shown in the form; the engine may be down
            self.post_message(self.PreviewReady(draft, None, f"preview unavailable: {exc!r}"))
            return
        self.post_message(self.PreviewReady(draft, decision))

    @on(PreviewReady)
    def _show_preview(self, message: PreviewReady) -> None:
        if message.draft != self.draft():
            return  # typed on since: a newer preview is on its way
        preview = self.query_one("#order-preview", Static)
        if message.decision is None:
            preview.update(message.error)
            preview.set_classes("-refused")
            return
        preview.update(preview_text(message.decision))
        preview.set_classes("-approved" if message.decision.approved else "-refused")

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        self.validate()

    @on(Input.Submitted)
    def _enter(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#submit")
    def _submit_pressed(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        parsed = self.validate()
        if parsed.intent is None:
            self.query_one("#form-error", Static).update(parsed.first_error)
            self.app.bell()
            return
        self.dismiss(parsed.intent)

    def action_cancel(self) -> None:
        self.dismiss(None)
