"""The compiled tree walk gives XGBoost's own numbers, bit for bit (the policy's fast path)."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from models._tree_eval import TreeEnsemble


def _data(n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = 3 * x[:, 0] + np.sin(2 * x[:, 1]) * 5 + x[:, 2] * x[:, 3] + rng.normal(size=n)
    x[rng.random((n, 6)) < 0.1] = np.nan  # missing values take each node's default branch
    return x, y


@pytest.mark.parametrize("params", [
    {"objective": "reg:squarederror", "max_depth": 5},
    {"objective": "reg:pseudohubererror", "max_depth": 3},
    {"objective": "reg:quantileerror", "quantile_alpha": [0.1, 0.5, 0.9], "max_depth": 4},
])
def test_the_walk_is_xgboosts_prediction(params):
    x, y = _data()
    bst = xgb.train({**params, "seed": 0, "nthread": 1}, xgb.DMatrix(x, label=y, missing=np.nan),
                    60)
    trees = TreeEnsemble(bst)
    xt, _ = _data(500, seed=1)
    want = bst.inplace_predict(xt, missing=np.nan)
    got = trees.inplace_predict(xt)
    assert got.shape == want.shape
    assert np.array_equal(got, want)
    assert np.array_equal(trees.inplace_predict(xt[:14]), want[:14])  # a decision's 14 rows


def test_other_objectives_are_refused():
    x, y = _data(200)
    bst = xgb.train({"objective": "binary:logistic", "nthread": 1},
                    xgb.DMatrix(x, label=(y > 0).astype(float)), 5)
    with pytest.raises(ValueError, match="not an identity link"):
        TreeEnsemble(bst)
