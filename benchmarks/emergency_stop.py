"""Emergency stop on Alpaca (paper) against the local Alpaca-compatible server from tests/.

    python benchmarks/emergency_stop.py [--positions 50] [--latency-ms 20] [--runs 5]
                                        [--slow-cancels]

50 positions, each with a bracket's stop-loss and take-profit working (100 open orders), and
20 ms of injected latency on every REST request. The real alpaca-py clients go through our adapter.
Reported per run: time to trading disabled, to all cancel/close requests issued (arrival of the
last of Alpaca's one-call cancel-all and close-all at the server) and answered, and to verified
flat (positions and open orders both empty at the broker), and the REST requests the stop used
(at the server, and the most in any 60 s against Alpaca's 200 per minute). Market orders fill at
once at the last price, as on Alpaca paper. `--slow-cancels`: Alpaca confirms cancels 0.2 s later
and leaves legs out of its listings, so the close-all is refused and the close routine takes over.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_alpaca import FakeAlpaca, eventually, flat_minute, paper_engine  # noqa: E402

from daytrader.clock import EXCHANGE_TZ, MarketCalendar  # noqa: E402
from daytrader.models import OrderIntent, Side  # noqa: E402

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=EXCHANGE_TZ)


async def one_run(calendar: MarketCalendar, positions: int, latency: float,
                  slow_cancels: bool) -> dict[str, float]:
    symbols = tuple(f"E{i:02d}" for i in range(positions))
    venue = {"cancel_delay": 0.2, "legs_in_flat_listing": False} if slow_cancels else {}
    server = FakeAlpaca(symbols, calendar, T0, cash=Decimal("100000000"), instant_fills=True,
                        **venue)
    server.start()
    try:
        server.push_bars(flat_minute(symbols, T0, 30.0))
        engine = paper_engine(server, calendar)
        await engine.broker.start()
        await engine.sync("benchmark")
        await asyncio.gather(*(engine.submit(OrderIntent(
            s, Side.BUY, 100, ref_price=Decimal("30"), stop_loss=Decimal("28"),
            take_profit=Decimal("35")), "benchmark") for s in symbols))
        await eventually(lambda: len(engine.open_orders) == 2 * positions, what="setup")
        assert len(server.open_orders()) == 2 * positions
        server.latency = latency
        server.arrivals.clear()
        t0 = time.perf_counter()
        report = await engine.emergency_stop("benchmark", flat_timeout=30)
        stops = [t for t, what in server.arrivals if what in ("DELETE /v2/orders",
                                                               "DELETE /v2/positions")]
        assert report.flat, report.message
        assert server.positions() == {} and server.open_orders() == []
        await engine.broker.stop()
        return {"disabled_ms": report.disabled_after_ms,
                "issued_ms": (max(stops) - t0) * 1000, "requests_ms": report.requests_after_ms,
                "flat_ms": report.elapsed_ms, "canceled": report.canceled,
                "closes": report.close_orders, "requests": len(server.arrivals),
                "per_minute": server.max_requests_in(60), "engine_requests": report.broker_requests}
    finally:
        server.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--positions", type=int, default=50)
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--slow-cancels", action="store_true")
    args = p.parse_args()
    logging.disable(logging.CRITICAL)  # the engine's own log lines; the figures follow
    calendar = MarketCalendar()
    runs = [asyncio.run(one_run(calendar, args.positions, args.latency_ms / 1000,
                                args.slow_cancels)) for _ in range(args.runs)]
    first = runs[0]
    print(f"emergency stop: {args.positions} positions, {first['canceled']} open orders canceled, "
          f"{first['closes']} closes, {args.latency_ms:g} ms latency per request, "
          f"{args.runs} runs (median / worst)")
    for key, label in (("disabled_ms", "trading disabled"),
                       ("issued_ms", "all cancel/close requests issued (at the server)"),
                       ("requests_ms", "all cancel/close requests answered"),
                       ("flat_ms", "verified flat (positions and open orders empty)")):
        values = [r[key] for r in runs]
        print(f"  {label:<50} {statistics.median(values):9.3f} ms  {max(values):9.3f} ms")
    for key, label in (("requests", "REST requests the stop used (at the server)"),
                       ("per_minute", "most requests in any 60 s (Alpaca allows 200)")):
        values = [r[key] for r in runs]
        print(f"  {label:<50} {statistics.median(values):9.0f}     {max(values):9.0f}")


if __name__ == "__main__":
    main()
