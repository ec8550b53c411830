"""Replay source: minute bars read from a CSV or Parquet file, validated, with bad rows counted.

Columns: timestamp, symbol, open, high, low, close, volume (names are matched case-insensitively;
other columns are dropped and reported). Timestamps are ISO 8601. One with an offset or a trailing
Z is converted to America/New_York; a naive one is taken as America/New_York exchange time (an
ambiguous fall-back time resolves to the earlier instant, a time skipped by the spring-forward
change is rejected as "bad_timestamp"). Every accepted Bar.ts is tz-aware America/New_York.

Symbols are trimmed and upper-cased, then held to the ticker rule every input follows
(`daytrader.symbols`): replay and backtest accept the same symbols.

Rows are validated in one vectorized pass and rejected with a reason rather than failing the load:
missing_symbol, bad_symbol, other_symbol, bad_timestamp, outside_calendar (a date the exchange
calendar does not cover), bad_number, nan, non_positive_price, price_out_of_range (above
MAX_PRICE or below the smallest tick), negative_volume, volume_out_of_range, high_below_low,
ohlc_inconsistent, then, per symbol in file order, out_of_order (earlier than the symbol's
latest accepted bar) and duplicate_timestamp (equal to it). Only a file that cannot be read at
all (missing, unsupported, malformed CSV, missing column, a column whose type cannot hold its
values such as a Parquet struct or list) raises ReplayError, naming the file and, where known,
the line or column.
"""

from __future__ import annotations

import csv
import gc
import itertools
import logging
import sys
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from daytrader.models import Bar
from daytrader.order_input import MAX_PRICE, MIN_PRICE
from daytrader.symbols import MAX_SYMBOL_CHARS, SYMBOL_PATTERN

log = logging.getLogger(__name__)

