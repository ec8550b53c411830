"""Backtests: the live engine (strategy, risk, orders, sim exchange) over history, and a
vectorized screen of the same strategy for parameter sweeps.

`run_backtest` drives the very `Engine.on_minute` that trades sim and paper, so what it reports
is what the engine would have done. `screen` is a fast approximation for sweeps: indicators in
polars, then one step per signal (not per bar) with numpy; it trades each symbol on its own, so
it ignores what couples symbols in the engine (max positions, shared buying power, equity-based
sizing, the circuit breaker and the stop-loss cooldown). Where those do not bind, both give the
same trades; `tests/test_backtest.py` checks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from operator import attrgetter
from pathlib import Path

import numpy as np
import polars as pl

from daytrader import metrics
from daytrader.clock import EXCHANGE_TZ, MarketCalendar
from daytrader.config import Settings, SettingsError, env_name
from daytrader.data.replay import load_bars
from daytrader.engine import Engine
from daytrader.metrics import Execution, Metrics
from daytrader.models import Bar, Fill, OrderRole, OrderStatus, Trade, to_price
from daytrader.orders import SubmitStatus
from daytrader.runtime import UsageError, build_engine

# --param names -> Settings fields
PARAMS = {
    "fast": "ema_fast", "slow": "ema_slow", "atr": "atr_period",
    "stop": "stop_atr_mult", "take": "take_profit_atr_mult",
    "risk": "risk_per_trade_pct", "max_positions": "max_positions",
    "max_loss": "max_daily_loss_pct", "flatten": "flatten_minutes_before_close",
}


def apply_params(settings: Settings, params: dict[str, str]) -> Settings:
    """Settings with `--param name=value` changes, validated like the .env file."""
    from daytrader.config import settings_from_mapping  # the same parsers as the .env path

    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise SettingsError(f"--param: unknown parameter {', '.join(unknown)}; known: "
                            f"{', '.join(PARAMS)}")
    changes = {env_name(PARAMS[k]): v for k, v in params.items()}
    parsed = settings_from_mapping(changes)
    return settings.with_overrides(**{PARAMS[k]: getattr(parsed, PARAMS[k]) for k in params})


@dataclass(frozen=True, slots=True)
class BacktestResult:
    settings: Settings
    trades: tuple[Trade, ...]
    equity_curve: tuple[tuple[datetime, float], ...]
    metrics: Metrics
    bars: int
    elapsed: float
    bad_bars: dict[str, int] = field(default_factory=dict)
    final_equity: Decimal = Decimal(0)

    @property
    def bars_per_second(self) -> float:
        return self.bars / self.elapsed if self.elapsed > 0 else math.inf


def minutes_of(bars: Sequence[Bar]) -> list[list[Bar]]:
    """Consecutive bars with the same time, as one list each."""
    return [list(minute) for _, minute in itertools.groupby(bars, key=attrgetter("ts"))]


def run_backtest(bars: Sequence[Bar], settings: Settings, *,
                 calendar: MarketCalendar | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 bad_bars: dict[str, int] | None = None) -> BacktestResult:
    """The engine over `bars` (sorted by time) with the sim exchange, as fast as it goes."""
    if not bars:
        raise ValueError("no bars to backtest")
    with without_cyclic_gc():  # the grouping too: it makes a list per minute (see the function)
        minutes = minutes_of(bars)
        return run_minutes(minutes, bars[0].ts, settings, calendar=calendar, progress=progress,
                           bad_bars=bad_bars, total=len(minutes))


@contextlib.contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """No cyclic garbage collection inside, and what was made inside counted as old after.

    The bars are long-lived and many, and what a backtest allocates lives to the end of the run
    (orders, fills, trades, the curve) or is freed by its reference count: a run makes no
    cyclic garbage, so the cyclic collector would only walk live objects again and again
    (10-20% of a long backtest, and two thirds of grouping its bars into minutes). It is off
    inside, and back as it was after, with what was made counted as old (else the next young
    collection would walk all of it). Nested uses leave it to the outermost."""
    collecting = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if collecting:
            gc.enable()


def run_minutes(minutes: Iterable[list[Bar]], start: datetime, settings: Settings, *,
                calendar: MarketCalendar | None = None,
                progress: Callable[[int, int], None] | None = None,
                bad_bars: dict[str, int] | None = None, total: int = 0) -> BacktestResult:
    """The engine over minutes as they come (a list, or a market-data store read one day at a
    time: memory then holds a day of bars, not the history). `total`: minutes expected, for the
    progress."""
    settings = replace(settings, trading_enabled_at_start=True, sim_speed=0.0)
    engine = build_engine(settings, calendar or MarketCalendar(), start=start)
    engine.bad_bars.update(bad_bars or {})
    engine.record_tape = False  # no one looks at a backtest's live charts
    engine.record_events = False  # nor at its event log (errors are still recorded)
    # Its "now" is the replayed minute's: a bar's arrival is stamped with it, not with the
    # machine's time (asked of the system and converted to exchange time on every minute).
    engine.wall_clock = engine.clock.now
    started = time.perf_counter()
    seen = 0

    async def drive() -> None:
        nonlocal seen
        step = max(1, total // 100)
        for index, minute in enumerate(minutes):
            await engine.on_minute(minute)
            seen += len(minute)
            if progress is not None and index % step == 0:
                progress(index, max(total, index + 1))
        if progress is not None:
            progress(total, total)

    with without_cyclic_gc():
        asyncio.run(drive())
        elapsed = time.perf_counter() - started
        m = engine_metrics(engine, settings.starting_cash)
    return BacktestResult(settings, tuple(engine.book.trades), tuple(engine.equity_curve), m,
                          seen, elapsed, dict(engine.bad_bars), engine.book.equity())


def engine_metrics(engine: Engine, starting_equity: Decimal) -> Metrics:
    """The whole run's metrics, slippage and fill rate included: what a backtest reports and
    what a headless run's summary reports, computed the same way."""
    executions = list(_executions(engine.fills, engine.orders.intents, engine.known_orders))
    # Enum members held in locals: looking one up on its class, or `.value`, costs a call per
    # order of a run that may have sent thousands.
    submitted, filled_status, known = SubmitStatus.SUBMITTED, OrderStatus.FILLED, engine.known_orders
    sent = [r for r in engine.submitted if r.order is not None and r.status is submitted]
    filled = sum(1 for r in sent if known[r.order.id].status is filled_status)
    return metrics.compute(engine.book.trades, engine.equity_curve,
                           starting_equity=float(starting_equity), executions=executions,
                           orders_sent=len(sent), orders_filled=filled,
                           rejections_by_check=engine.rejections_by_check,
                           breaker_trips=len(engine.breaker.trips))


