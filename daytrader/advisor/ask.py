"""Questions about a session answered from the journal's records, quoting them.

"why was the AAPL entry at 10:42 refused?" finds the day's records that match (the symbol, the
minutes around 10:42, the kind of record the words point to) and answers from them: the refusal's
check and reason, the advisor's opinion, the fills. The answer always quotes the records it rests
on. With a model configured, the model words the answer, citing record ids; an answer that cites
no quoted record, or states a number no cited record holds, is not used (the plain answer from
the records is given instead, and says so). `python app.py ask "..."` and the console (key i).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import uuid
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

from daytrader.advisor.dayfacts import DayJournal, NoRecords, read_day
from daytrader.advisor.debrief import command_day, money, numbers_in, run_command, shown_numbers
from daytrader.advisor.llm import ChatClient, LlmError
from daytrader.advisor.opinion import instruction_in
from daytrader.advisor.prompts import ask_messages, redact, redact_text, secrets_of
from daytrader.config import Settings
from daytrader.models import ModelCall

MAX_QUOTES = 12
MAX_QUESTION = 500
_TIME = re.compile(r"\b(\d{1,2})[:.h](\d{2})\s*(am|pm|a\.m\.|p\.m\.)?", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9.]*")
# Words that point to a kind of record.
_KINDS = {
    "refusal": ("refus", "reject", "block", "denied", "why", "not sent", "didn't", "did not",
                "veto", "check"),
    "fill": ("fill", "bought", "sold", "price", "slippage", "execut"),
    "trade": ("stop", "target", "take-profit", "take profit", "exit", "close", "pnl", "p&l",
              "profit", "loss", "lose", "lost", "won", "win", "trade"),
    "breaker": ("breaker", "halt"),
    "control": ("emergency", "disable", "enable", "reset", "sync", "control"),
    "advisor": ("advisor", "model", "opinion", "caution", "veto", "agree", "skipped", "llm"),
    "order": ("order", "entry", "entered", "enter", "buy", "sell", "sent", "short", "long"),
}


@dataclass(frozen=True, slots=True)
class Quote:
    """One journal record, as an answer quotes it."""

    rid: str
    ts: datetime
    kind: str  # refusal, decision, order, broker, fill, trade, breaker, control, advisor
    symbol: str
    text: str
    summary: str = ""  # the record as a sentence, for an answer given without a model

    @property
    def line(self) -> str:
        return f"[{self.rid}] {self.text}"


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    day: date
    text: str
    quotes: tuple[Quote, ...]
    by_model: bool = False
    note: str = ""  # why a model's answer was not used, or that no model is configured
    sessions: tuple[str, ...] = ()

    def plain(self) -> str:
        lines = [self.text, ""]
        if self.note:
            lines += [f"({self.note})", ""]
        if self.quotes:
            lines.append(f"From the journal ({self.day:%Y-%m-%d}, session "
                         f"{', '.join(self.sessions)}):")
            lines += [f"  {q.line}" for q in self.quotes]
        return "\n".join(lines).rstrip() + "\n"

    def markdown(self) -> str:
        lines = [self.text, ""]
        if self.note:
            lines += [f"_{self.note}_", ""]
        if self.quotes:
            lines.append(f"**From the journal** ({self.day:%Y-%m-%d}):")
            lines.append("")
            lines += [f"- `{q.rid}` {q.text}" for q in self.quotes]
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict:
        return {"question": self.question, "day": self.day.isoformat(), "answer": self.text,
                "by_model": self.by_model, "note": self.note,
                "records": [{"id": q.rid, "ts": q.ts.isoformat(), "kind": q.kind,
                             "symbol": q.symbol, "text": q.text} for q in self.quotes]}


def _hm(ts: datetime) -> str:
    return f"{ts:%H:%M}"


def records_of(day: DayJournal) -> list[Quote]:
    """Every record of the day worth quoting, oldest first, each as one line of text."""
    items: list[tuple[datetime, str, str, str, str]] = []
    advice = {a.subject: a for a in day.advice if a.kind == "entry"}
    for d in day.decisions:
        if d.approved:
            continue  # an approved order is quoted as the order sent
        failed = next((c for c in d.checks if not c.get("passed")), {})
        items.append((d.ts, "refusal", d.symbol,
                      f"{_hm(d.ts)} {d.side} {d.qty} {d.symbol} REFUSED by the risk check "
                      f"{d.check} (value {failed.get('value', '?')}, limit "
                      f"{failed.get('limit', '?')}): {d.reason}",
                      f"The {d.symbol} {d.side} {d.qty} at {_hm(d.ts)} was refused by the risk "
                      f"check {d.check}: {d.reason}"))
    for i in day.intents.values():
        bracket = (f", stop {i.stop_loss}" if i.stop_loss is not None else "") + (
            f", take-profit {i.take_profit}" if i.take_profit is not None else "")
        what = "exit" if i.reduce_only else "entry"
        items.append((i.ts, "order", i.symbol,
                      f"{_hm(i.ts)} {what} sent: {i.side} {i.qty} {i.symbol} at market"
                      + (f" (decision price {i.ref_price})" if i.ref_price else "")
                      + f"{bracket}; reason {i.reason or 'manual'}, strategy {i.strategy}",
                      f"the {i.symbol} {what} ({i.side} {i.qty}) was sent at {_hm(i.ts)}"))
    for e in day.order_events:
        if e.event in ("rejected", "canceled", "expired") and e.symbol:
            items.append((e.ts, "broker", e.symbol,
                          f"{_hm(e.ts)} broker: {e.role or 'order'} {e.side or ''} {e.qty or ''} "
                          f"{e.symbol} {e.event}" + (f": {_line(e.detail)}" if e.detail else ""),
                          ""))
    for f in day.fills:
        verb = "bought" if f.side.value == "buy" else "sold"
        items.append((f.ts, "fill", f.symbol,
                      f"{_hm(f.ts)} fill: {verb} {f.qty} {f.symbol} @ {f.price} ({f.role})", ""))
    for n, t in enumerate(day.trades, 1):
        items.append((t.exit_time, "trade", t.symbol,
                      f"trade {n}: {t.symbol} {'long' if t.side.value == 'buy' else 'short'} "
                      f"{t.qty}, in {_hm(t.entry_time)} @ {t.entry_price}, out {_hm(t.exit_time)}"
                      f" @ {t.exit_price}, net P&L {money(t.pnl - t.commission, True)} "
                      f"({t.exit_reason})",
                      f"{t.symbol} {t.qty} from {_hm(t.entry_time)} to {_hm(t.exit_time)}, net "
                      f"{money(t.pnl - t.commission, True)} ({t.exit_reason})"))
    for b in day.breaker:
        items.append((b.ts, "breaker", "", f"{_hm(b.ts)} circuit breaker {b.action} "
                                           f"({b.source}): {_line(b.message)}", ""))
    for c in day.controls:
        items.append((c.ts, "control", "", f"{_hm(c.ts)} control: {c.action} by {c.source}: "
                                           f"{_line(c.detail)}", ""))
    for cid, a in advice.items():
        said = (f"{a.verdict.upper()} {a.confidence:.2f}: {'; '.join(a.reasons) or 'no reasons'}"
                if a.verdict else f"skipped ({a.error})")
        items.append((a.ts, "advisor", a.symbol,
                      f"{_hm(a.ts)} advisor ({a.mode}) on the {a.symbol} entry {cid}: {said}",
                      f"The advisor ({a.mode} mode) said {said}"))
    items.sort(key=lambda x: x[0])
    return [Quote(f"R{n}", *item) for n, item in enumerate(items, 1)]


def _line(text: str) -> str:
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat[:200]


def asked_times(question: str) -> list[int]:
    """Minutes of the day named in the question (10:42, 2:15pm, 14h05)."""
    minutes = []
    for h, m, half in _TIME.findall(question):
        hour, minute = int(h), int(m)
        if half and half.lower().startswith("p") and hour < 12:
            hour += 12
        if half and half.lower().startswith("a") and hour == 12:
            hour = 0
        if hour < 24 and minute < 60:
            minutes.append(hour * 60 + minute)
    return minutes


def asked_symbols(question: str, known: Iterable[str]) -> list[str]:
    universe = {s.upper() for s in known}
    return list(dict.fromkeys(w.upper() for w in _WORD.findall(question)
                              if w.upper() in universe))


_NOT_TICKERS = {"I", "A", "AM", "PM", "ET", "EOD", "SOD", "P", "L", "PNL", "EMA", "ATR", "VWAP",
                "API", "OK", "US", "USD", "LLM", "ID", "AND", "OR", "THE", "WHY", "WHAT", "HOW"}


def unknown_tickers(question: str, known: Iterable[str]) -> list[str]:
    """Words typed as tickers (capitals) that the day's records do not have."""
    universe = {s.upper() for s in known}
    return list(dict.fromkeys(w for w in re.findall(r"\b[A-Z]{1,5}\b", question)
                              if w not in universe and w not in _NOT_TICKERS))


