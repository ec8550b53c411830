"""Persistence: the SQLite journal (the embedded default) and the Supabase replicator (outbox)."""

from daytrader.store.journal import JOURNAL_FILE, Journal, JournalError, NullJournal
from daytrader.store.replicator import ReplicationStatus, Replicator
from daytrader.store.wiring import Store, StoreSummary, attach

__all__ = ["JOURNAL_FILE", "Journal", "JournalError", "NullJournal", "ReplicationStatus",
           "Replicator", "Store", "StoreSummary", "attach"]
