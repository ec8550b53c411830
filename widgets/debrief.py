"""Debrief screen (`p`): the daily debrief of `python app.py report`, rendered as Markdown.

The report is built on the engine's loop (the journal read on a thread, a model's narrative
when LLM_MODEL is set) and saved under DATA_DIR/reports; this screen waits for it in a thread
worker, so it opens at once. `[` and `]` step through the journal's trading days; `g` makes the
report again (a day still trading has new figures).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from datetime import date

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Markdown, Static

from daytrader.advisor.debrief import Report

LoadReport = Callable[[date | None], concurrent.futures.Future[Report]]
WAIT_SECONDS = 60.0  # a narrative may take the model's LLM_TIMEOUT; the facts take a moment


class DebriefScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("p", "close", "Close", show=False),
        Binding("left_square_bracket", "day(-1)", "Previous day", key_display="["),
        Binding("right_square_bracket", "day(1)", "Next day", key_display="]"),
        Binding("g", "again", "Make again"),
    ]

    def __init__(self, load: LoadReport, days: Callable[[], list[date]]) -> None:
        super().__init__(id="debrief")
        self._load = load
        self._days = days
        self.report: Report | None = None
        self.day: date | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Label("Daily debrief (from the journal)", classes="modal-title")
            yield Static("reading the journal...", id="debrief-status", markup=False)
            with VerticalScroll(id="debrief-body"):
                yield Markdown("", id="debrief-report")
            yield Static("Esc closes · [ ] previous / next day · g makes it again · saved in "
                         "DATA_DIR/reports", classes="modal-hint", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.build(None)

    def _status(self, text: str, problem: bool = False) -> None:
        status = self.query_one("#debrief-status", Static)
        status.update(text)
        status.set_class(problem, "-problem")

    @work(thread=True, exclusive=True, exit_on_error=False, group="debrief", name="debrief")
    def build(self, day: date | None) -> None:
        try:
            report = self._load(day).result(WAIT_SECONDS)
        except Exception as exc:  # no journal, no records that day, a timeout: said, not raised
            self.app.call_from_thread(self._failed, day, exc)
        else:
            self.app.call_from_thread(self._show, report)

    def _show(self, report: Report) -> None:
        self.report, self.day = report, report.day
        self.query_one("#debrief-report", Markdown).update(report.markdown)
        self._status(f"{report.day:%A %Y-%m-%d} · saved to {report.path}")

    def _failed(self, day: date | None, exc: BaseException) -> None:
        what = f"{day:%Y-%m-%d}" if day else "the last trading day"
        reason = str(exc) or type(exc).__name__
        self._status(f"no debrief for {what}: {reason}", problem=True)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_again(self) -> None:
        self._status("making the report again...")
        self.build(self.day)

    def action_day(self, step: int) -> None:
        self.pick_day(step)

    @work(thread=True, exclusive=True, exit_on_error=False, group="debrief-days",
          name="debrief days")
    def pick_day(self, step: int) -> None:
        try:
            days = self._days()
        except Exception as exc:
            self.app.call_from_thread(self._failed, self.day, exc)
            return
        if not days:
            return
        current = self.day or days[-1]
        later = [d for d in days if d > current]
        earlier = [d for d in days if d < current]
        target = (later[0] if later else None) if step > 0 else (earlier[-1] if earlier else None)
        if target is None:
            edge = "last" if step > 0 else "first"
            self.app.call_from_thread(self._status, f"{current:%Y-%m-%d} is the journal's {edge} "
                                                    "trading day")
            return
        self.app.call_from_thread(self._status, f"reading {target:%Y-%m-%d}...")
        self.build(target)
