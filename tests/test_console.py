"""The console driven with Pilot: every key and modal flow, with the engine's state asserted after."""

from __future__ import annotations

from decimal import Decimal

from textual.widgets import Input, RichLog, Select, Static
from ui_factory import make_app, settled, until

from app import DayTraderApp
from daytrader.config import Settings
from daytrader.models import OrderRole, OrderStatus, OrderType, Side, TradingState
from widgets.confirm import ConfirmModal
from widgets.emergency import EmergencyModal
from widgets.error_modal import ErrorModal
from widgets.event_log import EventLog
from widgets.help import HelpScreen
from widgets.order_form import OrderForm
from widgets.orders import OrdersTable
from widgets.positions import PositionsTable
from widgets.quit_warning import QuitWarning
from widgets.reset_breaker import ResetBreakerModal
from widgets.watchlist import WatchlistTable

SIZE = (120, 40)
RUNNING = {"duration": "390m", "speed": 3000.0}  # a bar every 20 ms: closes get filled


def text(app: DayTraderApp, selector: str) -> str:
    return str(app.query_one(selector, Static).content)


async def modal_text(pilot, selector: str) -> str:
    """The text of a widget on the modal on top, once it has been composed."""
    await until(pilot, lambda: pilot.app.screen.query(selector), what=selector)
    return str(pilot.app.screen.query_one(selector).content)


def events(app: DayTraderApp) -> list[str]:
    return [e.message for e in app.host.engine.events]


async def test_main_screen_shows_what_the_engine_holds():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        engine = app.host.engine
        positions = app.query_one(PositionsTable)
        assert positions.keys == tuple(p.symbol for p in engine.book.positions())
        assert positions.keys, "the seeded hour of bars leaves positions open"
        orders = app.query_one(OrdersTable)
        assert set(orders.keys) == set(engine.open_orders)
        assert text(app, "#mode-badge") == "SIM"
        assert text(app, "#trading-state") == "ENABLED"
        assert text(app, "#clock") == "Tue 2026-11-24 10:30:00 ET"  # the date is always on
        assert text(app, "#market").startswith("open · closes in 5h30m")
        assert text(app, "#account-equity") == f"${app.snapshot.account.equity:,.2f}"
        lines = app.query_one(EventLog).visible_lines()
        assert any("feed ended" in line for line in lines)
        assert len(app.query_one(RichLog).lines) >= 1


async def test_d_disables_at_once_and_e_enables_again():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("d")
        assert app.host.engine.state is TradingState.DISABLED  # set before anything is drawn
        await until(pilot, lambda: text(app, "#trading-state") == "DISABLED", what="DISABLED shown")
        await pilot.press("e")
        await until(pilot, lambda: app.host.engine.state is TradingState.ENABLED, what="enabled")
        await until(pilot, lambda: text(app, "#trading-state") == "ENABLED", what="ENABLED shown")
        assert any("trading enabled by console" in m for m in events(app))


async def test_emergency_stop_disables_then_f_flattens_in_that_order():
    messages: list = []
    app = make_app(**RUNNING)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await until(pilot, lambda: app.snapshot is not None and app.snapshot.positions,
                    what="a position")
        await pilot.press("exclamation_mark")
        assert app.host.engine.state is TradingState.DISABLED
        assert isinstance(app.screen, EmergencyModal)
        await pilot.press("f")
        await until(pilot, lambda: any(isinstance(m, DayTraderApp.PositionsClosed) for m in messages),
                    timeout=30, what="the emergency stop report")
        latest = app.host.latest
        assert latest.state is TradingState.DISABLED
        assert latest.positions == ()
        assert not [o for o in latest.orders if o.status.is_open]
        kinds = [type(m).__name__ for m in messages
                 if isinstance(m, DayTraderApp.TradingDisabled | DayTraderApp.OrdersCanceled
                               | DayTraderApp.PositionsClosed)]
        assert kinds == ["TradingDisabled", "OrdersCanceled", "PositionsClosed"]
        closed = next(m for m in messages if isinstance(m, DayTraderApp.PositionsClosed))
        assert closed.flat


async def test_emergency_modal_escape_keeps_positions_and_trading_stays_disabled():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        before = app.host.latest.positions
        open_before = set(app.host.engine.open_orders)
        await pilot.press("exclamation_mark")
        assert isinstance(app.screen, EmergencyModal)
        await pilot.press("escape")
        assert not isinstance(app.screen, EmergencyModal)
        await until(pilot, lambda: app.host.latest.state is TradingState.DISABLED, what="snapshot")
        assert [p.symbol for p in app.host.latest.positions] == [p.symbol for p in before]
        assert set(app.host.engine.open_orders) == open_before


