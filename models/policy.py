r"""An execution policy that acts on the cost model's prediction (issue 14).

For each parent order the policy scores a candidate set of execution plans with the registered
cost model (its mean and its 80 % band) and chooses the one that minimizes

.. math::

    J(a) = \hat\mu(x, a) + \lambda \, \hat\sigma(x, a), \qquad
    \hat\sigma = \frac{\hat q_{90} - \hat q_{10}}{2 \cdot 1.2816},

the predicted mean cost plus the desk's risk aversion ``lambda`` (bps of cost per bps of sd)
times the predicted risk, within the risk limits (:class:`models.risk_controls.RiskLimits`:
a candidate whose largest child or participation breaks a limit is not considered).

A **candidate** (:class:`Candidate`) is a schedule family, its urgency and a passive share:
TWAP and VWAP, marketable or with every other child resting at the near touch; POV at a target
participation; Almgren–Chriss at several ``kappa T`` (urgency, :func:`models.schedules.schedule_batch`);
IS-urgency with an exponential decay. Every candidate works the order from its decision to its
``end_ts`` on the desk's child grid, so children always sum to the parent and never fall
outside ``[decision_ts, end_ts]``.

The cost model sees a candidate the way it saw the desk's history: through the plan summary
(:func:`models.desk_history.plan_summary`: children, passive share, front load, timing variance,
rate shape) and the strategy one-hot, joined to the order's market state at the decision
(:func:`models.features.features_from_state`, the serving path), so the same trees price every
candidate.

Exploration and propensities: with ``explore > 0`` the policy is epsilon-greedy; it logs
``propensity`` = P(chosen candidate | order) and ``explored`` so that its fills can train the next
model and be evaluated off-policy (:mod:`models.ope`) without feedback bias.

Every decision is explained: :attr:`PolicyDecisions.candidates` holds, per order and candidate,
the predicted mean, band, risk, objective and whether the limits allowed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from models.desk_history import PLAN_COLUMNS, plan_summary
from models.features import PLAN_INPUTS, features_from_state
from models.schedules import schedule_batch
from models.simulator import MARKETABLE, PASSIVE, SESSION_NS

__all__ = ["Z80", "Candidate", "PolicyConfig", "PolicyDecisions", "adaptive_children",
           "candidate_children", "candidate_grid", "decide", "limits_mask", "plan_frame"]

Z80: Final = 1.2815515655446004
"""The standard normal's 90 % quantile: an 80 % band is ``+-Z80`` sd."""

_NS_MIN: Final = 60_000_000_000


class Candidate(BaseModel):
    """One execution plan of a parent order.

    ``family``: twap | vwap | pov | almgren_chriss | is_urgency; ``param``: the family's urgency
    (``kappa T`` for Almgren–Chriss, the decay for IS-urgency, the target participation for
    POV; ignored by TWAP and VWAP); ``passive``: share of children resting at the near touch
    (every ``round(1 / passive)``-th child; 0 = all marketable)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: str
    param: float = 0.0
    passive: float = Field(0.0, ge=0, le=1)

    @property
    def name(self) -> str:
        p = {"almgren_chriss": f"kT={self.param:g}", "is_urgency": f"u={self.param:g}",
             "pov": f"rate={self.param:g}"}.get(self.family, "")
        tag = f"{self.family}({p})" if p else self.family
        return f"{tag}+passive{self.passive:g}" if self.passive > 0 else tag


def candidate_grid() -> tuple[Candidate, ...]:
    """The default candidate set: 14 plans from patient to urgent."""
    c = [Candidate(family="twap"), Candidate(family="twap", passive=0.5),
         Candidate(family="vwap"), Candidate(family="vwap", passive=0.5),
         Candidate(family="pov", param=0.05)]
    c += [Candidate(family="almgren_chriss", param=k) for k in (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)]
    c += [Candidate(family="almgren_chriss", param=2.0, passive=0.5)]
    c += [Candidate(family="is_urgency", param=u) for u in (1.0, 3.0)]
    return tuple(c)


class PolicyConfig(BaseModel):
    """What the policy decides with (frozen)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    risk_aversion: float = Field(0.5, ge=0)  # lambda: bps of mean cost per bps of predicted sd
    explore: float = Field(0.0, ge=0, lt=1)  # epsilon: share of orders given a uniform candidate
    child_interval_min: float = Field(5.0, gt=0)  # the desk's child grid
    max_children: int = Field(40, ge=1)
    pov_max_rate: float = Field(1.0, gt=0, le=1)
    seed: int = 0


