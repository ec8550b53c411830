"""How long bad order input can hold the engine's loop: the shared order checks and the API's
body parsing on the worst inputs we know (issue 13's probes), in microseconds.

    python benchmarks/order_input.py

The control API shares the engine's event loop, so every figure here is time nothing else
(bars, health, an emergency stop) can run. The aim is under 1 ms each.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daytrader.api import ApiError, json_object  # noqa: E402
from daytrader.order_input import check_order  # noqa: E402

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META")
FIELD_PROBES = {
    "qty=1e308": {"qty": "1e308"}, "qty=1E+500000": {"qty": "1E+500000"},
    "qty=sNaN": {"qty": "sNaN"}, "qty JSON 1e400": {"qty": float("inf")},
    "qty int of 4,000 digits": {"qty": 10 ** 4000}, "qty text of 2 MB": {"qty": "9" * 2_000_000},
    "symbol of 2 MB": {"symbol": "A" * 2_000_000}, "limit_price=1e27": {
        "type": "limit", "limit_price": "1e27"},
    "a good limit order": {"type": "limit", "limit_price": "189.50"},
}
BODIES = {
    "4 KB nested 2,000 deep": b"[" * 2000 + b"]" * 2000,
    "4 KB object of nested objects": b'{"a":' * 700 + b"1" + b"}" * 700,
    "4 KB flat order with a long reason": b'{"symbol":"AAPL","side":"buy","qty":1,"reason":"'
    + b"x" * 3900 + b'"}',
}


def timed(fn, repeat: int = 500) -> tuple[float, float]:
    """(median, 99th percentile) in microseconds; the maximum on a shared box is scheduling."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(samples), statistics.quantiles(samples, n=100)[98]


def main() -> None:
    print(f"{'order check (check_order)':<40} {'median us':>10} {'p99 us':>10}")
    for name, fields in FIELD_PROBES.items():
        values = {"symbol": "AAPL", "side": "buy", "qty": "1", **fields}
        median, worst = timed(lambda v=values: check_order(v, SYMBOLS))
        print(f"  {name:<38} {median:>10.1f} {worst:>10.1f}")
    print(f"{'JSON body (json_object, after the 4 KB cap)':<40} {'median us':>10} {'p99 us':>10}")
    for name, body in BODIES.items():
        def parse(b=body):
            with contextlib.suppress(ApiError):  # refusing is the point; its cost is measured
                json_object(b)
        median, worst = timed(parse)
        print(f"  {name:<38} {median:>10.1f} {worst:>10.1f}")


if __name__ == "__main__":
    main()