def _executions(fills: Iterable[Fill], intents: dict, orders: dict) -> Iterable[Execution]:
    """Each fill against its decision price: the signal price of entries and exits, the stop
    price of a stop-loss leg. Take-profit legs are limit orders: no slippage by definition."""
    stop_loss, take_profit = OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT
    for fill in fills:
        if fill.role is stop_loss:
            price = orders[fill.order_id].stop_price
        elif fill.role is take_profit:
            continue
        else:
            intent = intents.get(fill.client_order_id)
            price = intent.ref_price if intent is not None else None
        if price:
            yield Execution(fill.side.sign, price, fill.price)


# -- the vectorized screen ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ScreenTrade:
    symbol: str
    entry_time: datetime
    entry_price: Decimal
    exit_time: datetime
    exit_price: Decimal
    reason: str
    r_multiple: float  # P&L per share over the stop distance: comparable across symbols


@dataclass(frozen=True, slots=True)
class ScreenResult:
    params: dict[str, float]
    trades: int
    win_rate: float
    profit_factor: float | None
    total_r: float  # sum of R multiples: what risking 1R per trade would have made
    expectancy_r: float
    elapsed: float
    bars: int

    @property
    def score(self) -> float:
        return self.total_r


def prepare_frame(bars: Sequence[Bar] | pl.DataFrame, calendar: MarketCalendar,
                  flatten_minutes: int) -> pl.DataFrame:
    """Bars as a frame sorted by symbol then time, with each bar's minute index within the
    symbol and whether decisions on it fall in the flatten window before the close."""
    frame = bars if isinstance(bars, pl.DataFrame) else pl.DataFrame(
        {"timestamp": [b.ts for b in bars], "symbol": [b.symbol for b in bars],
         "open": [b.open for b in bars], "high": [b.high for b in bars],
         "low": [b.low for b in bars], "close": [b.close for b in bars]},
        schema_overrides={c: pl.Float64 for c in ("open", "high", "low", "close")}, strict=False)
    frame = frame.sort(["symbol", "timestamp"], maintain_order=True)
    days = frame["timestamp"].dt.convert_time_zone(str(EXCHANGE_TZ)).dt.date().unique().to_list()
    sessions = [s for s in (calendar.session(day) for day in days) if s is not None]
    tz = str(EXCHANGE_TZ)
    hours = pl.DataFrame(
        {"day": [s.date for s in sessions], "session_open": [s.open for s in sessions],
         "flatten_at": [s.close - timedelta(minutes=flatten_minutes) for s in sessions],
         "session_close": [s.close for s in sessions]},
        schema={"day": pl.Date, "session_open": pl.Datetime("us", tz),
                "flatten_at": pl.Datetime("us", tz), "session_close": pl.Datetime("us", tz)})
    ts = pl.col("timestamp").dt.convert_time_zone(tz)
    # The engine decides only on regular-session bars; the others never reach the strategy.
    return (frame.with_columns(ts.alias("timestamp"), ts.dt.date().alias("day"))
            .join(hours, on="day", how="inner", maintain_order="left")
            .filter((pl.col("timestamp") >= pl.col("session_open"))
                    & (pl.col("timestamp") < pl.col("session_close")))
            .with_columns(((pl.col("timestamp") + pl.duration(minutes=1)) >= pl.col("flatten_at"))
                          .alias("in_flatten")))


