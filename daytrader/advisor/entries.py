"""The engine's advisor on entries: a second opinion within a deadline, or "advisor skipped".

It keeps the last 30 bars of each symbol, turns an entry into its context, asks the model and
validates the answer. It never raises: a deadline passed, an HTTP error, a malformed answer or an
answer that tries to instruct all give an Opinion that says why the advisor was skipped, and the
entry goes ahead unchanged. The engine decides what to do with the opinion (`advisor_check`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import replace

from daytrader.advisor.context import EntryContext, RecentBars
from daytrader.advisor.llm import ChatClient, LlmError
from daytrader.advisor.opinion import AnswerRefused, Opinion, parse_answer
from daytrader.advisor.prompts import entry_messages, redact
from daytrader.models import Bar, Health, ModelCall

MAX_ANSWER_CHARS = 8000  # what the journal keeps of one answer


class EntryAdvisor:
    def __init__(self, client: ChatClient, mode: str, timeout: float, veto_confidence: float,
                 secrets: Iterable[str] = ()) -> None:
        if mode not in ("advise", "veto"):
            raise ValueError(f"an entry advisor runs in advise or veto mode, not {mode!r}")
        self.client = client
        self.mode = mode
        self.timeout = timeout
        self.veto_confidence = veto_confidence
        self.secrets = list(secrets)
        self.recent = RecentBars()

    def observe(self, bars: Iterable[Bar]) -> None:
        """The minute's bars (and warm-up bars): the last 30 of each symbol are kept."""
        self.recent.add(bars)

    def bars_of(self, symbol: str) -> list[Bar]:
        return self.recent.of(symbol)

    def health(self) -> Health:
        return self.client.health(self.mode)

    def ask(self, context: EntryContext, client_order_id: str) -> Question:
        """The question about one entry (its messages built now, from the context)."""
        return Question(self, context, client_order_id)

    async def opinion(self, context: EntryContext, client_order_id: str
                      ) -> tuple[Opinion, ModelCall]:
        return await self.ask(context, client_order_id).answer()


class Question:
    """One entry asked about: what is sent, when, and the opinion and journal record it gives,
    answered or not."""

    def __init__(self, advisor: EntryAdvisor, context: EntryContext, client_order_id: str) -> None:
        self.advisor = advisor
        self.context = context
        self.messages = redact(entry_messages(context), advisor.secrets)
        self.started = time.perf_counter()
        self.base = Opinion(client_order_id, context.symbol, context.side, context.qty,
                            context.ts, advisor.mode, call_id=uuid.uuid4().hex[:16])

    async def answer(self) -> tuple[Opinion, ModelCall]:
        """The model's opinion within the advisor's timeout; never raises (a failure is an
        opinion that says the advisor was skipped)."""
        client = self.advisor.client
        content: str | None = None
        reply = None
        try:
            reply = await client.complete(self.messages, self.advisor.timeout)
            content = reply.content
            verdict = parse_answer(content)
        except LlmError as exc:
            opinion = _skipped(self.base, exc.message, self.started)
        except AnswerRefused as exc:
            client.record_refused_answer(str(exc))
            opinion = _skipped(self.base, f"answer refused: {exc}", self.started)
        else:
            opinion = replace(self.base, verdict=verdict.verdict, confidence=verdict.confidence,
                              reasons=verdict.reasons)
        if reply is not None:  # an answer came (used or refused): its cost is known
            opinion = replace(opinion, latency_ms=reply.latency_ms,
                              prompt_tokens=reply.prompt_tokens,
                              completion_tokens=reply.completion_tokens)
        return opinion, self._record(opinion, content)

    def unanswered(self, why: str) -> tuple[Opinion, ModelCall]:
        """The opinion when the engine stops waiting (its deadline): skipped, and counted as
        a failure in the advisor's health."""
        self.advisor.client.record_failure(why)
        opinion = _skipped(self.base, why, self.started)
        return opinion, self._record(opinion, None)

    def _record(self, opinion: Opinion, content: str | None) -> ModelCall:
        return ModelCall(
            opinion.call_id, self.context.ts, "entry", opinion.client_order_id,
            self.context.symbol, self.advisor.client.model, self.advisor.mode,
            json.dumps(self.messages), None if content is None else content[:MAX_ANSWER_CHARS],
            opinion.verdict or "skipped", opinion.verdict, opinion.confidence, opinion.reasons,
            opinion.skipped, round(opinion.latency_ms, 1), opinion.prompt_tokens,
            opinion.completion_tokens)


def _skipped(base: Opinion, why: str, started: float) -> Opinion:
    return replace(base, skipped=why, latency_ms=(time.perf_counter() - started) * 1000)
