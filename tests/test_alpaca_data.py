"""Alpaca market data with the real alpaca-py clients against the local server: paged history,
live msgpack bars grouped by minute, "connection limit exceeded" and stale data pausing entries."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from fake_alpaca import FakeAlpaca, data_config, eventually, flat_minute, paper_engine

from daytrader.clock import EXCHANGE_TZ
from daytrader.data.alpaca import AlpacaData
from daytrader.models import Bar, OrderIntent, Side
from daytrader.orders import SubmitStatus

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=EXCHANGE_TZ)
SYMBOLS = ("AAPL", "MSFT")


@pytest.fixture
def server(calendar):
    srv = FakeAlpaca(SYMBOLS, calendar, T0, page_size=100).start()
    yield srv
    srv.stop()


async def test_history_is_paged_and_exact_in_time_order(server):
    session_open = datetime(2026, 11, 23, 9, 30, tzinfo=EXCHANGE_TZ)
    server.history = [Bar(s, session_open + timedelta(minutes=m), 10 + m / 100, 10.5 + m / 100,
                          9.5 + m / 100, 10.25 + m / 100, 100 + m)
                      for m in range(390) for s in SYMBOLS]
    server.history.append(Bar("AAPL", session_open, -1, 1, 1, 1, 1))  # a bad bar from the feed
    data = AlpacaData(data_config(server))
    bars = await data.history(SYMBOLS, session_open, session_open + timedelta(hours=7))
    assert len(bars) == 780 and data.rejected == 1
    assert server.requests["GET /v2/stocks/bars"] == 8  # 781 rows at 100 a page
    assert bars[0].ts == session_open and bars[-1].ts == session_open + timedelta(minutes=389)
    assert [b.ts for b in bars] == sorted(b.ts for b in bars)
    assert bars[2].close == pytest.approx(10.26) and bars[2].volume == 101
    await data.stop()


async def test_live_bars_arrive_grouped_by_minute(server, calendar):
    data = AlpacaData(data_config(server))
    minutes = data.minutes(SYMBOLS, calendar, server.clock)
    first = asyncio_next(minutes)
    await eventually(lambda: data.health.detail.startswith("data stream connected"),
                     what="the data stream")
    await eventually(lambda: server._data_conns and next(iter(server._data_conns)).symbols,
                     what="the subscription")
    server.push_bars(flat_minute(SYMBOLS, T0, 100.0))
    group = await first
    assert [(b.symbol, b.ts, b.close) for b in group] == [("AAPL", T0, 100.0), ("MSFT", T0, 100.0)]
    assert data.health.ok and data.health.detail == "live bars (iex)"
    server.push_bars([Bar("AAPL", T0 + timedelta(minutes=1), 101, 101, 101, 101, 5)])
    group = await asyncio_next(minutes)  # MSFT had no bar that minute: the grace ends it
    assert [b.symbol for b in group] == ["AAPL"]
    await minutes.aclose()
    await data.stop()


async def test_connection_limit_exceeded_shows_in_health_and_pauses_entries(server, calendar):
    server.data_connection_limit = True
    engine = paper_engine(server, calendar)
    data = AlpacaData(data_config(server), on_health=engine.report_health)
    data.start_stream(SYMBOLS)
    await eventually(lambda: "data" in engine.health and not engine.health["data"].ok,
                     what="the 406")
    assert "connection limit exceeded (406)" in engine.health["data"].detail
    assert any("connection limit exceeded" in e.message for e in engine.events)
    server.push_bars(flat_minute(SYMBOLS, T0, 100.0))
    result = await engine.submit(OrderIntent("AAPL", Side.BUY, 1, ref_price=Decimal("100")))
    assert result.status is SubmitStatus.RISK_REJECTED
    assert "entries paused: data: data stream: connection limit exceeded" in result.message
    server.submit(symbol="AAPL", side="buy", qty=1)  # a position held already
    server.push_bars(flat_minute(SYMBOLS, T0 + timedelta(minutes=1), 100.0))
    assert (await engine.sync("test")).ok and engine.book.qty("AAPL") == 1
    close = await engine.close_position("AAPL", source="test")
    assert close.ok, close.message  # closing is never paused
    server.data_connection_limit = False
    await eventually(lambda: engine.health["data"].ok, what="a later connection to succeed")
    await data.stop()


async def test_stale_data_while_the_market_is_open_pauses_entries(server, calendar):
    engine = paper_engine(server, calendar)
    data = AlpacaData(data_config(server, stale_after=0.3), on_health=engine.report_health)
    minutes = data.minutes(SYMBOLS, calendar, server.clock)
    pending = asyncio_next(minutes)
    await eventually(lambda: engine.health.get("data") is not None
                     and engine.health["data"].detail.startswith("stale"), what="stale data")
    assert "no bar for" in engine.health["data"].detail and engine.entries_paused()
    server.push_bars(flat_minute(SYMBOLS, T0, 100.0))
    assert len(await pending) == 2
    assert engine.health["data"].ok and not engine.entries_paused()
    await minutes.aclose()
    await data.stop()


async def test_a_data_auth_that_never_answers_times_out(server, calendar):
    server.data_auth_hang = True
    data = AlpacaData(data_config(server))
    data.start_stream(SYMBOLS)
    await eventually(lambda: "no answer to connect/authentication" in data.health.detail,
                     timeout=5, what="the auth timeout")
    server.data_auth_hang = False
    await eventually(lambda: data.health.ok, what="a later connection")
    await data.stop()


def asyncio_next(agen):
    import asyncio

    return asyncio.ensure_future(agen.__anext__())
