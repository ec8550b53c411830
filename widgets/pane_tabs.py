"""Pane tabs: one line naming every pane with its number key, the one on screen marked. Shown
when the terminal is too small for all panes at once (or a pane is maximised with `z`)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static


class PaneTabs(Static):
    """`1 Watchlist  2 Positions ...`: the number selects the pane (the app binds the keys)."""

    COMPONENT_CLASSES = {"pane-tabs--active", "pane-tabs--key"}

    def __init__(self, panes: Sequence[tuple[str, str]], *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.panes = tuple(panes)  # (pane id, title)
        self.active = self.panes[0][0] if self.panes else ""

    def on_mount(self) -> None:
        self._draw()

    def set_active(self, pane: str) -> None:
        if pane != self.active:
            self.active = pane
            self._draw()

    def _draw(self) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        active = self.get_component_rich_style("pane-tabs--active", partial=True)
        key = self.get_component_rich_style("pane-tabs--key", partial=True)
        for number, (pane, title) in enumerate(self.panes, start=1):
            text.append(" ")
            label = Text(f" {number} ", style=key) + Text(f"{title} ")
            if pane == self.active:
                label.stylize(active)
            text.append_text(label)
        text.append("  z: all panes / one", style="dim")
        self.update(text)