# =========================================================================== plans
def _grid(orders: pd.DataFrame, cfg: PolicyConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                             np.ndarray]:
    dec = orders["decision_ts"].dt.as_unit("ns").array.asi8
    end = orders["end_ts"].dt.as_unit("ns").array.asi8
    qty = orders["qty"].to_numpy(np.float64)
    n_sl = np.clip(np.ceil((end - dec) / (cfg.child_interval_min * _NS_MIN)), 1,
                   cfg.max_children).astype(np.int64)
    return dec, end, qty, n_sl


def candidate_children(orders: pd.DataFrame, cand: Candidate, *,
                       config: PolicyConfig | None = None,
                       volume_history: dict[str, pd.Series] | None = None,
                       param_scale: np.ndarray | None = None) -> pd.DataFrame:
    """Children of every order of ``orders`` under ``cand``: ``order_id, decision_ts, qty,
    side, kind`` (the simulator's child orders) and ``strategy`` (the family the order was
    worked with: ``twap`` where a VWAP/POV had no usable volume profile for its symbol),
    parent-major and in time order.

    ``param_scale`` multiplies the urgency (``kappa T``, the IS decay) per order: the adaptive
    policy keeps an order's ``kappa`` when it re-plans a shorter remainder (``kappa T``
    scaled by the remaining share of the horizon), so that re-planning is time-consistent.

    VWAP and POV need each symbol's volume history (``volume_history[symbol]``: volume per
    5-minute bin of earlier sessions); without it the orders of that symbol are worked TWAP."""
    cfg = config or PolicyConfig()
    dec, end, qty, n_sl = _grid(orders, cfg)
    sym = orders["symbol"].astype(str).to_numpy()
    parts = []

    def run(kind: str, idx: np.ndarray, **kw: Any) -> None:
        if idx.size:
            s = schedule_batch(kind, dec[idx], end[idx], qty[idx], n_slices=n_sl[idx], **kw)
            parts.append((idx[s.order_idx], s.slice_ns, s.child_qty))

    every = np.arange(len(orders))
    family = np.full(len(orders), cand.family, dtype=object)
    if cand.family in ("vwap", "pov"):
        for s_ in np.unique(sym):
            idx = every[sym == s_]
            vh = (volume_history or {}).get(s_)
            kw: dict[str, Any] = {"rate": cand.param, "max_rate": cfg.pov_max_rate} \
                if cand.family == "pov" else {}
            try:
                if vh is None:
                    raise ValueError("no volume history")
                run(cand.family, idx, volume_history=vh, **kw)
            except ValueError:  # no usable profile: worked, and labelled, TWAP (as the desk)
                run("twap", idx)
                family[idx] = "twap"
    elif cand.family in ("almgren_chriss", "is_urgency"):
        p = np.full(len(orders), cand.param) * (1.0 if param_scale is None
                                                else np.asarray(param_scale, np.float64))
        kw = {"kappa_t": p} if cand.family == "almgren_chriss" else {"urgency": p}
        run(cand.family, every, **kw)
    elif cand.family == "twap":
        run("twap", every)
    else:
        raise ValueError(f"unknown schedule family {cand.family!r}")
    pi = np.concatenate([p[0] for p in parts])
    t = np.concatenate([p[1] for p in parts])
    q = np.concatenate([p[2] for p in parts])
    o = np.lexsort((t, pi))
    pi, t, q = pi[o], t[o], q[o]
    first = np.r_[0, np.flatnonzero(np.diff(pi)) + 1]
    rank = np.arange(len(pi)) - np.repeat(first, np.diff(np.r_[first, len(pi)]))
    kind = np.full(len(pi), MARKETABLE, np.int8)
    if cand.passive > 0:
        step = max(round(1 / cand.passive), 1)
        kind[rank % step == step - 1] = PASSIVE
    return pd.DataFrame({"order_id": orders["order_id"].astype(str).to_numpy()[pi],
                         "decision_ts": pd.to_datetime(t, utc=True), "qty": q,
                         "side": orders["side"].to_numpy(np.int64)[pi], "kind": kind,
                         "strategy": family[pi].astype(str)})


def plan_frame(orders: pd.DataFrame, children: pd.DataFrame, cand: Candidate, *,
               beta: float = 0.6, session_ns: int = SESSION_NS) -> pd.DataFrame:
    """The plan inputs of the cost model (:data:`models.features.PLAN_INPUTS`) of each order
    under ``cand``, one row per order in ``orders``' order."""
    plan = plan_summary(children, orders, beta=beta, session_ns=session_ns)
    out = pd.DataFrame({"strategy": cand.family}, index=orders.index)
    if "strategy" in children.columns:  # the family each order was worked with (fallbacks)
        fam = children.groupby("order_id", sort=False)["strategy"].first()
        got = fam.reindex(orders["order_id"].astype(str)).to_numpy(dtype=object)
        out["strategy"] = np.where(pd.isna(got), cand.family, got)
    for c in PLAN_COLUMNS:
        out[c] = plan[c].to_numpy()
    return out[list(PLAN_INPUTS)]