def asked_kinds(question: str) -> set[str]:
    text = question.lower()
    return {kind for kind, words in _KINDS.items() if any(w in text for w in words)}


def select(quotes: list[Quote], question: str) -> list[Quote]:
    """The records that answer the question best: its symbols, the minutes around its times,
    the kinds its words point to; oldest first."""
    symbols = asked_symbols(question, {q.symbol for q in quotes if q.symbol})
    times = asked_times(question)
    kinds = asked_kinds(question)
    if "refusal" in kinds:
        kinds |= {"advisor"}

    def scored(window: int) -> list[tuple[float, Quote]]:
        out = []
        for q in quotes:
            score = 0.0
            if symbols:
                if q.symbol and q.symbol not in symbols:
                    continue
                score += 5 if q.symbol else 0
            if times:
                at = q.ts.hour * 60 + q.ts.minute
                gap = min(abs(at - t) for t in times)
                if gap > window:
                    continue
                score += 6 if gap == 0 else 4 if gap <= 2 else 1
            if kinds:
                score += 3 if q.kind in kinds or (q.kind == "refusal" and "order" in kinds) else 0
            out.append((score, q))
        return out

    for window in (10, 30, 24 * 60):
        found = [x for x in scored(window) if x[0] > 0 or not (symbols or times or kinds)]
        if found:
            break
    best = sorted(found, key=lambda x: (-x[0], x[1].ts))[:MAX_QUOTES]
    return sorted((q for _, q in best), key=lambda q: int(q.rid[1:]))