async def test_bang_is_a_priority_key_that_works_inside_the_order_form():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("n")
        assert isinstance(app.screen, OrderForm)
        await pilot.press("exclamation_mark")
        assert app.host.engine.state is TradingState.DISABLED
        assert isinstance(app.screen, EmergencyModal)


async def test_c_closes_the_selected_position_only_after_yes():
    # A bar a second fills the close soon after `y`, and gives a stop-loss little time to beat
    # it to the position on a loaded machine.
    app = make_app(duration="390m", speed=60.0)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.query_one(PositionsTable).row_count > 0, what="a position")
        await pilot.press("d")  # no new entries, so the position stays closed
        engine = app.host.engine
        table = app.query_one(PositionsTable)
        await pilot.press("2")  # the positions pane: `c` closes its highlighted row
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmModal)
        assert not any(r.intent.reason == "manual_close" for r in engine.submitted)
        symbol = table.selected_symbol
        await pilot.press("c")
        assert symbol in await modal_text(pilot, ".modal-title")
        await pilot.press("y")
        await until(pilot, lambda: engine.book.qty(symbol) == 0, timeout=20, what=f"{symbol} flat")
        assert any(r.intent.reason == "manual_close" and r.intent.symbol == symbol
                   for r in engine.submitted), "closed by the console, not by a stop"
        await until(pilot, lambda: symbol not in table.keys, what="the row gone")


async def test_x_cancels_the_selected_open_order():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        orders = app.query_one(OrdersTable)
        orders.focus()
        await pilot.press("down")
        order = orders.selected_order
        assert order is not None and order.status.is_open
        await pilot.press("x")
        if order.role in (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT):
            # A protective leg: the console asks first, and says what the position loses.
            modal = app.screen
            assert isinstance(modal, ConfirmModal)
            if order.role is OrderRole.STOP_LOSS:
                assert f"{order.symbol} will be UNPROTECTED" in modal.body
            await pilot.press("n")
            await pilot.pause(0.2)
            assert app.host.engine.known_orders[order.id].status.is_open
            await pilot.press("x", "y")
        await until(pilot, lambda: app.host.engine.known_orders[order.id].status
                    is OrderStatus.CANCELED, what="the order canceled")
        await until(pilot, lambda: order.id not in orders.keys, what="the row gone from open orders")


async def test_canceling_a_positions_stop_shows_it_unprotected():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        engine = app.host.engine
        await until(pilot, lambda: any(p.protected for p in app.snapshot.positions),
                    what="a protected position")
        position = next(p for p in app.snapshot.positions if p.protected)
        positions = app.query_one(PositionsTable)
        await until(pilot, lambda: position.symbol in positions.keys, what="the row")
        assert "UNPROTECTED" not in positions.row_text(position.symbol)
        app.host.run(lambda: engine.cancel_order(position.stop_order_id, "test")).result(10)
        await until(pilot, lambda: not next(p for p in app.snapshot.positions
                                            if p.symbol == position.symbol).protected,
                    what="the snapshot to show no stop")
        await until(pilot, lambda: "UNPROTECTED" in positions.row_text(position.symbol),
                    what="UNPROTECTED on screen")


async def test_x_on_a_finished_order_sends_nothing():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        orders = app.query_one(OrdersTable)
        orders.focus()
        await pilot.press("a", "end")
        assert orders.show_all and not orders.selected_order.status.is_open
        open_before = set(app.host.engine.open_orders)
        await pilot.press("x")
        await pilot.pause(0.2)
        assert set(app.host.engine.open_orders) == open_before
        assert not any("canceled by console" in m for m in events(app))


async def test_a_switches_orders_between_open_and_all():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        orders = app.query_one(OrdersTable)
        orders.focus()
        open_rows = orders.row_count
        await pilot.press("a")
        assert orders.row_count == len(app.snapshot.orders) > open_rows
        assert "all" in orders.border_title
        await pilot.press("a")
        assert orders.row_count == open_rows


async def test_tab_moves_between_panes_and_arrows_between_rows():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        positions = app.query_one(PositionsTable)
        assert app.focused is app.query_one(WatchlistTable)  # the market first
        await pilot.press("tab")
        assert app.focused is positions
        first = positions.selected_key
        await pilot.press("down")
        assert positions.cursor_row == 1 and positions.selected_key != first
        await pilot.press("up")
        assert positions.selected_key == first
        await pilot.press("tab")
        assert app.focused is app.query_one(OrdersTable)
        await pilot.press("shift+tab")
        assert app.focused is positions


