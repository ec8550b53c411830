"""Headless run: the engine on synthetic or replayed bars with a concise live log and a summary."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from daytrader import __version__, metrics
from daytrader.clock import EXCHANGE_TZ, MarketCalendar
from daytrader.config import Settings
from daytrader.data.feed import SimFeed, paced, synthetic_feed
from daytrader.data.replay import bars_by_minute, load_bars
from daytrader.engine import Engine, build_engine
from daytrader.models import LogEvent

log = logging.getLogger(__name__)

# Kinds worth a line in the live log; the rest stays in the engine's event list.
_LIVE_KINDS = {"order", "fill", "trade", "reject", "breaker", "control", "broker", "engine", "data"}


@dataclass(frozen=True, slots=True)
class RunOptions:
    replay: Path | None = None
    speed: float | None = None  # None: the SIM_SPEED setting; 0: as fast as possible
    until: str | None = None  # "HH:MM" (exchange time, first day), ISO datetime, or "close"
    duration: str | None = None  # market time: "90m", "6h", "3d"
    json_summary: bool = False
    quiet: bool = False


class UsageError(ValueError):
    """A command-line value that cannot be used; the message says which and why."""


def parse_duration(text: str) -> timedelta:
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    text = text.strip().lower()
    try:
        value = float(text[:-1]) if text[-1] in units else float(text)
    except (ValueError, IndexError):
        raise UsageError(f"--duration: expected e.g. 90m, 6h or 2d, got {text!r}") from None
    if value <= 0:
        raise UsageError(f"--duration: must be positive, got {text!r}")
    return timedelta(**{units.get(text[-1], "minutes"): value})


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


def format_event(event: LogEvent) -> str:
    level = {"warning": "!", "error": "X"}.get(event.level, " ")
    return f"{event.ts.astimezone(EXCHANGE_TZ):%m-%d %H:%M} {level} {event.kind:<7} {event.message}"


class HeadlessRun:
    """One headless run: builds the feed and engine, runs them, and reports."""

    def __init__(self, settings: Settings, options: RunOptions, out: TextIO = sys.stdout,
                 err: TextIO = sys.stderr, now: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.options = options
        self.out, self.err = out, err
        self.calendar = MarketCalendar()
        self.now = now or (lambda: datetime.now(EXCHANGE_TZ))
        self.rejected_bars: dict[str, int] = {}
        self.bars_processed = 0
        self.source = ""
        self.feed = self._feed()
        self.engine: Engine = build_engine(settings, self.calendar, start=self.feed.start)
        self.engine.bad_bars.update(self.rejected_bars)
        if not options.quiet:
            live = self.err if options.json_summary else self.out
            self.engine.listeners.append(
                lambda e: print(format_event(e), file=live, flush=True) if e.kind in _LIVE_KINDS
                else None)

    def _feed(self) -> SimFeed:
        if self.options.replay is not None:
            data = load_bars(self.options.replay, self.settings.symbols)
            self.rejected_bars = dict(data.rejected)
            self.source = str(self.options.replay)
            if not data.bars:
                raise UsageError(f"{self.options.replay}: no valid bars for "
                                 f"{', '.join(self.settings.symbols)}")
            missing = set(self.settings.symbols) - set(data.symbols)
            if missing:
                log.warning("%s has no bars for %s", self.options.replay, ", ".join(sorted(missing)))
            return SimFeed(data.bars[0].ts, [], bars_by_minute(data.bars))
        self.source = f"synthetic (seed {self.settings.sim_seed})"
        return synthetic_feed(self.settings.symbols, self.calendar, self.now(),
                              self.settings.sim_seed)

    def _until(self) -> datetime | None:
        ends = []
        if self.options.until:
            ends.append(parse_until(self.options.until, self.feed.start, self.calendar))
        if self.options.duration:
            ends.append(self.feed.start + parse_duration(self.options.duration))
        return min(ends) if ends else None

    async def run(self) -> dict:
        until = self._until()
        speed = self.settings.sim_speed if self.options.speed is None else self.options.speed
        engine = self.engine
        engine.warm_up(self.feed.warmup)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        self._banner(speed, until)
        started = time.perf_counter()
        try:
            async for minute in paced(self.feed.minutes, speed, until=until):
                await engine.on_minute(minute)
                self.bars_processed += len(minute)
                if stop.is_set():
                    engine.record("info", "engine", "stopping on signal")
                    break
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        return self.summary(time.perf_counter() - started)

    def _banner(self, speed: float, until: datetime | None) -> None:
        if self.options.quiet:
            return
        target = self.err if self.options.json_summary else self.out
        pace = "max speed" if speed == 0 else f"{speed:g}x"
        stop = f" until {until:%Y-%m-%d %H:%M %Z}" if until else " (Ctrl+C to stop)"
        print(f"DayTrader {__version__} headless SIM: {self.source}, "
              f"{', '.join(self.settings.symbols)}, from {self.feed.start:%a %Y-%m-%d %H:%M %Z}, "
              f"{pace}{stop}", file=target, flush=True)
        if self.rejected_bars:
            counts = ", ".join(f"{k}: {v}" for k, v in sorted(self.rejected_bars.items()))
            print(f"bad bars rejected: {counts}", file=target, flush=True)

    def summary(self, elapsed: float) -> dict:
        engine = self.engine
        snap = engine.snapshot(events=0, orders=0)
        curve = [v for _, v in engine.equity_curve]
        m = metrics.compute(engine.book.trades, engine.equity_curve)
        return {
            "version": __version__,
            "mode": self.settings.mode,
            "source": self.source,
            "seed": self.settings.sim_seed,
            "symbols": list(self.settings.symbols),
            "start": self.feed.start.isoformat(),
            "end": snap.ts.isoformat(),
            "bars": self.bars_processed,
            "elapsed_seconds": round(elapsed, 3),
            "bars_per_second": round(self.bars_processed / elapsed) if elapsed > 0 else None,
            "trading_state": snap.state.value,
            "equity": {
                "start": str(self.settings.starting_cash),
                "end": str(snap.account.equity),
                "cash": str(snap.account.cash),
                "peak": round(max(curve), 2) if curve else None,
                "low": round(min(curve), 2) if curve else None,
            },
            "metrics": m.as_dict(),
            "trades": [{
                "symbol": t.symbol, "side": t.side.value, "qty": t.qty,
                "entry_time": t.entry_time.isoformat(), "entry_price": str(t.entry_price),
                "exit_time": t.exit_time.isoformat(), "exit_price": str(t.exit_price),
                "stop_loss": None if t.stop_loss is None else str(t.stop_loss),
                "take_profit": None if t.take_profit is None else str(t.take_profit),
                "pnl": str(t.pnl), "commission": str(t.commission), "reason": t.exit_reason,
            } for t in engine.book.trades],
            "open_positions": [{
                "symbol": p.symbol, "qty": p.qty, "avg_entry_price": str(p.avg_entry_price),
                "last_price": str(p.last_price), "unrealized": str(p.unrealized_pnl),
            } for p in snap.positions],
            "risk_rejections": dict(sorted(engine.rejections_by_check.items())),
            "bad_bars": dict(sorted(engine.bad_bars.items())),
            "breaker_trips": [{
                "ts": trip.ts.isoformat(), "loss_pct": round(trip.loss_pct, 3),
                "equity": str(trip.equity), "baseline": str(trip.baseline),
            } for trip in engine.breaker.trips],
        }

    def print_summary(self, summary: dict) -> None:
        if self.options.json_summary:
            print(json.dumps(summary, indent=2), file=self.out, flush=True)
            return
        m = summary["metrics"]
        pf = "n/a" if m["profit_factor"] is None else f"{m['profit_factor']:.2f}"
        lines = [
            "",
            f"Run: {summary['bars']} bars from {summary['start']} to {summary['end']} "
            f"in {summary['elapsed_seconds']}s",
            f"Equity: {summary['equity']['start']} -> {summary['equity']['end']}  "
            f"(max drawdown {m['max_drawdown']:.2f}, {m['max_drawdown_pct']:.2f}%)",
            f"Trades: {m['trades']}  win rate {m['win_rate_pct']:.1f}%  profit factor {pf}  "
            f"realized {m['realized']}",
            f"Risk rejections: {summary['risk_rejections'] or 'none'}",
            f"Bad bars rejected: {summary['bad_bars'] or 'none'}",
            f"Breaker trips: {len(summary['breaker_trips'])}   "
            f"Open positions: {len(summary['open_positions'])}",
        ]
        print("\n".join(lines), file=self.out, flush=True)


async def run_headless(settings: Settings, options: RunOptions, out: TextIO = sys.stdout,
                       err: TextIO = sys.stderr) -> dict:
    run = HeadlessRun(settings, options, out, err)
    summary = await run.run()
    run.print_summary(summary)
    return summary
