"""Leakage-free cross-validation splitters (sklearn-compatible): purged K-fold, CPCV, walk-forward.

Every splitter follows sklearn's contract: ``split(X, y=None, groups=None)`` yields
``(train, test)`` int64 position arrays, ``get_n_splits`` is defined, and they plug into
``cross_val_score(est, X, y, cv=...)``. Rows are assumed sorted by decision time ``t0``; a label
uses information in ``[t0_i, t1_i]`` (the ``t1`` Series: end times indexed by decision times).

Boundary conventions (see each class):

* :class:`PurgedKFold` — ``np.array_split`` folds; ``convention="strict"`` (AFML Snippets
  7.1 + 7.2: touching endpoints overlap, embargo widens the test window before purging) or
  ``"afml_7_3"`` (the literal Snippet 7.3: touching is not overlap).
* :class:`CombinatorialPurgedCV` — ``C(N, k)`` splits, ``φ = C(N-1, k-1)`` paths; purge by
  ``t1`` overlap (strict) or by row count ``purge_bars`` (skfolio); ``fold_sizing``
  ``"array_split"`` or ``"remainder_last"`` (skfolio).
* :class:`PurgedWalkForward` — skfolio's no-period ``WalkForward``, expanding or rolling, purge by
  row count or by ``t1`` (a training label may not end at or after the test's first decision).

Examples
--------
>>> import numpy as np
>>> from sklearn.linear_model import LinearRegression
>>> from sklearn.model_selection import cross_val_score
>>> X, y = np.arange(24.0).reshape(12, 2), np.arange(12.0)
>>> cross_val_score(LinearRegression(), X, y, cv=CombinatorialPurgedCV(4, 2)).round(6).tolist()
[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

from validation._cpcv import MAX_COMBINATIONS, CombinatorialPurgedCV, n_paths
from validation._purged_kfold import PurgedKFold
from validation._walk_forward import PurgedWalkForward

__all__ = [
    "MAX_COMBINATIONS",
    "CombinatorialPurgedCV",
    "PurgedKFold",
    "PurgedWalkForward",
    "n_paths",
]
