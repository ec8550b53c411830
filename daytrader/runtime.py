"""Builds what a run needs from settings and options: the engine and its feed, for any front end.

Headless mode, the console and (later) the control API all start trading through here, so they
share one way of choosing the data source, the clock and the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from daytrader.advisor.service import Advisory
from daytrader.broker.sim import SimExchange
from daytrader.clock import EXCHANGE_TZ, MarketCalendar, SimClock
from daytrader.config import Settings, ensure_data_dir
from daytrader.data.feed import SimFeed, paced, synthetic_feed
from daytrader.data.replay import bars_by_minute, load_bars
from daytrader.engine import Engine
from daytrader.models import Bar
from daytrader.store import Store, StoreSummary
from daytrader.store import attach as attach_store

log = logging.getLogger(__name__)


class UsageError(ValueError):
    """A command-line value that cannot be used; the message says which and why."""


class StartupError(UsageError):
    """Something the run needs at start could not be reached; the message names its setting."""


# Locks are a process-wide resource: a runtime built twice in one process (the console checks
# before drawing, then builds) holds the same lock once.
_held_locks: dict[Path, IO[str]] = {}


def instance_lock(data_dir: Path) -> IO[str]:
    """One DayTrader per DATA_DIR: its journal and its API socket are not shared. The kernel
    drops the lock when the process dies, kill -9 included."""
    ensure_data_dir(data_dir)
    path = (data_dir / "daytrader.lock").resolve()
    if path in _held_locks:
        return _held_locks[path]
    # Owner-only, like everything in DATA_DIR; held open for the life of the run.
    handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip() or "?"
        handle.close()
        raise UsageError(f"another DayTrader (pid {pid}) is running with DATA_DIR={data_dir}; "
                         "stop it first, or give this one another DATA_DIR") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _held_locks[path] = handle
    return handle


def release_instance_lock(data_dir: Path) -> None:
    handle = _held_locks.pop((data_dir / "daytrader.lock").resolve(), None)
    if handle is not None:
        handle.close()


@dataclass(frozen=True, slots=True)
class RunOptions:
    replay: Path | None = None
    # A replay trades SYMBOLS when they were given (--symbols, or SYMBOLS in .env or the
    # environment); otherwise every symbol of the file. The command line says which.
    symbols_given: bool = True
    speed: float | None = None  # None: the SIM_SPEED setting; 0: as fast as possible
    until: str | None = None  # "HH:MM" (exchange time, first day), ISO datetime, or "close"
    duration: str | None = None  # market time: "90m", "6h", "3d"
    json_summary: bool = False
    quiet: bool = False
    # Journal to DATA_DIR/journal.sqlite (and Supabase when configured). The command line turns
    # it on; engines that tests build directly share no file.
    journal: bool = False
    live_note: str = ""  # paper/live: journaled at start (e.g. a live checklist override)
    # Serve the control API (Unix socket / TCP per settings) while running; the command line
    # turns it on, tests that build runtimes directly do not bind sockets.
    api: bool = False


MAX_DURATION = timedelta(days=3650)  # the calendar covers about 20 years; ten is plenty


def parse_duration(text: str) -> timedelta:
    """`--duration`: market time such as 90m, 6h or 3d (a bare number is minutes), up to 3650d."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    text = text.strip().lower()[:40]
    try:
        value = float(text[:-1]) if text[-1:] in units else float(text)
    except ValueError:
        raise UsageError(f"--duration: expected e.g. 90m, 6h or 2d, got {text!r}") from None
    if not 0 < value < float("inf"):  # NaN fails this too
        raise UsageError(f"--duration: expected a positive amount of market time such as 90m, "
                         f"6h or 2d, got {text!r}")
    try:
        duration = timedelta(**{units.get(text[-1], "minutes"): value})
    except OverflowError:
        duration = MAX_DURATION * 2
    if duration > MAX_DURATION:
        raise UsageError(f"--duration: at most {MAX_DURATION.days}d, got {text!r}")
    return duration


