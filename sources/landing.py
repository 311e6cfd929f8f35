"""A landing folder: the user's own Parquet/CSV files for any contract table.

Naming convention (``<table>`` is one of ``validation.contracts.USER_TABLES``: quotes, depth, trades,
daily_bars, membership, parent_orders, child_fills, labels, news; ``<ext>`` is ``parquet``, ``csv`` or
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
that file. Parts of one table are checked **together**, as one file would be: a row repeated in two
parts is a duplicate, a part that goes back in time is out of order, and feed gaps are found over
the whole table; each quarantine row still names its own file and row.

A name that follows the convention but is not a readable regular file (a broken symbolic link, a
link loop, a folder) is an error naming it; a folder with no table file at all is an error too.
"""

from __future__ import annotations

import re
import stat
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from sources._io import read_table_file, suffix
from validation.cleansing import CleanseConfig, cleanse_market
from validation.contracts import USER_TABLES, ContractError, check_columns
from validation.quarantine import CleanseResult, cleanse_contract

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


def _readable(path: Path) -> None:
    """A name that follows the convention must be a regular file (after links)."""
    try:
        st = path.stat()
    except OSError as exc:  # a broken link, a link loop, no permission
        kind = "a symbolic link that leads nowhere (broken, or a loop)" if path.is_symlink() \
            else "unreadable"
        raise ContractError(f"{path}: named as a table file but {kind}: "
                            f"{exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ContractError(f"{path}: named as a table file but not a regular file "
                            "(a folder, a pipe or a device)")


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
                if suffix(part) is not None:
                    _readable(part)
                    found.setdefault(entry.name, []).append(part)
                else:
                    unknown.append(part)
        elif (table := _table_of(entry)) is not None:
            _readable(entry)
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


_ROW_REF = re.compile(r"\brow (\d+)")


def _combine(table: str, parts: list[tuple[Path, pd.DataFrame]], config: CleanseConfig
             ) -> CleanseResult:
    """One result for a table delivered in several parts: the parts' rows, in sorted path order,
    checked **together** by the same rules as one file (duplicates and ordering across parts,
    outages of the whole), then each quarantine row pointed back to its own file and row."""
    for path, raw in parts:
        check_columns(table, raw, source=str(path))
    sizes = np.array([len(raw) for _, raw in parts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    names = np.array([str(p) for p, _ in parts], dtype=object)
    raw = pd.concat([r.reset_index(drop=True) for _, r in parts], ignore_index=True)
    source = ", ".join(names)
    res = _cleanse(table, raw, source, config)
    q = res.quarantine
    if len(q):
        glob = q["row"].to_numpy(dtype=np.int64)
        part = np.searchsorted(offsets, glob, side="right") - 1

        def where(m: re.Match[str]) -> str:
            g = int(m.group(1))
            k = int(np.searchsorted(offsets, g, side="right") - 1)
            return f"{names[k]} row {g - offsets[k]}"

        q = q.assign(source=pd.array(names[part].astype(str), dtype=q["source"].dtype),
                     row=glob - offsets[part],
                     detail=pd.array([_ROW_REF.sub(where, d) for d in q["detail"]],
                                     dtype=q["detail"].dtype))
    return replace(res, source=source, quarantine=q)


MARKET_TABLES = ("quotes", "trades", "depth")


def _cleanse(table: str, raw: pd.DataFrame, source: str, config: CleanseConfig) -> CleanseResult:
    if table in MARKET_TABLES:
        check_columns(table, raw, source=source)  # strict, as the contract: no unknown columns
        return cleanse_market(table, raw, source=source, config=config)
    return cleanse_contract(table, raw, source=source, epoch_unit=config.epoch_unit)


def cleanse_file(table: str, path: str | Path, *, config: CleanseConfig | None = None
                 ) -> tuple[pd.DataFrame, CleanseResult]:
    """Read one file of ``table`` and check it by the rules :func:`ingest_landing` applies (the
    market rules for quotes, trades and depth; the contract for the others): what
    ``bestex validate`` reports. Returns the rows as read and their :class:`CleanseResult`."""
    path = Path(path)
    if table not in USER_TABLES:
        raise ContractError(f"unknown table {table!r}; choose one of: {', '.join(USER_TABLES)}")
    raw = read_table_file(path)
    return raw, _cleanse(table, raw, str(path), config or CleanseConfig())


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
    found = discover_landing(folder)
    if not found:
        raise ContractError(
            f"{folder}: the landing folder holds no table files; name files "
            f"<table>.parquet|csv|csv.gz with <table> one of {', '.join(USER_TABLES)}")
    if tables is not None:
        unknown = [t for t in tables if t not in found]
        if unknown:
            raise ContractError(f"{folder}: no files for table(s) {unknown}; it holds "
                                f"{', '.join(found)}")
    results: dict[str, CleanseResult] = {}
    for table, paths in found.items():
        if tables is not None and table not in tables:
            continue
        if len(paths) == 1:
            results[table] = cleanse_file(table, paths[0], config=config)[1]
        else:
            results[table] = _combine(table, [(p, read_table_file(p)) for p in paths], config)
    return results
