"""Index-level daily history (S&P 500, NASDAQ Composite) and VIX, from the ``arch`` wheel files.

* :func:`read_index_daily` turns ``arch_sp500.csv.gz`` / ``arch_nasdaq.csv.gz``
  (``Date,Open,High,Low,Close,Adj Close,Volume``, ``M/D/YYYY``) into the ``daily_bars`` contract
  with the same vectorized checks as the stock bars (:func:`sources.sp500.cleanse_daily_bars`);
  ``Adj Close`` is not used (an index has no corporate actions: it equals ``Close``).
* :func:`read_vix` turns ``arch_vix.csv.gz`` (``Date,vix``) into ``date, vix, available_at``;
  its 46 ``.`` rows (FRED's missing marker, all on exchange holidays) are quarantined.

Symbols: ``SPX`` for the S&P 500 and ``IXIC`` for the NASDAQ file, which is the NASDAQ
*Composite* (its 2018-12-31 close, 6635.28, is the Composite's; the NASDAQ-100 closed near 6330).

Columns are found by name (case and surrounding spaces ignored), never by position.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sources.sp500 import cleanse_daily_bars, session_close_utc
from validation.contracts import ContractError
from validation.quarantine import CleanseResult, quarantine_frame

INDEX_FILES: Final = {
    "SPX": "index_daily/arch_sp500.csv.gz",
    "IXIC": "index_daily/arch_nasdaq.csv.gz",
}
VIX_FILE: Final = "index_daily/arch_vix.csv.gz"
VIX_CLOSE_DELAY: Final = pd.Timedelta(minutes=15)  # Cboe publishes the VIX close at 16:15 ET

_INDEX_COLUMNS: Final = {"date": "date", "open": "open", "high": "high", "low": "low",
                         "close": "close", "volume": "volume"}


def _read_named(path: Path, required: list[str]) -> pa.Table:
    """Read with inferred types (a column with a stray word comes back as text, handled by
    ``_numbers``); lower-case the names; raise when a required column is missing."""
    try:
        tbl = pacsv.read_csv(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ContractError(f"{path}: cannot read as CSV ({exc})") from exc
    names = [c.strip().lower() for c in tbl.column_names]
    tbl = tbl.rename_columns(names)
    missing = [c for c in required if c not in names]
    if missing:
        raise ContractError(f"{path}: lacks columns {missing} (has {tbl.column_names}); "
                            f"columns are matched by name, case-insensitively")
    return tbl


def _dates(col: pa.ChunkedArray) -> tuple[pd.Series, pd.Series]:
    """Parse ``M/D/YYYY`` (or ISO) text to naive ``datetime64[ns]``; NaT where neither fits."""
    text = pc.cast(col, pa.string())
    mdy = pc.strptime(text, format="%m/%d/%Y", unit="s", error_is_null=True)
    iso = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
    date = pc.cast(pc.coalesce(mdy, iso), pa.timestamp("ns")).to_pandas()
    return date, text.to_pandas()


def _numbers(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """float64 values and the mask of cells whose text was not a number."""
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        return col.to_numpy().astype("float64"), np.zeros(len(col), dtype=bool)
    s = col.to_pandas().astype("str")
    num = pd.to_numeric(s, errors="coerce")
    bad = (s.notna() & (s.str.strip() != "") & num.isna()).to_numpy()
    return num.to_numpy(dtype="float64"), bad


def read_index_daily(path: str | Path, symbol: str) -> CleanseResult:
    """Read one index history file into the ``daily_bars`` contract.

    Parameters
    ----------
    path : str or pathlib.Path
        ``Date,Open,High,Low,Close,Adj Close,Volume`` (gzip allowed), dates ``M/D/YYYY``.
    symbol : str
        The symbol to give the rows, e.g. ``"SPX"`` (see ``INDEX_FILES``).

    Returns
    -------
    validation.quarantine.CleanseResult
        ``available_at`` is the XNYS session close (UTC); rows on non-sessions, unparsable rows
        and rows breaking the price range are quarantined with file, row and rule.

    Raises
    ------
    validation.contracts.ContractError
        When the file cannot be read or lacks a column.
    """
    path = Path(path)
    tbl = _read_named(path, list(_INDEX_COLUMNS))
    date, text = _dates(tbl["date"])
    raw = pd.DataFrame({"date": date, "date_text": text,
                        "symbol": pd.array([symbol] * tbl.num_rows, dtype="str")})
    failures = {}
    for col in ("open", "high", "low", "close", "volume"):
        raw[col], failures[col] = _numbers(tbl[col])
    return cleanse_daily_bars(raw, source=str(path), type_failures=failures)


def read_vix(path: str | Path) -> CleanseResult:
    """Read the VIX history into ``date, vix, available_at`` (table name ``"vix"``).

    ``available_at`` is the XNYS session close plus 15 minutes (Cboe computes the VIX close at
    16:15 ET, 13:15 ET on early-close days), in UTC.

    Parameters
    ----------
    path : str or pathlib.Path
        ``Date,vix`` (gzip allowed), dates ``M/D/YYYY``, CRLF line ends.

    Returns
    -------
    validation.quarantine.CleanseResult
        ``clean`` has one row per session, sorted by date. Rows quarantined, first rule wins:
        ``vix: missing ('.')`` (the FRED missing marker; in this file every such row is an
        exchange holiday), ``type: date must be datetime64[ns]``, ``type: vix must be float64``,
        ``date is an XNYS session``, ``vix: greater_than(0)``.

    Raises
    ------
    validation.contracts.ContractError
        When the file cannot be read or lacks a column.
    """
    path = Path(path)
    tbl = _read_named(path, ["date", "vix"])
    date, text = _dates(tbl["date"])
    vix_text = pc.cast(tbl["vix"], pa.string()).to_pandas()
    missing = (vix_text.isna() | vix_text.str.strip().isin(["", "."])).to_numpy()
    vix, bad_num = _numbers(tbl["vix"])
    close = session_close_utc(date)
    checks = (
        ("vix: missing ('.')", missing),
        ("type: date must be datetime64[ns]", date.isna().to_numpy()),
        ("type: vix must be float64", bad_num & ~missing),
        ("date is an XNYS session", date.notna().to_numpy() & close.isna().to_numpy()),
        ("vix: greater_than(0)", ~np.isnan(vix) & ~(vix > 0)),
    )
    rule = np.full(len(vix), "", dtype=object)
    detail = np.full(len(vix), "", dtype=object)
    for name, mask in reversed(checks):  # first rule in the list wins; detail lists them all
        rule[mask] = name
        detail[mask] = np.where(detail[mask] == "", name, name + "; " + detail[mask].astype(str))
    bad = rule != ""
    raw = pd.DataFrame({"date": text, "vix": vix_text})
    quarantine = quarantine_frame("vix", str(path), raw, np.flatnonzero(bad), rule[bad], detail[bad])
    clean = pd.DataFrame({"date": date, "vix": vix, "available_at": close + VIX_CLOSE_DELAY})
    clean = clean[~bad].sort_values("date", ignore_index=True)
    return CleanseResult(table="vix", source=str(path), rows_in=len(vix), clean=clean,
                         quarantine=quarantine)
