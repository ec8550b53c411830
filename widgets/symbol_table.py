"""A live table whose rows are symbols (the watchlist, positions): Enter opens the symbol's
screen, and the app reads which symbol is highlighted."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message

from widgets.live_table import LiveTable


class SymbolTable(LiveTable):
    BINDINGS = [Binding("enter", "open_symbol", "Open symbol", show=False)]

    class OpenSymbol(Message):
        """Enter on a row: the app opens that symbol's screen."""

        def __init__(self, symbol: str) -> None:
            super().__init__()
            self.symbol = symbol

    @property
    def selected_symbol(self) -> str | None:
        return self.selected_key

    def action_open_symbol(self) -> None:
        if self.selected_key is not None:
            self.post_message(self.OpenSymbol(self.selected_key))
