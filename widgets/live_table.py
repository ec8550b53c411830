"""A keyed, row-cached table on Textual's Line API: an update repaints only the rows that changed.

Textual's DataTable repaints every visible cell on any change (about 0.3 ms a cell here), so a
200-row table updated naively costs 100-200 ms a frame. This table keeps one rendered Strip per
row key and, on `set_rows`, drops and repaints only the rows whose cells differ; the cursor stays
on the same key when rows are added, removed or reordered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

# A cell is its text, or its text and a tone ("positive", "negative", "muted", "warning") that
# styles.tcss colours through the table's component classes.
Cell = str | tuple[str, str]
Row = tuple[str, tuple[Cell, ...]]

TONES = ("positive", "negative", "muted", "warning")


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int
    align: str = "left"  # "left" or "right"


def _fit(text: str, width: int, align: str) -> str:
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…" if width > 1 else set_cell_size(text, width)
    pad = " " * (width - cell_len(text))
    return pad + text if align == "right" else text + pad


class LiveTable(ScrollView, can_focus=True):
    """Rows keyed by id; `set_rows` diffs against what is shown and repaints changed rows only."""

    COMPONENT_CLASSES = {
        "live-table--header",
        "live-table--cursor",
        "live-table--cursor-blurred",
        "live-table--empty",
        *(f"live-table--{tone}" for tone in TONES),
    }
    BINDINGS = [
        Binding("up", "cursor_up", "Row up", show=False),
        Binding("down", "cursor_down", "Row down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first_row", "First row", show=False),
        Binding("end", "last_row", "Last row", show=False),
        Binding("left", "column_left", "Column left", show=False),
        Binding("right", "column_right", "Column right", show=False),
    ]

    class RowHighlighted(Message):
        """The cursor moved to another row (or the row under it changed key)."""

        def __init__(self, table: LiveTable, key: str | None) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> LiveTable:
            return self.table

    def __init__(self, columns: Sequence[Column], *, empty_text: str = "", gap: int = 1,
                 fixed: int = 0, name: str | None = None, id: str | None = None,
                 classes: str | None = None, disabled: bool = False) -> None:
        """`fixed`: how many leading columns stay in view while the others scroll sideways
        (the symbol a row is about)."""
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.columns = tuple(columns)
        self.empty_text = empty_text
        self.gap = gap
        self.fixed = fixed
        self._width = 0
        self._edges: tuple[tuple[int, int], ...] = ()
        self._span: tuple[tuple, tuple[int, int]] | None = None  # the last _shown_span answer
        self._lay_out_columns()
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self._cells: dict[str, tuple[Cell, ...]] = {}
        self._strips: dict[str, Strip] = {}
        self._header: Strip | None = None
        self._base: Style | None = None  # the widget's own style, cached: it costs ~0.1 ms to get
        self._cursor = 0
        self.renders = 0  # rows rendered from cells since start: what the cache saves is visible here
        self.virtual_size = Size(self._width, 1)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """Sized to its rows (height: auto), with room for the horizontal scrollbar when the
        columns are wider than the pane, so no row hides under it."""
        # The width laid out last time when there is one: a grid asks a pane spanning two
        # columns with the width of one.
        available = self.scrollable_content_region.width or width
        return self.virtual_size.height + (1 if self.virtual_size.width > available else 0)

    # -- data ------------------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._keys)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def selected_key(self) -> str | None:
        return self._keys[self._cursor] if self._keys else None

    def cells(self, key: str) -> tuple[Cell, ...]:
        return self._cells[key]

    def row_text(self, key: str) -> str:
        return " ".join(c if isinstance(c, str) else c[0] for c in self._cells[key])

    def set_rows(self, rows: Sequence[Row]) -> int:
        """Shows `rows` in this order; returns how many rows were added or changed."""
        selected = self.selected_key
        new_keys = [key for key, _ in rows]
        changed = [key for key, cells in rows if self._cells.get(key) != cells]
        if not changed and new_keys == self._keys:
            return 0
        self._cells = dict(rows)
        for key in changed:
            self._strips.pop(key, None)
        if new_keys != self._keys:
            for key in set(self._strips) - set(self._cells):
                del self._strips[key]
            grown = len(new_keys) != len(self._keys)
            self._keys = new_keys
            self._index = {key: i for i, key in enumerate(new_keys)}
            if selected in self._index:
                self._cursor = self._index[selected]
            else:
                self._cursor = max(0, min(self._cursor, len(new_keys) - 1))
            self.virtual_size = Size(self._width, len(new_keys) + 1)
            # A pane sized to its rows (height: auto) is laid out again when their number changes.
            self.refresh(layout=grown and self.styles.is_auto_height)
            if self.selected_key != selected:
                self.post_message(self.RowHighlighted(self, self.selected_key))
        else:
            top = self.scroll_offset.y
            bottom = top + self._visible_rows()
            rows = [i for i in (self._index[key] for key in changed) if top <= i < bottom]
            if rows:  # one region over the changed rows on screen; the rest come from cache
                first, last = min(rows), max(rows)
                self.refresh(Region(0, first + 1 - top, self.size.width, last - first + 1))
        return len(changed)

    def set_columns(self, columns: Sequence[Column]) -> None:
        """Other columns (e.g. the strategy's indicators once known); the rows are drawn again."""
        self.columns = tuple(columns)
        self._lay_out_columns()
        self._strips.clear()
        self._header = None
        self.virtual_size = Size(self._width, len(self._keys) + 1)
        self.refresh()

    def _lay_out_columns(self) -> None:
        """Where each column starts and ends, in cells from the table's left edge."""
        edges, x = [], 0
        for column in self.columns:
            edges.append((x, x + column.width))
            x += column.width + self.gap
        self._edges = tuple(edges)
        self._width = max(0, x - self.gap)

    def _fixed_cells(self, width: int) -> int:
        """The cells the fixed columns take (with the gap after them) in a view `width` wide:
        none when the table fits, or when they would take more than half of the view."""
        if not self.fixed or self._width <= width:
            return 0
        cells = self._edges[min(self.fixed, len(self._edges)) - 1][1] + self.gap
        return cells if cells <= width // 2 else 0

    def shown_columns(self) -> tuple[Column, ...]:
        """The columns wholly in view at the current horizontal scroll, fixed ones included."""
        width = self.scrollable_content_region.width
        fixed = self._fixed_cells(width)
        left, right = self._shown_span(self.scroll_offset.x, width)
        return tuple(c for c, (start, end) in zip(self.columns, self._edges, strict=True)
                     if end <= fixed or (start >= left and end <= right))

    def _shown_span(self, scroll_x: int, width: int) -> tuple[int, int]:
        """The cells [left, right) of the scrolling columns wholly in view: a column the pane's
        edge would cut is left out, so no figure is shown in part (241.01 as "2"); the
        scrollbar and the left / right keys bring it in whole. The fixed columns come first and
        the scrolling ones show from `scroll_x` cells after them."""
        if self._span is not None and self._span[0] == (scroll_x, width, self._edges):
            return self._span[1]
        fixed = self._fixed_cells(width)
        start_at, end = fixed + scroll_x, scroll_x + width
        whole = [(start, stop) for start, stop in self._edges
                 if start >= start_at and stop <= end]
        # A pane narrower than one column shows what fits.
        span = (whole[0][0], whole[-1][1]) if whole else (start_at, end)
        self._span = ((scroll_x, width, self._edges), span)
        return span

    def move_cursor(self, row: int) -> None:
        if not self._keys:
            return
        row = max(0, min(row, len(self._keys) - 1))
        if row == self._cursor:
            return
        old, self._cursor = self._cursor, row
        self._refresh_row(old)
        self._refresh_row(row)
        self._scroll_to_cursor()
        self.post_message(self.RowHighlighted(self, self.selected_key))

    def select_key(self, key: str) -> bool:
        if key not in self._index:
            return False
        self.move_cursor(self._index[key])
        return True

    # -- painting --------------------------------------------------------------------------------
    def _visible_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _refresh_row(self, row: int) -> None:
        y = row + 1 - self.scroll_offset.y
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def _scroll_to_cursor(self) -> None:
        top = self.scroll_offset.y
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + self._visible_rows():
            self.scroll_to(y=self._cursor - self._visible_rows() + 1, animate=False, immediate=True)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
        self._header = None
        self._base = None
        self.refresh()

    @property
    def base_style(self) -> Style:
        if self._base is None:
            self._base = self.rich_style
        return self._base

    def _tone_style(self, tone: str) -> Style:
        return self.get_component_rich_style(f"live-table--{tone}", partial=True)

    def _render_cells(self, cells: Sequence[Cell], base: Style) -> Strip:
        segments: list[Segment] = []
        spacer = Segment(" " * self.gap, base)
        for i, (column, cell) in enumerate(zip(self.columns, cells, strict=False)):
            if i:
                segments.append(spacer)
            text, tone = (cell, "") if isinstance(cell, str) else cell
            style = base + self._tone_style(tone) if tone else base
            segments.append(Segment(_fit(text, column.width, column.align), style))
        return Strip(segments).extend_cell_length(self._width, base)

    def _header_strip(self) -> Strip:
        if self._header is None:
            style = self.base_style + self.get_component_rich_style("live-table--header",
                                                                     partial=True)
            self._header = self._render_cells([c.label for c in self.columns], style)
        return self._header

    def _row_strip(self, key: str) -> Strip:
        strip = self._strips.get(key)
        if strip is None:
            self.renders += 1
            strip = self._strips[key] = self._render_cells(self._cells[key], self.base_style)
        return strip

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = fill = self.base_style
        if y == 0:
            strip = self._header_strip()
        else:
            row = scroll_y + y - 1
            if row < len(self._keys):
                strip = self._row_strip(self._keys[row])
                if row == self._cursor:
                    name = "live-table--cursor" if self.has_focus else "live-table--cursor-blurred"
                    cursor = self.get_component_rich_style(name, partial=True)
                    strip = strip.apply_style(cursor)
                    fill = base + cursor
            elif not self._keys and y == 1 and self.empty_text:
                empty = base + self.get_component_rich_style("live-table--empty", partial=True)
                return Strip([Segment(self.empty_text, empty)]).crop_extend(0, width, base)
            else:
                return Strip.blank(width, base)
        fixed = self._fixed_cells(width)
        left, right = self._shown_span(scroll_x, width)
        if not fixed and (left, right) == (scroll_x, scroll_x + width):
            return strip.crop_extend(scroll_x, scroll_x + width, fill)
        return Strip.join([strip.crop(0, fixed), Strip.blank(left - fixed - scroll_x, fill),
                           strip.crop(left, right), Strip.blank(scroll_x + width - right, fill)])

    # -- keys and mouse --------------------------------------------------------------------------
    def _on_focus(self, event: events.Focus) -> None:
        super()._on_focus(event)
        self._refresh_row(self._cursor)

    def _on_blur(self, event: events.Blur) -> None:
        super()._on_blur(event)
        self._refresh_row(self._cursor)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.move_cursor(self.scroll_offset.y + event.y - 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self._cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self._cursor - self._visible_rows())

    def action_page_down(self) -> None:
        self.move_cursor(self._cursor + self._visible_rows())

    def action_first_row(self) -> None:
        self.move_cursor(0)

    def action_last_row(self) -> None:
        self.move_cursor(len(self._keys) - 1)

    def _scroll_starts(self) -> list[int]:
        """The scroll offsets at which each scrolling column is the first one in view."""
        fixed = self._fixed_cells(self.scrollable_content_region.width)
        return [s - fixed for s, _ in self._edges if s >= fixed]

    def action_column_right(self) -> None:
        """Scrolls a whole column: the next one comes into view whole."""
        x = self.scroll_offset.x
        start = next((s for s in self._scroll_starts() if s > x), None)
        if start is not None and x < self.max_scroll_x:
            self.scroll_to(x=min(start, self.max_scroll_x), animate=False, immediate=True)

    def action_column_left(self) -> None:
        x = self.scroll_offset.x
        start = next((s for s in reversed(self._scroll_starts()) if s < x), None)
        if start is not None:
            self.scroll_to(x=start, animate=False, immediate=True)
