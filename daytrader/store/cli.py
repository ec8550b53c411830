"""`python app.py store status | replay-to-supabase | export --format parquet`: operations on the
journal, without starting the engine."""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

from daytrader.config import Settings
from daytrader.store.journal import connect
from daytrader.store.replicator import backlog_of
from daytrader.store.schema import SCHEMA_VERSION, TABLES, migrate, schema_version
from daytrader.store.wiring import journal_path, replicator_for


def configure(store: argparse.ArgumentParser) -> None:
    """The `store` sub-command's own actions (the CLI's command registry calls this)."""
    actions = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    actions.add_parser("status", help="records per table, sessions, replication backlog and errors")
    replay = actions.add_parser("replay-to-supabase",
                                help="send what Supabase has not got yet (idempotent upserts)")
    replay.add_argument("--all", action="store_true",
                        help="send every record again, including those set aside after an error")
    replay.add_argument("--timeout", type=float, default=300.0, metavar="S",
                        help="give up after this many seconds (default 300)")
    export = actions.add_parser("export", help="write every table to a file per table")
    export.add_argument("--format", choices=("parquet",), default="parquet")
    export.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (default DATA_DIR/export)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    path = journal_path(settings)
    if not path.exists():
        print(f"error: no journal at {path} (set DATA_DIR, or run the engine once)", file=sys.stderr)
        return 2
    conn = connect(path)
    try:
        migrate(conn)
        command = {"status": status, "replay-to-supabase": replay, "export": export}
        return command[args.store_command](args, settings, conn, path)
    finally:
        conn.close()


def status(args, settings: Settings, conn: sqlite3.Connection, path: Path) -> int:
    print(f"journal {path} (schema v{schema_version(conn)} of {SCHEMA_VERSION}, "
          f"{path.stat().st_size / 1e6:.1f} MB)")
    print(f"integrity: {conn.execute('PRAGMA quick_check').fetchone()[0]}")
    for table in TABLES:
        print(f"  {table:<19} {conn.execute(f'SELECT count(*) FROM {table}').fetchone()[0]:>9}")
    for sid, mode, source, started, stopped, reason in conn.execute(
            "SELECT session_id, mode, source, started_at, stopped_at, stop_reason FROM sessions "
            "ORDER BY rowid DESC LIMIT 3"):
        end = f"stopped {stopped} ({reason})" if stopped else "NOT STOPPED (resumes on next start)"
        print(f"  session {sid} {mode} {source}: started {started}, {end}")
    backlog, oldest = backlog_of(conn)
    if not settings.supabase_url:
        # Every record keeps its outbox row: `replay-to-supabase` sends them once configured.
        print(f"Supabase: not configured (set SUPABASE_URL and SUPABASE_SERVICE_KEY to "
              f"replicate; `store replay-to-supabase` then sends the {backlog} record(s) kept)")
    else:
        age = f", oldest {time.time() - oldest:.0f}s old" if oldest else ""
        print(f"Supabase: {settings.supabase_url}; backlog {backlog}{age}")
        failed = conn.execute("SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL"
                              ).fetchone()[0]
        if failed:
            error = conn.execute("SELECT tbl, error FROM outbox WHERE failed_at IS NOT NULL "
                                 "ORDER BY seq DESC LIMIT 1").fetchone()
            print(f"  {failed} records set aside after a permanent error; last: {error[0]}: "
                  f"{error[1]}")
        state = dict(conn.execute("SELECT key, value || ' (' || datetime(updated_at, "
                                  "'unixepoch') || ' UTC)' FROM replication_state"))
        if "last_sent" in state:
            print(f"  last sent: {state['last_sent']}")
        if "stopped" in state:  # cleared by the first record that goes through afterwards
            print(f"  replication stopped on: {state['stopped']}")
        if "last_rejected" in state and failed:
            print(f"  last record refused: {state['last_rejected']}")
    aside, last = conn.execute("SELECT count(*), max(seq) FROM set_aside").fetchone()
    if aside:
        table, error = conn.execute("SELECT tbl, error FROM set_aside WHERE seq = ?",
                                    (last,)).fetchone()
        print(f"journal: {aside} record(s) set aside (could not be written; kept in the "
              f"set_aside table); last: {table}: {error}")
    else:
        print("journal: no record set aside")
    return 0


def replay(args, settings: Settings, conn: sqlite3.Connection, path: Path) -> int:
    if not settings.supabase_url:
        print("error: SUPABASE_URL is not set", file=sys.stderr)
        return 2
    if args.all:
        conn.execute("UPDATE outbox SET sent_at = NULL, failed_at = NULL, error = NULL")
    else:  # records set aside are tried again: the operator has fixed something
        conn.execute("UPDATE outbox SET failed_at = NULL, error = NULL WHERE failed_at IS NOT NULL")
    conn.execute("DELETE FROM replication_state WHERE key = 'stopped'")
    backlog, _ = backlog_of(conn)
    print(f"sending {backlog} records to {settings.supabase_url} ...", flush=True)
    replicator = replicator_for(settings, path)
    assert replicator is not None
    started = time.perf_counter()
    result = replicator.drain(args.timeout)
    elapsed = time.perf_counter() - started
    print(f"sent {result.sent} records in {elapsed:.1f}s; {result.detail}")
    return 0 if result.backlog == 0 and not result.rejected and not result.stopped else 1


def export(args, settings: Settings, conn: sqlite3.Connection, path: Path) -> int:
    import polars as pl

    out = args.out or settings.data_dir / "export"
    out.mkdir(parents=True, exist_ok=True)
    for table, spec in TABLES.items():
        rows = conn.execute(f"SELECT {', '.join(spec.columns)} FROM {table} ORDER BY rowid").fetchall()
        frame = pl.DataFrame(rows, schema=list(spec.columns), orient="row", infer_schema_length=None)
        frame.write_parquet(out / f"{table}.parquet")
        print(f"{table}: {len(rows)} rows -> {out / f'{table}.parquet'}")
    return 0
