"""Survivorship-free S&P 500 daily bars and S&P 500 index membership.

Two readers turn the shared real data (see ``data/README.md``) into contract tables:

* :func:`read_daily_bars` reads the teddykoker tarball **in memory** (nothing is extracted), one
  CSV per ticker, columns by name, into ``daily_bars``; contract failures go to quarantine.
* :func:`read_membership` reads the fja05680 spans into ``membership`` and classifies why each
  ended span ended from the Reason text of the change history (javierdejesusda).

Decisions (documented here once)
--------------------------------
* ``available_at`` is the XNYS session close of ``date`` in UTC (``exchange_calendars``; early
  closes such as 2013-11-29 at 13:00 ET are honoured).
* A bar dated on a day that is not an XNYS session has no session close: it is **quarantined**
  under the rule ``date is an XNYS session`` rather than given an invented close.
* Volume 0 is valid (``volume >= 0``); the count is reported (``zero_volume_rows``).
* A second bar for the same (date, symbol) is quarantined under ``unique (date, symbol)``.
* Membership spans are half-open ``[start_date, end_date)``: in the source an added ticker's
  ``start_date`` and the ticker it replaces' ``end_date`` are both the change date, so an
  inclusive end would count both names on that day (see :mod:`validation.universe`).
"""

from __future__ import annotations

import io
import json
import tarfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Final

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sources._sp500_membership import classify_exit_reason, exit_reason_coverage, read_membership
from validation.contracts import ContractError, empty
from validation.quarantine import CleanseResult

__all__ = ["BAR_COLUMNS", "CALENDAR", "DAILY_BARS_TARBALL", "MEMBERSHIP_CHANGES", "MEMBERSHIP_SPANS",
           "DailyBarsResult", "classify_exit_reason", "cleanse_daily_bars", "exit_reason_coverage",
           "parse_daily_bars", "read_daily_bars", "read_membership", "read_tar_members",
           "session_close_utc"]

DAILY_BARS_TARBALL: Final = "daily_bars/teddykoker_survivorship_free_sp500_daily_csv.tar.xz"
MEMBERSHIP_SPANS: Final = "sp500_membership/fja05680_sp500_ticker_start_end.csv"
MEMBERSHIP_CHANGES: Final = "sp500_membership/javierdejesusda_sp500_historical_changes.csv"

BAR_COLUMNS: Final = ("date", "open", "high", "low", "close", "volume")
PRICE_COLUMNS: Final = ("open", "high", "low", "close")
NOT_BARS: Final = frozenset({"tickers.csv"})  # the tarball's ticker list, not a ticker
CALENDAR: Final = "XNYS"

RULE_SESSION: Final = "date is an XNYS session"
RULE_RANGE: Final = "low <= min(open, close) and high >= max(open, close)"
RULE_KNOWN: Final = "available_at >= date"
RULE_UNIQUE: Final = "unique (date, symbol)"


# --------------------------------------------------------------------------- calendar
@lru_cache(maxsize=4)
def _closes(start_year: int, end_year: int) -> pd.Series:
    with warnings.catch_warnings():  # exchange_calendars 4.13 calls Series.values on tz-aware data
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        cal = xcals.get_calendar(CALENDAR, start=f"{start_year}-01-01", end=f"{end_year}-12-31")
    return cal.schedule["close"]


def session_close_utc(dates: pd.Series | pd.DatetimeIndex) -> pd.Series:
    """The XNYS session close (UTC) of each date; ``NaT`` where the date is not a session.

    Parameters
    ----------
    dates : pandas.Series or pandas.DatetimeIndex
        Naive dates (midnight); ``NaT`` stays ``NaT``.

    Returns
    -------
    pandas.Series
        ``datetime64[ns, UTC]``, aligned with ``dates`` (positionally, default index).

    Examples
    --------
    >>> session_close_utc(pd.Series(pd.to_datetime(["2013-11-29", "2013-12-02", "2013-12-01"])))
    0   2013-11-29 18:00:00+00:00
    1   2013-12-02 21:00:00+00:00
    2                         NaT
    Name: available_at, dtype: datetime64[ns, UTC]
    """
    return pd.Series(pd.DatetimeIndex(_session_close_ns(dates)).tz_localize("UTC"),
                     name="available_at")


