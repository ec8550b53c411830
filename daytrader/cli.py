"""Command line: options, sub-commands and their dispatch; `python app.py --help` shows them."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from daytrader import __version__
from daytrader.config import (
    ENV_NAMES,
    MODES,
    Settings,
    SettingsError,
    load_settings,
    parse_symbols,
    setting_given,
)

if TYPE_CHECKING:
    from daytrader.runtime import RunOptions

EPILOG = """\
modes:
  sim       (default) in-process exchange on synthetic bars from the open of the most
            recent trading session, at 60x (one minute bar a second); or on --replay FILE
  paper     Alpaca paper trading (ALPACA_API_KEY / ALPACA_SECRET_KEY in .env); positions and
            open orders already on the account are adopted and managed
  live      Alpaca live trading: only with --mode live on the command line, live keys and a
            typed confirmation; refused while the production checklist is not met, unless
            --override-checklist (journaled)
  backtest  the same engine over history as fast as possible:
            python app.py backtest --data FILE (see python app.py backtest --help)

examples:
  python app.py                                   the full-screen console, sim on synthetic bars
  python app.py --headless                        no console: a live log, then a summary
  python app.py --headless --speed max --until close --json
  python app.py --headless --replay bars.csv --speed max --json
  python app.py --headless --duration 2h --symbols AAPL,MSFT
  python app.py --strategy 'opening_range(minutes=30)'
  STRATEGY_SYMBOLS="vwap_reversion=AAPL" python app.py --strategy docs/examples/donchian.py:Donchian
  python app.py backtest --data bars.parquet --param fast=8 --capital 50000
  python app.py report --date 2026-11-24          the daily debrief from the journal
  python app.py ask "why was the AAPL entry at 10:42 refused?"
  ADVISOR_MODE=advise LLM_BASE_URL=http://127.0.0.1:11434/v1 LLM_MODEL=llama3.1 python app.py

settings are read from .env and the environment (see .env.example):
""" + textwrap.fill(", ".join(ENV_NAMES), 78, initial_indent="  ", subsequent_indent="  ") + """

