"""The market-data store: minute bars in a Parquet dataset partitioned by symbol and day, read
lazily (a polars scan whose filters on symbol and day prune whole files).

Layout under its root (DATA_DIR/market by default, or any path every research node sees):

    symbol=AAPL/day=2026-03-02/bars.parquet    ts (UTC epoch microseconds), open, high, low,
                                               close, volume; one file per symbol and day

A file is written whole and renamed into place, so a partition is either complete or absent: an
import or a fetch that is interrupted resumes by skipping the partitions that exist, and never
leaves a half day or a duplicate row. A symbol with no bars on a day it was fetched for gets an
empty file, so the day counts as fetched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from daytrader.data.replay import NUMBER_COLUMNS, check_frame, frame_to_bars, read_checked
from daytrader.models import Bar

TZ = ZoneInfo("America/New_York")
SCHEMA = {"ts_us": pl.Int64, **dict.fromkeys(NUMBER_COLUMNS, pl.Float64)}
FILE = "bars.parquet"


@dataclass(frozen=True, slots=True)
class ImportReport:
    rows: int  # bars written
    partitions: int  # (symbol, day) files written
    skipped: int  # partitions already in the store, left as they were
    rejected: dict[str, int]


@dataclass(frozen=True, slots=True)
class Coverage:
    symbol: str
    first: date
    last: date
    days: int
    rows: int


def day_of(ts_us: pl.Expr) -> pl.Expr:
    """The exchange day (America/New_York) of UTC epoch microseconds."""
    return pl.from_epoch(ts_us, time_unit="us").dt.replace_time_zone("UTC").dt.convert_time_zone(
        "America/New_York").dt.date()


class MarketStore:
    """A store at a local path, or (for reading) at an object-storage URL polars reads, such as
    s3://bucket/market with the usual AWS_* variables in the environment."""

    def __init__(self, root: str | Path) -> None:
        self.url = str(root) if "://" in str(root) else None
        self.root = Path(root) if self.url is None else Path(str(root).split("://", 1)[1])

    @property
    def location(self) -> str:
        """What another process (or node) opens this store with."""
        return self.url or str(self.root)

    # -- writing -----------------------------------------------------------------------------------
    def path(self, symbol: str, day: date) -> Path:
        return self.root / f"symbol={symbol}" / f"day={day.isoformat()}" / FILE

    def has(self, symbol: str, day: date) -> bool:
        return self.path(symbol, day).is_file()

    def write_day(self, symbol: str, day: date, frame: pl.DataFrame) -> None:
        """One symbol's bars of one day (ts_us and OHLCV columns), replacing the partition whole."""
        target = self.path(symbol, day)
        target.parent.mkdir(parents=True, exist_ok=True)
        rows = frame.select(*SCHEMA).cast(SCHEMA).sort("ts_us")
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".bars-", suffix=".tmp")
        os.close(fd)
        try:
            rows.write_parquet(tmp)
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def write_frame(self, frame: pl.DataFrame, skip_existing: bool = False) -> tuple[int, int, int]:
        """Rows of many symbols and days (ts_us, symbol, OHLCV): one partition per (symbol,
        day). Returns (rows written, partitions written, partitions skipped)."""
        rows = written = skipped = 0
        if frame.is_empty():
            return 0, 0, 0
        with_day = frame.with_columns(day_of(pl.col("ts_us")).alias("_day"))
        for (symbol, day), part in with_day.group_by(["symbol", "_day"], maintain_order=True):
            if skip_existing and self.has(symbol, day):
                skipped += 1
                continue
            self.write_day(symbol, day, part)
            rows += part.height
            written += 1
        return rows, written, skipped

    def import_file(self, path: str | Path) -> ImportReport:
        """A CSV or Parquet file of minute bars, checked as a replay checks it (bad rows are
        counted by reason, not stored); its (symbol, day) partitions replace the store's."""
        checked = read_checked(path)
        rows, written, skipped = self.write_frame(checked.accepted)
        return ImportReport(rows, written, skipped, checked.rejected)

    # -- reading -----------------------------------------------------------------------------------
    def _files(self) -> list[Path]:
        return sorted(self.root.glob(f"symbol=*/day=*/{FILE}"))

    def scan(self, symbols: Collection[str] | None = None, start: date | None = None,
             end: date | None = None) -> pl.LazyFrame:
        """The bars as a lazy frame (symbol, day from the partition names); filters on symbol
        and day skip whole files, so memory holds only what is asked for."""
        if self.url is None and not self._files():
            return pl.LazyFrame(schema={**SCHEMA, "symbol": pl.String, "day": pl.Date})
        source = f"{self.url.rstrip('/')}/**/{FILE}" if self.url else self.root / "**" / FILE
        lazy = pl.scan_parquet(source, hive_partitioning=True,
                               hive_schema={"symbol": pl.String, "day": pl.Date})
        if symbols is not None:
            lazy = lazy.filter(pl.col("symbol").is_in(list(symbols)))
        if start is not None:
            lazy = lazy.filter(pl.col("day") >= start)
        if end is not None:
            lazy = lazy.filter(pl.col("day") <= end)
        return lazy

    def _partitions(self) -> list[tuple[str, date]]:
        """(symbol, day) of every file: from the folder names (locally), or from the listing
        polars makes of the objects (a URL)."""
        if self.url is not None:
            rows = self.scan().select("symbol", "day").unique().collect().rows()
            return sorted(rows)
        return [(p.parent.parent.name.split("=", 1)[1],
                 date.fromisoformat(p.parent.name.split("=", 1)[1])) for p in self._files()]

    def symbols(self) -> tuple[str, ...]:
        return tuple(sorted({symbol for symbol, _ in self._partitions()}))

    def days(self, symbols: Collection[str] | None = None, start: date | None = None,
             end: date | None = None) -> list[date]:
        """The days with any file for these symbols (from the layout, without reading)."""
        wanted = set(symbols) if symbols is not None else None
        return sorted({day for symbol, day in self._partitions()
                       if (wanted is None or symbol in wanted) and (start is None or day >= start)
                       and (end is None or day <= end)})

    def coverage(self) -> list[Coverage]:
        frame = (self.scan().group_by("symbol")
                 .agg(pl.col("day").min().alias("first"), pl.col("day").max().alias("last"),
                      pl.col("day").n_unique().alias("days"), pl.len().alias("rows"))
                 .sort("symbol").collect())
        return [Coverage(*row) for row in frame.iter_rows()]

    def frame(self, symbols: Collection[str] | None = None, start: date | None = None,
              end: date | None = None) -> pl.DataFrame:
        """The asked-for bars, sorted by time then symbol: ts_us, symbol, OHLCV."""
        return (self.scan(symbols, start, end).select("ts_us", "symbol", *NUMBER_COLUMNS)
                .sort(["ts_us", "symbol"]).collect())

    def minutes(self, symbols: Collection[str] | None = None, start: date | None = None,
                end: date | None = None) -> Iterator[list[Bar]]:
        """Minute by minute, reading one day at a time: memory holds a day, not the dataset."""
        for day in self.days(symbols, start, end):
            bars = frame_to_bars(self.frame(symbols, day, day))
            yield from _group_by_minute(bars)

    def bar_count(self, symbols: Collection[str] | None = None, start: date | None = None,
                  end: date | None = None) -> int:
        return int(self.scan(symbols, start, end).select(pl.len()).collect().item())


