"""Splitters: exact index arrays from ../shared/REFERENCES.md §1, the sklearn contract, errors,
and a property test against a brute-force statement of purging and embargo."""

from __future__ import annotations

import copy
import doctest
import inspect
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import cross_val_score

import validation._cpcv
import validation._purged_kfold
import validation._walk_forward
import validation.splitters
from validation.splitters import CombinatorialPurgedCV, PurgedKFold, PurgedWalkForward, n_paths

# ------------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------------


def minute_bars(n: int, horizon_min: int = 2) -> pd.Series:
    """n one-minute bars from 2019-01-01 00:00, each label ending ``horizon_min`` later."""
    t0 = pd.date_range("2019-01-01", periods=n, freq="min")
    return pd.Series(t0 + pd.Timedelta(minutes=horizon_min), index=t0)


def hourly(n: int, horizon: str) -> pd.Series:
    t0 = pd.date_range("2000-01-01", periods=n, freq="h")
    return pd.Series(t0 + pd.Timedelta(horizon), index=t0)


def timeseriescv_21() -> pd.Series:
    """timeseriescv's inhomogeneous fixture: 11 samples at 2 h and 10 at 59 min, labels of 1 h."""
    a = pd.date_range("2000-01-01", periods=11, freq="2h")
    b = pd.date_range("2000-01-01", periods=10, freq="59min")
    t0 = a.append(b).sort_values()
    return pd.Series(t0 + pd.Timedelta(hours=1), index=t0)


def trains(cv, n: int) -> list[list[int]]:
    return [train.tolist() for train, _ in cv.split(np.zeros((n, 1)))]


def rng(a: int, b: int) -> list[int]:
    """Inclusive range, as REFERENCES writes ``[a..b]``."""
    return list(range(a, b + 1))


# ------------------------------------------------------------------------------------------------
# φ table (§1.1)
# ------------------------------------------------------------------------------------------------

PHI_TABLE = {
    3: [(1, 3, 1), (2, 3, 2)],
    4: [(1, 4, 1), (2, 6, 3), (3, 4, 3)],
    5: [(1, 5, 1), (2, 10, 4), (3, 10, 6), (4, 5, 4)],
    6: [(1, 6, 1), (2, 15, 5), (3, 20, 10), (4, 15, 10), (5, 6, 5)],
    8: [(1, 8, 1), (2, 28, 7), (3, 56, 21), (4, 70, 35), (5, 56, 35), (6, 28, 21), (7, 8, 7)],
    10: [
        (1, 10, 1),
        (2, 45, 9),
        (3, 120, 36),
        (4, 210, 84),
        (5, 252, 126),
        (6, 210, 126),
        (7, 120, 84),
        (8, 45, 36),
        (9, 10, 9),
    ],
}


@pytest.mark.parametrize(
    ("n_folds", "k", "splits", "paths"),
    [(n, *row) for n, rows in PHI_TABLE.items() for row in rows],
)
def test_phi_table(n_folds, k, splits, paths):
    cv = CombinatorialPurgedCV(n_folds, k)
    assert (cv.get_n_splits(), n_paths(n_folds, k), cv.n_test_paths) == (splits, paths, paths)
    # each group is a test group in exactly φ splits
    assert np.bincount(cv.test_set_index.ravel(), minlength=n_folds).tolist() == [paths] * n_folds


# ------------------------------------------------------------------------------------------------
# PurgedKFold: §1.2 (10 bars, t1 = t0 + 2 min, 3 folds: test 0-3, 4-6, 7-9)
# ------------------------------------------------------------------------------------------------

KFOLD_ROWS = [
    ("afml_7_3", 0.0, [rng(5, 9), [0, 1, 2, 8, 9], rng(0, 5)]),
    ("afml_7_3", 0.1, [rng(6, 9), [0, 1, 2, 9], rng(0, 5)]),
    ("afml_7_3", 0.2, [rng(7, 9), [0, 1, 2], rng(0, 5)]),
    ("strict", 0.0, [rng(6, 9), [0, 1, 9], rng(0, 4)]),
    ("strict", 0.1, [rng(7, 9), [0, 1], rng(0, 4)]),
    ("strict", 0.2, [[8, 9], [0, 1], rng(0, 4)]),
]


