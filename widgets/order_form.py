"""The order ticket: symbol, side, qty, type, limit/stop price, stop-loss and take-profit.

It opens pre-filled from the engine (`Engine.ticket`): the qty that risks RISK_PER_TRADE_PCT of
equity to the strategy's stop, and the strategy's bracket around the entry, each editable. It is
validated as you type (the form's rules, then the bracket's side and a fat-finger check against
the last price), shows what the order risks in $ and % of equity, and previews the engine's risk
checks. Bad input shows an inline error and sends nothing: it only ever returns a well-formed
OrderIntent. Market, limit and stop entries follow one bracket rule: the stop-loss and
take-profit on the ticket go with the order; left empty, the engine adds the strategy's."""

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
from textual.widget import Widget
from textual.widgets import Button, Footer, Input, Label, Select, Static

from daytrader.models import OrderIntent, RiskDecision, Side, to_price
from daytrader.order_input import MAX_QTY, OrderInputError, check_order, parse_price
from daytrader.snapshot import TicketDefaults
from widgets.formatting import money
from widgets.inputs import FieldInput

FIELDS = ("symbol", "side", "qty", "type", "price", "stop", "target")
# The shared rules' field names -> this form's fields (one Price box for limit and stop).
_FORM_FIELD = {"limit_price": "price", "stop_price": "price", "stop_loss": "stop",
               "take_profit": "target"}
__all__ = ["MAX_QTY", "OrderDraft", "OrderForm", "ParsedOrder", "parse_order", "parse_ticket",
           "preview_text", "risk_text"]
# A limit or stop price, stop-loss or take-profit this far from the last price (or the entry) is
# taken for a typo, not an order: 10% is beyond any intraday bracket the strategy sets.
FAT_FINGER_PCT = Decimal(10)


