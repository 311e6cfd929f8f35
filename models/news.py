r"""News and events: headline sentiment, point-in-time news features, and the true news effect.

Three pieces, each pure (no file is read, nothing is downloaded):

* :func:`score_headlines`: VADER's compound score of each headline (Hutto & Gilbert 2014; the
  lexicon ships inside the ``vaderSentiment`` package; REFERENCES.md §7.5).
* :func:`news_features`: for each parent order, what the news known at its decision says: only
  headlines with ``available_at <= decision_ts`` of the order's symbol are used. ``ts`` (when
  the event happened) never decides whether a headline is used: a story stamped before the
  decision that reached the wire after it is not known at the decision. As in
  :mod:`models.features`, this is the per-symbol ``np.searchsorted(available_at, d,
  side="right")``, ties on ``available_at`` go to the latest ``ts``, and windows are windows of
  knowledge time ``(d - W, d]``.
* :func:`news_effect` and :func:`apply_news_effect`: the **true** effect of a synthetic feed
  (:func:`news_feed`, with its truth) on orders whose working window overlaps an event, laid
  over a desk's outcomes without touching the synthetic market (the rule is in
  :func:`apply_news_effect`). ``benchmarks/bench_news.py`` measures what news features are worth
  on such orders.

Examples
--------
>>> import pandas as pd
>>> news = pd.DataFrame({"ts": pd.to_datetime(["2024-11-04T14:00:00Z", "2024-11-04T14:59:00Z"]),
...                      "available_at": pd.to_datetime(["2024-11-04T14:00:30Z",
...                                                      "2024-11-04T15:05:00Z"]),
...                      "symbol": ["AAA", "AAA"],
...                      "headline": ["AAA posts strong quarterly profit growth",
...                                   "AAA warns of weaker demand"]})
>>> orders = pd.DataFrame({"order_id": ["O1"], "symbol": ["AAA"],
...                        "decision_ts": pd.to_datetime(["2024-11-04T15:00:30Z"])})
>>> f = news_features(orders, news, window_hours=2.0)
>>> f[["news_time_since_last_h", "news_intensity_2h"]].round(4).values.tolist()
[[1.0, 1.0]]
>>> float(f["news_last_sentiment"].iloc[0])
0.8316
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Final

import numpy as np
import pandas as pd

from models._feature_registry import NAT
from models._feature_time import _ns, _utc
from models._synth_news import (
    EVENT_SPECS,
    EVENT_TYPES,
    GAP_TEMPLATES,
    MACRO_SPEC,
    NEGATIVE_AMPLIFIER,
    TEMPLATES,
    EventSpec,
    news_feed,
)

__all__ = ["EVENT_SPECS", "EVENT_TYPES", "GAP_TEMPLATES", "MACRO_SPEC", "NEGATIVE_AMPLIFIER",
           "NEUTRAL_BAND", "TEMPLATES", "EventSpec", "apply_news_effect", "desk_cost_parts",
           "news_effect", "news_feature_names", "news_features", "news_feed",
           "score_headlines", "vader_agreement"]

NEUTRAL_BAND: Final = 0.05
"""VADER's neutral band: compound >= 0.05 is positive, <= -0.05 negative (REFERENCES.md §7.5)."""

_NS_PER_H: Final = 3_600_000_000_000


# =========================================================================== scoring
@functools.cache
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()  # reads the lexicon shipped in the package, once


def score_headlines(headlines: Iterable[str]) -> np.ndarray:
    """VADER compound score in [-1, 1] of each headline (each distinct text scored once).

    Examples
    --------
    >>> score_headlines(["Acme Corp shares surge after strong earnings beat",
    ...                  "Acme Corp misses revenue forecast, cuts dividend"]).tolist()
    [0.6705, -0.4767]
    """
    text = pd.Series(list(headlines), dtype=object)
    if text.empty:
        return np.zeros(0, np.float64)
    codes, uniq = pd.factorize(text.astype(str))
    an = _analyzer()
    scores = np.array([an.polarity_scores(t)["compound"] for t in uniq], np.float64)
    return scores[codes]


def vader_agreement(feed: pd.DataFrame) -> float:
    """Share of rows of a synthetic feed whose VADER label has the sign of ``true_sentiment``
    (a compound inside the neutral band counts as a disagreement: no true sentiment is 0)."""
    c = score_headlines(feed["headline"])
    label = np.where(c >= NEUTRAL_BAND, 1.0, np.where(c <= -NEUTRAL_BAND, -1.0, 0.0))
    return float(np.mean(label == np.sign(feed["true_sentiment"].to_numpy()))) if len(c) \
        else float("nan")


