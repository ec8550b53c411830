"""One bad record never costs the journal the others: it is set aside with its reason (kept,
logged, counted in health and `store status`), the rest of its batch commits, and the journal
goes on. A file that cannot be written at all keeps its records waiting instead."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import at, flat_bars, make_engine

from daytrader.models import OrderIntent, OrderType, RiskDecision, Side
from daytrader.store.journal import Journal, JournalError
from daytrader.store.wiring import store_health


def rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def poison_intent() -> OrderIntent:
    """What `qty=1e308` used to become: an int SQLite cannot store."""
    return OrderIntent("AAA", Side.BUY, 10 ** 308, OrderType.MARKET, ts=at("09:31"))


@pytest.fixture
def journal(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite", flush_interval=60)
    journal.start_session("sim", "test", "bad records", ("AAA",))
    yield journal
    journal.close()


def test_a_poison_record_is_set_aside_and_the_control_action_after_it_is_kept(journal, caplog):
    journal.equity(at("09:30"), "minute", Decimal("100000"), Decimal("100000"), "ENABLED")
    journal.risk_rejected(at("09:31"), "cid-poison", poison_intent(), RiskDecision(()))
    journal.equity(at("09:31"), "minute", Decimal("100001"), Decimal("100000"), "ENABLED")
    journal.control(at("09:31"), "api", "disable", "trading disabled by api")  # commits the batch
    journal.control(at("09:32"), "api", "enable", "trading enabled by api")  # the next batch works
    path = journal.path
    assert rows(path, "SELECT action FROM control_actions") == [("disable",), ("enable",)]
    assert len(rows(path, "SELECT * FROM equity_points")) == 2
    assert rows(path, "SELECT count(*) FROM risk_decisions") == [(0,)]
    aside = rows(path, "SELECT tbl, error, payload FROM set_aside")
    assert len(aside) == 1 and aside[0][0] == "risk_decisions"
    assert "OverflowError" in aside[0][1] and "cid-poison" in aside[0][2]
    assert journal.set_aside == 1 and journal.write_errors == 0
    assert "risk_decisions record set aside (OverflowError" in caplog.text
    # every written record has its outbox row (what Supabase will get); the poison has none
    assert rows(path, "SELECT count(*) FROM outbox WHERE tbl = 'risk_decisions'") == [(0,)]
    assert rows(path, "SELECT count(*) FROM outbox WHERE tbl = 'control_actions'") == [(2,)]
    health = store_health(journal, None)
    assert not health.ok and "1 record(s) set aside" in health.detail
    assert "OverflowError" in health.detail


@pytest.mark.parametrize("bad", [
    float("nan"),  # NOT NULL: SQLite stores NaN as NULL
    "\ud800",  # a lone surrogate: not encodable
    10 ** 20,  # beyond SQLite's 64-bit integers
])
def test_any_kind_of_bad_value_costs_only_its_own_record(journal, bad):
    journal.control(at("09:30"), "api", "note", "before")
    journal.equity(at("09:31"), "minute", bad, Decimal("1"), "ENABLED")
    journal.control(at("09:32"), "api", "note", "after")
    assert [r[0] for r in rows(journal.path, "SELECT detail FROM control_actions")] == [
        "before", "after"]
    assert journal.set_aside == 1


def test_a_bad_intent_is_never_sent_but_the_batch_before_it_is_kept(journal):
    journal.equity(at("09:30"), "minute", Decimal("100000"), Decimal("100000"), "ENABLED")
    with pytest.raises(JournalError):
        journal.intent("cid-1", poison_intent(), RiskDecision(()))
    assert len(rows(journal.path, "SELECT * FROM equity_points")) == 1
    assert rows(journal.path, "SELECT count(*) FROM intents") == [(0,)]


def test_a_locked_file_keeps_the_records_waiting_instead_of_setting_them_aside(journal):
    journal.conn.execute("PRAGMA busy_timeout=0")
    other = sqlite3.connect(journal.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the file
    journal.equity(at("09:30"), "minute", Decimal("1"), Decimal("1"), "ENABLED")
    journal.commit()
    assert journal.write_errors == 1 and journal.set_aside == 0
    intent = OrderIntent("AAA", Side.BUY, 1, OrderType.MARKET, ts=at("09:30"))
    with pytest.raises(JournalError):  # write-ahead: an intent that cannot be written is not sent
        journal.intent("cid-2", intent, RiskDecision(()))
    other.execute("ROLLBACK")
    other.close()
    journal.control(at("09:31"), "api", "disable", "after the lock")
    assert rows(journal.path, "SELECT count(*) FROM equity_points") == [(1,)]
    assert rows(journal.path, "SELECT action FROM control_actions") == [("disable",)]
    assert journal.set_aside == 0


async def test_an_engine_keeps_trading_and_journaling_after_a_poison_record(calendar, tmp_path):
    engine = make_engine(calendar)
    journal = Journal(tmp_path / "journal.sqlite", flush_interval=60)
    journal.start_session("sim", "test", "engine", engine.settings.symbols)
    engine.journal = journal
    await engine.on_minute(flat_bars(at("09:30"), AAA=100, BBB=50))
    journal.risk_rejected(at("09:30"), "cid-poison", poison_intent(), RiskDecision(()))
    engine.disable("api")
    result = await engine.submit(OrderIntent("AAA", Side.SELL, 5, OrderType.MARKET), "api")
    assert result.decision is not None and not result.decision.approved
    engine.enable("api")
    await engine.submit(OrderIntent("AAA", Side.BUY, 5, OrderType.MARKET), "api")
    await engine.on_minute(flat_bars(at("09:31"), AAA=100, BBB=50))
    journal.close()
    path = tmp_path / "journal.sqlite"
    actions = [r[0] for r in rows(path, "SELECT action FROM control_actions")]
    assert [a for a in actions if a in ("disable", "enable")] == ["disable", "enable"]
    assert rows(path, "SELECT count(*) FROM intents") == [(1,)]
    assert rows(path, "SELECT count(*) FROM fills") == [(1,)]
    assert rows(path, "SELECT count(*) FROM set_aside") == [(1,)]