def limits_mask(orders: pd.DataFrame, children: Sequence[pd.DataFrame], limits: Any, *,
                adv: str = "adv", session_ns: int = SESSION_NS) -> np.ndarray:
    """``(n_orders, n_candidates)``: whether every child of the candidate's plan of the order is
    within ``limits`` (:class:`models.risk_controls.RiskLimits`) before it leaves: its size
    within ``max_child_qty`` and its participation in its slot (child qty / (``adv`` x slot /
    session)) within ``max_participation``; the kill switch allows nothing."""
    n = len(orders)
    ok = np.ones((n, len(children)), bool)
    if limits is None:
        return ok
    if getattr(limits, "kill_switch", False):
        return ok & False
    ids = pd.Index(orders["order_id"].astype(str))
    end = orders["end_ts"].dt.as_unit("ns").array.asi8
    v = orders[adv].to_numpy(np.float64) if adv in orders else np.full(n, np.nan)
    for j, ch in enumerate(children):
        pi = ids.get_indexer(ch["order_id"].astype(str))
        q = ch["qty"].to_numpy(np.float64)
        bad = np.zeros(len(ch), bool)
        if limits.max_child_qty is not None:
            bad |= q > limits.max_child_qty
        if limits.max_participation is not None:
            t = ch["decision_ts"].dt.as_unit("ns").array.asi8
            last = np.append(pi[1:] != pi[:-1], True)
            nxt = np.where(last, end[pi], np.append(t[1:], 0))
            slot = np.maximum(nxt - t, 1_000_000_000) / session_ns
            part = q / (v[pi] * slot)
            bad |= np.isfinite(part) & (part > limits.max_participation)
        ok[np.unique(pi[bad]), j] = False
    return ok


# =========================================================================== decisions
@dataclass(frozen=True)
class PolicyDecisions:
    """The policy's choice for each order and how it got there.

    ``chosen``: one row per order (``order_id``, ``candidate`` index and ``name``, ``family``,
    ``param``, ``passive``, ``pred_mean_bps``, ``pred_lo_bps``, ``pred_hi_bps``,
    ``pred_sd_bps``, ``objective``, ``greedy`` (the candidate the objective picks),
    ``explored``, ``propensity``, ``n_allowed``). ``candidates``: one row per order and
    candidate (the same columns plus ``allowed``): the explanation of every decision."""

    chosen: pd.DataFrame
    candidates: pd.DataFrame
    grid: tuple[Candidate, ...]
    config: PolicyConfig

    def explain(self, order_id: str) -> pd.DataFrame:
        """The candidates of one order, best objective first."""
        c = self.candidates[self.candidates["order_id"] == str(order_id)]
        if c.empty:
            raise KeyError(f"no decision for order {order_id!r}")
        return c.sort_values("objective").reset_index(drop=True)


