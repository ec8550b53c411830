"""The order ticket in the running console (Pilot): pre-filled from the engine's sizing and the
strategy's bracket, the same keystrokes giving the same order whatever is selected, an edited
stop that reaches the broker, the risk in $ and % of equity, fat fingers refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from textual.widgets import Input, Select, Static
from ui_factory import make_app, settled, until

from daytrader.models import OrderRole, OrderType, Side
from widgets.order_form import OrderForm
from widgets.positions import PositionsTable
from widgets.watchlist import WatchlistTable

SIZES = [(80, 24), (120, 40), (200, 50)]


def field(form: OrderForm, name: str) -> str:
    return form.query_one(f"#order-{name}", Input).value


def text(form: OrderForm, selector: str) -> str:
    return str(form.query_one(selector, Static).content)


async def open_ticket(pilot) -> OrderForm:
    """`n`, and the engine's figures filled in (the ticket opens at once and asks for them)."""
    await pilot.press("n")
    await until(pilot, lambda: isinstance(pilot.app.screen, OrderForm)
                and pilot.app.screen.query("#order-symbol"), what="the ticket")
    form = pilot.app.screen
    if field(form, "symbol"):
        await until(pilot, lambda: form.defaults is not None and field(form, "qty"),
                    what="the ticket's size and bracket")
    await pilot.pause()
    return form


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_ticket_opens_with_the_sized_qty_and_the_strategy_bracket(size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settled(pilot)
        app.main_screen.query_one(WatchlistTable).select_key("MSFT")
        form = await open_ticket(pilot)
        expected = app.host.engine.ticket("MSFT", Side.BUY)
        assert field(form, "symbol") == "MSFT"
        assert field(form, "qty") == str(expected.qty) and expected.qty > 0
        assert field(form, "stop") == str(expected.stop_loss)
        assert field(form, "target") == str(expected.take_profit)
        assert "from the strategy" in text(form, "#order-basis")
        risk = (expected.entry - expected.stop_loss) * expected.qty
        await until(pilot, lambda: "to the stop" in text(form, "#order-risk"), what="the risk")
        assert f"risk ${risk:,.2f}" in text(form, "#order-risk")
        assert f"{risk / expected.equity * 100:.2f}% of equity" in text(form, "#order-risk")
        submit = form.query_one("#submit")
        assert submit.region.bottom <= size[1], "the submit button is on screen"
        # Everything is filled: focus is in the first field, its text selected, so typing
        # replaces it.
        assert app.focused is form.query_one("#order-symbol")
        assert form.query_one("#order-symbol", Input).selected_text == "MSFT"


async def test_the_same_keys_give_the_same_order_with_or_without_a_selected_row():
    """`n MSFT Tab Tab 25`: once with a position selected (the ticket pre-filled with it), once
    from an empty ticket. Both give MSFT, buy, 25."""
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        await pilot.press("2")  # the positions pane: its first row is selected
        held = app.main_screen.query_one(PositionsTable).selected_symbol
        assert held and held != "MSFT"
        drafts = []
        for start in (held, ""):
            form = await open_ticket(pilot)
            if not start:
                form.query_one("#order-symbol", Input).value = ""
                form.query_one("#order-symbol", Input).focus()
                await pilot.pause()
            assert field(form, "symbol") == start
            await pilot.press(*"MSFT", "tab", "tab", *"25")
            await until(pilot, lambda f=form: f.defaults is not None
                        and f.defaults.symbol == "MSFT", what="MSFT's bracket")
            await pilot.pause()
            draft = form.draft()
            drafts.append((draft.symbol, draft.side, draft.qty))
            assert field(form, "stop") == str(app.host.engine.ticket("MSFT", Side.BUY).stop_loss)
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, OrderForm), what="closed")
        assert drafts == [("MSFT", "buy", "25"), ("MSFT", "buy", "25")]


