"""The daily debrief: a Markdown report of one trading day, built from the journal.

The day's figures, the trades, rejections by check, breaker trips, controls, slippage, the
advisor's record, and what went well and badly, each stated as a fact computed from the journal.
With a model configured it adds a short narrative; every sentence of it must cite the facts it
uses (F1, F2, ...) and hold no number those facts do not hold, or it is left out (and the report
says so). Saved as DATA_DIR/reports/<date>.md after each session's close, on demand with
`python app.py report [--date D]`, and shown in the console (key p).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO, TypeVar

from daytrader.advisor.dayfacts import DayJournal, NoRecords, read_day
from daytrader.advisor.llm import ChatClient, LlmError
from daytrader.advisor.opinion import instruction_in
from daytrader.advisor.prompts import debrief_messages, redact, secrets_of
from daytrader.config import Settings
from daytrader.models import ZERO, ModelCall, Side, Trade
from daytrader.wording import agree, plural

REPORTS = "reports"
MAX_SENTENCES = 6
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def money(value: Decimal, sign: bool = False) -> str:
    plus = "+" if sign and value > 0 else ""
    minus = "-" if value < 0 else ""
    return f"{plus}{minus}${abs(value):,.2f}"


def _hm(ts: datetime) -> str:
    return f"{ts:%H:%M}"


def _net(t: Trade) -> Decimal:
    return t.pnl - t.commission


def _side(t: Trade) -> str:
    return "long" if t.side is Side.BUY else "short"


def numbers_in(text: str) -> set[Decimal]:
    """The numbers a text states (1,234.50 and 1234.5 are the same number)."""
    found = set()
    for raw in _NUMBER.findall(text):
        try:
            found.add(Decimal(raw.replace(",", "")).normalize())
        except InvalidOperation:
            continue
    return found


def shown_numbers(numbers: set[Decimal], limit: int = 5) -> str:
    return ", ".join(sorted(format(n, "f") for n in numbers)[:limit])


@dataclass(frozen=True, slots=True)
class Report:
    day: date
    markdown: str
    facts: tuple[tuple[str, str], ...]  # (id, text): what a narrative may cite
    narrative: tuple[tuple[str, tuple[str, ...]], ...] = ()  # kept sentences and their facts
    narrative_note: str = ""  # no model, skipped (why), sentences left out (why)
    path: Path | None = None
    figures: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"day": self.day.isoformat(), "path": str(self.path) if self.path else None,
                "figures": self.figures, "facts": dict(self.facts),
                "narrative": [{"text": t, "facts": list(ids)} for t, ids in self.narrative],
                "narrative_note": self.narrative_note}


class DayView:
    """The figures of a day, each formatted once: the tables and the facts read the same text."""

    def __init__(self, day: DayJournal) -> None:
        self.j = day
        self.m = day.metrics()
        m = self.m
        self.start = money(day.start_equity) if day.start_equity is not None else "not journaled"
        self.end = money(day.end_equity) if day.end_equity is not None else "not journaled"
        if day.start_equity is not None and day.end_equity is not None:
            pnl = day.end_equity - day.start_equity
            pct = pnl / day.start_equity * 100 if day.start_equity else ZERO
            self.day_pnl = f"{money(pnl, True)} ({'+' if pct > 0 else ''}{pct:.2f}%)"
        else:
            self.day_pnl = "not known"
        self.realized = money(m.realized, True)
        self.win_rate = f"{m.win_rate:.1f}%"
        self.profit_factor = ("no losing trade" if m.profit_factor is None and m.trades
                              else "n/a" if m.profit_factor is None else f"{m.profit_factor:.2f}")
        self.drawdown = f"{money(Decimal(str(round(m.max_drawdown, 2))))} ({m.max_drawdown_pct:.2f}%)"
        self.slippage = ("n/a" if m.slippage_bps is None else
                         f"{m.slippage_bps:.2f} bps (mean of {len(day.executions)} fills against "
                         "the decision price)")
        self.fill_rate = (f"{day.orders_sent} sent, {day.orders_filled} filled"
                          + ("" if m.fill_rate is None else f" (fill rate {m.fill_rate:.1f}%)"))
        self.advice = {a.subject: a for a in day.advice if a.kind == "entry"}

    def advisor_of(self, index: int) -> str:
        a = self.advice.get(self.j.entry_cids.get(index, ""))
        if a is None:
            return ""
        return "skipped" if a.verdict is None else f"{a.verdict.upper()} {a.confidence:.2f}"


def _facts(v: DayView) -> list[str]:
    """Every statement the report makes about the day; the narrative may cite only these."""
    j, m = v.j, v.m
    facts = [f"start-of-day equity {v.start}",
             f"end-of-day equity {v.end}" if j.finished else
             f"last equity point {v.end} at {_hm(j.end_ts)}: the day had not finished"
             if j.end_ts else "no equity point after the start of the day",
             f"day P&L {v.day_pnl}",
             f"realized P&L (net of commissions) {v.realized} over {plural(m.trades, 'trade')}: {m.wins} "
             f"won, {m.losses} lost, win rate {v.win_rate}",
             f"profit factor {v.profit_factor}",
             f"average win {money(m.avg_win, True)}, average loss {money(m.avg_loss, True)}",
             f"max drawdown {v.drawdown}",
             f"orders: {v.fill_rate}",
             f"slippage {v.slippage}",
             f"commissions {money(j.commissions)}"]
    for i, t in enumerate(j.trades, 1):
        facts.append(f"trade {i}: {t.symbol} {_side(t)} {t.qty} from {_hm(t.entry_time)} @ "
                     f"{t.entry_price} to {_hm(t.exit_time)} @ {t.exit_price}, net P&L "
                     f"{money(_net(t), True)}, exit {t.exit_reason}")
    if j.trades:
        best = max(j.trades, key=_net)
        worst = min(j.trades, key=_net)
        facts.append(f"best trade {best.symbol} {money(_net(best), True)} ({best.exit_reason})")
        facts.append(f"worst trade {worst.symbol} {money(_net(worst), True)} "
                     f"({worst.exit_reason})")
        for symbol, net in _by(j.trades, lambda t: t.symbol):
            count = sum(t.symbol == symbol for t in j.trades)
            facts.append(f"{symbol}: {plural(count, 'trade')}, net {money(net, True)}")
        exits = Counter(t.exit_reason for t in j.trades)
        facts.append("exits: " + ", ".join(f"{k} {n}" for k, n in exits.most_common()))
    rejected = Counter(d.check or "?" for d in j.rejections)
    facts.append(f"risk rejections {sum(rejected.values())}" + (
        ": " + ", ".join(f"{k} {n}" for k, n in rejected.most_common()) if rejected else ""))
    trips = [b for b in j.breaker if b.action == "trip"]
    facts.append("no circuit breaker trip" if not trips else "; ".join(
        f"circuit breaker tripped at {_hm(b.ts)}" + (f" at a daily loss of {b.loss_pct:.2f}%"
                                                    if b.loss_pct is not None else "")
        for b in trips))
    for c in j.controls:
        if c.action in ("emergency_stop", "disable", "reset_breaker"):
            facts.append(f"{c.action.replace('_', ' ')} at {_hm(c.ts)} by {c.source}")
    facts.extend(_advisor_facts(v))
    return facts


def _by(trades: Iterable[Trade], key) -> list[tuple[str, Decimal]]:
    totals: dict[str, Decimal] = {}
    for t in trades:
        totals[key(t)] = totals.get(key(t), ZERO) + _net(t)
    return sorted(totals.items(), key=lambda kv: kv[1], reverse=True)


def _advisor_facts(v: DayView) -> list[str]:
    entries = [a for a in v.j.advice if a.kind == "entry"]
    if not entries:
        return []
    outcome = Counter(a.outcome for a in entries)
    refused = sum(1 for d in v.j.rejections if d.check == "advisor")
    mode = entries[-1].mode
    facts = [f"advisor ({mode} mode): {plural(len(entries), 'entry')} asked; " + ", ".join(
        f"{k} {outcome[k]}" for k in ("agree", "caution", "veto", "skipped") if outcome[k])
        + f"; {plural(refused, 'entry')} refused by the advisor"]
    skips = Counter(a.error for a in entries if a.verdict is None)
    if skips:
        facts.append("advisor skipped: " + "; ".join(f"{why} ({n})"
                                                     for why, n in skips.most_common(3)))
    latencies = [a.latency_ms for a in entries if a.latency_ms is not None and a.verdict]
    if latencies:
        facts.append(f"advisor latency median {statistics.median(latencies):.0f} ms, max "
                     f"{max(latencies):.0f} ms")
    tokens = sum((a.prompt_tokens or 0) + (a.completion_tokens or 0) for a in v.j.advice)
    if tokens:
        facts.append(f"model tokens used {tokens}")
    for verdict in ("agree", "caution", "veto"):
        ended = [t for i, t in enumerate(v.j.trades)
                 if (a := v.advice.get(v.j.entry_cids.get(i, ""))) and a.verdict == verdict]
        if ended:
            lost = [t for t in ended if _net(t) <= 0]
            facts.append(f"trades whose entry the advisor marked {verdict}: {len(ended)}, "
                         f"{len(lost)} lost, net {money(sum((_net(t) for t in ended), ZERO), True)}")
    return facts


def _went(v: DayView) -> tuple[list[str], list[str]]:
    """What went well and what went badly, as plain rules over the figures."""
    j, m = v.j, v.m
    good, bad = [], []
    if j.trades:
        best, worst = max(j.trades, key=_net), min(j.trades, key=_net)
        if _net(best) > 0:
            good.append(f"Best trade: {best.symbol} {_side(best)} {best.qty}, "
                        f"{money(_net(best), True)} ({best.exit_reason}).")
        if _net(worst) < 0:
            bad.append(f"Worst trade: {worst.symbol} {_side(worst)} {worst.qty}, "
                       f"{money(_net(worst), True)} ({worst.exit_reason}).")
        ranked = _by(j.trades, lambda t: t.symbol)
        if ranked[0][1] > 0:
            good.append(f"Best symbol: {ranked[0][0]}, net {money(ranked[0][1], True)}.")
        if ranked[-1][1] < 0:
            bad.append(f"Worst symbol: {ranked[-1][0]}, net {money(ranked[-1][1], True)}.")
        targets = sum(t.exit_reason == "take_profit" for t in j.trades)
        stops = sum(t.exit_reason == "stop_loss" for t in j.trades)
        if targets:
            good.append(f"{plural(targets, 'trade')} reached the take-profit.")
        if stops:
            bad.append(f"{plural(stops, 'trade')} {agree(stops, 'was')} stopped out.")
        (good if m.realized > 0 else bad).append(f"Realized P&L {v.realized}, win rate "
                                                 f"{v.win_rate}.")
    else:
        bad.append("No round trip closed this day.")
    if any(b.action == "trip" for b in j.breaker):
        bad.append("The circuit breaker tripped: entries were halted.")
    else:
        good.append("The circuit breaker never tripped.")
    if j.rejections:
        top = Counter(d.check or "?" for d in j.rejections).most_common(1)[0]
        bad.append(f"{plural(len(j.rejections), 'order')} {agree(len(j.rejections), 'was')} refused by "
                   f"the risk checks (most by "
                   f"{top[0]}: {top[1]}).")
    if any(c.action == "emergency_stop" for c in j.controls):
        bad.append("An emergency stop was used.")
    if m.slippage_bps is not None and m.slippage_bps > 5:
        bad.append(f"Slippage was high: {v.slippage}.")
    skipped = sum(1 for a in j.advice if a.kind == "entry" and a.verdict is None)
    if skipped:
        bad.append(f"The advisor was skipped on {plural(skipped, 'entry')}.")
    if not j.finished:
        bad.append("The day had not finished when this report was made.")
    return good, bad


def _markdown(v: DayView, facts: Sequence[tuple[str, str]],
              narrative: Sequence[tuple[str, tuple[str, ...]]], note: str, model: str) -> str:
    j, m = v.j, v.m
    out = [f"# Daily debrief: {j.day:%A %Y-%m-%d} ({j.mode})", "",
           f"From the journal {j.path}, session{'s' if len(j.sessions) > 1 else ''} "
           f"{', '.join(j.sessions)}" + ("" if j.finished else
                                         f"; the day had not finished (last point "
                                         f"{_hm(j.end_ts)})" if j.end_ts else "") + ".", "",
           "## The day's figures", "", "| figure | value |", "|---|---|",
           f"| start-of-day equity | {v.start} |",
           f"| {'end-of-day' if j.finished else 'latest'} equity | {v.end} |",
           f"| day P&L | {v.day_pnl} |",
           f"| realized P&L (net) | {v.realized} |",
           f"| trades | {m.trades} ({m.wins} won, {m.losses} lost) |",
           f"| win rate | {v.win_rate} |",
           f"| profit factor | {v.profit_factor} |",
           f"| expectancy | {money(m.expectancy, True)} |",
           f"| average win / loss | {money(m.avg_win, True)} / {money(m.avg_loss, True)} |",
           f"| max drawdown | {v.drawdown} |",
           f"| exposure | {m.exposure_pct:.1f}% of the day's minutes |",
           f"| orders | {v.fill_rate} |",
           f"| slippage | {v.slippage} |",
           f"| commissions | {money(j.commissions)} |",
           f"| risk rejections | {len(j.rejections)} |",
           f"| breaker trips | {sum(1 for b in j.breaker if b.action == 'trip')} |", ""]
    out += ["## Trades", ""]
    if j.trades:
        out += ["| # | symbol | side | qty | in | entry | out | exit | net P&L | exit reason | "
                "strategy | advisor |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for i, t in enumerate(j.trades):
            out.append(f"| {i + 1} | {t.symbol} | {_side(t)} | {t.qty} | {_hm(t.entry_time)} | "
                       f"{t.entry_price} | {_hm(t.exit_time)} | {t.exit_price} | "
                       f"{money(_net(t), True)} | {t.exit_reason} | {t.strategy or '-'} | "
                       f"{v.advisor_of(i) or '-'} |")
    else:
        out.append("No round trip closed this day.")
    out += ["", "## Rejections by check", ""]
    if j.rejections:
        out += ["| check | count | first | why |", "|---|---|---|---|"]
        by_check: dict[str, list] = {}
        for d in j.rejections:
            by_check.setdefault(d.check or "?", []).append(d)
        for check, items in sorted(by_check.items(), key=lambda kv: -len(kv[1])):
            d = items[0]
            out.append(f"| {check} | {len(items)} | {_hm(d.ts)} {d.symbol} {d.side} {d.qty} | "
                       f"{_cell(d.reason)} |")
    else:
        out.append("None.")
    out += ["", "## Circuit breaker and controls", ""]
    shown = [f"- {_hm(b.ts)} breaker {b.action} ({b.source}): {_cell(b.message)}"
             for b in j.breaker]
    shown += [f"- {_hm(c.ts)} {c.action} by {c.source}" for c in j.controls
              if c.action not in ("sync",)]
    out += shown or ["No breaker event and no control action."]
    advisor = _advisor_facts(v)
    if advisor:
        out += ["", "## Advisor", ""] + [f"- {_cap(f)}." for f in advisor]
    good, bad = _went(v)
    out += ["", "## What went well", ""] + ([f"- {g}" for g in good] or ["- Nothing stood out."])
    out += ["", "## What went badly", ""] + ([f"- {b}" for b in bad] or ["- Nothing stood out."])
    out += ["", "## Narrative", ""]
    if narrative:
        out.append(f"Written by the model {model}, from the facts below only (each sentence "
                   "cites them).")
        out.append("")
        out += [f"- {text} [{', '.join(ids)}]" for text, ids in narrative]
        if note:
            out += ["", f"_{note}_"]
        out += ["", "### Facts", ""] + [f"- {fid}: {text}" for fid, text in facts]
    else:
        out.append(f"_{note}_")
    return "\n".join(out) + "\n"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "/").split())[:200]


def check_narrative(content: str, facts: dict[str, str], day: date
                    ) -> tuple[list[tuple[str, tuple[str, ...]]], list[str]]:
    """The sentences of a model's narrative that cite known facts and state only their numbers,
    and why each other one was left out. ValueError when the answer is not the JSON shape."""
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise ValueError(f"malformed JSON ({exc})") from None
    if not isinstance(data, dict) or set(data) != {"sentences"} or not isinstance(
            data["sentences"], list):
        raise ValueError('expected exactly {"sentences": [...]}')
    allowed_days = numbers_in(f"{day:%Y-%m-%d}")
    kept, dropped = [], []
    for item in data["sentences"][:MAX_SENTENCES]:
        if not (isinstance(item, dict) and isinstance(item.get("text"), str)
                and isinstance(item.get("facts"), list)
                and all(isinstance(f, str) for f in item["facts"])):
            dropped.append("a sentence not in the shape {text, facts}")
            continue
        text = " ".join(item["text"].split())[:400]
        ids = tuple(dict.fromkeys(f.strip() for f in item["facts"]))
        unknown = [f for f in ids if f not in facts]
        if not ids or unknown:
            dropped.append(f"{text[:60]!r}: cites {'no fact' if not ids else ', '.join(unknown)}")
            continue
        said = instruction_in(text)
        if said:
            dropped.append(f"{text[:60]!r}: reads as an instruction ({said!r})")
            continue
        cited = set().union(*(numbers_in(facts[f]) for f in ids)) | allowed_days
        extra = numbers_in(text) - cited
        if extra:
            dropped.append(f"{text[:60]!r}: states {shown_numbers(extra)}, which its facts do "
                           "not hold")
            continue
        kept.append((text, ids))
    return kept, dropped


async def build_report(path: Path, day: date | None = None, *, session: str | None = None,
                       client: ChatClient | None = None, timeout: float = 30.0,
                       secrets: Iterable[str] = (), journal=None, mode: str = "off") -> Report:
    """The day's report from the journal at `path`; with `client`, a checked narrative too.
    `journal` (the running session's, or one opened for it) keeps the model's exchange."""
    records = await asyncio.to_thread(read_day, path, day, session)
    view = DayView(records)
    facts = tuple((f"F{i}", text) for i, text in enumerate(_facts(view), 1))
    narrative: list[tuple[str, tuple[str, ...]]] = []
    if client is None:
        note = ("No model configured (LLM_MODEL): the report keeps to the journal's facts.")
    else:
        messages = redact(debrief_messages(f"{records.day:%Y-%m-%d}", facts), secrets)
        content, error, reply = None, "", None
        try:
            reply = await client.complete(messages, timeout)
            content = reply.content
            narrative, dropped = check_narrative(content, dict(facts), records.day)
            note = "" if not dropped else (f"{len(dropped)} sentence(s) of the model's left out: "
                                           + "; ".join(dropped))
            if not narrative:
                error = "no sentence of the model's could be checked against the facts"
                note = f"Narrative left out: {error}" + (f" ({'; '.join(dropped)})" if dropped
                                                         else "") + "."
        except LlmError as exc:
            error = exc.message
            note = f"Narrative skipped: {exc.message}; the facts above stand on their own."
        except ValueError as exc:
            error = f"answer refused: {exc}"
            client.record_refused_answer(str(exc))
            note = f"Narrative skipped: the model's answer was not usable ({exc})."
        if journal is not None:
            journal.model_call(ModelCall(
                uuid.uuid4().hex[:16], records.end_ts or datetime.now().astimezone(), "debrief",
                f"{records.day:%Y-%m-%d}", "", client.model, mode, json.dumps(messages),
                None if content is None else content[:8000],
                "answered" if narrative else "skipped",
                error=note if narrative else (error or note),
                latency_ms=round(reply.latency_ms, 1) if reply else None,
                prompt_tokens=reply.prompt_tokens if reply else None,
                completion_tokens=reply.completion_tokens if reply else None),
                session_id=records.sessions[-1])
    markdown = _markdown(view, facts, narrative, note, client.model if client else "")
    m = view.m
    figures = {"start_equity": view.start, "end_equity": view.end, "day_pnl": view.day_pnl,
               "finished": records.finished, "realized": view.realized, "trades": m.trades,
               "wins": m.wins, "losses": m.losses, "win_rate": view.win_rate,
               "profit_factor": view.profit_factor, "max_drawdown": view.drawdown,
               "slippage": view.slippage, "orders": view.fill_rate,
               "rejections_by_check": dict(Counter(d.check or "?" for d in records.rejections)),
               "breaker_trips": sum(1 for b in records.breaker if b.action == "trip"),
               "sessions": list(records.sessions)}
    return Report(records.day, markdown, facts, tuple(narrative), note, None, figures)


def save(report: Report, data_dir: Path) -> Report:
    """Writes DATA_DIR/reports/<date>.md (owner-only, replaced whole) and returns it with its path."""
    folder = data_dir / REPORTS
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{report.day:%Y-%m-%d}.md"
    temp = path.with_suffix(".md.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(report.markdown)
    os.replace(temp, path)
    return Report(report.day, report.markdown, report.facts, report.narrative,
                  report.narrative_note, path, report.figures)


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--date: expected YYYY-MM-DD, got {text[:40]!r}") from None


# -- python app.py report ------------------------------------------------------------------------
def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--date", dest="report_date", metavar="YYYY-MM-DD",
                   help="the trading day (default: the last day in the journal)")
    p.add_argument("--session", dest="report_session", metavar="ID",
                   help="one session of the journal (default: the one that traded that day)")
    p.add_argument("--no-model", dest="report_no_model", action="store_true",
                   help="facts only, even with LLM_MODEL set")
    p.add_argument("--json", dest="report_json", action="store_true",
                   help="print the figures, facts and narrative as JSON instead of Markdown")


def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    from daytrader.runtime import UsageError

    def build(path: Path, client: ChatClient | None, journal) -> Awaitable[Report]:
        return build_report(path, day, session=args.report_session, client=client,
                            timeout=settings.llm_timeout, secrets=secrets_of(settings),
                            journal=journal, mode=settings.advisor_mode)

    day = command_day(args.report_date)
    try:
        report = run_command(build, settings, args.report_no_model)
    except NoRecords as exc:
        raise UsageError(str(exc)) from None
    report = save(report, settings.data_dir)
    if args.report_json:
        print(json.dumps(report.as_dict(), indent=2), file=out)
    else:
        print(report.markdown, file=out, end="")
    print(f"saved to {report.path}", file=sys.stderr)
    return 0


# -- what the report and ask commands share -----------------------------------------------------
def command_day(text: str | None) -> date | None:
    """`--date`, checked (UsageError names it), or None for the journal's last day."""
    from daytrader.runtime import UsageError

    try:
        return parse_date(text) if text else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None


T = TypeVar("T")


def run_command(work: Callable[[Path, ChatClient | None, object], Awaitable[T]],
                settings: Settings, no_model: bool) -> T:
    """Runs a command's `work(journal path, model client or None, journal for the model's
    exchanges or None)`, then closes what it opened."""
    from daytrader.store.wiring import journal_path

    path = journal_path(settings)
    client = None if no_model else ChatClient.from_settings(settings)

    async def go() -> T:
        journal = open_for_model_calls(path) if client is not None else None
        try:
            return await work(path, client, journal)
        finally:
            if journal is not None:
                journal.close()
            if client is not None:
                await client.aclose()

    return asyncio.run(go())


def open_for_model_calls(path: Path):
    """The journal, opened by a command (report, ask) only to keep its model exchanges under
    the session they are about: no session of its own (a crashed session stays resumable)."""
    from daytrader.store.journal import Journal

    if not path.is_file():
        raise NoRecords(f"no journal at {path}: nothing has been traded with this DATA_DIR yet")
    return Journal(path)