async def fill_form(pilot, *, symbol: str | None = None, side: str | None = None,
                    qty: str | None = None, order_type: str | None = None,
                    price: str | None = None) -> OrderForm:
    form = pilot.app.screen
    assert isinstance(form, OrderForm)
    if symbol is not None:
        form.query_one("#order-symbol", Input).value = symbol
    if side is not None:
        form.query_one("#order-side", Select).value = side
    if qty is not None:
        form.query_one("#order-qty", Input).value = qty
    if order_type is not None:
        form.query_one("#order-type", Select).value = order_type
    if price is not None:
        form.query_one("#order-price", Input).value = price
    await pilot.pause()
    return form


async def test_n_order_form_sends_a_valid_limit_order_with_a_live_preview():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("n")
        form = await fill_form(pilot, symbol="", qty="")
        form.query_one("#order-symbol", Input).focus()
        await pilot.press(*"aapl", "tab", "tab", *"3")  # typed as a person would
        form = await fill_form(pilot, order_type="limit", price="180")
        preview = form.query_one("#order-preview", Static)
        await until(pilot, lambda: "Risk checks" in str(preview.content), what="the preview")
        assert "market_open" in str(preview.content) and "would be SENT" in str(preview.content)
        await pilot.press("ctrl+s")
        assert not isinstance(app.screen, OrderForm)
        await until(pilot, lambda: any(o.symbol == "AAPL" and o.limit_price == Decimal("180.00")
                                       for o in app.host.engine.open_orders.values()),
                    what="the order at the broker")
        order = next(o for o in app.host.engine.open_orders.values() if o.symbol == "AAPL")
        assert (order.side, order.qty, order.order_type) == (Side.BUY, 3, OrderType.LIMIT)


async def test_order_form_preview_names_the_check_that_would_refuse():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("d", "n")
        form = await fill_form(pilot, symbol="MSFT", qty="1")
        preview = form.query_one("#order-preview", Static)
        await until(pilot, lambda: "REFUSED" in str(preview.content), what="the refusal")
        assert "would be REFUSED by trading_enabled" in str(preview.content)
        assert "trading is disabled" in str(preview.content)


BAD_INPUT = [
    ({"symbol": ""}, "symbol is required"),
    ({"symbol": "ZZZZ"}, "unknown symbol ZZZZ"),
    ({"qty": ""}, "qty is required"),
    ({"qty": "0"}, "must be more than zero"),
    ({"qty": "-5"}, "must be more than zero"),
    ({"qty": "1.5"}, "fractional qty is not allowed"),
    ({"qty": "ten"}, "qty must be a number"),
    ({"price": "120"}, "a market order takes no price"),
    ({"order_type": "limit"}, "a limit order needs a limit price"),
    ({"order_type": "stop", "price": "-1"}, "must be more than zero"),
    ({"qty": "100000"}, "is over the buying power"),
]


async def test_order_form_bad_input_shows_an_inline_error_and_sends_nothing():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        submitted_before = len(app.host.engine.submitted)
        for fields, error in BAD_INPUT:
            await pilot.press("n")
            defaults = {"symbol": "AAPL", "qty": "2", "order_type": "market", "price": ""}
            form = await fill_form(pilot, **{**defaults, **fields})
            assert error in str(form.query_one("#form-error", Static).content), fields
            assert form.query_one("#submit").disabled
            await pilot.press("enter", "ctrl+s")
            assert app.screen is form, f"the form stays open on {fields}"
            await pilot.press("escape")
            assert not isinstance(app.screen, OrderForm)
        await pilot.pause(0.2)
        assert len(app.host.engine.submitted) == submitted_before, "nothing was sent"


async def test_s_syncs_from_the_broker():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("s")
        await until(pilot, lambda: any(m.startswith("sync by console") for m in events(app)),
                    what="the sync")
        await until(pilot, lambda: any("sync by console" in line
                                       for line in app.query_one(EventLog).visible_lines()),
                    what="the sync in the log pane")


