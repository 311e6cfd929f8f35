"""Reading one headerless LOBSTER CSV into typed columns that keep every unreadable cell:
:class:`_Col` (values, a validity mask and the reason per bad row), the float-precision and
file-shape checks. Used by :mod:`sources.lobster`, which turns a message/order-book pair into
tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from sources._lobster_files import _Opener
from validation.contracts import ContractError


@dataclass(frozen=True)
class _Col:
    """A numeric column; where a value did not parse, ``bad`` is set and ``raw`` holds the text.

    ``nonint`` and ``big`` mark the bad values that are numbers all the same (``4.5`` in an integer
    field, ``1e30``): cleansing would convert their text, so the reader has to say why they are bad.
    """

    values: np.ndarray
    bad: np.ndarray | None = None
    raw: np.ndarray | None = None
    nonint: np.ndarray | None = None
    big: np.ndarray | None = None

    def out(self, values: np.ndarray) -> np.ndarray:
        """``values`` (derived from this column), with the original text where it did not parse."""
        if self.bad is None:
            return values
        obj = values.astype(object)
        obj[self.bad] = self.raw[self.bad]  # type: ignore[index]
        return obj

    def why(self, label: str, *, nonint: bool = True) -> np.ndarray | None:
        """Reasons (object array, None where fine) for the numbers that are bad values.

        ``nonint=False`` leaves out the non-integral ones (for a column cleansing reads as an
        integer, which rejects them by itself).
        """
        if self.big is None or self.nonint is None:
            return None
        big, frac = self.big, (self.nonint if nonint else np.zeros_like(self.big))
        if not (big.any() or frac.any()):
            return None
        out = np.full(len(big), None, dtype=object)
        for i in np.flatnonzero(big | frac):  # bad values only
            what = "is out of range" if big[i] else "is not an integer"
            out[i] = f"{label}={self.raw[i]!r} {what}"  # type: ignore[index]
        return out


def _join_why(parts: Sequence[np.ndarray | None], n: int) -> np.ndarray | None:
    """Join reasons row by row with ``'; '`` (None where no part has one); None if none at all."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    has = np.zeros(n, dtype=bool)
    for p in parts:
        has |= pd.notna(p)
    out = np.full(n, None, dtype=object)
    for i in np.flatnonzero(has):  # unreadable rows only
        out[i] = "; ".join(p[i] for p in parts if p[i] is not None)
    return out


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


_MAX_EXACT: Final = 2**53
_MAX_TIME_S: Final = 1e9  # |time| below this keeps time * 1e9 inside int64


def _suspect_float(v: np.ndarray) -> bool:
    with np.errstate(invalid="ignore"):
        return bool((~np.isfinite(v) | (np.abs(v) >= _MAX_TIME_S)).any())


def _read(src: tuple[str, _Opener], what: str, types: dict[str, pa.DataType]) -> dict[str, _Col]:
    """Read one headerless CSV with explicit types; fall back to text for unreadable values.

    An integer value is unreadable when it is not a number, not finite, not integral or out of
    range (``|v| > 2**53``, or outside the column type); a float (time) when it is not finite or
    ``|v| >= 1e9``.
    """
    display, opener = src
    names = list(types)
    ro = pacsv.ReadOptions(column_names=names)
    try:
        tbl = pacsv.read_csv(opener(), read_options=ro,
                             convert_options=pacsv.ConvertOptions(column_types=types))
        cols = {c: _Col(tbl.column(c).to_numpy()) for c in names}
        if not any(pa.types.is_floating(types[c]) and _suspect_float(cols[c].values)
                   for c in names):
            return cols
    except pa.ArrowInvalid as exc:
        if "conversion error" not in str(exc) and "Invalid value" not in str(exc):
            raise ContractError(f"{display}: cannot read LOBSTER {what} file: "
                                f"{_shape_problem(opener, names) or _one_line(exc)}") from None
    except (OSError, pa.ArrowException) as exc:
        raise ContractError(f"{display}: cannot read LOBSTER {what} file: {_one_line(exc)}") from None
    try:
        tbl = pacsv.read_csv(opener(), read_options=ro, convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False))
    except (OSError, pa.ArrowException) as exc:
        raise ContractError(f"{display}: cannot read LOBSTER {what} file: "
                            f"{_shape_problem(opener, names) or _one_line(exc)}") from None
    cols = {}
    for c in names:
        text = tbl.column(c).to_numpy(zero_copy_only=False).astype(object)
        vals = pd.to_numeric(pd.Series(text).str.strip(), errors="coerce").to_numpy(np.float64)
        finite = np.isfinite(vals)
        if pa.types.is_integer(types[c]):
            info = np.iinfo(types[c].to_pandas_dtype())
            lo, hi = max(info.min, -_MAX_EXACT), min(info.max, _MAX_EXACT)
            nonint = finite & (vals != np.round(vals))
            big = finite & ((vals < lo) | (vals > hi))
        else:
            nonint = np.zeros(len(vals), dtype=bool)
            big = finite & (np.abs(vals) >= _MAX_TIME_S)
        bad = ~finite | nonint | big
        if bad.any():  # values NaN where bad: nothing downstream computes with them
            cols[c] = _Col(np.where(bad, np.nan, vals), bad, text, nonint, big)
        else:
            cols[c] = _Col(vals.astype(types[c].to_pandas_dtype()))
    return cols


def _shape_problem(opener: _Opener, names: list[str]) -> str | None:
    """Name the first line whose column count is wrong (re-reads the file, error path only)."""
    bad: list[pacsv.InvalidRow] = []

    def skip(row: pacsv.InvalidRow) -> str:
        bad.append(row)
        return "skip"

    src = opener()
    try:
        data = Path(src).read_bytes() if isinstance(src, str) else src.read()
    except OSError:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return f"not a text file (invalid UTF-8 at byte {exc.start}, line {line})"
    try:
        tbl = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=skip),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())))
    except (OSError, pa.ArrowException):
        return None
    if not bad:
        return None if tbl.num_rows else "the file is empty"
    first = bad[0]
    where = f"line {first.number}" if first.number is not None else "a line"
    return (f"{where} has {first.actual_columns} columns, expected {len(names)} "
            f"({len(bad)} such line{'s' if len(bad) > 1 else ''})")
