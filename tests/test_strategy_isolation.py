"""Several strategies at once, each on its own symbols, and the wall around each: one that
raises is disabled (shown, journaled, alerted) while the others keep trading, and its positions
keep their protection and can still be closed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
from conftest import at, flat_bars, make_engine

from daytrader.alerts import alert_for
from daytrader.api import create_app
from daytrader.models import Bar, OrderIntent, Side, Signal

D = Decimal
ROOT = Path(__file__).resolve().parent.parent


class Buys:
    """Enters long on the first bar it sees of each of its symbols."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: set[str] = set()

    def warm_up(self, bar: Bar) -> None:
        pass

    def on_bar(self, bar: Bar, position_qty: int) -> Signal | None:
        if bar.symbol in self.seen or position_qty:
            return None
        self.seen.add(bar.symbol)
        return Signal(bar.symbol, "enter_long", bar.ts, D(str(bar.close)),
                      stop_loss=D(str(bar.close - 1)), take_profit=D(str(bar.close + 2)),
                      reason=f"{self.name}_entry")


class Breaks(Buys):
    """Buys once, then raises on every bar (a bug in a user's strategy)."""

    def on_bar(self, bar: Bar, position_qty: int) -> Signal | None:
        if position_qty:
            raise ZeroDivisionError("division by zero in my indicator")
        return super().on_bar(bar, position_qty)


class BuysByMinute(Buys):
    """`Buys`, deciding a whole minute in one call (the optional `on_bars`), counting the calls;
    `fails` makes the call of that minute raise partway (after its first bar)."""

    def __init__(self, name: str, fails: str = "") -> None:
        super().__init__(name)
        self.minutes: list[str] = []
        self.fails = fails

    def on_bars(self, bars, positions):
        self.minutes.append(f"{bars[0].ts:%H:%M}")
        for i, bar in enumerate(bars):
            if i and self.minutes[-1] == self.fails:
                raise ZeroDivisionError("division by zero in my indicator")
            signal = self.on_bar(bar, positions.get(bar.symbol, 0))
            if signal is not None:
                yield signal


async def test_one_strategy_on_every_symbol_decides_whole_minutes_as_bar_by_bar(calendar):
    by_minute, by_bar = BuysByMinute("steady"), Buys("steady")
    books = []
    for strategy in (by_minute, by_bar):
        engine = make_engine(calendar, strategy=strategy)
        for hhmm in ("09:30", "09:31", "09:32"):
            await engine.on_minute(flat_bars(at(hhmm), AAA=100, BBB=50, CCC=20))
        books.append(({p.symbol: (p.qty, p.stop_loss) for p in engine.positions_view()},
                      sorted(engine.orders.intents)))
    assert by_minute.minutes == ["09:30", "09:31", "09:32"]  # one call a minute
    assert books[0] == books[1] and set(books[0][0]) == {"AAA", "BBB", "CCC"}


async def test_a_bar_of_a_symbol_no_strategy_has_is_decided_by_nobody(calendar):
    only_aaa = BuysByMinute("steady")
    engine = make_engine(calendar, strategy={"AAA": only_aaa})
    await engine.on_minute(flat_bars(at("09:30"), AAA=100, ZZZ=5))
    await engine.on_minute(flat_bars(at("09:31"), AAA=100, ZZZ=5))
    assert only_aaa.minutes == []  # the minutes went bar by bar, ZZZ's to no strategy
    assert only_aaa.seen == {"AAA"} and engine.book.symbols() == ["AAA"]


