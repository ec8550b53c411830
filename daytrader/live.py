"""Live-trading safeguards: live starts only from `--mode live` on the command line, with live keys
(checked by the settings), a typed confirmation, and the production checklist met or explicitly
overridden, which is journaled. Nothing here ever turns live on by default.
"""

from __future__ import annotations

from collections.abc import Callable

from daytrader.config import Settings

CONFIRM_WORD = "LIVE"
CHECKLIST = (
    "300 paper trades",
    "win rate >= 60%",
    "profit factor >= 1.5",
    "circuit breaker tested",
    "emergency stop tested",
    "no duplicate orders",
)


class LiveRefused(Exception):
    """Live trading was asked for and refused; the message says why and what would allow it."""


def unmet_checklist(settings: Settings) -> list[str]:
    """Items of the production checklist not shown to be met, from the journal
    (`daytrader.checklist`); without that module nothing can be verified, so all are unmet."""
    try:
        from daytrader.checklist import for_settings
    except ImportError:
        return [f"{item} (not verified: no checklist)" for item in CHECKLIST]
    return [f"{i.name}: {i.figure} (needs {i.requirement})" for i in for_settings(settings).failing]


def live_gate(settings: Settings, cli_mode: str | None, override: bool,
              ask: Callable[[str], str | None]) -> str:
    """Refuses live unless every safeguard holds; returns the note to journal ("" if not live).
    `ask` shows a prompt and returns the typed line, or None when nobody can answer."""
    if settings.mode != "live":
        return ""
    if cli_mode != "live":
        raise LiveRefused("live trading starts only with --mode live on the command line; "
                          "TRADING_MODE=live alone never starts it")
    unmet = unmet_checklist(settings)
    if unmet and not override:
        raise LiveRefused("production checklist not met: " + "; ".join(unmet)
                          + ". Trade on paper until it is, or pass --override-checklist "
                            "(the override is journaled)")
    answer = ask(f"LIVE TRADING with real money on {', '.join(settings.symbols)}. "
                 f"Type {CONFIRM_WORD} to start: ")
    if answer is None:
        raise LiveRefused(f"live trading needs the typed confirmation {CONFIRM_WORD!r} at "
                          "start-up, and nobody is there to type it")
    if answer.strip() != CONFIRM_WORD:
        raise LiveRefused(f"confirmation not given (typed {answer.strip()!r}, not "
                          f"{CONFIRM_WORD!r}); not starting")
    note = "LIVE trading confirmed at start-up"
    if unmet:
        note += "; production checklist OVERRIDDEN (--override-checklist): " + "; ".join(unmet)
    return note


def ask_terminal(prompt: str) -> str | None:
    """The typed line from a terminal, or None without one (a service, CI, a pipe)."""
    import sys

    if not sys.stdin or not sys.stdin.isatty():
        return None
    try:
        print(prompt, end="", file=sys.stderr, flush=True)
        return sys.stdin.readline()
    except (EOFError, OSError):
        return None
