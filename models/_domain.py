"""Honest out of domain (issue 13 item 5): why a row is outside, how much wider its band, and
when the physics law prices it instead of the trees.

Pure functions behind :class:`models.cost_bundle.CostModelBundle`; every rule is fitted on
training data (conformal scores of out-of-sample quantile predictions), none is a hand-picked
constant:

* :func:`outside_matrix`, :func:`domain_reasons`: which features of a row are outside the
  training domain (below the 0.5 % or above the 99.5 % training quantile, or missing where
  training never was), and a sentence per row saying how.
* :func:`calibrate_ood_margin`: the conformal margin of rows that were *at the edge of the
  domain of the model that predicted them* (pseudo out of domain), in excess of their own
  (regime) margin: what a row outside the domain adds to its band.
* :func:`group_margins`: Mondrian conformal margins, one per value of a group feature (the
  regime), so the band's coverage holds in each regime, not only on average.
* :func:`fit_venue_physics`, :func:`physics_cost_bps`, :func:`fallback_rows`: the square-root
  law fitted on each venue's labels, and the rule that uses it where the trees are not trusted.
* :func:`fit_domain_extras`: all of the above as keyword arguments of the bundle.

Conformal scores are those of :class:`models.cost_models.ConformalInterval`:
``E_i = max(lo_i - y_i, y_i - hi_i) / scale_i`` (in noise-sd units), margin = the
``ceil((n + 1) * coverage)``-th smallest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

__all__ = ["DOMAIN_QUANTILE", "FALLBACK_FEATURES", "FALLBACK_MAX_OUTSIDE", "MIN_GROUP_ROWS",
           "PHYSICS_SIGMA", "calibrate_ood_margin", "conformal_margin", "conformal_scores",
           "domain_reasons", "edge_rows", "fallback_rows", "fit_domain_extras",
           "fit_venue_physics", "group_margins", "margins_of", "outside_matrix",
           "physics_cost_bps", "reasons_of"]

Floats = NDArray[np.float64]
Domain = Mapping[str, tuple[float, float, bool]]

DOMAIN_QUANTILE: Final = 0.005
"""The training domain of a feature is its [0.5 %, 99.5 %] quantile range
(:meth:`models.cost_bundle.CostModelBundle.fit_domain`)."""

MIN_GROUP_ROWS: Final = 100
"""Calibration rows a group (or the edge rows) needs for its own margin; fewer: the pooled one."""

FALLBACK_FEATURES: Final = ("pct_adv", "implied_participation", "qty_over_depth", "sigma_daily",
                            "sigma_seen", "rv_intraday", "timing_risk_bps", "arrival_spread_bps",
                            "spread_cost_bps")
"""Size, volatility and spread: the features the learned mean is not trusted beyond.

