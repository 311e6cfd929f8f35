"""The regime model on the stress days (issue 13, item 3): what the HMM saw, session by session.

The regime features of a model (``regime_p_<label>``, :mod:`models._feature_regime`) come from a
Gaussian HMM fitted on the training market's past sessions. On a stress scenario the question a
desk asks is whether that model would have *noticed*: :func:`fit_stress_regime_model` fits it
once on the whole training market (every session of it precedes the hypothetical stress), and
:func:`scenario_regimes` runs its forward filter over each scenario market's market-level regime
inputs (:func:`models.regimes.regime_inputs`: range, volume, spread and realized vol, each
against the symbols' own earlier sessions), so a session's probabilities use that session's
close and earlier ones only. :func:`regime_detection` scores them against the generator's true
regime path: accuracy, the share of stressed sessions flagged (volatile or crisis), the delay
from the first stressed session to the first flag, false alarms on calm sessions.

The recorded books (BitMEX 2020-03-10, AMZN 2012-06-21) hold one session and no daily bars: the
inputs need a baseline of earlier sessions, so they are not scored here.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from models.regimes import (
    DEFAULT_LABELS,
    RegimeModel,
    filtered_probabilities,
    fit_regime_hmm,
    regime_inputs,
)

__all__ = ["DETECTION_COLUMNS", "REGIME_COLUMNS", "fit_stress_regime_model", "regime_detection",
           "scenario_regimes"]

REGIME_COLUMNS: Final = ("scenario", "date", "stressed", "true_regime",
                         *(f"p_{k}" for k in DEFAULT_LABELS), "regime")
"""One row per session of each scenario market (``regime``: the most probable, '' unknown)."""

DETECTION_COLUMNS: Final = ("scenario", "sessions", "accuracy", "stressed_sessions",
                            "stressed_flagged", "detection_delay", "calm_sessions",
                            "false_alarm_rate")
"""One row per scenario: :func:`regime_detection`."""


def fit_stress_regime_model(daily_bars: pd.DataFrame, quotes: pd.DataFrame | None = None, *,
                            seed: int = 0, n_restarts: int = 4, calendar: str | None = "XNYS",
                            tz: str = "America/New_York") -> RegimeModel:
    """The 3-state HMM (calm < volatile < crisis) on every session of the training market."""
    inputs = regime_inputs(daily_bars, quotes=quotes, calendar=calendar, tz=tz)
    rel = [c for c in inputs.columns if c.endswith("_rel")]
    X = inputs[rel].dropna()
    if len(X) < 10:
        raise ValueError(f"regime model: {len(X)} sessions with complete inputs, need 10")
    return fit_regime_hmm(X, seed=seed, n_restarts=n_restarts, labels=DEFAULT_LABELS)


def scenario_regimes(name: str, market: Any, model: RegimeModel,
                     stressed_dates: Any = (), *, calendar: str | None = "XNYS",
                     tz: str = "America/New_York") -> pd.DataFrame:
    """:data:`REGIME_COLUMNS` of one scenario ``market`` (a
    :class:`models.synthetic_market.SyntheticMarket`): the filtered probabilities at each
    session's close and the generator's true regime."""
    inputs = regime_inputs(market.daily_bars, quotes=market.quotes, calendar=calendar, tz=tz)
    p = filtered_probabilities(model, inputs)
    truth = pd.Series(list(market.truth.regime_path),
                      index=pd.to_datetime(list(market.truth.sessions)))
    dates = pd.to_datetime(inputs["date"])
    known = np.isfinite(inputs[list(model.features)].to_numpy(np.float64)).any(axis=1)
    labels = list(model.labels)
    out = pd.DataFrame({"scenario": name, "date": dates.dt.date.to_numpy(),
                        "stressed": dates.dt.date.isin(set(stressed_dates)).to_numpy(),
                        "true_regime": truth.reindex(dates).fillna("").to_numpy()})
    for k in DEFAULT_LABELS:
        out[f"p_{k}"] = p[:, labels.index(k)] if k in labels else 0.0
        out.loc[~known, f"p_{k}"] = np.nan
    probs = out[[f"p_{k}" for k in DEFAULT_LABELS]].to_numpy(np.float64)
    best = np.argmax(np.nan_to_num(probs, nan=-1.0), axis=1)
    out["regime"] = np.where(known, np.asarray(DEFAULT_LABELS)[best], "")
    return out[list(REGIME_COLUMNS)]


def regime_detection(table: pd.DataFrame) -> pd.DataFrame:
    """Per scenario of a :func:`scenario_regimes` table, on the sessions with a regime:
    ``accuracy`` (regime == true regime), ``stressed_flagged`` (share of stressed sessions read
    volatile or crisis), ``detection_delay`` (sessions from the first stressed session to the
    first flagged one; NaN when none is flagged) and ``false_alarm_rate`` (calm sessions that
    are not stressed, read volatile or crisis)."""
    rows = []
    for name, g in table.groupby("scenario", sort=False):
        g = g[g["regime"] != ""].reset_index(drop=True)
        flagged = g["regime"].isin(["volatile", "crisis"]).to_numpy()
        st = g["stressed"].to_numpy(bool)
        calm = (g["true_regime"] == "calm").to_numpy() & ~st
        delay = np.nan
        if st.any():
            first = int(np.flatnonzero(st)[0])
            hit = np.flatnonzero(flagged[first:])
            delay = float(hit[0]) if hit.size else np.nan
        rows.append({"scenario": name, "sessions": len(g),
                     "accuracy": float((g["regime"] == g["true_regime"]).mean())
                     if len(g) else np.nan,
                     "stressed_sessions": int(st.sum()),
                     "stressed_flagged": float(flagged[st].mean()) if st.any() else np.nan,
                     "detection_delay": delay, "calm_sessions": int(calm.sum()),
                     "false_alarm_rate": float(flagged[calm].mean()) if calm.any() else np.nan})
    return pd.DataFrame(rows, columns=list(DETECTION_COLUMNS))