class Screener:
    """Caches indicator columns per period, so a sweep computes each EMA once."""

    def __init__(self, frame: pl.DataFrame) -> None:
        from daytrader.indicators import atr_expr, ema_expr

        self.frame = frame
        self._ema_expr, self._atr_expr = ema_expr, atr_expr
        self._cache: dict[tuple[str, int], np.ndarray] = {}
        self.symbols = frame["symbol"].to_numpy()
        self.open = frame["open"].to_numpy()
        self.high = frame["high"].to_numpy()
        self.low = frame["low"].to_numpy()
        self.close = frame["close"].to_numpy()
        self.flatten = frame["in_flatten"].to_numpy()
        self.times = frame["timestamp"].to_list()
        bounds = np.flatnonzero(self.symbols[1:] != self.symbols[:-1]) + 1
        self.starts = np.concatenate(([0], bounds))
        self.ends = np.concatenate((bounds, [len(self.symbols)]))

    def column(self, kind: str, period: int) -> np.ndarray:
        key = (kind, period)
        if key not in self._cache:
            if kind == "ema":
                expr = self._ema_expr(pl.col("close"), period)
            else:
                expr = self._atr_expr(pl.col("high"), pl.col("low"), pl.col("close"), period)
            self._cache[key] = (self.frame.select(expr.over("symbol").alias("x"))["x"]
                                .fill_null(np.nan).to_numpy())
        return self._cache[key]

    def trades_for(self, combo: dict[str, float]) -> list[ScreenTrade]:
        """The trades of one sweep combination (fast, slow, atr, stop, take)."""
        return self.trades(int(combo["fast"]), int(combo["slow"]), int(combo["atr"]),
                           combo["stop"], combo["take"])

    def trades(self, fast: int, slow: int, atr_period: int, stop_mult: float,
               take_mult: float) -> list[ScreenTrade]:
        above = self.column("ema", fast) > self.column("ema", slow)
        ready = ~np.isnan(self.column("ema", slow))
        atr = self.column("atr", atr_period)
        out: list[ScreenTrade] = []
        for start, end in zip(self.starts, self.ends, strict=True):
            out.extend(self._symbol_trades(int(start), int(end), above, ready, atr,
                                           stop_mult, take_mult))
        return out

    def _symbol_trades(self, start: int, end: int, above: np.ndarray, ready: np.ndarray,
                       atr: np.ndarray, stop_mult: float, take_mult: float) -> list[ScreenTrade]:
        # A cross needs two ready bars; decisions happen at a bar's close, fills at the next open.
        prev_ready = np.zeros(end - start, dtype=bool)
        prev_ready[1:] = ready[start:end - 1] & ready[start + 1:end]
        seg_above = above[start:end]
        cross_up = np.zeros(end - start, dtype=bool)
        cross_down = np.zeros(end - start, dtype=bool)
        cross_up[1:] = seg_above[1:] & ~seg_above[:-1]
        cross_down[1:] = ~seg_above[1:] & seg_above[:-1]
        cross_up &= prev_ready
        cross_down &= prev_ready
        entries = np.flatnonzero(cross_up & ~self.flatten[start:end]) + start
        downs = np.flatnonzero(cross_down) + start
        flats = np.flatnonzero(self.flatten[start:end]) + start
        trades: list[ScreenTrade] = []
        free_from = start
        for i in entries:
            if i < free_from or i + 1 >= end or not atr[i] > 0:
                continue
            ref = to_price(self.close[i])
            stop = to_price(self.close[i] - stop_mult * atr[i])
            take = to_price(self.close[i] + take_mult * atr[i])
            if not stop < ref < take:
                continue
            exit_at, price, reason = self._exit(i + 1, end, float(stop), float(take), downs, flats)
            if reason == "end_of_data":
                break  # still open when the data ends: not a round trip
            entry_price = to_price(self.open[i + 1])
            exit_price = to_price(price)
            trades.append(ScreenTrade(
                str(self.symbols[i]), self.times[i + 1], entry_price, self.times[exit_at],
                exit_price, reason, float((exit_price - entry_price) / (ref - stop))))
            # Flat again from the bar the exit filled in: its close may already cross up.
            free_from = exit_at
        return trades

    def _exit(self, fill: int, end: int, stop: float, take: float, downs: np.ndarray,
              flats: np.ndarray) -> tuple[int, float, str]:
        """Where a long entered at the open of bar `fill` leaves: the bracket (stop first when a
        bar reaches both, unless it opened beyond the target), a cross down or the flatten
        window (market exit at the next bar's open), whichever comes first."""
        signal_exits = []
        k = np.searchsorted(downs, fill)
        if k < len(downs):
            signal_exits.append((int(downs[k]), "ema_cross_down"))
        k = np.searchsorted(flats, fill)
        if k < len(flats):
            signal_exits.append((int(flats[k]), "flatten_before_close"))
        decision, reason = min(signal_exits) if signal_exits else (end - 1, "end_of_data")
        last = min(decision, end - 1)
        lows, highs = self.low[fill:last + 1], self.high[fill:last + 1]
        hit = np.flatnonzero((lows <= stop) | (highs >= take))
        if len(hit):
            j = int(hit[0]) + fill
            if j > fill and self.open[j] <= stop:
                return j, self.open[j], "stop_loss"
            if j > fill and self.open[j] >= take:
                return j, self.open[j], "take_profit"
            if self.low[j] <= stop:
                return j, stop, "stop_loss"
            return j, take, "take_profit"
        if reason == "end_of_data" or decision + 1 >= end:
            return last, self.close[last], reason
        return decision + 1, self.open[decision + 1], reason


