"""Reset the circuit breaker: a typed confirmation, so it is never done by a stray key."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, Static

from widgets.inputs import FieldInput

CONFIRM_WORD = "RESET"


class ResetBreakerModal(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, loss_pct: float, limit_pct: float) -> None:
        super().__init__(id="reset-breaker")
        self.loss_pct = loss_pct
        self.limit_pct = limit_pct

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box -danger"):
            yield Label("Reset the circuit breaker", classes="modal-title", markup=False)
            yield Static(f"Daily loss {self.loss_pct:.2f}% reached the {self.limit_pct:.2f}% limit "
                         "and new entries are halted. A reset measures the loss again from the "
                         "equity now.\n\nType RESET and press Enter to reset; Esc cancels.",
                         classes="modal-body", markup=False)
            yield FieldInput(placeholder=CONFIRM_WORD, id="reset-word")
            yield Static("", id="reset-error", classes="form-error", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#reset-word", Input).focus()

    @on(Input.Submitted, "#reset-word")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == CONFIRM_WORD:
            self.dismiss(True)
        else:
            self.query_one("#reset-error", Static).update(
                f"type {CONFIRM_WORD} exactly to reset, or press Esc")

    def action_cancel(self) -> None:
        self.dismiss(False)
