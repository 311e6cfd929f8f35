"""Regime probabilities as point-in-time features: the walk-forward HMM of :mod:`models.regimes`
read at each order's decision.

For a decision on session ``d`` the feature ``regime_p_<label>`` is

    P(s_d = label | y_1..y_{d-1}) = (A^T xi_{d-1|d-1})_label,

the forward filter through the previous session propagated one session (``predict_next``) by a
model refit only on sessions before ``d - 1``'s (``walk_forward_regimes``: expanding window,
refit every ``regime_hmm_refit_every`` sessions, the first after ``regime_hmm_min_train``; market
level: each session's cross-sectional median of the symbols' ``regime_inputs`` with quotes). It
is known from the close of ``d - 1`` (the ``available_at`` of that session's inputs: its daily
bars and its last quote) and is the same for every order of session ``d``.

Why not today's quotes as well: the HMM's emissions describe whole sessions (the session's range,
volume, median spread and 5-minute realized volatility against the symbol's own history); a
partial session's figures are noisier and biased by the intraday U-shape (the open's wide
spreads), so a filter step on them would read the morning as a regime change. What the session
has shown so far is in the intraday features instead (``vol_ratio``, ``rv_open``,
``sigma_seen``, ``arrival_spread_bps``, ``trade_intensity_rel``), which the model combines with
this prior.

NaN where no model exists yet (the first ``regime_hmm_min_train`` sessions, a one-day book) and
where the refit has fewer than 15 complete sessions (``walk_forward_regimes`` skips it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from models._feature_groups import _Ctx
from models._feature_registry import NAT, NS_DAY, REGIME_LABELS, FeatureConfig
from models._feature_time import _ns, _utc, sessions_around

COLUMNS = tuple(f"regime_p_{k}" for k in REGIME_LABELS)
"""The feature columns, calm to crisis."""


@functools.lru_cache(maxsize=8)
def _calendar_and_tz(name: str) -> tuple[str | None, str]:
    """The ``regime_inputs`` calendar and session time zone of a :class:`FeatureConfig`
    calendar (``"24/7"``: no early closes, UTC days)."""
    if name in ("24/7", "24h"):
        return None, "UTC"
    import exchange_calendars as xc

    return name, str(xc.get_calendar(name).tz)


def regime_probability_table(daily_bars: pd.DataFrame | None, quotes: pd.DataFrame | None, *,
                             config: FeatureConfig | None = None,
                             inputs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per session with a model: ``date, available_at`` and the ``regime_p_<label>`` of the
    **next** session, usable by a decision from ``available_at`` on.

    Empty (the columns only) when the bars hold no more than ``regime_hmm_min_train`` sessions:
    no model yet. Every row is a function of the bars and quotes of its session and earlier
    ones (``walk_forward_regimes``), so sources cut at a decision give the same rows.
    ``inputs``: :func:`models.regimes.regime_inputs` of these bars and quotes when already
    computed (``quotes`` is then not read).
    """
    from models.regimes import regime_inputs, walk_forward_regimes

    cfg = config or FeatureConfig()
    empty = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"),
                          "available_at": pd.Series(dtype="datetime64[ns, UTC]"),
                          **{c: pd.Series(dtype=float) for c in COLUMNS}})
    if daily_bars is None or daily_bars["date"].nunique() <= cfg.regime_hmm_min_train:
        return empty
    calendar, tz = _calendar_and_tz(cfg.calendar)
    if inputs is None:
        inputs = regime_inputs(daily_bars, quotes=quotes if quotes is not None and len(quotes)
                               else None, calendar=calendar, tz=tz)
    wf = walk_forward_regimes(inputs, seed=cfg.regime_hmm_seed,
                              min_train=cfg.regime_hmm_min_train,
                              refit_every=cfg.regime_hmm_refit_every,
                              n_restarts=cfg.regime_hmm_restarts, labels=REGIME_LABELS)
    nxt = wf[[f"p_next_{k}" for k in REGIME_LABELS]].to_numpy(np.float64)
    has = ~np.isnan(nxt).any(axis=1)
    out = pd.DataFrame({"date": wf["date"].to_numpy()[has],
                        "available_at": pd.to_datetime(wf["available_at"].to_numpy()[has],
                                                       utc=True)})
    for k, c in enumerate(COLUMNS):
        out[c] = nxt[has, k]
    return out if len(out) else empty


def regime_group(table: pd.DataFrame | None = None) -> Callable[[_Ctx], np.ndarray]:
    """The ``regime_hmm`` group: an as-of join of each order's decision on the table's
    ``available_at`` (market level: one row per session, every symbol). ``table`` precomputed
    by :func:`regime_probability_table` on the same sources, else computed from the context's
    daily bars and quotes."""

    def _g_regime_hmm(x: _Ctx) -> np.ndarray:
        t = regime_probability_table(x.daily_bars, x.quotes, config=x.cfg) if table is None \
            else table
        if len(t) == 0:
            for c in COLUMNS:
                x.cols[c] = np.full(len(x.d), np.nan)
            return np.full(len(x.d), NAT, np.int64)
        av = _ns(t["available_at"])
        order = np.argsort(av, kind="stable")
        j = np.searchsorted(av[order], x.d, side="right") - 1
        row = np.where(j >= 0, order[np.maximum(j, 0)], -1)
        for c in COLUMNS:
            x.cols[c] = np.where(row >= 0, t[c].to_numpy(np.float64)[np.maximum(row, 0)],
                                 np.nan)
        return np.where(row >= 0, av[np.maximum(row, 0)], NAT)

    return _g_regime_hmm


def regimes_known_at_close(sessions: Sequence, regime_path: Sequence[str], *,
                           calendar: str = "XNYS") -> pd.DataFrame:
    """A ``regimes`` table releasing each session's regime at that session's close.

    E.g. ``regimes_known_at_close(market.truth.sessions, market.truth.regime_path)``: the truth
    of day ``d`` becomes usable from the close of ``d`` on, so a decision on ``d`` sees ``d - 1``.
    """
    dates = pd.DatetimeIndex(pd.to_datetime(list(sessions))).as_unit("ns")
    day = dates.asi8 // NS_DAY
    cal = sessions_around(day, calendar, before=7, after=7)
    ok, _, cl = cal.lookup(day)
    if not ok.all():
        bad = [str(x.date()) for x in dates[~ok]]
        raise ValueError(f"not {calendar} sessions: {bad}")
    return pd.DataFrame({"date": dates, "regime": pd.array(list(regime_path), dtype="str"),
                         "available_at": _utc(cl)})

