"""Vectorized text for quarantine rows: value formatting, detail strings and JSON records.

Quarantine tables can hold most of a file (a file concatenated with itself is ~95% duplicates),
so nothing here loops over rows in Python. Values are formatted once per *distinct* value
(``pandas.factorize``, then a ``take``) or with numpy/pyarrow kernels, and strings are assembled
with ``pyarrow.compute.binary_join_element_wise``. Every function returns a ``pyarrow`` array of
``large_string`` of the length of its input.

The formats are those of the per-row Python they replace: :func:`float_repr` is ``repr(float(v))``,
:func:`iso` is ``pd.Timestamp(v, tz="UTC").isoformat()`` (``sep=" "``: ``str(ts)``) and
:func:`json_records` is ``json.dumps(record, default=str)`` of ``DataFrame.to_dict("records")``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

NAT: Final = np.iinfo(np.int64).min
_NS: Final = 1_000_000_000
_STR: Final = pa.large_string()

Text = pa.Array | pa.ChunkedArray | pa.Scalar | str


def as_text(x: object) -> pa.Array:
    """A large_string array from a pyarrow array, a list or a numpy array of str."""
    if isinstance(x, pa.ChunkedArray):
        x = x.combine_chunks()
    if isinstance(x, pa.Array):
        return x if x.type == _STR else x.cast(_STR)
    if isinstance(x, np.ndarray) and x.dtype.kind == "U":
        return pa.array(x, type=pa.string()).cast(_STR)
    return pa.array(list(x) if not isinstance(x, list) else x, type=_STR)


def concat(*parts: Text) -> pa.Array:
    """Element-wise concatenation of string arrays and constant strings (at least one array)."""
    args = [pa.scalar(p, _STR) if isinstance(p, str) else as_text(p) for p in parts]
    return pc.binary_join_element_wise(*args, pa.scalar("", _STR))


def repeat(text: str, n: int) -> pa.Array:
    """``n`` copies of ``text`` (a decoded dictionary: ``pa.repeat`` is slow for strings)."""
    one = pa.array([text], _STR)
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)), one).cast(_STR)


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and the position of each code's first occurrence; objects are told apart by type."""
    if values.dtype == object:
        try:
            vals, _ = pd.factorize(values, use_na_sentinel=False)
        except TypeError:  # unhashable values: one code per row
            vals = np.arange(len(values))
        kinds, _ = pd.factorize(np.frompyfunc(type, 1, 1)(values))
        codes, _ = pd.factorize(vals.astype(np.int64) * (int(kinds.max(initial=0)) + 1) + kinds)
    elif values.dtype.kind == "f":  # by bits: 0.0 and -0.0 differ
        codes, _ = pd.factorize(values.astype(np.float64).view(np.int64))
    else:
        codes, _ = pd.factorize(values, use_na_sentinel=False)
    codes = np.asarray(codes, dtype=np.int64)
    first = np.full(int(codes.max(initial=-1)) + 1, len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    return codes, first


def per_value(values: np.ndarray, fn: Callable[[object], str]) -> pa.Array:
    """``[fn(v) for v in values]``, calling ``fn`` once per distinct value."""
    values = np.asarray(values)
    if len(values) == 0:
        return pa.array([], _STR)
    codes, first = _codes(values)
    texts = pa.array([fn(_native(values[i])) for i in first], _STR)
    return texts.take(pa.array(codes))


def _native(v: object) -> object:
    return v.item() if isinstance(v, np.generic) and not isinstance(v, np.datetime64) else v


def float_repr(values: np.ndarray) -> pa.Array:
    """``repr(float(v))`` of each value (``'100.0'``, ``'inf'``, ``'nan'``)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return pa.array([], _STR)
    codes, first = _codes(values)
    return as_text(values[first].astype(str)).take(pa.array(codes))


def int_str(values: np.ndarray) -> pa.Array:
    """``str(int(v))`` of each value."""
    return pa.array(np.asarray(values, dtype=np.int64)).cast(_STR)


def iso(ns: np.ndarray, sep: str = "T", suffix: str = "+00:00") -> pa.Array:
    """ISO text of int64 ns since the epoch (``NAT`` -> ``'NaT'``), as ``Timestamp.isoformat``.

    The fraction has 6 digits when the nanoseconds are a whole microsecond, 9 otherwise, and is
    left out when zero; ``suffix`` is the UTC offset (``""`` for a naive timestamp).
    """
    ns = np.asarray(ns, dtype=np.int64)
    if len(ns) == 0:
        return pa.array([], _STR)
    codes, first = _codes(ns)
    u = ns[first]
    nat = u == NAT
    u = np.where(nat, 0, u)
    sec, frac = np.divmod(u, _NS)
    base = as_text(np.datetime_as_string(sec.astype("M8[s]"), unit="s"))
    if sep != "T":
        base = pc.replace_substring(base, "T", sep, max_replacements=1)
    micro = frac % 1000 == 0
    digits = pc.utf8_lpad(pa.array(np.where(micro, frac // 1000, frac)).cast(pa.string()),
                          width=9, padding="0")
    digits = pc.if_else(pa.array(micro), pc.utf8_slice_codeunits(digits, 3), digits)
    dot = pc.if_else(pa.array(frac == 0), pa.scalar(""), concat(".", digits))
    text = concat(base, dot, suffix)
    text = pc.if_else(pa.array(nat), pa.scalar("NaT", _STR), text)
    return text.take(pa.array(codes))


# ----------------------------------------------------------------------------- JSON records
def _json_float(values: np.ndarray) -> pa.Array:
    t = as_text(values.astype(str))
    for a, b in (("nan", "NaN"), ("inf", "Infinity"), ("-inf", "-Infinity")):
        t = pc.if_else(pc.equal(t, pa.scalar(a, _STR)), pa.scalar(b, _STR), t)
    return t


def _json_default(v: object) -> str:
    return json.dumps(v, default=str)


def _json_distinct(s: pd.Series, rows: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """JSON text of each distinct value of ``s.iloc[rows]``, and each row's code into it."""
    dt = s.dtype
    if isinstance(dt, np.dtype) and dt.kind in "fiub":
        v = s.to_numpy()[rows]
        codes, first = _codes(v)
        u = v[first]
        if dt.kind == "f":
            return _json_float(u.astype(np.float64)), codes
        if dt.kind == "b":
            return pa.array(np.where(u, "true", "false"), pa.string()).cast(_STR), codes
        return int_str(u), codes
    utc = isinstance(dt, pd.DatetimeTZDtype) and str(dt.tz) == "UTC"
    if utc or (isinstance(dt, np.dtype) and dt.kind == "M"):
        ns = np.asarray(pd.DatetimeIndex(s).as_unit("ns").asi8)[rows]
        codes, first = _codes(ns)
        return concat('"', iso(ns[first], sep=" ", suffix="+00:00" if utc else ""), '"'), codes
    sub = s.iloc[rows]
    if isinstance(dt, (pd.StringDtype, pd.CategoricalDtype)):
        codes, uniq = pd.factorize(sub, use_na_sentinel=False)
        texts = [_json_default(None if v is pd.NA else _native(v)) for v in uniq.astype(object)]
        return pa.array(texts, _STR), np.asarray(codes, dtype=np.int64)
    v = sub.to_numpy(dtype=object)
    codes, first = _codes(v)
    return pa.array([_json_default(_native(v[i])) for i in first], _STR), codes


def _key(s: pd.Series, rows: np.ndarray) -> np.ndarray:
    """An int64 per row of ``s.iloc[rows]`` that is equal exactly when the JSON text is."""
    dt = s.dtype
    if isinstance(dt, np.dtype) and dt.kind == "f":
        return s.to_numpy()[rows].astype(np.float64, copy=False).view(np.int64)
    if isinstance(dt, np.dtype) and dt.kind in "iub":
        return s.to_numpy()[rows].astype(np.int64, copy=False)
    if isinstance(dt, pd.DatetimeTZDtype) or (isinstance(dt, np.dtype) and dt.kind == "M"):
        return np.asarray(pd.DatetimeIndex(s).as_unit("ns").asi8)[rows]
    if isinstance(dt, np.dtype) and dt.kind == "O":
        return _codes(s.to_numpy()[rows])[0]
    return np.asarray(pd.factorize(s.iloc[rows], use_na_sentinel=False)[0], dtype=np.int64)


def _mix(h: np.ndarray, v: np.ndarray) -> np.ndarray:
    h ^= v.view(np.uint64)
    h *= np.uint64(0x9E3779B97F4A7C15)
    h ^= h >> np.uint64(31)
    return h


def _row_codes(keys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A code per row for its combination of keys, and each code's first row.

    Rows are hashed to 64 bits and grouped; a row that differs from its group's first row (a hash
    collision) gets a code of its own, so equal codes always mean equal rows.
    """
    h = np.zeros(len(keys[0]), dtype=np.uint64)
    for k in keys:
        h = _mix(h, k)
    codes, first = _codes(h)
    rep = first[codes]
    same = np.ones(len(h), dtype=bool)
    for k in keys:
        same &= k == k[rep]
    if not same.all():
        odd = np.flatnonzero(~same)
        codes[odd] = len(first) + np.arange(len(odd))
        first = np.r_[first, odd]
    return codes, first


def json_records(df: pd.DataFrame, rows: np.ndarray, exclude: Sequence[str] = ()) -> pa.Array:
    """One JSON object per position ``rows`` of ``df`` (``{"col": value, ...}``, columns in order).

    The text equals ``json.dumps(record, default=str)`` of ``df.iloc[rows].to_dict("records")``
    (NaN as ``NaN``, timestamps as ``str(ts)``); columns named in ``exclude`` are left out.
    Repeated rows (a file concatenated with itself) are written once and gathered, and within
    the distinct rows each column's distinct values are formatted once.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = [c for c in df.columns if c not in exclude]
    if not cols:
        return repeat("{}", len(rows))
    row_code, first = _row_codes([_key(df[c], rows) for c in cols])
    distinct = rows[first]
    parts: list[Text] = []
    for k, c in enumerate(cols):
        key = ("{" if k == 0 else ", ") + json.dumps(str(c)) + ": "
        texts, codes = _json_distinct(df[c], distinct)
        parts.append(concat(key, texts).take(pa.array(codes)))
    text = concat(*parts, "}")
    return text if len(first) == len(rows) and (np.diff(first) > 0).all() and first[0] == 0 \
        else text.take(pa.array(row_code))