async def test_a_strategy_raising_inside_a_minute_is_disabled_and_keeps_its_protection(calendar):
    fragile = BuysByMinute("fragile", fails="09:31")
    engine = make_engine(calendar, strategy=fragile)
    await engine.on_minute(flat_bars(at("09:30"), AAA=100, BBB=50))
    await engine.on_minute(flat_bars(at("09:31"), AAA=100, BBB=50, CCC=20))  # raises after AAA
    [failure] = [e for e in engine.events if e.kind == "strategy"]
    assert ("strategy fragile failed (bars at 09:31: ZeroDivisionError: division by zero in my "
            "indicator); it is disabled") in failure.message
    await engine.on_minute(flat_bars(at("09:32"), AAA=100, BBB=50, CCC=20))
    assert fragile.minutes == ["09:30", "09:31"] and "CCC" not in fragile.seen
    assert engine.book.qty("CCC") == 0
    held = {p.symbol: p.protected for p in engine.positions_view()}
    assert held == {"AAA": True, "BBB": True}
    assert (await engine.close_position("AAA", source="test")).ok


def test_a_strategy_disabled_inside_a_minute_sends_nothing_more_and_stays_current(calendar):
    from daytrader.strategy.running import RunningStrategies

    strategy = BuysByMinute("steady")
    running = RunningStrategies(dict.fromkeys(("AAA", "BBB", "CCC"), strategy))
    deciding = running.on_bars(flat_bars(at("09:30"), AAA=100, BBB=50, CCC=20), {})
    assert next(deciding).symbol == "AAA"
    running.set_enabled("steady", False)  # from the console, while AAA's entry goes out
    assert list(deciding) == []
    assert strategy.seen == {"AAA", "BBB", "CCC"}  # the minute's bars still reached it


def test_a_minute_yielding_something_other_than_its_signals_disables_the_strategy(calendar):
    from daytrader.strategy.running import RunningStrategies

    class Wrong(BuysByMinute):
        def on_bars(self, bars, positions):
            yield Signal("ZZZ", "exit", bars[0].ts, D(1))

    failures = []
    running = RunningStrategies({"AAA": Wrong("wrong")}, lambda *f: failures.append(f[:2]))
    assert list(running.on_bars(flat_bars(at("09:30"), AAA=100), {})) == []
    assert failures == [("wrong", "bars at 09:30")]
    assert "not a Signal for one of its bars" in running.errors["wrong"]


async def test_two_strategies_trade_their_own_symbols_and_positions_say_which(calendar):
    first, second = Buys("alpha"), Buys("beta")
    engine = make_engine(calendar, strategy={"AAA": first, "BBB": first, "CCC": second})
    await engine.on_minute(flat_bars(at("09:30"), AAA=100, BBB=50, CCC=20))
    await engine.on_minute(flat_bars(at("09:31"), AAA=100, BBB=50, CCC=20))
    by_symbol = {p.symbol: p.strategy for p in engine.positions_view()}
    assert by_symbol == {"AAA": "alpha", "BBB": "alpha", "CCC": "beta"}
    intents = {i.symbol: i.strategy for i in engine.orders.intents.values()}
    assert intents == {"AAA": "alpha", "BBB": "alpha", "CCC": "beta"}
    states = {s.name: s.symbols for s in engine.snapshot().strategies}
    assert states == {"alpha": ("AAA", "BBB"), "beta": ("CCC",)}
    # A round trip is counted for the strategy whose entry opened it.
    await engine.close_position("CCC", source="test")
    await engine.on_minute(flat_bars(at("09:32"), AAA=100, BBB=50, CCC=21))
    [trade] = engine.book.trades
    assert (trade.symbol, trade.strategy) == ("CCC", "beta")


