"""Closed-loop backtests of the execution policy (issue 14): every plan on the same orders and
the same price paths, paired against TWAP, VWAP, POV, a fixed-urgency Almgren–Chriss and the
**oracle** Almgren–Chriss that knows the true impact parameters.

:func:`simulate_candidates` executes every candidate plan of :mod:`models.policy` for every
order through the simulator with the order's own footprint, on the market's own mid path
(:func:`models.desk_history.execute_plan`): per order and plan the true expected cost
``truth_bps`` (the simulator's, with the true impact parameters), the realized shortfall
``shortfall_bps`` (the same plus the market's move) and the true timing risk ``true_sd_bps``
(the true volatility times the plan's timing-variance factor). Parents do not interact in the
simulator, so the policy's mix of plans costs, order by order, what each plan costs alone.

:func:`backtest_table` then puts the policy and the benchmarks side by side:

* ``twap``, ``vwap``, ``pov`` and ``ac_fixed`` (Almgren–Chriss at ``kappa T = 2`` for every
  order: a fixed urgency, the desk's recipe) are candidates of the grid, marketable;
* ``oracle_ac``: per order, the Almgren–Chriss urgency (marketable, the grid's ``kappa T``) that
  minimizes the **true** ``E + lambda sd`` — Almgren–Chriss knowing the true impact and
  volatility, with the desk's risk aversion;
* ``oracle``: the same over the whole candidate grid (what a policy with a perfect cost model
  would choose);
* ``policy``: the candidate the policy chose with the cost model's prediction.

Every comparison is paired (the same orders and paths): the mean difference of the true
expected cost and of the realized shortfall, with percentile-bootstrap 95 % intervals over
orders, overall, by regime and by size bucket (% of ADV). The objective column is
``E + lambda sd`` on the truth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from models.desk_history import execute_plan
from models.policy import Candidate
from models.simulator import SimulatorConfig

__all__ = ["BENCHMARKS", "SIZE_BUCKETS", "CandidateOutcomes", "backtest_table", "benchmark_choices",
           "paired_ci", "plot_backtest", "simulate_candidates"]

BENCHMARKS: Final = ("twap", "vwap", "pov", "ac_fixed", "oracle_ac", "oracle")
SIZE_BUCKETS: Final = (0.0, 0.005, 0.02, 0.05, np.inf)
"""Edges of the size buckets, fraction of ADV."""


@dataclass(frozen=True)
class CandidateOutcomes:
    """``(n_orders, n_candidates)`` arrays of the simulated plans (see the module docstring)."""

    truth: np.ndarray
    realized: np.ndarray
    true_sd: np.ndarray
    names: tuple[str, ...]
    grid: tuple[Candidate, ...]


def simulate_candidates(market: Any, orders: pd.DataFrame, grid: Sequence[Candidate],
                        children: Sequence[pd.DataFrame], sim: SimulatorConfig, *,
                        path: Any = None, limits: Any = None) -> CandidateOutcomes:
    """Execute each candidate's children (:func:`models.policy.candidate_children`) of every
    order of ``orders`` (:func:`models.desk_history.arrival_state`'s columns)."""
    n, k = len(orders), len(grid)
    out = {c: np.full((n, k), np.nan) for c in ("truth", "realized", "sd")}
    sigma = orders["true_sigma"].to_numpy(np.float64)
    for j, ch in enumerate(children):
        h = execute_plan(market, orders, ch, sim, path=path, limits=limits)
        o = h.outcomes
        out["truth"][:, j] = o["truth_bps"].to_numpy(np.float64)
        out["realized"][:, j] = o["shortfall_bps"].to_numpy(np.float64)
        out["sd"][:, j] = sigma * np.sqrt(h.parent_orders["plan_timing_var_days"]
                                          .to_numpy(np.float64)) * 1e4
    return CandidateOutcomes(out["truth"], out["realized"], out["sd"],
                             tuple(c.name for c in grid), tuple(grid))


def _index(grid: Sequence[Candidate], family: str, param: float | None = None) -> int:
    for j, c in enumerate(grid):
        if c.family == family and c.passive == 0 and (param is None or c.param == param):
            return j
    raise ValueError(f"the candidate grid has no marketable {family}"
                     + ("" if param is None else f" at {param:g}"))


def benchmark_choices(out: CandidateOutcomes, risk_aversion: float, *,
                      ac_fixed_kt: float = 2.0) -> dict[str, np.ndarray]:
    """Per benchmark of :data:`BENCHMARKS`, the candidate index of each order."""
    n = out.truth.shape[0]
    grid = out.grid
    j_obj = out.truth + risk_aversion * out.true_sd
    ac = np.array([j for j, c in enumerate(grid) if c.family == "almgren_chriss"
                   and c.passive == 0])
    if not ac.size:
        raise ValueError("the candidate grid has no marketable Almgren-Chriss plan")
    return {"twap": np.full(n, _index(grid, "twap")), "vwap": np.full(n, _index(grid, "vwap")),
            "pov": np.full(n, _index(grid, "pov")),
            "ac_fixed": np.full(n, _index(grid, "almgren_chriss", ac_fixed_kt)),
            "oracle_ac": ac[np.argmin(j_obj[:, ac], axis=1)],
            "oracle": np.argmin(np.where(np.isfinite(j_obj), j_obj, np.inf), axis=1)}


def paired_ci(d: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of the paired differences ``d`` and its percentile-bootstrap 95 % interval."""
    d = np.asarray(d, np.float64)
    d = d[np.isfinite(d)]
    if not d.size:
        return np.nan, np.nan, np.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))
    boot = d[idx].mean(axis=1)
    return float(d.mean()), float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))


def _bucket(pct_adv: np.ndarray) -> np.ndarray:
    e = SIZE_BUCKETS
    labels = [f"{e[i] * 100:g}-{e[i + 1] * 100:g}% ADV" if np.isfinite(e[i + 1])
              else f">{e[i] * 100:g}% ADV" for i in range(len(e) - 1)]
    k = np.clip(np.searchsorted(e, pct_adv, side="right") - 1, 0, len(labels) - 1)
    return np.asarray(labels, dtype=object)[k]


def backtest_table(out: CandidateOutcomes, policy_choice: np.ndarray, *, risk_aversion: float,
                   regime: Sequence[str] | None = None, pct_adv: Sequence[float] | None = None,
                   n_boot: int = 2000, seed: int = 0,
                   benchmarks: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """The paired TCA table: one row per (group, strategy) with the strategy's mean true cost,
    realized cost, true sd and objective, and the policy's paired difference against it
    (``policy_minus_*``: mean and 95 % CI; negative = the policy is cheaper).

    Groups: ``all``, ``regime=<r>`` and ``size=<bucket>``."""
    n = out.truth.shape[0]
    i = np.arange(n)
    bench = dict(benchmarks or benchmark_choices(out, risk_aversion))
    strategies = {"policy": np.asarray(policy_choice, np.int64), **bench}
    groups: list[tuple[str, np.ndarray]] = [("all", np.ones(n, bool))]
    if regime is not None:
        r = np.asarray(regime, dtype=object)
        groups += [(f"regime={v}", r == v) for v in ("calm", "volatile", "crisis")
                   if (r == v).any()]
    if pct_adv is not None:
        b = _bucket(np.asarray(pct_adv, np.float64))
        groups += [(f"size={v}", b == v) for v in dict.fromkeys(sorted(
            set(b), key=lambda s: float(s.lstrip(">").split("-")[0].split("%")[0])))]
    pol = strategies["policy"]
    rows = []
    for g, m in groups:
        for name, ch in strategies.items():
            t, rz, sd = out.truth[i, ch], out.realized[i, ch], out.true_sd[i, ch]
            row: dict[str, Any] = {
                "group": g, "strategy": name, "n": int(m.sum()),
                "truth_bps": float(np.nanmean(t[m])), "realized_bps": float(np.nanmean(rz[m])),
                "realized_sd_bps": float(np.nanstd(rz[m], ddof=1)) if m.sum() > 1 else np.nan,
                "true_sd_bps": float(np.nanmean(sd[m])),
                "objective_bps": float(np.nanmean((t + risk_aversion * sd)[m]))}
            if name != "policy":
                for what, arr in (("truth", out.truth), ("realized", out.realized)):
                    mu, lo, hi = paired_ci(arr[i, pol][m] - arr[i, ch][m], n_boot=n_boot,
                                           seed=seed)
                    row |= {f"policy_minus_{what}_bps": mu, f"policy_minus_{what}_lo": lo,
                            f"policy_minus_{what}_hi": hi}
                jo = (out.truth + risk_aversion * out.true_sd)
                mu, lo, hi = paired_ci(jo[i, pol][m] - jo[i, ch][m], n_boot=n_boot, seed=seed)
                row |= {"policy_minus_objective_bps": mu, "policy_minus_objective_lo": lo,
                        "policy_minus_objective_hi": hi}
            rows.append(row)
    return pd.DataFrame(rows)


def plot_backtest(table: pd.DataFrame, out_dir: str | Path, *,
                  frontier: pd.DataFrame | None = None) -> list[Path]:
    """PNG plots: mean vs sd of the implementation shortfall per strategy (with the policy at
    each risk aversion of ``frontier``: ``risk_aversion, truth_bps, true_sd_bps``), and the
    true cost by size bucket."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    a = table[table["group"] == "all"]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for _, r in a.iterrows():
        ax.scatter(r["true_sd_bps"], r["truth_bps"], s=40,
                   color="tab:red" if r["strategy"] == "policy" else "tab:blue")
        ax.annotate(r["strategy"], (r["true_sd_bps"], r["truth_bps"]), fontsize=8,
                    xytext=(4, 3), textcoords="offset points")
    if frontier is not None and len(frontier):
        f = frontier.sort_values("true_sd_bps")
        ax.plot(f["true_sd_bps"], f["truth_bps"], "-o", color="tab:red", ms=3, lw=1,
                label="policy, risk aversion " + ", ".join(f"{v:g}" for v in
                                                           f["risk_aversion"]))
        ax.legend(fontsize=7)
    ax.set_xlabel("true timing risk, sd of IS (bps)")
    ax.set_ylabel("true expected IS (bps)")
    ax.set_title("efficient frontier: mean vs sd of implementation shortfall", fontsize=9)
    fig.tight_layout()
    paths.append(out / "policy_frontier.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    s = table[table["group"].str.startswith("size=")]
    if len(s):
        names = list(dict.fromkeys(s["group"]))
        strategies = list(dict.fromkeys(s["strategy"]))
        fig, ax = plt.subplots(figsize=(9, 4))
        w = 0.8 / len(strategies)
        for j, st in enumerate(strategies):
            d = s[s["strategy"] == st].set_index("group").reindex(names)
            ax.bar(np.arange(len(names)) + j * w, d["truth_bps"], w, label=st,
                   color="tab:red" if st == "policy" else None)
        ax.set_xticks(np.arange(len(names)) + w * (len(strategies) - 1) / 2,
                      [g.removeprefix("size=") for g in names], fontsize=8)
        ax.set_ylabel("true expected IS (bps)")
        ax.set_title("cost by size bucket (same orders, same paths)", fontsize=9)
        ax.legend(fontsize=7, ncol=4)
        fig.tight_layout()
        paths.append(out / "policy_cost_by_bucket.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths
