"""The features of one order's state in Python floats: :func:`models.features._derive`, bit for bit.

The serving path prices one parent order's candidate plans (14 rows that share the order and
its market state and differ only in the plan). ``_derive`` on those rows spends ~0.2 ms in
about 150 numpy calls on 14-element arrays, nearly all of it per-call overhead, and touches
enough code and memory to be slow again on caches another computation has just evicted (the
paper-trading planner, which builds the state just before it decides). Here the features that
do not depend on the plan are computed once, in Python floats (IEEE doubles, the same
operations in the same order as ``_derive``: the same results), and only the plan-dependent ones
as arrays over the candidates.

Twin of :func:`models.features._derive`: a change there must be made here, and
``tests/test_feature_scalar.py`` compares the two on every feature, bit for bit (NaN where NaN),
over rows that reach every branch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from models._feature_registry import _STRATEGIES, NS_MIN, REGIME_LABELS, FeatureConfig

__all__ = ["PLAN_DEPENDENT", "derive_one"]

PLAN_DEPENDENT: Final = (*(f"strategy_{k}" for k in _STRATEGIES), "plan_n_children",
                         "plan_passive_share", "plan_front_load", "plan_timing_var_days",
                         "plan_rate_shape", "spread_cost_bps", "timing_risk_bps",
                         "temp_impact_shape_bps")
"""The derived features that differ between an order's candidate plans."""
_NAN: Final = math.nan


@functools.lru_cache(maxsize=8)
def _codes(names: tuple[str, ...]) -> dict[str, int]:
    """``_derive``'s regime label -> code table (built once per set of names)."""
    return {name: i for i, name in enumerate(names)}


def _ratio(a: float, b: float) -> float:
    """``a / b`` where ``b > 0``, else NaN (``np.where(b > 0, a / b, nan)``)."""
    return a / b if b > 0 else _NAN


def _ieee_div(a: float, b: float) -> float:
    """``a / b`` as numpy divides (x/0 is +-inf, 0/0 and nan/0 NaN) without its overhead."""
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or a != a:
            return _NAN
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def derive_one(state: Mapping[str, float], *, regime_known: Any, side: int, qty: float,
               decision_ns: int, end_ns: int, session: tuple[bool, int, int],
               shares_outstanding: float, plan: Mapping[str, NDArray[Any]],
               strategy_onehot: Mapping[str, NDArray[np.float64]], cfg: FeatureConfig
               ) -> tuple[dict[str, float], dict[str, NDArray[np.float64]]]:
    """Every feature ``_derive`` writes, for one order and its candidate plans.

    Parameters
    ----------
    state : mapping of str to float
        The numeric :data:`models.features.STATE_INPUTS` (NaN where unknown).
    regime_known : object
        The rule-based regime label (a string, or anything else for unknown).
    side, qty, decision_ns, end_ns : the order.
    session : (bool, int, int)
        ``_Sessions.lookup`` of the decision's UTC day: (a session that day, open ns, close ns).
    shares_outstanding : float
        NaN where unknown (then ``cfg.turnover * adv``).
    plan : mapping of str to array, shape (n_candidates,)
        ``plan_n_children, plan_passive_share, plan_front_load, plan_timing_var_days,
        plan_rate_shape`` of each candidate.
    strategy_onehot : mapping of str to array
        ``strategy_<family>`` of each candidate (1.0 where its executed family is that one).

    Returns
    -------
    (dict of str to float, dict of str to array)
        The features common to the candidates (the state inputs included), and the
        :data:`PLAN_DEPENDENT` ones per candidate.
    """
    s = dict(state)
    d, end = decision_ns, end_ns
    day = d // 86_400_000_000_000
    ok, op, cl = session
    dur = (end - d) / NS_MIN
    sess_min = (cl - op) / NS_MIN if ok else _NAN
    s["side"] = float(side)
    s["qty"] = qty
    s["duration_min"] = dur
    s["duration_days"] = dur / sess_min
    tod = (d - op) / NS_MIN if ok else _NAN
    s["time_of_day"] = tod
    s["session_frac"] = tod / sess_min
    s["time_to_close_min"] = (cl - d) / NS_MIN if ok else _NAN
    s["day_of_week"] = float((day + 3) % 7)
    adv = s["adv"]
    so = shares_outstanding if (math.isfinite(shares_outstanding) and shares_outstanding > 0) \
        else cfg.turnover * adv
    s["shares_outstanding"] = so
    s["pct_adv"] = _ratio(qty, adv)
    s["adv_turnover"] = _ratio(adv, so)
    mdv = s["mdv"] if math.isfinite(s["mdv"]) else adv
    pct_mdv = s["pct_mdv"] = _ratio(qty, mdv)
    s["qty_over_touch_depth"] = _ratio(qty, s["touch_ask_sz"] if side > 0 else s["touch_bid_sz"])
    tick = s["tick_size"]
    s["arrival_spread_ticks"] = (s["arrival_spread_bps"] * 1e-4 * s["arrival_mid"] / tick
                                 if tick > 0 else _NAN)
    dd = s["duration_days"]
    sig = s["sigma_seen"]
    s["sigma_horizon_bps"] = sig * (math.sqrt(dd) if dd >= 0 else _NAN) * 1e4
    s["trade_intensity_rel"] = _ratio(s["trade_intensity"], s["trade_intensity_base"])
    p = [s[f"regime_p_{k}"] for k in REGIME_LABELS]
    if all(math.isfinite(v) for v in p):
        best = 0
        for i in range(1, len(p)):
            if p[i] > p[best]:
                best = i
        s["regime_hmm_code"] = float(best)
    else:
        s["regime_hmm_code"] = _NAN
    s["l1_imbalance_signed"] = side * s["l1_imbalance"]
    s["trade_imbalance_signed"] = side * s["trade_imbalance"]
    s["implied_participation"] = _ratio(qty, s["expected_volume"])
    lut = _codes(tuple(cfg.regime_names))
    s["regime_code"] = float(lut.get(regime_known, _NAN)) if isinstance(regime_known, str) \
        else _NAN
    s["perm_impact_shape_bps"] = sig * pct_mdv * 1e4
    bid, ask = s["depth_bid"], s["depth_ask"]
    s["depth_imbalance"] = _ieee_div(bid - ask, bid + ask)
    s["qty_over_depth"] = _ratio(qty, ask if side > 0 else bid)

    v: dict[str, NDArray[np.float64]] = dict(strategy_onehot)
    for c in ("plan_n_children", "plan_passive_share", "plan_front_load",
              "plan_timing_var_days", "plan_rate_shape"):
        v[c] = np.asarray(plan[c], dtype=np.float64)
    ps = v["plan_passive_share"].copy()  # np.nan_to_num(nan=0.0), without its overhead
    ps[np.isnan(ps)] = 0.0
    big = np.isinf(ps)
    if big.any():
        ps[big] = np.copysign(np.finfo(np.float64).max, ps[big])
    v["spread_cost_bps"] = s["arrival_spread_bps"] / 2 * (1 - 2 * ps)
    v["timing_risk_bps"] = sig * np.sqrt(v["plan_timing_var_days"]) * 1e4
    # numpy's power on an array (its SIMD kernel), not libm's pow: they differ in the last bit
    size = np.full(v["plan_rate_shape"].shape, pct_mdv) ** cfg.impact_beta
    v["temp_impact_shape_bps"] = sig * size * v["plan_rate_shape"] * 1e4
    return s, v
