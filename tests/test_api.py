"""The control API: every endpoint with httpx against the app, bad input, auth, the Unix socket,
`ctl` against a running headless process, and console/API seeing each other's actions."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import at, flat_bars, make_engine

from daytrader.api import ApiServer, create_app, socket_path
from daytrader.config import Secret, Settings, SettingsError
from daytrader.models import TradingState

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def engine(calendar):
    engine = make_engine(calendar)
    await engine.on_minute(flat_bars(at("09:30"), AAA=100, BBB=50))
    return engine


def api(engine, token: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(engine, token=token)),
                             base_url="http://test")


async def test_info_health_account_and_metrics(engine):
    async with api(engine) as http:
        info = (await http.get("/")).json()
        assert info["mode"] == "sim" and info["state"] == "ENABLED"
        health = await http.get("/health")
        assert health.status_code == 200
        assert {c["name"] for c in health.json()["components"]} >= {"broker", "data"}
        account = (await http.get("/account")).json()
        assert account["equity"] == "100000.00" and account["state"] == "ENABLED"
        metrics = (await http.get("/metrics")).json()
        assert metrics["today"]["trades"] == 0
        assert [c["name"] for c in metrics["risk"]][:2] == ["trading_enabled", "circuit_breaker"]


async def test_health_is_503_before_any_data(calendar):
    async with api(make_engine(calendar)) as http:
        response = await http.get("/health")
        assert response.status_code == 503
        assert response.json()["status"] == "degraded"


async def test_submit_by_query_and_by_json_then_positions_and_orders(engine):
    async with api(engine) as http:
        r = await http.post("/orders/submit", params={"symbol": "AAA", "side": "buy", "qty": 10,
                                                      "reason": "test"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "submitted" and r.json()["order"]["symbol"] == "AAA"
        r2 = await http.post("/orders/submit", json={"symbol": "bbb", "side": "buy", "qty": "5",
                                                     "type": "limit", "limit_price": "49.50"})
        assert r2.status_code == 200, r2.text
        open_orders = (await http.get("/orders", params={"status": "open"})).json()
        assert {o["symbol"] for o in open_orders} >= {"AAA", "BBB"}
        await engine.on_minute(flat_bars(at("09:31"), AAA=100, BBB=50))
        positions = (await http.get("/positions")).json()
        assert [(p["symbol"], p["qty"]) for p in positions] == [("AAA", 10)]
        assert len((await http.get("/orders", params={"status": "all"})).json()) > len(
            (await http.get("/orders")).json())


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"symbol": "ZZZ", "side": "buy", "qty": 1}, "symbol", "unknown symbol ZZZ"),
    ({"symbol": "", "side": "buy", "qty": 1}, "symbol", "symbol is required"),
    ({"symbol": "AAA", "side": "hold", "qty": 1}, "side", "side must be buy or sell"),
    ({"symbol": "AAA", "side": "buy", "qty": -3}, "qty", "must be more than zero"),
    ({"symbol": "AAA", "side": "buy", "qty": 1.5}, "qty", "whole shares only"),
    ({"symbol": "AAA", "side": "buy", "qty": "ten"}, "qty", "must be a number"),
    ({"symbol": "AAA", "side": "buy", "qty": 1, "limit_price": "99"}, "limit_price",
     "market order takes no"),
    ({"symbol": "AAA", "side": "buy", "qty": 1, "type": "limit"}, "limit_price",
     "needs a limit price"),
    ({"symbol": "AAA", "side": "buy", "qty": 1, "type": "iceberg"}, "type", "market or limit or stop"),
])
async def test_bad_orders_get_a_422_naming_the_field_and_send_nothing(engine, params, field,
                                                                      message):
    async with api(engine) as http:
        r = await http.post("/orders/submit", params=params)
        assert r.status_code == 422
        assert r.json()["field"] == field and message in r.json()["error"]
    assert engine.broker.orders(open_only=False) == []


async def test_malformed_or_nested_json_is_a_422_naming_the_body(engine):
    async with api(engine) as http:
        r = await http.post("/orders/submit", content=b"{not json",
                            headers={"content-type": "application/json"})
        assert r.status_code == 422 and "malformed JSON" in r.json()["error"]
        assert r.json()["field"] == "body"
        r = await http.post("/orders/submit", json=[1, 2])
        assert r.status_code == 422 and r.json()["field"] == "body"
        r = await http.post("/orders/submit", json={"symbol": "AAA", "side": "buy",
                                                    "qty": {"n": 1}})
        assert r.status_code == 422 and r.json()["field"] == "qty"


async def test_risk_rejection_says_which_check_failed(engine):
    engine.disable("test")
    async with api(engine) as http:
        r = await http.post("/orders/submit", params={"symbol": "AAA", "side": "buy", "qty": 10})
        assert r.status_code == 422
        body = r.json()
        assert body["rejected_by"] == "risk" and body["failed_check"] == "trading_enabled"
        assert len(body["checks"]) == 7


async def test_cancel_and_close_with_their_errors(engine):
    async with api(engine) as http:
        assert (await http.post("/orders/nope/cancel")).status_code == 404
        assert (await http.post("/positions/AAA/close")).status_code == 404
        order = (await http.post("/orders/submit", params={
            "symbol": "BBB", "side": "buy", "qty": 5, "type": "limit",
            "limit_price": "40"})).json()["order"]
        r = await http.post(f"/orders/{order['id']}/cancel")
        assert r.status_code == 200 and r.json()["ok"]
        assert (await http.post(f"/orders/{order['id']}/cancel")).status_code == 409
        # The short id the console, the log and `ctl orders` show works as well.
        other = (await http.post("/orders/submit", params={
            "symbol": "BBB", "side": "buy", "qty": 6, "type": "limit",
            "limit_price": "40"})).json()["order"]
        listed = {o["id"]: o for o in (await http.get("/orders")).json()}
        short = listed[other["id"]]["short_id"]
        r = await http.post(f"/orders/{short}/cancel")
        assert r.status_code == 200 and short in r.json()["message"]
        assert engine.known_orders[other["id"]].status.value == "canceled"
        await http.post("/orders/submit", params={"symbol": "AAA", "side": "buy", "qty": 10})
        await engine.on_minute(flat_bars(at("09:31"), AAA=100, BBB=50))
        assert (await http.post("/positions/aaa/close")).status_code == 200
        await engine.on_minute(flat_bars(at("09:32"), AAA=101, BBB=50))
        assert (await http.get("/positions")).json() == []


async def test_enable_disable_sync_and_emergency_stop(engine):
    async with api(engine) as http:
        assert (await http.post("/trading/disable")).json()["state"] == "DISABLED"
        assert engine.state is TradingState.DISABLED
        assert (await http.post("/trading/enable")).json()["state"] == "ENABLED"
        assert (await http.post("/sync")).json()["ok"]
        await http.post("/orders/submit", params={"symbol": "AAA", "side": "buy", "qty": 10})
        await engine.on_minute(flat_bars(at("09:31"), AAA=100, BBB=50))
        stop = asyncio.create_task(http.post("/emergency/stop"))
        await asyncio.sleep(0.2)
        await engine.on_minute(flat_bars(at("09:32"), AAA=100, BBB=50))
        report = (await stop).json()
        assert report["flat"] and report["state"] == "DISABLED"
        assert "EMERGENCY STOP complete" in report["message"]


async def test_bearer_token_is_required_when_set(engine):
    async with api(engine, token="s3cret") as http:
        assert (await http.get("/account")).status_code == 401
        assert (await http.get("/account", headers={"Authorization": "Bearer nope"})).status_code == 401
        ok = await http.get("/account", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


async def test_openapi_docs_are_served(engine):
    async with api(engine) as http:
        spec = (await http.get("/openapi.json")).json()
        assert "/orders/submit" in spec["paths"] and "/emergency/stop" in spec["paths"]
        assert (await http.get("/docs")).status_code == 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_tcp_api_needs_the_token_and_refuses_remote_hosts(engine, tmp_path):
    port = free_port()
    settings = Settings(data_dir=tmp_path, api_socket_enabled=False, api_port=port,
                        api_token=Secret("tok"))
    server = await ApiServer(engine, settings).start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/")).status_code == 401
            r = await http.get("/", headers={"Authorization": "Bearer tok"})
            assert r.status_code == 200 and r.json()["service"] == "daytrader"
    finally:
        await server.stop()
    remote = Settings(data_dir=tmp_path, api_socket_enabled=False, api_port=free_port(),
                      api_host="0.0.0.0", api_token=Secret("tok"))
    with pytest.raises(SettingsError, match="API_HOST: 0.0.0.0 is not a loopback.*API_ALLOW_REMOTE"):
        await ApiServer(engine, remote).start()


async def test_unix_socket_is_owner_only_and_answers(engine, tmp_path):
    settings = Settings(data_dir=tmp_path)
    server = await ApiServer(engine, settings).start()
    try:
        path = socket_path(settings)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        transport = httpx.AsyncHTTPTransport(uds=str(path))
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
            assert (await http.get("/")).json()["state"] == "ENABLED"
    finally:
        await server.stop()
    assert not socket_path(settings).exists()


def test_console_and_api_see_each_others_actions(tmp_path):
    from datetime import datetime

    from daytrader.clock import EXCHANGE_TZ
    from daytrader.host import EngineHost
    from daytrader.runtime import RunOptions, build_runtime

    settings = Settings(symbols=("AAPL", "MSFT"), data_dir=tmp_path)
    now = datetime(2026, 11, 24, 12, 0, tzinfo=EXCHANGE_TZ)
    runtime = build_runtime(settings, RunOptions(speed=30, api=True), lambda: now)
    host = EngineHost(runtime, publish_interval=0.02).start()
    try:
        path = socket_path(settings)
        deadline = time.monotonic() + 10
        while not path.exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), base_url="http://x") as http:
            http.post("/trading/disable")
            deadline = time.monotonic() + 5
            while host.latest.state is not TradingState.DISABLED:  # the console's view
                assert time.monotonic() < deadline
                time.sleep(0.02)
            host.call(host.engine.enable, "console").result(5)  # a key press in the console
            assert http.get("/").json()["state"] == "ENABLED"
    finally:
        host.stop()


def test_ctl_against_a_running_headless_process(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--headless", "--speed", "30",
                             "--quiet"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    def ctl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "app.py"), "ctl", *args],
                              capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)

    try:
        sock = tmp_path / "data" / "run" / "daytrader.sock"
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        status = ctl("status")
        assert status.returncode == 0 and "trading ENABLED" in status.stdout
        assert re.search(r"equity \$[\d,]+\.\d\d .*day P&L [+-]?\$[\d,]+\.\d\d .*"
                         r"\(breaker \$[\d,]+\.\d\d away\)", status.stdout), status.stdout
        assert ctl("disable").returncode == 0
        assert "trading DISABLED" in ctl("status").stdout
        as_json = json.loads(ctl("health", "--json").stdout)
        assert as_json["trading"] == "DISABLED"
        refused = ctl("buy", "AAPL", "1", "--limit", "1")  # checked, sent, refused by risk
        assert refused.returncode == 1 and "failed check: trading_enabled" in refused.stdout
        missing = ctl("close", "ZZZZ")
        assert missing.returncode == 1 and "no position in ZZZZ" in missing.stdout
        stop = ctl("emergency-stop")
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "EMERGENCY STOP complete" in stop.stdout
        assert "trading E-STOP" in stop.stdout and "DISABLED" not in stop.stdout
        assert "no positions" in ctl("positions").stdout
        assert "trading E-STOP" in ctl("status").stdout  # until trading is enabled again
        assert ctl("enable").returncode == 0
        assert "trading ENABLED" in ctl("status").stdout
        # One short order id, the same in the answer to a buy and in the order list; the
        # internal client order id is not shown.
        bought = ctl("buy", "AAPL", "1")
        assert bought.returncode == 0, bought.stdout + bought.stderr
        sent = re.fullmatch(r"submitted: buy 1 AAPL market \(order (sim-\d{6}); stop [\d.]+, "
                            r"target [\d.]+\)\n", bought.stdout)
        assert sent, bought.stdout
        assert "manual" not in bought.stdout and "client" not in bought.stdout
        listed = [line for line in ctl("orders").stdout.splitlines() if sent[1] in line]
        assert len(listed) == 1 and " AAPL " in listed[0], listed
        # The strategies by name: listed with their symbols, one switched off and on again.
        strategies = ctl("strategies").stdout
        assert re.search(r"^ema_cross\s+enabled\s+AAPL,MSFT,NVDA,AMZN,TSLA,META\s+trades \d+ .*"
                         r"fast=9 slow=21", strategies, re.M), strategies
        off = ctl("strategy-disable", "ema_cross")
        assert off.returncode == 0, off.stdout + off.stderr
        assert re.search(r"^ema_cross\s+DISABLED", ctl("strategies").stdout, re.M)
        unknown = ctl("strategy-enable", "nope")
        assert unknown.returncode == 1 and "nope" in unknown.stdout, unknown.stdout
        assert ctl("strategy-enable", "ema_cross").returncode == 0
        assert re.search(r"^ema_cross\s+enabled", ctl("strategies").stdout, re.M)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert not (tmp_path / "data" / "run" / "daytrader.sock").exists()


def test_ctl_without_a_running_instance_says_so(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "app.py"), "ctl", "status"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path)})
    assert proc.returncode == 2 and "no running DayTrader found" in proc.stderr
