"""SQLite result store: runs, per-sample rows, resume bookkeeping, summaries. Plain Python, no torch."""

from advbench.store.certificates import (
    RADII,
    REPORTED_RADII,
    CertifySummary,
    summarize_certificates,
)
from advbench.store.sqlite import DEFAULT_DB, Store
from advbench.store.summary import RunSummary, summarize

__all__ = [
    "DEFAULT_DB",
    "RADII",
    "REPORTED_RADII",
    "CertifySummary",
    "RunSummary",
    "Store",
    "summarize",
    "summarize_certificates",
]
