"""Research beyond one machine: sweeps and walk-forward tests over a market-data store, as tasks
on local processes or on a Ray cluster, with the same results either way.

The work is cut the same way whatever runs it:
- screening: tasks of (a group of symbols x a block of parameter combinations); each reads its
  symbols' bars from the store (lazily, only those symbols and days) and screens its block with
  the seed strategy's vectorized version. Symbols do not interact in the screen, so the groups'
  tallies (trades, winners, sums of R) add up, in group order, to the whole universe's.
- confirmation: one task per combination, the full engine over the whole universe, reading the
  store one day at a time (memory holds a day, not the dataset).
Nothing depends on which worker ran a task or when, so local processes and Ray give identical
tables. Ray is named, not reimplemented: `--cluster local` starts it on this machine, `auto`
joins a running cluster (`ray start --head` / `ray start --address`), `ray://HOST:PORT` a remote
one through Ray Client; the store must be at a path every node sees (or object storage polars
can read).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from typing import Any

import polars as pl

from daytrader.backtest import (
    BacktestResult,
    Screener,
    ScreenResult,
    prepare_frame,
    run_minutes,
)
from daytrader.clock import MarketCalendar
from daytrader.config import Settings
from daytrader.data.store import MarketStore
from daytrader.metrics import Metrics
from daytrader.metrics import compute as compute_metrics

PARAM_FIELDS = {"fast": "ema_fast", "slow": "ema_slow", "atr": "atr_period",
                "stop": "stop_atr_mult", "take": "take_profit_atr_mult"}


# -- what runs the tasks -------------------------------------------------------------------------------
class LocalExecutor:
    """Tasks on local processes (spawn: forking a process whose polars pool runs can deadlock)."""

    name = "local processes"

    def __init__(self, workers: int = 2) -> None:
        self.workers = max(1, workers)

    def map(self, fn: Callable, tasks: Sequence[tuple]) -> list:
        if self.workers <= 1 or len(tasks) <= 1:
            return [fn(*task) for task in tasks]
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(min(self.workers, len(tasks))) as pool:
            return pool.starmap(fn, tasks)

    def close(self) -> None:
        pass


class RayExecutor:
    """Tasks on Ray: `local` (a Ray instance on this machine, `num_cpus` of it), `auto` (the
    cluster this machine belongs to) or `ray://HOST:PORT`."""

    def __init__(self, address: str = "local", num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("--cluster needs Ray: pip install -e '.[research]'") from None

        self.ray = ray
        self.address = address
        self.name = f"Ray ({address})"
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "ignore_reinit_error": True}
            if address == "local":
                kwargs["num_cpus"] = num_cpus
            else:
                kwargs["address"] = address
            # The workers import daytrader from this project, wherever it is installed.
            ray.init(**kwargs)
            self.owned = True
        else:
            self.owned = False
        self._remote: dict[Callable, Any] = {}
        self.nodes_used: set[str] = set()

    def map(self, fn: Callable, tasks: Sequence[tuple]) -> list:
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = self.ray.remote(_on_node).options(num_cpus=1)
        refs = [remote.remote(fn, task) for task in tasks]
        results = self.ray.get(refs)  # in the order of the tasks, whatever ran first
        out = []
        for node, value in results:
            self.nodes_used.add(node)
            out.append(value)
        return out

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()


def _on_node(fn: Callable, task: tuple) -> tuple[str, Any]:
    import ray

    return ray.get_runtime_context().get_node_id(), fn(*task)


def executor_for(cluster: str | None, workers: int) -> LocalExecutor | RayExecutor:
    if not cluster:
        return LocalExecutor(workers)
    if cluster != "local" and cluster != "auto" and not cluster.startswith("ray://"):
        raise ValueError(f"--cluster: expected local, auto or ray://HOST:PORT, got {cluster!r}")
    return RayExecutor(cluster, num_cpus=workers if cluster == "local" else None)


# -- screening -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Tally:
    """A combination's screen over some symbols; tallies of disjoint symbols add up. The sums
    are exact fractions, so however the symbols are cut into tasks the totals are the same to
    the last bit."""

    trades: int = 0
    wins: int = 0
    win_r: Fraction = Fraction(0)
    loss_r: Fraction = Fraction(0)
    bars: int = 0
    elapsed: float = 0.0

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.trades + other.trades, self.wins + other.wins,
                     self.win_r + other.win_r, self.loss_r + other.loss_r,
                     self.bars + other.bars, self.elapsed + other.elapsed)

    def result(self, params: dict[str, float]) -> ScreenResult:
        total = self.win_r - self.loss_r
        return ScreenResult(params, self.trades,
                            self.wins / self.trades * 100 if self.trades else 0.0,
                            float(self.win_r / self.loss_r) if self.loss_r > 0 else None,
                            float(total), float(total / self.trades) if self.trades else 0.0,
                            self.elapsed, self.bars)


def screen_frame(store: MarketStore, symbols: Sequence[str], start: date, end: date,
                 flatten_minutes: int) -> pl.DataFrame:
    frame = (store.frame(symbols, start, end)
             .with_columns(pl.from_epoch("ts_us", time_unit="us").dt.replace_time_zone("UTC")
                           .alias("timestamp")))
    return prepare_frame(frame, MarketCalendar(), flatten_minutes)


def screen_task(root: str, symbols: tuple[str, ...], start: date, end: date,
                flatten_minutes: int, combos: list[dict[str, float]]) -> list[Tally]:
    """One group of symbols x one block of combinations: read, screen, tally."""
    frame = screen_frame(MarketStore(root), symbols, start, end, flatten_minutes)
    if frame.is_empty():
        return [Tally() for _ in combos]
    screener = Screener(frame)
    out = []
    for combo in combos:
        began = time.perf_counter()
        trades = screener.trades_for(combo)
        r = [Fraction(t.r_multiple) for t in trades]
        out.append(Tally(len(r), sum(1 for x in r if x > 0), sum((x for x in r if x > 0),
                                                                  Fraction(0)),
                         -sum((x for x in r if x <= 0), Fraction(0)), frame.height,
                         time.perf_counter() - began))
    return out


def chunks(items: Sequence, size: int) -> list[list]:
    return [list(items[i:i + size]) for i in range(0, len(items), max(1, size))]


def screen_universe(store: MarketStore, symbols: Sequence[str], start: date, end: date,
                    combos: list[dict[str, float]], executor, flatten_minutes: int,
                    group_size: int = 25, block_size: int = 16) -> list[ScreenResult]:
    """Every combination over every symbol, as (symbol group x combination block) tasks."""
    groups = chunks(sorted(symbols), group_size)
    blocks = chunks(combos, block_size)
    tasks = [(store.location, tuple(g), start, end, flatten_minutes, b)
             for g in groups for b in blocks]
    answers = executor.map(screen_task, tasks)
    totals = [Tally() for _ in combos]
    for (_group, bi), tallies in zip(itertools.product(range(len(groups)), range(len(blocks))),
                                 answers, strict=True):
        for j, tally in enumerate(tallies):  # added in group order: the same sums every time
            k = bi * block_size + j
            totals[k] = totals[k] + tally
    return [t.result(c) for t, c in zip(totals, combos, strict=True)]


# -- confirmation with the full engine ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EngineRun:
    """One full-engine run of a parameter set: what a worker hands back."""

    params: dict[str, float]
    result: BacktestResult


def settings_with(settings: Settings, params: dict[str, float]) -> Settings:
    changes = {}
    for name, value in params.items():
        field_name = PARAM_FIELDS[name]
        changes[field_name] = int(value) if field_name in ("ema_fast", "ema_slow",
                                                           "atr_period") else float(value)
    return settings.with_overrides(**changes)


def engine_task(root: str, symbols: tuple[str, ...], start: date, end: date, settings: Settings,
                params: dict[str, float]) -> EngineRun:
    """The full engine with these parameters over the store's bars, a day at a time."""
    store = MarketStore(root)
    days = store.days(symbols, start, end)
    if not days:
        raise ValueError(f"no bars in {root} for {', '.join(symbols)} from {start} to {end}")
    first = next(store.minutes(symbols, days[0], days[0]))[0].ts
    return EngineRun(params, run_minutes(
        store.minutes(symbols, start, end), first,
        settings_with(settings.with_overrides(symbols=tuple(symbols)), params)))


