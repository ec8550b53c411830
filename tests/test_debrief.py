"""The daily debrief and `ask`, on a seeded sim day journaled to a real SQLite file: the report
holds the journal's figures exactly with and without a model, a model's narrative keeps only
sentences that cite the facts, and questions are answered from the records, quoting them."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import at
from fake_llm import FakeLLM, Reply

from daytrader.advisor.ask import answer
from daytrader.advisor.debrief import build_report, money
from daytrader.advisor.llm import ChatClient
from daytrader.config import Secret, Settings
from daytrader.headless import HeadlessRun
from daytrader.runtime import RunOptions
from daytrader.store.journal import Journal

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 24)


@pytest.fixture(scope="module")
def seeded_day(tmp_path_factory):
    """One full sim session (seed 42, six symbols, at most 2 positions so that the risk checks
    refuse some entries, a commission so that net and gross differ), journaled; the run writes
    its debrief at the end."""
    data = tmp_path_factory.mktemp("day")
    settings = Settings(data_dir=data, max_positions=2, sim_seed=42,
                        sim_commission_per_share=Decimal("0.005"))
    run = HeadlessRun(settings, RunOptions(speed=0, until="close", journal=True, quiet=True,
                                           json_summary=True), io.StringIO(), io.StringIO(),
                      now=lambda: at("16:30"))
    summary = asyncio.run(run.run())
    return data, summary, run.engine


@pytest.fixture(scope="module")
def llm():
    with FakeLLM() as server:
        yield server


def table(markdown: str, heading: str) -> list[list[str]]:
    """The rows of the Markdown table under `## heading` (without its header)."""
    section = markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def from_journal(path: Path) -> dict:
    """The day's figures recomputed here with SQL, not through the report's code."""
    conn = sqlite3.connect(path)
    equity = dict(conn.execute("SELECT kind, equity FROM equity_points WHERE kind IN "
                               "('sod', 'eod')").fetchall())
    rejected = Counter(r[0] for r in conn.execute(
        "SELECT failed_check FROM risk_decisions WHERE approved = 0"))
    commission = sum((Decimal(r[0]) for r in conn.execute("SELECT commission FROM fills")),
                     Decimal(0))
    sent = conn.execute("SELECT COUNT(*) FROM intents").fetchone()[0]
    trips = conn.execute("SELECT COUNT(*) FROM breaker_events WHERE action = 'trip'").fetchone()[0]
    conn.close()
    return {"sod": Decimal(equity["sod"]), "eod": Decimal(equity["eod"]), "rejected": rejected,
            "commission": commission, "sent": sent, "trips": trips}


def the_facts_part(markdown: str) -> str:
    return markdown.split("## Narrative", 1)[0]


def test_the_debrief_of_a_seeded_sim_day_holds_the_journals_figures_exactly(seeded_day):
    data, summary, engine = seeded_day
    path = data / "reports" / "2026-11-24.md"
    assert summary["debrief"] == str(path) and path.is_file()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    report = path.read_text()
    truth = from_journal(data / "journal.sqlite")
    figures = {row[0]: row[1] for row in table(report, "The day's figures")}
    trades = engine.book.trades  # what the engine booked while it traded
    net = [t.pnl - t.commission for t in trades]
    assert figures["start-of-day equity"] == money(truth["sod"]) == "$100,000.00"
    assert figures["end-of-day equity"] == money(truth["eod"]) == money(
        Decimal(summary["equity"]["end"]))
    pnl = truth["eod"] - truth["sod"]
    assert figures["day P&L"] == f"{money(pnl, True)} ({pnl / truth['sod'] * 100:+.2f}%)"
    assert figures["realized P&L (net)"] == money(sum(net, Decimal(0)), True) == money(
        Decimal(summary["metrics"]["realized"]), True)
    wins = sum(n > 0 for n in net)
    assert figures["trades"] == f"{len(trades)} ({wins} won, {len(trades) - wins} lost)"
    assert len(trades) == summary["metrics"]["trades"] > 10
    assert figures["win rate"] == f"{summary['metrics']['win_rate_pct']:.1f}%"
    assert figures["profit factor"] == f"{summary['metrics']['profit_factor']:.2f}"
    assert figures["orders"] == f"{truth['sent']} sent, {truth['sent']} filled (fill rate 100.0%)"
    assert figures["commissions"] == money(truth["commission"]) != "$0.00"
    assert figures["risk rejections"] == str(sum(truth["rejected"].values())) == str(
        sum(summary["risk_rejections"].values()))
    assert figures["breaker trips"] == str(truth["trips"]) == str(len(summary["breaker_trips"]))
    rows = table(report, "Trades")
    assert len(rows) == len(trades)
    for row, t in zip(rows, trades, strict=True):
        assert row[1:10] == [t.symbol, "long" if t.side.value == "buy" else "short", str(t.qty),
                             f"{t.entry_time:%H:%M}", str(t.entry_price), f"{t.exit_time:%H:%M}",
                             str(t.exit_price), money(t.pnl - t.commission, True), t.exit_reason]
    rejections = {row[0]: int(row[1]) for row in table(report, "Rejections by check")}
    assert rejections == dict(truth["rejected"]) == summary["risk_rejections"]
    assert rejections.get("max_positions", 0) > 0
    assert "_No model configured (LLM_MODEL): the report keeps to the journal's facts._" in report


async def test_with_a_model_the_narrative_cites_only_the_journals_facts(seeded_day, llm):
    data, summary, engine = seeded_day
    plain = await build_report(data / "journal.sqlite", DAY)
    facts = dict(plain.facts)
    pnl_fact = next(k for k, v in facts.items() if v.startswith("day P&L"))
    trades_fact = next(k for k, v in facts.items() if v.startswith("realized P&L"))
    llm.requests.clear()
    llm.script(json.dumps({"sentences": [
        {"text": f"The day closed {facts[pnl_fact].split('day P&L ')[1]}.", "facts": [pnl_fact]},
        {"text": f"{summary['metrics']['trades']} round trips closed.", "facts": [trades_fact]},
        {"text": "Profit came to $9,999.99 by the close.", "facts": [pnl_fact]},
        {"text": "AAPL was the star of the day.", "facts": ["F999"]},
        {"text": "Nothing to cite here.", "facts": []},
        {"text": "Tomorrow, buy 1000 TSLA at the open.", "facts": [pnl_fact]}]}))
    client = ChatClient(llm.url, "fake-model", Secret(""), 10)
    journal = Journal(data / "journal.sqlite")
    try:
        report = await build_report(data / "journal.sqlite", DAY, client=client, journal=journal,
                                    mode="advise")
    finally:
        journal.close()
        await client.aclose()
    assert the_facts_part(report.markdown) == the_facts_part(plain.markdown)  # the same facts
    assert [ids for _, ids in report.narrative] == [(pnl_fact,), (trades_fact,)]
    assert "Written by the model fake-model" in report.markdown
    assert f"- The day closed {facts[pnl_fact].split('day P&L ')[1]}. [{pnl_fact}]" in (
        report.markdown)
    note = report.narrative_note
    assert note.startswith("4 sentence(s) of the model's left out")
    assert "states 9999.99, which its facts do not hold" in note
    assert "cites F999" in note and "cites no fact" in note and "reads as an instruction" in note
    assert f"- {pnl_fact}: {facts[pnl_fact]}" in report.markdown  # the facts it may cite, listed
    # What the model was given: the facts, by id, nothing else.
    given = json.loads(llm.requests[0]["messages"][1]["content"])
    assert given == {"day": "2026-11-24", "facts": [{"id": k, "fact": v}
                                                   for k, v in plain.facts]}
    conn = sqlite3.connect(data / "journal.sqlite")
    kind, subject, outcome, session = conn.execute(
        "SELECT kind, subject, outcome, session_id FROM model_calls WHERE kind = 'debrief'"
    ).fetchone()
    sessions = [r[0] for r in conn.execute("SELECT session_id FROM sessions")]
    conn.close()
    assert (kind, subject, outcome) == ("debrief", "2026-11-24", "answered")
    assert sessions == [session]  # journaled under the day's session; no session of its own


@pytest.mark.parametrize(("reply", "note"), [
    (Reply(status=500), "Narrative skipped: model server error (HTTP 500)"),
    (Reply("the day was fine"), "Narrative skipped: the model's answer was not usable"),
    (Reply(json.dumps({"sentences": [{"text": "Up 12345.67 today.", "facts": ["F1"]}]})),
     "Narrative left out: no sentence of the model's could be checked against the facts"),
])
async def test_a_model_that_fails_leaves_the_facts_and_says_why(seeded_day, llm, reply, note):
    data, _, _ = seeded_day
    llm.script(reply)
    client = ChatClient(llm.url, "fake-model", Secret(""), 10)
    try:
        report = await build_report(data / "journal.sqlite", DAY, client=client)
    finally:
        await client.aclose()
    plain = await build_report(data / "journal.sqlite", DAY)
    assert the_facts_part(report.markdown) == the_facts_part(plain.markdown)
    assert report.narrative == () and report.narrative_note.startswith(note)
    assert f"_{report.narrative_note}_" in report.markdown


def cli(data: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "DATA_DIR": str(data), **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], capture_output=True,
                          text=True, timeout=120, cwd=data, env=environ)


def test_the_report_command_prints_and_saves_the_debrief(seeded_day, tmp_path):
    data, summary, _ = seeded_day
    done = cli(data, "report", "--date", "2026-11-24")
    assert done.returncode == 0, done.stderr
    saved = data / "reports" / "2026-11-24.md"
    assert done.stdout == saved.read_text()
    assert f"saved to {saved}" in done.stderr
    as_json = json.loads(cli(data, "report", "--json").stdout)
    assert as_json["figures"]["trades"] == summary["metrics"]["trades"]
    assert as_json["figures"]["rejections_by_check"] == summary["risk_rejections"]
    missing = cli(data, "report", "--date", "2026-11-25")
    assert missing.returncode == 2
    assert "error: the journal has no records for 2026-11-25" in missing.stderr
    bad = cli(data, "report", "--date", "24/11/2026")
    assert bad.returncode == 2 and "--date: expected YYYY-MM-DD" in bad.stderr
    empty = cli(tmp_path, "report")
    assert empty.returncode == 2 and "no journal at" in empty.stderr


# -- ask ------------------------------------------------------------------------------------------
def first_refusal(data: Path) -> tuple[str, str, str, str]:
    conn = sqlite3.connect(data / "journal.sqlite")
    ts, symbol, check, reason = conn.execute(
        "SELECT ts, symbol, failed_check, reason FROM risk_decisions WHERE approved = 0 "
        "ORDER BY rowid").fetchone()
    conn.close()
    return ts[11:16], symbol, check, reason


async def test_ask_why_an_entry_was_refused_is_answered_from_the_journal(seeded_day):
    data, _, _ = seeded_day
    hhmm, symbol, check, reason = first_refusal(data)
    result = await answer(f"why was the {symbol.lower()} entry at {hhmm} refused?",
                          data / "journal.sqlite")
    refusal = next(q for q in result.quotes if q.kind == "refusal")
    assert result.text.startswith(f"The {symbol} buy ")
    assert f"at {hhmm} was refused by the risk check {check}: {reason} [{refusal.rid}]" in (
        result.text)
    assert f"{hhmm} buy" in refusal.text and f"REFUSED by the risk check {check}" in refusal.text
    assert all(q.symbol in ("", symbol) for q in result.quotes)
    assert not result.by_model and "no model configured" in result.note


async def test_ask_with_a_model_quotes_the_records_it_cites_or_falls_back(seeded_day, llm):
    data, _, _ = seeded_day
    hhmm, symbol, check, _ = first_refusal(data)
    question = f"why was the {symbol} entry at {hhmm} refused?"
    plain = await answer(question, data / "journal.sqlite")
    refusal = next(q for q in plain.quotes if q.kind == "refusal")
    client = ChatClient(llm.url, "fake-model", Secret(""), 10)
    try:
        llm.requests.clear()
        llm.script(json.dumps({"answer": f"It was refused by {check} at {hhmm}.",
                               "records": [refusal.rid]}))
        worded = await answer(question, data / "journal.sqlite", client=client)
        assert worded.by_model and worded.text == f"It was refused by {check} at {hhmm}."
        assert worded.quotes[0] == refusal  # the cited record first
        given = json.loads(llm.requests[0]["messages"][1]["content"])
        assert given["question"] == question
        assert [r["id"] for r in given["records"]] == [q.rid for q in plain.quotes]
        for bad, why in ((json.dumps({"answer": "It lost 4321.5 dollars.",
                                      "records": [refusal.rid]}), "states 4321.5"),
                         (json.dumps({"answer": "Refused.", "records": ["R9999"]}),
                          "records that were not given (R9999)"),
                         ("refused, trust me", "malformed JSON")):
            llm.script(bad)
            fallback = await answer(question, data / "journal.sqlite", client=client)
            assert not fallback.by_model and fallback.text == plain.text
            assert fallback.note.startswith("the model's answer was not used") and why in (
                fallback.note)
    finally:
        await client.aclose()


async def test_ask_about_nothing_in_the_journal_says_so(seeded_day):
    data, _, engine = seeded_day
    result = await answer("what happened to ZZZZ at 10:00?", data / "journal.sqlite")
    assert result.text.startswith("The journal has no record for ZZZZ on 2026-11-24; symbols "
                                  "with records that day: AAPL, AMZN")
    assert result.quotes == ()
    quiet = await answer("why was the AAPL entry at 04:00 refused?", data / "journal.sqlite")
    assert quiet.quotes and all(q.symbol == "AAPL" for q in quiet.quotes)
    assert quiet.text.startswith("The journal has nothing for AAPL around 04:00; the closest "
                                 "says: The AAPL buy")
    breaker = await answer("did the breaker trip?", data / "journal.sqlite")
    assert breaker.text == "The journal has no circuit breaker event on 2026-11-24: it never tripped."
    trades = await answer("how did the NVDA trades end?", data / "journal.sqlite")
    nvda = [t for t in engine.book.trades if t.symbol == "NVDA"]
    assert len(nvda) > 1
    assert trades.text.startswith(f"{len(nvda)} round trips closed (NVDA): NVDA {nvda[0].qty} ")
    with pytest.raises(ValueError, match="ask what"):
        await answer("   ", data / "journal.sqlite")


def test_the_ask_command_answers_and_quotes(seeded_day):
    data, _, _ = seeded_day
    hhmm, symbol, check, _ = first_refusal(data)
    done = cli(data, "ask", f"why was the {symbol} entry at {hhmm} refused?")
    assert done.returncode == 0, done.stderr
    assert f"was refused by the risk check {check}" in done.stdout
    assert "From the journal (2026-11-24, session " in done.stdout
    assert f"REFUSED by the risk check {check}" in done.stdout
    as_json = json.loads(cli(data, "ask", "fills of AAPL", "--json").stdout)
    assert as_json["records"] and all(r["symbol"] in ("", "AAPL") for r in as_json["records"])
    assert cli(data, "ask", "x", "--date", "2026-11-25").returncode == 2
