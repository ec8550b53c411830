"""Two strategies on different symbols in the console: positions and orders say which one, and
the strategies screen (`g`) shows each with its state, parameters and today's figures and
switches one off and on."""

from __future__ import annotations

from ui_factory import make_app, settled, until

from daytrader.config import Settings
from widgets.orders import OrdersTable
from widgets.positions import PositionsTable
from widgets.strategies import StrategiesScreen

SIZE = (200, 50)
TWO = Settings(sim_seed=42, strategy="ema_cross",
               strategy_symbols="vwap_reversion(k=1.5,min_bars=5)=AAPL,MSFT")


async def test_two_strategies_run_at_once_and_the_console_shows_which_is_which():
    app = make_app(settings=TWO)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        snapshot = app.snapshot
        plan = {s.name: set(s.symbols) for s in snapshot.strategies}
        assert plan == {"vwap_reversion": {"AAPL", "MSFT"},
                        "ema_cross": {"NVDA", "AMZN", "TSLA", "META"}}
        # Both traded this session; every position and order names the strategy it serves.
        traded = {t.strategy for t in snapshot.trades} | {p.strategy for p in snapshot.positions}
        assert traded == {"vwap_reversion", "ema_cross"}, traded
        positions = app.query_one(PositionsTable)
        for p in snapshot.positions:
            expected = "vwap_reversion" if p.symbol in ("AAPL", "MSFT") else "ema_cross"
            assert p.strategy == expected
            assert positions.row_text(p.symbol).rstrip().endswith(expected)
        orders = app.query_one(OrdersTable)
        for o in (o for o in snapshot.orders if o.status.is_open):
            expected = "vwap_reversion" if o.symbol in ("AAPL", "MSFT") else "ema_cross"
            assert snapshot.order_strategies[o.id] == expected
            assert orders.row_text(o.id).rstrip().endswith(expected)


async def test_the_strategies_screen_switches_a_strategy_off_and_on():
    app = make_app(settings=TWO)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await pilot.press("g")
        screen = app.screen
        assert isinstance(screen, StrategiesScreen)
        await until(pilot, lambda: len(screen._shown) == 2, what="the rows")
        rows = {name: cells for name, cells in screen._shown}
        assert rows["vwap_reversion"][1] == "enabled"
        assert rows["vwap_reversion"][2] == "AAPL,MSFT"
        assert "k=1.5" in rows["vwap_reversion"][6] and "min_bars=5" in rows["vwap_reversion"][6]
        today = app.snapshot.strategy_metrics["vwap_reversion"]
        assert rows["vwap_reversion"][3] == str(today.trades)
        first = screen._shown[0][0]
        await pilot.press("space")
        await until(pilot, lambda: not app.host.engine.strategies.enabled[first],
                    what="the strategy disabled")
        await until(pilot, lambda: dict(screen._shown)[first][1] == "disabled",
                    what="the screen to say so")
        assert any(f"strategy {first} disabled by console" in e.message
                   for e in app.host.engine.events)
        await pilot.press("space")
        await until(pilot, lambda: app.host.engine.strategies.enabled[first],
                    what="enabled again")
        await pilot.press("escape")
        assert not isinstance(app.screen, StrategiesScreen)