async def test_a_strategy_that_raises_is_disabled_and_the_others_keep_trading(calendar):
    broken, healthy = Breaks("fragile"), Buys("steady")
    engine = make_engine(calendar, strategy={"AAA": broken, "BBB": healthy, "CCC": healthy})
    await engine.on_minute(flat_bars(at("09:30"), AAA=100, BBB=50))
    await engine.on_minute(flat_bars(at("09:31"), AAA=100, BBB=50))  # filled; AAA's bar raises
    assert engine.book.qty("AAA") > 0 and engine.book.qty("BBB") > 0
    await engine.on_minute(flat_bars(at("09:32"), AAA=100, BBB=50, CCC=20))
    [failure] = [e for e in engine.events if e.kind == "strategy"]
    assert failure.level == "error"
    assert ("strategy fragile failed (bar of AAA at 09:31: ZeroDivisionError: division by zero "
            "in my indicator); it is disabled, the other strategies keep trading; its positions "
            "AAA keep their protection") in failure.message
    alert = alert_for(failure)
    assert alert is not None and alert.kind == "strategy_error"
    state = {s.name: s for s in engine.snapshot().strategies}
    assert not state["fragile"].enabled and "ZeroDivisionError" in state["fragile"].error
    assert state["steady"].enabled
    # The healthy strategy still trades (CCC's first bar enters), the broken one is not asked.
    await engine.on_minute(flat_bars(at("09:33"), AAA=100, BBB=50, CCC=20))
    assert engine.book.qty("CCC") > 0
    # The broken strategy's position keeps its stop and can be closed.
    aaa = next(p for p in engine.positions_view() if p.symbol == "AAA")
    assert aaa.protected and aaa.stop_loss == D("99.00")
    assert (await engine.close_position("AAA", source="test")).ok
    await engine.on_minute(flat_bars(at("09:34"), AAA=100, BBB=50, CCC=20))
    assert engine.book.qty("AAA") == 0


async def test_strategies_are_listed_and_switched_through_the_api(calendar, tmp_path):
    steady = Buys("steady")
    engine = make_engine(calendar, strategy={"AAA": steady, "BBB": Buys("other")})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(engine)),
                                 base_url="http://test") as http:
        listed = (await http.get("/strategies")).json()
        assert [(s["name"], s["symbols"], s["enabled"]) for s in listed] == [
            ("steady", ["AAA"], True), ("other", ["BBB"], True)]
        off = await http.post("/strategies/steady/disable")
        assert off.status_code == 200 and off.json()["message"] == "strategy steady disabled"
        assert (await http.post("/strategies/nope/enable")).status_code == 404
        await engine.on_minute(flat_bars(at("09:30"), AAA=100, BBB=50))
        await engine.on_minute(flat_bars(at("09:31"), AAA=100, BBB=50))
        assert engine.book.qty("AAA") == 0 and engine.book.qty("BBB") > 0  # only "other" trades
        metrics = (await http.get("/metrics")).json()
        assert set(metrics["by_strategy"]) == {"steady", "other"}
        assert (await http.post("/strategies/steady/enable")).status_code == 200
        await engine.on_minute(flat_bars(at("09:32"), AAA=100, BBB=50))
        await engine.on_minute(flat_bars(at("09:33"), AAA=100, BBB=50))
        assert engine.book.qty("AAA") > 0
    actions = [e.data.get("action") for e in engine.events if e.data.get("source") == "api"]
    assert actions == ["strategy_disable", "strategy_enable"]


async def test_a_manual_order_on_a_strategys_symbol_gets_its_bracket(calendar):
    from daytrader.strategy.opening_range import OpeningRange

    engine = make_engine(calendar, strategy=OpeningRange())
    for minute in range(16):
        ts = at("09:30").replace(minute=30 + minute)
        await engine.on_minute([Bar("AAA", ts, 100, 101, 99, 100, 1000)])
    intent = engine.preview(OrderIntent("AAA", Side.BUY, 10, ref_price=D("101.50")))
    assert intent.approved
    result = await engine.submit(OrderIntent("AAA", Side.BUY, 10))
    legs = {leg.role.value: leg.stop_price or leg.limit_price for leg in result.order.legs}
    # The strategy's own rule at the last price: stop at the range low, target 2R above.
    assert legs == {"stop_loss": D("99.00"), "take_profit": D("102.00")}


def test_a_bad_strategy_setting_stops_start_up_naming_it(tmp_path):
    import subprocess
    import sys

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        import os

        return subprocess.run([sys.executable, str(ROOT / "app.py"), "--headless", "--quiet",
                               "--no-api", *args], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "DATA_DIR": str(tmp_path), **env}, cwd=tmp_path)

    unknown = run("--strategy", "nope")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "error: bad setting: STRATEGY: unknown strategy 'nope'" in unknown.stderr
    bad = run("--strategy", "opening_range(minutes=500)")
    assert bad.returncode == 2
    assert "STRATEGY: strategy opening_range: parameter minutes: expected a whole number from " \
           "5 to 120, got '500'" in bad.stderr
    twice = run(STRATEGY_SYMBOLS="opening_range=AAPL; vwap_reversion=AAPL")
    assert twice.returncode == 2 and "AAPL is claimed twice" in twice.stderr


