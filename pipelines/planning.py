"""Plan parent orders with a registered cost model (``bestex plan ORDERS_FILE``).

Each row of the file is a parent order with its market state at the decision (the serving
schema of the cost model: README, "Serving the cost model"). The policy
(:func:`models.policy.decide`) prices every candidate plan with the model and picks the one that
minimizes predicted mean + ``risk_aversion`` x predicted sd within the risk limits; the result
is, per order, the chosen plan with its predicted cost and band, and the child orders of that
plan.

VWAP and POV need each symbol's intraday volume profile, which a serving row does not carry:
they are left out of the candidates here (the platform's backtests have the profiles).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from models.cost_bundle import check_serving_rows
from models.policy import (
    PolicyConfig,
    PolicyDecisions,
    candidate_children,
    candidate_grid,
    decide,
    limits_mask,
)
from models.risk_controls import RiskLimits
from pipelines.registry import ModelRegistry, default_registry

__all__ = ["PlanResult", "plan_orders"]


@dataclass(frozen=True)
class PlanResult:
    """``plans``: one row per order (the chosen plan, its predicted cost and band);
    ``children``: the child orders of the chosen plans; ``decisions``: every candidate;
    ``model_uri``: the model that priced them."""

    plans: pd.DataFrame
    children: pd.DataFrame
    decisions: PolicyDecisions
    model_uri: str


def plan_orders(rows: pd.DataFrame, *, ref: str | int = "champion", risk_aversion: float = 0.5,
                limits: RiskLimits | None = None,
                registry: ModelRegistry | None = None) -> PlanResult:
    """Plan every order of ``rows`` (serving rows; a :class:`ServingInputError` names a bad
    column and row) with the registered model ``ref``."""
    checked = check_serving_rows(rows)
    if "order_id" not in rows.columns:
        checked.insert(0, "order_id", [f"row{i}" for i in range(len(rows))])
    else:
        checked.insert(0, "order_id", rows["order_id"].astype(str).to_numpy())
    reg = registry or default_registry()
    uri = reg.model_uri(ref)
    bundle = reg.load_bundle(uri)
    cfg = PolicyConfig(risk_aversion=risk_aversion)
    grid = tuple(c for c in candidate_grid() if c.family not in ("vwap", "pov"))
    kids = [candidate_children(checked, c, config=cfg) for c in grid]
    allowed = limits_mask(checked, kids, limits) if limits is not None else None
    dec = decide(bundle, checked, config=cfg, grid=grid, children=kids, allowed=allowed)
    c = dec.chosen
    plans = pd.DataFrame({
        "order_id": c["order_id"], "symbol": checked["symbol"].to_numpy(),
        "side": checked["side"].to_numpy(), "qty": checked["qty"].to_numpy(),
        "plan": c["name"], "family": c["family"], "urgency": c["param"],
        "passive_share": c["passive"], "mean_bps": c["pred_mean_bps"],
        "p10_bps": c["pred_lo_bps"], "p90_bps": c["pred_hi_bps"], "sd_bps": c["pred_sd_bps"],
        "objective_bps": c["objective"], "reason": c["reason"]})
    parts: list[Any] = []
    for j, ch in enumerate(kids):
        mine = set(c.loc[c["candidate"] == j, "order_id"])
        if mine:
            parts.append(ch[ch["order_id"].isin(mine)])
    children = (pd.concat(parts, ignore_index=True) if parts else kids[0].iloc[:0])
    children = children.rename(columns={"decision_ts": "send_ts"}).assign(
        kind=lambda d: d["kind"].map({0: "marketable", 1: "passive"}))
    n = children.groupby("order_id").size()
    plans["n_children"] = plans["order_id"].map(n).fillna(0).astype(int)
    return PlanResult(plans, children, dec, uri)
