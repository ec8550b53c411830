"""Ask modal (`i`): a question about the session, answered from the journal's records, quoting them
(`python app.py ask "..."` in the console). With LLM_MODEL set the model words the answer from
the records it is given; an answer that cites none, or states a number they do not hold, is
replaced by the plain answer from the records."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Markdown, Static

from daytrader.advisor.ask import Answer

AskJournal = Callable[[str], concurrent.futures.Future[Answer]]
EXAMPLE = "why was the AAPL entry at 10:42 refused?"
WAIT_SECONDS = 60.0


class AskModal(ModalScreen[None]):
    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, ask: AskJournal) -> None:
        super().__init__(id="ask")
        self._ask = ask
        self.answer: Answer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Label("Ask the journal", classes="modal-title")
            yield Input(placeholder=EXAMPLE, id="ask-question", max_length=500)
            yield Static("Enter asks · Esc closes", id="ask-status", markup=False)
            with VerticalScroll(id="ask-body"):
                yield Markdown("", id="ask-answer")

    def on_mount(self) -> None:
        self.query_one("#ask-question", Input).focus()

    def _status(self, text: str, problem: bool = False) -> None:
        status = self.query_one("#ask-status", Static)
        status.update(text)
        status.set_class(problem, "-problem")

    @on(Input.Submitted, "#ask-question")
    def _submitted(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question:
            self._status(f"type a question, e.g. {EXAMPLE}", problem=True)
            return
        self._status("looking in the journal...")
        self.look_up(question)

    @work(thread=True, exclusive=True, exit_on_error=False, group="ask", name="ask")
    def look_up(self, question: str) -> None:
        try:
            answer = self._ask(question).result(WAIT_SECONDS)
        except Exception as exc:  # no journal, nothing that day, a timeout: said, not raised
            reason = str(exc) or type(exc).__name__
            self.app.call_from_thread(self._status, f"no answer: {reason}", True)
            return
        self.app.call_from_thread(self._show, answer)

    def _show(self, answer: Answer) -> None:
        self.answer = answer
        self.query_one("#ask-answer", Markdown).update(answer.markdown())
        how = "worded by the model from these records" if answer.by_model else "from the records"
        self._status(f"{answer.day:%Y-%m-%d} · {len(answer.quotes)} record(s) · {how}")

    def action_close(self) -> None:
        self.dismiss(None)