EXCHANGE_TZ = "America/New_York"
REQUIRED_COLUMNS = ("timestamp", "symbol", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
NUMBER_COLUMNS = (*PRICE_COLUMNS, "volume")
MAX_EXAMPLES = 20
MAX_VOLUME = 1e13  # shares in one minute: far above any stock's whole day

_OFFSET = r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ReplayError(Exception):
    """A replay file cannot be read; the message names the file and, where known, the line."""


@dataclass(frozen=True, slots=True)
class ReplayData:
    """The bars of a replay file and what was rejected on the way.

    `examples` holds (line, reason) for the first rejected rows: the CSV line (1-based, the header
    is line 1) or, for Parquet, the 1-based row number.
    """

    bars: list[Bar]
    rejected: dict[str, int]
    examples: list[tuple[int, str]]
    symbols: tuple[str, ...]
    path: Path


def bars_by_minute(bars: Iterable[Bar]) -> Iterator[list[Bar]]:
    """Consecutive bars with the same timestamp, grouped into one list per minute."""
    for _, group in itertools.groupby(bars, key=attrgetter("ts")):
        yield list(group)


@dataclass(frozen=True, slots=True)
class CheckedFile:
    """A file's accepted rows as a frame (ts_us: UTC epoch microseconds, symbol, open, high, low,
    close, volume; sorted by time, then symbol) and what was rejected on the way."""

    accepted: pl.DataFrame
    rejected: dict[str, int]
    examples: list[tuple[int, str]]
    symbols: tuple[str, ...]
    path: Path


def load_bars(path: str | Path, symbols: Collection[str] | None = None,
              days: tuple[date, date] | None = None) -> ReplayData:
    """Read, validate and sort (by timestamp, then symbol) the bars of a .csv or .parquet file.

    With `symbols`, rows of other symbols are skipped and counted as "other_symbol". With
    `days` (the exchange calendar's first and last day), rows dated outside it are counted as
    "outside_calendar".
    """
    checked = read_checked(path, symbols, days)
    bars = frame_to_bars(checked.accepted)
    log.info("%s: loaded %d bars for %d symbol(s)", checked.path.name, len(bars),
             len(checked.symbols))
    return ReplayData(bars=bars, rejected=checked.rejected, examples=checked.examples,
                      symbols=checked.symbols, path=checked.path)


def read_checked(path: str | Path, symbols: Collection[str] | None = None,
                 days: tuple[date, date] | None = None) -> CheckedFile:
    """`load_bars`'s reading and validation, leaving the accepted rows in a polars frame (the
    market-data store imports from here without making a Bar of each row)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ReplayError(f"{path}: not a replay file (expected .csv or .parquet)")
    if not path.exists():
        raise ReplayError(f"{path}: file not found")
    if not path.is_file():
        raise ReplayError(f"{path}: not a file")
    if suffix == ".csv":
        frame, lines = _read_csv(path)
    else:
        frame, lines = _read_parquet(path)

    frame, unknown = _select_columns(frame, path)
    rejected: dict[str, int] = {}
    if unknown:
        rejected["unknown_column"] = len(unknown)
        log.warning("%s: dropped unknown column(s): %s", path.name, ", ".join(unknown))

    checked = _classify_rows(frame.with_columns(lines.alias("line")), symbols, days)
    reasons = checked.filter(pl.col("reason").is_not_null())
    for reason, count in reasons.group_by("reason").len().sort("reason").iter_rows():
        rejected[reason] = count
    first_lines = reasons.group_by("reason").agg(pl.col("line").min())
    for reason, first in first_lines.sort("reason").iter_rows():
        log.warning(
            "%s: rejected %d row(s) as %s (first at line %d)",
            path.name,
            rejected[reason],
            reason,
            first,
        )
    examples = [
        (int(line), str(reason))
        for line, reason in reasons.sort("line").head(MAX_EXAMPLES).select("line", "reason").rows()
    ]

    accepted = (checked.filter(pl.col("reason").is_null())
                .sort(["ts_us", "symbol"], maintain_order=True)
                .select("ts_us", "symbol", *NUMBER_COLUMNS))
    found = tuple(sorted(set(accepted["symbol"].to_list())))
    return CheckedFile(accepted, rejected, examples, found, path)


def check_frame(frame: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """Rows already in memory (timestamp, symbol, open, high, low, close, volume), checked as a
    file's are: the accepted ones as `read_checked` gives them, and the rejected by reason."""
    lines = pl.int_range(1, frame.height + 1, eager=True, dtype=pl.Int64)
    checked = _classify_rows(frame.select(REQUIRED_COLUMNS).with_columns(lines.alias("line")),
                             None)
    rejected = dict(checked.filter(pl.col("reason").is_not_null()).group_by("reason").len()
                    .sort("reason").iter_rows())
    accepted = (checked.filter(pl.col("reason").is_null())
                .sort(["ts_us", "symbol"], maintain_order=True)
                .select("ts_us", "symbol", *NUMBER_COLUMNS))
    return accepted, rejected


# -- reading ---------------------------------------------------------------------------------


def _read_csv(path: Path) -> tuple[pl.DataFrame, pl.Series]:
    """All fields as strings (empty -> null) and each row's line number."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    if not data.strip():
        raise ReplayError(f"{path}: empty file")
    try:
        frame = pl.read_csv(data, infer_schema=False)
    except pl.exceptions.PolarsError:
        # Polars' messages do not reliably name the line: the csv module finds it (or reads the
        # file after all).
        return _scan_csv(path, data)

    # Fast path: one row per physical line. Short rows (polars pads them with nulls), blank lines
    # and quoted line breaks all break that; then the csv module decides, exactly.
    newlines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    last_column_null = frame.width > 0 and frame[frame.columns[-1]].null_count() > 0
    if newlines != frame.height + 1 or last_column_null or b"\r" in data.replace(b"\r\n", b""):
        return _scan_csv(path, data)
    return frame, pl.int_range(2, frame.height + 2, eager=True, dtype=pl.Int64)


def _scan_csv(path: Path, data: bytes) -> tuple[pl.DataFrame, pl.Series]:
    """Parse with the csv module, slowly but exactly; raise ReplayError at the first bad line."""
    physical = data.splitlines(keepends=True)

    def decoded() -> Iterator[str]:
        for number, raw in enumerate(physical, start=1):
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise ReplayError(f"{path}: line {number}: invalid UTF-8") from exc

    reader = csv.reader(decoded())
    try:
        header = next(reader)
    except StopIteration:
        raise ReplayError(f"{path}: empty file") from None
    except csv.Error as exc:
        raise ReplayError(f"{path}: line 1: {exc}") from exc
    rows: list[list[str]] = []
    lines: list[int] = []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ReplayError(f"{path}: line {start}: {exc}") from exc
        if not row:
            continue  # a blank line
        if len(row) != len(header):
            raise ReplayError(f"{path}: line {start}: expected {len(header)} fields, found {len(row)}")
        rows.append(row)
        lines.append(start)
    if not header:
        raise ReplayError(f"{path}: line 1: empty header")
    names = _unique_names(header)
    columns = {name: [row[i] or None for row in rows] for i, name in enumerate(names)}
    frame = pl.DataFrame(columns, schema={name: pl.String for name in names})
    return frame, pl.Series(lines, dtype=pl.Int64)


def _unique_names(header: list[str]) -> list[str]:
    """Header names with repeats renamed the way polars does (`name_duplicated_0`, ...)."""
    seen: dict[str, int] = {}
    names = []
    for name in header:
        if name in seen:
            names.append(f"{name}_duplicated_{seen[name]}")
            seen[name] += 1
        else:
            names.append(name)
            seen[name] = 0
    return names


def _read_parquet(path: Path) -> tuple[pl.DataFrame, pl.Series]:
    try:
        frame = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ReplayError(f"{path}: cannot read Parquet: {exc}") from exc
    return frame, pl.int_range(1, frame.height + 1, eager=True, dtype=pl.Int64)


def _select_columns(frame: pl.DataFrame, path: Path) -> tuple[pl.DataFrame, list[str]]:
    """The required columns (names stripped and lower-cased) and the names of the others."""
    by_name: dict[str, str] = {}
    unknown: list[str] = []
    for column in frame.columns:
        name = column.strip().lstrip("\ufeff").lower()
        if name in REQUIRED_COLUMNS and name not in by_name:
            by_name[name] = column
        else:
            unknown.append(column)
    missing = [name for name in REQUIRED_COLUMNS if name not in by_name]
    if missing:
        raise ReplayError(f"{path}: missing required column(s): {', '.join(missing)}")
    for name in REQUIRED_COLUMNS:
        dtype = frame.schema[by_name[name]]
        if not _readable(name, dtype):
            expected = {"timestamp": "a date-time, a date or text",
                        "symbol": "text"}.get(name, "a number or text")
            raise ReplayError(f"{path}: column {by_name[name]!r} has type {dtype}, which cannot be "
                              f"read as {name} (expected {expected})")
    return frame.select(pl.col(by_name[name]).alias(name) for name in REQUIRED_COLUMNS), unknown


def _readable(name: str, dtype: pl.DataType) -> bool:
    """Whether a column of this type can hold `name`'s values (nested, binary, boolean and
    object columns cannot; an all-null column can, and its rows are rejected as missing)."""
    if dtype in (pl.String, pl.Null) or isinstance(dtype, pl.Categorical | pl.Enum):
        return True
    if name == "symbol":
        return False
    if name == "timestamp":
        return isinstance(dtype, pl.Datetime) or dtype == pl.Date
    return dtype.is_numeric()


# -- validation ------------------------------------------------------------------------------


def _timestamp_us(frame: pl.DataFrame) -> pl.Expr:
    """The timestamp column as UTC epoch microseconds (null when it cannot be parsed)."""
    dtype = frame.schema["timestamp"]
    col = pl.col("timestamp")
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            col = col.dt.replace_time_zone(EXCHANGE_TZ, ambiguous="earliest", non_existent="null")
        return col.dt.epoch("us")
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us")).dt.replace_time_zone(EXCHANGE_TZ).dt.epoch("us")

    text = col.cast(pl.String).str.strip_chars()
    base = text.str.replace(_OFFSET, "").str.replace("T", " ", literal=True)
    parsed = pl.coalesce([base.str.to_datetime(fmt, strict=False, time_unit="us") for fmt in _TIME_FORMATS])
    offset = text.str.extract(r"([Zz]|[+-]\d{2}(?::?\d{2})?)$", 1)
    digits = offset.str.replace_all(r"[^0-9]", "")
    offset_minutes = (
        pl.when(offset.str.to_uppercase() == "Z")
        .then(pl.lit(0, dtype=pl.Int64))
        .otherwise(
            (
                digits.str.slice(0, 2).cast(pl.Int64, strict=False) * 60
                + digits.str.slice(2, 2).cast(pl.Int64, strict=False).fill_null(0)
            )
            * pl.when(offset.str.starts_with("-")).then(-1).otherwise(1)
        )
    )
    naive_us = parsed.dt.replace_time_zone(EXCHANGE_TZ, ambiguous="earliest", non_existent="null").dt.epoch(
        "us"
    )
    offset_us = parsed.dt.epoch("us") - offset_minutes * 60_000_000
    return pl.when(offset.is_null()).then(naive_us).otherwise(offset_us)


def _number(frame: pl.DataFrame, name: str) -> pl.Expr:
    col = pl.col(name)
    dtype = frame.schema[name]
    if isinstance(dtype, pl.Categorical | pl.Enum):
        col, dtype = col.cast(pl.String), pl.String
    if dtype == pl.String:
        col = col.str.strip_chars()
    return col.cast(pl.Float64, strict=False)


def _classify_rows(frame: pl.DataFrame, symbols: Collection[str] | None,
                   days: tuple[date, date] | None = None) -> pl.DataFrame:
    """The frame with parsed columns and a `reason` per row: null when the row is accepted."""
    # Minute bars repeat each timestamp once per symbol: parse each distinct value once.
    if frame.schema["timestamp"] in (pl.Null,) or isinstance(frame.schema["timestamp"],
                                                             pl.Categorical | pl.Enum):
        frame = frame.with_columns(pl.col("timestamp").cast(pl.String))
    moments = frame.select(pl.col("timestamp").unique())
    moments = moments.with_columns(_timestamp_us(moments).alias("ts_us"))
    frame = frame.join(moments, on="timestamp", how="left", maintain_order="left")
    raw_symbol = pl.col("symbol").cast(pl.String)
    # Measured before anything else touches it: a 2 MB "symbol" is only counted.
    symbol = (pl.when(raw_symbol.str.len_bytes() > MAX_SYMBOL_CHARS + 64)
              .then(pl.lit("?" * (MAX_SYMBOL_CHARS + 1)))
              .otherwise(raw_symbol.str.strip_chars().str.to_uppercase()))
    parsed = frame.select(
        pl.col("line"),
        pl.col("ts_us"),
        symbol.alias("symbol"),
        *(_number(frame, name).alias(name) for name in NUMBER_COLUMNS),
        *(pl.col(name).is_null().alias(f"{name}_missing") for name in NUMBER_COLUMNS),
    )

    prices = [pl.col(name) for name in PRICE_COLUMNS]
    values = [*prices, pl.col("volume")]
    bad_number = pl.any_horizontal(
        [
            (v.is_null() & ~pl.col(f"{name}_missing")) | v.is_infinite()
            for v, name in zip(values, NUMBER_COLUMNS, strict=True)
        ]
    )
    missing = pl.any_horizontal([v.is_null() | v.is_nan() for v in values])
    high, low = pl.col("high"), pl.col("low")
    outside = pl.any_horizontal([(pl.col(name) < low) | (pl.col(name) > high) for name in ("open", "close")])
    wanted = pl.lit(True) if symbols is None else pl.col("symbol").is_in(list(symbols))
    well_formed = (pl.col("symbol").str.len_bytes() <= MAX_SYMBOL_CHARS) & pl.col(
        "symbol").str.contains(SYMBOL_PATTERN)
    if days is None:
        in_calendar = pl.lit(True)
    else:
        first = int((datetime.combine(days[0], datetime.min.time(), ZoneInfo(EXCHANGE_TZ))
                     - _EPOCH).total_seconds() * 1_000_000)
        last = int((datetime.combine(days[1] + timedelta(days=1), datetime.min.time(),
                                     ZoneInfo(EXCHANGE_TZ)) - _EPOCH).total_seconds() * 1_000_000)
        in_calendar = (pl.col("ts_us") >= first) & (pl.col("ts_us") < last)
    reason = (
        pl.when(pl.col("symbol").is_null() | (pl.col("symbol") == ""))
        .then(pl.lit("missing_symbol"))
        .when(~well_formed)
        .then(pl.lit("bad_symbol"))
        .when(~wanted)
        .then(pl.lit("other_symbol"))
        .when(pl.col("ts_us").is_null())
        .then(pl.lit("bad_timestamp"))
        .when(~in_calendar)
        .then(pl.lit("outside_calendar"))
        .when(bad_number)
        .then(pl.lit("bad_number"))
        .when(missing)
        .then(pl.lit("nan"))
        .when(pl.any_horizontal([p <= 0 for p in prices]))
        .then(pl.lit("non_positive_price"))
        .when(pl.any_horizontal([(p > float(MAX_PRICE)) | (p < float(MIN_PRICE)) for p in prices]))
        .then(pl.lit("price_out_of_range"))
        .when(pl.col("volume") < 0)
        .then(pl.lit("negative_volume"))
        .when(pl.col("volume") > MAX_VOLUME)
        .then(pl.lit("volume_out_of_range"))
        .when(high < low)
        .then(pl.lit("high_below_low"))
        .when(outside)
        .then(pl.lit("ohlc_inconsistent"))
    )
    checked = parsed.with_columns(reason.alias("reason")).drop([f"{name}_missing" for name in NUMBER_COLUMNS])

    # Order per symbol, in file order, against the latest accepted bar. A valid row that is not
    # accepted is never later than that bar, so the running maximum over valid rows equals the
    # maximum over accepted ones.
    valid = checked.filter(pl.col("reason").is_null())
    latest = pl.col("ts_us").cum_max().shift(1).over("symbol")
    ordered = valid.with_columns(
        pl.when(pl.col("ts_us") < latest)
        .then(pl.lit("out_of_order"))
        .when(pl.col("ts_us") == latest)
        .then(pl.lit("duplicate_timestamp"))
        .alias("reason")
    )
    return pl.concat([checked.filter(pl.col("reason").is_not_null()), ordered])


def frame_to_bars(frame: pl.DataFrame) -> list[Bar]:
    """Bars from a frame of ts_us (UTC epoch microseconds), symbol, open, high, low, close,
    volume, in its row order."""
    tz = ZoneInfo(EXCHANGE_TZ)
    micros = frame["ts_us"].to_list()
    moments = {us: (_EPOCH + timedelta(microseconds=us)).astimezone(tz) for us in set(micros)}
    columns = [frame[name].to_list() for name in NUMBER_COLUMNS]
    # One string object per symbol (polars makes one per row), the one SYMBOLS holds too: every
    # per-bar lookup by symbol (the sim's, the books', the strategies') then matches by identity
    # without hashing a new string or comparing characters.
    symbols = map(sys.intern, frame["symbol"].to_list())
    # Hundreds of thousands of new objects, none of them garbage: the cyclic collector would
    # only re-scan them over and over (about a third of the load time).
    with _collector_paused():
        return list(map(Bar, symbols, map(moments.__getitem__, micros), *columns))


@contextmanager
def _collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
