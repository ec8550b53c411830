"""The LLM advisory in the console, driven with Pilot: the opinion next to each entry in the
orders pane and the log, the advisor's health in the status bar, the debrief screen (p) and the
ask modal (i), against the local OpenAI-compatible server."""

from __future__ import annotations

import pytest
from fake_llm import FakeLLM, Reply, verdict
from textual.widgets import Input, Markdown, Static
from ui_factory import make_app, settled, until

from daytrader.config import Settings
from widgets.ask import AskModal
from widgets.debrief import DebriefScreen
from widgets.event_log import EventLog
from widgets.orders import OrdersTable

SIZE = (160, 45)


@pytest.fixture(scope="module")
def llm():
    with FakeLLM(Reply(verdict("caution", 0.6, "volume below the 30-minute average"))) as server:
        yield server


def advised_app(llm, tmp_path, mode: str = "advise"):
    settings = Settings(sim_seed=42, advisor_mode=mode, llm_model="fake-model",
                        llm_base_url=llm.url, data_dir=tmp_path)
    return make_app(settings=settings, journal=True)


def markdown_of(screen, selector: str) -> str:
    return screen.query_one(selector, Markdown).source


async def test_the_opinion_shows_next_to_each_entry_and_the_advisor_in_the_status_bar(
        llm, tmp_path):
    app = advised_app(llm, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        engine = app.host.engine
        assert engine.advice, "the seeded hour makes entries, and each was asked about"
        orders = app.query_one(OrdersTable)
        assert orders.columns[-1].label == "Advisor"
        orders.action_toggle_filter()  # all orders: the filled entries too
        await pilot.pause()
        entries = {a.client_order_id for a in engine.advice}
        shown = [orders.cells(key)[-1] for key in orders.keys
                 if engine.order_book.get(key).client_order_id in entries]
        assert shown and set(shown) == {("caution .60", "warning")}
        others = [orders.cells(key)[-1] for key in orders.keys
                  if engine.order_book.get(key).client_order_id not in entries]
        assert set(others) <= {""}  # legs and exits were never asked
        lines = app.query_one(EventLog).visible_lines()
        assert any("advisor CAUTION 0.60: volume below the 30-minute average" in line
                   for line in lines)
        health = " ".join(str(w.content) for w in app.query(".health").results(Static))
        assert "advisor ✓" in health


async def test_p_shows_the_daily_debrief_and_i_answers_from_the_journal(llm, tmp_path):
    app = advised_app(llm, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        trades = len(app.host.engine.book.trades)
        llm.script("not the narrative's shape")  # the model fails; the facts stand
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, DebriefScreen), what="debrief screen")
        screen = app.screen
        await until(pilot, lambda: screen.report is not None, what="the report")
        report = markdown_of(screen, "#debrief-report")
        assert report.startswith("# Daily debrief: Tuesday 2026-11-24 (sim)")
        assert f"| trades | {trades} (" in report
        assert "Narrative skipped: the model's answer was not usable" in report
        assert (tmp_path / "reports" / "2026-11-24.md").read_text() == report
        status = str(screen.query_one("#debrief-status", Static).content)
        assert status.startswith("Tuesday 2026-11-24 · saved to ")
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: "last trading day" in str(
            screen.query_one("#debrief-status", Static).content), what="the last day")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DebriefScreen), what="closed")

        symbol = app.host.engine.book.trades[0].symbol
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, AskModal), what="ask modal")
        modal = app.screen
        await pilot.press("enter")  # nothing typed: asks for a question
        assert "type a question" in str(modal.query_one("#ask-status", Static).content)
        modal.query_one("#ask-question", Input).value = f"how did the {symbol} trades end?"
        llm.script('{"answer": "They ended.", "records": ["R9999"]}')  # cites nothing given
        await pilot.press("enter")
        await until(pilot, lambda: modal.answer is not None, what="the answer")
        answer = markdown_of(modal, "#ask-answer")
        assert "round trip" in answer and f"{symbol} " in answer
        assert "**From the journal** (2026-11-24):" in answer
        assert "the model's answer was not used" in answer
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, AskModal), what="closed")


async def test_the_orders_pane_has_no_advisor_column_when_the_advisor_is_off(tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        assert "Advisor" not in [c.label for c in app.query_one(OrdersTable).columns]
        await pilot.press("i")  # no journal in this run: the modal says so
        await until(pilot, lambda: isinstance(app.screen, AskModal), what="ask modal")
        app.screen.query_one("#ask-question", Input).value = "why?"
        await pilot.press("enter")
        await until(pilot, lambda: "no answer: this run keeps no journal" in str(
            app.screen.query_one("#ask-status", Static).content), what="the refusal")
