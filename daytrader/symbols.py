"""Ticker symbols: the one rule for what a symbol may look like, wherever one comes in (settings,
order input, the control API's paths, replay and backtest files)."""

from __future__ import annotations

import re

MAX_SYMBOL_CHARS = 10
# US equities: a letter, then letters, digits or a class dot (BRK.B); upper case.
SYMBOL_PATTERN = r"^[A-Z][A-Z0-9.]{0,9}$"
_SYMBOL = re.compile(SYMBOL_PATTERN)


def normalize_symbol(text: str) -> str:
    """Trimmed and upper-cased (a trader types `aapl`); the length is checked before anything
    else touches it, so a 2 MB name costs nothing."""
    if len(text) > MAX_SYMBOL_CHARS + 64:
        return text[: MAX_SYMBOL_CHARS + 1]  # certainly not a symbol: keep it short and invalid
    return text.strip().upper()


def is_symbol(text: str) -> bool:
    """True for a well-formed ticker (already normalized)."""
    return len(text) <= MAX_SYMBOL_CHARS and _SYMBOL.fullmatch(text) is not None
