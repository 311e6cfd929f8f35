"""Purged K-fold cross-validation with embargo (López de Prado, AFML ch. 7), and the shared purge core.

The helpers here (label-time checks, fold bounds, the per-test-block drop mask) are shared by
:mod:`validation._cpcv` and :mod:`validation._walk_forward`; the public names are re-exported by
:mod:`validation.splitters`.
"""

from __future__ import annotations

from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator

Convention = Literal["strict", "afml_7_3"]
FoldSizing = Literal["array_split", "remainder_last"]

CONVENTIONS: Final = ("strict", "afml_7_3")
FOLD_SIZINGS: Final = ("array_split", "remainder_last")


# --------------------------------------------------------------------------------------------
# shared checks and helpers
# --------------------------------------------------------------------------------------------


def check_int(name: str, value: object, *, low: int, fix: str) -> None:
    """Raise unless ``value`` is an int (not a bool) ``>= low``; the message names the fix."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"`{name}` must be an int >= {low}, got `{name}={value!r}`; {fix}.")


def check_fraction(name: str, value: object) -> None:
    """Raise unless ``value`` is a real number in ``[0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= float(value) < 1.0:
        raise ValueError(
            f"`{name}` must be a fraction in [0, 1), got `{name}={value!r}`; "
            "AFML suggests about 0.01 (1% of the rows)."
        )


def _ordinal(values: Any, what: str) -> np.ndarray:
    """Times (datetime64, tz-aware or naive) as int64 ns, or numbers as float64, for comparisons."""
    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, pd.DatetimeTZDtype) or (dtype is not None and dtype.kind == "M"):
        idx = pd.DatetimeIndex(values)
        if idx.tz is not None:
            idx = idx.tz_convert("UTC").tz_localize(None)
        return np.asarray(idx.as_unit("ns").asi8, dtype=np.int64)
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":
        raise TypeError(
            f"`t1` {what} must be datetimes or numbers, got dtype {arr.dtype}; "
            "pass a Series of label end times indexed by the decision times."
        )
    return arr.astype(np.float64)


def label_times(t1: object) -> tuple[np.ndarray, np.ndarray]:
    """Check ``t1`` and return ``(t0, t1)`` as comparable numpy arrays.

    Raises
    ------
    TypeError
        If ``t1`` is not a pandas Series, or index and values are not both times or both numbers.
    ValueError
        If there are missing values, the index (the decision times ``t0``) is not sorted, or a
        label ends before it starts.
    """
    if not isinstance(t1, pd.Series):
        raise TypeError(
            f"`t1` must be a pandas Series of label end times indexed by the decision times, "
            f"got `t1` of type {type(t1).__name__}; build it as pd.Series(end_ts, index=decision_ts)."
        )
    index_tz = getattr(t1.index, "tz", None) is not None
    values_tz = isinstance(t1.dtype, pd.DatetimeTZDtype)
    if index_tz != values_tz:
        raise TypeError(
            "`t1` index and values must be both tz-aware or both naive, got "
            f"index tz-aware={index_tz}, values tz-aware={values_tz}; convert both to UTC."
        )
    if t1.isna().any() or t1.index.hasnans:
        raise ValueError(
            f"`t1` has {int(t1.isna().sum() + t1.index.isna().sum())} missing times; "
            "drop rows whose label has not ended (no t1) before splitting."
        )
    t0_arr, t1_arr = _ordinal(t1.index, "index"), _ordinal(t1, "values")
    if t0_arr.size and (np.diff(t0_arr) < 0).any():
        row = int(np.flatnonzero(np.diff(t0_arr) < 0)[0]) + 1
        raise ValueError(
            f"`t1` index (decision times) must be sorted ascending; row {row} "
            f"({t1.index[row]}) is earlier than row {row - 1}; use t1.sort_index()."
        )
    if (t1_arr < t0_arr).any():
        row = int(np.flatnonzero(t1_arr < t0_arr)[0])
        raise ValueError(
            f"`t1` row {row}: label ends at {t1.iloc[row]} before its decision time "
            f"{t1.index[row]}; a label must end at or after it starts (t1 >= t0)."
        )
    return t0_arr, t1_arr


def n_samples_of(X: Any) -> int:
    """Number of rows of an array-like (``X.shape[0]`` or ``len(X)``)."""
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) else len(X)


