"""Help screen (`?`): every key of the console, from the same bindings the footer shows."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Static


def help_text(sections: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> str:
    lines: list[str] = []
    for title, keys in sections:
        if lines:
            lines.append("")
        lines.append(title)
        width = max((len(k) for k, _ in keys), default=0)
        lines.extend(f"  {key:<{width}}  {what}" for key, what in keys)
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", key_display="?"),
        Binding("q", "close", "Close", show=False),
    ]

    def __init__(self, sections: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> None:
        super().__init__(id="help")
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Label("DayTrader keys", classes="modal-title")
            with VerticalScroll(id="help-keys"):
                yield Static(help_text(self.sections), markup=False)
            yield Static("Esc or ? closes · every key is also in the command palette (ctrl+p)",
                         classes="modal-hint", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def action_close(self) -> None:
        self.dismiss(None)