@pytest.mark.parametrize(("convention", "pct", "expected"), KFOLD_ROWS)
def test_purged_kfold_reference_rows(convention, pct, expected):
    cv = PurgedKFold(3, t1=minute_bars(10), embargo_pct=pct, convention=convention)
    splits = list(cv.split(np.zeros((10, 2))))
    assert [test.tolist() for _, test in splits] == [rng(0, 3), rng(4, 6), rng(7, 9)]
    assert [train.tolist() for train, _ in splits] == expected


def test_purged_kfold_20_bars_literal():
    cv = PurgedKFold(3, t1=minute_bars(20), convention="afml_7_3")
    assert trains(cv, 20) == [rng(8, 19), rng(0, 5) + rng(15, 19), rng(0, 12)]


def test_purged_kfold_tz_aware_and_numeric_times_agree():
    t1 = minute_bars(10)
    utc = pd.Series(t1.dt.tz_localize("UTC").to_numpy(), index=t1.index.tz_localize("UTC"))
    bars = pd.Series(np.arange(10) + 2, index=np.arange(10))
    expected = trains(PurgedKFold(3, t1=t1), 10)
    assert trains(PurgedKFold(3, t1=utc), 10) == expected == trains(PurgedKFold(3, t1=bars), 10)


# ------------------------------------------------------------------------------------------------
# CombinatorialPurgedCV: skfolio (§1.3), X = 12 rows
# ------------------------------------------------------------------------------------------------


def test_cpcv_skfolio_n3_k2_no_purge():
    cv = CombinatorialPurgedCV(3, 2, fold_sizing="remainder_last")
    got = [(tr.tolist(), [t.tolist() for t in ts]) for tr, ts in cv.split_groups(np.zeros((12, 2)))]
    assert got == [
        (rng(8, 11), [rng(0, 3), rng(4, 7)]),
        (rng(4, 7), [rng(0, 3), rng(8, 11)]),
        (rng(0, 3), [rng(4, 7), rng(8, 11)]),
    ]
    assert (cv.get_n_splits(), cv.n_test_paths) == (3, 2)
    assert cv.test_set_index.tolist() == [[0, 1], [0, 2], [1, 2]]
    assert cv.recombined_paths.tolist() == [[0, 1], [0, 2], [1, 2]]
    assert cv.get_path_ids().tolist() == [[0, 0], [1, 0], [1, 1]]


@pytest.mark.parametrize(
    ("purge", "embargo", "expected"),
    [
        (1, 0, [[9, 10, 11], [5, 6], [0, 1, 2]]),
        (0, 1, [[9, 10, 11], [5, 6, 7], [0, 1, 2, 3]]),
    ],
)
def test_cpcv_skfolio_n3_k2_purge_embargo(purge, embargo, expected):
    cv = CombinatorialPurgedCV(3, 2, purge_bars=purge, embargo_bars=embargo)
    assert trains(cv, 12) == expected


def test_cpcv_skfolio_n5_k2():
    cv = CombinatorialPurgedCV(5, 2, fold_sizing="remainder_last")
    assert (cv.get_n_splits(), cv.n_test_paths) == (10, 4)
    assert trains(cv, 12) == [
        rng(4, 11),
        [2, 3, *rng(6, 11)],
        [2, 3, 4, 5, *rng(8, 11)],
        rng(2, 7),
        [0, 1, *rng(6, 11)],
        [0, 1, 4, 5, *rng(8, 11)],
        [0, 1, *rng(4, 7)],
        [*rng(0, 3), *rng(8, 11)],
        [*rng(0, 3), 6, 7],
        rng(0, 5),
    ]
    assert cv.recombined_paths.tolist() == [
        [0, 1, 2, 3],
        [0, 4, 5, 6],
        [1, 4, 7, 8],
        [2, 5, 7, 9],
        [3, 6, 8, 9],
    ]
    assert cv.get_path_ids().tolist() == [
        [0, 0],
        [1, 0],
        [2, 0],
        [3, 0],
        [1, 1],
        [2, 1],
        [3, 1],
        [2, 2],
        [3, 2],
        [3, 3],
    ]