Trees are piecewise constant: past the training range of a feature they predict what they
predicted at its edge. Cost grows with size (as its square root), volatility and spread
(linearly), so beyond their range a flat prediction is biased by construction (the BitMEX
crisis replay: -147 bps), while the square-root law extrapolates in the right functional form.
Past the range of the other features (time of day, imbalance, plan shape) the effect on cost is
second order and bounded: the trees stay, with the out-of-domain band."""

FALLBACK_MAX_OUTSIDE: Final = 3
"""More features than this outside the domain: the row comes from a market unlike training
altogether, and the trees are not trusted whatever the features."""

PHYSICS_SIGMA: Final = ("sigma_seen", "sigma_daily")
"""Volatility of the physics law: the first finite, positive one of these columns (the
volatility the market has seen today reacts to a crisis day; the 20-session one lags)."""

_NO_VENUES: Final = ("", "nan", "None", "SYNTH")


# ======================================================================== domain
def _n_rows(frame: pd.DataFrame | Mapping[str, Any]) -> int:
    if isinstance(frame, pd.DataFrame):
        return len(frame)
    return len(next(iter(frame.values()))) if frame else 0


def _floats(v: Any) -> Floats:
    if isinstance(v, np.ndarray) and v.dtype.kind in "fiu":
        return v.astype(np.float64, copy=False)
    return np.asarray(pd.to_numeric(v, errors="coerce"), np.float64)


def outside_matrix(frame: pd.DataFrame | Mapping[str, Any], domain: Domain
                   ) -> tuple[list[str], Floats, NDArray[np.bool_]]:
    """``(names, values, out)``: the domain features present in ``frame`` (with finite
    bounds), their values ``(n, k)`` and whether each is outside: below the low or above the
    high bound, or missing where training never was."""
    names = [c for c, (lo, hi, _) in domain.items()
             if c in frame and np.isfinite(lo) and np.isfinite(hi)]
    n = _n_rows(frame)
    if not names:
        return names, np.empty((n, 0)), np.zeros((n, 0), bool)
    v = np.column_stack([_floats(frame[c]) for c in names])
    lo, hi, nan_seen = (np.array([domain[c][k] for c in names]) for k in range(3))
    with np.errstate(invalid="ignore"):
        out = (v < lo) | (v > hi) | (~np.isfinite(v) & ~nan_seen.astype(bool))
    return names, v, out


def _pct(q: float) -> str:
    return f"{100 * q:g}%"


def domain_reasons(frame: pd.DataFrame | Mapping[str, Any], domain: Domain, *,
                   quantile: float = DOMAIN_QUANTILE) -> list[str]:
    """Per row, why it is outside the training domain ('' inside), one clause per feature
    outside, in the domain's order, joined by ``"; "``.

    Examples
    --------
    >>> dom = {"pct_adv": (1e-4, 0.0124, False), "sigma_seen": (0.01, 0.04, False)}
    >>> domain_reasons(pd.DataFrame({"pct_adv": [0.031, 0.001],
    ...                              "sigma_seen": [0.02, np.nan]}), dom)
    ['pct_adv=0.031 > 0.0124 (training 99.5%)', 'sigma_seen missing (never missing in training)']
    """
    names, v, out = outside_matrix(frame, domain)
    return reasons_of(names, v, out, domain, quantile=quantile)


def reasons_of(names: Sequence[str], v: Floats, out: NDArray[np.bool_], domain: Domain, *,
               quantile: float = DOMAIN_QUANTILE) -> list[str]:
    """:func:`domain_reasons` from :func:`outside_matrix`'s ``(names, values, out)`` (a loop
    over the rows outside only: rows inside cost nothing)."""
    reasons = [""] * len(out)
    rows = np.flatnonzero(out.any(axis=1)) if out.size else np.empty(0, np.intp)
    for i in rows:
        parts = []
        for j in np.flatnonzero(out[i]):
            c, x = names[j], v[i, j]
            lo, hi, _ = domain[c]
            if np.isnan(x):
                parts.append(f"{c} missing (never missing in training)")
            elif x > hi:
                parts.append(f"{c}={x:.4g} > {hi:.4g} (training {_pct(1 - quantile)})")
            else:
                parts.append(f"{c}={x:.4g} < {lo:.4g} (training {_pct(quantile)})")
        reasons[i] = "; ".join(parts)
    return reasons


# ===================================================================== conformal
def conformal_scores(q: ArrayLike, y: ArrayLike, scale: ArrayLike) -> Floats:
    """CQR scores ``max(q[:, 0] - y, y - q[:, -1]) / scale`` (NaN where a row was not
    predicted); ``q`` in bps, as :meth:`models.cost_models.ConformalInterval.fit` takes it."""
    qa = np.asarray(q, np.float64)
    ya, sc = np.asarray(y, np.float64), np.asarray(scale, np.float64)
    return np.maximum(qa[:, 0] - ya, ya - qa[:, -1]) / sc


def conformal_margin(scores: ArrayLike, coverage: float) -> float:
    """The ``ceil((n + 1) * coverage)``-th smallest finite score (inf when there are too few):
    :meth:`models.cost_models.ConformalInterval.fit`'s margin."""
    s = np.sort(np.asarray(scores, np.float64))
    s = s[np.isfinite(s)]
    k = int(np.ceil((len(s) + 1) * coverage))
    return float(s[k - 1]) if 0 < k <= len(s) else float("inf")


