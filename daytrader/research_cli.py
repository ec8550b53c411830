"""`python app.py backtest --data STORE_DIR ...`: a backtest, a sweep or a walk-forward test over
a market-data store, the sweeps' tasks on local processes or on Ray (`--cluster`)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, TextIO

from daytrader.backtest import parse_sweep, run_minutes
from daytrader.config import Settings, parse_symbols
from daytrader.data.store import MarketStore
from daytrader.metrics import Metrics
from daytrader.research import (
    EngineRun,
    WalkForward,
    engine_task,
    executor_for,
    grid_combinations,
    screen_universe,
    walk_forward,
)
from daytrader.runtime import UsageError

OVERFIT = ("Overfitting warning: the best of many combinations on the same data looks better "
           "than it will trade; trust the out-of-sample figures, and the number of combinations "
           "tried beside them.")


def run_on_store(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    store = MarketStore(args.data)
    symbols = (parse_symbols("--symbols", args.backtest_symbols) if args.backtest_symbols
               else store.symbols())
    if not symbols:
        raise UsageError(f"{args.data}: the store holds no bars (python app.py data import FILE)")
    days = store.days(symbols, args.start, args.end)
    if not days:
        raise UsageError(f"{args.data}: no bars for {', '.join(symbols)} in the chosen dates")
    settings = settings.with_overrides(symbols=tuple(symbols))
    if not args.sweep:
        first = next(store.minutes(symbols, days[0], days[0]))[0].ts
        result = run_minutes(store.minutes(symbols, days[0], days[-1]), first, settings)
        report = {"symbols": list(symbols), "days": len(days), "bars": result.bars,
                  "bars_per_second": round(result.bars_per_second),
                  "metrics": result.metrics.as_dict(), "final_equity": str(result.final_equity)}
        _emit(args, report, out, lambda: _print_run(report, out))
        return 0
    grid = parse_sweep(args.sweep)
    combos = grid_combinations(grid, settings)
    if not combos:
        raise UsageError("--sweep: no valid combination (fast must stay below slow)")
    try:
        executor = executor_for(args.cluster, args.workers)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        if args.walk_forward:
            return _walk_forward(args, store, settings, symbols, combos, executor, out, err)
        return _sweep(args, store, settings, symbols, days, combos, executor, out, err)
    finally:
        executor.close()


def _emit(args, report: dict, out: TextIO, text) -> None:
    if args.backtest_json:
        print(json.dumps(report, indent=2, default=str), file=out)
    else:
        text()


def _print_run(report: dict, out: TextIO) -> None:
    m = report["metrics"]
    print(f"Backtest of {len(report['symbols'])} symbols over {report['days']} days "
          f"({report['bars']:,} bars, {report['bars_per_second']:,} bars/s): {m['trades']} trades, "
          f"win rate {m['win_rate_pct']}%, net P&L {m['realized']}, max drawdown "
          f"{m['max_drawdown_pct']}%; end equity {report['final_equity']}", file=out)


def _summary(m: Metrics) -> dict[str, Any]:
    return {"trades": m.trades, "win_rate_pct": round(m.win_rate, 2),
            "profit_factor": None if m.profit_factor is None else round(m.profit_factor, 3),
            "net_pnl": str(m.realized), "max_drawdown_pct": round(m.max_drawdown_pct, 3),
            "sharpe": None if m.sharpe is None else round(m.sharpe, 3)}


def _sweep(args, store, settings, symbols, days, combos, executor, out, err) -> int:
    cut = None
    if args.oos > 0:
        cut = days[max(1, min(len(days) - 1, round(len(days) * (1 - args.oos))))]
    in_end = days[days.index(cut) - 1] if cut else days[-1]
    print(f"screening {len(combos)} combinations x {len(symbols)} symbols over {days[0]} to "
          f"{in_end} on {executor.name}...", file=err, flush=True)
    started = time.perf_counter()
    results = screen_universe(store, symbols, days[0], in_end, combos, executor,
                              settings.flatten_minutes_before_close)
    screened = time.perf_counter() - started
    best = sorted(results, key=lambda r: (r.score, -combos.index(r.params)), reverse=True)
    best = best[: max(1, args.top)]
    root, syms = store.location, tuple(symbols)
    tasks = [(root, syms, days[0], in_end, settings, r.params) for r in best]
    if cut:
        tasks += [(root, syms, cut, days[-1], settings, r.params) for r in best]
    runs: list[EngineRun] = executor.map(engine_task, tasks)
    bar_combos = sum(r.bars for r in results)
    report = {
        "executor": executor.name, "combinations": len(combos), "symbols": len(symbols),
        "screen_seconds": round(screened, 3),
        "bar_combinations_per_second": round(bar_combos / screened) if screened else None,
        "out_of_sample_from": None if cut is None else cut.isoformat(),
        "best": [{"params": r.params, "screen": {"trades": r.trades,
                                                 "win_rate_pct": round(r.win_rate, 2),
                                                 "total_r": round(r.total_r, 4)},
                  "engine": _summary(runs[i].result.metrics),
                  "out_of_sample": _summary(runs[len(best) + i].result.metrics) if cut else None}
                 for i, r in enumerate(best)],
        "warning": OVERFIT,
    }

    def text() -> None:
        print(f"\nSweep over {len(symbols)} symbols on {executor.name}: {len(combos)} "
              f"combinations screened in {screened:.1f}s "
              f"({report['bar_combinations_per_second']:,} bar-combinations/s)", file=out)
        for row in report["best"]:
            p = " ".join(f"{k}={v:g}" for k, v in row["params"].items())
            e, o = row["engine"], row["out_of_sample"]
            line = f"  {p:<40} engine: {e['trades']} trades, net {e['net_pnl']}"
            if o:
                line += f" | out of sample: {o['trades']} trades, net {o['net_pnl']}"
            print(line, file=out)
        print(f"\n{OVERFIT}", file=out)

    _emit(args, report, out, text)
    return 0


def _walk_forward(args, store, settings, symbols, combos, executor, out, err) -> int:
    try:
        in_days, out_days = (int(x) for x in args.walk_forward.split(":"))
    except ValueError:
        raise UsageError(f"--walk-forward: expected IN:OUT days, e.g. 20:5, got "
                         f"{args.walk_forward!r}") from None
    if in_days < 1 or out_days < 1 or in_days > 2000 or out_days > 2000:
        raise UsageError(f"--walk-forward: days from 1 to 2000, got {args.walk_forward!r}")
    print(f"walk-forward: {in_days} days in sample, {out_days} out, {len(combos)} combinations "
          f"per window, on {executor.name}...", file=err, flush=True)
    try:
        wf: WalkForward = walk_forward(store, settings, symbols, combos, in_days, out_days,
                                       executor)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    report = {
        "executor": executor.name, "combinations_per_window": wf.combinations,
        "windows": [{"in_sample": [w.in_start.isoformat(), w.in_end.isoformat()],
                     "out_of_sample": [w.out_start.isoformat(), w.out_end.isoformat()],
                     "best": w.best, "screen_total_r": round(w.screen.total_r, 4),
                     "in_sample_engine": _summary(w.in_sample.result.metrics),
                     "out_of_sample_engine": _summary(w.out_of_sample.result.metrics)}
                    for w in wf.windows],
        "in_sample": _summary(wf.in_sample), "out_of_sample": _summary(wf.out_of_sample),
        "warning": OVERFIT,
    }

    def text() -> None:
        print(f"\nWalk-forward over {len(symbols)} symbols: {len(wf.windows)} windows, "
              f"{wf.combinations} combinations tried in each", file=out)
        for w in report["windows"]:
            p = " ".join(f"{k}={v:g}" for k, v in w["best"].items())
            print(f"  IS {w['in_sample'][0]}..{w['in_sample'][1]} -> OOS "
                  f"{w['out_of_sample'][0]}..{w['out_of_sample'][1]}  best {p}  IS net "
                  f"{w['in_sample_engine']['net_pnl']}  OOS net "
                  f"{w['out_of_sample_engine']['net_pnl']}", file=out)
        i, o = report["in_sample"], report["out_of_sample"]
        print(f"  in sample (chosen parameters): {i['trades']} trades, net {i['net_pnl']}, "
              f"max drawdown {i['max_drawdown_pct']}%", file=out)
        print(f"  out of sample, stitched:       {o['trades']} trades, net {o['net_pnl']}, "
              f"max drawdown {o['max_drawdown_pct']}%", file=out)
        print(f"\n{OVERFIT}", file=out)

    _emit(args, report, out, text)
    return 0
