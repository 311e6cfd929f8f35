"""The drift monitor of a registered cost model (issue 16): a validation stage (pure).

On the days after the model's training window: feature drift (PSI and KS of every numeric
model feature, per day, against the training rows), prediction drift (the same on the predicted
mean) and calibration drift on realized costs (:func:`validation.drift.calibration_drift`: daily
bias, CUSUM and Page–Hinkley on the standardized daily bias, rolling band coverage). The daily
sd of the mean standardized residual is measured on the first ``reference_days`` (rows of a day
share the market's shocks: ``1/sqrt(n)`` would understate it and alarm every day).

The verdict: prediction or calibration drift is an **alarm** (the model is wrong: retrain); a
feature moving alone is a **warning** (the model may price a regime it has seen).
The asset ``monitoring/drift`` (:mod:`assets.monitoring`) writes it and the sensor acts on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from validation.drift import DriftThresholds, calibration_drift, feature_drift

__all__ = ["DriftReport", "monitor"]

PER_DAY = ("day_of_week",)
"""Features that take one value a day: a day's distribution of them is no drift."""


@dataclass
class DriftReport:
    """The monitor's tables and verdict (see the module docstring)."""

    features: pd.DataFrame
    prediction: pd.DataFrame
    calibration: pd.DataFrame
    last_day: str
    daily_sd: float
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    drifted: list[str] = field(default_factory=list)
    prediction_drift: bool = False

    @property
    def alarm(self) -> bool:
        return bool(self.reasons)

    def to_markdown(self, model: str) -> str:
        feat, cal = self.features, self.calibration
        worst = feat.groupby("feature")["psi"].max().sort_values(ascending=False).head(10)
        return "\n".join([
            f"Model {model} on {feat['day'].nunique()} days after its training window "
            f"({feat['day'].min()} .. {self.last_day}); thresholds: validation/drift.toml.",
            "", f"**Alarm (retraining): {'YES' if self.alarm else 'no'}**", "",
            *[f"- {r}" for r in self.reasons], *[f"- warning: {w}" for w in self.warnings], "",
            "| feature | worst daily PSI | days drifting |", "|---|---:|---:|",
            *[f"| {f} | {v:.3f} | {int(feat.loc[feat['feature'] == f, 'drift'].sum())} |"
              for f, v in worst.items()],
            "", "| day | n | bias, bps | z | coverage | CUSUM hi / lo | alarm |",
            "|---|---:|---:|---:|---:|---:|---|",
            *[f"| {r['day']} | {r['n']} | {r['bias']:+.2f} | {r['z_day']:+.2f} | "
              f"{r['coverage']:.2f} | {r['cusum_hi']:.2f} / {r['cusum_lo']:.2f} | "
              f"{'ALARM' if r['alarm'] else ''} |" for _, r in cal.iterrows()],
        ])


def monitor(bundle: Any, train: pd.DataFrame, live: pd.DataFrame, *,
            thresholds: DriftThresholds, reference_days: int = 5) -> DriftReport:
    """Drift of ``bundle`` (a cost model: ``features``, ``predict(frame) -> mean, lo, hi``) on
    the ``live`` rows (features, ``is_bps``, ``decision_ts``) against its ``train`` rows."""
    th = thresholds
    live = live.assign(day=live["decision_ts"].dt.strftime("%Y-%m-%d"))
    # one-hot and flags have no PSI to speak of, and a calendar feature is one value a day
    feats = [f for f in bundle.features if pd.api.types.is_numeric_dtype(train[f])
             and train[f].nunique() > 2 and f not in PER_DAY]
    feat = feature_drift(train, live, features=feats, day_col="day", thresholds=th)
    mean_tr, _, _ = bundle.predict(train)
    mean, lo, hi = bundle.predict(live)
    pred = feature_drift(pd.DataFrame({"pred": mean_tr}),
                         pd.DataFrame({"pred": mean, "day": live["day"].to_numpy()}),
                         features=["pred"], day_col="day", thresholds=th)
    frame = pd.DataFrame({"realized": live["is_bps"].to_numpy(), "mean": mean, "lo": lo,
                          "hi": hi, "day": live["day"].to_numpy()})
    frame = frame[np.isfinite(frame[["realized", "mean", "lo", "hi"]]).all(axis=1)
                  & (frame["hi"] > frame["lo"])]
    cols = {"realized": "realized", "mean": "mean", "lo": "lo", "hi": "hi", "day_col": "day"}
    first = calibration_drift(frame, **cols, thresholds=th).head(reference_days)
    daily_sd = float(max(first["z_mean"].std(ddof=1), 1 / np.sqrt(first["n"].median())))
    cal = calibration_drift(frame, **cols, daily_sd=daily_sd, thresholds=th)
    last = str(feat["day"].max())
    rep = DriftReport(feat, pred, cal, last, daily_sd)
    rep.drifted = sorted(feat.loc[(feat["day"] == last) & feat["drift"], "feature"])
    rep.prediction_drift = bool(pred.loc[pred["day"] == last, "drift"].any())
    if rep.drifted:
        rep.warnings.append(f"feature drift on {last}: {', '.join(rep.drifted)}")
    if rep.prediction_drift:
        rep.reasons.append(f"prediction drift on {last}")
    for _, r in cal[cal["alarm"]].iterrows():
        what = [n for n, k in (("CUSUM", "cusum_alarm"), ("Page-Hinkley", "ph_alarm"),
                               ("coverage", "coverage_low")) if r[k]]
        rep.reasons.append(f"calibration {'/'.join(what)} on {r['day']} (bias "
                           f"{r['bias']:+.2f} bps, coverage {r['coverage']:.2f})")
    return rep