def _session_close_ns(dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Session close as naive-UTC ``datetime64[ns]`` (``NaT`` off-session); vectorized."""
    d = pd.DatetimeIndex(dates)
    if d.tz is not None:
        raise ValueError(f"dates must be naive calendar dates, got tz={d.tz}")
    d = d.as_unit("ns")
    out = np.full(len(d), np.datetime64("NaT", "ns"))
    ok = ~d.isna()
    if ok.any():
        inv, uniq = pd.factorize(d.asi8[ok])  # hash, not sort: few distinct dates, many rows
        u = pd.DatetimeIndex(uniq.astype("datetime64[ns]"))
        closes = _closes(int(u.year.min()), int(u.year.max()))
        looked = closes.reindex(u).dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
        out[ok] = looked[inv]
    return out


# --------------------------------------------------------------------------- contract checks
@dataclass(frozen=True)
class DailyBarsResult:
    """Daily bars read from many files, cleansed, with the per-symbol span of available data.

    Attributes
    ----------
    cleanse : CleanseResult
        ``clean`` (``daily_bars`` contract), ``quarantine`` and ``rows_in`` of the whole read.
    data_spans : pandas.DataFrame
        One row per symbol with clean rows: ``symbol, first_date, last_date, rows``. These dates
        say when data is *available*, not when a name was an index member.
    zero_volume_rows : int
        Rows read with ``volume == 0``: valid (``volume >= 0``), reported; a few may still be
        quarantined for another rule (two such rows are dated Good Friday 2017).
    files : int
        Number of source files (tickers) read.
    """

    cleanse: CleanseResult
    data_spans: pd.DataFrame
    zero_volume_rows: int
    files: int

    @property
    def clean(self) -> pd.DataFrame:
        """Rows meeting the ``daily_bars`` contract."""
        return self.cleanse.clean

    @property
    def quarantine(self) -> pd.DataFrame:
        """One row per rejected source row."""
        return self.cleanse.quarantine

    @property
    def rows_in(self) -> int:
        """Rows read from all files."""
        return self.cleanse.rows_in

    @property
    def reconciles(self) -> bool:
        """``rows_in == clean + quarantined``."""
        return self.cleanse.reconciles

    def summary(self) -> dict[str, object]:
        """The cleanse summary plus files, symbols and the zero-volume count."""
        return {**self.cleanse.summary(), "files": self.files,
                "symbols": len(self.data_spans), "zero_volume_rows": self.zero_volume_rows}


def cleanse_daily_bars(
    raw: pd.DataFrame,
    *,
    source: str,
    row_source: np.ndarray | pd.Categorical | None = None,
    row: np.ndarray | None = None,
    type_failures: Mapping[str, np.ndarray] | None = None,
) -> CleanseResult:
    """Vectorized ``daily_bars`` contract check; each failing row is quarantined once.

    Same rules (and rule names) as ``validation.quarantine.cleanse_contract("daily_bars", ...)``
    plus ``date is an XNYS session`` and ``unique (date, symbol)``; ``available_at`` is derived
    here from ``date``.

    Parameters
    ----------
    raw : pandas.DataFrame
        ``date`` (``datetime64[ns]``, ``NaT`` where the text did not parse), ``date_text`` (the
        date as read), ``symbol`` and the float64 columns ``open, high, low, close, volume``.
    source : str
        The source of the whole table (``CleanseResult.source``).
    row_source : numpy.ndarray or pandas.Categorical, optional
        Per row, the file it came from; default ``source``.
    row : numpy.ndarray, optional
        Per row, its 0-based data-row position in that file; default the position in ``raw``.
    type_failures : mapping of str to numpy.ndarray of bool, optional
        Per numeric column, the rows whose text was not a number (they hold NaN in ``raw``).

    Returns
    -------
    CleanseResult
        ``rows_in == len(clean) + len(quarantine)``.
    """
    raw = raw.reset_index(drop=True)
    n = len(raw)
    type_failures = dict(type_failures or {})
    date = raw["date"].to_numpy(dtype="datetime64[ns]")
    available_at = _session_close_ns(raw["date"])  # naive UTC, NaT off-session
    checks: list[tuple[str, np.ndarray, str | None]] = []  # rule, failing mask, column for "got"
    checks.append(("type: date must be datetime64[ns]", np.isnat(date), "date_text"))
    for col in (*PRICE_COLUMNS, "volume"):
        v = raw[col].to_numpy(dtype="float64", na_value=np.nan)
        bad_type = np.asarray(type_failures.get(col, np.zeros(n, bool)))
        checks.append((f"type: {col} must be float64", bad_type, None))
        checks.append((f"{col}: not_nullable", np.isnan(v) & ~bad_type, col))
        rule = "greater_than_or_equal_to(0)" if col == "volume" else "greater_than(0)"
        with np.errstate(invalid="ignore"):
            checks.append((f"{col}: {rule}", ~np.isnan(v) & ~(v >= 0 if col == "volume" else v > 0), col))
    sym = raw["symbol"].astype("str")
    checks.append(("symbol: str_length(1, None)", (sym.isna() | (sym.str.len() == 0)).to_numpy(), None))
    checks.append((RULE_SESSION, ~np.isnat(date) & np.isnat(available_at), "date_text"))
    o, h, lo, c = (raw[k].to_numpy(dtype="float64", na_value=np.nan) for k in PRICE_COLUMNS)
    tol = 1e-6 * np.abs(c)
    with np.errstate(invalid="ignore"):
        in_range = (lo <= np.fmin(o, c) + tol) & (h >= np.fmax(o, c) - tol)
    finite = ~(np.isnan(o) | np.isnan(h) | np.isnan(lo) | np.isnan(c))
    checks.append((RULE_RANGE, finite & ~in_range, None))
    checks.append((RULE_KNOWN, ~np.isnat(available_at) & (available_at < date), None))
    sym_code = pd.factorize(sym)[0].astype(np.int64)
    day = np.where(np.isnat(date), -1, date.astype("datetime64[D]").astype(np.int64))
    key = sym_code * (1 << 24) + day
    if n < 2 or bool((np.diff(key) > 0).all()):  # files sorted by date: no hashing needed
        dup = np.zeros(n, dtype=bool)
    else:
        dup = pd.Series(key).duplicated().to_numpy() & ~np.isnat(date)
    checks.append((RULE_UNIQUE, dup, None))

    bad = np.zeros(n, dtype=bool)
    for _, mask, _ in checks:
        bad |= mask
    clean = raw.loc[~bad, ["date", "symbol", *PRICE_COLUMNS, "volume"]].copy()
    clean["symbol"] = clean["symbol"].astype("str")
    clean["available_at"] = pd.DatetimeIndex(available_at[~bad]).tz_localize("UTC")
    clean = clean.reset_index(drop=True)

    q_rows = np.flatnonzero(bad)
    if len(q_rows) == 0:
        quarantine = empty("quarantine")
    else:
        src = np.full(n, source, dtype=object) if row_source is None else row_source
        pos = np.arange(n) if row is None else np.asarray(row)
        rules, details = [], []
        record_cols = [c for c in ("date_text", "symbol", *PRICE_COLUMNS, "volume") if c in raw]
        for i in q_rows:
            failed = [(r, col) for r, m, col in checks if m[i]]
            rules.append(failed[0][0])
            details.append("; ".join(
                r + (f" (got {raw.at[i, col]!r})" if col is not None else "") for r, col in failed))
        records = [json.dumps({k: (None if pd.isna(v) else v) for k, v in rec.items()}, default=str)
                   for rec in raw.loc[q_rows, record_cols].to_dict(orient="records")]
        quarantine = pd.DataFrame({
            "table": "daily_bars", "source": np.asarray(src[q_rows]).astype(str), "row": pos[q_rows].astype(np.int64),
            "rule": rules, "detail": details, "record": records,
        })
    return CleanseResult(table="daily_bars", source=source, rows_in=n, clean=clean,
                         quarantine=quarantine)


# --------------------------------------------------------------------------- daily bars
def read_tar_members(path: str | Path) -> dict[str, bytes]:
    """Decompress every ``*.csv`` of a tarball into memory (``{member name: bytes}``).

    ``tickers.csv`` (the tarball's list of tickers) is left out. Nothing touches the disk.

    Raises
    ------
    validation.contracts.ContractError
        When the file cannot be opened as a tarball.
    """
    path = Path(path)
    try:
        with tarfile.open(path, mode="r|*") as tar:  # one sequential pass, no seeking back
            return {
                m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar
                if m.isfile() and m.name.endswith(".csv")
                and PurePosixPath(m.name).name not in NOT_BARS
            }
    except (OSError, tarfile.TarError) as exc:
        raise ContractError(f"{path}: cannot read as a tar archive ({exc})") from exc


def _header(name: str, data: bytes, source: str) -> list[str]:
    first = data.split(b"\n", 1)[0].strip()
    if not first:
        raise ContractError(f"{source}:{name}: empty file, expected header {list(BAR_COLUMNS)}")
    cols = [c.strip().lower() for c in first.decode("utf-8", "replace").split(",")]
    missing = [c for c in BAR_COLUMNS if c not in cols]
    if missing:
        raise ContractError(
            f"{source}:{name}: daily_bars source lacks columns {missing} (header: {cols}); "
            f"needs {list(BAR_COLUMNS)} in any order")
    return cols


def _read_member(name: str, data: bytes, source: str) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """Parse one CSV by column name: ``date`` as text, numbers as float64 (with a slow path)."""
    cols = _header(name, data, source)
    read = pacsv.ReadOptions(column_names=cols, skip_rows=1)
    types = {"date": pa.string(), **{c: pa.float64() for c in BAR_COLUMNS[1:]}}
    conv = pacsv.ConvertOptions(column_types=types, include_columns=list(BAR_COLUMNS))
    try:
        return pacsv.read_csv(io.BytesIO(data), read_options=read, convert_options=conv), {}
    except pa.ArrowInvalid:
        pass  # a cell is not a number: read everything as text and mark those cells
    conv = pacsv.ConvertOptions(column_types=dict.fromkeys(BAR_COLUMNS, pa.string()),
                                include_columns=list(BAR_COLUMNS))
    try:
        text = pacsv.read_csv(io.BytesIO(data), read_options=read, convert_options=conv)
    except pa.ArrowInvalid as exc:
        raise ContractError(f"{source}:{name}: not a readable CSV ({exc})") from exc
    arrays, bad = [text["date"]], {}
    for col in BAR_COLUMNS[1:]:
        s = text[col].to_pandas()
        num = pd.to_numeric(s, errors="coerce")
        bad[col] = (s.notna() & (s.str.strip() != "") & num.isna()).to_numpy()
        arrays.append(pa.array(num.to_numpy(dtype="float64"), type=pa.float64()))
    return pa.table(arrays, names=list(BAR_COLUMNS)), bad


def parse_daily_bars(members: Mapping[str, bytes], *, source: str) -> DailyBarsResult:
    """Parse in-memory per-ticker CSVs (symbol = file name) into cleansed ``daily_bars``.

    Parameters
    ----------
    members : mapping of str to bytes
        File name -> CSV bytes with a header naming ``date, open, high, low, close, volume`` in
        any order (extra columns are ignored); dates ``YYYY-MM-DD`` or ``M/D/YYYY``; LF or CRLF.
    source : str
        Name of the container (the tarball path), used in the result and in quarantine rows.

    Returns
    -------
    DailyBarsResult

    Raises
    ------
    validation.contracts.ContractError
        When a file is empty, unreadable or lacks a required column (names the file).
    """
    tables, symbols, names, type_bad = [], [], [], []
    for name, data in members.items():
        tbl, bad = _read_member(name, data, source)
        tables.append(tbl)
        symbols.append(PurePosixPath(name).stem)
        names.append(name)
        type_bad.append(bad)
    lengths = np.array([t.num_rows for t in tables], dtype=np.int64)
    n = int(lengths.sum())
    table = pa.concat_tables(tables) if tables else pa.table(
        {c: pa.array([], pa.string() if c == "date" else pa.float64()) for c in BAR_COLUMNS})
    code = np.repeat(np.arange(len(tables)), lengths)
    row = np.arange(n) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    text = table["date"]
    iso = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
    mdy = pc.strptime(text, format="%m/%d/%Y", unit="s", error_is_null=True)
    date = pc.cast(pc.coalesce(iso, mdy), pa.timestamp("ns"))
    raw = pd.DataFrame({
        "date": date.to_pandas(), "date_text": text.to_pandas(),
        "symbol": pc.take(pa.array(symbols, pa.string()), pa.array(code)).to_pandas(),
        **{c: table[c].to_numpy() for c in BAR_COLUMNS[1:]},
    })
    failures = {}
    for col in BAR_COLUMNS[1:]:
        parts = [b.get(col, np.zeros(int(k), bool)) for b, k in zip(type_bad, lengths, strict=True)]
        if any(b for b in type_bad):
            failures[col] = np.concatenate(parts) if parts else np.zeros(0, bool)
    row_source = pd.Categorical.from_codes(code, categories=[f"{source}:{m}" for m in names])
    result = cleanse_daily_bars(raw, source=source, row_source=row_source, row=row,
                                type_failures=failures)
    clean = result.clean
    spans = (clean.groupby("symbol", sort=True, observed=True)["date"]
             .agg(first_date="min", last_date="max", rows="size").reset_index())
    return DailyBarsResult(cleanse=result, data_spans=spans,
                           zero_volume_rows=int((raw["volume"] == 0).sum()), files=len(tables))


def read_daily_bars(path: str | Path) -> DailyBarsResult:
    """Read the survivorship-free S&P 500 daily-bar tarball, in memory, into ``daily_bars``.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.tar.xz`` (``settings.require_data_dir() / DAILY_BARS_TARBALL``).

    Returns
    -------
    DailyBarsResult
        Clean bars (``available_at`` = XNYS session close, UTC), quarantine, per-symbol data spans
        and the count of zero-volume rows.

    Raises
    ------
    validation.contracts.ContractError
        When the archive or one of its CSVs cannot be read or lacks a column.

    Notes
    -----
    Quirks handled: 14 files order their columns ``date,high,low,open,close,volume`` (columns are
    read by name); ``LIFE.csv`` and ``WLP.csv`` use ``M/D/YYYY`` dates and CRLF line ends.
    """
    return parse_daily_bars(read_tar_members(path), source=str(path))
