"""The scalar twin of ``models.features._derive`` gives its numbers bit for bit (issue 15).

``models._feature_scalar.derive_one`` computes one order's features in Python floats (the
state once, the plans per candidate); ``derive_features`` on the order's row repeated once per
candidate is the reference. Every feature it writes is compared with ``assert_array_equal``
(NaN where NaN, no tolerance) on rows that reach every branch: no session that day, unknown or
zero sizes, an empty book side, both depth sides zero, unknown and tied regime probabilities,
an unknown regime label, given and missing shares outstanding, both sides.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import serving_rows

from models._feature_registry import _STRATEGIES, NS_DAY, FeatureConfig
from models._feature_scalar import PLAN_DEPENDENT, derive_one
from models._feature_time import sessions_around
from models.features import FEATURES, PLAN_INPUTS, STATE_INPUTS, derive_features

K = 7  # candidates
STATE_NUMBERS = [c for c in STATE_INPUTS if c != "regime_known"]


def _rows() -> pd.DataFrame:
    r = serving_rows(120, seed=23)
    rng = np.random.default_rng(4)
    for c in ("depth_bid", "depth_ask", "touch_bid_sz", "touch_ask_sz"):
        r[c] = rng.choice([0.0, 300.0, 2500.0, np.nan], len(r))
    r["tick_size"] = rng.choice([0.01, 0.0, np.nan], len(r))
    r["mdv"] = rng.choice([np.nan, 4e5, 0.0], len(r))
    r["trade_intensity_base"] = rng.choice([np.nan, 0.0, 12.5], len(r))
    r["shares_outstanding"] = rng.choice([np.nan, 0.0, 5e7], len(r))
    p = rng.dirichlet([1, 1, 1], len(r))
    for i, k in enumerate(("calm", "volatile", "crisis")):
        r[f"regime_p_{k}"] = p[:, i]
    r.loc[::9, "regime_p_crisis"] = np.nan
    r.loc[1::9, ["regime_p_calm", "regime_p_volatile", "regime_p_crisis"]] = 0.25  # a tie
    r.loc[2::11, "regime_known"] = "sideways"
    r.loc[3::11, "regime_known"] = None
    r.loc[4::13, "adv"] = 0.0
    r.loc[5::13, "expected_volume"] = np.nan
    sat = pd.Timestamp("2025-01-18 15:00", tz="UTC")  # a Saturday: no session
    r.loc[6::10, "decision_ts"] = sat
    r.loc[6::10, "end_ts"] = sat + pd.Timedelta(minutes=30)
    r.loc[7::17, "end_ts"] = r.loc[7::17, "decision_ts"]  # zero duration
    return r.reset_index(drop=True)


def _plans(rng: np.random.Generator) -> dict[str, np.ndarray]:
    plan = {"strategy": rng.choice(np.array(_STRATEGIES, dtype=object), K)}
    for c in PLAN_INPUTS[1:]:
        v = rng.uniform(0.0, 1.0, K)
        v[rng.random(K) < 0.2] = np.nan
        plan[c] = v
    return plan


@pytest.mark.parametrize("seed", [0, 1])
def test_derive_one_equals_derive_features_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    cfg = FeatureConfig()
    rows = _rows()
    covered = set()
    for rec in rows.to_dict("records"):
        plan = _plans(rng)
        dec = pd.Timestamp(rec["decision_ts"]).value
        end = pd.Timestamp(rec["end_ts"]).value
        # the reference: the row repeated once per candidate, the plans filled in
        frame = {c: np.full(K, float(rec[c])) for c in
                 (*STATE_NUMBERS, "qty", "shares_outstanding")}
        frame["side"] = np.full(K, int(rec["side"]), np.int64)
        frame["decision_ts"] = np.full(K, dec, np.int64).view("datetime64[ns]")
        frame["end_ts"] = np.full(K, end, np.int64).view("datetime64[ns]")
        frame["regime_known"] = np.full(K, rec["regime_known"], dtype=object)
        frame.update(plan)
        want = derive_features(frame, config=cfg)
        day = dec // NS_DAY
        ok, op, cl = sessions_around(np.array([day]), cfg.calendar).lookup(np.array([day]))
        onehot = {f"strategy_{k}": (plan["strategy"].astype(str) == k).astype(np.float64)
                  for k in _STRATEGIES}
        const, vary = derive_one(
            {c: float(rec[c]) for c in STATE_NUMBERS}, regime_known=rec["regime_known"],
            side=int(rec["side"]), qty=float(rec["qty"]), decision_ns=dec, end_ns=end,
            session=(bool(ok[0]), int(op[0]), int(cl[0])),
            shares_outstanding=float(rec["shares_outstanding"]), plan=plan,
            strategy_onehot=onehot, cfg=cfg)
        assert set(vary) == set(PLAN_DEPENDENT)
        for name, ref in want.items():
            if name == "regime_known":
                continue
            got = vary[name] if name in vary else np.full(K, const[name])
            np.testing.assert_array_equal(np.asarray(got, np.float64),
                                          np.asarray(ref, np.float64), err_msg=name)
            covered.add(name)
    # every feature but the two parametric estimates (given, not derived) and the regime's
    # label (not a number; regime_code is its code) was compared
    assert {f.name for f in FEATURES} - covered == {"sqrt_pred_bps", "athl_pred_bps",
                                                    "regime_known"}


def test_the_rows_reach_the_branches():
    # the edge rows above do what they say: no session, an unknown regime, a zero-depth book
    rows = _rows()
    cfg = FeatureConfig()
    want = derive_features({**{c: rows[c].to_numpy() for c in rows.columns
                                if c not in ("strategy", "order_id", "symbol")}},
                           config=cfg)
    assert np.isnan(want["time_of_day"]).sum() >= 10
    assert np.isnan(want["regime_code"]).sum() >= 10
    assert np.isnan(want["regime_hmm_code"]).sum() >= 10
    assert np.isnan(want["depth_imbalance"]).any()
    assert np.isfinite(want["depth_imbalance"]).any()
    assert (want["duration_min"] == 0).any()
    assert math.isnan(float(want["pct_adv"][4]))
