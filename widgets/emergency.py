"""Emergency stop modal: trading is already disabled when it shows; `f` flattens everything."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, Static

from daytrader.wording import plural


def _all(count: int, noun: str) -> str:
    """ "the 1 position", "all 3 positions" """
    return f"the {plural(count, noun)}" if count == 1 else f"all {plural(count, noun)}"


def emergency_text(positions: int, open_orders: int) -> str:
    steps = ([f"cancels {_all(open_orders, 'open order')}"] if open_orders else []) + (
        [f"closes {_all(positions, 'position')} at market"] if positions else [])
    if steps:
        flatten = (f"Flatten now? This {' and '.join(steps)}, then checks that the account is "
                   "flat.")
    else:  # what the console knows is empty; the broker is still asked, in case it holds more
        flatten = ("No open order or position is known here. Flatten anyway? The broker is "
                   "asked to cancel and close everything, then the account is checked flat.")
    return (f"Trading is DISABLED: no new orders will be sent.\n\n{flatten}\n\n"
            "f: flatten everything      Esc: keep positions (trading stays disabled)")


class EmergencyModal(ModalScreen[bool]):
    """Dismissed with True to flatten; the stop's first step (disable) has already happened."""

    BINDINGS = [
        Binding("f", "flatten", "Flatten all"),
        Binding("escape", "keep", "Keep positions"),
        Binding("n", "keep", "Keep positions", show=False),
    ]

    def __init__(self, positions: int, open_orders: int) -> None:
        super().__init__(id="emergency-modal")
        self.positions = positions
        self.open_orders = open_orders

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box -danger"):
            yield Label("EMERGENCY STOP", classes="modal-title", markup=False)
            yield Static(emergency_text(self.positions, self.open_orders), classes="modal-body",
                         markup=False)
            with Horizontal(classes="modal-buttons"):
                yield Button("Flatten all (f)", id="flatten", variant="error")
                yield Button("Keep positions (Esc)", id="keep")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    def action_flatten(self) -> None:
        self.dismiss(True)

    def action_keep(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#flatten")
    def _flatten(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#keep")
    def _keep(self) -> None:
        self.dismiss(False)
