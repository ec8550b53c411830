"""The console at the sizes a trader uses (80x24, 120x40, 200x50): every pane reachable, the
watchlist, a symbol's screen, and a status bar that tells the truth at once. Pilot-driven on the
seeded sim with a frozen clock."""

from __future__ import annotations

import pytest
from textual.widgets import Footer, Static
from ui_factory import caught_up, make_app, settled, until

from app import PANES, DayTraderApp
from daytrader.config import Settings
from daytrader.models import TradingState
from widgets.candle_chart import CandleChart, candle_minutes, candles
from widgets.emergency import EmergencyModal
from widgets.formatting import compact_number, price
from widgets.order_form import OrderForm
from widgets.pane_tabs import PaneTabs
from widgets.status_bar import StatusBar
from widgets.symbol_screen import SymbolScreen
from widgets.watchlist import WatchlistTable

SIZES = [(80, 24), (120, 40), (200, 50)]
PANE_IDS = [pane for pane, _ in PANES]


def visible(app: DayTraderApp, pane: str, min_height: int = 4) -> bool:
    widget = app.main_screen.query_one(f"#{pane}")
    if not widget.display or widget.region.height < min_height:
        return False
    width, height = app.size
    r = widget.region
    return r.y >= 0 and r.bottom <= height and r.right <= width and r.width >= 20


def text(widget) -> str:
    return str(widget.content)


