"""Headless run: the engine on synthetic or replayed bars with a concise live log and a summary."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TextIO

from daytrader import __version__
from daytrader.clock import EXCHANGE_TZ
from daytrader.config import Settings
from daytrader.models import LogEvent, to_money
from daytrader.runtime import RunOptions, UsageError, build_runtime
from daytrader.wording import counts, money, plural

__all__ = ["HeadlessRun", "RunOptions", "UsageError", "format_event", "run_headless"]

# Kinds worth a line in the live log; the rest stays in the engine's event list.
_LIVE_KINDS = {"order", "fill", "trade", "reject", "breaker", "control", "broker", "engine", "data",
               "advisor", "debrief"}


def format_event(event: LogEvent) -> str:
    level = {"warning": "!", "error": "X"}.get(event.level, " ")
    return f"{event.ts.astimezone(EXCHANGE_TZ):%m-%d %H:%M} {level} {event.kind:<7} {event.message}"


class HeadlessRun:
    """One headless run: the runtime's engine and feed, a live log, and a summary."""

    def __init__(self, settings: Settings, options: RunOptions, out: TextIO | None = None,
                 err: TextIO | None = None, now: Callable[[], datetime] | None = None) -> None:
        self.options = options
        # The streams of the moment (not of import time): callers in one process may swap them.
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self.runtime = build_runtime(settings, options, now)
        self.settings = self.runtime.settings  # a replay's universe comes from its file
        self.engine = self.runtime.engine
        if not options.quiet:
            live = self.err if options.json_summary else self.out
            self.engine.listeners.append(
                lambda e: print(format_event(e), file=live, flush=True) if e.kind in _LIVE_KINDS
                else None)

    async def run(self) -> dict:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        started = time.perf_counter()
        try:
            self._banner()  # inside: a bad --until still ends the journal's session cleanly
            await self.runtime.run(stop)
        finally:
            self.runtime.close("interrupted" if stop.is_set() else "finished")
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        return self.summary(time.perf_counter() - started)

    def _banner(self) -> None:
        if self.options.quiet:
            return
        rt = self.runtime
        target = self.err if self.options.json_summary else self.out
        until = rt.until()
        pace = "max speed" if rt.speed == 0 else f"{rt.speed:g}x"
        stop = f" until {until:%Y-%m-%d %H:%M %Z}" if until else " (Ctrl+C to stop)"
        print(f"DayTrader {__version__} headless {self.settings.mode.upper()}: {rt.source}, "
              f"{', '.join(self.settings.symbols)}, from {rt.feed.start:%a %Y-%m-%d %H:%M %Z}, "
              f"{pace}{stop}", file=target, flush=True)
        if rt.store is not None and rt.store.recovered is not None:
            print(rt.store.recovered.summary(), file=target, flush=True)
        if rt.rejected_bars:
            counts = ", ".join(f"{k}: {v}" for k, v in sorted(rt.rejected_bars.items()))
            print(f"bad bars rejected: {counts}", file=target, flush=True)

    def summary(self, elapsed: float) -> dict:
        engine, rt = self.engine, self.runtime
        snap = engine.snapshot(events=0, orders=0)
        curve = [v for _, v in engine.equity_curve]
        from daytrader.backtest import engine_metrics  # polars and numpy: only when summing up

        m = engine_metrics(engine, self.settings.starting_cash)
        return {
            "version": __version__,
            "mode": self.settings.mode,
            "source": rt.source,
            "seed": self.settings.sim_seed,
            "symbols": list(self.settings.symbols),
            "start": rt.feed.start.isoformat(),
            "end": snap.ts.isoformat(),
            "bars": rt.bars_processed,
            "elapsed_seconds": round(elapsed, 3),
            "bars_per_second": round(rt.bars_processed / elapsed) if elapsed > 0 else None,
            "trading_state": snap.state.value,
            "equity": {
                "start": str(to_money(self.settings.starting_cash)),
                "end": str(snap.account.equity),
                "cash": str(snap.account.cash),
                # Money is a string with cents everywhere in the summary, like the API's.
                "peak": f"{max(curve):.2f}" if curve else None,
                "low": f"{min(curve):.2f}" if curve else None,
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
            # the journal and replication as the run ended them (null: no journal)
            "store": rt.store_summary.as_dict() if rt.store_summary is not None else None,
            # the daily debrief this run wrote last (null: none, e.g. no journal)
            "debrief": str(last.path) if (last := self._last_report()) is not None else None,
            "breaker_trips": [{
                "ts": trip.ts.isoformat(), "loss_pct": round(trip.loss_pct, 3),
                "equity": str(trip.equity), "baseline": str(trip.baseline),
            } for trip in engine.breaker.trips],
        }

    def _last_report(self):
        advisory = self.runtime.advisory
        if advisory is None or not advisory.reports:
            return None
        return advisory.reports[max(advisory.reports)]

    def print_summary(self, summary: dict) -> None:
        if self.options.json_summary:
            print(json.dumps(summary, indent=2), file=self.out, flush=True)
            return
        m = summary["metrics"]
        pf = "n/a" if m["profit_factor"] is None else f"{m['profit_factor']:.2f}"
        slip = "n/a" if m["slippage_bps"] is None else f"{m['slippage_bps']:.2f} bps"
        fill_rate = "n/a" if m["fill_rate_pct"] is None else f"{m['fill_rate_pct']:.1f}%"
        lines = [
            "",
            f"Run: {plural(summary['bars'], 'bar')} from {summary['start']} to {summary['end']} "
            f"in {summary['elapsed_seconds']}s",
            f"Equity: {_dollars(summary['equity']['start'])} -> "
            f"{_dollars(summary['equity']['end'])}  (max drawdown "
            f"{_dollars(m['max_drawdown'])}, {m['max_drawdown_pct']:.2f}%)",
            f"Trades: {m['trades']}  win rate {m['win_rate_pct']:.1f}%  profit factor {pf}  "
            f"realized {_dollars(m['realized'], signed=True)}",
            f"Slippage vs signal: {slip}  fill rate {fill_rate}",
            f"Risk rejections: {counts(summary['risk_rejections'])}",
            f"Bad bars rejected: {counts(summary['bad_bars'])}",
            f"Breaker trips: {len(summary['breaker_trips'])}   "
            f"Open positions: {len(summary['open_positions'])}",
        ]
        store = summary["store"]
        if store is not None:
            r = store["replication"]
            lines.append(f"Journal: {store['journal']}"
                         + (f" ({store['journal_set_aside']} record(s) set aside)"
                            if store["journal_set_aside"] else "")
                         + ("; Supabase not configured" if not r["configured"] else
                            f"; Supabase {r['state']}, {r['sent']} sent, backlog {r['backlog']}"
                            + (f" ({r['last_error']})" if r["last_error"] else "")))
        if summary["debrief"]:
            lines.append(f"Daily debrief: {summary['debrief']}")
        print("\n".join(lines), file=self.out, flush=True)


async def run_headless(settings: Settings, options: RunOptions, out: TextIO | None = None,
                       err: TextIO | None = None) -> dict:
    run = HeadlessRun(settings, options, out, err)
    summary = await run.run()
    run.print_summary(summary)
    return summary


def _dollars(figure: str | None, signed: bool = False) -> str:
    """A money figure of the JSON summary (a string with cents) as the text summary shows it."""
    return money(Decimal(figure) if figure is not None else None, signed)