def test_cpcv_skfolio_n6_k2_n100():
    cv = CombinatorialPurgedCV(6, 2, fold_sizing="remainder_last")
    assert (cv.get_n_splits(), cv.n_test_paths) == (15, 5)
    assert cv.recombined_paths.tolist() == [
        [0, 1, 2, 3, 4],
        [0, 5, 6, 7, 8],
        [1, 5, 9, 10, 11],
        [2, 6, 9, 12, 13],
        [3, 7, 10, 12, 14],
        [4, 8, 11, 13, 14],
    ]
    groups = [ts for _, ts in cv.split_groups(np.zeros((100, 1)))]
    bounds = {
        g: (t[0], t[-1])
        for ts, gs in zip(groups, cv.test_set_index, strict=True)
        for t, g in zip(ts, gs, strict=True)
    }
    assert [bounds[g] for g in range(6)] == [
        (0, 15),
        (16, 31),
        (32, 47),
        (48, 63),
        (64, 79),
        (80, 99),
    ]


def test_cpcv_array_split_groups_n100_mlfinlab():
    """mlfinlab CombinatorialPurgedKFold(6, 2) on 100 rows: (first, last) test row per split."""
    firsts_lasts = [(t[0], t[-1]) for _, t in CombinatorialPurgedCV(6, 2).split(np.zeros((100, 1)))]
    assert firsts_lasts[:5] == [(0, 33), (0, 50), (0, 67), (0, 83), (0, 99)]
    assert firsts_lasts[-5:] == [(34, 83), (34, 99), (51, 83), (51, 99), (68, 99)]


# ------------------------------------------------------------------------------------------------
# CombinatorialPurgedCV: timeseriescv CombPurgedKFoldCV(4, 2), embargo 0 (§1.4)
# ------------------------------------------------------------------------------------------------


def test_cpcv_timeseriescv_21_samples():
    t1 = timeseriescv_21()
    cv = CombinatorialPurgedCV(4, 2, t1=t1)
    got = {
        tuple(g): (tr.tolist(), te.tolist())
        for g, (tr, te) in zip(cv.test_set_index.tolist(), cv.split(np.zeros((21, 1))), strict=True)
    }
    # timeseriescv numbers splits in reversed combinations order: 1=(2,3) ... 6=(0,1)
    assert got[(1, 2)] == ([0, 1, 2, 3, 4, *rng(16, 20)], rng(6, 15))  # split 3: 5 purged
    assert got[(0, 3)] == (rng(7, 15), [*rng(0, 5), *rng(16, 20)])  # split 4: 6 embargoed
    assert got[(2, 3)][0] == rng(0, 8)  # split 1
    assert got[(0, 2)][0] == [7, 8, *rng(16, 20)]  # split 5
    assert got[(0, 1)][0] == rng(12, 20)  # split 6
    # split 2: timeseriescv keeps row 11 ([06:53, 07:53]) although it overlaps test row 10
    # ([06:00, 07:00]): its embargo reads `test_indices[:test_fold_end]`, the max over *all*
    # test groups, and then skips the embargo. We purge it (strict overlap).
    assert got[(1, 3)][0] == [0, 1, 2, 3, 4, 12, 13, 14, 15]


@pytest.mark.parametrize(
    ("horizon", "embargo_bars", "first_train"),
    [("119min", 0, 7), ("120min", 0, 8), ("119min", 2, 9), ("120min", 2, 10)],
)
def test_embargo_timeseriescv_unit(horizon, embargo_bars, first_train):
    """Test rows [0, 6), train after: equality counts as overlap; 2 bars ≈ embargo_td=120min."""
    cv = CombinatorialPurgedCV(2, 1, t1=hourly(12, horizon), embargo_bars=embargo_bars)
    train, test = next(iter(cv.split(np.zeros((12, 1)))))
    assert (test.tolist(), train.tolist()) == (rng(0, 5), rng(first_train, 11))