def parse_until(text: str, start: datetime, calendar: MarketCalendar) -> datetime:
    """`--until`: "close" (of the first session), "HH:MM" on the first day, or an ISO time."""
    text = text.strip()
    first = calendar.session_at(start) or calendar.next_session(start)
    if text.lower() == "close":
        return first.close
    try:
        if len(text) <= 5 and ":" in text:
            hour, minute = (int(x) for x in text.split(":"))
            return datetime.combine(first.date, datetime.min.time(), EXCHANGE_TZ).replace(
                hour=hour, minute=minute)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--until: expected close, HH:MM or an ISO date-time, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=EXCHANGE_TZ)


@dataclass
class Runtime:
    settings: Settings
    options: RunOptions
    calendar: MarketCalendar
    feed: SimFeed
    engine: Engine
    source: str
    rejected_bars: dict[str, int] = field(default_factory=dict)
    bars_processed: int = 0
    store: Store | None = None  # the journal (and replicator) of this run
    store_summary: StoreSummary | None = None  # how the store ended (after close)
    # Paper/live: connect and reconcile before the first minute; disconnect after the last.
    prepare: Callable[[], Awaitable[None]] | None = None
    shutdown: Callable[[], Awaitable[None]] | None = None
    # Paper/live: loops that run beside the feed (account refresh, protection watch).
    background: tuple[Callable[[], Awaitable[None]], ...] = ()
    # The LLM advisory: the advisor on entries, the debrief after the close, ask.
    advisory: Advisory | None = None

    def close(self, reason: str = "stopped") -> None:
        """Ends the run's journal session cleanly (a run that is killed resumes next start)."""
        if self.store is not None:
            self.store_summary = self.store.close(reason)
            self.store = None
        if self.options.journal or self.options.api:
            release_instance_lock(self.settings.data_dir)

    @property
    def speed(self) -> float:
        return self.settings.sim_speed if self.options.speed is None else self.options.speed

    def until(self) -> datetime | None:
        ends = []
        if self.options.until:
            ends.append(parse_until(self.options.until, self.feed.start, self.calendar))
        if self.options.duration:
            ends.append(self.feed.start + parse_duration(self.options.duration))
        return min(ends) if ends else None

    async def run(self, stop: asyncio.Event | None = None,
                  on_minute: Callable[[], None] | None = None,
                  on_feed_end: Callable[[], None] | None = None, linger: bool = False) -> None:
        """Warms up, then feeds the engine minute by minute until the feed ends or `stop`.
        With `linger`, controls (and the API) stay up after the feed ends, until `stop`."""
        api = alerter = None
        tasks: list[asyncio.Task] = []
        try:
            if self.settings.alert_webhook_url:
                from daytrader.alerts import Alerter

                alerter = Alerter(self.engine, self.settings.alert_webhook_url,
                                  unhealthy_after=self.settings.alert_unhealthy_seconds).start()
            if self.options.api:
                from daytrader.api import ApiServer

                api = await ApiServer(self.engine, self.settings).start()
            if self.prepare is not None:
                await self.prepare()
            tasks = [asyncio.create_task(loop(), name=getattr(loop, "__name__", "background"))
                     for loop in self.background]
            if self.advisory is not None:
                await self.advisory.prepare()
            self.engine.warm_up(self.feed.warmup)
            minutes = self.feed.minutes
            if hasattr(minutes, "__aiter__"):  # a live stream: bars come when they come
                source = _until_stopped(minutes, stop, self.until())
            else:
                source = paced(minutes, self.speed, until=self.until())
            each_close = self.speed > 0 or hasattr(minutes, "__aiter__")
            async for minute in source:
                await self.engine.on_minute(minute)
                self.bars_processed += len(minute)
                if self.advisory is not None:
                    self.advisory.after_minute(minute, each_close)
                if on_minute is not None:
                    on_minute()
                if stop is not None and stop.is_set():
                    self.engine.record("info", "engine", "stopped")
                    break
            await self.engine.settle_entries()  # entries still waiting for the advisor
            if self.advisory is not None:
                await self.advisory.finish()
            if on_feed_end is not None:
                on_feed_end()
            if linger and stop is not None:
                await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self.shutdown is not None:
                await self.shutdown()
            if api is not None:
                await api.stop()
            if alerter is not None:
                await alerter.stop()
            if self.advisory is not None:
                await self.advisory.aclose()


