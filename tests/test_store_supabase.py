"""Replication to Supabase with real parts: a real PostgreSQL loaded with supabase_schema.sql, a
PostgREST-compatible server in front of it (each request with its key's role, so RLS is real),
and the real supabase-py client; outages, a wrong key, and SIGKILLs of the headless engine."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import at
from pg_server import LocalPostgres
from postgrest_server import FakePostgrest

from daytrader.clock import MarketCalendar
from daytrader.data.synthetic import synthetic_frame
from daytrader.store.journal import Journal
from daytrader.store.replicator import FAILING, HEALTHY, Replicator, backlog_of, make_client
from daytrader.store.schema import TABLES

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"service-key": "service_role", "anon-key": "anon"}


@pytest.fixture(scope="module")
def pg():
    server = LocalPostgres()
    if not server.available:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is needed: apt-get install postgresql, or pip install pgserver")
        pytest.skip("no PostgreSQL here (apt-get install postgresql, or pip install pgserver)")
    server.start()
    # A plain PostgreSQL: no roles, no grants beforehand; twice in a row, as an operator may.
    assert server.query("SELECT count(*) FROM pg_roles WHERE rolname IN "
                        "('anon', 'authenticated', 'service_role')") == [(0,)]
    server.load_supabase_schema()
    server.load_supabase_schema()
    yield server
    server.stop()


@pytest.fixture
def api(pg):
    pg.truncate_all()
    server = FakePostgrest(pg.dsn, KEYS).start()
    yield server
    server.stop()


def replicator(path: Path, api: FakePostgrest, key: str = "service-key", **kw) -> Replicator:
    options = {"poll_interval": 0.02, "backoff_base": 0.02, "backoff_cap": 0.2, **kw}
    return Replicator(path, make_client(api.url, key, timeout=2.0), **options)


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def journal_rows(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute(f"SELECT {TABLES[table].key} FROM {table} ORDER BY rowid")]


def test_every_table_replicates_keyed_by_natural_ids_and_anon_may_read(pg, api, tmp_path):
    from daytrader.config import Settings
    from daytrader.runtime import RunOptions, build_runtime

    settings = Settings(symbols=("AAPL", "MSFT", "NVDA"), data_dir=tmp_path)
    runtime = build_runtime(settings, RunOptions(speed=0, duration="390m", quiet=True, journal=True),
                            now=lambda: at("16:30"))
    import asyncio

    runtime.engine.disable("ctl")
    runtime.engine.enable("console")
    asyncio.run(runtime.run())
    runtime.close()
    path = tmp_path / "journal.sqlite"
    rep = replicator(path, api)
    status = rep.drain(30)
    assert status.state == HEALTHY and status.backlog == 0, status.detail
    for table, spec in TABLES.items():
        local = journal_rows(path, table)
        remote = [r[0] for r in pg.query(f"SELECT {spec.key} FROM {table}")]
        assert sorted(local) == sorted(remote), table
    assert pg.query("SELECT count(*) FROM fills")[0][0] > 0
    assert pg.query("SELECT stop_reason FROM sessions")[0][0] == "stopped"
    # The same records again (operator's replay --all): still one row each.
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE outbox SET sent_at = NULL")
    assert rep.drain(30).backlog == 0
    assert pg.query("SELECT count(*) FROM fills")[0][0] == len(journal_rows(path, "fills"))
    # anon may read (the documented default), with the real client
    anon = make_client(api.url, "anon-key")
    read = anon.table("fills").select("*", count="exact").gte("ts", "2000-01-01T00:00:00Z") \
        .order("ts", desc=True).limit(5).execute()
    assert read.count == len(journal_rows(path, "fills")) and len(read.data) == 5


def unsent(path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return backlog_of(conn)[0]


def test_an_outage_loses_nothing_duplicates_nothing_and_never_slows_the_journal(pg, api, tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    journal.start_session("sim", "test", "outage", ("AAA",))
    rep = replicator(journal.path, api, batch_size=100).start()
    latencies: dict[str, list[float]] = {"up": [], "down": []}
    phase = "up"
    t0 = at("09:30")
    for i in range(1000):
        if i == 250:
            api.stop()  # the HTTP server is gone: connection refused
            phase = "down"
        if i == 500:
            api.start()  # back, but its database is gone: 503 PGRST001
            pg.down()
        if i == 750:
            pg.resume()
            phase = "up"
        started = time.perf_counter()
        if i % 2:
            journal.control(t0 + timedelta(seconds=i), "console", "note", f"event {i}")
        else:
            journal.breaker(t0 + timedelta(seconds=i), "note", "engine", f"event {i}")
        latencies[phase].append(time.perf_counter() - started)
        if 250 <= i < 750:
            time.sleep(0.002)  # the outage lasts a while: the replicator backs off and retries
    # The published status can be from before the last events: ask the journal file itself.
    wait_for(lambda: unsent(journal.path) == 0 and rep.status.state == HEALTHY, 30)
    rep.stop()
    journal.close()
    failures = [r for r in api.requests if r[3] >= 500]
    assert failures, "the database outage should have been seen as 503s"
    assert rep.failures == 0 and rep.sent >= 1001
    for table in ("control_actions", "breaker_events"):
        local = journal_rows(journal.path, table)
        remote = pg.query(f"SELECT {TABLES[table].key}, count(*) FROM {table} "
                          f"GROUP BY 1")
        assert len(local) == 500 and sorted(local) == sorted(k for k, _ in remote)
        assert all(n == 1 for _, n in remote)  # exactly once
        first_arrival = list(dict.fromkeys(k for t, keys in api.arrivals if t == table
                                           for k in keys))
        assert first_arrival == local  # in journal order
    # trading's side never waited for Supabase: appends are as fast while it is down
    assert statistics.median(latencies["down"]) < 5 * statistics.median(latencies["up"]) + 0.002
    assert max(latencies["down"]) < 0.25


def test_an_anon_key_write_is_a_configuration_error_and_is_not_retried(pg, api, tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    journal.start_session("sim", "test", "anon", ("AAA",))
    journal.control(at("09:30"), "console", "disable", "trading disabled")
    rep = replicator(journal.path, api, key="anon-key").start()
    wait_for(lambda: rep.stopped)
    time.sleep(0.3)
    requests = len(api.requests)
    time.sleep(0.3)
    assert len(api.requests) == requests == 1  # refused once, never retried
    status = rep.status
    assert status.state == FAILING and status.stopped and status.backlog == 2
    assert "configuration error" in status.last_error and "42501" in status.last_error
    assert "SUPABASE_SERVICE_KEY" in status.last_error
    health = status.health()
    assert not health.ok and "Supabase failing" in health.detail
    assert pg.query("SELECT count(*) FROM control_actions")[0][0] == 0
    rep.stop()
    journal.close()


def test_a_bad_key_is_named(pg, api, tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    journal.start_session("sim", "test", "bad key", ("AAA",))
    status = replicator(journal.path, api, key="not-a-key").drain(5)
    assert status.stopped and "refused the key" in status.last_error
    journal.close()


def test_429_and_5xx_back_off_then_go_through(pg, api, tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    journal.start_session("sim", "test", "busy", ("AAA",))
    api.inject = [(429, "Too Many Requests"), (502, "Bad Gateway"),
                  (500, {"code": "XX000", "message": "internal"})]
    status = replicator(journal.path, api).drain(10)
    assert status.backlog == 0 and status.state == HEALTHY
    assert [r[3] for r in api.requests] == [429, 502, 500, 201]


def test_a_refused_record_is_set_aside_named_and_the_rest_go_on(pg, api, tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    journal.start_session("sim", "test", "bad row", ("AAA",))
    for i in range(3):
        journal.control(at("09:30") + timedelta(minutes=i), "console", "note", str(i))
    with sqlite3.connect(journal.path) as conn:  # one record Postgres will refuse (qty > 0)
        conn.execute("INSERT INTO outbox (tbl, row_key, payload, created_at) VALUES (?,?,?,?)",
                     ("intents", "bad", json.dumps({
                         "client_order_id": "bad", "session_id": "s", "ts": "2026-11-24T10:00:00Z",
                         "symbol": "AAA", "side": "buy", "qty": 0, "order_type": "market",
                         "reduce_only": False, "reason": "", "strategy": "x",
                         "journaled_at": "2026-11-24T10:00:00Z"}), time.time()))
    journal.control(at("09:40"), "console", "note", "after")
    status = replicator(journal.path, api).drain(10)
    assert status.backlog == 0 and status.rejected == 1 and status.state == FAILING
    assert "intents record refused (HTTP 400 23514" in status.last_rejection
    assert "1 records set aside" in status.detail and "intents_qty_check" in status.detail
    assert pg.query("SELECT count(*) FROM control_actions")[0][0] == 4
    journal.close()


# -- crash: SIGKILL the headless engine during a replay ------------------------------------------
KILLS = 10


def test_sigkill_during_a_replay_loses_no_fill_sends_no_intent_twice_and_replication_resumes(
        pg, api, tmp_path):
    calendar = MarketCalendar()
    session = next(iter(calendar.sessions_from(date(2026, 11, 2))))
    symbols = ("AAPL", "MSFT", "NVDA")
    synthetic_frame(symbols, [(session.open, session.close)], seed=11).write_csv(tmp_path / "b.csv")
    env = {"PATH": "/usr/bin:/bin", "SUPABASE_URL": api.url, "SUPABASE_SERVICE_KEY": "service-key"}
    args = [sys.executable, str(ROOT / "app.py"), "--headless", "--replay", "b.csv",
            "--symbols", ",".join(symbols), "--until", "close"]
    rng = random.Random(7)
    reported: list[tuple[str, ...]] = []  # fills the engine printed before each kill
    kills = 0
    for attempt in range(KILLS + 1):
        last = attempt == KILLS
        proc = subprocess.Popen([*args, "--speed", "max" if last else "9000"], cwd=tmp_path,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        proc.stdout.readline()  # the banner: the engine is running
        if not last:
            time.sleep(rng.uniform(0.05, 0.6))
            proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        if not last and proc.returncode == -signal.SIGKILL:
            kills += 1
        reported += [tuple(line.split()[i] for i in (4, 5, 6, 8)) for line in out.splitlines()
                     if " FILL " in line]
        if last:
            assert proc.returncode == 0, err
    assert kills >= KILLS - 2, "most runs should have been killed mid-replay"
    path = tmp_path / "data" / "journal.sqlite"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    journaled = {(side.upper(), str(qty), symbol, price) for side, qty, symbol, price in
                 conn.execute("SELECT side, qty, symbol, price FROM fills")}
    assert reported and all(fill in journaled for fill in reported)
    # one session, resumed after every kill
    assert conn.execute("SELECT count(*), max(resumed) FROM sessions").fetchone() == (1, 1)
    # no intent was ever sent twice: one broker order per client order id, across all runs
    twice = conn.execute("SELECT client_order_id FROM order_events WHERE event = 'new' AND role IN "
                         "('entry', 'exit') GROUP BY client_order_id HAVING count(DISTINCT order_id)"
                         " > 1").fetchall()
    assert twice == []
    sent = conn.execute("SELECT count(*) FROM order_events WHERE event = 'new' AND "
                        "role IN ('entry', 'exit')").fetchone()[0]
    assert sent == len({r[0] for r in conn.execute(
        "SELECT client_order_id FROM order_events WHERE event = 'new' AND role IN ('entry', 'exit')")})
    # the day ends flat, and every fill has its order
    positions = {}
    for side, qty, symbol in conn.execute("SELECT side, qty, symbol FROM fills"):
        positions[symbol] = positions.get(symbol, 0) + (qty if side == "buy" else -qty)
    assert all(q == 0 for q in positions.values()), positions
    # replication resumed after each kill: Supabase has every record, once
    Replicator(path, make_client(api.url, "service-key")).drain(20)  # what the last run left
    for table, spec in TABLES.items():
        local = sorted(r[0] for r in conn.execute(f"SELECT {spec.key} FROM {table}"))
        remote = sorted(r[0] for r in pg.query(f"SELECT {spec.key} FROM {table}"))
        assert local == remote, table
    conn.close()


# -- configuration errors, outages and status lines, from the real HTTP status ----------------
def test_the_schema_grants_the_same_on_plain_postgres_as_on_a_supabase_project(pg):
    from pg_server import SUPABASE_ROLES
    from psycopg.conninfo import make_conninfo

    def privileges(dsn: str) -> dict[tuple[str, str], bool]:
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as conn:
            return {(role, p): conn.execute("SELECT has_table_privilege(%s, 'public.fills', %s)",
                                            (role, p)).fetchone()[0]
                    for role in ("anon", "authenticated", "service_role")
                    for p in ("SELECT", "INSERT", "UPDATE", "DELETE")}

    plain = privileges(pg.dsn)
    assert plain == {("anon", "SELECT"): True, ("anon", "INSERT"): False,
                     ("anon", "UPDATE"): False, ("anon", "DELETE"): False,
                     ("authenticated", "SELECT"): False, ("authenticated", "INSERT"): False,
                     ("authenticated", "UPDATE"): False, ("authenticated", "DELETE"): False,
                     ("service_role", "SELECT"): True, ("service_role", "INSERT"): True,
                     ("service_role", "UPDATE"): True, ("service_role", "DELETE"): False}
    # A database prepared like a Supabase project (default grants of everything to the API
    # roles) ends up with exactly the same privileges.
    import psycopg

    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS supa")
        conn.execute("CREATE DATABASE supa")
    supa = make_conninfo(pg.dsn, dbname="supa")
    with psycopg.connect(supa, autocommit=True) as conn:
        conn.execute(SUPABASE_ROLES)
        conn.execute((ROOT / "supabase_schema.sql").read_text())
    assert privileges(supa) == plain


def test_an_outage_is_named_with_the_status_the_server_sent(pg, api, tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    journal.start_session("sim", "test", "outage status", ("AAA",))
    rep = replicator(journal.path, api)
    pg.down()
    try:
        assert rep.step() is False
    finally:
        pg.resume()
    assert rep.last_error.startswith("HTTP 503 PGRST001"), rep.last_error
    assert not rep.stopped and rep.status.state == "lagging"
    assert rep.drain(20).backlog == 0
    journal.close()


def test_a_url_ending_in_rest_v1_is_one_configuration_error_naming_supabase_url(
        pg, api, tmp_path, caplog):
    journal = Journal(tmp_path / "journal.sqlite")
    journal.start_session("sim", "test", "rest v1", ("AAA",))
    for i in range(5):
        journal.control(at("09:30") + timedelta(minutes=i), "console", "note", str(i))
    rep = Replicator(journal.path, make_client(api.url + "/rest/v1", "service-key"),
                     poll_interval=0.02, backoff_base=0.02).start()
    wait_for(lambda: rep.stopped)
    time.sleep(0.3)
    rep.stop()
    journal.close()
    assert len(api.requests) == 1 and api.requests[0][3] == 404  # refused once, never retried
    assert "SUPABASE_URL does not lead to Supabase's REST API (HTTP 404 PGRST125" in rep.last_error
    assert rep.rejected == 0 and unsent(journal.path) == 7  # no record blamed, none lost
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "replicat" in r.name]
    assert len(errors) == 1 and "SUPABASE_URL" in errors[0].getMessage()


def test_a_server_that_is_not_supabase_is_a_configuration_error(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotSupabase(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"<html><body>400 Bad Request</body></html>"
            self.send_response(400)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotSupabase)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    journal = Journal(tmp_path / "journal.sqlite")
    journal.start_session("sim", "test", "not supabase", ("AAA",))
    journal.control(at("09:30"), "console", "note", "x")
    try:
        status = Replicator(journal.path, make_client(
            f"http://127.0.0.1:{server.server_address[1]}", "key")).drain(5)
    finally:
        server.shutdown()
    journal.close()
    assert status.stopped and status.rejected == 0 and status.backlog == 2
    assert "SUPABASE_URL answered HTTP 400" in status.last_error


@pytest.mark.parametrize(("errno_", "config"), [(socket.EAI_NONAME, True), (socket.EAI_AGAIN, False)])
def test_an_unknown_host_is_a_configuration_error_and_a_dns_hiccup_is_not(errno_, config):
    import httpx

    from daytrader.store.replicator import PermanentError, TransientError, classify

    error = httpx.ConnectError("[Errno] name resolution")
    error.__cause__ = socket.gaierror(errno_, "name resolution")
    verdict = classify(error, "fills")
    if config:
        assert isinstance(verdict, PermanentError) and verdict.config
        assert "the host of SUPABASE_URL does not exist" in str(verdict)
    else:
        assert isinstance(verdict, TransientError)


def store_status(settings) -> str:
    import argparse
    import io
    from contextlib import redirect_stdout

    from daytrader.store import cli as store_cli

    out = io.StringIO()
    with redirect_stdout(out):
        assert store_cli.run(argparse.Namespace(store_command="status"), settings) == 0
    return out.getvalue()


def test_store_status_lines_are_current(pg, api, tmp_path):
    from daytrader.config import Secret, Settings

    journal = Journal(tmp_path / "journal.sqlite")
    journal.start_session("sim", "test", "status", ("AAA",))
    journal.control(at("09:30"), "console", "disable", "trading disabled")
    journal.close()
    plain = store_status(Settings(data_dir=tmp_path))
    assert "Supabase: not configured" in plain and "backlog" not in plain
    configured = Settings(data_dir=tmp_path, supabase_url=api.url,
                          supabase_service_key=Secret("service-key"))
    assert replicator(journal.path, api, key="anon-key").drain(5).stopped  # the wrong key
    before = store_status(configured)
    assert "replication stopped on: configuration error" in before and "backlog 3" in before
    assert replicator(journal.path, api).drain(10).backlog == 0  # the key fixed
    after = store_status(configured)
    assert "replication stopped" not in after and "configuration error" not in after
    assert "backlog 0" in after and "last sent:" in after


def test_headless_runs_with_supabase_end_with_backlog_0_every_time(pg, api, tmp_path):
    """Three runs in a row with a clean exit each: the drain at exit sends the last records (the
    session's stop, the last equity point) before the process ends, every time."""
    from decimal import Decimal

    env = {"PATH": "/usr/bin:/bin", "SUPABASE_URL": api.url, "SUPABASE_SERVICE_KEY": "service-key",
           "DATA_DIR": str(tmp_path / "data")}
    path = tmp_path / "data" / "journal.sqlite"
    for run in range(3):
        proc = subprocess.run([sys.executable, str(ROOT / "app.py"), "--headless", "--speed", "max",
                               "--duration", "120m", "--seed", str(run), "--json", "--quiet"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        replication = json.loads(proc.stdout)["store"]["replication"]
        assert replication["configured"] and replication["backlog"] == 0, replication
        assert replication["state"] == HEALTHY and replication["sent"] > 0
        assert unsent(path) == 0
        conn = sqlite3.connect(path)
        for table, spec in TABLES.items():  # row for row: the same keys, once each
            local = sorted(r[0] for r in conn.execute(f"SELECT {spec.key} FROM {table}"))
            remote = sorted(r[0] for r in pg.query(f"SELECT {spec.key} FROM {table}"))
            assert local == remote, (run, table)
        fills = {(k, q, Decimal(p)) for k, q, p in conn.execute("SELECT fill_id, qty, price FROM fills")}
        assert fills == set(pg.query("SELECT fill_id, qty, price FROM fills"))
        points = {(k, Decimal(e)) for k, e in conn.execute("SELECT point_id, equity FROM equity_points")}
        assert points == set(pg.query("SELECT point_id, equity FROM equity_points"))
        stops = conn.execute("SELECT session_id, stop_reason FROM sessions").fetchall()
        assert sorted(stops) == sorted(pg.query("SELECT session_id, stop_reason FROM sessions"))
        assert all(reason == "finished" for _, reason in stops)
        conn.close()
    assert len(pg.query("SELECT * FROM sessions")) == 3


def test_a_drain_at_exit_gives_up_at_its_deadline_and_says_what_is_left(pg, api, tmp_path,
                                                                         caplog):
    journal = Journal(tmp_path / "journal.sqlite")
    journal.start_session("sim", "test", "exit during an outage", ("AAA",))
    rep = replicator(journal.path, api).start()
    wait_for(lambda: unsent(journal.path) == 0)
    api.stop()  # Supabase goes away just before the exit
    try:
        journal.control(at("09:30"), "console", "disable", "trading disabled")
        journal.close("finished")  # the session's stop: one more record
        started = time.monotonic()
        status = rep.stop(drain_timeout=1.0)
        waited = time.monotonic() - started
    finally:
        api.start()
    assert 1.0 <= waited < 5.0
    assert status.backlog == 2 == unsent(journal.path)  # counted in the file, not remembered
    assert "replication: 2 record(s) not sent at exit" in caplog.text
    assert "store replay-to-supabase" in caplog.text
    # the next start sends them
    assert replicator(journal.path, api).drain(20).backlog == 0


def test_the_advisors_prompts_and_answers_replicate_for_audit(pg, api, tmp_path):
    """Every exchange with the LLM advisor (prompt, answer, outcome, tokens) reaches Supabase
    like the rest, keyed by its call id."""
    from daytrader.models import ModelCall

    journal = Journal(tmp_path / "journal.sqlite")
    journal.start_session("sim", "test", "test", ("AAPL",))
    prompt = json.dumps([{"role": "user", "content": '{"symbol":"AAPL"}'}])
    journal.model_call(ModelCall("call-1", at("10:42"), "entry", "dt-cid-1", "AAPL", "llama3.1",
                                 "veto", prompt, '{"verdict":"veto","confidence":0.9}', "veto",
                                 "veto", 0.9, ("stretched above VWAP",), "", 412.5, 180, 40))
    journal.model_call(ModelCall("call-2", at("16:00"), "debrief", "2026-11-24", "", "llama3.1",
                                 "veto", prompt, None, "skipped", error="no answer within 30s"))
    journal.commit()
    journal.close()
    assert replicator(journal.path, api).drain(30).backlog == 0
    rows = pg.query("SELECT call_id, kind, subject, outcome, verdict, confidence, reasons, prompt, "
                    "answer, latency_ms, prompt_tokens, completion_tokens, error FROM model_calls "
                    "ORDER BY call_id")
    assert rows[0] == ("call-1", "entry", "dt-cid-1", "veto", "veto", 0.9,
                       '["stretched above VWAP"]', prompt, '{"verdict":"veto","confidence":0.9}',
                       412.5, 180, 40, "")
    assert rows[1][:4] == ("call-2", "debrief", "2026-11-24", "skipped")
    assert rows[1][8] is None and rows[1][12] == "no answer within 30s"