# ------------------------------------------------------------------------------------------------
# PurgedWalkForward: skfolio WalkForward without period (12 obs), timeseriescv purge unit test
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("test", "train", "purge", "partial", "expanding", "expected"),
    [
        (4, 1, 1, True, True, [([0], rng(2, 5)), (rng(0, 4), rng(6, 9)), (rng(0, 8), [10, 11])]),
        (4, 1, 1, False, True, [([0], rng(2, 5)), (rng(0, 4), rng(6, 9))]),
        (4, 1, 1, True, False, [([0], rng(2, 5)), ([4], rng(6, 9)), ([8], [10, 11])]),
        (4, 2, 1, True, True, [([0, 1], rng(3, 6)), (rng(0, 5), rng(7, 10)), (rng(0, 9), [11])]),
        (4, 2, 0, True, True, [([0, 1], rng(2, 5)), (rng(0, 5), rng(6, 9)), (rng(0, 9), [10, 11])]),
        (6, 3, 0, True, True, [([0, 1, 2], rng(3, 8)), (rng(0, 8), [9, 10, 11])]),
    ],
)
def test_walk_forward_skfolio(test, train, purge, partial, expanding, expected):
    cv = PurgedWalkForward(
        test, train_size=train, purge_bars=purge, partial_test=partial, expanding=expanding
    )
    X = np.zeros((12, 2))
    assert [(tr.tolist(), te.tolist()) for tr, te in cv.split(X)] == expected
    assert cv.get_n_splits(X) == len(expected)


@pytest.mark.parametrize(
    ("horizon", "expected_train"), [("119min", rng(0, 5)), ("120min", rng(0, 4))]
)
def test_walk_forward_purge_timeseriescv_unit(horizon, expected_train):
    """Hourly rows, test from row 7: a label ending exactly at the test's first decision is purged
    (row 6 always overlaps; row 5 only with 120-minute labels)."""
    cv = PurgedWalkForward(5, train_size=7, t1=hourly(12, horizon))
    train, test = next(iter(cv.split(np.zeros((12, 1)))))
    assert (train.tolist(), test.tolist()) == (expected_train, rng(7, 11))


# ------------------------------------------------------------------------------------------------
# backtest paths
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_folds", "k", "n"), [(3, 2, 12), (5, 2, 12), (6, 3, 20), (6, 2, 100)])
def test_backtest_paths_cover_every_row_once(n_folds, k, n):
    cv = CombinatorialPurgedCV(n_folds, k)
    splits = list(cv.split(np.zeros((n, 1))))
    paths = cv.backtest_paths(
        [np.stack([test, np.full_like(test, s)], 1) for s, (_, test) in enumerate(splits)]
    )
    assert paths.shape == (n_paths(n_folds, k), n, 2)
    assert (paths[:, :, 0] == np.arange(n)).all()  # each path covers each row once, in place
    rp = cv.recombined_paths
    bounds = [(t[0], t[-1] + 1) for t in np.array_split(np.arange(n), n_folds)]
    for p in range(cv.n_test_paths):
        for g, (a, b) in enumerate(bounds):
            assert (paths[p, a:b, 1] == rp[g, p]).all()


def test_backtest_paths_errors():
    cv = CombinatorialPurgedCV(3, 2)
    with pytest.raises(ValueError, match="got 2 prediction arrays for 3 splits"):
        cv.backtest_paths([np.zeros(8), np.zeros(8)])
    with pytest.raises(ValueError, match=r"split 0 \(test groups \[0, 1\]\) has 8 test rows but 7"):
        cv.backtest_paths([np.zeros(7), np.zeros(8), np.zeros(9)])