def decide(bundle: Any, state: pd.DataFrame, *, config: PolicyConfig | None = None,
           grid: Sequence[Candidate] | None = None,
           children: Sequence[pd.DataFrame] | None = None,
           allowed: np.ndarray | None = None,
           volume_history: dict[str, pd.Series] | None = None,
           feature_config: Any = None) -> PolicyDecisions:
    """Choose a candidate for every order of ``state``.

    Parameters
    ----------
    bundle : models.cost_bundle.CostModelBundle
        The cost model (its ``predict`` on feature rows, its ``calibrations``).
    state : pandas.DataFrame
        One row per parent order: the order (``order_id, symbol, side, qty, decision_ts,
        end_ts``) and its market state at the decision (:data:`models.features.STATE_INPUTS`;
        e.g. the rows of :func:`models.features.build_features`).
    config : PolicyConfig, optional
    grid : sequence of Candidate, optional
        Default :func:`candidate_grid`.
    children : sequence of DataFrame, optional
        :func:`candidate_children` of each candidate (computed when not given).
    allowed : ndarray of bool, shape (n_orders, n_candidates), optional
        False where a candidate breaks a risk limit (never chosen, not even to explore).
    volume_history : dict, optional
        Per symbol, for VWAP and POV (:func:`candidate_children`).
    feature_config : FeatureConfig, optional
        How the plan features are derived (the session calendar); default the bundle's. A
        24-hour venue's orders need its own calendar, as their state was built with.
    """
    cfg = config or PolicyConfig()
    grid = tuple(grid or candidate_grid())
    st = state.reset_index(drop=True)
    n, k = len(st), len(grid)
    if children is None:
        children = [candidate_children(st, c, config=cfg, volume_history=volume_history)
                    for c in grid]
    rows = []
    for c, ch in zip(grid, children, strict=True):
        rows.append(st.drop(columns=[x for x in PLAN_INPUTS if x in st.columns]).join(
            plan_frame(st, ch, c)))
    stacked = pd.concat(rows, ignore_index=True)  # candidate-major: row = j * n + i
    feats = features_from_state(stacked, config=feature_config
                                or getattr(bundle, "feature_config", None),
                                calibrations=getattr(bundle, "calibrations", None))
    if "venue" in stacked.columns:  # the venue's physics fallback prices what it should
        feats["venue"] = stacked["venue"].to_numpy()
    mean, lo, hi = bundle.predict(feats)
    mean, lo, hi = (np.asarray(v, np.float64).reshape(k, n).T for v in (mean, lo, hi))
    sd = (hi - lo) / (2 * Z80)
    obj = mean + cfg.risk_aversion * sd
    ok = np.ones((n, k), bool) if allowed is None else np.asarray(allowed, bool)
    ok = ok & np.isfinite(obj)
    refused = ~ok.any(axis=1)  # nothing within the limits: the order is not worked
    greedy = np.where(refused, -1, np.argmin(np.where(ok, obj, np.inf), axis=1))
    n_ok = np.maximum(ok.sum(axis=1), 1)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x9011C7]))
    explored = rng.random(n) < cfg.explore
    # a uniform draw over the allowed candidates for the explored orders
    u = rng.random(n)
    cum = np.cumsum(ok, axis=1)
    pick = np.argmax(cum > np.floor(u * n_ok)[:, None], axis=1)
    choice = np.where(refused, -1, np.where(explored, pick, greedy))
    prop = np.where(choice == greedy, 1 - cfg.explore, 0.0) + cfg.explore / n_ok
    i = np.arange(n)
    j = np.maximum(choice, 0)
    oid = st["order_id"].astype(str).to_numpy()

    def of_plan(attr: str, fill: Any) -> np.ndarray:  # the chosen candidate's attribute
        return np.where(refused, fill, np.asarray([getattr(c, attr) for c in grid],
                                                  dtype=object)[j])

    def at(m: np.ndarray) -> np.ndarray:  # the chosen candidate's column of an (n, k) matrix
        return np.where(refused, np.nan, m[i, j])

    chosen = pd.DataFrame({
        "order_id": oid, "candidate": choice,
        "name": of_plan("name", "refused"), "family": of_plan("family", ""),
        "param": of_plan("param", np.nan).astype(np.float64),
        "passive": of_plan("passive", np.nan).astype(np.float64),
        "pred_mean_bps": at(mean), "pred_lo_bps": at(lo), "pred_hi_bps": at(hi),
        "pred_sd_bps": at(sd), "objective": at(obj), "greedy": greedy,
        "explored": explored & (choice != greedy),
        "propensity": np.where(refused, np.nan, prop), "n_allowed": ok.sum(axis=1),
        "reason": np.where(refused, "no candidate plan within the risk limits", "")})
    cands = pd.DataFrame({
        "order_id": np.tile(oid, k), "candidate": np.repeat(np.arange(k), n),
        "name": np.repeat([c.name for c in grid], n),
        "pred_mean_bps": mean.T.ravel(), "pred_lo_bps": lo.T.ravel(), "pred_hi_bps": hi.T.ravel(),
        "pred_sd_bps": sd.T.ravel(), "objective": obj.T.ravel(), "allowed": ok.T.ravel()})
    return PolicyDecisions(chosen, cands, grid, cfg)


