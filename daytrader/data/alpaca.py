"""Alpaca market data: historical minute bars for warm-up and live minute bars from StockDataStream.

History comes from StockHistoricalDataClient (paged by alpaca-py through next_page_token; IEX feed
by default) in a worker thread with a deadline. Live bars arrive per symbol from the msgpack stream
and are grouped into minutes for the engine. Health is reported as "data": a stream that cannot
authenticate (e.g. 406 "connection limit exceeded": another connection uses the same keys) or no
bar for `stale_after` while the market is open shows as not ok, and the engine pauses entries.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from alpaca.data.enums import DataFeed
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.live.stock import StockDataStream
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame

from daytrader.broker.alpaca import KEY_SETTINGS, GuardedStream, call_in_thread, quiet_client
from daytrader.clock import EXCHANGE_TZ, Clock, MarketCalendar
from daytrader.models import Bar, Health

log = logging.getLogger(__name__)
DATA_URL = "https://data.alpaca.markets"  # alpaca-py's data host when ALPACA_DATA_URL is empty


@dataclass(frozen=True, slots=True)
class AlpacaDataConfig:
    api_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    feed: str = "iex"
    url: str = ""  # data REST without /v2
    stream_url: str = ""  # full WebSocket URL, e.g. ws://127.0.0.1:8080/v2/iex
    timeout: float = 10.0
    history_timeout: float = 120.0  # all pages of a warm-up
    auth_timeout: float = 10.0
    reconnect_min: float = 1.0
    reconnect_max: float = 30.0
    stale_after: float = 180.0  # seconds without a bar while the market is open
    grace: float = 3.0  # seconds to wait for the rest of a minute's bars after the first

    @classmethod
    def from_settings(cls, settings) -> AlpacaDataConfig:
        return cls(api_key=settings.alpaca_api_key.reveal(),
                   secret_key=settings.alpaca_secret_key.reveal(), feed=settings.alpaca_feed,
                   url=settings.alpaca_data_url, stream_url=settings.alpaca_data_stream_url,
                   timeout=settings.alpaca_timeout, auth_timeout=settings.alpaca_timeout,
                   stale_after=settings.data_stale_minutes * 60)


def bar_is_valid(bar: Bar) -> bool:
    values = (bar.open, bar.high, bar.low, bar.close)
    return (all(math.isfinite(v) and v > 0 for v in values) and bar.low <= min(bar.open, bar.close)
            and bar.high >= max(bar.open, bar.close) and bar.volume >= 0)


def _bar(b) -> Bar:
    return Bar(b.symbol, b.timestamp.astimezone(EXCHANGE_TZ), float(b.open), float(b.high),
               float(b.low), float(b.close), float(b.volume))


class _BarStream(GuardedStream, StockDataStream):
    """alpaca-py's StockDataStream, guarded: its state is the data health."""

    label = "data stream"

    def __init__(self, owner: AlpacaData) -> None:
        cfg = owner.config
        super().__init__(cfg.api_key, cfg.secret_key, feed=DataFeed(cfg.feed),
                         url_override=cfg.stream_url or None)
        self._guard(owner, cfg.reconnect_min, cfg.reconnect_max)

    def _refused(self, exc: ValueError) -> str:
        text = str(exc)
        if "connection limit" in text:
            return ("connection limit exceeded (406): another connection uses these keys; "
                    "close it (one market data stream per account)")
        if "auth" in text:
            return f"Alpaca refused the keys ({text}); check {KEY_SETTINGS}"
        return text

    def _down(self, detail: str) -> None:
        self._owner.attempted.set()
        self._owner.report(False, detail)

    def _up(self) -> None:
        self._owner.connections += 1
        self._owner.connected.set()
        self._owner.attempted.set()
        self._owner.report(True, "data stream connected; waiting for bars")


