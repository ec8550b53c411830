"""Checklist screen (`k`): the production checklist of `python app.py checklist`, item by item
with its figure and requirement, and the READY / NOT READY verdict. The journal is read in a
thread worker, so the screen opens at once."""

from __future__ import annotations

import sqlite3

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label, Static
from textual.worker import Worker, WorkerState

from daytrader import checklist
from daytrader.checklist import Checklist, Status
from daytrader.config import Settings

MARKS = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.UNKNOWN: "?"}


def verdict(items: Checklist) -> str:
    """The same words as `python app.py checklist`."""
    if items.ready:
        return "READY for live"
    return f"NOT READY for live: {len(items.failing)} of {len(items.items)} items open"


class ChecklistScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "close", "Close"), Binding("k", "close", "Close", show=False)]

    class Loaded(Message):
        def __init__(self, items: Checklist) -> None:
            super().__init__()
            self.items = items

    def __init__(self, settings: Settings) -> None:
        super().__init__(id="checklist")
        self.settings = settings
        self.checklist: Checklist | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Label("Production checklist (from the journal)", classes="modal-title")
            yield DataTable(id="checklist-items", show_cursor=False, zebra_stripes=True)
            yield Static("reading the journal...", id="checklist-verdict", markup=False)
            yield Static("Esc closes · live mode refuses to start until every item passes",
                         classes="modal-hint", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("", "item", "figure", "needs")
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="checklist",
          name="checklist")
    def load(self) -> None:
        self.post_message(self.Loaded(checklist.for_settings(self.settings)))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.checklist = items = message.items
        table = self.query_one(DataTable)
        for item in items.items:
            table.add_row(MARKS[item.status], item.name, item.figure, item.requirement,
                          key=item.name)
        shown = self.query_one("#checklist-verdict", Static)
        shown.update(verdict(items))
        shown.set_class(items.ready, "-ready")
        shown.set_class(not items.ready, "-not-ready")

    @on(Worker.StateChanged)
    def _load_failed(self, event: Worker.StateChanged) -> None:
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        reason = str(error) if isinstance(error, sqlite3.Error | OSError) else repr(error)
        shown = self.query_one("#checklist-verdict", Static)
        shown.update(f"the journal could not be read: {reason}")
        shown.set_class(True, "-not-ready")

    def action_close(self) -> None:
        self.dismiss(None)
