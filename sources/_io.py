"""Read one Parquet or CSV file into a DataFrame; any failure is a one-line ``ContractError``.

CSV files are read with every column as a string (``dtype=str``; empty cells are missing). Typing is
left to the contract (``validation.contracts.split_valid``), which coerces each column and reports a
value that does not convert as a failure of *that row* (``type: bid_px must be float64``) instead of
turning the whole column into ``object`` or failing the read. Parquet files keep their stored types.

A file with no columns at all (0 bytes, or a blank CSV) is an error; a file with a header and no
rows is a valid, empty table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

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


def read_csv(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    """``pandas.read_csv(path, **kwargs)`` with read failures raised as ``ContractError``.

    For headerless vendor files (BitMEX), where the caller knows the column names and types.
    """
    path = Path(path)
    with _reading(path, "CSV"):
        df = pd.read_csv(path, **kwargs)
    if df.columns.empty:
        raise ContractError(f"{path}: cannot read CSV: the file has no columns")
    return df


def read_table_file(path: str | Path) -> pd.DataFrame:
    """Read a ``.parquet``, ``.csv`` or ``.csv.gz`` file into a DataFrame.

    Parameters
    ----------
    path : str or pathlib.Path
        The file; its suffix picks the reader.

    Returns
    -------
    pandas.DataFrame
        The table as stored: Parquet with its own types, CSV with every column a string.

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
