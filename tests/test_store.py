"""The SQLite journal: migrations, write-ahead intents, what the engine records, restart, CLI."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
from conftest import at, flat_bars, make_engine

from daytrader.models import OrderIntent, OrderType, Side
from daytrader.orders import SubmitStatus
from daytrader.store.journal import Journal
from daytrader.store.schema import MIGRATIONS, SCHEMA_VERSION, TABLES, migrate, schema_version

ROOT = Path(__file__).resolve().parent.parent


def buy(symbol: str, qty: int, stop: str | None = None, take: str | None = None) -> OrderIntent:
    return OrderIntent(symbol, Side.BUY, qty, OrderType.MARKET,
                       stop_loss=Decimal(stop) if stop else None,
                       take_profit=Decimal(take) if take else None)


def journaled(calendar, tmp_path, **overrides):
    engine = make_engine(calendar, **overrides)
    journal = Journal(tmp_path / "journal.sqlite")
    journal.start_session("sim", "test", "unit", engine.settings.symbols)
    engine.journal = journal
    return engine, journal


def count(path: Path, table: str, where: str = "1") -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]


def test_a_new_file_is_migrated_to_the_current_schema_in_wal_mode(tmp_path):
    journal = Journal(tmp_path / "j.sqlite")
    assert journal.migrated == (0, SCHEMA_VERSION)
    conn = sqlite3.connect(tmp_path / "j.sqlite")
    assert schema_version(conn) == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert set(TABLES) | {"outbox", "replication_state", "set_aside"} <= names
    journal.close()


def test_a_version_1_file_is_migrated_and_keeps_its_records(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=1)
    assert schema_version(conn) == 1 and len(MIGRATIONS) == SCHEMA_VERSION == 4
    conn.execute("INSERT INTO control_actions VALUES ('a1','s1','2026-11-24T10:00:00-05:00',"
                 "'console','disable','trading disabled by console')")
    conn.execute("INSERT INTO outbox (tbl, row_key, payload, created_at) VALUES "
                 "('control_actions','a1','{}',0)")
    conn.close()
    journal = Journal(path)
    assert journal.migrated == (1, 4)
    row = journal.conn.execute("SELECT action, sent_at, failed_at, error FROM control_actions "
                               "JOIN outbox ON row_key = action_id").fetchone()
    assert row == ("disable", None, None, None)
    assert journal.conn.execute("SELECT COUNT(*) FROM model_calls").fetchone() == (0,)
    journal.close()
    assert Journal(path).migrated == (4, 4)  # idempotent at every start


async def test_an_intent_is_journaled_before_it_is_sent(calendar, tmp_path):
    engine, journal = journaled(calendar, tmp_path)
    seen_at_send: list[int] = []
    submit = engine.broker.submit_order

    async def spy(request):
        seen_at_send.append(count(journal.path, "intents",
                                  f"client_order_id = '{request.client_order_id}'"))
        return await submit(request)

    engine.broker.submit_order = spy
    await engine.on_minute(flat_bars(at("09:30"), AAA=100))
    result = await engine.submit(buy("AAA", 10, "99.00", "105.00"))
    assert result.ok and seen_at_send == [1]  # on disk (committed) before the broker saw it


async def test_an_intent_that_cannot_be_journaled_is_not_sent(calendar, tmp_path):
    engine, journal = journaled(calendar, tmp_path)
    await engine.on_minute(flat_bars(at("09:30"), AAA=100))
    journal.conn.execute("DROP TABLE intents")  # the disk says no
    result = await engine.submit(buy("AAA", 10, "99.00", "105.00"))
    assert result.status is SubmitStatus.NOT_SENT and "journal write failed" in result.message
    assert engine.broker.orders() == []


async def test_the_engine_journals_what_it_acts_on(calendar, tmp_path):
    engine, journal = journaled(calendar, tmp_path, risk_per_trade_pct=100.0)
    await engine.on_minute(flat_bars(at("09:30"), AAA=100, BBB=50))
    assert (await engine.submit(buy("AAA", 500, stop="1.00"), source="api")).ok
    await engine.on_minute(flat_bars(at("09:31"), AAA=100, BBB=50))  # fills
    await engine.on_minute(flat_bars(at("09:32"), AAA=90, BBB=50))  # breaker trips
    refused = await engine.submit(buy("BBB", 10, stop="49.00"))
    assert refused.status is SubmitStatus.RISK_REJECTED
    engine.disable("ctl")
    engine.reset_breaker("console")
    journal.close()
    path = journal.path
    assert count(path, "intents") == 1
    assert count(path, "fills") == 1 and count(path, "position_snapshots") == 1
    assert count(path, "order_events", "event = 'fill'") == 1
    assert count(path, "risk_decisions", "approved = 0 AND failed_check = 'circuit_breaker'") == 1
    assert count(path, "breaker_events", "action = 'trip'") == 1
    assert count(path, "breaker_events", "action = 'reset' AND source = 'console'") == 1
    assert count(path, "control_actions", "source = 'ctl' AND action = 'disable'") == 1
    assert count(path, "control_actions", "source = 'api' AND action = 'order'") == 1
    assert count(path, "equity_points", "kind = 'minute'") == 3
    assert count(path, "equity_points", "kind = 'sod'") == 1
    assert count(path, "sessions", "stopped_at IS NOT NULL") == 1
    with sqlite3.connect(path) as conn:  # every record has its outbox row, in journal order
        outbox = conn.execute("SELECT tbl, payload FROM outbox ORDER BY seq").fetchall()
        records = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES)
    assert len(outbox) == records + 1  # the session row is sent again when it stops
    assert json.loads(outbox[0][1])["mode"] == "sim"


def test_buffered_records_wait_at_most_the_flush_interval(tmp_path):
    journal = Journal(tmp_path / "j.sqlite", flush_interval=60)
    journal.start_session("sim", "test", "unit", ("AAA",))
    for minute in range(30, 40):
        journal.equity(at(f"09:{minute}"), "minute", Decimal("100000"), Decimal("100000"), "ENABLED")
    assert count(journal.path, "equity_points") == 0  # batched: no commit per point
    journal.control(at("09:40"), "console", "disable", "trading disabled")  # commits all before it
    assert count(journal.path, "equity_points") == 10
    journal.close()


def run_app(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env={"PATH": "/usr/bin:/bin"})


def test_store_commands_status_and_parquet_export(tmp_path):
    proc = run_app("--headless", "--speed", "max", "--duration", "60m", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    status = run_app("store", "status", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "schema v4" in status.stdout and "integrity: ok" in status.stdout
    assert "Supabase: not configured" in status.stdout
    export = run_app("store", "export", "--format", "parquet", "--out", "out", cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    points = pl.read_parquet(tmp_path / "out" / "equity_points.parquet")
    assert points.filter(pl.col("kind") == "minute").height == 60
    assert (tmp_path / "out" / "fills.parquet").exists()
    replay = run_app("store", "replay-to-supabase", cwd=tmp_path)
    assert replay.returncode == 2 and "SUPABASE_URL" in replay.stderr


def test_store_status_without_a_journal_says_where_it_looked(tmp_path):
    proc = run_app("store", "status", cwd=tmp_path)
    assert proc.returncode == 2 and "no journal" in proc.stderr and "Traceback" not in proc.stderr