def check_aligned(X: Any, t1: pd.Series | None) -> int:
    """Rows of ``X``; raise when ``X`` and ``t1`` disagree in length (or in their time index)."""
    n = n_samples_of(X)
    if t1 is None:
        return n
    if n != len(t1):
        raise ValueError(
            f"X has {n} rows but `t1` has {len(t1)}; pass the t1 Series of exactly the rows "
            "being split (one label end time per row, same order)."
        )
    index = getattr(X, "index", None)
    if isinstance(index, pd.DatetimeIndex) and not index.equals(t1.index):
        raise ValueError(
            "X.index (decision times) differs from t1.index; align them, e.g. t1 = t1.loc[X.index]."
        )
    return n


def fold_bounds(n: int, n_folds: int, sizing: str) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` row bounds of ``n_folds`` groups over ``n`` rows.

    ``"array_split"`` gives the first ``n % n_folds`` groups one extra row (``np.array_split``,
    as AFML, mlfinlab and sklearn's ``KFold``); ``"remainder_last"`` gives every group
    ``n // n_folds`` rows and the remainder to the last (skfolio).
    """
    base, extra = divmod(n, n_folds)
    if sizing == "array_split":
        sizes = [base + 1] * extra + [base] * (n_folds - extra)
    else:
        sizes = [base] * (n_folds - 1) + [n - base * (n_folds - 1)]
    stops = np.cumsum(sizes)
    return [(int(stop - size), int(stop)) for stop, size in zip(stops, sizes, strict=True)]


def drop_mask_by_time(
    t0: np.ndarray, t1: np.ndarray, start: int, stop: int, embargo_bars: int, convention: str
) -> np.ndarray:
    """Rows that may not train when rows ``[start, stop)`` are a test block (the block included).

    ``"strict"`` (Snippets 7.1 + 7.2): the test window is ``[t0[start], E]`` with ``E`` the
    block's max ``t1`` moved on to the ``embargo_bars``-th bar whose ``t0`` is strictly after it
    (the last bar if fewer remain); drop every row with ``[t0_i, t1_i]`` meeting the window, ends
    included. ``"afml_7_3"`` (Snippet 7.3 as coded): keep a row before the block iff
    ``t1_i <= t0[start]``; keep a row after it iff its position is at least
    ``searchsorted(t0, max t1, "left") + embargo_bars`` (so a row starting exactly at max ``t1``
    trains when ``embargo_bars == 0``).
    """
    n = t0.size
    dt0, dt1 = t0[start], t1[start:stop].max()
    if convention == "strict":
        end = dt1
        first_after = int(np.searchsorted(t0, dt1, side="right"))
        if embargo_bars > 0 and first_after < n:
            end = t0[min(first_after + embargo_bars, n) - 1]
        drop = (t0 <= end) & (t1 >= dt0)
    else:
        right = max(stop, int(np.searchsorted(t0, dt1, side="left")) + embargo_bars)
        pos = np.arange(n)
        drop = ((pos < start) & (t1 > dt0)) | ((pos >= stop) & (pos < right))
    drop[start:stop] = True
    return drop


def splitter_repr(obj: object, names: tuple[str, ...]) -> str:
    """``Name(a=1, t1=<Series: 12 label end times>)``: sklearn's repr without printing t1 whole."""
    parts = []
    for name in names:
        value = getattr(obj, name)
        shown = (
            f"<Series: {len(value)} label end times>"
            if isinstance(value, pd.Series)
            else repr(value)
        )
        parts.append(f"{name}={shown}")
    return f"{type(obj).__name__}({', '.join(parts)})"


# --------------------------------------------------------------------------------------------
# PurgedKFold
# --------------------------------------------------------------------------------------------


class PurgedKFold(BaseCrossValidator):
    """K-fold without shuffling, purged by label overlap and embargoed after each test fold.

    Row ``i`` is decided at ``t0_i`` (the index of ``t1``) and its label uses information in
    ``[t0_i, t1_i]``. Each fold in turn is the test set; a training row is dropped (purged) when
    its label interval meets the test window, and the ``h = int(n_samples * embargo_pct)`` bars
    that follow the test window are dropped too (embargo).

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2. Folds are contiguous, made with ``np.array_split`` (the first
        ``n_samples % n_splits`` folds get one extra row).
    t1 : pandas.Series
        Label end times, indexed by the decision times ``t0`` of the rows, sorted by ``t0``; one
        entry per row of ``X``, same order. Datetimes (tz-aware or naive) or numbers.
    embargo_pct : float, default=0.0
        Embargo as a fraction of the rows, in ``[0, 1)``: ``h = int(n_samples * embargo_pct)``.
    convention : {"strict", "afml_7_3"}, default="strict"
        Boundary convention, see Notes.

    Notes
    -----
    ``"strict"`` is AFML Snippets 7.1 + 7.2: the test window is ``[t0_first, E]``, where ``E``
    is the fold's max ``t1`` moved on ``h`` bars (the ``h``-th bar whose ``t0`` is strictly later;
    the last bar when fewer remain); a row is purged when ``[t0_i, t1_i] ∩ [t0_first, E] ≠ ∅``,
    endpoints included, so a label ending exactly when the test starts is purged.

    ``"afml_7_3"`` is the ``PurgedKFold`` class of Snippet 7.3 as printed, where touching is not
    overlap: a row before the fold trains iff ``t1_i <= t0_first``, and rows after the fold train
    from position ``searchsorted(t0, max t1) + h`` on. Two guards are added to the literal code:
    the right side never starts inside the test fold, and the left side takes rows before the fold
    only (both matter only for zero-length labels, ``t1 == t0``).

    López de Prado, *Advances in Financial Machine Learning* (2018), §7.4, Snippets 7.1–7.3.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> t0 = pd.date_range("2024-01-02 09:30", periods=12, freq="min", tz="UTC")
    >>> t1 = pd.Series(t0 + pd.Timedelta(minutes=2), index=t0)
    >>> cv = PurgedKFold(3, t1=t1, embargo_pct=0.1)
    >>> cv
    PurgedKFold(n_splits=3, t1=<Series: 12 label end times>, embargo_pct=0.1, convention='strict')
    >>> for train, test in cv.split(np.zeros((12, 1))):
    ...     print("TRAIN:", train, "TEST:", test)
    TRAIN: [ 7  8  9 10 11] TEST: [0 1 2 3]
    TRAIN: [ 0  1 11] TEST: [4 5 6 7]
    TRAIN: [0 1 2 3 4 5] TEST: [ 8  9 10 11]
    """

    def __init__(
        self,
        n_splits: int = 5,
        *,
        t1: pd.Series,
        embargo_pct: float = 0.0,
        convention: Convention = "strict",
    ) -> None:
        check_int("n_splits", n_splits, low=2, fix="use at least 2 folds")
        label_times(t1)
        check_fraction("embargo_pct", embargo_pct)
        if convention not in CONVENTIONS:
            raise ValueError(
                f"`convention` must be one of {CONVENTIONS}, got `convention={convention!r}`; "
                "'strict' is AFML Snippets 7.1+7.2, 'afml_7_3' the literal Snippet 7.3."
            )
        self.n_splits = n_splits
        self.t1 = t1
        self.embargo_pct = embargo_pct
        self.convention = convention

    def __repr__(self) -> str:
        return splitter_repr(self, ("n_splits", "t1", "embargo_pct", "convention"))

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of splits, ``n_splits``.

        Parameters
        ----------
        X, y, groups : object
            Always ignored, exist for compatibility.
        """
        return self.n_splits

    def split(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` row positions (int64 arrays, ascending) for each fold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Only its length is used; it must equal ``len(t1)``.
        y, groups : object
            Always ignored, exist for compatibility.

        Raises
        ------
        ValueError
            If ``X`` and ``t1`` differ in length, there are fewer rows than folds, or a fold is
            left with no training rows.
        """
        n = check_aligned(X, self.t1)
        if self.n_splits > n:
            raise ValueError(
                f"Cannot have n_splits={self.n_splits} greater than the number of samples={n}; "
                "use fewer folds."
            )
        t0, t1 = label_times(self.t1)
        h = int(n * self.embargo_pct)
        splits = []
        for fold, (start, stop) in enumerate(fold_bounds(n, self.n_splits, "array_split")):
            drop = drop_mask_by_time(t0, t1, start, stop, h, self.convention)
            train = np.flatnonzero(~drop).astype(np.int64)
            if train.size == 0:
                raise ValueError(
                    f"fold {fold} (test rows {start}..{stop - 1}) has no training rows left after "
                    f"purging and embargo_pct={self.embargo_pct} (h={h} bars); lower "
                    "embargo_pct, use more folds or shorter labels."
                )
            splits.append((train, np.arange(start, stop, dtype=np.int64)))
        yield from splits
