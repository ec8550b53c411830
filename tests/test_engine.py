"""The engine end to end on the sim exchange: breaker, emergency stop, exits, manual orders."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

from conftest import Idle, at, bar, flat_bars, make_engine

from daytrader.config import Secret
from daytrader.models import OrderIntent, OrderRequest, OrderStatus, OrderType, Side, TradingState
from daytrader.orders import SubmitStatus
from daytrader.strategy.ema_crossover import CrossoverParams, EmaCrossover


def buy(symbol: str, qty: int, stop: str | None = None, take: str | None = None) -> OrderIntent:
    return OrderIntent(symbol, Side.BUY, qty, OrderType.MARKET,
                       stop_loss=Decimal(stop) if stop else None,
                       take_profit=Decimal(take) if take else None)


async def test_breaker_trips_on_the_update_that_crosses_five_percent(calendar):
    engine = make_engine(calendar, risk_per_trade_pct=100.0)
    await engine.on_minute(flat_bars(at("09:30"), AAA=100, BBB=50))
    result = await engine.submit(buy("AAA", 500, stop="1.00"))
    assert result.status is SubmitStatus.SUBMITTED, result.message
    await engine.on_minute(flat_bars(at("09:31"), AAA=100, BBB=50))  # fills at 100
    assert engine.book.qty("AAA") == 500

    await engine.on_minute(flat_bars(at("09:32"), AAA=90.02, BBB=50))  # -4,990: 4.99%
    assert engine.state is TradingState.ENABLED
    await engine.on_minute(flat_bars(at("09:33"), AAA=90.00, BBB=50))  # -5,000: 5.00%
    assert engine.state is TradingState.HALTED
    assert len(engine.breaker.trips) == 1
    assert engine.breaker.trips[0].ts == at("09:34")
    await engine.on_minute(flat_bars(at("09:34"), AAA=95.00, BBB=50))  # recovers: stays tripped
    assert engine.state is TradingState.HALTED and len(engine.breaker.trips) == 1

    refused = await engine.submit(buy("BBB", 10, stop="49.00"))
    assert refused.status is SubmitStatus.RISK_REJECTED
    assert refused.decision.failed.name == "circuit_breaker"
    assert "circuit breaker tripped" in refused.message
    assert engine.rejections_by_check["circuit_breaker"] == 1

    closed = await engine.close_position("AAA")  # closing is never blocked
    assert closed.ok, closed.message
    await engine.on_minute(flat_bars(at("09:35"), AAA=95.00, BBB=50))
    assert engine.book.qty("AAA") == 0
    assert engine.book.trades[-1].exit_reason == "manual_close"


async def test_breaker_clears_on_the_next_trading_day_and_by_reset(calendar):
    engine = make_engine(calendar, risk_per_trade_pct=100.0)
    await engine.on_minute(flat_bars(at("09:30"), AAA=100))
    await engine.submit(buy("AAA", 500, stop="1.00"))
    await engine.on_minute(flat_bars(at("09:31"), AAA=100))
    await engine.on_minute(flat_bars(at("09:32"), AAA=80))
    assert engine.state is TradingState.HALTED
    assert engine.reset_breaker("test").ok
    assert engine.state is TradingState.ENABLED
    assert engine.breaker.baseline == engine.book.equity()

    await engine.on_minute(flat_bars(at("09:33"), AAA=70))  # 12.5% down from the reset
    assert engine.state is TradingState.HALTED
    next_day = date(2026, 11, 25)
    engine.clock.set(at("09:30", next_day))
    await engine.on_minute(flat_bars(at("09:30", next_day), AAA=70))
    assert engine.state is TradingState.ENABLED
    assert engine.start_of_day_equity == engine.book.equity()


async def test_emergency_stop_disables_first_then_cancels_then_closes_and_ends_flat(calendar):
    engine = make_engine(calendar)
    await engine.on_minute(flat_bars(at("09:30"), AAA=100, BBB=50, CCC=20))
    for symbol, qty, stop, take in (("AAA", 50, "99.00", "104.00"), ("BBB", 100, "49.50", "52.00")):
        assert (await engine.submit(buy(symbol, qty, stop, take))).ok
    await engine.on_minute(flat_bars(at("09:31"), AAA=100, BBB=50, CCC=20))
    resting = OrderIntent("CCC", Side.BUY, 10, OrderType.LIMIT, limit_price=Decimal("19.00"),
                          stop_loss=Decimal("18.50"))
    assert (await engine.submit(resting)).ok
    assert len(engine.book) == 2 and len(engine.broker.orders()) == 6  # 4 legs + entry + leg

    sequence: list[tuple[str, TradingState]] = []
    engine.listeners.append(lambda e: sequence.append((f"log:{e.kind}", engine.state)))
    inner = engine.apply_update
    engine.broker.set_listener(lambda u: (sequence.append((u.event, engine.state)), inner(u)))

    stop = asyncio.create_task(engine.emergency_stop("test", flat_timeout=5))
    await asyncio.sleep(0.1)  # the closes wait for the next bar, like market orders do
    assert not stop.done()
    await engine.on_minute(flat_bars(at("09:32"), AAA=101, BBB=49, CCC=20))
    report = await stop

    assert report.flat, report.message
    assert report.canceled >= 5 and report.close_orders == 2
    assert engine.state is TradingState.DISABLED
    assert engine.broker.orders() == [] and engine.book.symbols() == []
    events = [name for name, _ in sequence]
    first_cancel, first_new, first_fill = (events.index(x) for x in ("canceled", "new", "fill"))
    assert events[0] == "log:control"  # "trading disabled" is the first thing that happens
    assert all(state is TradingState.DISABLED for _, state in sequence)
    assert first_cancel < first_new < first_fill
    assert {t.exit_reason for t in engine.book.trades} == {"emergency_stop"}
    assert "EMERGENCY STOP complete" in report.message


async def test_emergency_stop_reports_not_flat_when_the_closes_cannot_fill(calendar):
    engine = make_engine(calendar)
    await engine.on_minute(flat_bars(at("09:30"), AAA=100))
    await engine.submit(buy("AAA", 10, "99.00", "105.00"))
    await engine.on_minute(flat_bars(at("09:31"), AAA=100))
    report = await engine.emergency_stop("test", flat_timeout=0.2)  # no next bar arrives
    assert not report.flat
    assert report.positions_left == ("AAA",)
    assert "NOT FLAT" in report.message
    assert engine.state is TradingState.DISABLED


async def test_disabled_trading_refuses_entries_but_closes_positions(calendar):
    engine = make_engine(calendar)
    await engine.on_minute(flat_bars(at("09:30"), AAA=100))
    await engine.submit(buy("AAA", 10, "99.00", "105.00"))
    await engine.on_minute(flat_bars(at("09:31"), AAA=100))
    engine.disable("test")
    refused = await engine.submit(buy("AAA", 10, "99.00", "105.00"))
    assert refused.decision.failed.name == "trading_enabled"
    assert (await engine.close_position("AAA")).ok
    await engine.on_minute(flat_bars(at("09:32"), AAA=100))
    assert engine.book.qty("AAA") == 0


async def test_orders_outside_market_hours_are_refused_by_the_market_open_check(calendar):
    engine = make_engine(calendar, start=at("10:00", date(2026, 11, 26)))  # Thanksgiving
    engine.last_prices["AAA"] = 100.0
    refused = await engine.submit(buy("AAA", 10, "99.00", "105.00"))
    assert refused.status is SubmitStatus.RISK_REJECTED
    assert refused.decision.failed.name == "market_open"
    assert "holiday" in refused.decision.failed.reason


async def test_manual_entry_without_a_stop_gets_the_strategy_bracket(calendar):
    params = CrossoverParams(fast=2, slow=3, atr_period=2)
    engine = make_engine(calendar, strategy=EmaCrossover(params))
    for minute, price in enumerate((100, 100.5, 100.2)):
        await engine.on_minute([bar("AAA", at(f"09:3{minute}"), price, price + 0.5, price - 0.5,
                                    price)])
    atr = engine.strategy.indicators("AAA")[2]
    preview = engine.preview(buy("AAA", 10))
    assert preview.approved, preview.reason
    result = await engine.submit(buy("AAA", 10))
    assert result.ok
    legs = [o for o in engine.broker.orders() if o.parent_id == result.order.id]
    stop = next(o.stop_price for o in legs if o.stop_price is not None)
    assert abs(float(stop) - (100.2 - 2 * atr)) < 0.01


async def test_flatten_before_the_close_exits_and_blocks_new_entries(calendar):
    engine = make_engine(calendar, start=at("15:50"))
    await engine.on_minute(flat_bars(at("15:50"), AAA=100))
    await engine.submit(buy("AAA", 10, "99.00", "105.00"))
    await engine.on_minute(flat_bars(at("15:51"), AAA=100))
    assert engine.book.qty("AAA") == 10
    await engine.on_minute(flat_bars(at("15:54"), AAA=100))  # completes at 15:55: flatten time
    await engine.on_minute(flat_bars(at("15:55"), AAA=100.5))
    assert engine.book.qty("AAA") == 0
    assert engine.book.trades[-1].exit_reason == "flatten_before_close"
    assert all(o.status is not OrderStatus.NEW for o in engine.known_orders.values())


async def test_flatten_time_follows_early_closes(calendar):
    early = date(2026, 11, 27)  # closes 13:00
    engine = make_engine(calendar, start=at("12:50", early))
    await engine.on_minute(flat_bars(at("12:50", early), AAA=100))
    await engine.submit(buy("AAA", 10, "99.00", "105.00"))
    await engine.on_minute(flat_bars(at("12:51", early), AAA=100))
    await engine.on_minute(flat_bars(at("12:54", early), AAA=100))
    await engine.on_minute(flat_bars(at("12:55", early), AAA=100))
    assert engine.book.qty("AAA") == 0
    assert engine.book.trades[-1].exit_reason == "flatten_before_close"


async def test_strategy_trades_a_crafted_cross_with_its_bracket(calendar):
    params = CrossoverParams(fast=2, slow=4, atr_period=3)
    engine = make_engine(calendar, strategy=EmaCrossover(params))
    prices = [100, 99, 98, 97, 96, 97, 99]  # falls, then turns up: the cross comes on 99
    for minute, price in enumerate(prices):
        await engine.on_minute([bar("AAA", at(f"09:{30 + minute}"), price, price + 0.5,
                                    price - 0.5, price)])
    entries = [r for r in engine.submitted if not r.intent.reduce_only]
    assert len(entries) == 1
    intent = entries[0].intent
    atr = engine.strategy.indicators("AAA")[2]
    assert intent.ref_price == Decimal("99.00")
    assert intent.stop_loss == Decimal(str(round(99 - 2 * atr, 2)))
    assert intent.take_profit == Decimal(str(round(99 + 4 * atr, 2)))
    # Next bar: fills at the open; the one after runs through the take-profit.
    await engine.on_minute([bar("AAA", at("09:37"), 99.5, 100, 99.4, 99.9)])
    take = float(intent.take_profit)
    await engine.on_minute([bar("AAA", at("09:38"), 100, take + 1, 99.9, take + 0.5)])
    trade = engine.book.trades[-1]
    assert trade.exit_reason == "take_profit"
    assert trade.entry_price == Decimal("99.50") and trade.exit_price == intent.take_profit
    assert trade.pnl == (intent.take_profit - Decimal("99.50")) * intent.qty
    # The log as a trader reads it: the leg's name in words, the P&L in dollars.
    log = [e.message for e in engine.events]
    assert f"FILL SELL {intent.qty} AAA @ {intent.take_profit} (take-profit)" in log, log
    assert f"closed AAA {intent.qty} @ {intent.take_profit}: take_profit, P&L " \
           f"+${trade.pnl:,.2f}" in log, log


async def test_entries_are_sized_to_one_percent_risk_and_pass_the_check(calendar):
    params = CrossoverParams(fast=2, slow=4, atr_period=3)
    engine = make_engine(calendar, strategy=EmaCrossover(params))
    for minute, price in enumerate([100, 99, 98, 97, 96, 97, 99]):
        await engine.on_minute([bar("AAA", at(f"09:{30 + minute}"), price, price + 0.05,
                                    price - 0.05, price)])
    intent = engine.submitted[-1].intent
    risk = (intent.ref_price - intent.stop_loss) * intent.qty
    assert risk <= Decimal("1000")  # 1% of 100,000
    assert engine.submitted[-1].status is SubmitStatus.SUBMITTED


async def test_sync_adopts_the_brokers_positions(calendar):
    engine = make_engine(calendar)
    await engine.on_minute(flat_bars(at("09:30"), AAA=100))
    engine.broker.submit(OrderRequest("outside-1", "AAA", Side.BUY, 7, OrderType.MARKET))
    engine.broker.set_listener(lambda u: None)  # the engine misses these fills
    await engine.on_minute(flat_bars(at("09:31"), AAA=100))
    assert engine.book.qty("AAA") == 0
    result = await engine.sync("test")
    assert result.ok and "positions changed" in result.message
    assert engine.book.qty("AAA") == 7


async def test_idle_strategy_places_nothing(calendar):
    engine = make_engine(calendar, strategy=Idle())
    for minute in range(5):
        await engine.on_minute(flat_bars(at(f"09:3{minute}"), AAA=100 + minute))
    assert engine.submitted == []


async def test_live_entries_are_sized_to_the_live_capital_allocation(calendar):
    params = CrossoverParams(fast=2, slow=4, atr_period=3)
    live = {"mode": "live", "alpaca_api_key": Secret("k"), "alpaca_secret_key": Secret("s"),
            "live_max_capital": Decimal("5000")}
    sized = {}
    for name, changes in (("sim", {}), ("live", live)):
        engine = make_engine(calendar, strategy=EmaCrossover(params))
        engine.settings = engine.settings.with_overrides(**changes)
        for minute, price in enumerate([100, 99, 98, 97, 96, 97, 99]):
            await engine.on_minute([bar("AAA", at(f"09:{30 + minute}"), price, price + 0.5,
                                        price - 0.5, price)])
        sized[name] = engine.submitted[-1].intent.qty
    # $5,000 shared by 5 position slots: at most $1,000 of a $99 stock
    assert sized["live"] == 10
    assert sized["sim"] > 100


async def _crossover_engine(calendar, **overrides):
    params = CrossoverParams(fast=2, slow=3, atr_period=2)
    engine = make_engine(calendar, strategy=EmaCrossover(params), **overrides)
    for minute, price in enumerate((100, 100.5, 100.2)):
        await engine.on_minute([bar("AAA", at(f"09:3{minute}"), price, price + 0.5, price - 0.5,
                                    price)])
    return engine


async def test_a_manual_limit_entry_gets_the_same_bracket_rule_as_a_market_one(calendar):
    engine = await _crossover_engine(calendar)
    atr = engine.strategy.indicators("AAA")[2]
    limit = OrderIntent("AAA", Side.BUY, 10, OrderType.LIMIT, limit_price=Decimal("99.50"))
    result = await engine.submit(limit)
    assert result.ok, result.message
    # Around its own entry price, the limit, not the last price.
    assert abs(float(result.intent.stop_loss) - (99.50 - 2 * atr)) < 0.01
    assert abs(float(result.intent.take_profit) - (99.50 + 4 * atr)) < 0.01


async def test_a_manual_order_that_reduces_a_position_gets_no_bracket(calendar):
    engine = await _crossover_engine(calendar)
    assert (await engine.submit(buy("AAA", 10))).ok
    await engine.on_minute([bar("AAA", at("09:33"), 100.2, 100.4, 100.0, 100.2)])
    assert engine.book.qty("AAA") == 10
    for leg in [o for o in engine.open_orders.values() if o.symbol == "AAA"]:
        assert (await engine.cancel_order(leg.id, "test")).ok  # the legs hold the shares
    await engine.on_minute([bar("AAA", at("09:34"), 100.2, 100.4, 100.0, 100.2)])
    sell = await engine.submit(OrderIntent("AAA", Side.SELL, 4, OrderType.MARKET))
    assert sell.ok, sell.message  # a bracket on a reducing order would be refused by the broker
    assert sell.intent.stop_loss is None and sell.intent.take_profit is None


async def test_snapshot_quotes_each_symbol_against_its_open_with_the_strategy_readings(calendar):
    engine = await _crossover_engine(calendar)
    snap = engine.snapshot()
    quotes = {q.symbol: q for q in snap.quotes}
    assert list(quotes) == list(engine.settings.symbols)
    aaa = quotes["AAA"]
    assert (aaa.open, aaa.last, aaa.bars, aaa.volume) == (100, 100.2, 3, 3000)
    assert abs(aaa.change - 0.2) < 1e-9 and abs(aaa.change_pct - 0.2) < 1e-9
    fast, slow, atr = engine.strategy.indicators("AAA")
    assert aaa.indicators == {"EMA2": fast, "EMA3": slow, "ATR2": atr}
    assert aaa.next_signal == engine.strategy.next_signal("AAA", 0)
    assert aaa.signal_distance == aaa.next_signal.trigger - 100.2
    assert quotes["BBB"].last is None and quotes["BBB"].change is None  # no bar yet


async def test_symbol_chart_holds_the_session_bars_lines_vwap_fills_and_working_levels(calendar):
    engine = await _crossover_engine(calendar)
    result = await engine.submit(buy("AAA", 10, stop="98.00", take="104.00"))
    await engine.on_minute([bar("AAA", at("09:33"), 100.2, 100.4, 100.0, 100.3)])
    chart = engine.symbol_chart("aaa")
    assert [b.close for b in chart.bars] == [100, 100.5, 100.2, 100.3]
    assert set(chart.lines) == {"EMA2", "EMA3", "VWAP"}
    assert all(len(v) == 4 for v in chart.lines.values())
    assert chart.lines["EMA3"][-1] == engine.strategy.indicators("AAA")[1]
    typical = [(b.high + b.low + b.close) / 3 for b in chart.bars]
    assert abs(chart.lines["VWAP"][-1] - sum(typical) / 4) < 1e-9  # equal volumes
    assert [f.order_id for f in chart.fills] == [result.order.id]
    assert (chart.stop_loss, chart.take_profit) == (Decimal("98.00"), Decimal("104.00"))
    assert chart.position is not None and chart.position.qty == 10


async def test_emergency_halt_reads_e_stop_until_trading_is_enabled_again(calendar):
    engine = make_engine(calendar)
    await engine.on_minute(flat_bars(at("09:30"), AAA=100))
    engine.disable("test", emergency=True)
    assert engine.snapshot().emergency_stop and engine.state is TradingState.DISABLED
    report = await engine.emergency_stop("test", flat_timeout=0.1)
    assert report.flat and engine.snapshot().emergency_stop
    # The flatten after the halt is not logged as a second EMERGENCY STOP.
    assert sum(e.message.startswith("EMERGENCY STOP by") for e in engine.events) == 1
    engine.enable("test")
    assert not engine.snapshot().emergency_stop
    engine.disable("test")
    assert not engine.snapshot().emergency_stop  # a plain disable is not an emergency stop


async def test_loss_to_breaker_is_the_money_left_before_the_daily_limit(calendar):
    engine = make_engine(calendar, risk_per_trade_pct=100.0)
    await engine.on_minute(flat_bars(at("09:30"), AAA=100))
    assert engine.snapshot().loss_to_breaker == Decimal("5000.00")
    await engine.submit(buy("AAA", 500, stop="1.00"))
    await engine.on_minute(flat_bars(at("09:31"), AAA=100))
    await engine.on_minute(flat_bars(at("09:32"), AAA=96))  # -2,000
    assert engine.snapshot().loss_to_breaker == Decimal("3000.00")
    await engine.on_minute(flat_bars(at("09:33"), AAA=80))
    assert engine.snapshot().loss_to_breaker == Decimal("0")


async def test_orders_are_found_by_the_short_id_everyone_shows(calendar):
    engine = make_engine(calendar)
    await engine.on_minute(flat_bars(at("09:30"), AAA=100))
    limit = OrderIntent("AAA", Side.BUY, 5, OrderType.LIMIT, limit_price=Decimal("90.00"))
    order = (await engine.submit(limit)).order
    assert engine.find_order(order.short_id).id == order.id
    assert engine.find_order(order.client_order_id).id == order.id
    result = await engine.cancel_order(order.short_id, "test")
    assert result.ok and order.short_id in result.message
    assert any(f"[{order.short_id}]" in e.message for e in engine.events)
    assert not any(order.client_order_id in e.message for e in engine.events)


async def test_a_broker_rejection_names_the_order_by_the_short_id_not_its_uuid(calendar):
    from daytrader.models import Order, OrderUpdate

    engine = make_engine(calendar)
    await engine.on_minute(flat_bars(at("09:30"), AAA=100))
    order = Order("61e69015-8549-4bfd-b9c3-01e75de8ab5b", "dt82a763-entry-2cb06bd34429b0161e1f",
                  "AAA", Side.BUY, 5, OrderType.MARKET, OrderStatus.REJECTED, at("09:31"),
                  reject_reason="insufficient buying power")
    engine.apply_update(OrderUpdate("rejected", order))  # as Alpaca's trade stream says it
    assert engine.events[-1].message == "order 61e69015 AAA rejected: insufficient buying power"


async def test_ticket_defaults_are_the_strategy_bracket_and_the_risk_per_trade_size(calendar):
    engine = await _crossover_engine(calendar)
    atr = engine.strategy.indicators("AAA")[2]
    t = engine.ticket("aaa", Side.BUY)
    assert (t.symbol, t.last, t.entry) == ("AAA", Decimal("100.20"), Decimal("100.20"))
    assert (t.stop_loss, t.take_profit) == engine.strategy.bracket("AAA", Side.BUY, t.entry)
    assert abs(float(t.stop_loss) - (100.2 - 2 * atr)) < 0.01
    # 1% of equity to the stop, capped by the buying power shared among the 5 free slots: the
    # strategy's own sizing, and the order passes the risk checks.
    by_risk = int(t.equity * Decimal("0.01") / (t.entry - t.stop_loss))
    by_cash = int(Decimal(100_000) / 5 / t.entry)
    assert t.qty == min(by_risk, by_cash) > 0
    intent = OrderIntent("AAA", Side.BUY, t.qty, stop_loss=t.stop_loss, take_profit=t.take_profit)
    assert engine.preview(intent).approved
    at_limit = engine.ticket("AAA", Side.BUY, Decimal("99.00"))
    assert at_limit.entry == Decimal("99.00") and at_limit.stop_loss < Decimal("99.00")
    assert engine.ticket("BBB", Side.BUY).qty == 0  # no price, no ATR yet: nothing to size


async def test_ticket_against_a_held_position_is_a_close_without_a_bracket(calendar):
    engine = await _crossover_engine(calendar)
    assert (await engine.submit(buy("AAA", 10))).ok
    await engine.on_minute([bar("AAA", at("09:33"), 100.2, 100.4, 100.0, 100.2)])
    t = engine.ticket("AAA", Side.SELL)
    assert (t.qty, t.stop_loss, t.take_profit, t.position_qty) == (10, None, None, 10)
