"""An error the user must see: an engine crash or a failed start; trading is disabled."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Static


class ErrorModal(ModalScreen[None]):
    BINDINGS = [Binding("escape", "close", "Close"), Binding("enter", "close", "Close")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__(id="error-modal")
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box -error"):
            yield Label(self.title_text, classes="modal-title", markup=False)
            yield Static(self.message, classes="modal-body", markup=False)
            yield Static("Enter or Esc to close; the event log keeps the details.",
                         classes="modal-hint", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def action_close(self) -> None:
        self.dismiss(None)