# ------------------------------------------------------------------------------------------------
# parameter and data errors
# ------------------------------------------------------------------------------------------------

T1 = minute_bars(12)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: PurgedKFold(1, t1=T1), r"`n_splits` must be an int >= 2, got `n_splits=1`"),
        (lambda: PurgedKFold(2.0, t1=T1), r"`n_splits` must be an int >= 2, got `n_splits=2.0`"),
        (
            lambda: PurgedKFold(3, t1=T1, embargo_pct=1.0),
            r"`embargo_pct` must be a fraction in \[0, 1\)",
        ),
        (lambda: PurgedKFold(3, t1=T1, convention="loose"), r"`convention` must be one of"),
        (
            lambda: PurgedKFold(3, t1=T1.to_numpy()),
            r"`t1` must be a pandas Series .* got `t1` of type ndarray",
        ),
        (
            lambda: PurgedKFold(3, t1=T1.iloc[::-1]),
            r"must be sorted ascending; row 1 .* t1.sort_index\(\)",
        ),
        (
            lambda: PurgedKFold(3, t1=pd.Series(T1.index - pd.Timedelta("1min"), index=T1.index)),
            r"`t1` row 0: label ends at .* before its decision time",
        ),
        (
            lambda: PurgedKFold(3, t1=pd.Series(T1.to_numpy(), index=T1.index.tz_localize("UTC"))),
            r"both tz-aware or both naive",
        ),
        (lambda: PurgedKFold(3, t1=T1.where(T1.index != T1.index[3])), r"`t1` has 1 missing times"),
        (lambda: CombinatorialPurgedCV(1, 1), r"`n_folds` must be an int >= 2, got `n_folds=1`"),
        (
            lambda: CombinatorialPurgedCV(4, 4),
            r"`n_test_folds` must be below `n_folds=4`, got `n_test_folds=4`",
        ),
        (lambda: CombinatorialPurgedCV(20, 10), r"= 184756 splits exceeds 100000"),
        (lambda: CombinatorialPurgedCV(4, 2, purge_bars=-1), r"`purge_bars` must be an int >= 0"),
        (
            lambda: CombinatorialPurgedCV(4, 2, embargo_bars=1, embargo_pct=0.1),
            r"Set one of `embargo_bars=1` and `embargo_pct=0.1`",
        ),
        (lambda: CombinatorialPurgedCV(4, 2, t1=T1, purge_bars=1), r"`purge_bars=1` with `t1`"),
        (lambda: CombinatorialPurgedCV(4, 2, fold_sizing="even"), r"`fold_sizing` must be one of"),
        (
            lambda: PurgedWalkForward(0, train_size=2),
            r"`test_size` must be an int >= 1, got `test_size=0`",
        ),
        (
            lambda: PurgedWalkForward(2, train_size=2, expanding=1),
            r"`expanding` must be True or False",
        ),
        (
            lambda: PurgedWalkForward(2, train_size=2, t1=T1, purge_bars=1),
            r"`purge_bars=1` with `t1`",
        ),
    ],
)
def test_parameter_errors(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_n_paths_errors():
    with pytest.raises(ValueError, match=r"`n_test_folds` must be in \[1, n_folds\) = \[1, 3\)"):
        n_paths(3, 3)
    assert n_paths(18, 9) == math.comb(17, 8)


@pytest.mark.parametrize(
    ("cv", "n", "match"),
    [
        (PurgedKFold(3, t1=T1), 11, r"X has 11 rows but `t1` has 12"),
        (PurgedKFold(3, t1=minute_bars(2)), 2, r"n_splits=3 greater than the number of samples=2"),
        (
            PurgedKFold(2, t1=minute_bars(4, 30)),
            4,
            r"fold 0 \(test rows 0..1\) has no training rows",
        ),
        (CombinatorialPurgedCV(6, 2), 5, r"n_folds=6 greater than the number of samples=5"),
        (
            CombinatorialPurgedCV(3, 2, purge_bars=4),
            12,
            r"test groups \[0, 1\] has no training rows",
        ),
        (
            PurgedWalkForward(4, train_size=10, purge_bars=2),
            12,
            r"train_size=10 \+ purge_bars=2 \+ 1 rows exceed n_samples=12",
        ),
        (
            PurgedWalkForward(4, train_size=2, t1=minute_bars(12, 5)),
            12,
            r"test block starting at row 2 has no training rows",
        ),
    ],
)
def test_data_errors(cv, n, match):
    with pytest.raises(ValueError, match=match):
        list(cv.split(np.zeros((n, 1))))


def test_misaligned_dataframe_index_is_rejected():
    X = pd.DataFrame({"a": np.arange(12.0)}, index=T1.index + pd.Timedelta("1s"))
    with pytest.raises(ValueError, match=r"X.index \(decision times\) differs from t1.index"):
        list(PurgedKFold(3, t1=T1).split(X))


# ------------------------------------------------------------------------------------------------
# sklearn contract, for every splitter
# ------------------------------------------------------------------------------------------------

SPLITTERS = [
    PurgedKFold(3, t1=T1, embargo_pct=0.1),
    PurgedKFold(4, t1=T1, convention="afml_7_3"),
    CombinatorialPurgedCV(4, 2, t1=minute_bars(12, 1)),
    CombinatorialPurgedCV(3, 1, t1=T1, embargo_pct=0.1),
    CombinatorialPurgedCV(3, 2, purge_bars=1, embargo_bars=1, fold_sizing="remainder_last"),
    PurgedWalkForward(3, train_size=4, t1=T1),
    PurgedWalkForward(3, train_size=3, purge_bars=1, expanding=False),
]


@pytest.mark.parametrize("cv", SPLITTERS, ids=repr)
def test_splitter_contract(cv):
    X = pd.DataFrame({"a": np.arange(12.0), "b": np.arange(12.0) ** 2}, index=T1.index)
    y = pd.Series(3.0 * X["a"] - X["b"] / 10, index=X.index)
    before = copy.deepcopy(cv.__dict__)

    first, second = list(cv.split(X, y)), list(cv.split(X.to_numpy()))
    assert len(first) == cv.get_n_splits(X) > 0
    for (train, test), (train2, test2) in zip(first, second, strict=True):
        assert train.dtype == test.dtype == np.int64
        assert np.array_equal(train, train2)
        assert np.array_equal(test, test2)
        assert np.intersect1d(train, test).size == 0
        assert train.size
        assert test.size
        assert np.all(np.diff(train) > 0)
        assert np.all(np.diff(test) > 0)
    assert cv.__dict__.keys() == before.keys()  # nothing set while iterating
    for key, value in before.items():
        same = (
            value.equals(cv.__dict__[key])
            if isinstance(value, pd.Series)
            else value == cv.__dict__[key]
        )
        assert same, key

    scores = cross_val_score(LinearRegression(), X, y, cv=cv)
    assert scores.shape == (len(first),)
    assert np.isfinite(scores).all()
    # parameters are stored verbatim under their own names (sklearn splitters have no get_params)
    names = [p for p in inspect.signature(type(cv)).parameters]
    rebuilt = type(cv)(**{name: getattr(cv, name) for name in names})
    assert repr(rebuilt) == repr(cv)
    assert [(a.tolist(), b.tolist()) for a, b in rebuilt.split(X)] == [
        (a.tolist(), b.tolist()) for a, b in first
    ]


@pytest.mark.parametrize(
    "module",
    [validation._purged_kfold, validation._cpcv, validation._walk_forward, validation.splitters],
)
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted > 0


# ------------------------------------------------------------------------------------------------
# property test against brute force
# ------------------------------------------------------------------------------------------------


def overlaps(t0, t1, i, j) -> bool:
    """Snippet 7.1, inclusive: train i starts within, ends within, or envelops test j."""
    return (
        (t0[j] <= t0[i] <= t1[j])
        or (t0[j] <= t1[i] <= t1[j])
        or (t0[i] <= t0[j] and t1[j] <= t1[i])
    )


def brute_drop_strict(t0, t1, block, h) -> set[int]:
    """Rows purged or embargoed for one contiguous test block (AFML strict)."""
    n, dt1 = len(t0), max(t1[j] for j in block)
    drop = {i for i in range(n) if i not in block and any(overlaps(t0, t1, i, j) for j in block)}
    after = [i for i in range(n) if t0[i] > dt1]  # embargo: the h bars after the test's max t1
    if h and after:
        last = t0[after[min(h, len(after)) - 1]]
        drop |= {i for i in range(n) if dt1 < t0[i] <= last}
    return drop | set(block)


def brute_drop_literal(t0, t1, block, h) -> set[int]:
    """Snippet 7.3: left keeps t1_i <= t0_test; right keeps from (first t0 >= max t1) + h."""
    n, start, stop, dt1 = len(t0), block[0], block[-1] + 1, max(t1[j] for j in block)
    first = next((i for i in range(n) if t0[i] >= dt1), n)
    keep = {i for i in range(start) if t1[i] <= t0[start]}
    keep |= {i for i in range(stop, n) if i >= first + h}
    return set(range(n)) - keep


def brute_drop_count(n, block, purge, h) -> set[int]:
    start, stop = block[0], block[-1] + 1
    return {i for i in range(n) if start - purge <= i < stop + purge + h}


@st.composite
def labelled_rows(draw):
    n = draw(st.integers(4, 30))
    t0 = np.cumsum(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))  # ties allowed
    t1 = t0 + np.array(draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)))
    return t0.tolist(), t1.tolist()


