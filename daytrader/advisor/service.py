"""What a run holds of the LLM advisory: the model client (when LLM_MODEL is set), the advisor
on entries (ADVISOR_MODE advise or veto), the daily debrief after each close, and `ask`.

The debrief and ask work without a model (facts and quoted records only). Everything here runs
on the engine's loop; the journal is read on a thread, and no model call holds up a bar.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from daytrader.advisor.ask import Answer, answer
from daytrader.advisor.dayfacts import NoRecords
from daytrader.advisor.debrief import Report, build_report, save
from daytrader.advisor.entries import EntryAdvisor
from daytrader.advisor.llm import ChatClient
from daytrader.advisor.prompts import secrets_of
from daytrader.config import Settings
from daytrader.models import Bar

if TYPE_CHECKING:
    from daytrader.engine import Engine

log = logging.getLogger(__name__)
MINUTE = timedelta(minutes=1)


class Advisory:
    def __init__(self, settings: Settings, engine: Engine, client: ChatClient | None) -> None:
        self.settings = settings
        self.engine = engine
        self.client = client
        self.secrets = secrets_of(settings)
        self.entries: EntryAdvisor | None = None
        if settings.advisor_mode != "off" and client is not None:
            self.entries = EntryAdvisor(client, settings.advisor_mode, settings.advisor_timeout,
                                        settings.advisor_veto_confidence, self.secrets)
            engine.advisor = self.entries
        self.reports: dict[date, Report] = {}  # the latest report of each day (the console)
        self.closed: list[date] = []  # sessions whose close this run has seen
        self._reported: set[date] = set()
        self._tasks: set[asyncio.Task] = set()

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> Advisory:
        return cls(settings, engine, ChatClient.from_settings(settings))

    async def prepare(self) -> None:
        """On the run's loop, before the first bar: the model client is built and connected,
        so no import or set-up is on the way of a bar; a server that does not answer is said."""
        if self.client is None:
            return
        problem = await self.client.warm()
        if problem:
            self.engine.record("warning", "advisor", problem)

    @property
    def journal_path(self) -> Path | None:
        return self.engine.journal.path

    # -- the debrief after the close -------------------------------------------------------------
    def after_minute(self, bars: Sequence[Bar], each_close: bool = True) -> None:
        """Called after each minute: the minute that ends a session schedules its debrief (with
        `each_close`; a run at full speed reports only its last day, at the end, see `finish`)."""
        if not bars or not self.settings.debrief_at_close or self.journal_path is None:
            return
        session = self.engine.calendar.session_at(bars[0].ts)
        if session is None or bars[0].ts + MINUTE < session.close:
            return
        if session.date not in self.closed:
            self.closed.append(session.date)
        if each_close:
            self._schedule(session.date)

    def _schedule(self, day: date) -> None:
        if day in self._reported:
            return
        self._reported.add(day)
        task = asyncio.create_task(self._debrief_at_close(day), name=f"debrief {day}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _debrief_at_close(self, day: date) -> None:
        try:
            report = await self.debrief(day)
        except Exception as exc:  # a report that cannot be made never disturbs trading
            log.exception("daily debrief for %s", day)
            self.engine.record("warning", "debrief", f"daily debrief for {day} failed: {exc}")
            return
        note = f" ({report.narrative_note})" if report.narrative_note and report.narrative else ""
        self.engine.record("info", "debrief", f"daily debrief for {day:%Y-%m-%d} saved to "
                           f"{report.path}{note}; read it with p in the console or `python app.py "
                           f"report --date {day:%Y-%m-%d}`")

    async def finish(self, timeout: float | None = None) -> None:
        """At the end of the feed: a run at full speed reports its last closed day now; then
        waits (bounded) for the reports still being written."""
        if self.closed and self.settings.debrief_at_close and self.journal_path is not None:
            self._schedule(self.closed[-1])
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout or self.settings.llm_timeout + 5)

    # -- on demand -------------------------------------------------------------------------------
    async def debrief(self, day: date | None = None, use_model: bool = True) -> Report:
        """The report of `day` (default: the journal's last), written to DATA_DIR/reports."""
        path = self._journal()
        report = await build_report(path, day, client=self.client if use_model else None,
                                    timeout=self.settings.llm_timeout, secrets=self.secrets,
                                    journal=self.engine.journal, mode=self.settings.advisor_mode)
        report = await asyncio.to_thread(save, report, self.settings.data_dir)
        self.reports[report.day] = report
        return report

    async def ask(self, question: str, day: date | None = None) -> Answer:
        return await answer(question, self._journal(), day, client=self.client,
                            timeout=self.settings.llm_timeout, secrets=self.secrets,
                            journal=self.engine.journal, mode=self.settings.advisor_mode)

    def _journal(self) -> Path:
        path = self.journal_path
        if path is None:
            raise NoRecords("this run keeps no journal, so there is nothing to report or ask about")
        self.engine.journal.commit()  # what waits in memory belongs in the answer
        return path

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.client is not None:
            await self.client.aclose()
