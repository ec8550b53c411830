"""Command line: options, sub-commands and their dispatch; `python app.py --help` shows them."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from daytrader import __version__
from daytrader.config import ENV_NAMES, MODES, Settings, SettingsError, load_settings, parse_symbols
from daytrader.data.replay import ReplayError
from daytrader.runtime import RunOptions, UsageError

EPILOG = """\
modes:
  sim       (default) in-process exchange on synthetic bars from the open of the most
            recent trading session, at 60x (one minute bar a second); or on --replay FILE
  paper     Alpaca paper trading (ALPACA_API_KEY / ALPACA_SECRET_KEY)   [not built yet]
  live      Alpaca live trading, behind a typed confirmation           [not built yet]
  backtest  the same engine over history as fast as possible; for now use
            --headless --replay FILE --speed max

examples:
  python app.py                                   sim, synthetic bars, live log
  python app.py --headless --speed max --until close --json
  python app.py --headless --replay bars.csv --speed max --json
  python app.py --headless --duration 2h --symbols AAPL,MSFT

settings are read from .env and the environment (see .env.example):
""" + textwrap.fill(", ".join(ENV_NAMES), 78, initial_indent="  ", subsequent_indent="  ") + """

exit codes: 0 done, 1 runtime error, 2 bad settings, arguments or data file
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python app.py", description="DayTrader: intraday trading console (EMA crossover, "
        "six pre-trade risk checks, circuit breaker, emergency stop).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"DayTrader {__version__}")
    p.add_argument("--mode", choices=MODES, help="trading mode (default: TRADING_MODE or sim)")
    p.add_argument("--headless", action="store_true",
                   help="run without the full-screen console: a concise live log, then a summary")
    p.add_argument("--replay", type=Path, metavar="FILE",
                   help="replay minute bars from a CSV or Parquet file (columns timestamp, symbol, "
                        "open, high, low, close, volume) instead of synthetic bars")
    p.add_argument("--speed", metavar="N|max",
                   help="market minutes per wall minute: 60 = one bar a second (default SIM_SPEED), "
                        "1 = real time, max = as fast as possible")
    p.add_argument("--until", metavar="T",
                   help="stop at this market time: close, HH:MM (exchange time, first day) or ISO")
    p.add_argument("--duration", metavar="D", help="stop after this much market time: 90m, 6h, 3d")
    p.add_argument("--seed", type=int, help="seed of the synthetic bars (default SIM_SEED)")
    p.add_argument("--symbols", help="comma-separated symbols (default SYMBOLS)")
    p.add_argument("--json", action="store_true",
                   help="print a machine-readable summary on stdout at the end (live log on stderr)")
    p.add_argument("--quiet", action="store_true", help="no live log, only the summary")
    p.add_argument("--env-file", type=Path, default=Path(".env"), metavar="PATH",
                   help="settings file (default .env)")
    p.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="Python log level on stderr (default LOG_LEVEL, WARNING)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None,
         run_console: Callable[[Settings, RunOptions], int] | None = None) -> int:
    """Parses the command line and runs it; `run_console` starts the full-screen console
    (app.py passes it), otherwise the run is headless."""
    args = parse_args(argv)
    # Imported here so that --help answers at once.
    from daytrader.headless import run_headless

    try:
        settings = load_settings(args.env_file)
        overrides = {}
        if args.mode:
            overrides["mode"] = args.mode
        if args.seed is not None:
            overrides["sim_seed"] = args.seed
        if args.symbols:
            overrides["symbols"] = parse_symbols("--symbols", args.symbols)
        if overrides:
            settings = settings.with_overrides(**overrides)
        speed = None
        if args.speed is not None:
            speed = 0.0 if args.speed.lower() == "max" else float(args.speed)
            if speed < 0:
                raise UsageError(f"--speed: must be positive or max, got {args.speed}")
    except SettingsError as exc:
        print(f"error: bad setting: {exc}", file=sys.stderr)
        return 2
    except (UsageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level or settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.mode != "sim":
        print(f"error: {settings.mode} mode is not available yet in this version; "
              "run sim (the default), optionally with --replay FILE --speed max", file=sys.stderr)
        return 2
    options = RunOptions(replay=args.replay, speed=speed, until=args.until,
                         duration=args.duration, json_summary=args.json, quiet=args.quiet)
    try:
        if not args.headless:
            if run_console is not None:
                return run_console(settings, options)
            print("(the full-screen console is not built yet: running headless)", file=sys.stderr)
        asyncio.run(run_headless(settings, options))
    except (ReplayError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