def _tail_depth(X: pd.DataFrame, folds: NDArray[np.intp]) -> Floats:
    """Per row with ``folds >= 0``: the tail probability of its most extreme feature among the
    rows of the other folds, ``min_j min(u_j, 1 - u_j)`` with ``u_j`` the mid-rank
    ``(#less + #equal / 2) / #finite`` of its value. A missing value where the other folds were
    never missing is 0 (outside), else 0.5. NaN for rows with ``folds < 0``."""
    n = len(X)
    depth = np.full(n, np.nan)
    ks = [k for k in np.unique(folds) if k >= 0]
    if not ks:
        return depth
    depth[folds >= 0] = 0.5
    for c in X.columns:
        v = _floats(X[c])
        fin = np.isfinite(v)
        all_sorted = np.sort(v[fin])
        for k in ks:
            rows = folds == k
            vk = v[rows]
            own = np.sort(vk[np.isfinite(vk)])
            n_ref = len(all_sorted) - len(own)
            nan_ref = int((~fin).sum() - (~np.isfinite(vk)).sum())
            lt = (np.searchsorted(all_sorted, vk, "left") - np.searchsorted(own, vk, "left"))
            le = (np.searchsorted(all_sorted, vk, "right") - np.searchsorted(own, vk, "right"))
            with np.errstate(invalid="ignore", divide="ignore"):
                u = (lt + 0.5 * (le - lt)) / n_ref
            e = np.minimum(u, 1 - u) if n_ref > 0 else np.full(len(vk), 0.5)
            e = np.where(np.isfinite(vk), e, 0.5 if nan_ref > 0 else 0.0)
            depth[rows] = np.minimum(depth[rows], e)
    return depth


def edge_rows(X: pd.DataFrame, folds: ArrayLike, tail: float = DOMAIN_QUANTILE
              ) -> NDArray[np.bool_]:
    """Rows (with ``folds >= 0``) outside the ``[tail, 1 - tail]`` range of some feature among
    the rows of the *other* folds (or missing where those never were): out of the domain of
    the model that predicted them, when fold ``k``'s predictions came from a model trained on
    the other folds (cross-fitted: the row's own value never sets its range)."""
    f = np.asarray(folds, np.intp)
    d = _tail_depth(X, f)
    with np.errstate(invalid="ignore"):
        return (f >= 0) & (d < tail)


