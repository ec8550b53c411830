"""The Strategy protocol: a strategy turns bars into signals; sizing and risk happen elsewhere."""

from __future__ import annotations

from typing import Protocol

from daytrader.models import Bar, Signal


class Strategy(Protocol):
    name: str

    def warm_up(self, bar: Bar) -> None:
        """Feeds history to the indicators without producing signals."""

    def on_bar(self, bar: Bar, position_qty: int) -> Signal | None:
        """The decision on one completed bar, given the current position in its symbol."""