# =========================================================================== features
def news_feature_names(window_hours: float = 4.0) -> tuple[str, ...]:
    """The model-input columns of :func:`news_features` for ``window_hours``."""
    w = f"{window_hours:g}h"
    return ("news_time_since_last_h", "news_last_sentiment", f"news_intensity_{w}",
            f"news_pos_intensity_{w}", f"news_neg_intensity_{w}", f"news_sentiment_sum_{w}")


def news_features(orders: pd.DataFrame, news: pd.DataFrame, *, window_hours: float = 4.0
                  ) -> pd.DataFrame:
    """News known at each order's decision, for its symbol.

    Parameters
    ----------
    orders : pandas.DataFrame
        ``order_id, symbol, decision_ts``.
    news : pandas.DataFrame
        The ``news`` contract: ``available_at, symbol, headline`` are used, ``ts`` only to
        order headlines that became known at the same instant (the latest ``ts`` last).
    window_hours : float, default=4.0
        The knowledge-time window ``(d - W, d]`` of the intensity columns.

    Returns
    -------
    pandas.DataFrame
        One row per order, in input order: ``order_id``;
        ``news_time_since_last_h`` (hours from the last known headline's ``available_at`` to the
        decision; NaN when none is known); ``news_last_sentiment`` (its VADER compound; NaN when
        none); ``news_intensity_{W}h`` (headlines that became known in the window),
        ``news_pos_intensity_{W}h`` / ``news_neg_intensity_{W}h`` (those scored positive /
        negative, outside VADER's neutral band), ``news_sentiment_sum_{W}h`` (the sum of their
        compounds); and ``news_knowledge_ts``: the latest ``available_at`` used (NaT when none),
        for ``validation.leakage``'s check ``knowledge_ts <= decision_ts``.

    Raises
    ------
    ValueError
        When ``window_hours`` is not positive, or a column is missing.
    """
    if not window_hours > 0:
        raise ValueError(f"`window_hours={window_hours}` must be positive, e.g. 4.0")
    for name, frame, need in (("orders", orders, ("order_id", "symbol", "decision_ts")),
                              ("news", news, ("available_at", "symbol", "headline"))):
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise ValueError(f"news_features: {name} lacks column(s) {missing}")
    names = news_feature_names(window_hours)
    n = len(orders)
    d = _ns(orders["decision_ts"]) if n else np.zeros(0, np.int64)
    since = np.full(n, np.nan)
    last = np.full(n, np.nan)
    cnt, pos, neg, ssum = (np.zeros(n) for _ in range(4))
    know = np.full(n, NAT, np.int64)
    if len(news) and n:
        avail = _ns(news["available_at"])
        ts = _ns(news["ts"]) if "ts" in news.columns else avail
        score = score_headlines(news["headline"])
        nsym = news["symbol"].astype(str).to_numpy(dtype=object)
        order = np.lexsort((ts, avail, nsym))
        nsym, avail, score = nsym[order], avail[order], score[order]
        osym = orders["symbol"].astype(str).to_numpy(dtype=object)
        w = round(window_hours * _NS_PER_H)
        for s in np.unique(osym):
            lo_s, hi_s = np.searchsorted(nsym, s, "left"), np.searchsorted(nsym, s, "right")
            if lo_s == hi_s:
                continue
            a, c = avail[lo_s:hi_s], score[lo_s:hi_s]
            rows = np.flatnonzero(osym == s)
            dd = d[rows]
            hi = np.searchsorted(a, dd, "right")  # headlines known at d: available_at <= d
            lo = np.searchsorted(a, dd - w, "right")  # ... and not before the window
            cum = {k: np.concatenate([[0.0], np.cumsum(v)]) for k, v in
                   (("pos", c >= NEUTRAL_BAND), ("neg", c <= -NEUTRAL_BAND), ("sum", c))}
            cnt[rows] = hi - lo
            pos[rows] = cum["pos"][hi] - cum["pos"][lo]
            neg[rows] = cum["neg"][hi] - cum["neg"][lo]
            ssum[rows] = cum["sum"][hi] - cum["sum"][lo]
            seen = hi > 0
            j = np.maximum(hi - 1, 0)
            since[rows] = np.where(seen, (dd - a[j]) / _NS_PER_H, np.nan)
            last[rows] = np.where(seen, c[j], np.nan)
            know[rows] = np.where(seen, a[j], NAT)
    out = pd.DataFrame({"order_id": orders["order_id"].to_numpy()})
    for name, v in zip(names, (since, last, cnt, pos, neg, ssum), strict=True):
        out[name] = v
    out["news_knowledge_ts"] = _utc(know).array
    return out


