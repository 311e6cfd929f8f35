"""Stress tests: a scenario library from REFERENCES.md §5, scored on the synthetic and real markets.

Each :class:`StressScenario` is a small synthetic market (``generate_market``, 4 symbols x 12
sessions by default) whose **last** sessions carry the stress, so a desk history on it has calm
days first. :func:`run_stress_suite` builds the desk on every scenario and scores

* the cost model's **calibration** on the stressed orders: bias (realized minus predicted),
  coverage of the 80% band, MAE, against the realized ``shortfall_bps`` of the desk; the cost
  model is not trained here, callers pass ``predict(features) -> (mean, lo, hi)``;
* the **schedules** against TWAP: mean cost of each strategy minus the TWAP mean, with its
  standard error (Welch), on the stressed and on the calm sessions;
* the **risk controls**: the same desk's children run again with
  :class:`models.risk_controls.RiskLimits` (resolved by :class:`StressLimits` from the calm
  sessions: no look-ahead), rejections by reason in the stressed and the calm sessions and inside
  the stress windows (flash crash, opening event, halts); mode ``all`` runs every limit together
  (a child is charged to the first control that fires: kill switch, size, participation, collar,
  order loss, daily loss, so an early control hides the later ones), mode ``alone`` each control
  by itself (where it would fire were it the only one).

and, when their cleansed books are given (``books``, ingested by the ``assets`` layer), the real episodes: a TWAP
desk replayed on the BitMEX XBTUSD book of 2020-03-10 and on the LOBSTER AMZN book of 2012-06-21
(costs, spread, controls, and calibration where the predictor returns finite values on the real
features), and the S&P 500 days with ``|return| >= 5%`` (:func:`index_stress_days`), whose median
volatility multiplier parameterizes a synthetic scenario, ``index_stress_days``.

The scenarios (multipliers are REFERENCES.md §5's suggested design defaults, not facts)
--------------------------------------------------------------------------------------
============================  =================================================================
``crisis_2008``               last 5 sessions in the crisis regime: vol x4, spread x2, volume x3
``flash_crash_2010``          last session 14:32-14:52 NY: vol x15, spread x20, depth x0.05,
                              trade rate x5, mid -7% at 14:45 then 80% rebound
``gap_open_2015_08_24``       last session: overnight gap -5%, 09:30-09:45 vol x5, spread x5,
                              depth x0.2, volume x6, a further -2.7% by 09:35 (half recovered);
                              5-minute LULD halts 09:35, 09:42, 09:50 (clustered, by symbol);
                              the whole day vol x2, spread x1.5, volume x2
``covid_2020``                last 5 sessions crisis: vol x4, spread x2, volume x2.5; last
                              session: gap -5%, a further -2.1% by 09:34 (-7% from the close),
                              then a 15-minute market-wide halt 09:34-09:49
``index_stress_days``         (with data) last 3 sessions crisis with vol x the median of
                              ``|r| / sigma_20`` over the S&P days with ``|r| >= 5%``
============================  =================================================================

The gap and the halts use :class:`models.synthetic_market.ScenarioConfig` ``gap_at``,
``gap_return`` and ``halts``; intraday windows reuse its flash-crash mechanism.

Simulator caveats (read the numbers with them)
----------------------------------------------
On the synthetic desk (engine ``simulator``, :func:`models.desk_history.simulate_desk_history`)
a child's price collar sees the spread quoted at its parent's decision and the loss limits see the
deterministic fill prices (the market path is laid on afterwards), so only orders decided inside a
window see it. Engine ``book_replay`` replays the same children on the scenario's own L1 quotes
(:func:`models.simulator.replay_l1`): the collar sees the live spread and the loss limits the live
prices (the crash itself). Neither engine knows about halts: children sent into a halt are counted
by the ``venue / halted_market`` row (not enforced), and the replay fills them on the last quote.
Loss limits are in currency (one scalar for every order, as :class:`RiskLimits` has them), so the
order-loss limit speaks for the largest orders: a 7% crash on a small order does not reach it.
Participation is measured against the symbol's true calm ADV in both engines, so it does not see
the crisis volume.

Layout: the scenarios, their markets and desk in :mod:`validation._stress_scenarios`, the
scoring and risk-control rows in :mod:`validation._stress_scoring`, the real episodes in
:mod:`validation._stress_real`; this module runs the suite (:func:`run_stress_suite`), holds its
result and plots, and re-exports the public names (import them from here).

Fan-out: the scenarios and the real episodes are independent tasks; ``run_stress_suite(...,
mapper=m)`` runs them through ``m`` (the builtin ``map`` by default; an engine's such as
:func:`bestex.distributed.cluster`'s to run them on Dask workers), with the same result.

Examples
--------
>>> from validation.stress import SCENARIOS, stress_desk
>>> m, hist, feats = stress_desk(SCENARIOS["flash_crash_2010"], n_orders=300)  # doctest: +SKIP
>>> feats.groupby("stressed")["arrival_spread_bps"].mean()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from models.desk_history import (
    DESK_FEES,
    Mapper,
    execute_on_market,
)
from models.features import ParametricCalibrations
from models.regimes import RegimeModel
from models.simulator import SimulatorConfig
from validation._stress_real import (
    _EPISODES,
    EPISODE_SYMBOLS,
    BookSpec,
    EpisodeBook,
    _real_episode,
    book_spec,
    crypto_spec,
    equity_spec,
    estimates_from_book,
    index_stress_days,
    index_stress_scenario,
    replay_book,
    score_book,
)
from validation._stress_regimes import (
    REGIME_COLUMNS,
    fit_stress_regime_model,
    regime_detection,
    scenario_regimes,
)
from validation._stress_scenarios import (
    CALIBRATION_COLUMNS,
    CALM,
    NY,
    RISK_COLUMNS,
    SCENARIOS,
    SCHEDULE_COLUMNS,
    SUMMARY_COLUMNS,
    Z80,
    Domain,
    Predict,
    StressEvent,
    StressHalt,
    StressScenario,
    desk_features,
    market_config,
    stress_desk,
    stress_market,
    stress_windows,
    stressed_sessions,
)
from validation._stress_scoring import (
    StressLimits,
    _calibration_row,
    _control_rows,
    _halt_rows,
    _not_scored,
    _predict,
    _replay_rejections,
    _schedule_rows,
    score_calibration,
)

__all__ = [
    "CALM",
    "EPISODE_SYMBOLS",
    "NY",
    "SCENARIOS",
    "Z80",
    "BookSpec",
    "EpisodeBook",
    "StressEvent",
    "StressHalt",
    "StressLimits",
    "StressResult",
    "StressScenario",
    "book_spec",
    "crypto_spec",
    "desk_features",
    "equity_spec",
    "estimates_from_book",
    "fit_stress_regime_model",
    "index_stress_days",
    "index_stress_scenario",
    "market_config",
    "plot",
    "regime_detection",
    "replay_book",
    "run_stress_suite",
    "score_book",
    "score_calibration",
    "stress_desk",
    "stress_market",
    "stress_windows",
    "stressed_sessions",
]

# =========================================================================== the suite
@dataclass
class StressResult:
    """The stress suite's tables.

    Attributes
    ----------
    calibration : pandas.DataFrame
        One row per scenario: ``scenario, kind`` (synthetic | real), ``n, bias_bps,
        bias_se_bps, noise_sd_bps, coverage_80, mae`` on the stressed orders (the whole episode
        for a real one), the same ``n_normal, bias_normal_bps, coverage_80_normal`` on the calm
        sessions, and ``note`` ("not scored: <reason>" where nothing was scored).
    schedules : pandas.DataFrame
        ``scenario, sessions`` (stressed | normal), ``strategy, n, mean_cost_bps,
        minus_twap_bps, se_bps`` (Welch standard error of the difference; of the mean for
        TWAP), ``truth_minus_twap_bps`` (the true expected cost's difference; synthetic only).
    risk_controls : pandas.DataFrame
        ``scenario, engine`` (simulator | book_replay | venue), ``mode`` (all | alone),
        ``reason, limit``, rejected children ``fired_stressed, fired_normal, fired_event``,
        children sent ``children_stressed, children_normal, children_event`` and the rates
        ``rate_stressed, rate_normal``. A real episode is all stressed (BitMEX) or all normal
        (AMZN); the other column is NaN.
    summary : pandas.DataFrame
        Per scenario: orders, mean realized cost and arrival spread, stressed vs normal.
    index_days : pandas.DataFrame
        :func:`index_stress_days` (empty without data).
    scenarios : dict
        Every scenario run (``index_stress_days`` included when built).
    limits : dict
        The resolved :class:`RiskLimits` of each scenario (``model_dump``).
    timings_s : dict
        Seconds per scenario.
    regimes : pandas.DataFrame
        With a regime model: :data:`validation._stress_regimes.REGIME_COLUMNS`, one row per
        session of each synthetic scenario (the HMM's filtered probabilities and the truth).
    """

    calibration: pd.DataFrame
    schedules: pd.DataFrame
    risk_controls: pd.DataFrame
    summary: pd.DataFrame
    index_days: pd.DataFrame = field(default_factory=pd.DataFrame)
    scenarios: dict[str, StressScenario] = field(default_factory=dict)
    limits: dict[str, dict] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    regimes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=list(REGIME_COLUMNS)))

    @property
    def regime_detection(self) -> pd.DataFrame:
        """:func:`regime_detection` of :attr:`regimes` (one row per scenario)."""
        return regime_detection(self.regimes)

    def to_markdown(self) -> str:
        """A markdown report: the four tables, the index stress days and the scenarios."""
        def table(df: pd.DataFrame) -> str:
            return df.to_markdown(index=False, floatfmt=".3g") if len(df) else "(none)"

        parts = ["# Stress suite", "",
                 "## Calibration of the cost model on the stressed orders",
                 "bias = mean(realized - predicted), bps; coverage_80 = share inside the 80% "
                 "band; noise_sd = mean timing risk (the irreducible noise); outside_domain = "
                 "share of those orders with a feature outside the model's training domain "
                 "(the model extrapolates there), outside_features = the most frequent ones.",
                 "",
                 table(self.calibration), "", "## Schedules against TWAP",
                 "mean realized cost minus the TWAP mean (bps), with its standard error; "
                 "truth_minus_twap: the same on the true expected cost (synthetic only).", "",
                 table(self.schedules), "", "## Risk controls",
                 "rejected children by reason; rates are per child sent in those sessions; "
                 "`event` = inside a stress window (flash crash, opening event, halts).", "",
                 table(self.risk_controls), "", "## Costs and spreads", "",
                 table(self.summary), ""]
        if len(self.index_days):
            d = self.index_days.copy()
            d["date"] = pd.to_datetime(d["date"]).dt.date
            parts += ["## S&P 500 days with |r| >= 5%", "", table(d), ""]
        if len(self.regimes):
            parts += ["## Regimes on the stress days",
                      "The training market's regime HMM (fitted on all its sessions), its "
                      "forward filter over each scenario's sessions (each read at its close), "
                      "against the generator's true regimes. stressed_flagged: share of "
                      "stressed sessions read volatile or crisis; detection_delay: sessions "
                      "from the first stressed one to the first flag. The first sessions of "
                      "each market have no baseline of their own yet (no regime). The recorded "
                      "books hold one session: not scored.", "",
                      table(self.regime_detection), "",
                      table(self.regimes[self.regimes["regime"] != ""].assign(
                          **{c: lambda d, c=c: d[c].round(3)
                             for c in ("p_calm", "p_volatile", "p_crisis")})), ""]
        parts += ["## Scenarios", ""]
        parts += [f"* **{s.name}**: {s.description} Source: {s.source}"
                  for s in self.scenarios.values()]
        return "\n".join(parts) + "\n"


def _synthetic(name: str, scenario: StressScenario, predict: Predict, limits: StressLimits,
               n_orders: int, seed: int, n_symbols: int, n_sessions: int,
               domain: Domain | None = None, regime_model: RegimeModel | None = None
               ) -> tuple[dict, list[dict], list[dict], dict, dict, pd.DataFrame | None]:
    market, hist, feats = stress_desk(scenario, n_orders=n_orders, seed=seed,
                                      n_symbols=n_symbols, n_sessions=n_sessions)
    regimes = None if regime_model is None else scenario_regimes(
        name, market, regime_model, stressed_sessions(scenario, market))
    po = hist.parent_orders
    oid = po["order_id"].astype(str)
    out = hist.outcomes.set_index(hist.outcomes["order_id"].astype(str)).reindex(oid)
    realized = out["shortfall_bps"].to_numpy(np.float64)
    feats["scenario"] = name
    cal = _calibration_row(name, "synthetic", feats, realized, _predict(predict, feats),
                           domain=domain)
    stressed = feats["stressed"].to_numpy(bool)
    sched = _schedule_rows(name, po["strategy"].astype(str).to_numpy(), realized,
                           out["truth_bps"].to_numpy(np.float64), stressed)
    rl = limits.resolve(hist, ~stressed)
    st = pd.Series(stressed, index=oid.to_numpy())
    sym = pd.Series(po["symbol"].astype(str).to_numpy(), index=oid.to_numpy())
    win = stress_windows(scenario, market)
    sim = SimulatorConfig.from_truth(market.truth.impact, fees=DESK_FEES)
    replay = sim.model_copy(update={"venue": "REPLAY"})
    engines = {
        # the desk's own run (simulate_desk_history's execute_on_market, same orders/children)
        "simulator": lambda lim: execute_on_market(market, po, hist.child_orders, sim,
                                                   seed=seed, limits=lim)[0].rejections(),
        "book_replay": lambda lim: _replay_rejections(market.quotes, po, hist.child_orders,
                                                      replay, lim, sigma="true_sigma",
                                                      adv="true_adv")}
    risk = _control_rows(name, engines, rl, hist.child_orders, st, win, sym)
    risk += _halt_rows(name, hist.child_orders, st, sym, win)
    spread = feats["arrival_spread_bps"].to_numpy(np.float64)
    ok = np.isfinite(realized)
    cs = realized[ok & stressed]
    summary = {"scenario": name, "kind": "synthetic", "n_stressed": int(stressed.sum()),
               "n_normal": int((~stressed).sum()),
               "cost_stressed_bps": float(cs.mean()) if cs.size else np.nan,
               "cost_stressed_se_bps": float(cs.std(ddof=1) / np.sqrt(cs.size))
               if cs.size > 1 else np.nan,
               "cost_normal_bps": float(np.mean(realized[ok & ~stressed])),
               "spread_stressed_bps": float(np.nanmean(spread[stressed])),
               "spread_normal_bps": float(np.nanmean(spread[~stressed])),
               "note": f"{n_symbols} symbols x {n_sessions} sessions, last "
                       f"{scenario.n_stressed} stressed"}
    return cal, sched, risk, summary, rl.model_dump(), regimes


def _scenario_task(task: tuple[str, str, StressScenario | EpisodeBook], *, predict: Predict,
                   limits: StressLimits, n_orders: int, seed: int, n_symbols: int,
                   n_sessions: int, real_orders: int, domain: Domain | None,
                   calibrations: ParametricCalibrations | None,
                   regime_model: RegimeModel | None) -> tuple[tuple, float]:
    """One scenario, ``("synthetic", name, scenario)`` or ``("real", name, book)``, scored:
    ``(rows, seconds)`` (the unit :func:`run_stress_suite` hands to its ``mapper``)."""
    import time

    t0 = time.perf_counter()
    kind, name, what = task
    if kind == "synthetic":
        out: tuple = _synthetic(name, what, predict, limits, n_orders, seed,  # type: ignore[arg-type]
                                n_symbols, n_sessions, domain, regime_model)
    else:
        out = _real_episode(name, what, predict, limits, real_orders, seed,  # type: ignore[arg-type]
                            domain, calibrations)
    return out, time.perf_counter() - t0


def run_stress_suite(predict: Predict, *, scenarios: Mapping[str, StressScenario] = SCENARIOS,
                     n_orders: int = 2000, seed: int = 0,
                     books: Mapping[str, EpisodeBook | str] | None = None,
                     index_bars: pd.DataFrame | str | None = None,
                     limits: StressLimits | None = None,
                     progress: Callable[[str], object] | None = print, n_symbols: int = 4,
                     n_sessions: int = 12, real_orders: int = 500,
                     domain: Domain | None = None,
                     calibrations: ParametricCalibrations | None = None,
                     regime_model: RegimeModel | None = None,
                     mapper: Mapper = map) -> StressResult:
    """Run every scenario (and the real episodes when their ``books`` are given) and score them.

    Parameters
    ----------
    predict : callable
        ``predict(features) -> (mean, lo, hi)``: the cost model's prediction (bps) and its 80%
        band for each row of a :func:`desk_features` frame (the model is trained elsewhere).
    scenarios : mapping of str to StressScenario, default=SCENARIOS
    n_orders : int, default=2000
        Parent orders of each synthetic desk.
    seed : int, default=0
        Market and desk seed.
    books : mapping of str to EpisodeBook or str, optional
        The recorded episodes' cleansed books by episode name (``bitmex_2020_03_10``,
        ``amzn_2012_06_21``; the ``assets`` layer ingests them with :func:`sources.ingest`); a
        string says why an episode's book is not there. Without one the real row says "not
        scored".
    index_bars : pandas.DataFrame or str, optional
        Cleansed S&P 500 index daily bars (:func:`index_stress_days`), or why they are missing.
    limits : StressLimits, optional
        Default ``StressLimits()``.
    progress : callable, optional
        Called with one line per step (``None``: silent).
    n_symbols, n_sessions : int
        Size of each synthetic market.
    real_orders : int, default=500
        Parent orders of each real replay.
    domain : callable, optional
        ``domain(features)`` names, per row, the features outside the model's training domain
        (:meth:`models.cost_models.CostModelBundle.outside_domain`); each calibration row then
        says which share of its scored orders the model extrapolates to (``outside_domain``)
        and on which features (``outside_features``).
    calibrations : ParametricCalibrations, optional
        The model's own square-root and ATHL fits: the real episodes' missing
        ``sqrt_pred_bps`` / ``athl_pred_bps`` become the model's estimates (its serving path
        does the same).
    regime_model : RegimeModel, optional
        The training market's regime HMM (:func:`fit_stress_regime_model`): its filtered
        probabilities on every session of each synthetic scenario, against the true regimes
        (``StressResult.regimes``, ``regime_detection``).
    mapper : callable, default=map
        Runs the scenarios, ``mapper(fn, tasks)`` like the builtin ``map`` (serial, in
        process); :func:`bestex.distributed.cluster` yields one that runs them on Dask workers.
        The scenarios are independent, so the result is the same either way; ``fn`` binds
        ``predict``, ``domain``, ``calibrations`` and ``regime_model`` as keywords, and they
        must pickle for a mapper of other processes (a :class:`CostModelBundle`'s methods do).

    Returns
    -------
    StressResult

    Notes
    -----
    ``predict`` is called once per scenario on all its orders (stressed and calm) with the
    :func:`desk_features` columns plus ``scenario``; synthetic order ids repeat across scenarios
    (same desk seed), ``(scenario, order_id)`` is unique. The real books hold one day and no
    daily bars: ``adv, sigma_daily, pct_adv, shares_outstanding`` come from the desk's estimates
    (:data:`BITMEX_2020`, :data:`AMZN_2012`), the parametric estimates and
    ``implied_participation`` are NaN, and ``timing_risk_bps`` is NaN for decisions in the
    first 5 minutes of the book. Rows whose prediction, band or realized cost is not finite are
    not scored; a predictor that raises on the real features is reported as not scored.
    ``timings_s`` are measured inside each scenario's task (on its worker with a mapper).
    """
    say = progress or (lambda _msg: None)
    lim = limits or StressLimits()
    cal, sched, risk, summ, regimes = [], [], [], [], []
    used: dict[str, StressScenario] = dict(scenarios)
    limits_used: dict[str, dict] = {}
    timings: dict[str, float] = {}
    index_days = pd.DataFrame()
    if isinstance(index_bars, pd.DataFrame):
        try:
            index_days = index_stress_days(index_bars)
            used["index_stress_days"] = index_stress_scenario(index_days)
        except ValueError as exc:
            cal.append(_not_scored("index_stress_days", "synthetic", f"S&P index bars: {exc}"))
    elif isinstance(index_bars, str):
        cal.append(_not_scored("index_stress_days", "synthetic", f"S&P index file: {index_bars}"))
    real = {name: (books or {}).get(name) for name in _EPISODES}
    tasks: list[tuple[str, str, StressScenario | EpisodeBook]] = [
        ("synthetic", name, sc) for name, sc in used.items()]
    tasks += [("real", name, b) for name, b in real.items()
              if b is not None and not isinstance(b, str)]
    done = iter(mapper(partial(_scenario_task, predict=predict, limits=lim, n_orders=n_orders,
                               seed=seed, n_symbols=n_symbols, n_sessions=n_sessions,
                               real_orders=real_orders, domain=domain,
                               calibrations=calibrations, regime_model=regime_model), tasks))
    for name in used:
        (c, s, r, m, rl, rg), timings[name] = next(done)
        if rg is not None:
            regimes.append(rg)
        cal.append(c)
        sched += s
        risk += r
        summ.append(m)
        limits_used[name] = rl
        say(f"stress {name}: n={c['n']} bias={c['bias_bps']:.1f} bps "
            f"coverage_80={c['coverage_80']:.2f} ({timings[name]:.1f} s)")
    if index_bars is None:
        cal.append(_not_scored("index_stress_days", "synthetic",
                               "no index bars (the S&P index file parameterizes it)"))
    for name, book in real.items():
        if book is None or isinstance(book, str):
            cal.append(_not_scored(name, "real", "no book" if book is None
                                   else f"data missing or unreadable: {book}"))
            continue
        (c, s, r, m), timings[name] = next(done)
        cal.append(c)
        sched += s
        risk += r
        summ.append(m)
        limits_used[name] = lim.resolve().model_dump()
        cost = m["cost_stressed_bps"] if m["n_stressed"] else m["cost_normal_bps"]
        say(f"stress {name}: n={c['n']} cost={cost:.1f} bps ({timings[name]:.1f} s)")
    return StressResult(
        calibration=pd.DataFrame(cal, columns=list(CALIBRATION_COLUMNS)),
        schedules=pd.DataFrame(sched, columns=list(SCHEDULE_COLUMNS)),
        risk_controls=pd.DataFrame(risk, columns=list(RISK_COLUMNS)).assign(
            rate_stressed=lambda d: d["fired_stressed"] / d["children_stressed"].replace(0, np.nan),
            rate_normal=lambda d: d["fired_normal"] / d["children_normal"].replace(0, np.nan)),
        summary=pd.DataFrame(summ, columns=list(SUMMARY_COLUMNS)),
        index_days=index_days, scenarios=used, limits=limits_used, timings_s=timings,
        regimes=pd.concat(regimes, ignore_index=True) if regimes else pd.DataFrame(
            columns=list(REGIME_COLUMNS)))


# =========================================================================== plots
def plot(result: StressResult, out_dir: str | Path) -> list[Path]:
    """PNG plots of ``result`` in ``out_dir``: calibration (coverage and bias) by scenario,
    schedule cost minus TWAP on the stressed sessions, risk-control firing rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []

    cal = result.calibration[result.calibration["n"] > 0]
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(len(cal))
    ax[0].bar(x, cal["coverage_80"], color="tab:blue")
    ax[0].axhline(0.8, color="k", ls="--", lw=1)
    ax[0].set_ylim(0, 1)
    ax[0].set_title("80% band coverage (stressed orders)")
    ax[1].bar(x, cal["bias_bps"], yerr=1.96 * cal["bias_se_bps"].fillna(0), color="tab:red",
              capsize=3)
    ax[1].axhline(0, color="k", lw=1)
    ax[1].set_title("bias = realized - predicted (bps, 95% CI)")
    for a in ax:
        a.set_xticks(x, cal["scenario"], rotation=30, ha="right", fontsize=8)
    fig.tight_layout()
    paths.append(out / "stress_calibration.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    sc = result.schedules[(result.schedules["sessions"] == "stressed")
                          & (result.schedules["strategy"] != "twap")]
    fig, ax = plt.subplots(figsize=(11, 4))
    names = list(dict.fromkeys(sc["scenario"]))
    strategies = sorted(set(sc["strategy"]))
    w = 0.8 / max(len(strategies), 1)
    for j, s in enumerate(strategies):
        d = sc[sc["strategy"] == s].set_index("scenario").reindex(names)
        ax.bar(np.arange(len(names)) + j * w, d["minus_twap_bps"], w,
               yerr=1.96 * d["se_bps"].fillna(0), label=s, capsize=2)
    ax.axhline(0, color="k", lw=1)
    ax.set_xticks(np.arange(len(names)) + w * (len(strategies) - 1) / 2, names, rotation=30,
                  ha="right", fontsize=8)
    ax.set_title("stressed sessions: mean cost minus TWAP (bps, 95% CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "stress_schedules.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    rc = result.risk_controls
    rc = rc[(rc["mode"] == "alone") | (rc["engine"] == "venue")]
    engines = [e for e in ("simulator", "book_replay", "venue") if (rc["engine"] == e).any()]
    reasons = list(dict.fromkeys(rc["reason"]))
    names = list(dict.fromkeys(rc["scenario"]))
    fig, axes = plt.subplots(len(engines), max(len(reasons), 1), squeeze=False,
                             figsize=(3.2 * max(len(reasons), 1), 2.8 * len(engines)))
    x = np.arange(len(names))
    for i, e in enumerate(engines):
        for j, r in enumerate(reasons):
            a = axes[i][j]
            d = rc[(rc["engine"] == e) & (rc["reason"] == r)].set_index("scenario").reindex(names)
            if d["rate_stressed"].notna().any() or d["rate_normal"].notna().any():
                a.bar(x - 0.2, d["rate_stressed"].fillna(0), 0.4, color="tab:red",
                      label="stressed")
                a.bar(x + 0.2, d["rate_normal"].fillna(0), 0.4, color="tab:gray", label="normal")
                a.set_yscale("symlog", linthresh=1e-3)
            else:
                a.set_visible(False)
                continue
            a.set_title(f"{e}: {r}", fontsize=8)
            a.set_xticks(x, names, rotation=60, ha="right", fontsize=6)
            a.tick_params(axis="y", labelsize=7)
    axes[0][0].legend(fontsize=7)
    axes[0][0].set_ylabel("rejected / children sent", fontsize=7)
    fig.suptitle("risk controls, each alone: firing rate in stressed vs normal sessions",
                 fontsize=10)
    fig.tight_layout()
    paths.append(out / "stress_risk_controls.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    if len(result.regimes):
        paths.append(_plot_regimes(result.regimes, out / "stress_regimes.png"))
    return paths


_REGIME_COLORS: Final = {"calm": "tab:green", "volatile": "tab:orange", "crisis": "tab:red"}


def _plot_regimes(regimes: pd.DataFrame, path: Path) -> Path:
    """One panel per scenario: the HMM's filtered probabilities stacked by session, the true
    regime as a strip above (outlined: the stressed sessions)."""
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(regimes["scenario"]))
    fig, axes = plt.subplots(len(names), 1, squeeze=False, sharex=False,
                             figsize=(9, 1.9 * len(names)))
    for a, name in zip(axes[:, 0], names, strict=True):
        g = regimes[regimes["scenario"] == name].reset_index(drop=True)
        x = np.arange(len(g))
        bottom = np.zeros(len(g))
        for k, color in _REGIME_COLORS.items():
            p = g[f"p_{k}"].fillna(0).to_numpy(np.float64)
            a.bar(x, p, 0.9, bottom=bottom, color=color, alpha=0.8, label=f"P({k})")
            bottom += p
        for i, (t, st) in enumerate(zip(g["true_regime"], g["stressed"], strict=True)):
            a.add_patch(plt.Rectangle((i - 0.45, 1.04), 0.9, 0.12, clip_on=False,
                                      color=_REGIME_COLORS.get(t, "lightgray"),
                                      ec="k" if st else "none",
                                      lw=0.5))
        a.set_xlim(-0.5, len(g) - 0.5)
        a.set_ylim(0, 1.18)
        a.set_xticks(x, [str(d)[5:] for d in g["date"]], fontsize=6)
        a.set_ylabel(name, fontsize=7)
        a.tick_params(axis="y", labelsize=6)
    axes[0][0].legend(fontsize=6, loc="lower left", ncol=3)
    fig.suptitle("regime HMM on the stress days: filtered P(regime) at each close (strip: the "
                 "true regime, outlined where stressed; blank: no baseline yet)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