exit codes: 0 done, 1 runtime error, 2 bad settings, arguments or data file
"""


# Sub-commands: name -> (module, one-line help). Each module has `configure(parser)` to add its
# arguments and `run(args, settings) -> int` (an exit code). Add a command by adding a line.
COMMANDS: dict[str, tuple[str, str]] = {
    "backtest": ("daytrader.backtest_cli", "run the engine over history at full speed, or sweep "
                 "parameters"),
    "data": ("daytrader.data_cli", "the market-data store: fetch from Alpaca, import a file, "
             "info"),
    "checklist": ("daytrader.checklist", "the production checklist from the journal (live's "
                  "gate)"),
    "ctl": ("daytrader.ctl", "control a running DayTrader through its API: status, positions, "
            "orders, enable, disable, emergency-stop, close SYMBOL, cancel ID, sync, "
            "strategies, strategy-enable NAME, strategy-disable NAME, buy / sell SYMBOL QTY "
            "[--limit P | --stop P]"),
    "store": ("daytrader.store.cli", "the journal: status, replay-to-supabase, export --format "
              "parquet"),
    "report": ("daytrader.advisor.debrief", "the daily debrief of a trading day from the "
               "journal (Markdown, saved to DATA_DIR/reports; with LLM_MODEL a checked "
               "narrative)"),
    "ask": ("daytrader.advisor.ask", "answer a question about a session from the journal, "
            'quoting its records: ask "why was the AAPL entry at 10:42 refused?"'),
}


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
                        "open, high, low, close, volume) instead of synthetic bars; it trades the "
                        "file's symbols unless --symbols or SYMBOLS names them")
    p.add_argument("--speed", metavar="N|max",
                   help="market minutes per wall minute: 60 = one bar a second (default SIM_SPEED), "
                        "1 = real time, max = as fast as possible")
    p.add_argument("--until", metavar="T",
                   help="stop at this market time: close, HH:MM (exchange time, first day) or ISO")
    p.add_argument("--duration", metavar="D",
                   help="stop after this much market time: 90m, 6h, 3d (at most 3650d)")
    p.add_argument("--seed", type=int, help="seed of the synthetic bars (default SIM_SEED)")
    p.add_argument("--symbols", help="comma-separated symbols (default SYMBOLS)")
    p.add_argument("--strategy", metavar="SPEC",
                   help="the strategy of every symbol not in STRATEGY_SYMBOLS (default STRATEGY: "
                        "ema_cross): ema_cross, opening_range, vwap_reversion, module:Class or "
                        "path/to/file.py:Class, with parameters: 'opening_range(minutes=30)'; "
                        "see docs/strategies.md")
    p.add_argument("--json", action="store_true",
                   help="print a machine-readable summary on stdout at the end (live log on stderr)")
    p.add_argument("--quiet", action="store_true", help="no live log, only the summary")
    p.add_argument("--override-checklist", action="store_true",
                   help="live mode: start although the production checklist is not met "
                        "(journaled; the typed confirmation is still asked)")
    p.add_argument("--no-api", action="store_true",
                   help="do not serve the control API (default: a Unix socket in DATA_DIR/run; "
                        "TCP when API_PORT is set)")
    p.add_argument("--env-file", type=Path, default=Path(".env"), metavar="PATH",
                   help="settings file (default .env)")
    p.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="Python log level on stderr (default LOG_LEVEL, WARNING)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND",
                           help="optional; without one the console (or --headless) runs")
    words = sys.argv[1:] if argv is None else argv
    for name, (module, summary) in COMMANDS.items():
        parser = sub.add_parser(name, help=summary, description=summary)
        if name in words:  # only the chosen command's module is imported: --help stays fast
            importlib.import_module(module).configure(parser)
    return p.parse_args(argv)


def parse_speed(text: str) -> float:
    """`--speed`: market minutes per wall minute (a positive finite number), or max (0)."""
    if text.strip().lower() == "max":
        return 0.0
    try:
        speed = float(text)
    except ValueError:
        speed = float("nan")
    if not 0 < speed < float("inf"):
        raise ValueError(f"--speed: expected a positive number of market minutes per wall minute "
                         f"(60 = one bar a second) or max, got {text[:40]!r}")
    return speed


def main(argv: list[str] | None = None,
         run_console: Callable[[Settings, RunOptions], int] | None = None) -> int:
    """Parses the command line and runs it; `run_console` starts the full-screen console
    (app.py passes it), otherwise the run is headless. Everything it creates (the journal, the
    lock, caches, backtest and export files) is owner-only."""
    previous_umask = os.umask(0o077)
    try:
        return _main(argv, run_console)
    finally:
        os.umask(previous_umask)


def _main(argv: list[str] | None,
          run_console: Callable[[Settings, RunOptions], int] | None) -> int:
    args = parse_args(argv)
    # Imported after parsing so that --help answers at once.
    from daytrader.data.replay import ReplayError

    # Imported here so that --help answers at once.
    from daytrader.headless import run_headless
    from daytrader.runtime import RunOptions, UsageError, parse_duration
    from daytrader.strategy.params import StrategyError

    try:
        settings = load_settings(args.env_file)
        overrides = {}
        if args.mode:
            overrides["mode"] = args.mode
        if args.seed is not None:
            overrides["sim_seed"] = args.seed
        if args.symbols:
            overrides["symbols"] = parse_symbols("--symbols", args.symbols)
        if getattr(args, "strategy", None):
            overrides["strategy"] = args.strategy
        if overrides:
            settings = settings.with_overrides(**overrides)
        if not args.command or args.command == "backtest":  # a bad strategy stops here, named
            from daytrader.strategy.loader import assign

            assign(settings)
        speed = None if args.speed is None else parse_speed(args.speed)
        if args.duration is not None:
            parse_duration(args.duration)  # checked before anything starts
    except (SettingsError, StrategyError) as exc:
        print(f"error: bad setting: {exc}", file=sys.stderr)
        return 2
    except (UsageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level or settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command:
        try:
            return importlib.import_module(COMMANDS[args.command][0]).run(args, settings)
        except SettingsError as exc:
            print(f"error: bad setting: {exc}", file=sys.stderr)
            return 2
        except (UsageError, ReplayError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    from daytrader.broker import BrokerAuthError
    from daytrader.live import LiveRefused, ask_terminal, live_gate

    try:
        live_note = live_gate(settings, args.mode, args.override_checklist, ask_terminal)
    except LiveRefused as exc:
        print(f"error: live trading refused: {exc}", file=sys.stderr)
        return 2
    if settings.mode in ("paper", "live") and args.replay is not None:
        print(f"error: --replay runs in sim mode, not {settings.mode}", file=sys.stderr)
        return 2
    symbols_given = bool(args.symbols) or setting_given("SYMBOLS", args.env_file)
    options = RunOptions(replay=args.replay, symbols_given=symbols_given, speed=speed,
                         until=args.until,
                         duration=args.duration, json_summary=args.json, quiet=args.quiet,
                         live_note=live_note, journal=True, api=not args.no_api)
    try:
        if options.api:  # a port in use says so before anything starts (and before drawing)
            from daytrader.api import check_can_listen

            check_can_listen(settings)
        if not args.headless:
            if run_console is not None:
                from daytrader.runtime import check_broker_reachable, instance_lock

                instance_lock(settings.data_dir)  # a second console says so before drawing
                if settings.mode in ("paper", "live"):  # and an unreachable broker too
                    asyncio.run(check_broker_reachable(settings))
                return run_console(settings, options)
            print("(the full-screen console is not built yet: running headless)", file=sys.stderr)
        asyncio.run(run_headless(settings, options))
    except (ReplayError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BrokerAuthError, SettingsError) as exc:
        print(f"error: bad setting: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