def plain_answer(question: str, day: DayJournal, chosen: list[Quote]) -> str:
    """The answer the records give without a model."""
    symbols = asked_symbols(question, {t.symbol for t in day.trades} | {
        d.symbol for d in day.decisions} | {i.symbol for i in day.intents.values()})
    times = asked_times(question)
    kinds = asked_kinds(question)
    where = " ".join(filter(None, [", ".join(symbols), "around " + ", ".join(
        f"{t // 60:02d}:{t % 60:02d}" for t in times) if times else ""]))
    if "breaker" in kinds and not day.breaker:
        return f"The journal has no circuit breaker event on {day.day:%Y-%m-%d}: it never tripped."
    if not chosen:
        traded = sorted({i.symbol for i in day.intents.values()})
        return (f"The journal has no record matching that on {day.day:%Y-%m-%d}"
                + (f" ({where})" if where else "") + (f"; symbols traded that day: "
                                                      f"{', '.join(traded)}" if traded else "")
                + ".")
    prefix = ""
    if times and _gap(_closest(chosen, times), times) > 10:
        prefix = f"The journal has nothing {'for ' if symbols else ''}{where}; the closest says: "
    refusals = [q for q in chosen if q.kind == "refusal"]
    if "refusal" in kinds and refusals:
        first = _closest(refusals, times)
        said = [q for q in chosen if q.kind == "advisor" and q.symbol == first.symbol
                and abs((q.ts - first.ts).total_seconds()) <= 120]
        tail = f" {said[-1].summary} [{said[-1].rid}]." if said else ""
        return f"{prefix}{first.summary.rstrip('.')} [{first.rid}].{tail}"
    if "refusal" in kinds:
        sent = [q for q in chosen if q.kind == "order"]
        if sent:
            first = _closest(sent, times)
            return (f"The journal shows no refusal{' for ' + where if where else ''}: "
                    f"{first.summary} [{first.rid}].")
    trades = [q for q in chosen if q.kind == "trade"]
    if "trade" in kinds and trades:
        return (f"{prefix}{len(trades)} round trip{'s' if len(trades) != 1 else ''} closed"
                + (f" ({where})" if where else "") + ": "
                + "; ".join(f"{q.summary} [{q.rid}]" for q in trades) + ".")
    count = len(chosen)
    return (prefix + f"{count} journal record{'s' if count != 1 else ''} "
            f"match{'es' if count == 1 else ''}" + (f" ({where})" if where else "") + ":")


def _gap(quote: Quote, times: list[int]) -> int:
    return min(abs(quote.ts.hour * 60 + quote.ts.minute - t) for t in times)


def _closest(quotes: list[Quote], times: list[int]) -> Quote:
    if not times:
        return quotes[0]
    return min(quotes, key=lambda q: _gap(q, times))


def check_answer(content: str, quotes: dict[str, Quote], question: str
                 ) -> tuple[str, tuple[str, ...]]:
    """The model's answer and the records it cites, when it fits: JSON {answer, records}, cites
    only records given, states only their numbers (or the question's). ValueError otherwise."""
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise ValueError(f"malformed JSON ({exc})") from None
    if not isinstance(data, dict) or set(data) != {"answer", "records"}:
        raise ValueError('expected exactly {"answer": ..., "records": [...]}')
    text, cited = data["answer"], data["records"]
    if not isinstance(text, str) or not text.strip() or not isinstance(cited, list) or not all(
            isinstance(r, str) for r in cited):
        raise ValueError("answer must be text and records a list of ids")
    text = " ".join(text.split())[:1200]
    ids = tuple(dict.fromkeys(r.strip() for r in cited))
    unknown = [r for r in ids if r not in quotes]
    if not ids or unknown:
        raise ValueError("it cites " + (f"records that were not given ({', '.join(unknown[:5])})"
                                        if unknown else "no record"))
    said = instruction_in(text)
    if said:
        raise ValueError(f"it reads as an instruction ({said!r})")
    allowed = set().union(*(numbers_in(quotes[r].text) for r in ids)) | numbers_in(question)
    extra = numbers_in(text) - allowed
    if extra:
        raise ValueError(f"it states {shown_numbers(extra)}, which no cited record holds")
    return text, ids