def frame_is_intact(app: DayTraderApp) -> None:
    """The status bar is on the first line and the footer on the last: always visible."""
    status = app.main_screen.query_one(StatusBar) if app.screen is app.main_screen \
        else app.screen.query_one(StatusBar)
    footer = app.screen.query_one(Footer)
    assert status.region.y == 0 and status.region.height >= 1
    assert footer.region.bottom == app.size.height and footer.region.height == 1


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_pane_is_one_key_away_with_status_bar_and_footer_on_screen(size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settled(pilot)
        for number, pane in enumerate(PANE_IDS, start=1):
            await pilot.press(str(number))
            await pilot.pause()
            assert visible(app, pane), f"{pane} not on screen after {number} at {size}"
            frame_is_intact(app)
        if size == (80, 24):  # one pane at a time, with the tabs saying which
            tabs = app.main_screen.query_one(PaneTabs)
            assert tabs.display and tabs.active == "summary"
            assert [p for p in PANE_IDS if visible(app, p, 1)] == ["summary"]


@pytest.mark.parametrize("size", [(120, 40), (200, 50)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_orders_and_events_are_on_screen_without_a_key(size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settled(pilot)
        for pane in PANE_IDS:
            assert visible(app, pane), f"{pane} hidden at {size}"
        assert not app.main_screen.query_one(PaneTabs).display
        # Free rows go to the panes that hold rows, not to a pane of blank lines.
        events = app.main_screen.query_one("#event-log").region.height
        summary = app.main_screen.query_one("#summary").region.height
        assert events >= 7 and summary == 10
        # Every key of the footer whole on its line (at 120 columns "g Strategi" was cut).
        keys = list(app.main_screen.query_one(Footer).query("FooterKey"))
        assert len(keys) >= 14 and all(0 < k.region.right <= size[0] for k in keys), \
            [(str(k.description), k.region) for k in keys]


async def test_z_maximises_the_focused_pane_and_gives_all_back():
    app = make_app()
    async with app.run_test(size=(200, 50)) as pilot:
        await settled(pilot)
        await pilot.press("3")  # the orders pane, focused
        await pilot.press("z")
        await pilot.pause()
        body = app.main_screen.query_one("#body").region
        orders = app.main_screen.query_one("#orders")
        assert orders.region.height == body.height and orders.region.width == body.width
        assert [p for p in PANE_IDS if visible(app, p, 1)] == ["orders"]
        frame_is_intact(app)
        await pilot.press("z")
        await pilot.pause()
        assert all(visible(app, p) for p in PANE_IDS)


async def test_watchlist_lists_every_symbol_with_price_change_signal_and_position():
    app = make_app()
    async with app.run_test(size=(200, 50)) as pilot:
        await settled(pilot)
        table = app.main_screen.query_one(WatchlistTable)
        snap = app.snapshot
        assert set(table.keys) == set(snap.symbols)
        held = {p.symbol: p for p in snap.positions}
        assert held, "the seeded hour leaves a position to show"
        for q in snap.quotes:
            row = table.row_text(q.symbol)
            assert f"{q.last:,.2f}" in row and f"{q.change_pct:+.2f}%" in row, row
            assert f"{q.next_signal.trigger:,.2f}" in row  # the trigger of its next signal
            assert f"{q.signal_distance_pct:+.2f}%" in row
            for name, value in q.indicators.items():
                assert price(value) in row, (name, row)
            if q.symbol in held:
                assert f"{held[q.symbol].qty:+d}" in row
        assert [c.label for c in table.columns][-3:] == list(snap.quotes[0].indicators)


async def test_watchlist_sorts_by_distance_to_the_next_signal_and_back():
    app = make_app()
    async with app.run_test(size=(200, 50)) as pilot:
        await settled(pilot)
        table = app.main_screen.query_one(WatchlistTable)
        assert list(table.keys) == sorted(table.keys)  # by symbol at first
        await pilot.press("o")  # distance to the next signal, nearest first
        distance = {q.symbol: abs(q.signal_distance_pct) for q in app.snapshot.quotes}
        assert list(table.keys) == sorted(distance, key=distance.get)
        assert "distance to signal" in table.border_subtitle
        await pilot.press("O")
        assert list(table.keys) == sorted(distance, key=distance.get, reverse=True)


async def test_enter_opens_the_symbol_screen_with_its_candles_lines_and_fills():
    app = make_app()
    async with app.run_test(size=(200, 50)) as pilot:
        await settled(pilot)
        symbol = app.snapshot.positions[0].symbol  # a symbol with fills and a working stop
        table = app.main_screen.query_one(WatchlistTable)
        table.select_key(symbol)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SymbolScreen)
                    and app.screen.query(CandleChart), what="the symbol screen")
        screen = app.screen
        chart = screen.query_one(CandleChart)
        await until(pilot, lambda: chart.chart is not None, what="the chart")
        quote = next(q for q in app.snapshot.quotes if q.symbol == symbol)
        assert len(chart.chart.bars) == quote.bars == 60
        assert set(chart.chart.lines) == {*app.host.engine.strategy.chart_lines(), "VWAP"}
        assert chart.chart.fills and all(f.symbol == symbol for f in chart.chart.fills)
        position = next(p for p in app.snapshot.positions if p.symbol == symbol)
        assert chart.chart.stop_loss == position.stop_loss is not None
        assert f"{symbol} · 1-minute candles" in chart.plt.build()
        header = text(screen.query_one("#symbol-quote", Static))
        assert header.startswith(f"{symbol}  {quote.last:,.2f}") and "next:" in header
        held = text(screen.query_one("#symbol-position", Static))
        assert f"{position.qty:+d} @" in held and "stop " in held
        assert set(screen.query_one("#symbol-fills").keys) == {f.id for f in chart.chart.fills}
        frame_is_intact(app)
        await pilot.press("escape")
        assert app.screen is app.main_screen


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_symbol_screen_keys_buy_sell_close_and_step(size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settled(pilot)
        symbol = app.snapshot.positions[0].symbol
        app.open_symbol(symbol)
        await until(pilot, lambda: isinstance(app.screen, SymbolScreen)
                    and app.screen.query(CandleChart), what="the symbol screen")
        screen = app.screen
        chart = screen.query_one(CandleChart)
        await until(pilot, lambda: chart.chart is not None, what="the chart")
        assert chart.region.height >= 8 and chart.region.width >= 60, chart.region
        frame_is_intact(app)
        # The quote drops words and whole figures to fit, never part of one ("low 179.15…").
        quote_widget = screen.query_one("#symbol-quote", Static)
        quote = next(q for q in app.snapshot.quotes if q.symbol == symbol)
        lines = text(quote_widget).splitlines()
        assert len(lines) == 2 and all(len(line) <= quote_widget.content_size.width
                                       and "…" not in line for line in lines), lines
        assert lines[0].startswith(f"{symbol}  {quote.last:,.2f}  {quote.change:+,.2f}")
        assert lines[1].startswith("EMA9 ") and "next: " in lines[1], lines
        if size[0] >= 158:
            assert f"volume {compact_number(quote.volume)}" in lines[0]
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, OrderForm), what="the ticket")
        assert (app.screen.initial_symbol, app.screen.initial_side) == (symbol, "buy")
        await pilot.press("escape")
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, OrderForm), what="the ticket")
        assert app.screen.initial_side == "sell"
        await pilot.press("escape")
        await pilot.press("c")
        await until(pilot, lambda: app.screen.id == "close-confirm", what="the close confirmation")
        assert symbol in str(app.screen.query_one(".modal-title").content)
        await pilot.press("n")
        await pilot.press("right_square_bracket")
        symbols = [q.symbol for q in app.snapshot.quotes]
        following = symbols[(symbols.index(symbol) + 1) % len(symbols)]
        assert screen.symbol == following
        await until(pilot, lambda: chart.chart is not None and chart.chart.symbol == following,
                    what="the next symbol's chart")


