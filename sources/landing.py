"""A landing folder: the user's own Parquet/CSV files for any contract table.

Naming convention (``<table>`` is one of ``validation.contracts.USER_TABLES``: quotes, depth, trades,
daily_bars, membership, parent_orders, child_fills, labels; ``<ext>`` is ``parquet``, ``csv`` or
``csv.gz``)::

    landing/
        quotes.parquet            # <table>.<ext>
        trades_2020-03-10.csv     # <table>_<anything>.<ext>   (one more part of trades)
        child_fills/              # <table>/<anything>.<ext>   (parts of child_fills)
            part-0.parquet
            part-1.csv

A table may come in any number of parts, in any mix of these forms and formats; parts are read in
sorted path order. Names starting with ``.`` or ``_`` are ignored, as Spark and pyarrow datasets do
(``.DS_Store``, ``_SUCCESS``). **Any other name is an error**: :func:`discover_landing` raises
``ContractError`` listing every file it does not recognise, so a misspelt ``qoutes.csv`` cannot be
skipped silently; rename it or move it out of the folder.

Each file is read with :func:`sources._io.read_table_file` (CSV columns as strings, typed by the
contract), its columns are checked by name, and its rows are checked against the contract: bad rows
go to quarantine with ``source`` = the file and ``row`` = the 0-based position of the data row in
that file. Parts of one table are combined into one ``CleanseResult``, then checked together once
more for rules that span parts (a duplicate ``order_id`` in two files of ``parent_orders``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from sources._io import read_table_file, suffix
from validation.cleansing import CleanseConfig, cleanse_market
from validation.contracts import USER_TABLES, ContractError, check_columns, split_valid
from validation.quarantine import (
    CleanseResult,
    cleanse_contract,
    concat_quarantine,
    failures_to_quarantine,
)

_BY_LENGTH = sorted(USER_TABLES, key=len, reverse=True)


def _ignored(path: Path) -> bool:
    return path.name.startswith((".", "_"))


def _table_of(path: Path) -> str | None:
    """The table a top-level file belongs to (``<table>.<ext>`` or ``<table>_*.<ext>``), else None."""
    ext = suffix(path)
    if ext is None:
        return None
    stem = path.name[: -len(ext)]
    return next((t for t in _BY_LENGTH if stem == t or stem.startswith(f"{t}_")), None)


def discover_landing(folder: str | Path) -> dict[str, list[Path]]:
    """Map each table found in ``folder`` to its files, following the naming convention above.

    Parameters
    ----------
    folder : str or pathlib.Path
        The landing folder.

    Returns
    -------
    dict of str to list of pathlib.Path
        Tables in ``USER_TABLES`` order, each with its parts in sorted path order; tables with no
        file are absent (an empty folder gives ``{}``).

    Raises
    ------
    validation.contracts.ContractError
        When ``folder`` is not a directory, or holds names that follow no convention (all listed).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ContractError(f"{folder}: landing folder not found (or not a directory)")
    found: dict[str, list[Path]] = {}
    unknown: list[Path] = []
    for entry in sorted(p for p in folder.iterdir() if not _ignored(p)):
        if entry.is_dir() and entry.name in USER_TABLES:
            for part in sorted(p for p in entry.iterdir() if not _ignored(p)):
                if part.is_file() and suffix(part) is not None:
                    found.setdefault(entry.name, []).append(part)
                else:
                    unknown.append(part)
        elif entry.is_file() and (table := _table_of(entry)) is not None:
            found.setdefault(table, []).append(entry)
        else:
            unknown.append(entry)
    if unknown:
        names = ", ".join(str(p.relative_to(folder)) for p in unknown)
        raise ContractError(
            f"{folder}: landing folder holds names that match no table: {names}; "
            f"name files <table>.parquet|csv|csv.gz, <table>_<anything>.<ext> or <table>/<file>.<ext> "
            f"with <table> one of {', '.join(USER_TABLES)} (or start the name with '.' or '_' "
            "to leave it out)"
        )
    return {t: sorted(found[t]) for t in USER_TABLES if t in found}


def _combine(table: str, parts: list[tuple[Path, pd.DataFrame, CleanseResult]]) -> CleanseResult:
    """One result for a table read in several parts; rows that break a rule across parts (e.g. a
    duplicate key in two files) move from clean to quarantine, under their own file and row."""
    clean = pd.concat([r.clean for _, _, r in parts], ignore_index=True)
    # where each clean row came from: its part, and its row in that part (the rows not quarantined)
    kept = [np.setdiff1d(np.arange(len(raw)), r.quarantine["row"]) for _, raw, r in parts]
    part_of = np.repeat(np.arange(len(parts)), [len(k) for k in kept])
    row_of = np.concatenate(kept)
    clean, failures = split_valid(table, clean, source=f"{table} ({len(parts)} files)")
    extra = [
        failures_to_quarantine(
            table,
            str(path),
            raw,
            [replace(f, row=int(row_of[f.row])) for f in failures if part_of[f.row] == i],
        )
        for i, (path, raw, _) in enumerate(parts)
    ]
    quarantine = concat_quarantine([r.quarantine for _, _, r in parts] + extra)
    if len(quarantine):
        order = {str(p): i for i, (p, _, _) in enumerate(parts)}
        quarantine = (
            quarantine.assign(_part=quarantine["source"].map(order))
            .sort_values(["_part", "row"], kind="stable", ignore_index=True)
            .drop(columns="_part")
        )
    return CleanseResult(
        table=table,
        source=", ".join(str(p) for p, _, _ in parts),
        rows_in=sum(r.rows_in for _, _, r in parts),
        clean=clean,
        quarantine=quarantine,
    )


MARKET_TABLES = ("quotes", "trades", "depth")


def _cleanse(table: str, raw: pd.DataFrame, source: str, config: CleanseConfig) -> CleanseResult:
    if table in MARKET_TABLES:
        check_columns(table, raw, source=source)  # strict, as the contract: no unknown columns
        return cleanse_market(table, raw, source=source, config=config)
    return cleanse_contract(table, raw, source=source)


def ingest_landing(
    folder: str | Path,
    *,
    tables: list[str] | None = None,
    config: CleanseConfig | None = None,
) -> dict[str, CleanseResult]:
    """Read every file of a landing folder and check it against its table's contract.

    Parameters
    ----------
    folder : str or pathlib.Path
        The landing folder (naming convention in the module docstring).
    tables : list of str, optional
        Only these tables (default: every table found).
    config : CleanseConfig, optional
        Market-data rules for quotes, trades and depth (default ``CleanseConfig()``: XNYS
        sessions; pass ``CleanseConfig(calendar=None)`` for a 24-hour venue). Other tables are
        checked against their contract only.

    Returns
    -------
    dict of str to CleanseResult
        One result per table found. ``source`` is the file (parts joined by ", "); each quarantine
        row names its own file and its 0-based data-row position there. Every result reconciles:
        ``rows_in == len(clean) + len(quarantine)``.

    Raises
    ------
    validation.contracts.ContractError
        Naming the file: unknown names in the folder, a file that cannot be read, or a file whose
        columns are missing or unknown for its table (nothing is ingested then).
    """
    config = config or CleanseConfig()
    results: dict[str, CleanseResult] = {}
    for table, paths in discover_landing(folder).items():
        if tables is not None and table not in tables:
            continue
        parts = []
        for path in paths:
            raw = read_table_file(path)
            parts.append((path, raw, _cleanse(table, raw, str(path), config)))
        results[table] = parts[0][2] if len(parts) == 1 else _combine(table, parts)
    return results
