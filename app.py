"""DayTrader: a terminal console for intraday trading of US stocks. `python app.py --help`."""

from __future__ import annotations

import sys

from daytrader.cli import main as cli_main


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
