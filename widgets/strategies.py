"""Strategies screen (`g`): each strategy of the run with its symbols, state (enabled, disabled,
or failed and why), parameters and today's figures; `space` enables or disables the selected one
(the engine's command, as `ctl strategy-enable` / `strategy-disable` and the API call)."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label, Static

from daytrader.snapshot import EngineSnapshot

COLUMNS = ("strategy", "state", "symbols", "trades", "win %", "net P&L", "parameters")


def strategy_rows(snapshot: EngineSnapshot) -> list[tuple[str, tuple[str, ...]]]:
    rows = []
    for s in snapshot.strategies:
        m = snapshot.strategy_metrics.get(s.name)
        state = "enabled" if s.enabled else ("FAILED" if s.error else "disabled")
        params = " ".join(f"{k}={v}" for k, v in s.params.items())
        rows.append((s.name, (s.name, state, ",".join(s.symbols),
                              str(m.trades) if m else "0",
                              f"{m.win_rate:.1f}" if m and m.trades else "-",
                              f"{m.realized:+,.2f}" if m else "+0.00", params)))
    return rows


class StrategiesScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "close", "Close"), Binding("g", "close", "Close", show=False),
                Binding("space", "toggle", "Enable / disable")]

    def __init__(self, latest: Callable[[], EngineSnapshot | None],
                 switch: Callable[[str, bool], None]) -> None:
        """`latest`: the newest snapshot; `switch(name, enable)`: the engine command."""
        super().__init__(id="strategies")
        self.latest = latest
        self.switch = switch
        self._shown: list[tuple[str, tuple[str, ...]]] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Label("Strategies", classes="modal-title")
            yield DataTable(id="strategies-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="strategies-error", markup=False)
            yield Static("space enables or disables the selected strategy (its positions keep "
                         "their protection) · Esc closes", classes="modal-hint", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.refresh_rows()
        self.set_interval(0.5, self.refresh_rows)

    def refresh_rows(self) -> None:
        snapshot = self.latest()
        if snapshot is None:
            return
        rows = strategy_rows(snapshot)
        if rows == self._shown:
            return
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))
        self._shown = rows
        failed = [f"{s.name}: {s.error}" for s in snapshot.strategies if s.error]
        self.query_one("#strategies-error", Static).update("\n".join(failed))

    def selected(self) -> tuple[str, bool] | None:
        table = self.query_one(DataTable)
        if not self._shown or table.cursor_row >= len(self._shown):
            return None
        name, cells = self._shown[table.cursor_row]
        return name, cells[1] == "enabled"

    def action_toggle(self) -> None:
        chosen = self.selected()
        if chosen is not None:
            name, enabled = chosen
            self.switch(name, not enabled)

    def action_close(self) -> None:
        self.dismiss(None)
