"""A break with a known date, and three ways to live through it (issue 16 item 4).

On the synthetic market the true expected cost of every order is known (``truth_bps``). From a
known session on, the book's liquidity halves: under the square-root law an order's impact then
rises by ``sqrt(2)``; here every order's expected cost from the break on is multiplied by
``factor`` (default ``sqrt(2)``, spread included: an upper bound of the change), and its
realized cost moves by the same amount (``is_bps += (factor - 1) * truth_bps``: the noise of
the fill is unchanged). Nothing else changes: the features do not see the break, only the
realized costs do, which is the hard case for a monitor (feature drift is blind to it).

The deployed model is trained on the first ``train_days`` sessions and then lives three lives
side by side, each retrained every ``retrain_every`` sessions (the weekly schedule) on every
label known at the retrain:

* **scheduled**: nothing else;
* **drift-triggered**: a detector watches the model's calibration (the daily mean residual,
  standardized by the reference days' mean and sd: one-sided CUSUM and Page–Hinkley of
  :mod:`validation.drift`); from the morning after it fires to the next scheduled retrain the
  model is retrained every morning on every known label with one more feature,
  ``since_change`` (1 for the orders since the detected change point, and for every order it
  prices from then on), so that the trees learn the new level from the new days and the shape
  of costs from all of them, and recalibrated during the day on its own out-of-sample
  residuals (that day's labels as they become known, :func:`models.online.ew_recalibration`);
* **online**: the weekly model corrected by an online linear recalibration,
  ``a + b * prediction`` (:func:`models.online.ew_recalibration`: exponentially forgotten least
  squares with a ridge prior at ``a = 0, b = 1``) on the labels known at each order's decision
  (``t1``, the label's knowledge time: never before), forgotten at each retrain (the residuals
  of the previous model are not this one's).

Measured: the detection delay (trading days from the break to the first alarm: 0 = an alarm on
the break day's own labels), false alarms on the calm days (sessions of the calm regime without
the flash crash or the crisis week, before the break; and the same detector on a long
block-bootstrap of those days' statistics, per 60 days), and each path's daily error against
the truth (MAE, bps): the pre-break level, and the trading days after the break until the error
is back within ``recovery_tol`` (10 %) of it.

A validation stage (pure): a training set, a ``fit`` and the ground truth's calendar in;
tables out. The cost model is
refitted with fixed hyperparameters (the study's clock is the retraining, not the tuning).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.online import ew_recalibration
from validation.drift import Cusum, DriftThresholds, PageHinkley, load_thresholds

__all__ = ["BreakConfig", "BreakStudy", "apply_break", "run_break_study"]

Fit = Callable[[pd.DataFrame, np.ndarray | None, Sequence[str]],
               Callable[[pd.DataFrame], np.ndarray]]
"""``fit(train, sample_weight, extra_features) -> predict(frame)``: the cost model's mean,
refitted (``extra_features``: columns of ``train`` and of the frames to predict added to the
model's features)."""


@dataclass(frozen=True)
class BreakConfig:
    """The scenario and the three paths.

    Parameters
    ----------
    break_day : int
        Index (into the training set's sessions) of the first session after the break.
    factor : float
        The expected cost's multiplier from the break on (sqrt 2: liquidity halves under the
        square-root law).
    train_days : int
        Sessions of the first training window.
    reference_days : int
        Calm sessions after it whose daily mean residuals give the detector its reference (mean
        and sd).
    retrain_every : int
        The schedule: sessions between retrains (5: weekly).
    thresholds : DriftThresholds
        The monitor's CUSUM (``cusum_k``, ``cusum_h``) and Page–Hinkley (``ph_delta``,
        ``ph_lambda``) on the standardized daily bias, upward side (a model that underprices):
        ``validation/drift.toml``'s by default.
    half_life_orders : float
        The online recalibration's memory, in labels.
    prior_orders : float
        Weight of its prior (``a = 0, b = 1``), in labels.
    recovery_tol : float
        Recovered: the daily relative error within this fraction of its pre-break level.
    pre_days : int
        Sessions before the break whose mean relative error is the pre-break level.
    bootstrap_days, seed : int
        The calm days' bootstrap for the false-alarm rate.
    """

    break_day: int = 45
    factor: float = math.sqrt(2.0)
    train_days: int = 20
    reference_days: int = 8
    retrain_every: int = 5
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    half_life_orders: float = 400.0
    prior_orders: float = 50.0
    recovery_tol: float = 0.10
    pre_days: int = 5
    bootstrap_days: int = 60_000
    seed: int = 11


@dataclass
class BreakStudy:
    """The study's outcome: per-session table, detection, false alarms, recovery per path."""

    config: BreakConfig
    days: pd.DataFrame
    detection: dict[str, float | int | str | None]
    false_alarms: dict[str, float | int]
    recovery: pd.DataFrame
    alarms: list[int] = field(default_factory=list)

    def to_markdown(self) -> str:
        c, d, f = self.config, self.detection, self.false_alarms
        lines = [
            f"Break: from session {c.break_day} ({d['break_date']}) every order's expected cost "
            f"x{c.factor:.3f} (liquidity halves, square-root law); features unchanged.",
            "",
            "| detector | first alarm after the break | delay, trading days |",
            "|---|---|---:|",
        ]
        for name in ("cusum", "page_hinkley"):
            lines.append(f"| {name} | {d[f'{name}_date'] or 'none'} | "
                         f"{'—' if d[f'{name}_delay'] is None else d[f'{name}_delay']} |")
        lines += [
            "",
            f"False alarms (CUSUM k={c.thresholds.cusum_k}, h={c.thresholds.cusum_h}): "
            f"{f['calm_alarms']} on "
            f"{f['calm_days']} calm sessions before the break; on a {f['bootstrap_days']:,}-day "
            f"bootstrap of those sessions {f['per_60_days']:.3f} per 60 days "
            f"(ARL0 {f['arl0_days']:.0f} days).",
            "",
            "Error against the truth, each session: MAE in bps, and relative (MAE / the mean "
            "true cost of the session: the break raises every cost, and with it every error).",
            "",
            f"| path | pre-break MAE, bps (relative) | break-day MAE (relative) | relative, "
            f"break day to +2 | sessions to within {c.recovery_tol:.0%} of its own pre-break "
            "relative error | ... of the schedule's | MAE +1..+5, bps |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]

        def days(v: object) -> str:
            return "never" if v is None or (isinstance(v, float) and math.isnan(v)) \
                else str(int(v))  # type: ignore[call-overload]

        for _, r in self.recovery.iterrows():
            lines.append(f"| {r['path']} | {r['pre_mae']:.2f} ({r['pre_rel']:.3f}) | "
                         f"{r['break_mae']:.2f} ({r['break_rel']:.3f}) | "
                         f"{r['post_rel_0_2']:.3f} | {days(r['days_to_recover'])} | "
                         f"{days(r['days_to_schedule_level'])} | {r['post_mae_1_5']:.2f} |")
        return "\n".join(lines)


def apply_break(ds: pd.DataFrame, break_ts: pd.Timestamp, factor: float) -> pd.DataFrame:
    """``ds`` with every order decided at or after ``break_ts`` costing ``factor`` times its
    expected cost (``truth_bps``), its realized cost moved by the same amount."""
    if "truth_bps" not in ds.columns:
        raise ValueError("apply_break: the training set has no truth_bps (a synthetic market's "
                         "ground truth is needed to plant a known break)")
    out = ds.copy()
    after = out["decision_ts"] >= break_ts
    add = (factor - 1.0) * out.loc[after, "truth_bps"]
    out.loc[after, "is_bps"] = out.loc[after, "is_bps"] + add
    out.loc[after, "truth_bps"] = out.loc[after, "truth_bps"] * factor
    return out


def run_break_study(ds: pd.DataFrame, fit: Fit, *, calm_dates: Sequence[str],
                    config: BreakConfig | None = None) -> BreakStudy:
    """Plant the break in ``ds`` and run the three paths (see the module docstring).

    Parameters
    ----------
    ds : DataFrame
        A synthetic training set sorted by ``decision_ts``: features, ``is_bps``, ``truth_bps``,
        ``t1`` (the label's knowledge time).
    fit : callable
        ``fit(train, sample_weight) -> predict``.
    calm_dates : sequence of str
        ISO dates of the calm sessions (the ground truth's calm regime without its flash crash
        or crisis week): the reference and the false alarms are counted on those.
    """
    c = config or BreakConfig(thresholds=load_thresholds())
    ds = ds.sort_values("decision_ts", kind="stable").reset_index(drop=True)
    day = ds["decision_ts"].dt.strftime("%Y-%m-%d").to_numpy()
    dates = sorted(set(day))
    if not c.train_days + c.reference_days < c.break_day < len(dates) - 2:
        raise ValueError(f"break_day {c.break_day} must leave {c.train_days} training and "
                         f"{c.reference_days} reference sessions before it and 2 after; the set "
                         f"has {len(dates)} sessions")
    day_idx = np.searchsorted(np.array(dates), day)
    ds = apply_break(ds, pd.Timestamp(dates[c.break_day], tz="UTC"), c.factor)
    calm = set(calm_dates)
    t1 = ds["t1"].to_numpy("datetime64[ns]").astype(np.int64)
    dec = ds["decision_ts"].to_numpy("datetime64[ns]").astype(np.int64)
    y, truth = ds["is_bps"].to_numpy(np.float64), ds["truth_bps"].to_numpy(np.float64)
    first_ts = {i: dec[day_idx == i].min() for i in range(len(dates))}

    def known_before(i: int) -> np.ndarray:
        return t1 < first_ts[i]

    # ---- the schedule: a model per week, trained on every label known at its retrain
    pred_sched = np.full(len(ds), np.nan)
    models: dict[int, Callable[[pd.DataFrame], np.ndarray]] = {}
    retrains = list(range(c.train_days, len(dates), c.retrain_every))
    for j, start in enumerate(retrains):
        stop = retrains[j + 1] if j + 1 < len(retrains) else len(dates)
        m = fit(ds[known_before(start)], None, ())
        models[start] = m
        rows = (day_idx >= start) & (day_idx < stop)
        pred_sched[rows] = m(ds[rows])
    mon = day_idx >= c.train_days

    # ---- detection on the scheduled model's daily calibration
    resid = y - pred_sched
    label_day = np.searchsorted(np.array([first_ts[i] for i in range(len(dates))]), t1,
                                side="right") - 1  # the session by whose end a label is known
    daily = pd.DataFrame({"label_day": label_day[mon], "resid": resid[mon]}).groupby(
        "label_day")["resid"].agg(["mean", "size"])
    ref_days = [i for i in range(c.train_days, c.break_day)
                if dates[i] in calm][:c.reference_days]
    ref = daily.loc[daily.index.isin(ref_days), "mean"]
    mu0, sd0 = float(ref.mean()), float(ref.std(ddof=1))
    if not (np.isfinite(sd0) and sd0 > 0):
        raise ValueError(f"the {len(ref)} reference sessions give no spread of the daily bias")
    z = (daily["mean"] - mu0) / sd0
    scan = [i for i in z.index if i > ref_days[-1]]
    th = c.thresholds
    cus, ph = Cusum(mu0=0.0, k=th.cusum_k, h=th.cusum_h), PageHinkley(delta=th.ph_delta,
                                                                      lam=th.ph_lambda)
    first: dict[str, int | None] = {"cusum": None, "page_hinkley": None}
    calm_alarms, calm_days, alarms = 0, 0, []
    cus_path = {}
    for i in scan:
        x = float(z.loc[i])
        a_c, a_p = cus.update(x), ph.update(x)
        cus_path[i] = float(cus.s_hi)
        if i < c.break_day:
            if dates[i] in calm:
                calm_days += 1
                calm_alarms += int(a_c)
            if a_c:
                cus.reset()
            if a_p:
                ph.reset()
            continue
        if a_c and first["cusum"] is None:
            first["cusum"] = i
            alarms.append(i)
        if a_p and first["page_hinkley"] is None:
            first["page_hinkley"] = i
    # false alarms on a long bootstrap of the calm sessions' statistics (restart after each)
    calm_z = z.loc[[i for i in z.index if i < c.break_day and dates[i] in calm
                    and i not in ref_days]].to_numpy()
    rng = np.random.default_rng(c.seed)
    boot = rng.choice(calm_z, size=c.bootstrap_days, replace=True) if len(calm_z) else []
    b = Cusum(mu0=0.0, k=th.cusum_k, h=th.cusum_h)
    n_boot = 0
    for x in boot:
        if b.update(float(x)):
            n_boot += 1
            b.reset()
    per60 = n_boot / max(len(boot), 1) * 60.0

    # ---- drift-triggered: the schedule, plus a retrain every morning from the one after an
    # alarm to the next scheduled retrain (the detector keeps firing while the model is off)
    pred_drift = pred_sched.copy()
    if first["cusum"] is not None:
        a = first["cusum"]
        # the change point: the first session after the CUSUM statistic was last at zero
        zero = [i for i in scan if i <= a and cus_path.get(i, 0.0) == 0.0]
        cp = (zero[-1] + 1) if zero else c.break_day
        with_flag = ds.assign(since_change=(day_idx >= cp).astype(np.float64))
        nxt = next((r for r in retrains if r > a + 1), len(dates))
        for start in range(a + 1, nxt):
            m = fit(with_flag[known_before(start)], None, ["since_change"])
            rows = day_idx == start
            p = m(with_flag[rows])
            # and recalibrated on its own out-of-sample residuals: the day's labels as they
            # become known (the model trained on every earlier one)
            pred_drift[rows] = ew_recalibration(
                t1[rows], p, y[rows], dec[rows], p, half_life=c.half_life_orders,
                prior=c.prior_orders)

    # ---- online: the schedule's model recalibrated on the labels known so far, per model
    pred_online = pred_sched.copy()
    for j, start in enumerate(retrains):
        stop = retrains[j + 1] if j + 1 < len(retrains) else len(dates)
        rows = (day_idx >= start) & (day_idx < stop)
        # the labels this model has priced and that are known: its own residuals only
        seen = rows & (t1 < (first_ts[stop] if stop < len(dates) else np.iinfo(np.int64).max))
        pred_online[rows] = ew_recalibration(
            t1[seen], pred_sched[seen], y[seen], dec[rows], pred_sched[rows],
            half_life=c.half_life_orders, prior=c.prior_orders)

    # ---- daily errors against the truth and the recovery
    frame = pd.DataFrame({"day": day_idx, "truth": truth, "scheduled": pred_sched,
                          "drift_triggered": pred_drift, "online": pred_online})[mon]
    paths = ("scheduled", "drift_triggered", "online")
    mae = frame.groupby("day").apply(lambda g: pd.Series({
        p: float(np.mean(np.abs(g[p] - g["truth"]))) for p in paths}), include_groups=False)
    level = frame.groupby("day")["truth"].apply(lambda t: float(np.mean(np.abs(t))))
    rel = mae.div(level, axis=0)  # the error relative to the cost level of the day
    mae.index = rel.index = [dates[i] for i in mae.index]
    pre_days = [dates[i] for i in range(c.break_day - c.pre_days, c.break_day)]
    rows = []
    post = [dates[i] for i in range(c.break_day, len(dates))]
    pre_sched = float(rel.loc[pre_days, "scheduled"].mean())
    for p in paths:
        pre = float(rel.loc[pre_days, p].mean())
        ok = [k for k, d in enumerate(post) if rel.loc[d, p] <= (1 + c.recovery_tol) * pre]
        ok_s = [k for k, d in enumerate(post)
                if rel.loc[d, p] <= (1 + c.recovery_tol) * pre_sched]
        rows.append({"path": p, "pre_mae": float(mae.loc[pre_days, p].mean()),
                     "break_mae": float(mae.loc[post[0], p]),
                     "post_mae_1_5": float(mae.loc[post[1:6], p].mean()),
                     "pre_rel": pre, "break_rel": float(rel.loc[post[0], p]),
                     "post_rel_0_2": float(rel.loc[post[0:3], p].mean()),
                     "days_to_recover": ok[0] if ok else None,
                     "days_to_schedule_level": ok_s[0] if ok_s else None})
    days = mae.copy()
    for p in paths:
        days[f"{p}_rel"] = rel[p]
    days["daily_bias_z"] = [float(z.get(dates.index(d), np.nan)) for d in days.index]
    days["cusum"] = [cus_path.get(dates.index(d), np.nan) for d in days.index]
    days["calm"] = [d in calm for d in days.index]
    detection = {"break_date": dates[c.break_day], "reference_mean_bps": mu0,
                 "reference_sd_bps": sd0}
    for k, v in first.items():
        detection[f"{k}_date"] = dates[v] if v is not None else None
        detection[f"{k}_delay"] = (v - c.break_day) if v is not None else None
    false_alarms = {"calm_days": calm_days, "calm_alarms": calm_alarms,
                    "bootstrap_days": len(boot), "bootstrap_alarms": n_boot,
                    "per_60_days": per60,
                    "arl0_days": (len(boot) / n_boot) if n_boot else float("inf")}
    return BreakStudy(c, days, detection, false_alarms, pd.DataFrame(rows), alarms)
