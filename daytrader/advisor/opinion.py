"""The advisor's answer on an entry: a fixed JSON shape, validated, and what the engine makes of it.

A model answers `{"verdict": "agree" | "caution" | "veto", "confidence": 0..1, "reasons": [...]}`
and nothing else. The answer is data: it is parsed into this shape or refused whole, and a
refused answer means "advisor skipped" (the entry goes ahead as the strategy and the risk checks
made it). An answer with fields beyond the shape, or whose reasons read as an order ("buy 1000
TSLA"), is refused as an attempt to instruct the engine; whatever it says, only the verdict and
its confidence are ever read, and only by one risk check that can refuse an entry, never change it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from daytrader.models import CheckResult

ADVISOR_CHECK = "advisor"  # the name of the risk check (veto mode refuses through it)
VERDICTS = ("agree", "caution", "veto")
MAX_REASONS = 3
MAX_REASON_CHARS = 200


class AnswerRefused(ValueError):
    """A model answer that does not fit the shape, or tries to instruct; the message says why."""


class _Answer(BaseModel):
    """The JSON schema an answer must fit (sent to the model in its instructions too)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    verdict: Literal["agree", "caution", "veto"]
    confidence: float = Field(ge=0, le=1)
    reasons: list[str] = Field(default_factory=list, max_length=5)


ANSWER_SCHEMA = _Answer.model_json_schema()

# An order in words: a trading verb followed by a quantity ("buy 1000 TSLA", "sell 500 shares")
# or by a ticker ("buy TSLA instead"), or the usual prompt-injection phrases. Indicator names
# after a verb ("short EMA") are not tickers.
_NOT_TICKERS = {"EMA", "SMA", "ATR", "VWAP", "RSI", "MACD", "ADX", "OBV", "PNL", "USD", "ET", "AM",
                "PM", "R", "I", "A"}
_VERB = r"(?i:\b(?:buy|sell|short|cover|purchase|place|submit|execute|cancel)\b)"
_QTY_ORDER = re.compile(_VERB + r"\s+(?:(?i:an?\s+)?(?i:order\s+(?:for|of)\s+))?\d[\d,]*")
_TICKER_ORDER = re.compile(_VERB + r"\s+(?:(?i:more|all|some)\s+)?\$?([A-Z]{1,5})\b")
_INJECTION = re.compile(r"(?i)\b(ignore|disregard|override)\b.{0,40}\b(instructions?|rules?|"
                        r"checks?|limits?)\b|\bsystem\s*prompt\b|\byou\s+are\s+now\b")


def instruction_in(text: str) -> str:
    """The part of `text` that reads as an order or an instruction to the engine, or ""."""
    for pattern in (_QTY_ORDER, _INJECTION):
        found = pattern.search(text)
        if found:
            return found.group(0)
    for found in _TICKER_ORDER.finditer(text):
        if found.group(1) not in _NOT_TICKERS:
            return found.group(0)
    return ""


def _clean(text: str) -> str:
    """A reason as the console and the journal show it: one printable line, bounded."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= MAX_REASON_CHARS else flat[: MAX_REASON_CHARS - 1] + "…"


def _unfenced(content: str) -> str:
    """Local models often wrap JSON in a Markdown code fence; the fence alone is dropped."""
    text = content.strip()
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        text = text[3:-3].strip()
        if text[:4].lower() == "json":
            text = text[4:].strip()
    return text


@dataclass(frozen=True, slots=True)
class Verdict:
    verdict: str
    confidence: float
    reasons: tuple[str, ...]


def parse_answer(content: str | None) -> Verdict:
    """The verdict in a model's answer; AnswerRefused (with the reason) when it is not exactly
    the shape, or when it reads as an instruction."""
    if not content or not content.strip():
        raise AnswerRefused("empty answer")
    try:
        data = json.loads(_unfenced(content))
    except ValueError as exc:
        said = instruction_in(content)
        if said:
            raise AnswerRefused(f"not the JSON shape, and it reads as an instruction "
                                f"({said!r}): ignored") from None
        raise AnswerRefused(f"malformed JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, dict):
        raise AnswerRefused(f"expected a JSON object, got {type(data).__name__}")
    extra = sorted(str(k)[:30] for k in data if k not in _Answer.model_fields)
    if extra:
        raise AnswerRefused(f"fields outside the answer's shape ({', '.join(extra[:5])}): an "
                            "answer is an opinion, never an instruction; ignored")
    if isinstance(data.get("verdict"), str):
        data["verdict"] = data["verdict"].strip().lower()
    if isinstance(data.get("confidence"), int) and not isinstance(data["confidence"], bool):
        data["confidence"] = float(data["confidence"])
    try:
        answer = _Answer.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "answer"
        raise AnswerRefused(f"does not fit the shape: {where}: {first.get('msg')}") from None
    for reason in answer.reasons:
        said = instruction_in(reason)
        if said:
            raise AnswerRefused(f"a reason reads as an instruction ({said!r}): an answer is an "
                                "opinion, never an order; ignored")
    reasons = tuple(r for r in (_clean(r) for r in answer.reasons) if r)[:MAX_REASONS]
    return Verdict(answer.verdict, round(answer.confidence, 3), reasons)


@dataclass(frozen=True, slots=True)
class Opinion:
    """What the advisor said about one entry (or why it said nothing: `skipped`)."""

    client_order_id: str
    symbol: str
    side: str
    qty: int
    ts: datetime  # market time of the entry's signal
    mode: str  # advise | veto
    verdict: str | None = None  # agree / caution / veto; None when skipped
    confidence: float | None = None
    reasons: tuple[str, ...] = ()
    skipped: str = ""  # why there is no opinion (a deadline, an HTTP error, a refused answer)
    latency_ms: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    call_id: str = ""

    @property
    def label(self) -> str:
        """Short, for a table cell: "AGREE 0.80", "VETO 0.90", "skipped"."""
        if self.verdict is None:
            return "skipped"
        return f"{self.verdict.upper()} {self.confidence:.2f}"

    @property
    def summary(self) -> str:
        """One line for the event log."""
        if self.verdict is None:
            return f"advisor skipped: {self.skipped}"
        why = "; ".join(self.reasons) or "no reasons given"
        return f"advisor {self.label}: {why} [{self.latency_ms:.0f} ms]"


def advisor_check(opinion: Opinion, mode: str, threshold: float) -> CheckResult:
    """The advisor as a risk check: in veto mode it refuses a veto at least `threshold` confident;
    in advise mode, and whenever the advisor was skipped, it passes (and is journaled with the
    decision, so the opinion stays next to the order)."""
    limit = (f"veto with confidence >= {threshold:.2f} refuses" if mode == "veto"
             else "advice only")
    if opinion.verdict is None:
        return CheckResult(ADVISOR_CHECK, True, "skipped", limit,
                           f"advisor skipped ({opinion.skipped}); the entry goes ahead")
    value = opinion.label.lower()
    refuses = (mode == "veto" and opinion.verdict == "veto"
               and (opinion.confidence or 0.0) >= threshold)
    if not refuses:
        return CheckResult(ADVISOR_CHECK, True, value, limit)
    why = "; ".join(opinion.reasons) or "no reasons given"
    return CheckResult(ADVISOR_CHECK, False, value, limit,
                       f"the advisor vetoed this entry with confidence {opinion.confidence:.2f} "
                       f"(at least {threshold:.2f} refuses): {why}")
