"""Counterfactual impact: the same market path with and without our orders (issue 3, item 8).

A synthetic desk's children (:class:`models.desk_history.DeskHistory`) are executed twice on the
**same** synthetic market path and the same simulator random stream: once with the physics'
impact (our footprint: temporary, permanent, transient) and once without it (the prices the
market would have shown had we not traded). The difference of the two shortfalls is the cost of
our own impact with the market's noise cancelled exactly (the spread and fees are paid in both
runs and cancel too). Binned by participation, it is the empirical impact curve, set beside the
square-root law ``Y sigma sqrt(Q/V)`` of the ground truth and the ATHL closed form
``I/2 + K`` (no spread) of the simulator's parameters.

Examples
--------
>>> from models.synthetic_market import SyntheticMarketConfig, generate_market
>>> from models.desk_history import DeskHistoryConfig, simulate_desk_history
>>> m = generate_market(SyntheticMarketConfig(n_symbols=2, n_sessions=8, seed=1,
...                                           micro={"quote_interval_s": 60.0}))
>>> h = simulate_desk_history(m, DeskHistoryConfig(n_orders=400))
>>> curve = counterfactual_impact(m, h, n_buckets=4)
>>> bool(curve["impact_bps"].is_monotonic_increasing)
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.desk_history import DeskHistory, execute_on_market
from models.simulator import SESSION_NS, SimulatorConfig, athl_expected_cost_bps

__all__ = ["counterfactual_impact", "impact_per_order"]

_Z95 = 1.959963984540054


def impact_per_order(market, history: DeskHistory, *, sim: SimulatorConfig | None = None,
                     seed: int = 0) -> pd.DataFrame:
    """Per order: ``order_id, participation, pct_adv, impact_bps, sqrt_law_bps, athl_bps``.

    ``impact_bps`` = shortfall with our impact minus shortfall without it, same market path and
    seed (``sim``: default ``SimulatorConfig.from_truth(market.truth.impact)``).
    ``participation`` = ``qty / (true_adv * T)``, ``T`` the order's window in 6.5-hour days.
    """
    if history.child_orders is None or history.child_orders.empty:
        raise ValueError("the desk history has no child_orders to re-run; build it with "
                         "models.desk_history.simulate_desk_history")
    po = history.parent_orders
    missing = [c for c in ("true_adv", "true_sigma", "arrival_mid", "arrival_spread_bps")
               if c not in po.columns]
    if missing:
        raise ValueError(f"counterfactual_impact needs a synthetic desk history; parent_orders "
                         f"lack {missing}")
    cfg = sim or SimulatorConfig.from_truth(market.truth.impact)
    with_us, without = execute_on_market(market, po, history.child_orders, cfg, seed=seed)
    qty = po["qty"].to_numpy(np.float64)
    adv = po["true_adv"].to_numpy(np.float64)
    sig = po["true_sigma"].to_numpy(np.float64)
    days = (po["end_ts"] - po["decision_ts"]).dt.total_seconds().to_numpy() * 1e9 / SESSION_NS
    truth = market.truth.impact
    no_spread = cfg.model_copy(update={"pay_half_spread": False,
                                       "fees": cfg.fees.model_copy(update={
                                           "taker_fee_bps": 0.0, "taker_fee_per_share": 0.0})})
    return pd.DataFrame({
        "order_id": po["order_id"].astype(str).to_numpy(),
        "strategy": po["strategy"].astype(str).to_numpy(),
        "participation": qty / (adv * days), "pct_adv": qty / adv,
        "impact_bps": with_us.shortfall_bps - without.shortfall_bps,
        "sqrt_law_bps": truth.sqrt_law_y * sig * (qty / adv) ** truth.sqrt_law_exponent * 1e4,
        "athl_bps": athl_expected_cost_bps(qty, adv, sig, days, 0.0,
                                           po["shares_outstanding"].to_numpy(np.float64),
                                           no_spread),
    })


def counterfactual_impact(market, history: DeskHistory, *, sim: SimulatorConfig | None = None,
                          n_buckets: int = 8, seed: int = 0) -> pd.DataFrame:
    """The impact curve by participation: our orders' cost of impact against the truth.

    Parameters
    ----------
    market : models.synthetic_market.SyntheticMarket
        The market the history was simulated on (its mid path is re-used).
    history : DeskHistory
        From :func:`models.desk_history.simulate_desk_history`.
    sim : SimulatorConfig, optional
        Physics (default: the market's true impact).
    n_buckets : int, default=8
        Equal-count buckets of participation (``qty / (ADV * T)``).
    seed : int, default=0
        Simulator random stream, the same for both runs.

    Returns
    -------
    pandas.DataFrame
        One row per bucket (increasing participation): ``bucket, n, participation`` (median),
        ``participation_lo, participation_hi`` (bucket edges), ``pct_adv`` (median),
        ``impact_bps`` (mean of with-minus-without), ``impact_se``, ``impact_ci_lo,
        impact_ci_hi`` (95%, normal), ``sqrt_law_bps`` (mean of the truth ``Y sigma sqrt(Q/V)``
        over the bucket's orders), ``athl_bps`` (mean of the ATHL closed form ``I/2 + K``).
    """
    if n_buckets < 1:
        raise ValueError(f"n_buckets must be >= 1, got {n_buckets}")
    per = impact_per_order(market, history, sim=sim, seed=seed)
    per = per[np.isfinite(per["impact_bps"]) & np.isfinite(per["participation"])]
    if len(per) < n_buckets:
        raise ValueError(f"{len(per)} filled orders cannot fill {n_buckets} buckets")
    per = per.assign(bucket=pd.qcut(np.log(per["participation"]), n_buckets, labels=False))
    g = per.groupby("bucket", sort=True)
    out = pd.DataFrame({
        "n": g.size(),
        "participation": g["participation"].median(),
        "participation_lo": g["participation"].min(),
        "participation_hi": g["participation"].max(),
        "pct_adv": g["pct_adv"].median(),
        "impact_bps": g["impact_bps"].mean(),
        "impact_se": g["impact_bps"].std(ddof=1) / np.sqrt(g.size()),
        "sqrt_law_bps": g["sqrt_law_bps"].mean(),
        "athl_bps": g["athl_bps"].mean(),
    }).reset_index()
    out["impact_se"] = out["impact_se"].fillna(0.0)
    out["impact_ci_lo"] = out["impact_bps"] - _Z95 * out["impact_se"]
    out["impact_ci_hi"] = out["impact_bps"] + _Z95 * out["impact_se"]
    cols = ["bucket", "n", "participation", "participation_lo", "participation_hi", "pct_adv",
            "impact_bps", "impact_se", "impact_ci_lo", "impact_ci_hi", "sqrt_law_bps", "athl_bps"]
    return out[cols]