# =========================================================================== adaptive
def adaptive_children(orders: pd.DataFrame, state_at: Any, bundle: Any, *,
                      config: PolicyConfig | None = None,
                      grid: Sequence[Candidate] | None = None,
                      volume_history: dict[str, pd.Series] | None = None,
                      limits: Any = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The **adaptive** policy: at each child interval it re-plans what is left of every order
    from the state known then, and sends the first child of the best plan for the remainder.

    The first decision picks among every candidate; later ones keep its family and passive mix
    and re-choose the urgency (Almgren–Chriss ``kappa``, the IS decay) from the updated state:
    letting each interval switch family (a POV's small first child, then a TWAP for the rest)
    was myopic and cost 4-6 bps more than the static plan on the demo's orders.

    ``state_at(sub_orders)`` returns the market state of ``sub_orders`` (``order_id, symbol,
    side, qty, decision_ts, end_ts``: each order's remaining quantity from the interval's start
    to its end) as known at their ``decision_ts`` (point in time: e.g.
    :func:`models.features.build_features` on the sources). The plan's children are marketable
    or passive as the chosen candidate says (a passive plan rests every other child at the touch,
    counted on the order's own intervals, as the static plan does); the remaining quantity is
    updated with the children sent, and the last interval sends whatever is left.

    Returns ``(children, decisions)``: the child orders (as :func:`candidate_children`) and one
    row per order and interval with the plan chosen for the remainder.
    """
    cfg = config or PolicyConfig()
    grid = tuple(grid or candidate_grid())
    o = orders.reset_index(drop=True)
    dec = o["decision_ts"].dt.as_unit("ns").array.asi8
    end = o["end_ts"].dt.as_unit("ns").array.asi8
    step = int(cfg.child_interval_min * _NS_MIN)
    n_sl = np.clip(np.ceil((end - dec) / step), 1, cfg.max_children).astype(np.int64)
    slot = (end - dec) // n_sl
    left = o["qty"].to_numpy(np.float64).copy()
    kids, rows = [], []
    first_pick = np.full(len(o), -1, np.int64)
    same = np.array([[a.family == b.family and a.passive == b.passive for b in grid]
                     for a in grid])  # same[i, j]: j may follow a first choice i
    for k in range(int(n_sl.max())):
        act = np.flatnonzero((k < n_sl) & (left > 1e-9))
        if not act.size:
            break
        t = dec[act] + k * slot[act]
        last = k == n_sl[act] - 1
        sub = pd.DataFrame({"order_id": o["order_id"].astype(str).to_numpy()[act],
                            "symbol": o["symbol"].to_numpy()[act],
                            "side": o["side"].to_numpy()[act], "qty": left[act],
                            "decision_ts": pd.to_datetime(t, utc=True),
                            "end_ts": o["end_ts"].to_numpy()[act]})
        st = state_at(sub).reset_index(drop=True)
        sub_cfg = cfg
        rem = (end[act] - t) / np.maximum(end[act] - dec[act], 1)  # kappa kept, not kappa T
        ch = [candidate_children(sub, c, config=sub_cfg, volume_history=volume_history,
                                 param_scale=rem) for c in grid]
        allowed = limits_mask(sub.assign(adv=st["adv"].to_numpy()) if "adv" in st else sub,
                              ch, limits) if limits is not None \
            else np.ones((len(act), len(grid)), bool)
        if k > 0:  # the family and passive mix stay; the urgency is re-planned
            allowed &= np.where(first_pick[act][:, None] >= 0,
                                same[np.maximum(first_pick[act], 0)], False)
        d = decide(bundle, st, config=sub_cfg.model_copy(update={"explore": 0.0}), grid=grid,
                   children=ch, allowed=allowed)
        pick = d.chosen["candidate"].to_numpy()
        if k == 0:
            first_pick[act] = pick  # -1: refused, and it stays refused
        q = np.zeros(len(act))
        kind = np.full(len(act), MARKETABLE, np.int8)
        for j in np.unique(pick[pick >= 0]):
            m = pick == j
            first = ch[j].groupby("order_id", sort=False).head(1).set_index("order_id")
            q[m] = first.reindex(sub["order_id"][m])["qty"].to_numpy(np.float64)
            if grid[j].passive > 0:  # the passive pattern on the order's own interval count
                every = max(round(1 / grid[j].passive), 1)
                kind[m] = PASSIVE if k % every == every - 1 else MARKETABLE
        # the last interval finishes the order; a refused order sends nothing
        q = np.where(pick < 0, 0.0, np.where(last, left[act], np.minimum(q, left[act])))
        send = q > 0
        kids.append(pd.DataFrame({"order_id": sub["order_id"].to_numpy()[send],
                                  "decision_ts": pd.to_datetime(t[send], utc=True),
                                  "qty": q[send], "side": sub["side"].to_numpy()[send],
                                  "kind": kind[send]}))
        rows.append(d.chosen[["order_id", "name", "pred_mean_bps", "pred_sd_bps"]]
                    .assign(interval=k, remaining=left[act]))
        left[act] -= q
    children = pd.concat(kids, ignore_index=True)
    pi = pd.Index(o["order_id"].astype(str)).get_indexer(children["order_id"])
    o_ = np.lexsort((children["decision_ts"].dt.as_unit("ns").array.asi8, pi))
    return children.iloc[o_].reset_index(drop=True), pd.concat(rows, ignore_index=True)