def test_candles_merge_minutes_to_fit_the_width():
    from datetime import datetime, timedelta

    from daytrader.clock import EXCHANGE_TZ
    from daytrader.models import Bar

    start = datetime(2026, 11, 24, 9, 30, tzinfo=EXCHANGE_TZ)
    bars = [Bar("A", start + timedelta(minutes=i), 10 + i, 11 + i, 9 + i, 10.5 + i, 100)
            for i in range(390)]
    # One candle every other column at most: a full session needs 780 columns for 1-minute ones.
    assert candle_minutes(390, 780) == 1 and candle_minutes(390, 779) == 2
    assert candle_minutes(390, 100) == 10 and candle_minutes(30, 100) == 1
    five = candles(bars, 5)
    assert len(five) == 78
    assert (five[0].open, five[0].high, five[0].low, five[0].close) == (10, 15, 9, 14.5)


async def test_status_bar_shows_a_key_press_at_once_not_at_the_next_snapshot():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        app.poll_engine = lambda force=False: None  # no snapshot reaches the panes from now on
        state = app.main_screen.query_one("#trading-state", Static)
        await pilot.press("d")
        assert text(state) == "DISABLED"
        await pilot.press("e")
        assert text(state) == "ENABLED"
        await pilot.press("exclamation_mark")
        assert isinstance(app.screen, EmergencyModal)
        assert text(state) == "E-STOP", "behind the modal the bar already says so"


async def test_an_emergency_stop_reads_e_stop_until_trading_is_enabled_again():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        state = app.main_screen.query_one("#trading-state", Static)
        await pilot.press("exclamation_mark")
        await pilot.press("escape")  # keep positions: still an emergency stop
        await caught_up(pilot)
        await until(pilot, lambda: app.snapshot.emergency_stop, what="the engine's E-STOP")
        assert text(state) == "E-STOP" and state.has_class("-estop")
        assert "e-stop" in app.main_screen.query_one("#risk-table").row_text("trading_enabled")
        await pilot.press("d")  # a plain disable does not end it
        await caught_up(pilot)
        await until(pilot, lambda: app.host.latest.event_seq == app.snapshot.event_seq, what="sync")
        assert text(state) == "E-STOP"
        await pilot.press("e")
        await until(pilot, lambda: app.snapshot.state is TradingState.ENABLED
                    and not app.snapshot.emergency_stop, what="enabled")
        assert text(state) == "ENABLED"


async def test_the_emergency_stop_shows_one_notification_not_two():
    app = make_app(duration="390m", speed=3000.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.snapshot is not None and app.snapshot.positions,
                    what="a position")
        await pilot.press("exclamation_mark")
        await pilot.press("f")
        await until(pilot, lambda: any("EMERGENCY STOP complete" in n.message
                                       for n in app._notifications), timeout=30, what="the report")
        await caught_up(pilot)
        stops = [n for n in app._notifications if "EMERGENCY STOP" in n.message.upper()]
        assert len(stops) == 1, [n.message for n in stops]