def summarize(trades: Sequence[ScreenTrade], params: dict[str, float], elapsed: float,
              bars: int) -> ScreenResult:
    r = [t.r_multiple for t in trades]
    wins = [x for x in r if x > 0]
    losses = [-x for x in r if x <= 0]
    return ScreenResult(params, len(r), len(wins) / len(r) * 100 if r else 0.0,
                        sum(wins) / sum(losses) if sum(losses) > 0 else None,
                        sum(r), sum(r) / len(r) if r else 0.0, elapsed, bars)


def parse_sweep(specs: Sequence[str]) -> dict[str, list[float]]:
    """`fast=5:15` (step 1), `slow=20:40:5`, `stop=1.5,2,2.5` -> values per parameter."""
    grid: dict[str, list[float]] = {}
    for spec in specs:
        name, _, values = spec.partition("=")
        name = name.strip()
        if not name or not values:
            raise SettingsError(f"--sweep: expected NAME=FROM:TO[:STEP] or NAME=a,b,c, got "
                                f"{spec!r}")
        try:
            if ":" in values:
                parts = [float(x) for x in values.split(":")]
                lo, hi = parts[0], parts[1]
                step = parts[2] if len(parts) > 2 else 1.0
                if step <= 0 or hi < lo:
                    raise ValueError
                grid[name] = [round(lo + i * step, 10) for i in range(int((hi - lo) / step + 1e-9) + 1)]
            else:
                grid[name] = [float(x) for x in values.split(",")]
        except ValueError:
            raise SettingsError(f"--sweep: bad range in {spec!r}") from None
    return grid


