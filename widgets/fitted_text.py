"""A line of text that drops words rather than figures: it shows, for each of its lines, the
longest of the forms given that fits its width, and chooses again when its width changes."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from textual.widgets import Static

from widgets.formatting import show_text


def fitted(forms: Sequence[str], width: int | None) -> str:
    """The first (longest) of `forms` that fits in `width` cells; the last when none does."""
    return next((f for f in forms if width is None or cell_len(f) <= width), forms[-1])


class FittedText(Static):
    """`show([forms of line 1], [forms of line 2], ...)`, each line's forms longest first."""

    def __init__(self, content: str = "", **kwargs) -> None:
        super().__init__(content, **kwargs)
        self.lines: tuple[tuple[str, ...], ...] = ()

    def show(self, *lines: Sequence[str]) -> None:
        self.lines = tuple(tuple(forms) for forms in lines)
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        if self.lines:
            width = self.content_size.width or None
            show_text(self, "\n".join(fitted(forms, width) for forms in self.lines))