def check_against(cv, n, expected_trains) -> None:
    if any(not tr for tr in expected_trains):
        with pytest.raises(ValueError, match="no training rows"):
            list(cv.split(np.zeros((n, 1))))
    else:
        assert trains(cv, n) == expected_trains


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    rows=labelled_rows(),
    n_splits=st.integers(2, 5),
    pct=st.sampled_from([0.0, 0.05, 0.1, 0.2]),
    convention=st.sampled_from(["strict", "afml_7_3"]),
)
def test_purged_kfold_matches_brute_force(rows, n_splits, pct, convention):
    t0, t1 = rows
    n = len(t0)
    if n_splits > n:
        return
    h = int(n * pct)
    rule = brute_drop_strict if convention == "strict" else brute_drop_literal
    blocks = [b.tolist() for b in np.array_split(np.arange(n), n_splits)]
    expected = [sorted(set(range(n)) - rule(t0, t1, b, h)) for b in blocks]
    cv = PurgedKFold(n_splits, t1=pd.Series(t1, index=t0), embargo_pct=pct, convention=convention)
    check_against(cv, n, expected)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    rows=labelled_rows(),
    n_folds=st.integers(2, 5),
    k=st.integers(1, 3),
    h=st.integers(0, 3),
    purge=st.integers(0, 2),
    by_time=st.booleans(),
)
def test_cpcv_matches_brute_force(rows, n_folds, k, h, purge, by_time):
    t0, t1 = rows
    n = len(t0)
    if k >= n_folds or n_folds > n:
        return
    blocks = [b.tolist() for b in np.array_split(np.arange(n), n_folds)]
    expected = []
    for i, groups in enumerate(itertools.combinations(range(n_folds), k)):
        drop: set[int] = set()
        for g in groups:
            drop |= (
                brute_drop_strict(t0, t1, blocks[g], h)
                if by_time
                else brute_drop_count(n, blocks[g], purge, h)
            )
        expected.append(sorted(set(range(n)) - drop))
        assert i < math.comb(n_folds, k)
    cv = (
        CombinatorialPurgedCV(n_folds, k, t1=pd.Series(t1, index=t0), embargo_bars=h)
        if by_time
        else CombinatorialPurgedCV(n_folds, k, purge_bars=purge, embargo_bars=h)
    )
    check_against(cv, n, expected)
