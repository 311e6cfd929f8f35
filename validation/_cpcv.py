"""Combinatorial purged cross-validation (López de Prado, AFML §12.4), with backtest paths."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator

from validation._purged_kfold import (
    FOLD_SIZINGS,
    FoldSizing,
    check_aligned,
    check_fraction,
    check_int,
    drop_mask_by_time,
    fold_bounds,
    label_times,
    splitter_repr,
)

MAX_COMBINATIONS: Final = 100_000


def n_paths(n_folds: int, n_test_folds: int) -> int:
    """Number of backtest paths ``φ[N, k] = k/N · C(N, k) = C(N-1, k-1)``.

    Each of the ``N`` groups is a test group in exactly ``φ`` of the ``C(N, k)`` splits, so the
    out-of-sample predictions assemble into ``φ`` full-length paths (AFML §12.4).

    Examples
    --------
    >>> n_paths(6, 2), n_paths(10, 5)
    (5, 126)
    """
    check_int("n_folds", n_folds, low=2, fix="use at least 2 groups")
    if not 1 <= n_test_folds < n_folds:
        raise ValueError(
            f"`n_test_folds` must be in [1, n_folds) = [1, {n_folds}), got "
            f"`n_test_folds={n_test_folds}`; keep at least one group for training."
        )
    return math.comb(n_folds - 1, n_test_folds - 1)


class CombinatorialPurgedCV(BaseCrossValidator):
    """Combinatorial purged CV: every choice of ``k`` test groups out of ``N``, purged and embargoed.

    The rows are cut into ``N = n_folds`` contiguous groups (no shuffling). Each of the
    ``C(N, k)`` splits tests on ``k = n_test_folds`` groups and trains on the rest, purged and
    embargoed around **every** test group (interior ones included). The test predictions of the
    splits recombine into ``φ = C(N-1, k-1)`` backtest paths (:meth:`backtest_paths`).

    Parameters
    ----------
    n_folds : int, default=6
        Number of groups ``N``, at least 2.
    n_test_folds : int, default=2
        Test groups per split ``k``, in ``[1, N)``. At most 100,000 splits (``C(N, k)``).
    t1 : pandas.Series or None, default=None
        Label end times indexed by the decision times, as in :class:`PurgedKFold`. When given,
        training rows are purged by label overlap with each test group's window (AFML strict,
        endpoints included) and ``purge_bars`` must be 0.
    purge_bars : int, default=0
        Without ``t1``: rows dropped on **both** sides of every test group (skfolio
        ``purged_size``).
    embargo_bars : int, default=0
        Rows dropped after every test group: after the group's max ``t1`` when ``t1`` is given
        (AFML), else after the group plus its ``purge_bars`` (skfolio ``embargo_size``).
    embargo_pct : float, default=0.0
        Alternative to ``embargo_bars``: ``h = int(n_samples * embargo_pct)`` bars. Set one only.
    fold_sizing : {"array_split", "remainder_last"}, default="array_split"
        ``"array_split"``: the first ``n % N`` groups get one extra row (AFML, sklearn);
        ``"remainder_last"``: groups of ``n // N`` rows, the remainder in the last (skfolio).

    Notes
    -----
    Splits are in ``itertools.combinations(range(N), k)`` order; ``split`` yields the test rows of
    the ``k`` groups concatenated (ascending), ``split_groups`` yields them as a list per group.
    Path ``p`` of group ``g`` is the ``p``-th split (in order) that tests ``g``
    (``recombined_paths[g, p]``), the skfolio ordering. López de Prado, *Advances in Financial
    Machine Learning* (2018), §12.4; skfolio ``CombinatorialPurgedCV``.

    Examples
    --------
    >>> import numpy as np
    >>> cv = CombinatorialPurgedCV(3, 2, purge_bars=1)
    >>> cv.get_n_splits(), cv.n_test_paths
    (3, 2)
    >>> for train, test in cv.split(np.zeros((12, 1))):
    ...     print("TRAIN:", train, "TEST:", test)
    TRAIN: [ 9 10 11] TEST: [0 1 2 3 4 5 6 7]
    TRAIN: [5 6] TEST: [ 0  1  2  3  8  9 10 11]
    TRAIN: [0 1 2] TEST: [ 4  5  6  7  8  9 10 11]
    >>> cv.recombined_paths
    array([[0, 1],
           [0, 2],
           [1, 2]])
    """

    def __init__(
        self,
        n_folds: int = 6,
        n_test_folds: int = 2,
        *,
        t1: pd.Series | None = None,
        purge_bars: int = 0,
        embargo_bars: int = 0,
        embargo_pct: float = 0.0,
        fold_sizing: FoldSizing = "array_split",
    ) -> None:
        check_int("n_folds", n_folds, low=2, fix="use at least 2 groups")
        check_int("n_test_folds", n_test_folds, low=1, fix="test on at least 1 group")
        if n_test_folds >= n_folds:
            raise ValueError(
                f"`n_test_folds` must be below `n_folds={n_folds}`, got "
                f"`n_test_folds={n_test_folds}`; keep at least one group for training."
            )
        if math.comb(n_folds, n_test_folds) > MAX_COMBINATIONS:
            raise ValueError(
                f"C(n_folds={n_folds}, n_test_folds={n_test_folds}) = "
                f"{math.comb(n_folds, n_test_folds)} splits exceeds {MAX_COMBINATIONS}: each "
                "split fits a model, so this would not finish; use fewer groups or test groups."
            )
        check_int("purge_bars", purge_bars, low=0, fix="use 0 for no purge")
        check_int("embargo_bars", embargo_bars, low=0, fix="use 0 for no embargo")
        check_fraction("embargo_pct", embargo_pct)
        if embargo_bars > 0 and embargo_pct > 0:
            raise ValueError(
                f"Set one of `embargo_bars={embargo_bars}` and `embargo_pct={embargo_pct}`, not "
                "both; set the other to 0."
            )
        if t1 is not None:
            label_times(t1)
            if purge_bars:
                raise ValueError(
                    f"`purge_bars={purge_bars}` with `t1`: with t1 the purge follows label "
                    "overlap; set purge_bars=0 (or drop t1 to purge by row count)."
                )
        if fold_sizing not in FOLD_SIZINGS:
            raise ValueError(
                f"`fold_sizing` must be one of {FOLD_SIZINGS}, got `fold_sizing={fold_sizing!r}`."
            )
        self.n_folds = n_folds
        self.n_test_folds = n_test_folds
        self.t1 = t1
        self.purge_bars = purge_bars
        self.embargo_bars = embargo_bars
        self.embargo_pct = embargo_pct
        self.fold_sizing = fold_sizing

    def __repr__(self) -> str:
        names = ("n_folds", "n_test_folds", "t1", "purge_bars", "embargo_bars", "embargo_pct")
        return splitter_repr(self, (*names, "fold_sizing"))

    # ---- structure (depends on N and k only) ------------------------------------------------

    @property
    def n_splits(self) -> int:
        """Number of splits ``C(N, k)``."""
        return math.comb(self.n_folds, self.n_test_folds)

    @property
    def n_test_paths(self) -> int:
        """Number of backtest paths ``φ = C(N-1, k-1)``."""
        return n_paths(self.n_folds, self.n_test_folds)

    @property
    def test_set_index(self) -> np.ndarray:
        """Test groups of each split, shape ``(n_splits, k)``, in ``combinations`` order."""
        combos = itertools.combinations(range(self.n_folds), self.n_test_folds)
        return np.array(list(combos), dtype=np.int64).reshape(-1, self.n_test_folds)

    @property
    def recombined_paths(self) -> np.ndarray:
        """Split id per (group, path), shape ``(N, φ)``: the splits testing group ``g``, in order."""
        tsi = self.test_set_index
        return np.array([np.flatnonzero((tsi == g).any(axis=1)) for g in range(self.n_folds)])

    def get_path_ids(self) -> np.ndarray:
        """Path id of each test group of each split, shape ``(n_splits, k)``."""
        tsi, paths = self.test_set_index, self.recombined_paths
        ids = np.empty_like(tsi)
        for s, groups in enumerate(tsi):
            for j, g in enumerate(groups):
                ids[s, j] = int(np.flatnonzero(paths[g] == s)[0])
        return ids

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of splits ``C(n_folds, n_test_folds)``.

        Parameters
        ----------
        X, y, groups : object
            Always ignored, exist for compatibility.
        """
        return self.n_splits

    # ---- splitting ---------------------------------------------------------------------------

    def _splits(self, X: Any) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        n = check_aligned(X, self.t1)
        if n < self.n_folds:
            raise ValueError(
                f"Cannot have n_folds={self.n_folds} greater than the number of samples={n}; "
                "use fewer groups."
            )
        bounds = fold_bounds(n, self.n_folds, self.fold_sizing)
        h = self.embargo_bars or int(n * self.embargo_pct)
        times = None if self.t1 is None else label_times(self.t1)
        out = []
        for groups in self.test_set_index:
            drop = np.zeros(n, dtype=bool)
            for g in groups:
                start, stop = bounds[g]
                if times is not None:
                    drop |= drop_mask_by_time(*times, start, stop, h, "strict")
                else:
                    drop[max(start - self.purge_bars, 0) : stop + self.purge_bars + h] = True
            train = np.flatnonzero(~drop).astype(np.int64)
            if train.size == 0:
                raise ValueError(
                    f"split with test groups {groups.tolist()} has no training rows left after "
                    f"purge_bars={self.purge_bars}, embargo h={h} bars (n_samples={n}); lower "
                    "the purge/embargo or use more groups."
                )
            tests = [np.arange(*bounds[g], dtype=np.int64) for g in groups]
            out.append((train, tests))
        return out

    def split(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` row positions; ``test`` is the ``k`` test groups concatenated.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Only its length is used (it must equal ``len(t1)`` when ``t1`` is given).
        y, groups : object
            Always ignored, exist for compatibility.

        Raises
        ------
        ValueError
            If ``X`` and ``t1`` differ in length, there are fewer rows than groups, or a split is
            left with no training rows.
        """
        for train, tests in self._splits(X):
            yield train, np.concatenate(tests)

    def split_groups(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
        """Like :meth:`split`, with the test rows as a list of ``k`` arrays, one per test group."""
        yield from self._splits(X)

    def backtest_paths(self, predictions: Sequence[Any]) -> np.ndarray:
        """Assemble per-split test predictions into the ``φ`` backtest paths.

        Parameters
        ----------
        predictions : sequence of array-like
            One array per split, in :meth:`split` order, aligned with that split's ``test`` rows
            (first axis); extra axes (e.g. class probabilities) are kept.

        Returns
        -------
        numpy.ndarray of shape (n_test_paths, n_samples, ...)
            Path ``p`` holds, for each group ``g``, the predictions of split
            ``recombined_paths[g, p]``; every path covers every row exactly once.

        Raises
        ------
        ValueError
            If the number of arrays or an array's length does not match the splits.

        Examples
        --------
        >>> import numpy as np
        >>> cv = CombinatorialPurgedCV(3, 2)
        >>> preds = [test * 10 + s for s, (_, test) in enumerate(cv.split(np.zeros((6, 1))))]
        >>> cv.backtest_paths(preds)
        array([[ 0, 10, 20, 30, 41, 51],
               [ 1, 11, 22, 32, 42, 52]])
        """
        preds = [np.asarray(p) for p in predictions]
        if len(preds) != self.n_splits:
            raise ValueError(
                f"got {len(preds)} prediction arrays for {self.n_splits} splits; pass one per "
                "split, in split() order."
            )
        n = sum(len(p) for p in preds) // self.n_test_paths
        if self.t1 is not None and n != len(self.t1):
            raise ValueError(f"predictions cover {n} rows but `t1` has {len(self.t1)}.")
        bounds = fold_bounds(n, self.n_folds, self.fold_sizing)
        out = np.empty((self.n_test_paths, n, *preds[0].shape[1:]), dtype=preds[0].dtype)
        for s, (groups, ids) in enumerate(
            zip(self.test_set_index, self.get_path_ids(), strict=True)
        ):
            expected = sum(bounds[g][1] - bounds[g][0] for g in groups)
            if len(preds[s]) != expected:
                raise ValueError(
                    f"split {s} (test groups {groups.tolist()}) has {expected} test rows but "
                    f"{len(preds[s])} predictions; pass predictions aligned with split()'s test."
                )
            offset = 0
            for g, p in zip(groups, ids, strict=True):
                start, stop = bounds[g]
                out[p, start:stop] = preds[s][offset : offset + stop - start]
                offset += stop - start
        return out
