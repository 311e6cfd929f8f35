"""Walk-forward stage: windows, purging and embargo, retraining in every window, stability."""

import numpy as np
import pandas as pd
import pytest

from validation.splitters import PurgedWalkForward
from validation.walk_forward_stage import stability, walk_forward


def _ds(n=700, seed=0):
    rng = np.random.default_rng(seed)
    dec = pd.Timestamp("2024-01-02 14:30", tz="UTC") + pd.to_timedelta(np.arange(n) * 10, "min")
    x = rng.uniform(0, 1, n)
    truth = 5 + 20 * x
    return pd.DataFrame({"decision_ts": dec, "t1": dec + pd.Timedelta("25min"), "x": x,
                         "truth_bps": truth, "is_bps": truth + rng.normal(0, 5, n)})


def _linear(train, test):
    b = np.polyfit(train["x"], train["is_bps"], 1)
    return np.polyval(b, test["x"])


def _mean(train, test):
    return np.full(len(test), train["is_bps"].mean())


def test_window_bounds_by_hand():
    assert PurgedWalkForward.blocks(14, 3) == [(0, 3), (3, 7), (7, 10), (10, 14)]
    assert PurgedWalkForward.blocks(5, 3) == [(0, 1), (1, 2), (2, 3), (3, 5)]
    with pytest.raises(ValueError, match="cannot make"):
        PurgedWalkForward.blocks(5, 3, min_rows=2)
    with pytest.raises(ValueError, match="n_windows"):
        PurgedWalkForward.blocks(14, 0)


def test_walk_forward_tests_the_blocks_of_the_splitter():
    # 14 orders, 3 windows: blocks (0,3),(3,7),(7,10),(10,14); no purging with 1-min labels
    w = walk_forward(_ds(n=14).assign(t1=lambda d: d["decision_ts"] + pd.Timedelta("1min")),
                     _mean, n_windows=3)
    assert w["n_test"].tolist() == [4, 3, 4] * 2
    assert w["n_train"].tolist() == [3, 7, 10, 3, 4, 3]
    with pytest.raises(ValueError, match="cannot make"):
        walk_forward(_ds(n=5), _mean, n_windows=3)


def test_windows_purge_embargo_and_retrain():
    ds = _ds()
    calls = []

    def fit_predict(train, test):
        calls.append(len(train))
        return _linear(train, test)

    w = walk_forward(ds, fit_predict, baselines={"mean": _mean}, n_windows=6,
                     embargo=pd.Timedelta("30min"))
    assert len(w) == 12
    assert len(calls) == 12  # one refit per window and scheme
    assert list(w["scheme"].unique()) == ["expanding", "rolling"]
    # 700 rows in 7 blocks of 100, 10 min apart: a training order needs t1 + 30 min < t0,
    # i.e. a decision before t0 - 55 min, so the 5 orders at t0 - 10 ... t0 - 50 min are left out
    exp = w[w["scheme"] == "expanding"]
    roll = w[w["scheme"] == "rolling"]
    assert exp["n_train"].tolist() == [95, 195, 295, 395, 495, 595]
    assert roll["n_train"].tolist() == [95] * 6
    assert (w["train_max_t1"] + pd.Timedelta("30min") < w["test_start"]).all()
    # the linear model explains the truth; the mean baseline does not
    assert w["beats_mean"].all()
    assert (w["model_truth_mae"] < 2.0).all()
    s = stability(w)
    assert s["share_beats_mean"].tolist() == [1.0, 1.0]
    e = exp["model_truth_mae"]
    assert s.loc[0, "cv"] == pytest.approx(e.std(ddof=1) / e.mean())
    assert s.loc[0, "worst_truth_mae"] == e.max()


def test_missing_columns_and_too_much_purging():
    with pytest.raises(ValueError, match="lacks column"):
        walk_forward(_ds().drop(columns="t1"), _mean)
    with pytest.raises(ValueError, match="training orders left"):
        walk_forward(_ds(n=70), _mean, n_windows=6, embargo=pd.Timedelta("10h"))
