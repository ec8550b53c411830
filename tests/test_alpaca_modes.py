"""Paper and live modes: the runtime on the local Alpaca-compatible server, bad keys at start-up,
and the live safeguards (flag, checklist or journaled override, typed confirmation)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from fake_alpaca import FakeAlpaca, eventually, flat_minute

from daytrader.cli import main
from daytrader.clock import EXCHANGE_TZ
from daytrader.config import Secret, Settings
from daytrader.live import CONFIRM_WORD, LiveRefused, live_gate
from daytrader.runtime import RunOptions, build_runtime

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=EXCHANGE_TZ)
SYMBOLS = ("AAPL", "MSFT")


@pytest.fixture
def server(calendar):
    srv = FakeAlpaca(SYMBOLS, calendar, T0).start()
    srv.push_bars(flat_minute(SYMBOLS, T0, 100.0))
    yield srv
    srv.stop()


def endpoint_env(server: FakeAlpaca, secret: str | None = None) -> dict[str, str]:
    return {"ALPACA_API_KEY": server.key, "ALPACA_SECRET_KEY": secret or server.secret,
            "ALPACA_BASE_URL": server.url, "ALPACA_DATA_URL": server.url,
            "ALPACA_STREAM_URL": server.trade_stream_url,
            "ALPACA_DATA_STREAM_URL": server.data_stream_url, "ALPACA_TIMEOUT": "2",
            "SYMBOLS": ",".join(SYMBOLS)}


def paper_settings(server: FakeAlpaca, tmp_path) -> Settings:
    return Settings(mode="paper", symbols=SYMBOLS, alpaca_api_key=Secret(server.key),
                    alpaca_secret_key=Secret(server.secret), alpaca_base_url=server.url,
                    alpaca_data_url=server.url, alpaca_stream_url=server.trade_stream_url,
                    alpaca_data_stream_url=server.data_stream_url, alpaca_timeout=2.0,
                    data_dir=tmp_path)


async def test_paper_runtime_adopts_the_account_and_trades_on_live_bars(server, calendar,
                                                                       tmp_path):
    server.submit(client_order_id="before-restart", symbol="AAPL", side="buy", qty=7,
                  order_class="bracket", stop_loss={"stop_price": "95"},
                  take_profit={"limit_price": "110"})
    server.push_bars(flat_minute(SYMBOLS, T0.replace(minute=1), 100.0))
    runtime = build_runtime(paper_settings(server, tmp_path), RunOptions(), calendar=calendar)
    engine = runtime.engine
    assert engine.broker.name == "alpaca-paper" and runtime.source == "alpaca paper (iex)"
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    await eventually(lambda: engine.book.qty("AAPL") == 7, what="the existing position")
    assert len(engine.open_orders) == 2  # its stop-loss and take-profit, managed from now on
    await eventually(lambda: server._data_conns and next(iter(server._data_conns)).symbols,
                     what="the bar subscription")
    server.push_bars(flat_minute(SYMBOLS, T0.replace(minute=2), 101.0))
    await eventually(lambda: runtime.bars_processed == 2, what="live bars in the engine")
    assert engine.last_prices["AAPL"] == 101.0
    result = await engine.close_position("AAPL", source="test")
    assert result.ok, result.message
    server.push_bars(flat_minute(SYMBOLS, T0.replace(minute=3), 102.0))
    await eventually(lambda: engine.book.qty("AAPL") == 0, what="the close to fill")
    assert server.positions() == {}
    stop.set()
    await asyncio.wait_for(task, 10)
    runtime.close()


def test_bad_keys_at_start_up_name_the_key_setting(server, tmp_path, capsys, monkeypatch):
    for name, value in endpoint_env(server, secret="wrong").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    code = main(["--mode", "paper", "--headless", "--quiet", "--env-file",
                 str(tmp_path / "none.env")])
    err = capsys.readouterr().err
    assert code == 2
    assert "Alpaca refused the API keys (403 forbidden.)" in err
    assert "ALPACA_API_KEY / ALPACA_SECRET_KEY" in err and "wrong" not in err


def live_settings(**changes) -> Settings:
    values = dict(mode="live", alpaca_api_key=Secret("AKLIVE"), alpaca_secret_key=Secret("s"))
    values.update(changes)
    return Settings(**values)


def test_live_never_starts_from_a_setting_alone():
    with pytest.raises(LiveRefused, match="only with --mode live on the command line"):
        live_gate(live_settings(), None, True, lambda p: CONFIRM_WORD)


def test_live_refuses_while_the_checklist_is_not_met(tmp_path):
    with pytest.raises(LiveRefused, match="production checklist not met: .*--override-checklist"):
        live_gate(live_settings(data_dir=tmp_path), "live", False, lambda p: CONFIRM_WORD)


@pytest.mark.parametrize(("typed", "reason"), [(None, "nobody is there to type it"),
                                               ("yes\n", "confirmation not given")])
def test_live_needs_the_typed_confirmation(typed, reason, tmp_path):
    with pytest.raises(LiveRefused, match=reason):
        live_gate(live_settings(data_dir=tmp_path), "live", True, lambda p: typed)


def test_an_overridden_checklist_is_noted_for_the_journal(tmp_path):
    prompts = []
    note = live_gate(live_settings(data_dir=tmp_path), "live", True, lambda p: prompts.append(p) or "LIVE\n")
    assert "real money" in prompts[0]
    assert note.startswith("LIVE trading confirmed") and "checklist OVERRIDDEN" in note
    assert live_gate(Settings(), None, False, lambda p: None) == ""  # sim: nothing asked


def test_live_with_paper_keys_is_a_bad_setting(capsys, tmp_path):
    env = tmp_path / "live.env"
    env.write_text("ALPACA_API_KEY=PKPAPER\nALPACA_SECRET_KEY=s\n")
    assert main(["--mode", "live", "--headless", "--env-file", str(env)]) == 2
    assert "ALPACA_API_KEY: looks like a paper key" in capsys.readouterr().err


def test_live_from_the_cli_without_override_is_refused(capsys, tmp_path):
    env = tmp_path / "live.env"
    env.write_text(f"ALPACA_API_KEY=AKLIVE\nALPACA_SECRET_KEY=s\nTRADING_MODE=live\n"
                   f"DATA_DIR={tmp_path}\n")
    assert main(["--headless", "--env-file", str(env)]) == 2
    assert "only with --mode live" in capsys.readouterr().err
    assert main(["--mode", "live", "--headless", "--env-file", str(env)]) == 2
    assert "production checklist not met" in capsys.readouterr().err
    assert main(["--mode", "live", "--override-checklist", "--headless", "--env-file",
                 str(env)]) == 2  # and no terminal to type the confirmation
    assert "typed confirmation" in capsys.readouterr().err


async def test_a_journaled_override_is_recorded_when_live_starts(server, calendar, tmp_path):
    settings = paper_settings(server, tmp_path).with_overrides(
        mode="live", alpaca_api_key=Secret("AKLIVE"))
    server.key = "AKLIVE"
    note = live_gate(settings, "live", True, lambda p: "LIVE")
    runtime = build_runtime(settings, RunOptions(live_note=note, journal=True), calendar=calendar)
    assert runtime.engine.broker.name == "alpaca-LIVE"
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    await eventually(lambda: any("OVERRIDDEN" in e.message for e in runtime.engine.events),
                     what="the override event")
    stop.set()
    await asyncio.wait_for(task, 10)
    runtime.close()
    import sqlite3

    rows = sqlite3.connect(tmp_path / "journal.sqlite").execute(
        "SELECT detail FROM control_actions").fetchall()
    assert any("OVERRIDDEN" in r[0] for r in rows)