class AlpacaData:
    """History and live minute bars from Alpaca for a set of symbols."""

    def __init__(self, config: AlpacaDataConfig, client: StockHistoricalDataClient | None = None,
                 on_health: Callable[[Health], None] | None = None) -> None:
        self.config = config
        self.client = client or StockHistoricalDataClient(config.api_key, config.secret_key,
                                                          url_override=config.url or None)
        quiet_client(self.client, config.timeout, 4)
        self._pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="alpaca-data")
        self.on_health = on_health
        self.health: Health = Health("data", False, "no bars yet")
        self.rejected = 0
        self.late = 0
        self.connections = 0
        self.connected = asyncio.Event()
        self.attempted = asyncio.Event()  # the stream's first connection attempt has ended
        self._queue: asyncio.Queue[Bar] = asyncio.Queue()
        self._stream: _BarStream | None = None
        self._task: asyncio.Task | None = None

    def report(self, ok: bool, detail: str) -> None:
        changed = (ok, detail) != (self.health.ok, self.health.detail)
        self.health = Health("data", ok, detail, datetime.now(EXCHANGE_TZ))
        if changed:
            (log.info if ok else log.warning)("%s", detail)
        if self.on_health is not None:
            self.on_health(self.health)

    # -- history -------------------------------------------------------------------------------
    async def history(self, symbols: Iterable[str], start: datetime, end: datetime,
                      keep_invalid: bool = False) -> list[Bar]:
        """Minute bars in [start, end], all pages, in time order (bad bars dropped and counted,
        unless `keep_invalid`: the market-data store checks them by reason, as a replay does)."""
        request = StockBarsRequest(symbol_or_symbols=list(symbols), timeframe=TimeFrame.Minute,
                                   start=start, end=end, feed=DataFeed(self.config.feed))
        barset = await call_in_thread(self._pool, self.config.history_timeout,
                                      "historical bars", self.client.get_stock_bars, request)
        bars = []
        for rows in barset.data.values():
            for row in rows:
                b = _bar(row)
                if keep_invalid or bar_is_valid(b):
                    bars.append(b)
                else:
                    self.rejected += 1
        bars.sort(key=lambda b: (b.ts, b.symbol))
        return bars

    # -- live ----------------------------------------------------------------------------------
    def start_stream(self, symbols: Iterable[str]) -> None:
        if self._task is not None:
            return
        self._stream = _BarStream(self)
        self._stream.subscribe_bars(self._on_bar, *symbols)
        self._task = asyncio.get_running_loop().create_task(self._stream._run_forever(),
                                                            name="alpaca-data-stream")

    @property
    def stream_url(self) -> str:
        return self.config.stream_url or f"wss://stream.data.alpaca.markets/v2/{self.config.feed}"

    async def connect(self, symbols: Iterable[str], wait: float) -> bool:
        """Starts the bar stream and waits (up to `wait` seconds) for its first connection
        attempt; True when it connected."""
        self.start_stream(symbols)
        try:
            await asyncio.wait_for(self.attempted.wait(), wait)
        except TimeoutError:
            return False
        return self.connected.is_set()

    async def _on_bar(self, raw) -> None:
        bar = _bar(raw)
        if not bar_is_valid(bar):
            self.rejected += 1
            return
        self._queue.put_nowait(bar)

    async def stop(self) -> None:
        if self._stream is not None and self._task is not None:
            await self._stream.stop_ws()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            with contextlib.suppress(Exception):  # a half-closed socket; nothing left to do
                await self._stream.close()
        self._stream = self._task = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def minutes(self, symbols: Iterable[str], calendar: MarketCalendar,
                      clock: Clock) -> AsyncIterator[list[Bar]]:
        """Live bars grouped by minute, in order: a minute is complete when every symbol has a
        bar, a later minute starts, or `grace` seconds pass after its first bar. Bars older than
        the last minute handed out are dropped (counted in `late`)."""
        symbols = tuple(symbols)
        self.start_stream(symbols)
        cfg = self.config
        pending: dict[datetime, dict[str, Bar]] = {}
        first_seen: dict[datetime, float] = {}
        last_bar = time.monotonic()
        last_ts: datetime | None = None
        stale = False
        while True:
            wait = min(cfg.grace, cfg.stale_after / 4) if pending else min(5.0, cfg.stale_after / 4)
            try:
                bar: Bar | None = await asyncio.wait_for(self._queue.get(), max(0.01, wait))
            except TimeoutError:
                bar = None
            now = time.monotonic()
            if bar is not None:
                last_bar = now
                if last_ts is not None and bar.ts <= last_ts:
                    self.late += 1
                else:
                    pending.setdefault(bar.ts, {})[bar.symbol] = bar
                    first_seen.setdefault(bar.ts, now)
                if stale or not self.health.ok or self.health.detail.startswith("data stream"):
                    stale = False
                    self.report(True, f"live bars ({cfg.feed})")
            ready = []
            for ts in sorted(pending):
                complete = len(pending[ts]) >= len(symbols)
                newer = any(other > ts for other in pending)
                if complete or newer or now - first_seen[ts] >= cfg.grace:
                    ready.append(ts)
                else:
                    break
            for ts in ready:
                group = pending.pop(ts)
                first_seen.pop(ts, None)
                last_ts = ts
                yield [group[s] for s in symbols if s in group]
            if (not stale and now - last_bar >= cfg.stale_after
                    and calendar.is_open(clock.now())):
                stale = True
                minutes = (now - last_bar) / 60
                self.report(False, f"stale: no bar for {minutes:.1f} min while the market is "
                                   "open; entries paused")


def cached_history(settings, symbols: Iterable[str], first: date, last: date,
                   progress: Callable[[str], None] | None = None,
                   calendar: MarketCalendar | None = None) -> Path:
    """Minute bars for [first, last] from Alpaca, one session at a time (each paged by
    alpaca-py), cached as Parquet in DATA_DIR/cache so a second backtest reads the file."""
    import hashlib

    import polars as pl

    symbols = sorted(symbols)
    config = AlpacaDataConfig.from_settings(settings)
    tag = hashlib.sha256(",".join(symbols).encode()).hexdigest()[:10]
    path = (settings.data_dir / "cache" /
            f"alpaca-{config.feed}-{tag}-{first:%Y%m%d}-{last:%Y%m%d}.parquet")
    say = progress or (lambda _msg: None)
    if path.is_file():
        say(f"using cached bars {path}")
        return path
    calendar = calendar or MarketCalendar()
    sessions = [s for s in calendar.sessions_from(first) if s.date <= last]
    if not sessions:
        raise ValueError(f"no trading session between {first} and {last}")

    async def download() -> list[Bar]:
        data = AlpacaData(config)
        bars: list[Bar] = []
        try:
            for n, session in enumerate(sessions, 1):
                day = await data.history(symbols, session.open, session.close)
                bars.extend(day)
                say(f"downloading {session.date} ({n}/{len(sessions)}): {len(day)} bars")
        finally:
            await data.stop()
        return bars

    bars = asyncio.run(download())
    if not bars:
        raise ValueError(f"Alpaca returned no bars for {', '.join(symbols)} from {first} to {last}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tz = str(EXCHANGE_TZ)
    pl.DataFrame({"timestamp": [b.ts for b in bars], "symbol": [b.symbol for b in bars],
                  "open": [b.open for b in bars], "high": [b.high for b in bars],
                  "low": [b.low for b in bars], "close": [b.close for b in bars],
                  "volume": [b.volume for b in bars]},
                 schema_overrides={"timestamp": pl.Datetime("us", tz)}).write_parquet(path)
    say(f"cached {len(bars):,} bars in {path}")
    return path
