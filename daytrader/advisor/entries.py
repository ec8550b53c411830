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

    async def opinion(self, context: EntryContext, client_order_id: str
                      ) -> tuple[Opinion, ModelCall]:
        """The model's opinion on the entry within `timeout` seconds, and the exchange for the
        journal; never raises (a failure is an opinion that says the advisor was skipped)."""
        messages = redact(entry_messages(context), self.secrets)
        started = time.perf_counter()
        content: str | None = None
        reply = None
        base = Opinion(client_order_id, context.symbol, context.side, context.qty, context.ts,
                       self.mode, call_id=uuid.uuid4().hex[:16])
        try:
            reply = await self.client.complete(messages, self.timeout)
            content = reply.content
            verdict = parse_answer(content)
        except LlmError as exc:
            opinion = _skipped(base, exc.message, started)
        except AnswerRefused as exc:
            self.client.record_refused_answer(str(exc))
            opinion = _skipped(base, f"answer refused: {exc}", started)
        else:
            opinion = replace(base, verdict=verdict.verdict, confidence=verdict.confidence,
                              reasons=verdict.reasons, latency_ms=reply.latency_ms,
                              prompt_tokens=reply.prompt_tokens,
                              completion_tokens=reply.completion_tokens)
        if reply is not None and opinion.verdict is None:  # refused: the tokens still counted
            opinion = replace(opinion, latency_ms=reply.latency_ms,
                              prompt_tokens=reply.prompt_tokens,
                              completion_tokens=reply.completion_tokens)
        call = ModelCall(
            opinion.call_id, context.ts, "entry", client_order_id, context.symbol,
            self.client.model, self.mode, json.dumps(messages),
            None if content is None else content[:MAX_ANSWER_CHARS],
            opinion.verdict or "skipped", opinion.verdict, opinion.confidence, opinion.reasons,
            opinion.skipped, round(opinion.latency_ms, 1), opinion.prompt_tokens,
            opinion.completion_tokens)
        return opinion, call


def _skipped(base: Opinion, why: str, started: float) -> Opinion:
    return replace(base, skipped=why, latency_ms=(time.perf_counter() - started) * 1000)