def test_the_example_strategy_runs_from_its_file_in_sim_replay_and_backtest(tmp_path):
    """docs/examples/donchian.py, loaded by path: a headless sim day, a replay of the bars that
    day produced, and a backtest of them, all trading through the same engine."""
    import json
    import os
    import subprocess
    import sys

    spec = f"{ROOT / 'docs' / 'examples' / 'donchian.py'}:Donchian(entry_bars=10)"
    env = {**os.environ, "DATA_DIR": str(tmp_path)}

    def app(*args: str) -> dict:
        done = subprocess.run([sys.executable, str(ROOT / "app.py"), *args], capture_output=True,
                              text=True, timeout=120, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    sim = app("--headless", "--quiet", "--no-api", "--speed", "max", "--until", "close",
              "--strategy", spec, "--json")
    assert sim["trades"] if isinstance(sim["trades"], int) else len(sim["trades"]) > 0
    from daytrader.clock import MarketCalendar
    from daytrader.data.synthetic import synthetic_frame

    calendar = MarketCalendar()
    sessions = [(s.open, s.close) for s in list(calendar.sessions_from(
        __import__("datetime").date(2026, 3, 2)))[:3]]
    path = tmp_path / "bars.parquet"
    synthetic_frame(("AAPL", "MSFT"), sessions, 5).write_parquet(path)
    replay = app("--headless", "--quiet", "--no-api", "--replay", str(path), "--speed", "max",
                 "--symbols", "AAPL,MSFT", "--strategy", spec, "--json")
    backtest = app("backtest", "--data", str(path), "--strategy", spec, "--json", "--no-plot")
    replay_trades = replay["trades"] if isinstance(replay["trades"], int) else len(replay["trades"])
    assert replay_trades > 0 and backtest["metrics"]["trades"] > 0
    sweep = app("backtest", "--data", str(path), "--strategy", spec, "--sweep",
                "entry_bars=10:30:10", "--sweep", "stop_atr=1.5,2.5", "--oos", "0.34",
                "--workers", "2", "--json")
    assert sweep["combinations"] == 6 and len(sweep["best"]) == 3
    assert all(b["out_of_sample"] is not None for b in sweep["best"])
    best = sweep["best"][0]
    assert set(best["params"]) == {"entry_bars", "stop_atr"}
    assert best["engine"]["realized"] == max((b["engine"]["realized"] for b in sweep["best"]),
                                             key=float)


def test_an_engine_sweep_is_the_same_on_one_and_two_processes(calendar):
    from datetime import date

    from daytrader.backtest import engine_sweep, strategy_combinations
    from daytrader.config import Settings
    from daytrader.data.synthetic import synthetic_bars

    sessions = [(s.open, s.close) for s in list(calendar.sessions_from(date(2026, 3, 2)))[:2]]
    bars = [b for minute in synthetic_bars(("AAPL", "MSFT"), sessions, 3) for b in minute]
    settings = Settings(symbols=("AAPL", "MSFT"))
    combos = strategy_combinations("opening_range", {"minutes": [10, 20],
                                                     "target_r": [1.0, 2.0, 9.0]})
    assert len(combos) == 4  # target_r=9 is out of its range (0.5 to 6): left out
    one = engine_sweep(bars, settings, "opening_range", combos, workers=1)
    two = engine_sweep(bars, settings, "opening_range", combos, workers=2)
    assert [(r.params, r.metrics.trades, r.final_equity) for r in one] == [
        (r.params, r.metrics.trades, r.final_equity) for r in two]
    assert len({r.final_equity for r in one}) > 1  # the parameters change the outcome