async def _until_stopped(minutes: AsyncIterator[list[Bar]], stop: asyncio.Event | None,
                         until: datetime | None) -> AsyncIterator[list[Bar]]:
    """A live feed's minutes until `stop` is set (without waiting for the next bar) or `until`."""
    stopped = asyncio.ensure_future(stop.wait() if stop is not None else asyncio.Future())
    try:
        while True:
            following = asyncio.ensure_future(anext(minutes))
            done, _ = await asyncio.wait({following, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if following not in done:
                following.cancel()
                return
            try:
                bars = following.result()
            except StopAsyncIteration:
                return
            if until is not None and bars and bars[0].ts >= until:
                return
            yield bars
    finally:
        stopped.cancel()


async def check_broker_reachable(settings: Settings) -> None:
    """Before the console draws: the trading API answers with these keys (one request).
    Raises StartupError naming the URL setting, or BrokerAuthError naming the key settings."""
    from daytrader.broker import BrokerUnreachable
    from daytrader.broker.alpaca import AlpacaBroker, AlpacaConfig

    broker = AlpacaBroker(AlpacaConfig.from_settings(settings))
    try:
        await broker.start(stream=False)
    except BrokerUnreachable as exc:
        raise StartupError(exc.message) from None
    finally:
        await broker.stop()


def build_alpaca_runtime(settings: Settings, options: RunOptions,
                         calendar: MarketCalendar) -> Runtime:
    """Paper or live: Alpaca for orders, fills and bars, on the wall clock. Before the first
    minute it checks the keys, starts trade_updates, reconciles with the account (positions and
    open orders appear and are managed) and warms the strategy up on history."""
    from daytrader.broker import BrokerUnavailable, BrokerUnreachable
    from daytrader.broker.alpaca import AlpacaBroker, AlpacaConfig
    from daytrader.clock import WallClock
    from daytrader.data.alpaca import DATA_URL, AlpacaData, AlpacaDataConfig

    clock = WallClock()
    broker = AlpacaBroker(AlpacaConfig.from_settings(settings))
    engine = Engine(settings, broker, calendar, clock)
    data = AlpacaData(AlpacaDataConfig.from_settings(settings), on_health=engine.report_health)
    broker.set_health_reporter(engine.report_health)
    broker.set_gap_handler(lambda: engine.sync("trade stream reconnect"))
    start = clock.now()
    source = f"alpaca {settings.mode} ({settings.alpaca_feed})"
    store, warmup = None, []
    if options.journal:  # the journal sees an empty sim-style feed; the live one comes after
        store, journaled = attach_store(engine, settings, source, SimFeed(start, [], iter(())))
        warmup = list(journaled.warmup)
    feed = SimFeed(start, warmup, data.minutes(settings.symbols, calendar, clock))  # type: ignore[arg-type]

    async def prepare() -> None:
        try:  # bad keys stop here, naming the key settings; an unreachable endpoint, its URL
            await broker.start(require_stream=True)
        except BrokerUnreachable as exc:
            await data.stop()
            raise StartupError(exc.message) from None
        if options.live_note:
            engine.record("warning", "control", options.live_note, source="cli",
                          action="live_start")
        await engine.sync("start-up")
        previous = calendar.previous_session(start.date())
        try:
            feed.warmup.extend(await data.history(settings.symbols, previous.open, start))
        except BrokerUnavailable as exc:
            await broker.stop()
            await data.stop()
            raise StartupError(f"cannot reach Alpaca's market data at ALPACA_DATA_URL="
                               f"{data.config.url or DATA_URL}: {exc.message}") from None
        if not await data.connect(settings.symbols, data.config.auth_timeout + 5):
            await broker.stop()
            await data.stop()
            raise StartupError(f"cannot connect to Alpaca's market data stream at "
                               f"ALPACA_DATA_STREAM_URL={data.stream_url}: {data.health.detail}")
        engine.record("info", "engine", f"{settings.mode}: warmed up on {len(feed.warmup)} bars "
                      f"from {previous.date}; waiting for live bars")

    async def shutdown() -> None:
        await data.stop()
        await broker.stop()

    return Runtime(settings, options, calendar, feed, engine, source, store=store,
                   prepare=prepare, shutdown=shutdown,
                   background=(engine.keep_account_fresh, engine.watch_protection),
                   advisory=Advisory.from_settings(settings, engine))


def build_runtime(settings: Settings, options: RunOptions,
                  now: Callable[[], datetime] | None = None,
                  calendar: MarketCalendar | None = None) -> Runtime:
    """The engine and feed for sim mode: synthetic bars, or a replay file when given.
    Paper and live get Alpaca's (`build_alpaca_runtime`)."""
    if options.journal or options.api:
        instance_lock(settings.data_dir)  # before the journal is opened or the socket bound
    calendar = calendar or MarketCalendar()
    if settings.mode in ("paper", "live"):
        return build_alpaca_runtime(settings, options, calendar)
    rejected: dict[str, int] = {}
    if options.replay is not None and options.replay.is_dir():  # a market-data store
        from daytrader.data.store import MarketStore

        market = MarketStore(options.replay)
        wanted = settings.symbols if options.symbols_given else market.symbols()
        days = market.days(wanted)
        if not days:
            raise UsageError(f"{options.replay}: the store holds no bars"
                             + (f" for {', '.join(wanted)}" if wanted else ""))
        settings = settings.with_overrides(symbols=tuple(wanted))
        first = next(market.minutes(wanted, days[0], days[0]))[0].ts
        feed = SimFeed(first, [], market.minutes(wanted))  # read a day at a time
        source = str(options.replay)
    elif options.replay is not None:
        wanted = settings.symbols if options.symbols_given else None
        data = load_bars(options.replay, wanted, (calendar.first_day, calendar.last_day))
        rejected = dict(data.rejected)
        if not data.bars:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(rejected.items())) or "no rows"
            raise UsageError(f"{options.replay}: no valid bars"
                             + (f" for {', '.join(wanted)}" if wanted else "")
                             + f" (rejected: {counts})")
        if wanted is None:
            settings = settings.with_overrides(symbols=data.symbols)
        missing = set(settings.symbols) - set(data.symbols)
        if missing:
            log.warning("%s has no bars for %s", options.replay, ", ".join(sorted(missing)))
        feed = SimFeed(data.bars[0].ts, [], bars_by_minute(data.bars))
        source = str(options.replay)
    else:
        moment = (now or (lambda: datetime.now(EXCHANGE_TZ)))()
        feed = synthetic_feed(settings.symbols, calendar, moment, settings.sim_seed)
        source = f"synthetic (seed {settings.sim_seed})"
    engine = build_engine(settings, calendar, start=feed.start)
    engine.bad_bars.update(rejected)
    store = None
    if options.journal:
        store, feed = attach_store(engine, settings, f"{source} from {feed.start.isoformat()}", feed)
    return Runtime(settings, options, calendar, feed, engine, source, rejected, store=store,
                   advisory=Advisory.from_settings(settings, engine))


def build_engine(settings: Settings, calendar: MarketCalendar | None = None,
                 start: datetime | None = None) -> Engine:
    """A sim engine from settings: the sim exchange on a sim clock that starts at `start`."""
    calendar = calendar or MarketCalendar()
    clock = SimClock(start or calendar.latest_session_started(datetime.now(EXCHANGE_TZ)).open)
    broker = SimExchange(settings.symbols, calendar, clock, cash=settings.starting_cash,
                         slippage_bps=settings.sim_slippage_bps,
                         commission_per_share=settings.sim_commission_per_share,
                         buying_power_multiplier=settings.sim_buying_power_multiplier)
    return Engine(settings, broker, calendar, clock)

