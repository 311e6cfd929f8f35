"""Sources: every way market data and a desk's files come in, read and cleansed.

The public API is :func:`ingest` (one way in per source, module :mod:`sources._ingest`) with its
halves :func:`read` and :func:`cleanse`; the per-source modules (``lobster``, ``bitmex``,
``sp500``, ``index_daily``, ``landing``, ``desk``) hold the readers. ``sources`` sits above the
cleansing rules (``validation.cleansing``) and below ``assets``.
"""

from sources._books import book_kind, real_books, recorded_books
from sources._ingest import (
    BITMEX_BOOK,
    BITMEX_TRADES,
    SOURCES,
    Ingested,
    cleanse,
    ingest,
    landing_tables,
    parts,
    read,
    read_membership,
)
from sources._io import data_lines, read_table_file
from sources.desk import calibrate_file, load_desk_history
from sources.landing import cleanse_file
from sources.lobster import DEFAULT_LATENCY_NS, discover_lobster

__all__ = [
    "BITMEX_BOOK",
    "BITMEX_TRADES",
    "DEFAULT_LATENCY_NS",
    "SOURCES",
    "Ingested",
    "book_kind",
    "calibrate_file",
    "cleanse",
    "cleanse_file",
    "data_lines",
    "discover_lobster",
    "ingest",
    "landing_tables",
    "load_desk_history",
    "parts",
    "read",
    "read_membership",
    "read_table_file",
    "real_books",
    "recorded_books",
]
