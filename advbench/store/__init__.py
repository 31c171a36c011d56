"""SQLite result store: runs, per-sample rows, resume bookkeeping. Plain Python, no torch."""

from advbench.store.sqlite import DEFAULT_DB, Store
from advbench.store.summary import RunSummary, summarize

__all__ = ["DEFAULT_DB", "RunSummary", "Store", "summarize"]
