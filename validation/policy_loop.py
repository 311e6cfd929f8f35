"""The reflexive loop (issue 14, item 3): the policy's fills become the next model's training
data, without feedback bias, and the policy's value is estimated off-policy.

The out-of-sample sessions are cut into consecutive blocks. In iteration ``k`` the policy with
model ``M_k`` works the orders of block ``k`` epsilon-greedily (:func:`models.policy.decide`,
``explore``), logging each order's chosen plan and its **propensity**. Every plan of every
order is simulated (:func:`validation.policy_backtest.simulate_candidates`), so the truth is
known for any action; the loop itself only *uses* the logged action's realized cost. Then:

* the **model's error** against the true expected cost, out of sample (``M_k`` has not seen
  block ``k``): MAE over the chosen plans and over every candidate plan;
* the **policy's cost**: the true expected cost and the objective of the plans it ran;
* **off-policy evaluation** of ``M_k``'s greedy policy, of the same at four times the risk
  aversion, and of TWAP from the logged data alone
  (:mod:`models.ope`: inverse propensity, self-normalized, doubly robust with ``M_k``'s
  predictions as the reward model), beside the truth of those policies on the same orders;
* ``M_0`` is refit from the base rows the way every later model is (``refit_start``), so the
  iterations differ by the logged fills alone;
* the logged orders (features of the plan that ran, realized cost as the label; only those
  whose cost is known before the next block's first decision: an embargo) join the
  training rows with weight ``1 / propensity`` clipped at ``weight_clip`` (10) and normalized to
  mean 1 in the block: an explored plan stands for the orders on which it was not tried, so the
  plans the policy favours do not crowd the others out of the next fit (the feedback bias).
  Unclipped weights (up to ``K / epsilon`` = 140) let a few explored orders' noisy realized
  costs dominate a block: on the demo the model's error over every plan of a fixed evaluation
  set grew from 2.13 to 2.35 bps over three iterations, against 2.13 to 1.84 clipped. ``M_{k+1}`` is refit with the
  champion's hyperparameters (:func:`models.cost_training.fit_bundle`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models import ope
from models.cost_models import CostModelParams
from models.cost_training import TrainingConfig, fit_bundle
from models.features import features_from_state
from models.policy import Candidate, PolicyConfig, candidate_children, decide, plan_frame
from validation.policy_backtest import simulate_candidates

__all__ = ["LoopResult", "run_loop"]


@dataclass(frozen=True)
class LoopResult:
    """``iterations``: one row per iteration (see the module docstring); ``ope``: one row per
    iteration, target policy and estimator, with the truth beside; ``bundles``: the models
    ``M_0 .. M_K``."""

    iterations: pd.DataFrame
    ope: pd.DataFrame
    bundles: list[Any]


def _logged_rows(state: pd.DataFrame, children: Sequence[pd.DataFrame], grid: Sequence[Candidate],
                 choice: np.ndarray, realized: np.ndarray, bundle: Any) -> pd.DataFrame:
    """Training rows of the plans that ran: the features of each order under its chosen plan
    and the realized shortfall as ``is_bps``."""
    parts = []
    for j, c in enumerate(grid):
        m = choice == j
        if not m.any():
            continue
        st = state[m]
        ids = set(st["order_id"].astype(str))
        ch = children[j][children[j]["order_id"].astype(str).isin(ids)]
        plan = plan_frame(st, ch, c)
        parts.append(st.drop(columns=[x for x in plan.columns if x in st.columns]).join(plan))
    rows = pd.concat(parts).sort_index()  # the orders' own order (state has a range index)
    feats = features_from_state(rows, config=getattr(bundle, "feature_config", None),
                                calibrations=getattr(bundle, "calibrations", None))
    feats["is_bps"] = realized
    return feats


def _estimates(y: np.ndarray, p_log: np.ndarray, p_t: np.ndarray, q_log: np.ndarray,
               q_t: np.ndarray) -> list[tuple[str, Any]]:
    """IPS, SNIPS and DR of one target; an estimator that cannot be computed gives its reason."""
    out: list[tuple[str, Any]] = []
    for name in ("ips", "snips", "dr"):
        try:
            est = (ope.ips(y, p_log, p_t) if name == "ips" else ope.snips(y, p_log, p_t)
                   if name == "snips" else ope.doubly_robust(y, p_log, p_t, q_log, q_t))
        except ValueError as exc:
            out.append((name, str(exc)))
            continue
        out.append((name, est))
    return out


def run_loop(blocks: Sequence[tuple[pd.DataFrame, pd.DataFrame]], market: Any, bundle: Any,
             base_train: pd.DataFrame, params: CostModelParams, sim: Any, *,
             grid: Sequence[Candidate], policy: PolicyConfig,
             training: TrainingConfig | None = None,
             volume_history: dict[str, pd.Series] | None = None, path: Any = None,
             evaluation: tuple[pd.DataFrame, Sequence[pd.DataFrame], Any] | None = None,
             weight_clip: float = 10.0, refit_start: bool = True,
             progress: Callable[[str], object] | None = None) -> LoopResult:
    """Run the loop over ``blocks`` (``(orders, state)`` per block, in time order: ``orders``
    with :func:`models.desk_history.arrival_state`'s columns, ``state`` their decision-time
    features), starting from ``bundle`` (``M_0``) trained on ``base_train``.

    ``evaluation``: ``(state, children, outcomes)`` of a fixed set of orders with every plan
    simulated (:func:`validation.policy_backtest.simulate_candidates`), decided after every
    block's fills are known, on which each model ``M_k`` is also scored (``eval_*`` columns: its error over every plan, the greedy policy's
    true objective and its regret against the best plan, and the share of decisions that
    changed since ``M_(k-1)``): the same orders every iteration, so the columns show whether
    the loop settles."""
    say = progress or (lambda _m: None)
    cfg = training or TrainingConfig()
    grid = tuple(grid)
    features = list(bundle.features)
    train = base_train.assign(_w=1.0)
    carry = {"feature_config": getattr(bundle, "feature_config", None),
             "calibrations": getattr(bundle, "calibrations", None)}
    # M_0 refit the way every later M_k is (fit_bundle, the base rows alone), so that what
    # changes from one iteration to the next is the logged fills, not the fitting recipe
    models = [fit_bundle(train, params, features, cfg, weight=train["_w"].to_numpy(np.float64),
                         **carry) if refit_start else bundle]
    it_rows, ope_rows = [], []
    prev_eval: np.ndarray | None = None
    for k, (orders, state) in enumerate(blocks):
        m_k = models[-1]
        ev: dict[str, float] = {}
        if evaluation is not None:
            e_state, e_kids, e_out = evaluation
            e = decide(m_k, e_state, config=policy.model_copy(update={"explore": 0.0}),
                       grid=grid, children=e_kids)
            g = e.chosen["candidate"].to_numpy(np.int64)
            ne = len(g)
            e_pm = e.candidates["pred_mean_bps"].to_numpy(np.float64).reshape(len(grid), ne).T
            e_obj = e_out.truth + policy.risk_aversion * e_out.true_sd
            ev = {"eval_model_mae_all_plans_bps": float(np.nanmean(np.abs(e_pm - e_out.truth))),
                  "eval_policy_objective_bps": float(np.nanmean(e_obj[np.arange(ne), g])),
                  "eval_regret_bps": float(np.nanmean(e_obj[np.arange(ne), g]
                                                      - np.nanmin(e_obj, axis=1))),
                  "eval_decisions_changed": float("nan") if prev_eval is None
                  else float(np.mean(g != prev_eval))}
            prev_eval = g
        kids = [candidate_children(orders, c, config=policy, volume_history=volume_history)
                for c in grid]
        pcfg = policy.model_copy(update={"seed": policy.seed + k})
        dec = decide(m_k, state, config=pcfg, grid=grid, children=kids)
        out = simulate_candidates(market, orders, grid, kids, sim, path=path)
        n, i = len(orders), np.arange(len(orders))
        ch = dec.chosen["candidate"].to_numpy(np.int64)
        if (ch < 0).any():
            raise ValueError("the loop runs without risk limits: no order may be refused")
        twap = next(j for j, c in enumerate(grid) if c.family == "twap" and c.passive == 0)
        greedy = dec.chosen["greedy"].to_numpy(np.int64)
        pm = dec.candidates["pred_mean_bps"].to_numpy(np.float64).reshape(len(grid), n).T
        lam = policy.risk_aversion
        obj = out.truth + lam * out.true_sd
        y = out.realized[i, ch]
        it_rows.append({
            "iteration": k, "n_orders": n, "train_rows": len(train),
            "explored_share": float(dec.chosen["explored"].mean()),
            "model_mae_chosen_bps": float(np.nanmean(np.abs(pm[i, ch] - out.truth[i, ch]))),
            "model_mae_all_plans_bps": float(np.nanmean(np.abs(pm - out.truth))),
            "policy_truth_bps": float(np.nanmean(out.truth[i, ch])),
            "policy_objective_bps": float(np.nanmean(obj[i, ch])),
            "greedy_truth_bps": float(np.nanmean(out.truth[i, greedy])),
            "greedy_objective_bps": float(np.nanmean(obj[i, greedy])),
            "oracle_objective_bps": float(np.nanmean(np.nanmin(obj, axis=1))),
            "twap_truth_bps": float(np.nanmean(out.truth[:, twap])), **ev})
        # off-policy: the greedy policy of M_k and TWAP, from the logged (action, propensity,
        # realized cost) alone; the reward model is M_k's predicted mean
        p_log = dec.chosen["propensity"].to_numpy(np.float64)
        psd = dec.candidates["pred_sd_bps"].to_numpy(np.float64).reshape(len(grid), n).T
        averse = np.argmin(pm + 4 * max(lam, 0.25) * psd, axis=1)  # a more risk-averse desk
        for target, a in (("greedy", greedy), ("greedy_4x_risk_aversion", averse),
                          ("twap", np.full(n, twap))):
            p_t = (ch == a).astype(np.float64)
            q_log, q_t = pm[i, ch], pm[i, a]
            truth_v = float(np.nanmean(out.truth[i, a]))
            real_v = float(np.nanmean(out.realized[i, a]))
            for name, est in _estimates(y, p_log, p_t, q_log, q_t):
                if isinstance(est, str):  # no logged order took the target's plan
                    ope_rows.append({"iteration": k, "target": target, "estimator": name,
                                     "estimate_bps": np.nan, "truth_bps": truth_v,
                                     "realized_bps": real_v, "covers_truth": False,
                                     "covers_realized": False, "note": est})
                    continue
                ope_rows.append({"iteration": k, "target": target, "estimator": name,
                                 "estimate_bps": est.estimate, "ci_low": est.ci_low,
                                 "ci_high": est.ci_high, "ess": est.ess,
                                 "truth_bps": truth_v, "realized_bps": real_v,
                                 "covers_truth": est.ci_low <= truth_v <= est.ci_high,
                                 "covers_realized": est.ci_low <= real_v <= est.ci_high,
                                 "note": ""})
        say(f"loop {k}: model MAE {it_rows[-1]['model_mae_chosen_bps']:.2f} bps, policy "
            f"{it_rows[-1]['policy_truth_bps']:.2f} bps (objective "
            f"{it_rows[-1]['policy_objective_bps']:.2f}, oracle "
            f"{it_rows[-1]['oracle_objective_bps']:.2f})")
        # the logged fills join the training rows, inverse-propensity weighted
        if k == len(blocks) - 1:
            break
        logged = _logged_rows(state.reset_index(drop=True), kids, grid, ch, y, m_k)
        w_log = np.minimum(1.0 / p_log, weight_clip)
        logged["_w"] = w_log / w_log.mean()
        # embargo: only the fills whose cost is known before the next block's first decision
        known = (orders["end_ts"] < blocks[k + 1][0]["decision_ts"].min()).to_numpy()
        logged = logged[known]
        train = pd.concat([train, logged[[c for c in train.columns if c in logged.columns]]],
                          ignore_index=True)
        models.append(fit_bundle(train, params, features, cfg,
                                 weight=train["_w"].to_numpy(np.float64), **carry))
    return LoopResult(pd.DataFrame(it_rows), pd.DataFrame(ope_rows), models)
