"""Screenshots of the console (pytest-textual-snapshot) on a seeded sim with a frozen clock: the
main screen, each pane of a small terminal, help, the order ticket, the emergency-stop modal and
a symbol's screen, at 80x24, 120x40 and 200x50.
`pytest --snapshot-update` rewrites them after a deliberate change; look at them first."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Select
from ui_factory import caught_up, make_app, settled, until

from daytrader.models import TradingState
from widgets.candle_chart import CandleChart
from widgets.emergency import EmergencyModal
from widgets.help import HelpScreen
from widgets.order_form import OrderForm
from widgets.symbol_screen import SymbolScreen

SIZES = [(80, 24), (120, 40), (200, 50)]


async def main_screen(pilot) -> None:
    await settled(pilot)


async def help_screen(pilot) -> None:
    await settled(pilot)
    await pilot.press("question_mark")
    await until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), what="help")


async def order_form(pilot) -> None:
    """The ticket as `n` opens it on the watchlist's row, turned into a limit order."""
    await settled(pilot)
    await pilot.press("n")
    await until(pilot, lambda: isinstance(pilot.app.screen, OrderForm)
                and pilot.app.screen.query("#order-type"), what="the ticket")
    form = pilot.app.screen
    form.query_one("#order-type", Select).value = "limit"
    form.query_one("#order-price", Input).value = "188"
    await until(pilot, lambda: form.defaults is not None and form.defaults.entry == 188
                and "would be SENT" in str(form.query_one("#order-preview").content),
                what="the limit's bracket and preview")
    for field in form.query(Input):  # a blinking cursor would make the picture a coin toss
        field.cursor_blink = False
    await pilot.pause()


async def positions_pane(pilot) -> None:
    """Key 2: at 80x24 the positions pane alone under its tab; larger, focused in place."""
    await settled(pilot)
    await pilot.press("2")
    await pilot.pause()


async def symbol_screen(pilot) -> None:
    await settled(pilot)
    app = pilot.app
    app.open_symbol(app.snapshot.positions[0].symbol)
    await until(pilot, lambda: isinstance(app.screen, SymbolScreen)
                and app.screen.query(CandleChart), what="the symbol screen")
    chart = app.screen.query_one(CandleChart)
    await until(pilot, lambda: chart.chart is not None, what="its chart")
    await pilot.pause()


async def emergency_modal(pilot) -> None:
    await settled(pilot)
    await pilot.press("exclamation_mark")
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, EmergencyModal), what="the modal")
    await until(pilot, lambda: app.host.latest.state is TradingState.DISABLED, what="disabled")
    await caught_up(pilot)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("scene", [main_screen, positions_pane, help_screen, order_form,
                                   emergency_modal, symbol_screen],
                         ids=lambda f: f.__name__)
def test_console_snapshot(snap_compare, scene, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=scene)
