"""`python app.py backtest`: one full-engine run with a report, or a parameter sweep."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from daytrader.backtest import (
    BacktestResult,
    apply_params,
    backtest_file,
    combinations,
    engine_sweep,
    load_file,
    parse_sweep,
    plain_number,
    prepare_frame,
    run_backtest,
    screen,
    split_days,
    strategy_combinations,
    with_params,
)
from daytrader.charting import drawdown_axis, drawdown_pct, equity_axis, time_ticks
from daytrader.clock import EXCHANGE_TZ, MarketCalendar
from daytrader.config import Settings, SettingsError, ensure_data_dir, parse_symbols
from daytrader.models import Bar
from daytrader.runtime import UsageError
from daytrader.strategy.loader import parse_spec
from daytrader.wording import counts

RISK_PARAMS = ("risk", "max_positions", "max_loss", "flatten")

OVERFIT_WARNING = (
    "Overfitting warning: the best of many combinations on the same data looks better than it "
    "will trade. Trust a combination only if it also holds out of sample (--oos 0.3) and its "
    "neighbours score alike.")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, metavar="FILE",
                   help="minute bars, CSV or Parquet (timestamp, symbol, open, high, low, close, "
                        "volume)")
    p.add_argument("--symbols", dest="backtest_symbols", metavar="A,B",
                   help="only these symbols (default: every symbol in the file)")
    p.add_argument("--source", choices=("file", "alpaca"), default="file",
                   help="where bars come from (default file, with --data)")
    p.add_argument("--from", dest="start", type=date.fromisoformat, metavar="YYYY-MM-DD",
                   help="first day (inclusive)")
    p.add_argument("--to", dest="end", type=date.fromisoformat, metavar="YYYY-MM-DD",
                   help="last day (inclusive)")
    p.add_argument("--strategy", dest="backtest_strategy", metavar="SPEC",
                   help="the strategy (default STRATEGY, ema_cross): a name, module:Class or "
                        "path/to/file.py:Class, e.g. 'opening_range(minutes=30)'")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a parameter of the strategy by its name (ema_cross: fast, slow, atr, "
                        "stop, take), or of risk: risk, max_positions, max_loss, flatten "
                        "(repeatable)")
    p.add_argument("--capital", type=Decimal, help="starting equity (default STARTING_CASH)")
    p.add_argument("--slippage-bps", type=float, help="per taker fill (default SIM_SLIPPAGE_BPS)")
    p.add_argument("--commission", type=Decimal, metavar="PER_SHARE",
                   help="per share (default SIM_COMMISSION_PER_SHARE)")
    p.add_argument("--sweep", action="append", default=[], metavar="NAME=FROM:TO[:STEP]",
                   help="sweep a strategy parameter, e.g. fast=5:15 slow=20:40:5 (ema_cross: "
                        "screened vectorized, the best confirmed with the full engine; other "
                        "strategies: every combination through the full engine on --workers "
                        "processes)")
    p.add_argument("--top", type=int, default=3, help="combinations confirmed with the engine")
    p.add_argument("--oos", type=float, default=0.0, metavar="FRACTION",
                   help="hold out the last FRACTION of days as out-of-sample (e.g. 0.3)")
    p.add_argument("--workers", type=int, default=2, help="processes for the sweep (default 2)")
    p.add_argument("--walk-forward", dest="walk_forward", metavar="IN:OUT",
                   help="with --sweep over a store: rolling windows of IN days in sample and OUT "
                        "days out of sample; each window's best parameters trade the next "
                        "OUT days, and the out-of-sample results are stitched together")
    p.add_argument("--cluster", metavar="local|auto|ray://HOST:PORT",
                   help="with --data STORE_DIR: run the sweep's tasks on Ray (local: a Ray "
                        "instance on this machine with --workers CPUs; auto: the cluster this "
                        "machine joined; ray://: a remote one). Default: local processes")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="where trades.parquet / trades.csv go (default DATA_DIR/backtests/<time>)")
    p.add_argument("--no-plot", action="store_true", help="no terminal charts")
    p.add_argument("--json", dest="backtest_json", action="store_true",
                   help="print the report as JSON on stdout")


def _settings(args: argparse.Namespace, base: Settings) -> Settings:
    params = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep:
            raise SettingsError(f"--param: expected NAME=VALUE, got {item!r}")
        params[name.strip()] = value.strip()
    spec = getattr(args, "backtest_strategy", None) or base.strategy or "ema_cross"
    if parse_spec(spec).target != "ema_cross":  # its own parameters, by their names
        risk = {k: v for k, v in params.items() if k in RISK_PARAMS}
        mine = {k: v for k, v in params.items() if k not in RISK_PARAMS}
        base = base.with_overrides(strategy=str(with_params(spec, mine)) if mine else spec)
        params = risk
    elif spec != base.strategy:
        base = base.with_overrides(strategy=spec)
    settings = apply_params(base, params)
    changes: dict = {"mode": "backtest"}
    if args.capital is not None:
        changes["starting_cash"] = args.capital
    if args.slippage_bps is not None:
        changes["sim_slippage_bps"] = args.slippage_bps
    if args.commission is not None:
        changes["sim_commission_per_share"] = args.commission
    try:
        return settings.with_overrides(**changes)
    except SettingsError as exc:  # name the option that set it, and the setting it sets
        message = str(exc)
        for option, env in (("--capital", "STARTING_CASH"), ("--slippage-bps", "SIM_SLIPPAGE_BPS"),
                            ("--commission", "SIM_COMMISSION_PER_SHARE")):
            if message.startswith(f"{env}:") and getattr(args, option[2:].replace("-", "_"),
                                                         None) is not None:
                message = f"{option} ({env}){message[len(env):]}"
        raise SettingsError(message) from None


def _source(args: argparse.Namespace, settings: Settings, err: TextIO
            ) -> tuple[Path, tuple[str, ...] | None]:
    """The bars file to read (the given one, or Alpaca's history cached as one) and the
    symbols asked for."""
    if args.source == "alpaca":
        from daytrader.data.alpaca import cached_history  # needs keys; caches as Parquet

        if args.backtest_symbols:
            settings = settings.with_overrides(
                symbols=parse_symbols("--symbols", args.backtest_symbols))

        if args.start is None or args.end is None:
            raise UsageError("--source alpaca needs --from and --to")
        if not (settings.alpaca_api_key and settings.alpaca_secret_key):
            raise UsageError("--source alpaca needs ALPACA_API_KEY and ALPACA_SECRET_KEY in .env")
        path = cached_history(settings, settings.symbols, args.start, args.end,
                              progress=lambda msg: print(msg, file=err, flush=True))
    elif args.data is None:
        raise UsageError("backtest needs --data FILE (or --source alpaca)")
    else:
        path = args.data
    symbols = parse_symbols("--symbols", args.backtest_symbols) if args.backtest_symbols else None
    return path, symbols


class Progress:
    """A one-line progress bar on stderr (a line every 10% when stderr is not a terminal)."""

    def __init__(self, err: TextIO, label: str) -> None:
        self.err, self.label, self.tty = err, label, err.isatty()
        self.last = -1

    def __call__(self, done: int, total: int) -> None:
        pct = done * 100 // max(1, total)
        if self.tty:
            bar = "#" * (pct // 4)
            print(f"\r{self.label} [{bar:<25}] {pct:3d}%", end="", file=self.err, flush=True)
            if done >= total:
                print(file=self.err)
        elif pct // 10 != self.last // 10 or done >= total:
            print(f"{self.label} {pct}%", file=self.err, flush=True)
        self.last = pct


def _or_na(x: float | None, spec: str = ".2f") -> str:
    """A figure that may not exist (no losing trade: no profit factor): "n/a" then."""
    return "n/a" if x is None else format(x, spec)


def metrics_rows(result: BacktestResult) -> list[tuple[str, str]]:
    m = result.metrics
    return [
        ("bars", f"{result.bars:,}"), ("bars/s", f"{result.bars_per_second:,.0f}"),
        ("start equity", f"{result.settings.starting_cash:,.2f}"),
        ("end equity", f"{result.final_equity:,.2f}"),
        ("trades", str(m.trades)), ("win rate", f"{m.win_rate:.1f}%"),
        ("profit factor", _or_na(m.profit_factor)), ("expectancy", f"{m.expectancy:,.2f}"),
        ("average win / loss", f"{m.avg_win:,.2f} / {m.avg_loss:,.2f}"),
        ("max drawdown", f"{m.max_drawdown:,.2f} ({m.max_drawdown_pct:.2f}%)"),
        ("Sharpe / Sortino (daily)", f"{_or_na(m.sharpe)} / {_or_na(m.sortino)}"),
        ("exposure", f"{m.exposure_pct:.1f}%"),
        ("average holding", "n/a" if m.avg_hold is None
         else f"{m.avg_hold.total_seconds() / 60:.1f} min"),
        ("slippage vs signal", f"{_or_na(m.slippage_bps)} bps"),
        ("fill rate", f"{_or_na(m.fill_rate, '.1f')}%"),
        ("risk rejections", counts(m.rejections_by_check)),
        ("breaker trips", str(m.breaker_trips)),
        ("bad bars rejected", counts(result.bad_bars)),
    ]


def _plot(result: BacktestResult, out: TextIO) -> None:
    import plotext as plt

    curve = result.equity_curve
    if len(curve) < 2:
        return
    step = max(1, len(curve) // 2000)
    sampled = curve[::step]
    values = [v for _, v in sampled]
    # Points are spaced evenly (nights and weekends take no room); the labels say when they are.
    x = list(range(len(values)))
    ticks, labels = time_ticks([ts for ts, _ in sampled])
    width = min(100, plt.terminal_width() or 100)
    # A flat curve is a flat line near its value (plotext alone spreads it over +-50%).
    low, high, money_at, money_labels = equity_axis(values)
    drawdown = drawdown_pct(values)
    for title, series, y_range in (("Equity", values, (low, high)),
                                   ("Drawdown %", drawdown, drawdown_axis(drawdown))):
        plt.clear_figure()
        plt.theme("clear")  # the terminal's own colours: readable in 16 colours and NO_COLOR
        plt.plot(x, series, marker="braille")
        plt.xticks(ticks, labels)
        plt.ylim(*y_range)
        if series is values:
            plt.yticks(money_at, money_labels)
        plt.title(title)
        plt.plotsize(width, 14)
        chart = plt.build()
        if os.environ.get("NO_COLOR") or not out.isatty():
            chart = plt.uncolorize(chart)
        print(chart, file=out)




def check_options(args: argparse.Namespace, settings: Settings) -> None:
    """Every option within range before a bar is read: UsageError naming the option."""
    if not 0 <= args.oos < 1:  # also refuses NaN
        raise UsageError(f"--oos: expected the fraction of days held out, from 0 up to (not "
                         f"including) 1, e.g. 0.3; got {args.oos}")
    if not 1 <= args.top <= 100:
        raise UsageError(f"--top: expected 1 to 100 combinations, got {args.top}")
    if not 1 <= args.workers <= 64:
        raise UsageError(f"--workers: expected 1 to 64 processes, got {args.workers}")
    if args.start and args.end and args.start > args.end:
        raise UsageError(f"--from {args.start} is after --to {args.end}")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out: {args.out} is a file; expected a folder")
    if args.out is None:
        ensure_data_dir(settings.data_dir)  # the trades go there: a bad DATA_DIR stops us now


def run(args: argparse.Namespace, base: Settings, out: TextIO | None = None,
        err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    settings = _settings(args, base)
    check_options(args, settings)
    if args.data is not None and args.data.is_dir():
        from daytrader.research_cli import run_on_store

        return run_on_store(args, settings, out, err)
    if args.walk_forward or args.cluster:
        raise UsageError("--walk-forward and --cluster read a market-data store: give --data "
                         "the store's folder (python app.py data import / fetch)")
    path, wanted = _source(args, settings, err)
    calendar = MarketCalendar()
    if args.sweep:
        bars, rejected, symbols = load_file(path, wanted, args.start, args.end, calendar)
        return _sweep(args, settings.with_overrides(symbols=symbols), bars, rejected, calendar,
                      out, err)
    folder = args.out or settings.data_dir / "backtests" / datetime.now(EXCHANGE_TZ).strftime(
        "%Y%m%d-%H%M%S")
    run = backtest_file(path, settings, folder, symbols=wanted, start=args.start, end=args.end,
                        calendar=calendar,
                        progress=None if args.backtest_json else Progress(err, "backtest"))
    result, symbols, parquet, csv = run.result, run.symbols, run.trades_parquet, run.trades_csv
    bars = run.bars
    if args.backtest_json:
        report = {"metrics": result.metrics.as_dict(), "bars": result.bars,
                  "bars_per_second": round(result.bars_per_second),
                  "final_equity": str(result.final_equity), "bad_bars": result.bad_bars,
                  "trades_parquet": str(parquet), "trades_csv": str(csv)}
        print(json.dumps(report, indent=2), file=out)
        return 0
    width = max(len(k) for k, _ in metrics_rows(result))
    print(f"\nBacktest of {', '.join(symbols)}: {bars[0]:%Y-%m-%d} to {bars[1]:%Y-%m-%d}",
          file=out)
    for key, value in metrics_rows(result):
        print(f"  {key:<{width}}  {value}", file=out)
    if not args.no_plot:
        _plot(result, out)
    print(f"trades: {parquet}  {csv}", file=out)
    return 0


def _sweep(args, settings: Settings, bars: list[Bar], rejected: dict[str, int],
           calendar: MarketCalendar, out: TextIO, err: TextIO) -> int:
    import time

    grid = parse_sweep(args.sweep)
    if parse_spec(settings.strategy or "ema_cross").target != "ema_cross":
        return _engine_sweep(args, settings, bars, grid, out, err)
    combos = combinations(grid, settings)
    if not combos:
        raise UsageError("--sweep: no valid combination (fast must stay below slow)")
    frame = prepare_frame(bars, calendar, settings.flatten_minutes_before_close)
    in_sample, out_sample, cut = (split_days(frame, args.oos) if args.oos > 0
                                  else (frame, None, None))
    print(f"screening {len(combos)} combinations over {len(in_sample):,} bars "
          f"on {args.workers} process(es)...", file=err, flush=True)
    started = time.perf_counter()
    results = sorted(screen(in_sample, combos, args.workers), key=lambda r: r.score, reverse=True)
    wall = time.perf_counter() - started
    per_combo = sum(r.elapsed for r in results) / len(results)
    best = results[: max(1, args.top)]
    rows = []
    for r in best:
        params = {k: (int(v) if k in ("fast", "slow", "atr") else v) for k, v in r.params.items()}
        s = apply_params(settings, {k: str(v) for k, v in params.items()})
        in_bars = [b for b in bars if cut is None or b.ts.date() < cut]
        engine_in = run_backtest(in_bars, s, calendar=calendar, bad_bars=rejected)
        engine_out = None
        if cut is not None:
            engine_out = run_backtest([b for b in bars if b.ts.date() >= cut], s,
                                      calendar=calendar)
        rows.append((params, r, engine_in, engine_out))
    report = {
        "combinations": len(combos), "bars_screened": len(in_sample),
        "screen_seconds": round(wall, 3),
        "screen_bars_per_second_per_combination": round(len(in_sample) / per_combo),
        "out_of_sample_from": None if cut is None else cut.isoformat(),
        "best": [{
            "params": p,
            "screen": {"trades": r.trades, "win_rate_pct": round(r.win_rate, 2),
                       "profit_factor": None if r.profit_factor is None else round(r.profit_factor, 3),
                       "total_r": round(r.total_r, 2)},
            "engine": ei.metrics.as_dict() | {"final_equity": str(ei.final_equity)},
            "out_of_sample": None if eo is None else
            eo.metrics.as_dict() | {"final_equity": str(eo.final_equity)},
        } for p, r, ei, eo in rows],
        "warning": OVERFIT_WARNING,
    }
    if args.backtest_json:
        print(json.dumps(report, indent=2, default=str), file=out)
        return 0
    print(f"\nSweep: {len(combos)} combinations screened in {wall:.1f}s "
          f"({report['screen_bars_per_second_per_combination']:,} bars/s per combination)",
          file=out)
    head = (f"{'params':<40} | {'screen: trades  win%   PF  total R':<34} | "
            f"{'engine: trades  win%   PF      net P&L':<40}"
            + (" | out-of-sample net P&L" if cut else ""))
    print(head, file=out)
    print("-" * len(head), file=out)
    for params, r, ei, eo in rows:
        p = " ".join(f"{k}={v}" for k, v in params.items())
        pf, epf = _or_na(r.profit_factor), _or_na(ei.metrics.profit_factor)
        line = (f"{p:<40} | {r.trades:>14} {r.win_rate:5.1f} {pf:>5} {r.total_r:8.1f} | "
                f"{ei.metrics.trades:>14} {ei.metrics.win_rate:5.1f} {epf:>5} "
                f"{ei.metrics.realized:>12,.2f}")
        if eo is not None:
            line += f" | {eo.metrics.realized:>12,.2f} ({eo.metrics.trades} trades)"
        print(line, file=out)
    print(f"\n{OVERFIT_WARNING}", file=out)
    return 0


def _engine_sweep(args, settings: Settings, bars: list[Bar], grid: dict[str, list[float]],
                  out: TextIO, err: TextIO) -> int:
    """A strategy without a vectorized screen: every combination through the full engine."""
    import time

    spec = settings.strategy
    combos = strategy_combinations(spec, grid)
    if not combos:
        raise UsageError(f"--sweep: no valid combination of {', '.join(grid)} for {spec}")
    days = sorted({b.ts.date() for b in bars})
    cut = days[max(1, min(len(days) - 1, round(len(days) * (1 - args.oos))))] if args.oos > 0 \
        else None
    in_bars = [b for b in bars if cut is None or b.ts.date() < cut]
    print(f"running {len(combos)} combinations of {spec} through the engine over "
          f"{len(in_bars):,} bars on {args.workers} process(es)...", file=err, flush=True)
    started = time.perf_counter()
    results = engine_sweep(in_bars, settings, spec, combos, args.workers)
    wall = time.perf_counter() - started
    ranked = sorted(results, key=lambda r: r.metrics.realized, reverse=True)[: max(1, args.top)]
    rows = []
    for r in ranked:
        oos = None
        if cut is not None:
            oos = run_backtest([b for b in bars if b.ts.date() >= cut],
                               settings.with_overrides(strategy=with_params(spec, r.params)))
        rows.append((r, oos))
    report = {
        "strategy": spec, "combinations": len(combos), "bars": len(in_bars),
        "seconds": round(wall, 3), "bars_per_second_per_combination":
            round(len(in_bars) * len(combos) / wall) if wall > 0 else None,
        "out_of_sample_from": None if cut is None else cut.isoformat(),
        "best": [{"params": r.params, "engine": r.metrics.as_dict() | {
            "final_equity": str(r.final_equity)}, "out_of_sample": None if o is None else
            o.metrics.as_dict() | {"final_equity": str(o.final_equity)}} for r, o in rows],
        "warning": OVERFIT_WARNING,
    }
    if args.backtest_json:
        print(json.dumps(report, indent=2, default=str), file=out)
        return 0
    print(f"\nSweep of {spec}: {len(combos)} combinations through the full engine in "
          f"{wall:.1f}s", file=out)
    head = f"{'params':<44} | {'trades  win%   PF      net P&L':<32}" + (
        " | out-of-sample net P&L" if cut else "")
    print(head, file=out)
    print("-" * len(head), file=out)
    for r, o in rows:
        p = " ".join(f"{k}={plain_number(v)}" for k, v in r.params.items())
        pf = _or_na(r.metrics.profit_factor)
        line = (f"{p:<44} | {r.metrics.trades:>6} {r.metrics.win_rate:5.1f} {pf:>5} "
                f"{r.metrics.realized:>12,.2f}")
        if o is not None:
            line += f" | {o.metrics.realized:>12,.2f} ({o.metrics.trades} trades)"
        print(line, file=out)
    print(f"\n{OVERFIT_WARNING}", file=out)
    return 0
