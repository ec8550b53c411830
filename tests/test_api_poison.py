"""Hostile and careless order input against the control API: each of the hand-made poison
requests that used to cost a 500, a 7-second freeze or lost journal records gets a clear 4xx JSON
naming the field, sends nothing, and loses nothing (the journal's row counts are checked after
each one, and a `trading/disable` sent right after a poison request is journaled)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import at, flat_bars, make_engine

from daytrader.api import create_app
from daytrader.store.journal import Journal
from daytrader.store.schema import TABLES

ROOT = Path(__file__).resolve().parent.parent
Q = "/orders/submit?symbol=AAA&side=buy"
JSON = {"content-type": "application/json"}
DEEP = b"[" * 100_000 + b"]" * 100_000

# (what, method, path, body): the 26 hand-made probes of issue 13.
POISON: list[tuple[str, str, str, bytes | None]] = [
    ("qty=1e308", "POST", f"{Q}&qty=1e308", None),
    ("qty=inf", "POST", f"{Q}&qty=inf", None),
    ("qty=Infinity", "POST", f"{Q}&qty=Infinity", None),
    ("qty=-Infinity", "POST", f"{Q}&qty=-Infinity", None),
    ("qty=NaN", "POST", f"{Q}&qty=NaN", None),
    ("qty=sNaN", "POST", f"{Q}&qty=sNaN", None),
    ("qty=1e99999", "POST", f"{Q}&qty=1e99999", None),
    ("qty=1E+500000", "POST", f"{Q}&qty=1E%2B500000", None),
    ("JSON qty 1e400", "POST", "/orders/submit",
     b'{"symbol":"AAA","side":"buy","qty":1e400}'),
    ("JSON qty -1e400", "POST", "/orders/submit",
     b'{"symbol":"AAA","side":"buy","qty":-1e400}'),
    ("JSON qty of 5000 digits", "POST", "/orders/submit",
     b'{"symbol":"AAA","side":"buy","qty":' + b"9" * 3000 + b"}"),
    ("JSON limit_price 1e400", "POST", "/orders/submit",
     b'{"symbol":"AAA","side":"buy","qty":1,"type":"limit","limit_price":1e400}'),
    ("JSON nested 100,000 deep", "POST", "/orders/submit", DEEP),
    ("JSON qty nested", "POST", "/orders/submit", b'{"symbol":"AAA","side":"buy","qty":[[1]]}'),
    ("JSON symbol of 2 MB", "POST", "/orders/submit",
     b'{"side":"buy","qty":1,"symbol":"' + b"A" * 2_000_000 + b'"}'),
    ("limit_price=1e27", "POST", f"{Q}&qty=1&type=limit&limit_price=1e27", None),
    ("limit_price=NaN", "POST", f"{Q}&qty=1&type=limit&limit_price=NaN", None),
    ("stop_price=-1", "POST", f"{Q}&qty=1&type=stop&stop_price=-1", None),
    ("stop_loss=sNaN", "POST", f"{Q}&qty=1&stop_loss=sNaN", None),
    ("symbol NUL", "POST", "/orders/submit?symbol=%00&side=buy&qty=1", None),
    ("symbol of 60,000 characters", "POST",
     "/orders/submit?side=buy&qty=1&symbol=" + "A" * 60_000, None),
    ("symbol with a space", "POST", "/orders/submit?symbol=AA%20PL&side=buy&qty=1", None),
    ("typo'd field", "POST", f"{Q}&qty=1&limit=10", None),
    ("close a path", "POST", "/positions/..%2Ftrading%2Fdisable/close", None),
    ("cancel id of 300", "POST", "/orders/" + "a" * 300 + "/cancel", None),
    ("orders status junk", "GET", "/orders?status=%00%FF", None),
]


def counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in (*TABLES, "outbox", "set_aside")}


def test_there_are_26_probes():
    assert len(POISON) == 26 and len({p[0] for p in POISON}) == 26


@pytest.mark.parametrize(("what", "method", "path", "body"), POISON, ids=[p[0] for p in POISON])
async def test_each_poison_request_is_a_clear_4xx_sends_nothing_and_loses_nothing(
        calendar, tmp_path, what, method, path, body):
    engine = make_engine(calendar)
    journal = Journal(tmp_path / "journal.sqlite", flush_interval=60)
    journal.start_session("sim", "test", "poison", engine.settings.symbols)
    engine.journal = journal
    await engine.on_minute(flat_bars(at("09:30"), AAA=100, BBB=50))
    journal.commit()
    before = counts(journal.path)
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        r = await http.request(method, path, content=body, headers=JSON if body else None)
        assert 400 <= r.status_code < 500, (what, r.status_code, r.text[:300])
        answer = r.json()
        assert answer["error"], answer
        if r.status_code != 404:  # a path no route matches is simply not found
            assert answer["field"], answer
        assert len(r.content) < 2000  # the bad value is quoted, not echoed back
        disabled = await http.post("/trading/disable")
        assert disabled.status_code == 200
    journal.commit()
    after = counts(journal.path)
    assert engine.broker.orders(open_only=False) == []
    assert after["control_actions"] == before["control_actions"] + 1  # the disable
    assert {k: v for k, v in after.items() if k not in ("control_actions", "outbox")} == {
        k: v for k, v in before.items() if k not in ("control_actions", "outbox")}
    assert after["set_aside"] == 0 and journal.write_errors == 0
    journal.close()


def test_a_running_headless_instance_answers_every_probe_and_journals_the_disable(tmp_path):
    """The whole stack: uvicorn on the Unix socket, on the engine's loop, in a real process."""
    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--headless", "--speed", "30",
                             "--quiet"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    sock = tmp_path / "data" / "run" / "daytrader.sock"
    statuses: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        transport = httpx.HTTPTransport(uds=str(sock))
        with httpx.Client(transport=transport, base_url="http://x", timeout=10) as http:
            for what, method, path, body in POISON:
                try:
                    r = http.request(method, path, content=body, headers=JSON if body else None)
                except httpx.RemoteProtocolError:
                    statuses[what] = -1  # the server closed an oversized request early
                    continue
                statuses[what] = r.status_code
                assert r.headers["content-type"] == "application/json", what
                r = http.post("/trading/disable")
                assert r.status_code == 200
                http.post("/trading/enable")
            health = http.get("/health").json()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert all(400 <= s < 500 for s in statuses.values() if s != -1), statuses
    assert sum(1 for s in statuses.values() if s == -1) <= 2  # only the two large ones, if any
    assert "Traceback" not in err and "internal error" not in err, err[-3000:]
    store = next(c for c in health["components"] if c["name"] == "store")
    assert store["ok"], store
    with sqlite3.connect(tmp_path / "data" / "journal.sqlite") as conn:
        actions = conn.execute("SELECT source, action FROM control_actions "
                               "WHERE action IN ('disable', 'enable')").fetchall()
        assert actions.count(("api", "disable")) == len(POISON) - list(statuses.values()).count(-1)
        assert conn.execute("SELECT count(*) FROM set_aside").fetchone()[0] == 0
        # the strategy trades the synthetic bars; nothing came from the API
        assert conn.execute("SELECT count(*) FROM intents WHERE strategy = 'manual'"
                            ).fetchone()[0] == 0
    assert json.loads(json.dumps(statuses))  # every probe was answered or closed


@pytest.mark.parametrize(("argv", "message"), [
    (["buy", "AAPL", "1e308"], "bad qty: qty '1e308': more than 1,000,000 shares"),
    (["sell", "AAPL", "NaN"], "bad qty: qty must be a number"),
    (["buy", "AAPL"], "bad qty: qty is required"),
    (["buy", "aa pl", "1"], "bad symbol"),
    (["buy", "AAPL", "1", "--limit", "1e400"], "bad limit_price"),
    (["close", "../trading/disable"], "symbol must be a ticker"),
    (["cancel", "../../emergency/stop"], "order_id must be"),
])
def test_ctl_checks_order_input_with_the_same_rules_before_sending(tmp_path, argv, message):
    import argparse
    import io

    from daytrader import ctl
    from daytrader.config import Settings

    parser = argparse.ArgumentParser()
    ctl.configure(parser)
    out, err = io.StringIO(), io.StringIO()
    code = ctl.run(parser.parse_args(argv), Settings(data_dir=tmp_path), out, err)
    assert code == 2 and message in err.getvalue(), err.getvalue()
    assert not (tmp_path / "run").exists()  # nothing was sent anywhere
