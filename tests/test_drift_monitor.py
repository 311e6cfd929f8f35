"""The drift monitor's verdict (``validation.drift_monitor.monitor``): a feature that moves is a
warning, a model whose realized costs run away from its predictions is an alarm.

A stand-in cost model predicts ``2 * x`` with a band of +-1.28 sd (sd 4 bps): on 10 live days
whose realized cost is ``2 * x`` + noise it is calibrated; from day 6 the costs are 8 bps
higher (two sd of a single order, ~40 sd of a day's mean of 400 orders): the calibration
detectors fire on day 6 and not before; a live feature shifted by 3 sd is a warning only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from validation.drift import Z80, DriftThresholds
from validation.drift_monitor import monitor


class _Model:
    features = ("x", "y")

    def predict(self, frame):
        mean = 2.0 * frame["x"].to_numpy()
        return mean, mean - 4 * Z80, mean + 4 * Z80


def _rows(rng, n_days, per_day, start, y_shift=0.0, bias_from=None):
    days = pd.bdate_range(start, periods=n_days, tz="UTC")
    ts = np.repeat(days + pd.Timedelta(hours=15), per_day)
    x = rng.uniform(0, 10, len(ts))
    cost = 2 * x + rng.normal(0, 4, len(ts))
    if bias_from is not None:
        cost = cost + np.where(np.repeat(np.arange(n_days), per_day) >= bias_from, 8.0, 0.0)
    return pd.DataFrame({"decision_ts": ts, "x": x, "y": rng.normal(y_shift, 1, len(ts)),
                         "is_bps": cost})


def test_calm_days_raise_nothing():
    rng = np.random.default_rng(0)
    rep = monitor(_Model(), _rows(rng, 20, 400, "2025-01-06"),
                  _rows(rng, 10, 400, "2025-02-03"), thresholds=DriftThresholds())
    assert not rep.alarm
    assert rep.warnings == []
    assert rep.reasons == []


def test_a_moved_feature_is_a_warning_and_a_cost_shift_an_alarm_on_its_day():
    rng = np.random.default_rng(1)
    live = _rows(rng, 10, 400, "2025-02-03", y_shift=3.0, bias_from=6)
    rep = monitor(_Model(), _rows(rng, 20, 400, "2025-01-06"), live,
                  thresholds=DriftThresholds())
    assert rep.drifted == ["y"]
    assert rep.warnings == [f"feature drift on {rep.last_day}: y"]
    assert rep.alarm
    day6 = sorted(set(live["decision_ts"].dt.strftime("%Y-%m-%d")))[6]
    assert rep.reasons[0].startswith(f"calibration CUSUM/Page-Hinkley on {day6}")
    cal = rep.calibration.set_index("day")
    assert not cal.loc[cal.index < day6, "alarm"].any()
    assert "**Alarm (retraining): YES**" in rep.to_markdown("v1")
