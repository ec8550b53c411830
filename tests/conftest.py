"""Shared test helpers: a sim engine on a frozen session, and minute bars written by hand."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from daytrader.broker.sim import SimExchange
from daytrader.clock import EXCHANGE_TZ, MarketCalendar, SimClock
from daytrader.config import Settings
from daytrader.engine import Engine
from daytrader.models import Bar, Signal
from daytrader.strategy import NoReadings

TRADING_DAY = date(2026, 11, 24)  # a Tuesday, a full session


def at(hhmm: str, day: date = TRADING_DAY) -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=EXCHANGE_TZ)


def flat_bars(ts: datetime, **closes: float) -> list[Bar]:
    """One minute of bars that open, trade and close at one price each."""
    return [Bar(symbol, ts, p, p, p, p, 1000) for symbol, p in closes.items()]


def bar(symbol: str, ts: datetime, o: float, h: float, low: float, c: float) -> Bar:
    return Bar(symbol, ts, o, h, low, c, 1000)


class Idle(NoReadings):
    """A strategy that never signals, so a test decides every order itself."""

    name = "idle"

    def warm_up(self, bar: Bar) -> None:
        pass

    def on_bar(self, bar: Bar, position_qty: int) -> Signal | None:
        return None


@pytest.fixture(scope="session")
def calendar() -> MarketCalendar:
    return MarketCalendar()


def make_engine(calendar: MarketCalendar, start: datetime | None = None, strategy=None,
                **overrides) -> Engine:
    settings = Settings(symbols=("AAA", "BBB", "CCC", "DDD", "EEE", "FFF"),
                        sim_slippage_bps=0.0, starting_cash=Decimal("100000"))
    if overrides:
        settings = settings.with_overrides(**overrides)
    clock = SimClock(start or at("09:30"))
    broker = SimExchange(settings.symbols, calendar, clock, cash=settings.starting_cash,
                         slippage_bps=settings.sim_slippage_bps,
                         commission_per_share=settings.sim_commission_per_share)
    return Engine(settings, broker, calendar, clock, strategy=strategy or Idle())