# =========================================================================== the true effect
def _ramp_integral(x: np.ndarray, t0: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``F(x) = integral of P`` up to ``x``, ``P(t) = clip((t - t0) / h, 0, 1)`` (in ns)."""
    u = np.clip(x - t0, 0, None).astype(np.float64)
    return np.where(u <= h, u * u / (2 * h), h / 2 + (u - h))


def news_effect(orders: pd.DataFrame, news: pd.DataFrame) -> pd.DataFrame:
    """The true news effect on each order's working window ``[decision_ts, end_ts]``.

    Parameters
    ----------
    orders : pandas.DataFrame
        ``order_id, symbol, side, decision_ts, end_ts``.
    news : pandas.DataFrame
        A feed with its truth (:func:`news_feed`): ``ts, symbol, vol_mult, spread_mult,
        impact_mult, effect_hours`` and optionally ``drift_bps``.

    Returns
    -------
    pandas.DataFrame
        One row per order, in input order: ``order_id, news_overlap`` (an event's effect window
        ``[ts, ts + effect_hours]`` overlaps the order's), ``news_events`` (how many),
        ``news_vol_mult, news_spread_mult, news_impact_mult`` (effective multipliers) and
        ``news_drift_bps`` (the cost of the drift to the order, signed by its side).

    Notes
    -----
    The effect is the market's, so it runs on ``ts`` (not ``available_at``). For event ``k``
    with multiplier ``m_k`` and overlap share ``f_k`` = |order window ∩ effect window| / order
    duration (for an order of zero duration, 1 when its instant lies in the effect window), the
    order's multiplier is ``prod_k (1 + (m_k - 1) f_k)``. The mid drifts by ``drift_bps_k``
    linearly over the effect window, ``D_k(t) = drift_bps_k * clip((t - ts_k) / H_k, 0, 1)``;
    an order working uniformly over ``[d, e]`` pays ``side * sum_k (mean_[d,e] D_k - D_k(d))``
    (the drift before its decision is already in its arrival mid).
    """
    n = len(orders)
    out = pd.DataFrame({"order_id": orders["order_id"].to_numpy(),
                        "news_overlap": np.zeros(n, bool), "news_events": np.zeros(n, np.int64),
                        "news_vol_mult": np.ones(n), "news_spread_mult": np.ones(n),
                        "news_impact_mult": np.ones(n), "news_drift_bps": np.zeros(n)})
    if not n or not len(news):
        return out
    o = pd.DataFrame({"i": np.arange(n), "symbol": orders["symbol"].astype(str).to_numpy(),
                      "d": _ns(orders["decision_ts"]), "e": _ns(orders["end_ts"]),
                      "side": orders["side"].to_numpy(np.float64)})
    drift = news["drift_bps"].to_numpy(np.float64) if "drift_bps" in news.columns \
        else np.zeros(len(news))
    ev = pd.DataFrame({"symbol": news["symbol"].astype(str).to_numpy(), "t0": _ns(news["ts"]),
                       "h": np.maximum(np.round(news["effect_hours"].to_numpy(np.float64)
                                                * _NS_PER_H), 1).astype(np.int64),
                       "vm": news["vol_mult"].to_numpy(np.float64),
                       "sm": news["spread_mult"].to_numpy(np.float64),
                       "im": news["impact_mult"].to_numpy(np.float64), "drift": drift})
    p = o.merge(ev, on="symbol")
    t1 = p["t0"] + p["h"]
    p = p[(p["t0"] <= p["e"]) & (t1 >= p["d"])]
    if p.empty:
        return out
    d, e, t0, h = (p[c].to_numpy(np.int64) for c in ("d", "e", "t0", "h"))
    dur = (e - d).astype(np.float64)
    ov = (np.minimum(e, t0 + h) - np.maximum(d, t0)).astype(np.float64)
    f = np.where(dur > 0, np.clip(ov, 0, None) / np.where(dur > 0, dur, 1.0), 1.0)
    hit = f > 0
    hf = h.astype(np.float64)
    ramp_d = np.clip((d - t0) / hf, 0, 1)
    mean_ramp = np.where(dur > 0, (_ramp_integral(e, t0, hf) - _ramp_integral(d, t0, hf))
                         / np.where(dur > 0, dur, 1.0), ramp_d)
    g = pd.DataFrame({"i": p["i"].to_numpy(), "hit": hit,
                      "lv": np.log1p((p["vm"].to_numpy() - 1) * f),
                      "ls": np.log1p((p["sm"].to_numpy() - 1) * f),
                      "li": np.log1p((p["im"].to_numpy() - 1) * f),
                      "dr": p["side"].to_numpy() * p["drift"].to_numpy() * (mean_ramp - ramp_d)})
    agg = g.groupby("i").sum()
    i = agg.index.to_numpy()
    out.loc[i, "news_events"] = agg["hit"].to_numpy(np.int64)
    out.loc[i, "news_overlap"] = agg["hit"].to_numpy() > 0
    out.loc[i, "news_vol_mult"] = np.exp(agg["lv"].to_numpy())
    out.loc[i, "news_spread_mult"] = np.exp(agg["ls"].to_numpy())
    out.loc[i, "news_impact_mult"] = np.exp(agg["li"].to_numpy())
    out.loc[i, "news_drift_bps"] = agg["dr"].to_numpy()
    return out


def desk_cost_parts(history) -> pd.DataFrame:
    """A desk history's cost of each filled order in the parts :func:`apply_news_effect` scales.

    ``history`` is a :class:`models.desk_history.DeskHistory` (synthetic: its outcomes carry
    ``truth_bps``). Parts, in bps, as :func:`models.desk_history.calibration_frame` nets them:
    ``spread_bps`` = half the arrival spread times (taker share - maker share), ``fees_bps``,
    ``impact_bps`` = the true expected cost less those two, ``noise_bps`` = the realized
    shortfall less the true expected cost (the market's move). Also ``order_id, symbol, side,
    decision_ts, end_ts``. Orders that filled nothing are left out.
    """
    po = history.parent_orders.set_index(history.parent_orders["order_id"].astype(str))
    out = history.outcomes.set_index(history.outcomes["order_id"].astype(str))
    po = po.loc[out.index]
    fills = history.child_fills
    taker = fills["qty"].where(fills["liquidity"] == "taker", 0.0)
    taker_qty = taker.groupby(fills["order_id"].astype(str)).sum() \
        .reindex(out.index, fill_value=0.0).to_numpy()
    filled = out["filled_qty"].to_numpy(np.float64)
    ok = filled > 0
    safe = np.where(ok, filled, 1.0)
    spread = 0.5 * po["arrival_spread_bps"].to_numpy() * (2 * taker_qty / safe - 1)
    fees = out["fees"].to_numpy() / (out["arrival_mid"].to_numpy() * safe) * 1e4
    truth = out["truth_bps"].to_numpy(np.float64)
    frame = pd.DataFrame({
        "order_id": out.index.to_numpy(), "symbol": po["symbol"].astype(str).to_numpy(),
        "side": po["side"].to_numpy(), "decision_ts": po["decision_ts"].to_numpy(),
        "end_ts": po["end_ts"].to_numpy(), "spread_bps": spread, "fees_bps": fees,
        "impact_bps": truth - spread - fees,
        "noise_bps": out["shortfall_bps"].to_numpy(np.float64) - truth})
    keep = ok & np.isfinite(truth)
    return frame[keep].reset_index(drop=True)


def apply_news_effect(parts: pd.DataFrame, effect: pd.DataFrame) -> pd.DataFrame:
    """Each order's cost with the true news effect laid over it.

    Parameters
    ----------
    parts : pandas.DataFrame
        ``order_id, spread_bps, impact_bps, noise_bps`` and optionally ``fees_bps``
        (:func:`desk_cost_parts`).
    effect : pandas.DataFrame
        :func:`news_effect` of the same orders (joined on ``order_id``).

    Returns
    -------
    pandas.DataFrame
        ``parts`` with the effect columns and ``truth_news_bps`` (the true expected cost with the
        news) and ``cost_news_bps`` (the realized cost with the news).

    Notes
    -----
    The rule: the spread part scales with the spread multiplier, the impact part with the
    impact multiplier, the market's move with the volatility multiplier, the fees not at all,
    and the drift the news causes while the order works is added::

        truth_news = fees + spread * spread_mult + impact * impact_mult + drift
        cost_news  = truth_news + noise * vol_mult

    An order that overlaps no event keeps its costs exactly. The synthetic market itself is not
    changed: this is an overlay on the desk's outcomes.
    """
    e = effect.set_index(effect["order_id"].astype(str))
    eff = e.loc[parts["order_id"].astype(str)].reset_index(drop=True)
    out = parts.reset_index(drop=True).copy()
    for c in ("news_overlap", "news_events", "news_vol_mult", "news_spread_mult",
              "news_impact_mult", "news_drift_bps"):
        out[c] = eff[c].to_numpy()
    fees = out["fees_bps"].to_numpy() if "fees_bps" in out.columns else 0.0
    out["truth_news_bps"] = (fees + out["spread_bps"] * out["news_spread_mult"]
                             + out["impact_bps"] * out["news_impact_mult"]
                             + out["news_drift_bps"])
    out["cost_news_bps"] = out["truth_news_bps"] + out["noise_bps"] * out["news_vol_mult"]
    return out
