"""Read one Parquet or CSV file into a DataFrame; any failure is a one-line ``ContractError``.

CSV files are read with every column as a string (``dtype=str``; empty cells are missing). Typing is
left to the contract (``validation.contracts.split_valid``), which coerces each column and reports a
value that does not convert as a failure of *that row* (``type: bid_px must be float64``) instead of
turning the whole column into ``object`` or failing the read. Parquet files keep their stored types.

A file with no columns at all (0 bytes, or a blank CSV) is an error; a file with a header and no
rows is a valid, empty table.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from validation.contracts import ContractError

SUFFIXES: Final = (".parquet", ".csv", ".csv.gz")


def suffix(path: Path) -> str | None:
    """The supported suffix ``path`` ends with (``.parquet``, ``.csv``, ``.csv.gz``), else None."""
    name = path.name.lower()
    return next((s for s in sorted(SUFFIXES, key=len, reverse=True) if name.endswith(s)), None)


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else 'no message'}"


@contextmanager
def _reading(path: Path, kind: str) -> Iterator[None]:
    """Turn whatever a reader raises into ``ContractError("<path>: cannot read <kind>: <reason>")``."""
    try:
        yield
    except ContractError:
        raise
    except Exception as exc:  # pyarrow, pandas, OS and codec errors are all "unreadable"
        raise ContractError(f"{path}: cannot read {kind}: {_one_line(exc)}") from exc


def _raw_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip (``.gz``)."""
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        data = gzip.decompress(data)
    return data


def not_utf8(path: Path, data: bytes) -> str | None:
    """Where ``data`` stops being UTF-8, as ``byte 0x.. at line L, column C (byte offset O)``."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        off = exc.start
        line = data.count(b"\n", 0, off) + 1
        col = off - (data.rfind(b"\n", 0, off) + 1) + 1
        return (f"{path}: cannot read CSV: not UTF-8: byte 0x{data[off]:02x} at line {line}, "
                f"column {col} (byte offset {off}); save the file as UTF-8")
    return None


def read_csv(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    """``pandas.read_csv(path, **kwargs)`` with read failures raised as ``ContractError``.

    For headerless vendor files (BitMEX), where the caller knows the column names and types.
    A file that is not UTF-8 is refused naming the line, column and byte offset of the first
    byte that is not (pandas' own message counts from the start of its read buffer).
    """
    path = Path(path)
    try:
        with _reading(path, "CSV"):
            df = pd.read_csv(path, **kwargs)
    except ContractError as exc:
        if isinstance(exc.__cause__, UnicodeDecodeError):
            where = not_utf8(path, _raw_bytes(path))
            if where:
                raise ContractError(where) from None
        raise
    if df.columns.empty:
        raise ContractError(f"{path}: cannot read CSV: the file has no columns")
    return df


def data_lines(path: Path, rows: int) -> np.ndarray | None:
    """The 1-based file line where each of the ``rows`` data rows of a CSV with a header starts,
    or None when that is simply ``row + 2`` (no blank line, no quoted field across lines).

    ``pandas.read_csv`` skips blank lines, so after one the line of row ``r`` is not ``r + 2``;
    a quoted field may also span lines. The file is re-read with :mod:`csv` only when it has a
    blank line or a quote character."""
    data = _raw_bytes(path)
    body = data.replace(b"\r\n", b"\n")
    if b'"' not in body and b"\n\n" not in body.rstrip(b"\n") and not body.startswith(b"\n"):
        return None
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace"), newline=""))
    starts: list[int] = []
    prev = 0
    header = True
    for record in reader:
        start, prev = prev + 1, reader.line_num
        if not record:  # a blank line
            continue
        if header:
            header = False
            continue
        starts.append(start)
    if len(starts) != rows:  # the two readers disagree: no line is better than a wrong one
        return None
    return np.asarray(starts, dtype=np.int64)


def read_table_file(path: str | Path) -> pd.DataFrame:
    """Read a ``.parquet``, ``.csv`` or ``.csv.gz`` file into a DataFrame.

    Parameters
    ----------
    path : str or pathlib.Path
        The file; its suffix picks the reader.

    Returns
    -------
    pandas.DataFrame
        The table as stored: Parquet with its own types, CSV with every column a string (the
        file line of each data row: :func:`data_lines`).

    Raises
    ------
    validation.contracts.ContractError
        One line naming the file when the suffix is not supported, or the file is missing,
        unreadable, corrupt or has no columns.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "quotes.csv"
    >>> _ = p.write_text("symbol,bid_px\\nAAPL,1.5\\n")
    >>> read_table_file(p).dtypes.astype(str).tolist()
    ['str', 'str']
    """
    path = Path(path)
    kind = suffix(path)
    if kind is None:
        raise ContractError(
            f"{path}: cannot read: unsupported file type; use one of {', '.join(SUFFIXES)}"
        )
    if kind == ".parquet":
        with _reading(path, "Parquet"):
            df = pd.read_parquet(path)
        if df.columns.empty:
            raise ContractError(f"{path}: cannot read Parquet: the file has no columns")
        return df
    return read_csv(path, dtype=str, keep_default_na=True)
