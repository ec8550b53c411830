"""The production checklist on crafted journals: each item passes, fails or is unknown."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from conftest import at

from daytrader.checklist import Records, Status, evaluate, read_records
from daytrader.config import Settings
from daytrader.store.schema import migrate

ROOT = Path(__file__).resolve().parent.parent


def insert(conn: sqlite3.Connection, table: str, **row) -> None:
    cols = ", ".join(row)
    conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(row))})",
                 tuple(row.values()))


def journal(path: Path, wins: int, losses: int, mode: str = "paper", trip: bool = True,
            emergency: bool = True, duplicate: bool = False, strategy=lambda n: "t") -> Path:
    """A journal with `wins` trades of +$2/share and `losses` of -$1/share, 10 shares each."""
    conn = sqlite3.connect(path)
    migrate(conn)
    insert(conn, "sessions", session_id="s1", mode=mode, version="t", source="test",
           symbols="AAA", account="acct", started_at=at("09:30").isoformat())
    ts = at("09:31")
    for n in range(wins + losses):
        exit_price = "102" if n < wins else "99"
        for leg, side, price, role in (("e", "buy", "100", "entry"),
                                       ("x", "sell", exit_price, "exit")):
            cid = f"c{n}{leg}"
            insert(conn, "intents", client_order_id=cid, session_id="s1", ts=ts.isoformat(),
                   symbol="AAA", side=side, qty=10, order_type="market", ref_price=price,
                   reduce_only=int(leg == "x"), reason="ema_cross_down" if leg == "x" else "",
                   strategy="exit" if leg == "x" else strategy(n),
                   journaled_at=ts.isoformat())
            insert(conn, "order_events", event_id=f"ev{cid}", session_id="s1", ts=ts.isoformat(),
                   event="new", order_id=f"o{cid}", client_order_id=cid, symbol="AAA", detail="")
            insert(conn, "fills", fill_id=f"f{cid}", session_id="s1", broker_fill_id=f"f{cid}",
                   order_id=f"o{cid}", client_order_id=cid, symbol="AAA", side=side, qty=10,
                   price=price, commission="0", ts=ts.isoformat(), role=role)
            ts += timedelta(minutes=1)
    if duplicate:
        insert(conn, "order_events", event_id="evdup", session_id="s1", ts=ts.isoformat(),
               event="new", order_id="other-order", client_order_id="c0e", symbol="AAA",
               detail="")
    if trip:
        insert(conn, "breaker_events", event_id="b1", session_id="s1", ts=ts.isoformat(),
               action="trip", source="engine", message="tripped")
    if emergency:
        insert(conn, "control_actions", action_id="a1", session_id="s1", ts=ts.isoformat(),
               source="console", action="emergency_stop", detail="EMERGENCY STOP")
    conn.commit()
    conn.close()
    return path


def items(checklist) -> dict[str, Status]:
    return {i.name: i.status for i in checklist.items}


READY = Settings(alert_webhook_url="http://127.0.0.1:9/hook", live_max_capital=Decimal("10000"))


def test_a_good_paper_record_with_everything_set_is_ready(tmp_path):
    runbook = tmp_path / "runbook.md"
    runbook.write_text("# runbook")
    records = read_records(journal(tmp_path / "j.sqlite3", wins=200, losses=100))
    assert len(records.paper_trades) == 300
    checklist = evaluate(records, READY, runbook=runbook)
    assert checklist.ready, [(i.name, i.figure) for i in checklist.failing]
    figures = {i.name: i.figure for i in checklist.items}
    assert figures["win rate (paper)"] == "66.7%"
    assert figures["profit factor (paper)"] == "4.00"  # 200 x $20 / 100 x $10


def test_each_strategy_is_judged_on_its_own_round_trips(tmp_path):
    # 200 winners by "breakout", 100 losers by "fade": the total passes, the fade does not.
    records = read_records(journal(tmp_path / "j.sqlite3", wins=200, losses=100,
                                   strategy=lambda n: "breakout" if n < 200 else "fade"))
    checklist = evaluate(records, READY)
    per = {name: {i.name: (i.status, i.figure) for i in rows}
           for name, rows in checklist.by_strategy.items()}
    assert set(per) == {"breakout", "fade"}
    assert per["breakout"]["win rate (paper)"] == (Status.PASS, "100.0%")
    assert per["breakout"]["paper trades"] == (Status.FAIL, "200 paper trades")
    assert per["fade"]["win rate (paper)"] == (Status.FAIL, "0.0%")
    assert items(checklist)["win rate (paper)"] is Status.PASS  # the total: 66.7%


def test_too_few_paper_trades_and_low_win_rate_fail(tmp_path):
    records = read_records(journal(tmp_path / "j.sqlite3", wins=50, losses=50))
    status = items(evaluate(records, READY))
    assert status["paper trades"] is Status.FAIL
    assert status["win rate (paper)"] is Status.FAIL
    assert status["profit factor (paper)"] is Status.PASS  # 2.00


def test_sim_trades_do_not_count_as_paper_but_sim_tests_of_the_controls_do(tmp_path):
    records = read_records(journal(tmp_path / "j.sqlite3", wins=10, losses=0, mode="sim"))
    status = items(evaluate(records, READY))
    assert records.paper_trades == ()
    assert status["win rate (paper)"] is Status.UNKNOWN
    assert status["circuit breaker tested"] is Status.PASS
    assert status["emergency stop tested"] is Status.PASS


def test_untested_controls_and_duplicates_fail(tmp_path):
    records = read_records(journal(tmp_path / "j.sqlite3", wins=3, losses=1, trip=False,
                                   emergency=False, duplicate=True))
    status = items(evaluate(records, READY))
    assert status["circuit breaker tested"] is Status.FAIL
    assert status["emergency stop tested"] is Status.FAIL
    assert status["no duplicate orders"] is Status.FAIL


def test_settings_items_name_what_to_set(tmp_path):
    checklist = evaluate(Records(), Settings(live_max_capital=Decimal("100000")),
                         runbook=tmp_path / "missing.md")
    by_name = {i.name: i for i in checklist.items}
    assert by_name["alerting configured"].status is Status.FAIL
    assert "ALERT_WEBHOOK_URL" in by_name["alerting configured"].figure
    assert by_name["live capital allocation small"].status is Status.FAIL
    assert by_name["runbook present"].status is Status.FAIL
    assert by_name["paper trades"].status is Status.FAIL
    assert not checklist.ready


def test_cli_checklist_exits_nonzero_until_ready(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "app.py"), "checklist"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path)})
    assert proc.returncode == 1
    assert "NOT READY for live" in proc.stdout and "paper trades" in proc.stdout
