"""What is sent to the model: fixed instructions, and messages built from validated values.

Prompts carry symbols, numbers, times and the journal's own records, never settings. `redact` is
the last guard on every message before it leaves: any configured secret (broker and Supabase keys,
the API token, the model's key), a URL with credentials and key-shaped strings are replaced, so
nothing secret is sent even when a question typed by a person contains one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from daytrader.advisor.context import EntryContext
from daytrader.advisor.opinion import MAX_REASONS
from daytrader.config import Secret, Settings

Messages = list[dict[str, str]]
REDACTED = "[redacted]"

ENTRY_INSTRUCTIONS = f"""\
You are a second opinion on one intraday stock entry that a trading engine is about to send.
The engine has decided it; its risk checks have passed it. You only give an opinion.
Judge only the facts in the user's JSON: the last 30 minutes of bars, the strategy's indicators
and signal, the bracket (stop-loss, take-profit), and the account's risk state and day's P&L.
Answer with one JSON object and nothing else, exactly:
{{"verdict": "agree" | "caution" | "veto", "confidence": <number 0 to 1>,
 "reasons": [<up to {MAX_REASONS} short strings>]}}
agree: the entry is sound on these facts. caution: doubts worth showing to the trader.
veto: the entry should not be taken; use it only with strong evidence in the facts.
Reasons cite the facts' figures. Never propose orders, quantities, symbols or other actions:
they are ignored, and an answer that contains one is discarded."""

DEBRIEF_INSTRUCTIONS = """\
You write the short narrative of a day trader's daily debrief. The user's JSON lists the day's
facts, each with an id (F1, F2, ...). Write 3 to 6 sentences on how the day went, what went well
and what went badly, using only these facts. Every sentence cites the ids of the facts it uses,
and every number in it must appear in those facts exactly as written there. No advice to trade,
no orders, no guesses beyond the facts.
Answer with one JSON object and nothing else:
{"sentences": [{"text": "<sentence>", "facts": ["F1", "F4"]}, ...]}"""

ASK_INSTRUCTIONS = """\
You answer a trader's question about their trading session from the journal's records only.
The user's JSON has the question and the records that match it, each with an id (R1, R2, ...).
Answer in at most 4 sentences, citing the ids of the records you use; every number in the answer
must appear in those records exactly as written there. If the records do not answer the
question, say so. Never propose orders or actions.
Answer with one JSON object and nothing else:
{"answer": "<the answer>", "records": ["R1", "R3"]}"""


def _compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True)


def entry_messages(context: EntryContext) -> Messages:
    return [{"role": "system", "content": ENTRY_INSTRUCTIONS},
            {"role": "user", "content": _compact(context.prompt_data())}]


def debrief_messages(day: str, facts: Sequence[tuple[str, str]]) -> Messages:
    data = {"day": day, "facts": [{"id": fid, "fact": text} for fid, text in facts]}
    return [{"role": "system", "content": DEBRIEF_INSTRUCTIONS},
            {"role": "user", "content": _compact(data)}]


def ask_messages(question: str, day: str, records: Sequence[tuple[str, str]]) -> Messages:
    data = {"question": question, "day": day,
            "records": [{"id": rid, "record": text} for rid, text in records]}
    return [{"role": "system", "content": ASK_INSTRUCTIONS},
            {"role": "user", "content": _compact(data)}]


# Key-shaped strings, whatever their source: OpenAI-style keys, Alpaca key ids, JWTs (Supabase
# keys), bearer tokens, and the credentials part of a URL.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")
_KEY_SHAPES = re.compile(
    r"\bsk-[A-Za-z0-9_-]{12,}|\b(?:PK|AK|CK)[A-Z0-9]{14,}\b|"
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|(?i:bearer\s+)[A-Za-z0-9._~+/-]{8,}")


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value in the settings (the fields held as `Secret`)."""
    values = []
    for name in settings.__dataclass_fields__:
        value = getattr(settings, name)
        if isinstance(value, Secret) and len(value.reveal()) >= 4:
            values.append(value.reveal())
    return values


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """`text` without any of `secrets` (as typed, or as JSON escapes them) or key-shaped strings."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        for form in {secret, json.dumps(secret, ensure_ascii=True)[1:-1]}:
            if form:
                text = text.replace(form, REDACTED)
    text = _URL_CREDENTIALS.sub(lambda m: m.group(1) + REDACTED + "@", text)
    return _KEY_SHAPES.sub(REDACTED, text)


def redact(messages: Messages, secrets: Iterable[str]) -> Messages:
    kept = list(secrets)
    return [{**m, "content": redact_text(m["content"], kept)} for m in messages]
