"""An XGBoost tree ensemble evaluated by a numba loop, for a handful of rows at a time.

XGBoost's predictor is built for many rows: on the 14 candidate plans of one parent order its
fixed cost per call (about 0.2 ms, most of it not the trees) is most of a decision. Here the
trees of a booster (its JSON model) are kept as XGBoost's own node arrays and walked by a
compiled loop in XGBoost's order: every prediction starts at the base score (float32) and adds
each tree's leaf (float32), tree by tree; ``x < split`` goes left and a missing value takes the
node's default branch; a multi-quantile model's outputs are sorted, as XGBoost returns them.
The caller checks the numbers against XGBoost on its own rows before
using it (:func:`models._policy_fast._dense_call`).

Only the identity-link objectives of the cost models are supported (``reg:squarederror``,
``reg:pseudohubererror``, ``reg:quantileerror``) and numerical splits.
"""

from __future__ import annotations

import json
from typing import Any, Final

import numba as nb
import numpy as np
from numpy.typing import NDArray

__all__ = ["TreeEnsemble"]

_IDENTITY: Final = ("reg:squarederror", "reg:pseudohubererror", "reg:quantileerror")


@nb.njit(cache=True, nogil=True)
def _walk(x, start, left, feature, split, default_left, group, base,
          n_targets):  # pragma: no cover - compiled
    # a node's right child is its left child + 1 (XGBoost allocates children in pairs; checked
    # when the trees are read), so the walk reads 11 bytes a node instead of 29: the trees of a
    # cost model stay in the caches another computation leaves them
    n = x.shape[0]
    out = np.empty((n, n_targets), np.float32)
    for r in range(n):
        for g in range(n_targets):
            out[r, g] = base[g]
    # all rows walk a tree level by level together: their loads overlap, and the step to the
    # next node is a select, not a branch (a branch on the data mispredicts half the time)
    node = np.zeros(n, np.int64)
    for t in range(start.shape[0] - 1):
        off = start[t]
        g = group[t]
        for r in range(n):
            node[r] = 0
        active = n
        while active:
            active = 0
            for r in range(n):
                i = off + node[r]
                lc = left[i]
                if lc != -1:
                    v = x[r, feature[i]]
                    right = (v >= split[i]) | (np.isnan(v) & ~default_left[i])
                    node[r] = lc + right
                    active += 1
        for r in range(n):
            out[r, g] += split[off + node[r]]
    return out


class TreeEnsemble:
    """The trees of an XGBoost ``Booster`` (gbtree) with an ``inplace_predict`` of its own."""

    def __init__(self, booster: Any) -> None:
        model = json.loads(booster.save_raw("json"))["learner"]
        name = model["objective"]["name"]
        if name not in _IDENTITY:
            raise ValueError(f"TreeEnsemble: objective {name!r} is not an identity link")
        gb = model["gradient_booster"]
        if gb["name"] != "gbtree":
            raise ValueError(f"TreeEnsemble: booster {gb['name']!r} is not gbtree")
        trees = gb["model"]["trees"]
        if any(any(t["split_type"]) for t in trees):
            raise ValueError("TreeEnsemble: categorical splits are not supported")
        param = model["learner_model_param"]
        base = param["base_score"].replace("E", "e")
        self.base = np.asarray(json.loads(base) if base.startswith("[") else [float(base)],
                               np.float32).ravel()
        self.n_targets = max(int(param.get("num_target", "1")), 1)
        if self.base.size != self.n_targets:
            self.base = np.full(self.n_targets, self.base[0], np.float32)
        sizes = [len(t["left_children"]) for t in trees]
        self.start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

        def cat(key: str, dt: Any) -> NDArray[Any]:
            return (np.concatenate([np.asarray(t[key], dt) for t in trees]) if trees
                    else np.zeros(0, dt))

        left, right = cat("left_children", np.int64), cat("right_children", np.int64)
        inner = left != -1
        if not np.array_equal(right[inner], left[inner] + 1):
            raise ValueError("TreeEnsemble: a node's right child is not its left child + 1")
        feature = cat("split_indices", np.int64)
        if left.size and (left.max() >= 2**31 or feature.max() >= 2**15):
            raise ValueError("TreeEnsemble: a tree or the feature count is too large")
        self.left = left.astype(np.int32)
        self.feature = feature.astype(np.int16)
        self.split = cat("split_conditions", np.float32)  # a leaf's value on a leaf
        self.default_left = cat("default_left", np.bool_)
        self.group = np.asarray(gb["model"]["tree_info"], np.int64)
        # XGBoost returns a multi-quantile model's outputs sorted (non-crossing quantiles)
        self.sort = name == "reg:quantileerror" and self.n_targets > 1

    def inplace_predict(self, data: NDArray[np.float32], *, missing: float = np.nan
                        ) -> NDArray[np.float32]:
        """XGBoost's ``inplace_predict`` of dense float32 rows (``missing`` must be NaN)."""
        if not np.isnan(missing):
            raise ValueError("TreeEnsemble: only NaN marks a missing value")
        x = np.ascontiguousarray(data, dtype=np.float32)
        out = _walk(x, self.start, self.left, self.feature, self.split,
                    self.default_left, self.group, self.base, self.n_targets)
        if self.sort:
            out.sort(axis=1)
        return out[:, 0] if self.n_targets == 1 else out