async def test_r_resets_a_tripped_breaker_only_with_the_typed_word():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        engine = app.host.engine
        await pilot.press("r")
        assert not isinstance(app.screen, ResetBreakerModal), "nothing to reset yet"
        await until(pilot, lambda: engine.breaker.baseline > 0, what="the day's baseline")
        low = engine.breaker.baseline * Decimal("0.9")
        app.host.call(engine.breaker.update, low, engine.clock.now()).result(5)
        await until(pilot, lambda: app.snapshot.breaker_tripped, what="the trip in the snapshot")
        await until(pilot, lambda: text(app, "#trading-state") == "HALTED (breaker)", what="HALTED")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ResetBreakerModal), what="the modal")
        await pilot.press(*"reset", "enter")
        assert isinstance(app.screen, ResetBreakerModal)
        await until(pilot, lambda: "type RESET" in str(
            app.screen.query_one("#reset-error", Static).content), what="the inline error")
        assert engine.breaker.tripped
        app.screen.query_one(Input).value = ""
        await pilot.press(*"RESET", "enter")
        await until(pilot, lambda: not engine.breaker.tripped, what="the reset")
        await until(pilot, lambda: text(app, "#trading-state") == "ENABLED", what="ENABLED")


async def test_help_lists_every_key_and_closes():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = str(app.screen.query_one("#help-keys Static", Static).content)
        for binding in DayTraderApp.BINDINGS:
            assert binding.tooltip in shown
            assert (binding.key_display or binding.key) in shown
        for key in ("tab", "up / down", "ctrl+p", "a", "l"):
            assert key in shown
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_every_binding_is_in_the_command_palette():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for binding in DayTraderApp.BINDINGS:
            if binding.key != "ctrl+c":
                assert any(title.startswith(binding.description) for title in titles), binding


def test_quit_warning_says_where_the_orders_go_in_each_mode():
    from datetime import datetime
    from decimal import Decimal

    from daytrader.models import Position
    from widgets.quit_warning import quit_warning_text

    held = (Position("AAPL", 10, Decimal("100"), Decimal("101"), datetime(2026, 11, 24, 10, 0)),)
    paper = quit_warning_text(held, 2, "paper")
    assert "stay there and keep working" in paper and "stop-loss" in paper
    sim = quit_warning_text(held, 2, "sim")
    assert "keep working" not in sim and "1 position and the 2 open orders stop with it" in sim
    assert "1 position open: AAPL +10" in sim


async def test_q_with_open_positions_warns_first():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("q")
        assert isinstance(app.screen, QuitWarning)
        body = await modal_text(pilot, ".modal-body")
        assert "This is the sim" in body and "keep working" not in body
        await pilot.press("n")
        assert app.is_running and not isinstance(app.screen, QuitWarning)
        await pilot.press("ctrl+c")  # like q
        assert isinstance(app.screen, QuitWarning)
        await pilot.press("y")
        await pilot.pause()
    assert app.return_value == 0
    assert not app.host.running, "the engine thread is stopped on exit"


async def test_q_without_positions_quits_at_once():
    app = make_app(duration="5m", settings=Settings(trading_enabled_at_start=False))
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        assert not app.snapshot.positions
        await pilot.press("q")
        await pilot.pause()
    assert app.return_value == 0


async def test_slash_searches_the_log_and_l_filters_by_level():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        log = app.query_one(EventLog)
        everything = log.visible_lines()
        await pilot.press("slash")
        assert app.focused is app.query_one("#log-search", Input)
        await pilot.press(*"fill")
        assert log.visible_lines() and all("fill" in line.lower() for line in log.visible_lines())
        assert len(log.visible_lines()) < len(everything)
        await pilot.press("escape")
        assert log.visible_lines() == everything
        await pilot.press("d")  # a warning to find
        await until(pilot, lambda: any("disabled by console" in line
                                       for line in log.visible_lines()), what="the warning")
        log.query_one(RichLog).focus()
        await pilot.press("l")
        assert log.level == "warning"
        assert log.visible_lines() and all(" ! " in line or " X " in line
                                           for line in log.visible_lines())


async def test_an_engine_crash_is_shown_with_the_error_and_trading_disabled():
    app = make_app(crash=RuntimeError("feed exploded"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ErrorModal), what="the error modal")
        assert "feed exploded" in await modal_text(pilot, ".modal-body")
        assert app.host.engine.state is TradingState.DISABLED
        await pilot.press("escape")
        await until(pilot, lambda: "feed exploded" in text(app, "#engine-error"), what="status")
        assert text(app, "#trading-state") == "DISABLED"
        assert app.is_running


async def test_an_engine_that_cannot_start_is_shown_not_fatal():
    def broken_factory():
        raise OSError("no market data")

    app = DayTraderApp(host_factory=broken_factory)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ErrorModal), what="the error modal")
        assert "no market data" in await modal_text(pilot, ".modal-body")
        assert "could not start" in await modal_text(pilot, ".modal-title")
        await pilot.press("escape", "d")  # keys do not crash without an engine
        assert app.is_running
