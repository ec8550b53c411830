"""Broken and odd replay files, generated: every way a CSV or Parquet file of minute bars can be
wrong that we know of. Each case is (name, what it is, expected outcome): "runs" (exit 0, bad
rows counted by reason) or "refused" (exit 2, a message naming the file)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

HEADER = "timestamp,symbol,open,high,low,close,volume"
DAY = "2026-11-02"  # a Monday session


def good_rows(minutes: int = 30, symbols: tuple[str, ...] = ("AAPL", "MSFT")) -> list[str]:
    rows = []
    for m in range(minutes):
        hh, mm = divmod(9 * 60 + 30 + m, 60)
        for i, symbol in enumerate(symbols):
            p = 100 + i * 50 + (m % 7) * 0.1
            rows.append(f"{DAY} {hh:02d}:{mm:02d},{symbol},{p:.2f},{p + 0.2:.2f},{p - 0.2:.2f},"
                        f"{p + 0.1:.2f},{1000 + m}")
    return rows


def csv_text(*extra: str, header: str = HEADER, rows: list[str] | None = None) -> str:
    return "\n".join([header, *(good_rows() if rows is None else rows), *extra]) + "\n"


def good_frame(minutes: int = 30) -> pl.DataFrame:
    start = dt.datetime(2026, 11, 2, 9, 30)
    rows = []
    for m in range(minutes):
        for i, symbol in enumerate(("AAPL", "MSFT")):
            p = 100.0 + i * 50 + (m % 7) * 0.1
            rows.append({"timestamp": start + dt.timedelta(minutes=m), "symbol": symbol,
                         "open": p, "high": p + 0.2, "low": p - 0.2, "close": p + 0.1,
                         "volume": 1000 + m})
    return pl.DataFrame(rows)


@dataclass(frozen=True)
class Case:
    name: str
    suffix: str
    write: Callable[[Path], None]
    outcome: str  # "runs" or "refused"
    reason: str = ""  # a rejection reason that must be counted (runs), or a message part (refused)


def text(content: str | bytes) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return write


def frame(make: Callable[[], pl.DataFrame]) -> Callable[[Path], None]:
    return lambda path: make().write_parquet(path)


def with_column(name: str, values: pl.Series | list, dtype=None) -> Callable[[], pl.DataFrame]:
    def make() -> pl.DataFrame:
        f = good_frame()
        series = values if isinstance(values, pl.Series) else pl.Series(name, values, dtype=dtype)
        if len(series) == 1:
            series = pl.Series(name, series.to_list() * f.height, dtype=series.dtype)
        return f.with_columns(series.alias(name))
    return make


def one_bad(row: str) -> str:
    return csv_text(row)


LONG = "A" * 2_000_000
CASES: list[Case] = [
    # -- CSV: rows that are out of range or malformed: counted, and the run goes on ----------
    Case("row dated 2005", ".csv", text(one_bad("2005-06-01 10:00,AAPL,1,1,1,1,1")), "runs",
         "outside_calendar"),
    Case("row dated 2199", ".csv", text(one_bad("2199-06-01 10:00,AAPL,1,1,1,1,1")), "runs",
         "outside_calendar"),
    Case("row dated year 1", ".csv", text(one_bad("0001-01-01 10:00,AAPL,1,1,1,1,1")), "runs",
         "outside_calendar"),
    Case("row dated 9999-12-31", ".csv", text(one_bad("9999-12-31 23:59,AAPL,1,1,1,1,1")),
         "runs", "outside_calendar"),
    Case("price 1e27", ".csv", text(one_bad(f"{DAY} 10:30,AAPL,1e27,1e27,1e27,1e27,1")), "runs",
         "price_out_of_range"),
    Case("price inf", ".csv", text(one_bad(f"{DAY} 10:30,AAPL,inf,inf,inf,inf,1")), "runs",
         "bad_number"),
    Case("price 1e400", ".csv", text(one_bad(f"{DAY} 10:30,AAPL,1e400,1e400,1,1,1")), "runs",
         "bad_number"),
    Case("price of 400 digits", ".csv", text(one_bad(f"{DAY} 10:30,AAPL,{'9' * 400},1,1,1,1")),
         "runs", "bad_number"),
    Case("price NaN", ".csv", text(one_bad(f"{DAY} 10:30,AAPL,NaN,1,1,1,1")), "runs", "nan"),
    Case("price sNaN", ".csv", text(one_bad(f"{DAY} 10:30,AAPL,sNaN,1,1,1,1")), "runs",
         "bad_number"),
    Case("price negative", ".csv", text(one_bad(f"{DAY} 10:30,AAPL,-1,1,-1,1,1")), "runs",
         "non_positive_price"),
    Case("price zero", ".csv", text(one_bad(f"{DAY} 10:30,AAPL,0,0,0,0,1")), "runs",
         "non_positive_price"),
    Case("price 1e-30", ".csv", text(one_bad(f"{DAY} 10:30,AAPL,1e-30,1e-30,1e-30,1e-30,1")),
         "runs", "price_out_of_range"),
    Case("price with a decimal comma", ".csv",
         text(one_bad(f'{DAY} 10:30,AAPL,"1,5","1,5","1,5","1,5",1')), "runs", "bad_number"),
    Case("price in hex", ".csv", text(one_bad(f"{DAY} 10:30,AAPL,0x10,0x10,0x10,0x10,1")),
         "runs", "bad_number"),
    Case("volume 1e30", ".csv", text(one_bad(f"{DAY} 10:30,AAPL,1,1,1,1,1e30")), "runs",
         "volume_out_of_range"),
    Case("volume negative", ".csv", text(one_bad(f"{DAY} 10:30,AAPL,1,1,1,1,-5")), "runs",
         "negative_volume"),
    Case("volume text", ".csv", text(one_bad(f"{DAY} 10:30,AAPL,1,1,1,1,lots")), "runs",
         "bad_number"),
    Case("high below low", ".csv", text(one_bad(f"{DAY} 10:30,AAPL,1,1,2,1,1")), "runs",
         "high_below_low"),
    Case("open above high", ".csv", text(one_bad(f"{DAY} 10:30,AAPL,3,2,1,1,1")), "runs",
         "ohlc_inconsistent"),
    Case("symbol lowercase", ".csv", text(one_bad(f"{DAY} 10:30,aapl,1,1,1,1,1")), "runs", ""),
    Case("symbol NUL", ".csv", text(one_bad(f"{DAY} 10:30,AA\x00PL,1,1,1,1,1")), "runs",
         "bad_symbol"),
    Case("symbol of 2 MB", ".csv", text(one_bad(f"{DAY} 10:30,{LONG},1,1,1,1,1")), "runs",
         "bad_symbol"),
    Case("symbol with spaces", ".csv", text(one_bad(f"{DAY} 10:30,AA PL,1,1,1,1,1")), "runs",
         "bad_symbol"),
    Case("symbol of emoji", ".csv", text(one_bad(f"{DAY} 10:30,📈,1,1,1,1,1")), "runs",
         "bad_symbol"),
    Case("symbol empty", ".csv", text(one_bad(f"{DAY} 10:30,,1,1,1,1,1")), "runs",
         "missing_symbol"),
    Case("timestamp garbage", ".csv", text(one_bad("yesterday,AAPL,1,1,1,1,1")), "runs",
         "bad_timestamp"),
    Case("timestamp offset +99:99", ".csv", text(one_bad(f"{DAY}T10:30+99:99,AAPL,1,1,1,1,1")),
         "runs", ""),
    Case("timestamp epoch number", ".csv", text(one_bad("1793635200,AAPL,1,1,1,1,1")), "runs",
         "bad_timestamp"),
    Case("timestamp in the DST gap", ".csv", text(one_bad("2026-03-08 02:30,AAPL,1,1,1,1,1")),
         "runs", "bad_timestamp"),
    Case("rows out of order", ".csv", text(one_bad(f"{DAY} 09:31,AAPL,100,100,100,100,1")),
         "runs", "out_of_order"),
    Case("a weekend row", ".csv", text(one_bad("2026-11-07 10:30,AAPL,1,1,1,1,1")), "runs", ""),
    Case("a 3 am row", ".csv", text(one_bad(f"{DAY} 03:00,AAPL,1,1,1,1,1")), "runs", ""),
    Case("an unknown column", ".csv",
         text(csv_text(header=HEADER + ",note", rows=[r + ",x" for r in good_rows()])), "runs",
         "unknown_column"),
    Case("a BOM and CRLF lines", ".csv",
         text(("\ufeff" + csv_text()).replace("\n", "\r\n").encode()), "runs", ""),
    Case("upper-case header with spaces", ".csv",
         text(csv_text(header=" TIMESTAMP , Symbol,OPEN,High,low,Close,Volume")), "runs", ""),
    Case("a 2 MB line of junk", ".csv", text(csv_text("x" * 2_000_000)), "refused", "line"),
    # -- CSV: files that cannot be read at all: exit 2 naming the file ---------------------
    Case("empty file", ".csv", text(""), "refused", "empty file"),
    Case("whitespace only", ".csv", text("  \n\n  \n"), "refused", "empty file"),
    Case("header only", ".csv", text(HEADER + "\n"), "refused", "no valid bars"),
    Case("a missing column", ".csv",
         text(csv_text(header=HEADER.replace(",volume", ""),
                       rows=[r.rsplit(",", 1)[0] for r in good_rows()])), "refused",
         "missing required column(s): volume"),
    Case("a short row", ".csv", text(csv_text(f"{DAY} 10:30,AAPL,1,1")), "refused", "line"),
    Case("a long row", ".csv", text(csv_text(f"{DAY} 10:30,AAPL,1,1,1,1,1,1,1")), "refused",
         "line"),
    Case("invalid UTF-8", ".csv", text(csv_text().encode() + b"\xff\xfe,AAPL,1,1,1,1,1\n"),
         "refused", "invalid UTF-8"),
    Case("an unbalanced quote", ".csv", text(csv_text(f'{DAY} 10:30,"AAPL,1,1,1,1,1')),
         "refused", ""),
    Case("tab separated", ".csv", text(csv_text().replace(",", "\t")), "refused",
         "missing required column"),
    Case("every row bad", ".csv", text(csv_text(rows=["yesterday,AAPL,1,1,1,1,1"] * 5)),
         "refused", "no valid bars"),
    Case("a Parquet file named .csv", ".csv", frame(good_frame), "refused", ""),
    Case("not a replay file", ".txt", text(csv_text()), "refused", "not a replay file"),
    # -- Parquet ---------------------------------------------------------------------------
    Case("parquet: a struct close", ".parquet",
         frame(with_column("close", [{"a": 1.0, "b": 2.0}])), "refused", "column 'close'"),
    Case("parquet: a list volume", ".parquet", frame(with_column("volume", [[1, 2]])), "refused",
         "column 'volume'"),
    Case("parquet: a binary symbol", ".parquet", frame(with_column("symbol", [b"AAPL"])),
         "refused", "column 'symbol'"),
    Case("parquet: a boolean price", ".parquet", frame(with_column("open", [True])), "refused",
         "column 'open'"),
    Case("parquet: a list timestamp", ".parquet",
         frame(with_column("timestamp", [["2026-11-02 09:30"]])), "refused", "column 'timestamp'"),
    Case("parquet: integer timestamps", ".parquet", frame(with_column("timestamp", [1])),
         "refused", "column 'timestamp'"),
    Case("parquet: date timestamps", ".parquet",
         frame(with_column("timestamp", [dt.date(2026, 11, 2)])), "runs", "duplicate_timestamp"),
    Case("parquet: UTC timestamps in ns", ".parquet", frame(lambda: good_frame().with_columns(
        pl.col("timestamp").dt.replace_time_zone("America/New_York").dt.convert_time_zone("UTC")
        .cast(pl.Datetime("ns", "UTC")))), "runs", ""),
    Case("parquet: decimal prices", ".parquet", frame(lambda: good_frame().with_columns(
        pl.col(c).cast(pl.Decimal(12, 4)) for c in ("open", "high", "low", "close"))), "runs", ""),
    Case("parquet: categorical symbols", ".parquet", frame(lambda: good_frame().with_columns(
        pl.col("symbol").cast(pl.Categorical))), "runs", ""),
    Case("parquet: an all-null volume", ".parquet", frame(lambda: good_frame().with_columns(
        pl.lit(None).alias("volume"))), "refused", "no valid bars"),
    Case("parquet: a missing column", ".parquet", frame(lambda: good_frame().drop("volume")),
         "refused", "missing required column(s): volume"),
    Case("parquet: no rows", ".parquet", frame(lambda: good_frame().head(0)), "refused",
         "no valid bars"),
    Case("parquet: truncated", ".parquet",
         lambda p: (good_frame().write_parquet(p), p.write_bytes(p.read_bytes()[:200])), "refused",
         "cannot read Parquet"),
    Case("parquet: CSV text inside", ".parquet", text(csv_text()), "refused",
         "cannot read Parquet"),
    Case("parquet: float32 inf and huge prices", ".parquet", frame(lambda: pl.concat([
        good_frame(), good_frame().head(2).with_columns(
            pl.lit(float("inf")).alias("high"), pl.lit(1e27).alias("close"))
        .with_columns(pl.col("timestamp") + dt.timedelta(hours=1))]).with_columns(
        pl.col("high").cast(pl.Float32))), "runs", "bad_number"),
    Case("parquet: dates in 1700 and 2500", ".parquet", frame(lambda: pl.concat([
        good_frame(), good_frame().head(2).with_columns(pl.Series(
            "timestamp", [dt.datetime(1700, 1, 4, 10), dt.datetime(2500, 1, 4, 10)]))])),
         "runs", "outside_calendar"),
]