def _group_by_minute(bars: list[Bar]) -> Iterator[list[Bar]]:
    minute: list[Bar] = []
    for bar in bars:
        if minute and bar.ts != minute[0].ts:
            yield minute
            minute = []
        minute.append(bar)
    if minute:
        yield minute


def bars_frame(bars: Iterable[Bar]) -> pl.DataFrame:
    """Bars (as fetched or generated) into the store's row shape."""
    rows = [(int(b.ts.astimezone(UTC).timestamp() * 1_000_000), b.symbol, b.open, b.high, b.low,
             b.close, float(b.volume)) for b in bars]
    return pl.DataFrame(rows, schema={"ts_us": pl.Int64, "symbol": pl.String,
                                      **dict.fromkeys(NUMBER_COLUMNS, pl.Float64)}, orient="row")


def session_days(calendar, start: date, end: date) -> list[date]:
    days = []
    for session in calendar.sessions_from(start):
        if session.date > end:
            break
        days.append(session.date)
    return days


async def fetch(store: MarketStore, history: Callable, symbols: Collection[str], days: list[date],
                progress: Callable[[str], None] | None = None) -> ImportReport:
    """Downloads what the store lacks, one day at a time (`history(symbols, start, end)` gives
    that day's bars), checks them as a replay checks a file (bad bars counted by reason, not
    stored) and writes each (symbol, day) whole. Interrupted, it resumes where it stopped:
    finished partitions are skipped."""
    rows = written = skipped = 0
    rejected: dict[str, int] = {}
    for i, day in enumerate(days, 1):
        missing = [s for s in symbols if not store.has(s, day)]
        skipped += len(symbols) - len(missing)
        if not missing:
            continue
        start = datetime.combine(day, datetime.min.time(), TZ)
        bars = await history(missing, start, start + timedelta(days=1) - timedelta(minutes=1))
        frame, bad = check_frame(bars_frame(bars).with_columns(
            pl.from_epoch("ts_us", time_unit="us").dt.replace_time_zone("UTC")
            .alias("timestamp")))
        for reason, count in bad.items():
            rejected[reason] = rejected.get(reason, 0) + count
        for symbol in missing:  # an empty day is written too: fetched, nothing traded
            part = frame.filter(pl.col("symbol") == symbol)
            store.write_day(symbol, day, part)
            rows += part.height
            written += 1
        if progress is not None:
            progress(f"{day}: {len(missing)} symbol(s), {frame.height:,} bars "
                     f"({i}/{len(days)} days)")
    return ImportReport(rows, written, skipped, rejected)