@dataclass(frozen=True, slots=True)
class OrderDraft:
    """What is in the form's fields, as typed."""

    symbol: str = ""
    side: str = "buy"
    qty: str = ""
    order_type: str = "market"
    price: str = ""
    stop_loss: str = ""
    take_profit: str = ""


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
    is the limit or the stop price, by type; the stop-loss and take-profit fields are the
    bracket's legs; errors are reported under the form's field names."""
    values = {"symbol": draft.symbol, "side": draft.side, "qty": draft.qty,
              "type": draft.order_type}
    if draft.price.strip():
        values["stop_price" if draft.order_type == "stop" else "limit_price"] = draft.price
    if draft.stop_loss.strip():
        values["stop_loss"] = draft.stop_loss
    if draft.take_profit.strip():
        values["take_profit"] = draft.take_profit
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


def preview_text(decision: RiskDecision, compact: bool = False) -> str:
    """Each check with its value against its limit; `compact` (a short terminal): one line, the
    verdict and the check that refuses."""
    if compact:
        failed = decision.failed
        if failed is None:
            return f"✓ all {len(decision.checks)} risk checks pass: would be SENT"
        return f"✗ would be REFUSED by {failed.name}: {failed.reason}"
    lines = ["Risk checks for this order:"]
    width = max(len(c.name) for c in decision.checks)
    for c in decision.checks:
        mark = "✓" if c.passed else "✗"
        detail = f"{c.value} / {c.limit}" if c.passed else c.reason
        lines.append(f" {mark} {c.name:<{width}}  {detail}")
    lines.append("would be SENT" if decision.approved
                 else f"would be REFUSED by {decision.failed.name}" if decision.failed else "")
    return "\n".join(lines)


def _away(level: Decimal, ref: Decimal) -> Decimal:
    """How far `level` is from `ref`, in percent of `ref` (positive above, negative below)."""
    return (level / ref - 1) * 100


def parse_ticket(draft: OrderDraft, symbols: Collection[str], buying_power: Decimal,
                 last_prices: Mapping[str, float], held: Mapping[str, int]) -> ParsedOrder:
    """The form's rules (`parse_order`), then the ticket's: the stop-loss below and the
    take-profit above a buy's entry (the other way round for a sell), none on an order that
    reduces a position, and no price more than FAT_FINGER_PCT from the last price or the entry
    (a typed 1900 for 190)."""
    base = parse_order(draft, symbols, buying_power, last_prices)
    intent = base.intent
    if intent is None:
        return base
    errors: dict[str, str] = {}
    stop, take = intent.stop_loss, intent.take_profit
    last = to_price(last_prices[intent.symbol]) if intent.symbol in last_prices else None
    level = intent.limit_price or intent.stop_price
    kind = "limit" if intent.limit_price is not None else "stop"
    if level is not None and last is not None and abs(_away(level, last)) > FAT_FINGER_PCT:
        away = _away(level, last)
        errors["price"] = (f"{kind} {level} is {abs(away):.1f}% {'above' if away > 0 else 'below'}"
                           f" the last price {last}: a typo? (more than {FAT_FINGER_PCT}% away)")
    entry = level or last
    reduces = held.get(intent.symbol, 0) * intent.side.sign < 0
    if reduces and (stop is not None or take is not None):
        errors["stop" if stop is not None else "target"] = (
            f"this {intent.side} reduces the {held[intent.symbol]:+d} {intent.symbol} held: a "
            "closing order takes no stop-loss or take-profit; clear them")
    elif entry is not None:
        loses = "below" if intent.side is Side.BUY else "above"
        wins = "above" if intent.side is Side.BUY else "below"
        for name, leg, side_word, right in (
                ("stop", stop, loses, lambda x: (x - entry) * intent.side.sign < 0),
                ("target", take, wins, lambda x: (x - entry) * intent.side.sign > 0)):
            title = "stop-loss" if name == "stop" else "take-profit"
            if leg is None or name in errors:
                continue
            if not right(leg):
                errors[name] = (f"{title} {leg} must be {side_word} the entry {entry} of a "
                                f"{intent.side}")
            elif abs(_away(leg, entry)) > FAT_FINGER_PCT:
                errors[name] = (f"{title} {leg} is {abs(_away(leg, entry)):.1f}% from the entry "
                                f"{entry}: a typo? (more than {FAT_FINGER_PCT}% away)")
    if errors:
        return ParsedOrder(None, {k: errors[k] for k in FIELDS if k in errors})
    return base


def risk_text(intent: OrderIntent, defaults: TicketDefaults | None,
              last: Decimal | None) -> tuple[str, str]:
    """What the order puts at risk if its stop fills: $ and % of equity, the reward to its
    target in R, and its value. With both legs empty, the strategy's bracket (which the engine
    adds) is what counts. Returns the text and a tone."""
    entry = intent.limit_price or intent.stop_price or last
    if entry is None:
        return "no price yet for this symbol: its risk is not known", "warning"
    notional = entry * intent.qty
    stop, take = intent.stop_loss, intent.take_profit
    added = ""
    if stop is None and take is None and defaults is not None \
            and defaults.symbol == intent.symbol and defaults.side is intent.side \
            and defaults.stop_loss is not None and defaults.position_qty * intent.side.sign >= 0:
        stop, take, added = defaults.stop_loss, defaults.take_profit, " (the strategy's bracket)"
    if defaults is not None and defaults.position_qty * intent.side.sign < 0 \
            and defaults.symbol == intent.symbol:
        return (f"reduces the {defaults.position_qty:+d} held · value {money(notional)}",
                "muted")
    if stop is None:
        return (f"NO STOP-LOSS: the loss has no floor · value {money(notional)}", "negative")
    risk = abs(entry - stop) * intent.qty
    equity = defaults.equity if defaults is not None and defaults.equity > 0 else None
    share = f" ({risk / equity * 100:.2f}% of equity)" if equity else ""
    reward = ""
    if take is not None and entry != stop:
        r = abs(take - entry) / abs(entry - stop)
        reward = f" · reward {money(abs(take - entry) * intent.qty)} ({r:.1f}R)"
    limit = defaults.risk_per_trade_pct if defaults is not None else None
    over = limit is not None and equity and risk / equity * 100 > Decimal(str(limit))
    return (f"risk {money(risk)}{share} to the stop{added}{reward} · value {money(notional)}",
            "warning" if over else "positive")


class OrderForm(ModalScreen[OrderIntent | None]):
    """The order ticket. Returns the intent on submit (Enter or ctrl+s) when the input is valid;
    None on Esc. `suggest` asks the engine for the size and bracket of another symbol, side or
    price (`Engine.ticket`)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Submit"),
        # Priority: Tab moves the focus as the key is read, before the keys typed after it are
        # handed to a field. Otherwise Tab Tab 25 typed ahead puts 25 in the field Tab left.
        Binding("tab", "app.focus_next", "Next field", show=False, priority=True),
        Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True),
    ]
    # The fields the ticket fills from the engine until the trader types in them.
    SUGGESTED = ("qty", "stop", "target")
    # The same keys give the same order whatever is pre-filled: focus starts in the first field,
    # the symbol, empty or with its text selected (an Input selects on focus: typing replaces
    # it); the fields after it are the engine's to fill until typed in. Set as the screen's
    # auto focus, which happens as it is composed: a focus() call would land after keys typed
    # meanwhile and pull the cursor back.
    AUTO_FOCUS = "#order-symbol"

    class PreviewReady(Message):
        def __init__(self, draft: OrderDraft, decision: RiskDecision | None, error: str = "") -> None:
            super().__init__()
            self.draft = draft
            self.decision = decision
            self.error = error

    class DefaultsReady(Message):
        def __init__(self, defaults: TicketDefaults) -> None:
            super().__init__()
            self.defaults = defaults

    def __init__(self, symbols: Collection[str], buying_power: Callable[[], Decimal],
                 last_prices: Callable[[], Mapping[str, float]],
                 preview: Callable[[OrderIntent], RiskDecision] | None = None,
                 symbol: str = "", side: str = "buy", *,
                 defaults: TicketDefaults | None = None,
                 suggest: Callable[[str, Side, Decimal | None], TicketDefaults] | None = None,
                 held: Callable[[], Mapping[str, int]] | None = None) -> None:
        super().__init__(id="order-form")
        self.symbols = tuple(symbols)
        self._buying_power = buying_power
        self._last_prices = last_prices
        self._preview = preview
        self._suggest = suggest
        self._held = held or (lambda: {})
        self.initial_symbol = symbol
        self.initial_side = side
        self.defaults = defaults
        self.edited: set[str] = set()  # fields the trader typed in: never overwritten
        self._filled: dict[str, str] = {}  # what the ticket itself last wrote in each field
        self.parsed = ParsedOrder(None, {"qty": "qty is required"})

    def compose(self) -> ComposeResult:
        d = self.defaults if self.defaults is not None and \
            self.defaults.symbol == self.initial_symbol.upper() else None
        self._filled = {"qty": str(d.qty) if d and d.qty else "",
                        "stop": str(d.stop_loss) if d and d.stop_loss else "",
                        "target": str(d.take_profit) if d and d.take_profit else ""}
        with Vertical(classes="modal-box"):
            yield Label("Order ticket", classes="modal-title")
            with Grid(id="order-fields"):
                yield Label("Symbol")
                yield FieldInput(self.initial_symbol, placeholder=", ".join(self.symbols),
                                 id="order-symbol")
                yield Label("Side")
                yield Select([("buy", "buy"), ("sell", "sell")], value=self.initial_side,
                             allow_blank=False, id="order-side")
                yield Label("Qty")
                yield FieldInput(self._filled["qty"], placeholder="whole shares", id="order-qty")
                yield Label("Type")
                yield Select([("market", "market"), ("limit", "limit"), ("stop", "stop")],
                             value="market", allow_blank=False, id="order-type")
                yield Label("Price")
                yield FieldInput(placeholder="limit / stop price", id="order-price")
                yield Static(classes="grid-blank")
                yield Static(classes="grid-blank")
                yield Label("Stop-loss")
                yield FieldInput(self._filled["stop"], placeholder="protective stop",
                                 id="order-stop")
                yield Label("Target")
                yield FieldInput(self._filled["target"], placeholder="take-profit",
                                 id="order-target")
            yield Static("", id="order-basis", markup=False)
            yield Static("", id="order-risk", markup=False)
            yield Static("", id="form-error", classes="form-error", markup=False)
            yield Static("Risk checks appear here once the order is valid.", id="order-preview",
                         markup=False)
            with Horizontal(classes="modal-buttons"):
                yield Button("Submit (Enter / ctrl+s)", id="submit", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._show_basis()
        self.validate()
        # The market moves while the ticket is open: its risk and checks follow the last price.
        self._seen_last: float | None = None
        self.set_interval(1.0, self._market_moved, name="ticket prices")
        if self.initial_symbol:
            self._ask_for_defaults()

    def watch_focused(self, focused: Widget | None) -> None:
        """A field's text is selected the moment it gets focus, so the next key typed replaces
        it. Input selects on its Focus event, which is handled after keys already queued: typed
        ahead (Tab Tab 25), the 25 would be added to the old text instead."""
        if isinstance(focused, Input) and focused.select_on_focus:
            focused.select_all()

    def _market_moved(self) -> None:
        last = self._last_prices().get(self.draft().symbol.strip().upper())
        if last != self._seen_last:
            self._seen_last = last
            self.validate()

    def draft(self) -> OrderDraft:
        return OrderDraft(
            symbol=self.query_one("#order-symbol", Input).value,
            side=str(self.query_one("#order-side", Select).value),
            qty=self.query_one("#order-qty", Input).value,
            order_type=str(self.query_one("#order-type", Select).value),
            price=self.query_one("#order-price", Input).value,
            stop_loss=self.query_one("#order-stop", Input).value,
            take_profit=self.query_one("#order-target", Input).value,
        )

    def validate(self) -> ParsedOrder:
        draft = self.draft()
        self.parsed = parse_ticket(draft, self.symbols, self._buying_power(), self._last_prices(),
                                   self._held())
        for name in FIELDS:
            self.query_one(f"#order-{name}").set_class(name in self.parsed.errors, "-invalid")
        self.query_one("#form-error", Static).update(self.parsed.first_error)
        self.query_one("#submit", Button).disabled = not self.parsed.ok
        preview = self.query_one("#order-preview", Static)
        risk = self.query_one("#order-risk", Static)
        if self.parsed.intent is not None:
            symbol = self.parsed.intent.symbol
            last = self._last_prices().get(symbol)
            text, tone = risk_text(self.parsed.intent, self.defaults,
                                   to_price(last) if last is not None else None)
            risk.update(text)
            risk.set_classes(f"-{tone}")
            if self._preview is not None:
                self.run_preview(draft, self.parsed.intent)
        else:
            risk.update("")
            preview.update("Risk checks appear here once the order is valid.")
            preview.set_classes("")
        return self.parsed

    def _show_basis(self) -> None:
        """Where the pre-filled figures come from, in one line."""
        d = self.defaults
        basis = self.query_one("#order-basis", Static)
        if d is None or d.symbol != self.draft().symbol.strip().upper():
            basis.update("")
            return
        last = f"{d.symbol} last {d.last}" if d.last is not None else f"{d.symbol}: no price yet"
        if d.position_qty * Side(self.draft().side).sign < 0:
            basis.update(f"{last} · holding {d.position_qty:+d}: this {self.draft().side} "
                         "reduces it (no bracket)")
        elif d.stop_loss is not None:
            basis.update(f"{last} · stop {d.stop_loss} and target {d.take_profit} from the "
                         f"strategy · qty {d.qty} sized as its entries are (at most "
                         f"{d.risk_per_trade_pct:g}% of equity to the stop)")
        else:
            basis.update(f"{last} · no bracket from the strategy yet (it is warming up)")

    # -- engine suggestions ------------------------------------------------------------------------
    def _ask_for_defaults(self) -> None:
        if self._suggest is None:
            return
        draft = self.draft()
        symbol = draft.symbol.strip().upper()
        if symbol not in self.symbols:
            return
        try:
            price = parse_price(draft.price, "price") if draft.order_type != "market" else None
        except OrderInputError:
            price = None  # the form says what is wrong with it; the bracket waits for a price
        self.fetch_defaults(symbol, Side(draft.side), price)

    @work(thread=True, exclusive=True, exit_on_error=False, group="order-defaults")
    def fetch_defaults(self, symbol: str, side: Side, price: Decimal | None) -> None:
        assert self._suggest is not None
        try:
            defaults = self._suggest(symbol, side, price)
        except Exception:  # the engine may be down: the ticket keeps what it has
            return
        self.post_message(self.DefaultsReady(defaults))

    @on(DefaultsReady)
    def _apply_defaults(self, message: DefaultsReady) -> None:
        d = message.defaults
        draft = self.draft()
        if d.symbol != draft.symbol.strip().upper() or d.side.value != draft.side:
            return  # typed on since: another answer is on its way
        self.defaults = d
        values = {"qty": str(d.qty) if d.qty else "",
                  "stop": str(d.stop_loss) if d.stop_loss is not None else "",
                  "target": str(d.take_profit) if d.take_profit is not None else ""}
        for name, value in values.items():
            if name not in self.edited:
                self._filled[name] = value
                self.query_one(f"#order-{name}", Input).value = value
        self._show_basis()
        self.validate()

    # -- preview -----------------------------------------------------------------------------------
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
        preview.update(preview_text(message.decision, compact=self.app.size.height < 32))
        preview.set_classes("-approved" if message.decision.approved else "-refused")

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("order-")
        # Changed arrives after the fact: a value the ticket wrote itself is not an edit.
        if name in self.SUGGESTED and event.value != self._filled.get(name):
            self.edited.add(name)
        if name in ("symbol", "price"):
            self._ask_for_defaults()
        self._show_basis()
        self.validate()

    @on(Select.Changed)
    def _chose(self) -> None:
        self._ask_for_defaults()
        self._show_basis()
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