def combinations(grid: dict[str, list[float]], base: Settings) -> list[dict[str, float]]:
    """The seed strategy's combinations (its vectorized screen's names)."""
    unknown = sorted(set(grid) - {"fast", "slow", "atr", "stop", "take"})
    if unknown:
        raise SettingsError(f"--sweep: ema_cross's screen sweeps fast, slow, atr, stop, take; "
                            f"not {', '.join(unknown)}")
    defaults = {"fast": base.ema_fast, "slow": base.ema_slow, "atr": base.atr_period,
                "stop": base.stop_atr_mult, "take": base.take_profit_atr_mult}
    combos: list[dict[str, float]] = [{}]
    for name in defaults:
        values = grid.get(name, [defaults[name]])
        combos = [{**c, name: v} for c in combos for v in values]
    return [c for c in combos if c["fast"] < c["slow"] and c["fast"] >= 1 and c["atr"] >= 1]


def _screen_chunk(args: tuple[pl.DataFrame, list[dict[str, float]]]) -> list[ScreenResult]:
    frame, combos = args
    screener = Screener(frame)
    out = []
    for combo in combos:
        started = time.perf_counter()
        trades = screener.trades_for(combo)
        out.append(summarize(trades, combo, time.perf_counter() - started, len(frame)))
    return out


def screen(frame: pl.DataFrame, combos: list[dict[str, float]], workers: int = 2
           ) -> list[ScreenResult]:
    """Every combination through the vectorized strategy, on `workers` processes."""
    if workers <= 1 or len(combos) < 4:
        return _screen_chunk((frame, combos))
    import multiprocessing

    chunks = [combos[i::workers] for i in range(workers)]
    # spawn, not fork: forking a process whose polars thread pool is running can deadlock.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        parts = pool.map(_screen_chunk, [(frame, chunk) for chunk in chunks])
    return [r for part in parts for r in part]


@dataclass(frozen=True, slots=True)
class EngineSweepResult:
    params: dict[str, float]
    metrics: Metrics
    final_equity: Decimal
    elapsed: float


def strategy_combinations(spec: str, grid: dict[str, list[float]]) -> list[dict[str, float]]:
    """Every combination of a strategy's parameters, each checked against its Params (names,
    types, ranges, cross-field rules); the invalid ones are left out."""
    from itertools import product

    from daytrader.strategy.loader import load_class, parse_spec
    from daytrader.strategy.params import StrategyError, build_params

    cls = load_class(parse_spec(spec).target)
    params_type = getattr(cls, "Params", None)
    if params_type is None:
        raise SettingsError(f"--sweep: strategy {spec} has no parameters to sweep")
    names = list(grid)
    combos = []
    for values in product(*(grid[n] for n in names)):
        combo = dict(zip(names, values, strict=True))
        try:
            build_params(params_type, {k: plain_number(v) for k, v in combo.items()}, spec)
        except StrategyError as exc:
            if "unknown parameter" in str(exc):
                raise SettingsError(f"--sweep: {exc}") from None
            continue
        combos.append(combo)
    return combos


def plain_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def with_params(spec: str, params: dict[str, float]) -> str:
    """`spec` with these parameters added (or replacing its own)."""
    from daytrader.strategy.loader import Spec, parse_spec

    parsed = parse_spec(spec)
    merged = dict(parsed.params) | {k: plain_number(v) for k, v in params.items()}
    return str(Spec(parsed.target, tuple(merged.items())))


def _engine_chunk(args: tuple[list[Bar], Settings, str, list[dict[str, float]]]
                  ) -> list[EngineSweepResult]:
    bars, settings, spec, combos = args
    out = []
    for combo in combos:
        run = run_backtest(bars, settings.with_overrides(strategy=with_params(spec, combo)))
        out.append(EngineSweepResult(combo, run.metrics, run.final_equity, run.elapsed))
    return out