async def test_status_bar_shows_the_date_and_the_money_left_before_the_breaker():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        snap = app.snapshot
        clock = text(app.main_screen.query_one("#clock", Static))
        assert clock == "Tue 11-24 10:30:00"  # cramped: short date, still there
        rooms = [text(w) for w in app.main_screen.query(".breaker-room")]
        assert f"breaker ${snap.loss_to_breaker:,.2f} away" in rooms
        line = text(app.main_screen.query_one("#account-line", Static))
        assert f"{snap.account.day_pnl_pct:+.2f}%" in line


async def test_a_tripped_breaker_marks_trading_enabled_as_failed():
    settings = Settings(max_daily_loss_pct=0.01, sim_seed=42)  # the first loss trips it
    app = make_app(settings=settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        assert app.snapshot.breaker_tripped
        risk = app.main_screen.query_one("#risk-table")
        mark, *_ = risk.cells("trading_enabled")
        assert mark == ("✗", "negative") and "halted" in risk.row_text("trading_enabled")
        assert text(app.main_screen.query_one("#trading-state", Static)) == "HALTED (breaker)"
        rooms = [text(w) for w in app.main_screen.query(".breaker-room")]
        assert "BREAKER TRIPPED" in rooms


async def test_flat_equity_chart_keeps_its_axis_near_the_equity():
    settings = Settings(trading_enabled_at_start=False, sim_seed=42)  # no trades: a flat line
    app = make_app(settings=settings)
    async with app.run_test(size=(200, 50)) as pilot:
        await settled(pilot)
        chart = app.main_screen.query_one("#equity-chart")
        built = chart.plt.build()
        assert "150,0" not in built and "50,0" not in built
        assert "100,0" in built  # labelled in dollars around $100,000


def test_the_chart_keeps_the_strategy_lines_in_view_when_they_are_far_from_the_candles():
    """At the open the EMAs still sit on yesterday's prices, below today's candles: they must be
    drawn (a labelled line off the y range made plotext's legend raise, and the screen with it)."""
    from datetime import datetime, timedelta
    from decimal import Decimal

    from daytrader.clock import EXCHANGE_TZ
    from daytrader.market import SymbolChart
    from daytrader.models import Bar

    start = datetime(2026, 11, 30, 9, 30, tzinfo=EXCHANGE_TZ)
    bars = tuple(Bar("MSFT", start + timedelta(minutes=i), 415 - i * 0.3, 415.4 - i * 0.3,
                     414.6 - i * 0.3, 414.8 - i * 0.3, 1e5) for i in range(6))
    lines = {"EMA9": tuple(410.0 + i * 0.5 for i in range(6)),
             "EMA21": tuple(409.2 + i * 0.2 for i in range(6)),
             "VWAP": tuple(415.0 - i * 0.1 for i in range(6))}
    chart = CandleChart()
    chart.chart = SymbolChart("MSFT", bars, lines, (), None, (), None, Decimal("418.00"))
    chart._draw()
    chart.plt.plotsize(118, 22)
    built = chart.plt.build()
    assert "EMA9" in built and "EMA21" in built and "target 418.00" in built
    assert "409." in built  # the y axis reaches down to the slow EMA


def test_watchlist_columns_hold_every_strategy_indicator_by_name():
    """Symbols traded by different strategies have different indicators: each gets its own
    column, blank where a symbol's strategy has no such indicator."""
    from daytrader.market import Quote
    from widgets.watchlist import watchlist_row

    ema = Quote("AAPL", 190.0, indicators={"EMA9": 189.5, "EMA21": 189.0})
    orb = Quote("MSFT", 410.0, indicators={"OR high": 412.0, "OR low": None})
    names = ("EMA9", "EMA21", "OR high", "OR low")
    _, aapl = watchlist_row(ema, None, 0, names)
    _, msft = watchlist_row(orb, None, 0, names)
    assert aapl[-4:] == ("189.50", "189.00", "", "")
    assert msft[-4:] == ("", "", "412.00", ("-", "muted"))  # not ready yet: a dash


async def test_a_pane_narrower_than_its_columns_shows_whole_figures_and_scrolls_a_column_a_key():
    """At 120x40 the positions pane cannot hold all its columns: the one its edge would cut is
    left out (not "Avg" over a lone "2" of 241.01), right / left bring in one whole column, and
    the symbol stays in view while the others scroll."""
    from widgets.positions import PositionsTable

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        table = app.main_screen.query_one(PositionsTable)
        symbol = table.keys[0]
        cells = dict(zip(table.columns, table.cells(symbol), strict=True))

        def on_screen() -> tuple[list[str], list[str]]:
            return table.render_line(0).text.split(), table.render_line(1).text.split()

        def whole(columns) -> tuple[list[str], list[str]]:
            return (" ".join(c.label for c in columns).split(),
                    " ".join(v if isinstance(v, str) else v[0]
                             for c, v in cells.items() if c in columns).split())

        shown = table.shown_columns()
        assert 0 < len(shown) < len(table.columns), "the pane is narrower than its columns"
        assert on_screen() == whole(shown)
        await pilot.press("2")
        seen = list(shown)
        while table.columns[-1] not in table.shown_columns():
            first = table.shown_columns()[1]  # the first that scrolls: the symbol stays
            await pilot.press("right")
            shown = table.shown_columns()
            assert shown[0] == table.columns[0] and on_screen()[1][0] == symbol
            assert shown[1] == table.columns[table.columns.index(first) + 1]
            assert on_screen() == whole(shown)
            seen.extend(shown)
        assert set(seen) == set(table.columns), "every column comes into view whole"
        await pilot.press("left")
        assert on_screen() == whole(table.shown_columns())


@pytest.mark.parametrize("size", [(100, 40), (110, 40), (120, 40), (200, 50)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_market_countdown_is_never_cut_short(size):
    """The bar drops the closing time, then words, to keep the countdown whole ("6h2…" was
    what a 120-column bar showed), also with the longer HALTED (breaker) state beside it."""
    settings = Settings(max_daily_loss_pct=0.01, sim_seed=42)  # the first loss trips it
    app = make_app(settings=settings)
    async with app.run_test(size=size) as pilot:
        await settled(pilot)
        assert text(app.main_screen.query_one("#trading-state", Static)) == "HALTED (breaker)"
        market = app.main_screen.query_one("#market", Static)
        shown = text(market)
        assert "…" not in shown and len(shown) <= market.content_size.width, shown
        assert shown.startswith("open · ") and "5h30m" in shown
        if size[0] >= 158:
            assert shown == "open · closes in 5h30m (16:00)"


@pytest.mark.parametrize("size", [(100, 32), (110, 32), (120, 40), (200, 50)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_account_and_p_and_l_figure_is_whole_at_every_size(size):
    """At 100 columns the P&L pane beside account and risk showed "+$108" for +$108.24 and
    "$12.3" for its drawdown: under 110 columns the summary is a tab of its own instead."""
    from rich.cells import cell_len

    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settled(pilot)
        await pilot.press("6")  # the summary, wherever it is
        await pilot.pause()
        assert visible(app, "summary")
        values = list(app.main_screen.query("#summary .field-value").results(Static))
        assert len(values) >= 12
        for value in values:
            if value.display and value.region.width:
                assert cell_len(text(value)) <= value.content_size.width, \
                    (value.id, text(value), value.content_size)
        tabs = app.main_screen.query_one(PaneTabs).display
        assert tabs == (size[0] < 110), "one pane at a time only where the summary cannot fit"


async def test_a_quiet_journal_is_not_shown_as_a_stale_store(tmp_path):
    """The journal wrote nothing for minutes (a quiet market): the store is fine, so it shows no
    age that grows until the health line turns to a warning; the data feed keeps its age."""
    import re
    from datetime import datetime, timedelta

    from daytrader.clock import EXCHANGE_TZ

    app = make_app(settings=Settings(sim_seed=42, data_dir=tmp_path), journal=True)
    async with app.run_test(size=(200, 50)) as pilot:
        await settled(pilot)
        app.wall_clock = lambda: datetime.now(EXCHANGE_TZ) + timedelta(minutes=5)
        app.main_screen.query_one(StatusBar).show(app.snapshot, app.wall_clock(), None)
        health = text(app.main_screen.query_one(".health.-wide-only", Static))
        assert re.search(r"store ✓($| [a-z])", health), health
        assert re.search(r"data ✓ \d", health), health  # its age: the feed went quiet
