"""The row-cached table: only changed rows are re-rendered, and the cursor follows its row."""

from __future__ import annotations

from textual.app import App, ComposeResult

from widgets.live_table import Column, LiveTable

COLUMNS = (Column("sym", "Symbol", 6), Column("qty", "Qty", 6, "right"),
           Column("pnl", "P&L", 9, "right"))


def rows(n: int, bump: int | None = None) -> list:
    return [(f"S{i:03d}", (f"S{i:03d}", str(i), (f"{i + (1 if i == bump else 0):+d}", "positive")))
            for i in range(n)]


class TableApp(App):
    def compose(self) -> ComposeResult:
        yield LiveTable(COLUMNS, empty_text="nothing", id="table")


async def test_an_update_re_renders_only_the_rows_that_changed():
    app = TableApp()
    async with app.run_test(size=(40, 30)) as pilot:
        table = app.query_one(LiveTable)
        assert table.set_rows(rows(200)) == 200
        await pilot.pause()
        first_paint = table.renders
        assert 0 < first_paint <= 30, "only visible rows are rendered"
        assert table.set_rows(rows(200, bump=3)) == 1
        await pilot.pause()
        assert table.renders == first_paint + 1
        assert table.set_rows(rows(200, bump=3)) == 0, "the same cells change nothing"
        assert table.set_rows(rows(200, bump=150)) == 2  # row 3 back, row 150 bumped
        await pilot.pause()
        assert table.renders == first_paint + 2, "row 150, below the fold, is not painted"


async def test_the_cursor_stays_on_its_row_when_rows_come_and_go():
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(LiveTable)
        table.set_rows(rows(10))
        table.focus()
        await pilot.press("down", "down")
        assert table.selected_key == "S002"
        table.set_rows([("NEW", ("NEW", "1", "0")), *rows(10)])  # a row arrives above
        assert table.selected_key == "S002" and table.cursor_row == 3
        table.set_rows([r for r in rows(10) if r[0] != "S001"])  # a row above leaves
        assert table.selected_key == "S002"
        table.set_rows([r for r in rows(10) if r[0] != "S002"])  # the selected row leaves
        assert table.selected_key is not None
        await pilot.press("end")
        assert table.selected_key == "S009"
        table.set_rows([])
        assert table.selected_key is None
        await pilot.pause()


async def test_rows_beyond_the_height_scroll_into_view_with_the_cursor():
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(LiveTable)
        table.set_rows(rows(100))
        table.focus()
        await pilot.press("pagedown", "pagedown", "down")
        await pilot.pause()
        top = table.scroll_offset.y
        visible = table.scrollable_content_region.height - 1
        assert top <= table.cursor_row < top + visible
        await pilot.press("home")
        await pilot.pause()
        assert table.cursor_row == 0 and table.scroll_offset.y == 0