def calibrate_ood_margin(X: pd.DataFrame, q: ArrayLike, y: ArrayLike, scale: ArrayLike, *,
                         coverage: float, folds: ArrayLike | None = None,
                         base_margin: float | ArrayLike | None = None,
                         min_rows: int = MIN_GROUP_ROWS,
                         tails: Sequence[float] = (DOMAIN_QUANTILE, 0.01, 0.025, 0.05)
                         ) -> float:
    """The conformal margin of rows outside the training domain, fitted on training rows.

    Parameters
    ----------
    X : pandas.DataFrame
        The model's features of the training rows.
    q : array_like, shape (n, k)
        Out-of-sample quantile predictions in bps (first = lo, last = hi; NaN where a row was
        not predicted): purged out-of-fold, or the split-conformal calibration rows.
    y, scale : array_like, shape (n,)
        Labels (bps) and each row's noise sd (bps, > 0).
    coverage : float
        Target coverage of the band.
    folds : array_like of int, shape (n,), optional
        Fold of each predicted row (-1: not predicted, only a reference): the rows of fold
        ``k`` were predicted by a model trained on the other rows. Default: rows with a finite
        ``q`` are fold 0, the others -1 (split conformal).
    base_margin : float or array_like of shape (n,), optional
        Each row's in-domain margin (its regime's, :func:`group_margins`); default the pooled
        margin of every row.
    min_rows : int, default=MIN_GROUP_ROWS
        Edge rows needed for their own margin.
    tails : sequence of float
        Tail probabilities tried in turn for the edge (the first one with ``min_rows`` edge
        rows): the domain's own 0.5 % first.

    Returns
    -------
    float
        ``pooled + max(0, delta)``, ``delta`` the conformal ``coverage`` quantile of
        ``score - base_margin`` over the edge rows: the band of a row outside the domain is its
        in-domain margin plus ``delta`` (:class:`models.cost_bundle.CostModelBundle` adds
        ``ood_margin - margin``). Without groups this is ``max(margin of the edge rows,
        pooled margin)``. The pooled margin (no widening) when no tail gives ``min_rows`` edge
        rows.

    Notes
    -----
    Pseudo out of domain: a row is *edge* when one of its features lies outside the
    ``[tail, 1 - tail]`` range of the rows the model that predicted it trained on (or is missing
    where those never were), :func:`edge_rows`. These rows stand, inside training, for what an
    order outside the deployed domain is to the deployed model; their scores measure how wrong
    the band is there, so the quantile of their excess over their in-domain margin is the
    band's increment out of domain (split conformal on that subpopulation: coverage holds if
    future out-of-domain orders are like the edge rows; further out than training ever reached
    it is a floor, not a guarantee). The excess is taken over each row's own (regime) margin
    because edge rows are not a random draw of regimes (a crisis block is at the edge of the
    calmer folds' ranges): the regime's width is already in its margin, and counting it again
    would widen every out-of-domain row by the crisis's noise.
    """
    qa = np.asarray(q, np.float64)
    scores = conformal_scores(qa, y, scale)
    pooled = conformal_margin(scores, coverage)
    base = np.broadcast_to(np.asarray(pooled if base_margin is None else base_margin,
                                      np.float64), scores.shape)
    f = (np.where(np.isfinite(qa).all(axis=1), 0, -1) if folds is None
         else np.asarray(folds, np.intp))
    depth = _tail_depth(X, f)
    ok = np.isfinite(scores) & (f >= 0)
    for t in tails:
        with np.errstate(invalid="ignore"):
            edge = ok & (depth < t)
        if edge.sum() >= min_rows:
            return pooled + max(0.0, conformal_margin(scores[edge] - base[edge], coverage))
    return pooled


def group_margins(q: ArrayLike, y: ArrayLike, scale: ArrayLike, groups: ArrayLike, *,
                  coverage: float, min_rows: int = MIN_GROUP_ROWS) -> dict[float, float]:
    """Mondrian conformal margins: ``{group value: margin}`` from the scores of each group's
    rows (Vovk et al. 2005; coverage then holds within each group, e.g. each regime).

    Groups (finite values of ``groups``) with fewer than ``min_rows`` finite scores are left
    out: their rows, like those of an unknown or missing group, get the pooled margin.
    """
    s = conformal_scores(q, y, scale)
    g = _floats(groups)
    out: dict[float, float] = {}
    for k in np.unique(g[np.isfinite(g)]):
        sk = s[(g == k) & np.isfinite(s)]
        if len(sk) >= min_rows:
            out[float(k)] = conformal_margin(sk, coverage)
    return out


def margins_of(frame: pd.DataFrame | Mapping[str, Any], margin: float,
               group_feature: str | None, margins: Mapping[float, float]) -> Floats:
    """Per row, the margin of its group (pooled ``margin`` for unknown or missing groups)."""
    n = _n_rows(frame)
    m = np.full(n, margin)
    if group_feature is None or not margins or group_feature not in frame:
        return m
    g = _floats(frame[group_feature])
    for k, v in margins.items():
        m[g == k] = v
    return m


# ======================================================================== physics
def _physics_inputs(frame: pd.DataFrame | Mapping[str, Any], sigma: Sequence[str]
                    ) -> tuple[Floats, Floats, Floats]:
    """``(size = qty / adv, sigma, half spread)`` of each row (NaN where unknown)."""
    n = _n_rows(frame)
    if "pct_adv" in frame:
        size = _floats(frame["pct_adv"])
    elif "qty" in frame and "adv" in frame:
        with np.errstate(divide="ignore", invalid="ignore"):
            size = _floats(frame["qty"]) / _floats(frame["adv"])
    else:
        size = np.full(n, np.nan)
    sig = np.full(n, np.nan)
    for c in sigma:
        if c in frame:
            v = _floats(frame[c])
            take = ~(sig > 0) & np.isfinite(v) & (v > 0)
            sig = np.where(take, v, sig)
    half = (0.5 * _floats(frame["arrival_spread_bps"]) if "arrival_spread_bps" in frame
            else np.zeros(n))
    return size, sig, half


