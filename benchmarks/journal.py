"""Journal appends per second (batched, WAL) and replication throughput to a local PostgreSQL.

    python benchmarks/journal.py [--records 20000]

Starts a throw-away PostgreSQL (system binaries, as the tests do) with supabase_schema.sql behind
the tests' PostgREST-compatible server, and replicates with the real supabase-py client.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from daytrader.clock import EXCHANGE_TZ  # noqa: E402
from daytrader.models import Fill, Order, OrderRole, OrderStatus, OrderType, OrderUpdate, Side  # noqa: E402
from daytrader.store.journal import Journal  # noqa: E402
from daytrader.store.replicator import Replicator, make_client  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    n = parser.parse_args().records
    tmp = Path(tempfile.mkdtemp(prefix="dt-bench-"))
    t0 = datetime(2026, 11, 24, 9, 30, tzinfo=EXCHANGE_TZ)

    journal = Journal(tmp / "journal.sqlite")
    journal.start_session("sim", "bench", "bench", ("AAA",))
    started = time.perf_counter()
    for i in range(n):
        journal.equity(t0 + timedelta(seconds=i), "minute", Decimal("100000.00"),
                       Decimal("100000.00"), "ENABLED")
    journal.commit()
    batched = n / (time.perf_counter() - started)

    waits = []
    for i in range(n // 4):  # broker events: each one committed at once (no fsync, WAL)
        order = Order(f"o{i}", f"c{i}", "AAA", Side.BUY, 10, OrderType.MARKET, OrderStatus.FILLED,
                      t0, OrderRole.ENTRY, filled_qty=10, filled_avg_price=Decimal("100.00"))
        fill = Fill(f"f{i}", order.id, order.client_order_id, "AAA", Side.BUY, 10,
                    Decimal("100.00"), Decimal("0"), t0, OrderRole.ENTRY)
        s = time.perf_counter()
        journal.order_update(t0, OrderUpdate("fill", order, fill))
        waits.append(time.perf_counter() - s)
    journal.close()
    events = len(waits) / sum(waits)
    print(f"journal appends, batched (equity points, WAL, synchronous=NORMAL): {batched:,.0f}/s")
    print(f"journal broker events committed one by one (event + fill + outbox): {events:,.0f}/s, "
          f"p50 {statistics.median(waits) * 1e6:.0f} us, p99 "
          f"{sorted(waits)[int(len(waits) * 0.99)] * 1e6:.0f} us")

    from pg_server import LocalPostgres
    from postgrest_server import FakePostgrest

    pg = LocalPostgres()
    if not pg.available:
        print("replication: skipped (no PostgreSQL here)")
        return
    pg.start()
    try:
        pg.load_supabase_schema()
        api = FakePostgrest(pg.dsn, {"service-key": "service_role"}).start()
        replicator = Replicator(tmp / "journal.sqlite", make_client(api.url, "service-key"),
                                batch_size=500)
        with replicator.conn as conn:
            backlog = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]
        started = time.perf_counter()
        status = replicator.drain(600)
        elapsed = time.perf_counter() - started
        print(f"replication to local PostgreSQL via supabase-py (batches of 500 upserts): "
              f"{backlog:,} records in {elapsed:.2f}s = {backlog / elapsed:,.0f} records/s, "
              f"{replicator.requests} requests; {status.detail}")
        api.stop()
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