# -- walk-forward -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Window:
    in_start: date
    in_end: date
    out_start: date
    out_end: date
    best: dict[str, float]
    screen: ScreenResult
    in_sample: EngineRun
    out_of_sample: EngineRun


@dataclass(frozen=True, slots=True)
class WalkForward:
    combinations: int  # tried in each in-sample window
    windows: tuple[Window, ...]
    out_of_sample: Metrics  # the stitched out-of-sample trades and equity
    in_sample: Metrics  # the in-sample engine runs of the chosen parameters, together
    stitched_curve: tuple[tuple[Any, float], ...] = field(default_factory=tuple)


def windows(days: Sequence[date], in_days: int, out_days: int) -> list[tuple[list[date], list[date]]]:
    """Rolling (in-sample, out-of-sample) day ranges: each out-of-sample window follows its
    in-sample one, and the next pair starts `out_days` later."""
    if in_days < 1 or out_days < 1:
        raise ValueError("walk-forward windows need at least one day each")
    out = []
    i = 0
    while i + in_days + out_days <= len(days):
        out.append((list(days[i:i + in_days]), list(days[i + in_days:i + in_days + out_days])))
        i += out_days
    return out


def walk_forward(store: MarketStore, settings: Settings, symbols: Sequence[str],
                 combos: list[dict[str, float]], in_days: int, out_days: int, executor,
                 group_size: int = 25, block_size: int = 16) -> WalkForward:
    days = store.days(symbols)
    pairs = windows(days, in_days, out_days)
    if not pairs:
        raise ValueError(f"{len(days)} days of data cannot hold one window of {in_days} "
                         f"in-sample + {out_days} out-of-sample days")
    chosen = []
    for ins, outs in pairs:
        results = screen_universe(store, symbols, ins[0], ins[-1], combos, executor,
                                  settings.flatten_minutes_before_close, group_size, block_size)
        best = max(results, key=lambda r: (r.score, -combos.index(r.params)))
        chosen.append((ins, outs, best))
    root, syms = store.location, tuple(sorted(symbols))
    runs = executor.map(engine_task, [task for ins, outs, best in chosen for task in (
        (root, syms, ins[0], ins[-1], settings, best.params),
        (root, syms, outs[0], outs[-1], settings, best.params))])
    result_windows = []
    for k, (ins, outs, best) in enumerate(chosen):
        result_windows.append(Window(ins[0], ins[-1], outs[0], outs[-1], best.params, best,
                                     runs[2 * k], runs[2 * k + 1]))
    out_metrics, curve = stitch([w.out_of_sample for w in result_windows], settings)
    in_metrics, _ = stitch([w.in_sample for w in result_windows], settings)
    return WalkForward(len(combos), tuple(result_windows), out_metrics, in_metrics, curve)


def stitch(runs: Sequence[EngineRun], settings: Settings) -> tuple[Metrics, tuple]:
    """One out-of-sample record from consecutive windows: their trades, and an equity curve
    where each window starts from the previous one's end."""
    curve: list[tuple[Any, float]] = []
    offset = 0.0
    start = float(settings.starting_cash)
    for run in runs:
        equity_curve = run.result.equity_curve
        for ts, value in equity_curve:
            curve.append((ts, value + offset))
        if equity_curve:
            offset += equity_curve[-1][1] - start
    trades = [t for run in runs for t in run.result.trades]
    return compute_metrics(trades, curve, starting_equity=start), tuple(curve)


def grid_combinations(grid: dict[str, list[float]], settings: Settings) -> list[dict[str, float]]:
    from daytrader.backtest import combinations

    return combinations(grid, settings)


def bar_combinations_per_second(results: Sequence[ScreenResult], wall: float) -> float:
    total = sum(r.bars for r in results)
    return total / wall if wall > 0 else math.inf