def physics_cost_bps(cal: Mapping[str, Any], frame: pd.DataFrame | Mapping[str, Any]) -> Floats:
    """The venue's square-root law: ``s/2 + y * sigma * (qty/adv)^exponent * 1e4`` bps
    (:class:`models.impact.SquareRootImpact` plus the half spread); NaN where an input is."""
    size, sig, half = _physics_inputs(frame, cal.get("sigma", PHYSICS_SIGMA))
    with np.errstate(invalid="ignore"):
        return half + cal["y"] * sig * np.abs(size) ** cal.get("exponent", 0.5) * 1e4


def fit_venue_physics(frame: pd.DataFrame, y: ArrayLike, scale: ArrayLike, venues: ArrayLike,
                      *, coverage: float, y_mean: ArrayLike | None = None, min_rows: int = 50,
                      exclude: Sequence[str] = _NO_VENUES) -> dict[str, dict[str, Any]]:
    """The square-root law fitted on each venue's labelled rows, as plain numbers.

    ``y_mean - s/2 = Y sigma sqrt(qty/adv) 1e4 + noise``: ``Y`` by weighted least squares with
    the inverse noise variance ``1 / scale^2`` (the mean model's weights), kept in ``[0, 10]``
    (:class:`models.impact.SquareRootImpact`'s bounds); ``y_mean`` is the mean model's label
    (a real book's market-adjusted cost, ``models.cost_training.MEAN_LABEL``), default ``y``.
    ``band_sd``: the conformal ``coverage`` quantile of ``|y - law| / scale`` on those rows
    (``y`` the realized cost), the law's own band in sd units. Venues with fewer than
    ``min_rows`` usable rows, and ``exclude`` (no venue, the synthetic desk), get none.

    Returns
    -------
    dict
        ``{venue: {"law": "sqrt", "y", "exponent", "sigma", "n", "rmse_bps", "band_sd"}}``.
    """
    yv, sc = np.asarray(y, np.float64), np.asarray(scale, np.float64)
    ym = yv if y_mean is None else np.asarray(y_mean, np.float64)
    ym = np.where(np.isfinite(ym), ym, yv)
    ven = pd.Series(np.asarray(venues, dtype=object)).astype(str).to_numpy()
    size, sig, half = _physics_inputs(frame, PHYSICS_SIGMA)
    x = sig * np.sqrt(np.abs(size)) * 1e4
    usable = np.isfinite(x) & np.isfinite(yv) & np.isfinite(half) & np.isfinite(sc) & (sc > 0)
    out: dict[str, dict[str, Any]] = {}
    for v in sorted(set(ven[usable]) - set(exclude)):
        r = usable & (ven == v)
        if r.sum() < min_rows:
            continue
        w = 1.0 / sc[r] ** 2
        den = float(np.sum(w * x[r] ** 2))
        coef = float(np.clip(np.sum(w * x[r] * (ym[r] - half[r])) / den, 0.0, 10.0)) \
            if den > 0 else 0.0
        law = half[r] + coef * x[r]
        out[v] = {"law": "sqrt", "y": coef, "exponent": 0.5, "sigma": list(PHYSICS_SIGMA),
                  "n": int(r.sum()), "rmse_bps": float(np.sqrt(np.mean((ym[r] - law) ** 2))),
                  "band_sd": conformal_margin(np.abs(yv[r] - law) / sc[r], coverage)}
    return out


def venue_names(venue: ArrayLike) -> NDArray[np.str_]:
    """Venue tags as strings; None, NaN and pd.NA become '' (no venue)."""
    v = pd.Series(np.asarray(venue, dtype=object))
    return v.where(v.notna(), "").astype(str).to_numpy()


