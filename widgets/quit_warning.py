"""Quit warning: shown when positions are open; protective orders stay at the broker."""

from __future__ import annotations

from daytrader.models import Position
from widgets.confirm import ConfirmModal


def quit_warning_text(positions: tuple[Position, ...], open_orders: int) -> str:
    names = ", ".join(f"{p.symbol} {p.qty:+d}" for p in positions)
    return (f"{len(positions)} position{'s are' if len(positions) != 1 else ' is'} open: {names}.\n"
            f"Quitting closes nothing. The {open_orders} open order{'s' if open_orders != 1 else ''} "
            "at the broker (protective stop-loss and take-profit legs included) stay there and "
            "keep working.\n\nQuit anyway?")


class QuitWarning(ConfirmModal):
    def __init__(self, positions: tuple[Position, ...], open_orders: int) -> None:
        super().__init__("Positions are open", quit_warning_text(positions, open_orders),
                         "Quit (y)", id="quit-warning")
