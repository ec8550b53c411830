"""Puts the store under an engine: opens the journal, resumes a crashed session, starts the
replicator when Supabase is configured, and reports the store's health to the engine."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from datetime import timedelta

from daytrader import __version__
from daytrader.config import Settings, SettingsError
from daytrader.models import Bar, Health
from daytrader.store import recovery
from daytrader.store.journal import JOURNAL_FILE, Journal
from daytrader.store.replicator import ReplicationStatus, Replicator, make_client

log = logging.getLogger(__name__)
MINUTE = timedelta(minutes=1)


@dataclass
class Store:
    journal: Journal
    replicator: Replicator | None
    recovered: recovery.Recovered | None

    def close(self, reason: str = "stopped", drain_timeout: float = 10.0) -> StoreSummary:
        """Stops the session cleanly: commits, marks it stopped, then sends what the outbox
        holds (up to `drain_timeout` seconds) and says what is left."""
        self.journal.close(reason)
        status = None
        if self.replicator is not None:
            status = self.replicator.stop(drain_timeout)
        return StoreSummary(str(self.journal.path), self.journal.set_aside, status)


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """How the store ended a run: for the run's summary (`--json`) and its last log line."""

    journal: str
    set_aside: int
    replication: ReplicationStatus | None  # None: Supabase not configured

    def as_dict(self) -> dict:
        r = self.replication
        return {"journal": self.journal, "journal_set_aside": self.set_aside,
                "replication": {"configured": False} if r is None else {
                    "configured": True, "state": r.state, "backlog": r.backlog, "sent": r.sent,
                    "rejected": r.rejected, "stopped": r.stopped, "last_error": r.last_error}}


def store_health(journal: Journal, replication: ReplicationStatus | None, *,
                 starting: bool = False) -> Health:
    """The store's line in health: replication's state (when configured) and any journal record
    that had to be set aside (not ok: someone should look at `store status`)."""
    if replication is not None:
        ok, detail = replication.state != "failing", replication.detail
    else:
        ok, detail = True, f"journal {journal.path}; Supabase " + (
            "starting" if starting else "not configured")
    if journal.set_aside:
        ok = False
        detail += (f"; journal: {journal.set_aside} record(s) set aside (last: "
                   f"{journal.last_set_aside}); see store status")
    # No time last seen: the store is not a feed that goes quiet when it fails (its state and
    # backlog say how it is), and an age growing between writes read as stale in the console.
    return Health("store", ok, detail)


def journal_path(settings: Settings):
    return settings.data_dir / JOURNAL_FILE


def replicator_for(settings: Settings, path, **kwargs) -> Replicator | None:
    if not settings.supabase_url:
        return None
    key = settings.supabase_service_key or settings.supabase_key
    try:
        client = make_client(settings.supabase_url, key.reveal())
    except Exception as exc:  # supabase-py checks the URL and key when the client is made
        raise SettingsError(f"SUPABASE_URL / SUPABASE_SERVICE_KEY: supabase-py refused them "
                            f"({type(exc).__name__}: {exc}); expected the project URL and its "
                            "service role key") from None
    return Replicator(path, client, **kwargs)


def attach(engine, settings: Settings, source: str, feed):
    """Journals `engine` from now on. Returns (store, feed): when a crashed session is resumed,
    the feed skips the minutes that session already finished (they only warm the strategy up)."""
    journal = Journal(journal_path(settings))
    resume = recovery.find_resumable(journal.conn, settings.mode, source, settings.symbols)
    recovered = None
    if resume:
        recovered = recovery.load(journal.conn, resume)
        feed, last_prices = _skip_done(feed, recovered)
        engine.restore(recovered, last_prices)
    info = journal.start_session(settings.mode, __version__, source, settings.symbols,
                                 resume=resume)
    recovery.STARTED_HERE.add(info.session_id)
    if settings.mode in ("sim", "backtest"):
        # Each sim session is its own account: its client order ids carry the account's tag.
        engine.orders.prefix = f"dt{info.session_id[:6]}"
    engine.journal = journal
    replicator = replicator_for(settings, journal.path)
    if settings.supabase_url and not settings.supabase_service_key:
        log.warning("SUPABASE_SERVICE_KEY is not set: replicating with SUPABASE_KEY, which RLS "
                    "should refuse")

    def report(status: ReplicationStatus | None = None) -> None:
        engine.health["store"] = store_health(journal, status or (
            replicator.status if replicator is not None else None))

    journal.on_set_aside = report
    engine.health["store"] = store_health(journal, None, starting=replicator is not None)
    if replicator is not None:
        replicator.on_status = report
        replicator.start()
    if recovered is not None:
        engine.record("warning", "engine", recovered.summary())
    return Store(journal, replicator, recovered), feed


def _skip_done(feed, rec: recovery.Recovered):
    """The minutes the crashed session finished become warm-up; returns the new feed and the
    last price of each symbol in them."""
    from daytrader.data.feed import SimFeed

    if rec.last_minute is None:
        return feed, {}
    skipped: list[Bar] = []
    minutes = iter(feed.minutes)
    first_left: list[list[Bar]] = []
    for bars in minutes:
        if bars and bars[0].ts + MINUTE > rec.last_minute:
            first_left.append(bars)
            break
        skipped.extend(bars)
    last_prices = {bar.symbol: bar.close for bar in skipped}
    return SimFeed(feed.start, [*feed.warmup, *skipped],
                   itertools.chain(first_left, minutes)), last_prices
