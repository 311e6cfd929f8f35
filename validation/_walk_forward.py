"""Purged walk-forward cross-validation: train on the past only, expanding or rolling."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator

from validation._purged_kfold import check_aligned, check_int, label_times, splitter_repr


class PurgedWalkForward(BaseCrossValidator):
    """Walk-forward splits: consecutive test blocks, each trained on rows before it, purged.

    The first test block starts after ``train_size`` rows (plus ``purge_bars``); each next block
    starts ``test_size`` rows later. The training set is every earlier row (``expanding=True``)
    or the ``train_size`` rows just before the test (``expanding=False``, rolling), then purged.
    Training never lies after the test, so there is no embargo.

    Parameters
    ----------
    test_size : int
        Rows per test block, at least 1.
    train_size : int
        Rows in the first training set, and in every training set when rolling; at least 1.
    expanding : bool, default=True
        ``True``: train on all rows before the test (expanding window); ``False``: rolling.
    purge_bars : int, default=0
        Without ``t1``: rows left out between the training set and the test (skfolio
        ``purged_size``); the test starts ``purge_bars`` rows after the training set.
    t1 : pandas.Series or None, default=None
        Label end times indexed by the decision times, as in :class:`PurgedKFold`. When given,
        test blocks start at ``train_size``, ``train_size + test_size``, ... and a training row
        is purged when its label ends at or after the test's first decision time
        (``t1_i >= t0_test``; touching is overlap). ``purge_bars`` must then be 0.
    partial_test : bool, default=True
        Keep a last test block shorter than ``test_size`` (skfolio ``reduce_test``).

    Notes
    -----
    Test block ``j`` is rows ``[s_j, min(s_j + test_size, n))`` with
    ``s_j = train_size + purge_bars + j * test_size``; training is ``[0, s_j - purge_bars)``
    (expanding) or ``[s_j - purge_bars - train_size, s_j - purge_bars)`` (rolling). This
    reproduces skfolio's ``WalkForward`` without a period.

    Examples
    --------
    >>> import numpy as np
    >>> cv = PurgedWalkForward(4, train_size=2, purge_bars=1)
    >>> cv.get_n_splits(np.zeros((12, 1)))
    3
    >>> for train, test in cv.split(np.zeros((12, 1))):
    ...     print("TRAIN:", train, "TEST:", test)
    TRAIN: [0 1] TEST: [3 4 5 6]
    TRAIN: [0 1 2 3 4 5] TEST: [ 7  8  9 10]
    TRAIN: [0 1 2 3 4 5 6 7 8 9] TEST: [11]
    """

    def __init__(
        self,
        test_size: int,
        *,
        train_size: int,
        expanding: bool = True,
        purge_bars: int = 0,
        t1: pd.Series | None = None,
        partial_test: bool = True,
    ) -> None:
        check_int("test_size", test_size, low=1, fix="test on at least 1 row")
        check_int("train_size", train_size, low=1, fix="train on at least 1 row")
        check_int("purge_bars", purge_bars, low=0, fix="use 0 for no purge")
        for name, flag in (("expanding", expanding), ("partial_test", partial_test)):
            if not isinstance(flag, bool):
                raise ValueError(f"`{name}` must be True or False, got `{name}={flag!r}`.")
        if t1 is not None:
            label_times(t1)
            if purge_bars:
                raise ValueError(
                    f"`purge_bars={purge_bars}` with `t1`: with t1 the purge follows label "
                    "overlap; set purge_bars=0 (or drop t1 to purge by row count)."
                )
        self.test_size = test_size
        self.train_size = train_size
        self.expanding = expanding
        self.purge_bars = purge_bars
        self.t1 = t1
        self.partial_test = partial_test

    def __repr__(self) -> str:
        names = ("test_size", "train_size", "expanding", "purge_bars", "t1", "partial_test")
        return splitter_repr(self, names)

    @staticmethod
    def blocks(n: int, n_windows: int, *, min_rows: int = 1) -> list[tuple[int, int]]:
        """``(start, stop)`` of the ``n_windows + 1`` consecutive, nearly equal blocks of ``n`` rows.

        The walk-forward cut by number of windows rather than by ``test_size``: block 0 is the
        first training block and window ``j`` tests block ``j + 1``, training on the blocks
        before it (expanding) or on block ``j`` alone (rolling). The edges are
        ``floor(k n / (n_windows + 1))``, so blocks differ by at most one row (where a splitter
        with a fixed ``test_size`` would leave the remainder to the last block).
        :func:`validation.walk_forward_stage.walk_forward` takes its windows from here.

        Parameters
        ----------
        n : int
            Rows, in time order.
        n_windows : int
            Test windows, at least 1.
        min_rows : int, default=1
            Rows every block needs.

        Returns
        -------
        list of tuple of int
            ``n_windows + 1`` ``(start, stop)`` pairs covering ``[0, n)`` in order.

        Raises
        ------
        ValueError
            If ``n_windows < 1`` or ``n`` rows cannot give every block ``min_rows`` rows.

        Examples
        --------
        >>> PurgedWalkForward.blocks(14, 3)
        [(0, 3), (3, 7), (7, 10), (10, 14)]
        """
        if n_windows < 1:
            raise ValueError(f"`n_windows` must be >= 1, got n_windows={n_windows}")
        if n < min_rows * (n_windows + 1):
            raise ValueError(f"{n} rows cannot make {n_windows} walk-forward windows; each of the "
                             f"{n_windows + 1} blocks needs at least {min_rows} rows")
        edges = np.linspace(0, n, n_windows + 2).astype(int)
        return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]

    def _test_starts(self, n: int) -> range:
        first = self.train_size + self.purge_bars
        last = n if self.partial_test else n - self.test_size + 1
        if first >= last:
            raise ValueError(
                f"train_size={self.train_size} + purge_bars={self.purge_bars} + "
                f"{'1' if self.partial_test else f'test_size={self.test_size}'} rows exceed "
                f"n_samples={n}; lower train_size, purge_bars or test_size."
            )
        return range(first, last, self.test_size)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of test blocks for ``X`` (or for ``t1`` when ``X`` is None).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), default=None
            Only its length is used; may be None when ``t1`` is given.
        y, groups : object
            Always ignored, exist for compatibility.
        """
        if X is None and self.t1 is None:
            raise ValueError("PurgedWalkForward.get_n_splits needs X (or t1) to count the splits.")
        n = len(self.t1) if X is None and self.t1 is not None else check_aligned(X, self.t1)
        return len(self._test_starts(n))

    def split(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` row positions (int64 arrays, ascending) per test block.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Only its length is used (it must equal ``len(t1)`` when ``t1`` is given).
        y, groups : object
            Always ignored, exist for compatibility.

        Raises
        ------
        ValueError
            If ``X`` and ``t1`` differ in length, there are too few rows for one test block, or a
            test block is left with no training rows.
        """
        n = check_aligned(X, self.t1)
        times = None if self.t1 is None else label_times(self.t1)
        splits = []
        for start in self._test_starts(n):
            end = start - self.purge_bars
            train = np.arange(0 if self.expanding else end - self.train_size, end, dtype=np.int64)
            if times is not None:
                t0, t1 = times
                train = train[t1[train] < t0[start]]
            if train.size == 0:
                raise ValueError(
                    f"test block starting at row {start} has no training rows left after purging "
                    "(every earlier label ends at or after it); raise train_size."
                )
            splits.append((train, np.arange(start, min(start + self.test_size, n), dtype=np.int64)))
        yield from splits