async def answer(question: str, path: Path, day: date | None = None, *,
                 client: ChatClient | None = None, timeout: float = 30.0,
                 secrets: Iterable[str] = (), journal=None, mode: str = "off") -> Answer:
    """The answer to `question` from the journal at `path` (the day asked, or the last one)."""
    question = " ".join(question.split())[:MAX_QUESTION]
    if not question:
        raise ValueError("ask what? e.g. \"why was the AAPL entry at 10:42 refused?\"")
    secrets = list(secrets)
    question = redact_text(question, secrets)  # a secret typed into a question goes no further
    records = await asyncio.to_thread(read_day, path, day, None)
    quotes = records_of(records)
    known = {q.symbol for q in quotes if q.symbol}
    strangers = unknown_tickers(question, known)
    if strangers and not asked_symbols(question, known):
        chosen: list[Quote] = []  # about symbols this day never saw: nothing to quote
        plain = (f"The journal has no record for {', '.join(strangers)} on {records.day:%Y-%m-%d}"
                 + (f"; symbols with records that day: {', '.join(sorted(known))}." if known
                    else "."))
    else:
        chosen = select(quotes, question)
        plain = plain_answer(question, records, chosen)
    sessions = records.sessions
    if client is None:
        return Answer(question, records.day, plain, tuple(chosen), False,
                      "no model configured (LLM_MODEL): answered from the records", sessions)
    messages = redact(ask_messages(question, f"{records.day:%Y-%m-%d}",
                                   [(q.rid, q.text) for q in chosen]), secrets)
    content, reply, error = None, None, ""
    result: Answer
    try:
        reply = await client.complete(messages, timeout)
        content = reply.content
        text, ids = check_answer(content, {q.rid: q for q in chosen}, question)
        cited = [q for q in chosen if q.rid in ids]
        rest = [q for q in chosen if q.rid not in ids]
        result = Answer(question, records.day, text, tuple(cited + rest), True, "", sessions)
    except LlmError as exc:
        error = exc.message
        result = Answer(question, records.day, plain, tuple(chosen), False,
                        f"the model was not asked or did not answer: {exc.message}", sessions)
    except ValueError as exc:
        error = f"answer refused: {exc}"
        client.record_refused_answer(str(exc))
        result = Answer(question, records.day, plain, tuple(chosen), False,
                        f"the model's answer was not used: {exc}", sessions)
    if journal is not None:
        ts = chosen[-1].ts if chosen else (records.end_ts or datetime.now().astimezone())
        journal.model_call(ModelCall(
            uuid.uuid4().hex[:16], ts, "ask", question[:200], "", client.model, mode,
            json.dumps(messages), None if content is None else content[:8000],
            "answered" if result.by_model else "skipped", error=error,
            latency_ms=round(reply.latency_ms, 1) if reply else None,
            prompt_tokens=reply.prompt_tokens if reply else None,
            completion_tokens=reply.completion_tokens if reply else None),
            session_id=sessions[-1])
    return result


# -- python app.py ask "..." ---------------------------------------------------------------------
def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("question", help='a question about a session, e.g. "why was the AAPL entry '
                                    'at 10:42 refused?"')
    p.add_argument("--date", dest="ask_date", metavar="YYYY-MM-DD",
                   help="the trading day (default: the last day in the journal)")
    p.add_argument("--no-model", dest="ask_no_model", action="store_true",
                   help="answer from the records only, even with LLM_MODEL set")
    p.add_argument("--json", dest="ask_json", action="store_true", help="print the answer as JSON")


def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    from daytrader.runtime import UsageError

    def ask(path: Path, client: ChatClient | None, journal) -> Awaitable[Answer]:
        return answer(args.question, path, day, client=client, timeout=settings.llm_timeout,
                      secrets=secrets_of(settings), journal=journal, mode=settings.advisor_mode)

    day = command_day(args.ask_date)
    try:
        result = run_command(ask, settings, args.ask_no_model)
    except (NoRecords, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if args.ask_json:
        print(json.dumps(result.as_dict(), indent=2), file=out)
    else:
        print(result.plain(), file=out, end="")
    return 0