def engine_sweep(bars: list[Bar], settings: Settings, spec: str,
                 combos: list[dict[str, float]], workers: int = 2) -> list[EngineSweepResult]:
    """Every combination through the full engine, for a strategy without a vectorized screen,
    on `workers` processes (spawn: see `screen`)."""
    if workers <= 1 or len(combos) < 2:
        return _engine_chunk((bars, settings, spec, combos))
    import multiprocessing

    chunks = [combos[i::workers] for i in range(workers)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        parts = pool.map(_engine_chunk, [(bars, settings, spec, c) for c in chunks if c])
    order = {tuple(sorted(c.items())): i for i, c in enumerate(combos)}
    return sorted((r for part in parts for r in part),
                  key=lambda r: order[tuple(sorted(r.params.items()))])


def split_days(frame: pl.DataFrame, oos_fraction: float) -> tuple[pl.DataFrame, pl.DataFrame, date]:
    """In-sample first, out-of-sample last: the last `oos_fraction` of the trading days."""
    days = sorted(frame["day"].unique().to_list())
    cut = days[max(1, min(len(days) - 1, round(len(days) * (1 - oos_fraction))))]
    return frame.filter(pl.col("day") < cut), frame.filter(pl.col("day") >= cut), cut


# -- one file backtest, for the command line and the console's screen ------------------------------
class BacktestInputError(UsageError):
    """The bars cannot be backtested; the message names the file, field or option and why."""


@dataclass(frozen=True, slots=True)
class BacktestRun:
    """A finished file backtest and where its trades went."""

    result: BacktestResult
    symbols: tuple[str, ...]
    trades_parquet: Path
    trades_csv: Path
    bars: tuple[date, date]  # the first and last day backtested


def load_file(path: Path, symbols: tuple[str, ...] | None = None, start: date | None = None,
              end: date | None = None, calendar: MarketCalendar | None = None
              ) -> tuple[list[Bar], dict[str, int], tuple[str, ...]]:
    """A bars file checked as a replay checks it, cut to the symbols and days asked for."""
    calendar = calendar or MarketCalendar()
    try:
        data = load_bars(path, symbols, (calendar.first_day, calendar.last_day))
    except OSError as exc:
        raise BacktestInputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    bars = [b for b in data.bars
            if (start is None or b.ts.date() >= start)
            and (end is None or b.ts.date() <= end)]
    if not data.bars:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(data.rejected.items())) or "no rows"
        raise BacktestInputError(f"{path}: no valid bars"
                         + (f" for {', '.join(symbols)}" if symbols else "")
                         + f" (rejected: {counts})")
    if not bars:
        raise BacktestInputError(f"{path}: no bars between --from {start or 'the start'} and --to "
                         f"{end or 'the end'} (the file has {data.bars[0].ts:%Y-%m-%d} to "
                         f"{data.bars[-1].ts:%Y-%m-%d})")
    return bars, dict(data.rejected), data.symbols


def backtest_file(path: Path, settings: Settings, folder: Path, *,
                  symbols: tuple[str, ...] | None = None, start: date | None = None,
                  end: date | None = None, calendar: MarketCalendar | None = None,
                  progress: Callable[[int, int], None] | None = None) -> BacktestRun:
    """What `python app.py backtest --data FILE` and the console's backtest screen both do:
    load, run the engine over the file's symbols, write the trades to `folder`."""
    calendar = calendar or MarketCalendar()
    bars, rejected, found = load_file(path, symbols, start, end, calendar)
    result = run_backtest(bars, settings.with_overrides(symbols=found), calendar=calendar,
                          progress=progress, bad_bars=rejected)
    parquet, csv = write_trades(result, folder)
    return BacktestRun(result, found, parquet, csv, (bars[0].ts.date(), bars[-1].ts.date()))


def trades_frame(result: BacktestResult) -> pl.DataFrame:
    tz = str(EXCHANGE_TZ)
    rows = [{
        "symbol": t.symbol, "side": t.side.value, "qty": t.qty,
        "entry_time": t.entry_time, "entry_price": float(t.entry_price),
        "exit_time": t.exit_time, "exit_price": float(t.exit_price),
        "stop_loss": None if t.stop_loss is None else float(t.stop_loss),
        "take_profit": None if t.take_profit is None else float(t.take_profit),
        "pnl": float(t.pnl), "commission": float(t.commission), "reason": t.exit_reason,
    } for t in result.trades]
    schema = {"symbol": pl.Utf8, "side": pl.Utf8, "qty": pl.Int64,
              "entry_time": pl.Datetime("us", tz), "entry_price": pl.Float64,
              "exit_time": pl.Datetime("us", tz), "exit_price": pl.Float64,
              "stop_loss": pl.Float64, "take_profit": pl.Float64, "pnl": pl.Float64,
              "commission": pl.Float64, "reason": pl.Utf8}
    return pl.DataFrame(rows, schema=schema)


def write_trades(result: BacktestResult, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    frame = trades_frame(result)
    parquet, csv = folder / "trades.parquet", folder / "trades.csv"
    frame.write_parquet(parquet)
    frame.write_csv(csv)
    return parquet, csv
