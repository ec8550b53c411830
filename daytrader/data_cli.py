"""`python app.py data ...`: the market-data store (fetch from Alpaca, import files, coverage)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from pathlib import Path
from typing import TextIO

from daytrader.config import Settings, parse_symbols
from daytrader.data.store import MarketStore, fetch, session_days
from daytrader.runtime import UsageError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_action", choices=("fetch", "import", "info"),
                   help="fetch: download minute bars from Alpaca; import FILE: a CSV or Parquet "
                        "file; info: what the store holds")
    p.add_argument("file", nargs="?", type=Path, help="the file for import")
    p.add_argument("--store", type=Path, metavar="DIR",
                   help="the dataset's folder (default DATA_DIR/market); any path every node "
                        "of a research cluster sees")
    p.add_argument("--source", choices=("alpaca",), default="alpaca", help="where fetch reads")
    p.add_argument("--symbols", dest="data_symbols", metavar="A,B|@FILE",
                   help="symbols to fetch, or @file with one symbol per line")
    p.add_argument("--from", dest="data_from", type=date.fromisoformat, metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="data_to", type=date.fromisoformat, metavar="YYYY-MM-DD")


def store_for(settings: Settings, path: Path | None) -> MarketStore:
    return MarketStore(path or settings.data_dir / "market")


def _symbols(text: str | None) -> tuple[str, ...]:
    if not text:
        raise UsageError("data fetch needs --symbols A,B or --symbols @file")
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            lines = path.read_text().split()
        except OSError as exc:
            raise UsageError(f"--symbols: cannot read {path}: {exc.strerror}") from None
        text = ",".join(lines)
    return parse_symbols("--symbols", text)


def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout,
        err: TextIO = sys.stderr) -> int:
    store = store_for(settings, args.store)
    if args.data_action == "import":
        if args.file is None:
            raise UsageError("data import needs a FILE (CSV or Parquet)")
        report = store.import_file(args.file)
        bad = ", ".join(f"{k} {v}" for k, v in sorted(report.rejected.items())) or "none"
        print(f"imported {report.rows:,} bars into {report.partitions:,} partitions of "
              f"{store.root} (rejected: {bad})", file=out)
        return 0
    if args.data_action == "info":
        rows = store.coverage()
        if not rows:
            print(f"{store.root}: empty", file=out)
            return 0
        print(f"{store.root}: {len(rows)} symbols", file=out)
        for c in rows:
            print(f"  {c.symbol:<8} {c.first} to {c.last}  {c.days:>5} days  {c.rows:>10,} bars",
                  file=out)
        return 0
    symbols = _symbols(args.data_symbols)
    if args.data_from is None or args.data_to is None or args.data_to < args.data_from:
        raise UsageError("data fetch needs --from and --to (YYYY-MM-DD, from <= to)")
    if not (settings.alpaca_api_key and settings.alpaca_secret_key):
        raise UsageError("data fetch needs ALPACA_API_KEY and ALPACA_SECRET_KEY in .env")
    from daytrader.clock import MarketCalendar
    from daytrader.data.alpaca import AlpacaData, AlpacaDataConfig

    days = session_days(MarketCalendar(), args.data_from, args.data_to)
    data = AlpacaData(AlpacaDataConfig.from_settings(settings))

    async def go():
        try:
            async def every_bar(symbols, start, end):
                return await data.history(symbols, start, end, keep_invalid=True)

            return await fetch(store, every_bar, symbols, days,
                               progress=lambda line: print(line, file=err, flush=True))
        finally:
            await data.stop()

    report = asyncio.run(go())
    bad = ", ".join(f"{k} {v}" for k, v in sorted(report.rejected.items())) or "none"
    print(f"fetched {report.rows:,} bars into {report.partitions:,} partitions "
          f"({report.skipped:,} already there) in {store.root}; rejected: {bad}", file=out)
    return 0
