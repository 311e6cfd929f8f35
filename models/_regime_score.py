"""Scoring of regime labels or probabilities against a true regime path (re-exported by
:mod:`models.regimes`): accuracy, balanced accuracy, confusion, detection delay per switch, false
alarms in calm."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_LABELS = ("calm", "volatile", "crisis")
"""Labels of a 3-state model, lowest to highest volatility (the synthetic market's names)."""


@dataclass(frozen=True, eq=False)
class RegimeScore:
    """Recovery of a true regime path (see :func:`score_regimes`)."""

    n: int
    accuracy: float
    balanced_accuracy: float
    recall: dict[str, float]
    confusion: pd.DataFrame
    switches: pd.DataFrame
    detection_rate: float
    mean_delay: float
    median_delay: float
    false_alarm_rate: float

    def summary(self) -> dict[str, float]:
        """The scalar figures, for a table or an MLflow run."""
        return {"n": self.n, "accuracy": self.accuracy,
                "balanced_accuracy": self.balanced_accuracy,
                **{f"recall_{k}": v for k, v in self.recall.items()},
                "n_switches": len(self.switches), "detection_rate": self.detection_rate,
                "mean_delay": self.mean_delay, "median_delay": self.median_delay,
                "false_alarm_rate": self.false_alarm_rate}


def score_regimes(pred: Any, true_labels: Sequence[str], *,
                  labels: Sequence[str] = DEFAULT_LABELS) -> RegimeScore:
    """Score predicted regimes (labels, or probabilities read by argmax) against the truth.

    Parameters
    ----------
    pred : array-like of shape (T,) of str, or (T, K) of probabilities in ``labels`` order
        Missing predictions (None, or a row with NaN) are left out of every figure.
    true_labels : sequence of str, length T
        One time series (switches are counted between consecutive rows): score a per-symbol
        walk-forward one symbol at a time.
    labels : sequence of str, default=DEFAULT_LABELS
        The first is the baseline ("calm") of the false-alarm rate.

    Returns
    -------
    RegimeScore
        ``accuracy``; ``balanced_accuracy`` (mean recall over the true states present);
        ``confusion`` (rows true, columns predicted); ``switches``: one row per true switch
        inside the scored span (``at``, ``to``, ``spell`` length, ``delay``: sessions from the
        switch until the prediction first says ``to`` within that spell, NaN when it never does);
        ``detection_rate`` and the mean and median delay of the detected switches;
        ``false_alarm_rate``: the share of true-``labels[0]`` sessions predicted otherwise.
    """
    labs = list(labels)
    truth = np.asarray(list(true_labels), dtype=object)
    p = np.asarray(pred, dtype=object if np.asarray(pred).dtype.kind in "OUS" else np.float64)
    if p.ndim == 2:
        ok = ~np.isnan(p.astype(np.float64)).any(axis=1)
        pl = np.where(ok, np.asarray(labs, dtype=object)[
            np.argmax(np.nan_to_num(p.astype(np.float64), nan=-1), axis=1)], None)
    else:
        pl = p.astype(object)
        ok = np.array([v is not None and v == v for v in pl], dtype=bool)
    if len(pl) != len(truth):
        raise ValueError(f"`pred` has {len(pl)} rows and `true_labels` {len(truth)}")
    t, q = truth[ok], pl[ok]
    conf = pd.crosstab(pd.Categorical(t, categories=labs), pd.Categorical(q, categories=labs),
                       dropna=False).rename_axis(index="true", columns="predicted")
    recall = {lab: float(conf.loc[lab, lab] / conf.loc[lab].sum())
              for lab in labs if conf.loc[lab].sum() > 0}
    rows = []
    for s in range(1, len(t)):
        if t[s] == t[s - 1]:
            continue
        end = s
        while end + 1 < len(t) and t[end + 1] == t[s]:
            end += 1
        hit = np.flatnonzero(q[s:end + 1] == t[s])
        rows.append({"at": int(np.flatnonzero(ok)[s]), "to": t[s], "spell": end - s + 1,
                     "delay": float(hit[0]) if len(hit) else np.nan})
    sw = pd.DataFrame(rows, columns=["at", "to", "spell", "delay"])
    calm = t == labs[0]
    d = sw["delay"].dropna()
    return RegimeScore(
        n=int(ok.sum()), accuracy=float(np.mean(t == q)) if len(t) else float("nan"),
        balanced_accuracy=float(np.mean(list(recall.values()))) if recall else float("nan"),
        recall=recall, confusion=conf, switches=sw,
        detection_rate=float(len(d) / len(sw)) if len(sw) else float("nan"),
        mean_delay=float(d.mean()) if len(d) else float("nan"),
        median_delay=float(d.median()) if len(d) else float("nan"),
        false_alarm_rate=float(np.mean(q[calm] != labs[0])) if calm.any() else float("nan"))
