"""Quit warning: shown when positions are open. What happens to them depends on where they are:
at Alpaca (paper, live) the protective orders stay and keep working; in the sim the exchange
lives in this process, so quitting ends it and nothing works until the next start."""

from __future__ import annotations

from daytrader.models import Position
from daytrader.wording import plural
from widgets.confirm import ConfirmModal


def quit_warning_text(positions: tuple[Position, ...], open_orders: int, mode: str) -> str:
    names = ", ".join(f"{p.symbol} {p.qty:+d}" for p in positions)
    held = plural(len(positions), "position")
    orders = plural(open_orders, "open order")
    if mode in ("sim", "backtest"):
        what = (f"This is the sim: its exchange runs inside this console. Quitting ends the "
                f"session: the {held} and the {orders} stop with it (nothing is sent anywhere, "
                "no order works while it is closed) and the next start is a new session.")
    else:
        what = (f"Quitting closes nothing. The {orders} at the broker (protective stop-loss and "
                "take-profit legs included) stay there and keep working.")
    return f"{held} open: {names}.\n{what}\n\nQuit anyway?"


class QuitWarning(ConfirmModal):
    def __init__(self, positions: tuple[Position, ...], open_orders: int, mode: str) -> None:
        super().__init__("Positions are open", quit_warning_text(positions, open_orders, mode),
                         "Quit (y)", id="quit-warning")
