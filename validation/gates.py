"""Promotion gates of the cost-model validation pipeline, configured by one file.

A model is promoted only when every gate that has inputs passes. The bounds live in one TOML file,
``validation/gates.toml`` by default (:func:`load_gates`), and every report prints that file
verbatim under its gate table (:meth:`GateReport.to_markdown`), so a reader sees the exact rules
a model was judged by.

* :func:`gate_oos_degradation`: the out-of-sample loss may exceed the purged-CV loss by at most
  ``oos.max_degradation_pct`` %.
* :func:`gate_walk_forward`: the model beats the baseline in at least a share of walk-forward
  windows, and its metric is stable across windows (coefficient of variation).
* :func:`gate_stress`: per stress scenario, the bias and the 80% band coverage stay within
  bounds, in at least a share of the scored scenarios.
* :func:`gate_challenger`: on the same holdout, the upper end of a paired moving-block bootstrap
  interval (:func:`paired_bootstrap`) of ``mean(|err_challenger|) - mean(|err_champion|)`` is at
  most ``challenger.max_worsening_bps``.

:func:`evaluate_gates` runs whichever gates have inputs and returns a :class:`GateReport`.

Pure: numpy, pandas and pydantic only (no orchestration, no tracking).

Examples
--------
>>> cfg = load_gates()
>>> r = gate_oos_degradation(10.0, 12.0, cfg)
>>> r.name, r.passed, round(r.value, 6), r.bound
('oos_degradation', True, 20.0, '<= 25.0%')
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from validation._gates_bootstrap import pair, paired_bootstrap
from validation._gates_config import (
    DEFAULT_GATES_PATH,
    ChallengerGate,
    GateConfig,
    OOSGate,
    PolicyGate,
    RealBooksGate,
    StressGate,
    WalkForwardGate,
    gates_text,
    load_gates,
)
from validation._gates_report import GateReport, GateResult

__all__ = [
    "DEFAULT_GATES_PATH",
    "ChallengerGate",
    "GateConfig",
    "GateReport",
    "GateResult",
    "OOSGate",
    "PolicyGate",
    "RealBooksGate",
    "StressGate",
    "WalkForwardGate",
    "evaluate_gates",
    "gate_challenger",
    "gate_oos_degradation",
    "gate_paper",
    "gate_policy",
    "gate_real_books",
    "gate_stress",
    "gate_walk_forward",
    "gates_text",
    "load_gates",
    "paired_bootstrap",
]

_STRESS_COLUMNS: Final = ("scenario", "n", "bias_bps", "noise_sd_bps", "coverage_80")


# --------------------------------------------------------------------------- gates


def _finite(name: str, x: float) -> float:
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"`{name}` must be a finite number, got {x!r}")
    return v


def gate_oos_degradation(cv_loss: float, oos_loss: float, cfg: GateConfig) -> GateResult:
    """Out-of-sample loss against the purged-CV loss.

    Parameters
    ----------
    cv_loss, oos_loss : float
        The purged-CV loss and the out-of-sample loss of the same model, in ``cfg.oos.metric``.
    cfg : GateConfig

    Returns
    -------
    GateResult
        ``value`` = degradation % = ``100 (oos_loss / cv_loss - 1)``; passes when it is at most
        ``cfg.oos.max_degradation_pct``.

    Raises
    ------
    ValueError
        A loss is not finite, or ``cv_loss <= 0``.
    """
    cv, oos = _finite("cv_loss", cv_loss), _finite("oos_loss", oos_loss)
    if cv <= 0:
        raise ValueError(f"`cv_loss` must be > 0 to measure a degradation, got {cv}")
    g = cfg.oos
    deg = 100.0 * oos / cv - 100.0
    ok = deg <= g.max_degradation_pct
    detail = (f"{g.metric}: OOS {oos:.4g} vs purged CV {cv:.4g} = {deg:+.1f}%"
              + ("" if ok else f", above the {g.max_degradation_pct}% allowed"))
    return GateResult("oos_degradation", ok, deg, f"<= {g.max_degradation_pct}%", detail)


def gate_walk_forward(windows: pd.DataFrame, cfg: GateConfig) -> list[GateResult]:
    """Walk-forward windows: the model beats the baseline, and is stable across windows.

    Parameters
    ----------
    windows : pandas.DataFrame
        One row per window. Columns ``model_<m>`` and ``<baseline>_<m>``, where ``m`` is
        ``cfg.walk_forward.truth_metric`` when both of its columns are present with no missing
        value, else ``cfg.walk_forward.metric``. Windows with a missing value in the fallback
        metric's columns are left out (and counted in the detail).
    cfg : GateConfig

    Returns
    -------
    list of GateResult
        ``walk_forward_beats_baseline`` (value = share of windows with ``model_<m>`` strictly
        below ``<baseline>_<m>``, at least ``min_share_beating``) and ``walk_forward_stability``
        (value = sample std (ddof=1) / mean of ``model_<m> / <baseline>_<m>``, the model's error
        relative to the baseline's, at most ``max_cv``; NaN and failing
        with fewer than 2 windows or a non-positive mean).

    Raises
    ------
    ValueError
        The metric's columns are missing (the message names them), or no window is complete.
    """
    g = cfg.walk_forward
    truth = [f"model_{g.truth_metric}", f"{g.baseline}_{g.truth_metric}"]
    if all(c in windows.columns for c in truth) and windows[truth].notna().all().all():
        m, cols = g.truth_metric, truth
    else:
        m, cols = g.metric, [f"model_{g.metric}", f"{g.baseline}_{g.metric}"]
        missing = [c for c in cols if c not in windows.columns]
        if missing:
            raise ValueError(f"walk-forward windows lack column(s) {missing} (metric {m!r}, "
                             f"baseline {g.baseline!r} of [walk_forward] in the gate config); "
                             f"got {list(windows.columns)}")
    vals = windows[cols].apply(pd.to_numeric, errors="coerce")
    complete = vals.notna().all(axis=1)
    dropped = int((~complete).sum())
    vals = vals[complete]
    n = len(vals)
    if n == 0:
        raise ValueError(f"walk-forward windows: no window has both {cols} (of {len(windows)} "
                         "rows)")
    model = vals[cols[0]].to_numpy(dtype=np.float64)
    base = vals[cols[1]].to_numpy(dtype=np.float64)
    note = f"; {dropped} incomplete window(s) left out" if dropped else ""

    wins = int(np.sum(model < base))
    share = wins / n
    ok_share = share >= g.min_share_beating
    beats = GateResult(
        "walk_forward_beats_baseline", ok_share, share, f">= {g.min_share_beating}",
        f"{m}: model < {g.baseline} in {wins} of {n} windows ({share:.0%})" + note
        + ("" if ok_share else f", below the {g.min_share_beating:.0%} required"))

    # stability of the model's skill relative to the baseline: the error itself moves with the
    # regime (a crisis window costs more for every model), the ratio should not
    rel = model / base
    mean = float(rel.mean())
    if n < 2 or mean <= 0 or not np.isfinite(mean):
        cv, why = float("nan"), ("needs at least 2 windows" if n < 2
                                 else f"mean {m} is {mean:.4g}, not > 0")
        stab = GateResult("walk_forward_stability", False, cv, f"<= {g.max_cv}",
                          f"{m}: cv undefined ({why})" + note)
    else:
        sd = float(rel.std(ddof=1))
        cv = sd / mean
        ok_cv = cv <= g.max_cv
        stab = GateResult(
            "walk_forward_stability", ok_cv, cv, f"<= {g.max_cv}",
            f"{m} model/{g.baseline}: sd {sd:.4g} / mean {mean:.4g} = {cv:.3f} over {n} "
            "windows" + note
            + ("" if ok_cv else f", above the {g.max_cv} allowed"))
    return [beats, stab]


def gate_stress(table: pd.DataFrame, cfg: GateConfig) -> GateResult:
    """Stress scenarios: bias and 80% band coverage within bounds.

    A scored scenario passes when ``coverage_min <= coverage_80 <= coverage_max`` and its bias
    bound holds: ``|bias_bps| <= max_abs_bias_bps`` or ``|bias_bps| / noise_sd_bps <=
    max_abs_bias_sd`` (the latter only with ``noise_sd_bps > 0``). A missing bias fails.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per scenario: ``scenario, n, bias_bps, noise_sd_bps, coverage_80`` with
        ``bias_bps = mean(realized - predicted)`` and ``noise_sd_bps`` the mean predicted
        timing-noise sd. Rows with ``n == 0`` or a missing ``coverage_80`` are not scored.
    cfg : GateConfig

    Returns
    -------
    GateResult
        ``value`` = share of scored scenarios that pass, at least ``min_share_passing``; the
        detail names each failing scenario with its reason, and the unscored ones. NaN and
        failing when no scenario is scored.

    Raises
    ------
    ValueError
        A column is missing (the message names it).
    """
    g = cfg.stress
    missing = [c for c in _STRESS_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"stress table lacks column(s) {missing}; expected "
                         f"{list(_STRESS_COLUMNS)}, got {list(table.columns)}")
    num = {c: pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=np.float64)
           for c in _STRESS_COLUMNS[1:]}
    names = table["scenario"].astype(str).to_numpy()
    gated = (table["kind"].astype(str).isin(g.kinds).to_numpy() if "kind" in table.columns
             else np.ones(len(table), bool))
    scored = (num["n"] > 0) & np.isfinite(num["coverage_80"]) & gated
    bound = f">= {g.min_share_passing} of scored scenarios"
    unscored = [str(s) for s in names[~scored & gated]]
    unscored_note = f"; not scored: {', '.join(unscored)}" if unscored else ""
    if not gated.all():
        unscored_note += (f"; not gated (kind not in {list(g.kinds)}): "
                          f"{', '.join(names[~gated])}")
    if not scored.any():
        return GateResult("stress", False, float("nan"), bound,
                          "no scenario scored (n == 0 or no coverage)" + unscored_note)

    failing: list[str] = []
    n_pass = 0
    for i in np.flatnonzero(scored):
        bias, sd, cov = num["bias_bps"][i], num["noise_sd_bps"][i], num["coverage_80"][i]
        reasons = []
        if not np.isfinite(bias):
            reasons.append("bias missing")
        else:
            in_sd = abs(bias) / sd if np.isfinite(sd) and sd > 0 else float("nan")
            if not (abs(bias) <= g.max_abs_bias_bps or in_sd <= g.max_abs_bias_sd):
                reasons.append(f"|bias| {abs(bias):.3g} bps = {in_sd:.3g} sd > "
                               f"{g.max_abs_bias_bps} bps and {g.max_abs_bias_sd} sd")
        if not g.coverage_min <= cov <= g.coverage_max:
            reasons.append(f"coverage {cov:.3f} outside [{g.coverage_min}, {g.coverage_max}]")
        if reasons:
            failing.append(f"{names[i]} ({'; '.join(reasons)})")
        else:
            n_pass += 1
    n_scored = int(scored.sum())
    share = n_pass / n_scored
    ok = share >= g.min_share_passing
    detail = f"{n_pass} of {n_scored} scored scenarios pass ({share:.0%})"
    if failing:
        detail += "; failing: " + ", ".join(failing)
    return GateResult("stress", ok, share, bound, detail + unscored_note)


def gate_challenger(err_challenger: ArrayLike, err_champion: ArrayLike,
                    cfg: GateConfig) -> GateResult:
    """Challenger against champion on the same holdout: not worse beyond the margin.

    Parameters
    ----------
    err_challenger, err_champion : array_like of float
        Each model's errors (signed or absolute; the gate takes ``|err|``) on the same holdout
        orders, in time order. Two pandas Series must share their index.
    cfg : GateConfig

    Returns
    -------
    GateResult
        ``value`` = ``mean(|err_challenger|) - mean(|err_champion|)`` (bps, negative: the
        challenger is better); passes when the upper end of its :func:`paired_bootstrap`
        interval (``cfg.challenger``) is at most ``max_worsening_bps``. The detail gives the
        interval.

    Raises
    ------
    ValueError
        The arrays cannot be paired, hold non-finite values, or are shorter than two blocks.
    """
    g = cfg.challenger
    ch, champ = pair(err_challenger, err_champion, ("err_challenger", "err_champion"))
    mean, lo, hi = paired_bootstrap(np.abs(ch), np.abs(champ), n_boot=g.n_boot,
                                    confidence=g.confidence, block=g.block, seed=g.seed)
    ok = hi <= g.max_worsening_bps
    detail = (f"mean |err| challenger - champion = {mean:+.4g} bps, {g.confidence:.0%} CI "
              f"[{lo:+.4g}, {hi:+.4g}] (n={ch.size}, block={g.block}, n_boot={g.n_boot})"
              + ("" if ok else f"; upper end above {g.max_worsening_bps} bps: the challenger "
                 "is not shown to be at least as good"))
    return GateResult("challenger_vs_champion", ok, mean, f"CI upper <= {g.max_worsening_bps} bps",
                      detail)


def gate_policy(table: pd.DataFrame, cfg: GateConfig) -> GateResult:
    """The ``[policy]`` gate on :func:`validation.policy_backtest.backtest_table`.

    ``value`` = the upper 95 % bound of policy minus oracle Almgren–Chriss (true IS, bps). It
    passes when that bound, the bound of the objective against the grid's best plan, the
    volatile-regime saving against TWAP (the saving the paired 95 % interval guarantees, on at
    least ``min_volatile_orders`` orders) and every size bucket's lower bound against TWAP are
    within ``[policy]``. A table without volatile orders fails: nothing was judged.
    """
    g = cfg.policy
    bound = (f"policy - oracle AC <= {g.max_minus_oracle_ac_bps} bps (upper 95%); objective - "
             f"oracle <= {g.max_objective_minus_oracle_bps} bps; volatile saving vs TWAP >= "
             f"{g.min_volatile_saving:.0%}; no size bucket worse than TWAP beyond its CI")
    name = "policy" if g.binding else "policy (not binding)"
    if table.empty:
        return GateResult(name, not g.binding, float("nan"), bound, "no policy backtest")

    def row(group: str, strategy: str) -> pd.Series | None:
        r = table[(table["group"] == group) & (table["strategy"] == strategy)]
        return None if r.empty else r.iloc[0]

    fails, notes = [], []
    ac, orc = row("all", "oracle_ac"), row("all", "oracle")
    if ac is None or orc is None:
        raise ValueError("policy table lacks the oracle rows (group 'all')")
    hi_ac = float(ac["policy_minus_truth_hi"])
    if not hi_ac <= g.max_minus_oracle_ac_bps:
        fails.append(f"policy - oracle AC upper bound {hi_ac:+.2f} bps")
    hi_o = float(orc["policy_minus_objective_hi"])
    if not hi_o <= g.max_objective_minus_oracle_bps:
        fails.append(f"objective - oracle upper bound {hi_o:+.2f} bps")
    pv, tv = row("regime=volatile", "policy"), row("regime=volatile", "twap")
    if pv is None or tv is None:
        fails.append("no volatile orders: the saving against TWAP cannot be judged")
    else:
        n_v, twap_v = int(pv["n"]), float(tv["truth_bps"])
        saving = 1 - float(pv["truth_bps"]) / twap_v
        # the saving the paired interval guarantees: its upper bound of policy - TWAP
        saving_lo = -float(tv["policy_minus_truth_hi"]) / twap_v
        notes.append(f"volatile saving vs TWAP {saving:.1%} (at least {saving_lo:.1%} at 95%, "
                     f"n={n_v})")
        if n_v < g.min_volatile_orders:
            fails.append(f"{n_v} volatile orders < {g.min_volatile_orders}")
        if not saving_lo >= g.min_volatile_saving:
            fails.append(f"volatile saving {saving_lo:.1%} at 95%")
    for _, r in table[(table["strategy"] == "twap")
                      & table["group"].str.startswith("size=")].iterrows():
        if not float(r["policy_minus_truth_lo"]) <= g.max_bucket_excess_bps:
            fails.append(f"{r['group']}: worse than TWAP, lower bound "
                         f"{float(r['policy_minus_truth_lo']):+.2f} bps")
    detail = (f"policy - oracle AC {float(ac['policy_minus_truth_bps']):+.2f} bps "
              f"[{float(ac['policy_minus_truth_lo']):+.2f}, {hi_ac:+.2f}]; objective - oracle "
              f"{float(orc['policy_minus_objective_bps']):+.2f} [.., {hi_o:+.2f}]; "
              + "; ".join(notes))
    if fails:
        detail += "; FAILS: " + "; ".join(fails)
    if not g.binding:
        return GateResult(name, True, hi_ac, bound,
                          ("WOULD FAIL (not binding): " if fails else "") + detail)
    return GateResult(name, not fails, hi_ac, bound, detail)


def gate_real_books(table: pd.DataFrame, cfg: GateConfig) -> GateResult:
    """Leave one real book out: each held-out book's bias and coverage, the pooled error.

    ``table`` is :func:`validation._stress_lobo.leave_one_book_out`'s (columns ``book,
    variant, n, bias_bps, noise_sd_bps, mae_ratio`` and ``[real_books] coverage_column``; the
    pooled row has ``book == "pooled"``). Only rows of ``[real_books] variant`` are judged.
    ``value`` = the pooled MAE ratio; the gate passes when every held-out book (with ``n >
    0``) has ``|bias| / noise sd <= max_abs_bias_sd`` and coverage within bounds, the pooled
    ratio is ``<= max_mae_ratio``, and at least ``min_books`` books were held out.
    """
    g = cfg.real_books
    bound0 = (f"per book |bias| <= {g.max_abs_bias_sd} sd, {g.coverage_column} in "
              f"[{g.coverage_min}, {g.coverage_max}]; pooled MAE ratio <= {g.max_mae_ratio}")
    if table.empty:
        return GateResult("real_books" if g.binding else "real_books (not binding)",
                          not g.binding, float("nan"), bound0,
                          f"no real book was held out (at least {g.min_books} needed)")
    need = ("book", "variant", "n", "bias_bps", "noise_sd_bps", "mae_ratio", g.coverage_column)
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"real-book table lacks column(s) {missing}; got {list(table.columns)}")
    t = table[table["variant"].astype(str) == g.variant]
    books = t[(t["book"].astype(str) != "pooled") & (pd.to_numeric(t["n"]) > 0)]
    pooled = t[t["book"].astype(str) == "pooled"]
    ratio = float(pooled["mae_ratio"].iloc[0]) if len(pooled) else float("nan")
    bound = bound0
    fails = []
    if len(books) < g.min_books:
        fails.append(f"{len(books)} real book(s) held out, at least {g.min_books} needed")
    for _, r in books.iterrows():
        sd = float(r["noise_sd_bps"])
        z = abs(float(r["bias_bps"])) / sd if sd > 0 else float("nan")
        cov = float(r[g.coverage_column])
        if not z <= g.max_abs_bias_sd:
            fails.append(f"{r['book']}: |bias| {abs(float(r['bias_bps'])):.2f} bps = "
                         f"{z:.2f} sd")
        if not g.coverage_min <= cov <= g.coverage_max:
            fails.append(f"{r['book']}: {g.coverage_column} {cov:.3f}")
    if not ratio <= g.max_mae_ratio:
        fails.append(f"pooled MAE ratio {ratio:.3f}")
    judged = ", ".join(f"{r['book']} (bias {float(r['bias_bps']):+.2f} bps, "
                       f"{g.coverage_column} {float(r[g.coverage_column]):.3f})"
                       for _, r in books.iterrows())
    detail = f"held out: {judged}; pooled MAE ratio {ratio:.3f}"
    if fails:
        detail += "; FAILS: " + "; ".join(fails)
    if not g.binding:  # judged and shown, not blocking (gates.toml says why)
        return GateResult("real_books (not binding)", True, ratio, bound,
                          ("WOULD FAIL (not binding): " if fails else "") + detail)
    return GateResult("real_books", not fails, ratio, bound, detail)


def gate_paper(summary: Mapping[str, Any], cfg: GateConfig) -> GateResult:
    """The ``[paper]`` gate on the summary of
    :func:`validation.paper_reconcile.reconcile` (stage 5: paper against backtest).

    ``value`` = the mean absolute per-order difference of implementation shortfall (bps). It
    passes when that mean, its 95th percentile and the fill-rate gap are within ``[paper]``,
    on at least ``min_orders`` compared orders.
    """
    g = cfg.paper
    bound = (f"mean |paper - backtest| <= {g.max_mean_abs_diff_bps} bps, p95 <= "
             f"{g.max_p95_abs_diff_bps} bps, fill-rate gap <= {g.max_fill_rate_gap:.0%}, "
             f">= {g.min_orders} orders")
    name = "paper" if g.binding else "paper (not binding)"
    n = int(summary.get("compared", 0))
    mean = float(summary.get("mean_abs_diff_bps", float("nan")))
    p95 = float(summary.get("p95_abs_diff_bps", float("nan")))
    gap = abs(float(summary.get("paper_fill_rate", float("nan")))
              - float(summary.get("bt_fill_rate", float("nan"))))
    fails = []
    if n < g.min_orders:
        fails.append(f"{n} orders compared < {g.min_orders}")
    if not mean <= g.max_mean_abs_diff_bps:
        fails.append(f"mean |diff| {mean:.2f} bps")
    if not p95 <= g.max_p95_abs_diff_bps:
        fails.append(f"p95 |diff| {p95:.2f} bps")
    if not gap <= g.max_fill_rate_gap:
        fails.append(f"fill-rate gap {gap:.1%}")
    detail = (f"{n} orders: mean |diff| {mean:.2f} bps (latency {summary.get('mean_latency_bps', float('nan')):+.2f}, "
              f"feed time {summary.get('mean_feed_bps', float('nan')):+.2f}), p95 {p95:.2f} bps, "
              f"fill rate {summary.get('paper_fill_rate', float('nan')):.3f} paper vs "
              f"{summary.get('bt_fill_rate', float('nan')):.3f} backtest")
    if fails:
        detail += "; FAILS: " + "; ".join(fails)
    if not g.binding:
        return GateResult(name, True, mean, bound,
                          ("WOULD FAIL (not binding): " if fails else "") + detail)
    return GateResult(name, not fails, mean, bound, detail)


def evaluate_gates(*, cfg: GateConfig, cv_loss: float | None = None,
                   oos_loss: float | None = None, walk_forward: pd.DataFrame | None = None,
                   stress: pd.DataFrame | None = None, challenger_err: ArrayLike | None = None,
                   champion_err: ArrayLike | None = None,
                   real_books: pd.DataFrame | None = None,
                   policy: pd.DataFrame | None = None,
                   paper: Mapping[str, Any] | None = None) -> GateReport:
    """Run every gate that has inputs, in the order OOS, walk-forward, stress, challenger.

    Parameters
    ----------
    cfg : GateConfig
    cv_loss, oos_loss : float, optional
        Both or neither: :func:`gate_oos_degradation`.
    walk_forward : pandas.DataFrame, optional
        :func:`gate_walk_forward`.
    stress : pandas.DataFrame, optional
        :func:`gate_stress`.
    real_books : pandas.DataFrame, optional
        :func:`gate_real_books` (the leave-one-real-book-out table).
    policy : pandas.DataFrame, optional
        :func:`gate_policy` (the policy's paired backtest table).
    paper : mapping, optional
        :func:`gate_paper` (stage 5's reconciliation summary).
    challenger_err, champion_err : array_like, optional
        :func:`gate_challenger`, run only when a champion exists (``champion_err`` given); a
        first model has no champion and skips it.

    Returns
    -------
    GateReport
        With ``config_text = cfg.render()``.

    Raises
    ------
    ValueError
        Only one of ``cv_loss``/``oos_loss`` is given, or ``champion_err`` without
        ``challenger_err``.
    """
    if (cv_loss is None) != (oos_loss is None):
        raise ValueError("pass both `cv_loss` and `oos_loss` (or neither) for the OOS "
                         "degradation gate")
    if champion_err is not None and challenger_err is None:
        raise ValueError("`champion_err` given without `challenger_err`: score the challenger "
                         "on the champion's holdout")
    results: list[GateResult] = []
    if cv_loss is not None and oos_loss is not None:
        results.append(gate_oos_degradation(cv_loss, oos_loss, cfg))
    if walk_forward is not None:
        results.extend(gate_walk_forward(walk_forward, cfg))
    if stress is not None:
        results.append(gate_stress(stress, cfg))
    if real_books is not None:
        results.append(gate_real_books(real_books, cfg))
    if policy is not None:
        results.append(gate_policy(policy, cfg))
    if paper is not None:
        results.append(gate_paper(paper, cfg))
    if challenger_err is not None and champion_err is not None:
        results.append(gate_challenger(challenger_err, champion_err, cfg))
    return GateReport(results, config_text=cfg.render())