def fallback_rows(names: Sequence[str], out: NDArray[np.bool_], *,
                  features: Sequence[str] = FALLBACK_FEATURES,
                  max_outside: int = FALLBACK_MAX_OUTSIDE) -> NDArray[np.bool_]:
    """Rows the learned mean is not trusted on: a size, volatility or spread feature
    (``features``, :data:`FALLBACK_FEATURES` for why) outside the domain, or more than
    ``max_outside`` features outside. ``names, out`` from :func:`outside_matrix`."""
    if out.size == 0:
        return np.zeros(len(out), bool)
    key = np.array([c in set(features) for c in names])
    return out[:, key].any(axis=1) | (out.sum(axis=1) > max_outside)


# ========================================================================== fit
def fit_domain_extras(X: pd.DataFrame, y: ArrayLike, scale: ArrayLike, q: ArrayLike, *,
                      coverage: float, folds: ArrayLike | None = None,
                      group_feature: str | None = None,
                      venues: ArrayLike | None = None,
                      train_frame: pd.DataFrame | None = None,
                      y_mean: ArrayLike | None = None,
                      groups: ArrayLike | None = None,
                      min_rows: int = MIN_GROUP_ROWS) -> dict[str, Any]:
    """The out-of-domain pieces of a :class:`models.cost_bundle.CostModelBundle`, as its
    keyword arguments.

    Parameters
    ----------
    X : pandas.DataFrame
        Training features (the bundle's columns).
    y, scale : array_like, shape (n,)
        Labels (bps) and noise sd (bps) of the rows of ``X``.
    q : array_like, shape (n, 3)
        Out-of-sample p10/p50/p90 in bps (NaN where a row was not predicted).
    coverage : float
        The band's target coverage.
    folds : array_like of int, optional
        See :func:`calibrate_ood_margin`.
    group_feature : str, optional
        Feature of the Mondrian margins (e.g. ``"regime_hmm_code"``); None: no groups. A column
        of ``X``, or of none of the model's inputs when ``groups`` holds its values.
    groups : array_like, shape (n,), optional
        The rows' values of ``group_feature`` when it is not a column of ``X``.
    venues : array_like of str, optional
        Venue of each row (None / '' / ``"SYNTH"``: none): per-venue physics fallbacks,
        fitted on every row of the venue (labels, not out-of-sample predictions).
    train_frame : pandas.DataFrame, optional
        Rows with the physics inputs (``pct_adv`` or ``qty``/``adv``, ``sigma_seen`` /
        ``sigma_daily``, ``arrival_spread_bps``) when ``X`` lacks some; default ``X``.
    y_mean : array_like, shape (n,), optional
        The mean model's label where it differs from ``y`` (:func:`fit_venue_physics`).
    min_rows : int, default=MIN_GROUP_ROWS

    Returns
    -------
    dict
        ``ood_margin``, ``group_feature``, ``group_margins``, ``venue_calibrations``.
    """
    qa = np.asarray(q, np.float64)
    pooled = conformal_margin(conformal_scores(qa, y, scale), coverage)
    out: dict[str, Any] = {"group_feature": None, "group_margins": {},
                           "venue_calibrations": {}}
    gx = X
    if group_feature is not None and groups is not None:
        gx = pd.DataFrame({group_feature: _floats(groups)}, index=X.index)
    if group_feature is not None and group_feature in gx.columns:
        out["group_feature"] = group_feature
        out["group_margins"] = group_margins(qa, y, scale, gx[group_feature],
                                             coverage=coverage, min_rows=min_rows)
    base = margins_of(gx, pooled, out["group_feature"], out["group_margins"])
    out["ood_margin"] = calibrate_ood_margin(X, qa, y, scale, coverage=coverage, folds=folds,
                                             base_margin=base, min_rows=min_rows)
    if venues is not None:
        out["venue_calibrations"] = fit_venue_physics(
            X if train_frame is None else train_frame, y, scale, venues, coverage=coverage,
            y_mean=y_mean)
    return out