async def test_an_edited_stop_reaches_the_broker_as_the_bracket_stop_loss():
    app = make_app()
    async with app.run_test(size=(200, 50)) as pilot:
        await settled(pilot)
        app.main_screen.query_one(WatchlistTable).select_key("MSFT")
        form = await open_ticket(pilot)
        suggested = Decimal(field(form, "stop"))
        edited = suggested - Decimal("0.50")
        # As a person does it: Tab to the stop-loss (its text is selected), type over it.
        await pilot.press("tab", "tab", "tab", "tab", "tab")
        assert app.focused is form.query_one("#order-stop")
        await pilot.press(*str(edited))
        await pilot.pause()
        assert field(form, "stop") == str(edited)
        # Another type asks the engine again: the edited stop stays, the target follows.
        form.query_one("#order-type", Select).value = "limit"
        form.query_one("#order-price", Input).value = str(form.defaults.last)
        await pilot.pause(0.3)
        assert field(form, "stop") == str(edited) and "stop" in form.edited
        await until(pilot, lambda: "would be SENT" in text(form, "#order-preview"), what="SENT")
        await pilot.press("ctrl+s")
        engine = app.host.engine
        await until(pilot, lambda: any(o.symbol == "MSFT" and o.role is OrderRole.STOP_LOSS
                                       for o in engine.open_orders.values()), what="the legs")
        entry = next(o for o in engine.open_orders.values()
                     if o.symbol == "MSFT" and o.role is OrderRole.ENTRY)
        stop = next(o for o in engine.open_orders.values()
                    if o.symbol == "MSFT" and o.role is OrderRole.STOP_LOSS)
        assert entry.order_type is OrderType.LIMIT and stop.stop_price == edited
        assert engine.broker.orders()  # the sim exchange holds them


async def test_a_fat_finger_limit_is_refused_with_the_last_price_named():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        app.main_screen.query_one(WatchlistTable).select_key("MSFT")
        form = await open_ticket(pilot)
        last = form.defaults.last
        form.query_one("#order-type", Select).value = "limit"
        form.query_one("#order-price", Input).value = str(last * 10)
        await pilot.pause()
        error = text(form, "#form-error")
        assert f"the last price {last}" in error and "a typo?" in error
        assert form.query_one("#submit").disabled
        sent = len(app.host.engine.submitted)
        await pilot.press("ctrl+s")
        assert app.screen is form and len(app.host.engine.submitted) == sent


async def test_selling_a_held_position_is_sized_to_it_without_a_bracket():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        position = app.snapshot.positions[0]
        app.main_screen.query_one(WatchlistTable).select_key(position.symbol)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, OrderForm), what="the ticket")
        form = app.screen
        form.query_one("#order-side", Select).value = "sell"
        await until(pilot, lambda: form.defaults is not None and form.defaults.side is Side.SELL,
                    what="the sell's figures")
        await pilot.pause()
        assert field(form, "qty") == str(position.qty)
        assert field(form, "stop") == "" and field(form, "target") == ""
        assert f"holding {position.qty:+d}" in text(form, "#order-basis")


async def test_keys_typed_right_after_n_land_in_the_ticket():
    """A trader types on without waiting for the ticket to draw: every key after `n` is the
    ticket's, none goes to the panes behind it (a 2 there would switch panes)."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        app.main_screen.query_one(WatchlistTable).select_key("AAPL")
        await pilot.press("n", *"MSFT", "tab", "tab", "2", "5")
        await until(pilot, lambda: isinstance(app.screen, OrderForm), what="the ticket")
        form = app.screen
        await until(pilot, lambda: form.defaults is not None and form.defaults.symbol == "MSFT",
                    what="MSFT's bracket")
        draft = form.draft()
        assert (draft.symbol, draft.side, draft.qty) == ("MSFT", "buy", "25")
        assert app.active_pane == "watchlist"  # the 2 did not switch the pane behind


async def test_a_burst_of_typed_ahead_keys_lands_where_each_tab_leads():
    """Keys that arrive together (typed ahead while the console is busy, or pasted by tmux):
    Tab x5 then a price. Each key goes where the Tabs before it moved the focus, and the
    stop-loss's pre-filled text is replaced, not added to."""
    from textual import events

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        app.main_screen.query_one(WatchlistTable).select_key("MSFT")
        form = await open_ticket(pilot)
        for key in ["tab"] * 5:  # symbol -> side, qty, type, price, stop-loss
            app.post_message(events.Key(key, None))
        for character in "412.98":
            app.post_message(events.Key("full_stop" if character == "." else character,
                                        character))
        await pilot.pause(0.3)
        assert field(form, "symbol") == "MSFT"
        assert field(form, "stop") == "412.98"
        assert app.focused is form.query_one("#order-stop")
