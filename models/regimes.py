r"""Market regimes, point in time: a Gaussian HMM fitted on the past, read by its forward filter.

Three steps (REFERENCES.md §7.3; Hamilton 1989, Econometrica 57:357-384):

1. :func:`regime_inputs` turns daily bars (and, when given, quotes) into per-session features,
   each known at that session's close (``available_at``): the session's log range, volume,
   median quoted spread and 5-minute realized volatility, each as a log ratio to the symbol's
   median over earlier sessions; ``level="market"`` takes their cross-sectional median.
2. :func:`fit_regime_hmm` fits a Gaussian HMM (hmmlearn, seeded restarts) on past sessions only
   and relabels its states by the level of a volatility feature (calm < volatile < crisis), so
   that labels mean the same thing after every refit.
3. :func:`filtered_probabilities` is the **forward filter** (our own pass, in log space)::

       xi_{t|t}  ∝  (A^T xi_{t-1|t-1}) ⊙ eta_t,    eta_{t,j} = N(y_t; mu_j, Sigma_j)

   It uses ``y_1..y_t`` only. hmmlearn's ``predict_proba`` is the forward-backward *smoother*
   (Kim 1994): it reads ``y_{t+1..T}`` and is not a point-in-time feature; the two agree only on
   the last row. :func:`walk_forward_regimes` refits on an expanding window of sessions strictly
   before each prediction session and filters up to it. A refit picks its number of states by
   BIC; regimes its history has not shown yet are "novelty" states above the fitted ones.

:func:`score_regimes` compares labels or probabilities with a true regime path (the synthetic
market's ``truth.regime_path``): accuracy, balanced accuracy, confusion, detection delay per
switch, false alarms in calm.

Why one module of ~600 lines: the inputs, the fit (with its relabelling and novelty states),
the filter and the walk-forward are one model whose parts are only meaningful together (the
filter reads the standardization the fit stores; the walk-forward's point-in-time guarantee
depends on both); the scoring lives in :mod:`models._regime_score` (re-exported here). The
features ``regime_p_<label>`` (:mod:`models._feature_regime`) are the walk-forward's
``p_next_<label>``: the filter through the previous session, propagated one session.

Examples
--------
The worked example of REFERENCES.md §7.3 (hand-set two-state model, variances 1 and 4):

>>> import numpy as np
>>> m = RegimeModel(labels=("calm", "stress"), features=("y",), startprob=np.array([.5, .5]),
...                 transmat=np.array([[.9, .1], [.1, .9]]), means=np.zeros((2, 1)),
...                 covars=np.array([[[1.0]], [[4.0]]]))
>>> p = filtered_probabilities(m, np.array([[0.1], [-0.2], [3.0], [2.5], [0.0]]))
>>> np.round(p[:, 1], 4).tolist()
[0.3342, 0.2276, 0.8517, 0.949, 0.7532]
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.linalg import solve_triangular

from models._feature_registry import NS_DAY
from models._feature_time import _ns, sessions_around
from models._regime_score import DEFAULT_LABELS, RegimeScore, score_regimes

__all__ = [
    "DEFAULT_LABELS",
    "RegimeModel",
    "RegimeScore",
    "filtered_probabilities",
    "fit_regime_hmm",
    "predict_next",
    "regime_inputs",
    "regimes_table",
    "score_regimes",
    "walk_forward_regimes",
]


_LOG_2PI = float(np.log(2 * np.pi))
_FULL_SESSION_NS = 23_400 * 10**9


# =========================================================================== the model
@dataclass(frozen=True, eq=False)
class RegimeModel:
    """A fitted Gaussian HMM, states ordered calm -> crisis; parameters in standardized units.

    ``means`` (K, D) and ``covars`` (K, D, D, full) describe ``(x - center) / scale``; a row of
    ``transmat`` is ``A[i, j] = P(s_t = j | s_{t-1} = i)``. ``fitted_through`` is the last
    training date (``None`` when hand-set) and ``n_train`` the number of training rows.
    """

    labels: tuple[str, ...]
    features: tuple[str, ...]
    startprob: np.ndarray
    transmat: np.ndarray
    means: np.ndarray
    covars: np.ndarray
    center: np.ndarray | None = None
    scale: np.ndarray | None = None
    log_likelihood: float = float("nan")
    n_train: int = 0
    fitted_through: pd.Timestamp | None = None
    seed: int | None = field(default=None)

    @property
    def n_states(self) -> int:
        """Number of hidden states."""
        return len(self.startprob)

    def permuted(self, order: Sequence[int]) -> RegimeModel:
        """The same model with its states taken in ``order`` (labels stay in place)."""
        o = np.asarray(order, dtype=np.int64)
        return replace(self, startprob=self.startprob[o], transmat=self.transmat[np.ix_(o, o)],
                       means=self.means[o], covars=self.covars[o])


def relabel(model: RegimeModel, *, by: int | str | None = None,
            key: Literal["mean", "variance"] = "mean") -> RegimeModel:
    """Reorder states by the ``key`` (state mean or variance) of feature ``by``, ascending.

    ``by=None`` takes the average over all features (standardized units): with features that
    all rise with stress (log volatility, range, spread, volume ratios) the mean orders calm <
    volatile < crisis; with return-like features (mean 0) use ``key="variance"``. Ties keep
    their order (stable sort), so a model whose states are a permutation of another's relabels
    to the same model.
    """
    stat = model.means if key == "mean" else np.diagonal(model.covars, axis1=1, axis2=2)
    if by is None:
        vals = stat.mean(axis=1)
    else:
        vals = stat[:, model.features.index(by) if isinstance(by, str) else int(by)]
    entry = model.transmat - np.diag(np.diag(model.transmat))
    reachable = (model.startprob > 0) | (entry.sum(axis=0) > 0)
    return model.permuted(np.argsort(np.where(reachable, vals, np.inf), kind="stable"))


def _params(model: Any) -> tuple[np.ndarray, ...]:
    if isinstance(model, RegimeModel):
        return model.startprob, model.transmat, model.means, model.covars
    try:  # an hmmlearn model: covars_ is full (K, D, D) for every covariance_type
        return (np.asarray(model.startprob_), np.asarray(model.transmat_),
                np.asarray(model.means_), np.asarray(model.covars_))
    except AttributeError as exc:
        raise TypeError(f"`model` must be a RegimeModel or a fitted hmmlearn GaussianHMM, got "
                        f"{type(model).__name__}") from exc


def _matrix(model: Any, X: Any) -> np.ndarray:
    if isinstance(X, pd.DataFrame):
        cols = list(model.features) if isinstance(model, RegimeModel) else list(X.columns)
        missing = [c for c in cols if c not in X.columns]
        if missing:
            raise ValueError(f"`X` lacks the model's features {missing}; it has {list(X.columns)}")
        X = X[cols]
    x = np.asarray(X, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if isinstance(model, RegimeModel) and model.center is not None and model.scale is not None:
        x = (x - model.center) / model.scale
    return x


def _log_emission(x: np.ndarray, means: np.ndarray, covars: np.ndarray) -> np.ndarray:
    """``log N(x_t; mu_k, Sigma_k)`` (T, K); missing entries (NaN) are marginalized out, and a
    row with nothing observed carries no information (0 for every state)."""
    out = np.zeros((len(x), len(means)))
    seen = ~np.isnan(x)
    patterns, inv = np.unique(seen, axis=0, return_inverse=True)
    for p, pat in enumerate(patterns):
        if not pat.any():
            continue
        rows = np.flatnonzero(inv.ravel() == p)
        xo = x[np.ix_(rows, pat)]
        for k in range(len(means)):
            chol = np.linalg.cholesky(covars[k][np.ix_(pat, pat)])
            z = solve_triangular(chol, (xo - means[k, pat]).T, lower=True)
            out[rows, k] = (-0.5 * (z * z).sum(axis=0) - np.log(np.diag(chol)).sum()
                            - 0.5 * pat.sum() * _LOG_2PI)
    return out


def filtered_probabilities(model: Any, X: Any) -> np.ndarray:
    """Point-in-time state probabilities ``P(s_t = j | y_1..y_t)`` (the forward filter).

    Parameters
    ----------
    model : RegimeModel or hmmlearn GaussianHMM
        Its ``startprob``, ``transmat``, ``means`` and (full) ``covars``; a ``RegimeModel``
        standardizes ``X`` with its training ``center`` and ``scale`` first.
    X : array-like of shape (T, D) or DataFrame
        One sequence, oldest first (a DataFrame is read by the model's ``features``). NaN
        entries are marginalized; an all-NaN row only propagates ``A^T xi``.

    Returns
    -------
    ndarray of shape (T, K)
        Row ``t`` depends on ``X[:t + 1]`` only: appending observations never changes it.

    Notes
    -----
    ``xi_{1|1} ∝ pi ⊙ eta_1`` and ``xi_{t|t} ∝ (A^T xi_{t-1|t-1}) ⊙ eta_t``, computed with
    log-sum-exp (Hamilton 1989). Never ``GaussianHMM.predict_proba``: that is the smoother.
    """
    start, trans, means, covars = _params(model)
    x = _matrix(model, X)
    if x.shape[1] != means.shape[1]:
        raise ValueError(f"`X` has {x.shape[1]} features, the model {means.shape[1]}")
    log_e = _log_emission(x, means, covars)
    with np.errstate(divide="ignore"):
        log_a, log_xi = np.log(trans), np.log(start)
    out = np.empty_like(log_e)
    for t in range(len(x)):
        if t:
            log_xi = _logsumexp(log_xi[:, None] + log_a, axis=0)
        log_xi = log_xi + log_e[t]
        log_xi = log_xi - _logsumexp(log_xi, axis=0)
        out[t] = log_xi
    return np.exp(out)


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """``log(sum(exp(a)))`` along ``axis``, shifted by the max (scipy's is 10x slower on K=3)."""
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(a - top), axis=axis)) + np.squeeze(top, axis=axis)


def predict_next(model: Any, filtered: np.ndarray) -> np.ndarray:
    """One step ahead, ``xi_{t+1|t} = A^T xi_{t|t}``: the regime a decision in the *next*
    session can use before any of that session's data is known."""
    return np.asarray(filtered) @ _params(model)[1]


def fit_regime_hmm(X_train: Any, *, seed: int, n_states: int = 3,
                   lengths: Sequence[int] | None = None, labels: Sequence[str] | None = None,
                   order_by: int | str | None = None, order_key: Literal["mean", "variance"] = "mean",
                   covariance_type: Literal["full", "diag"] = "full", n_restarts: int = 4,
                   n_iter: int = 200, tol: float = 1e-4, stickiness: float = 10.0,
                   covar_floor: float = 0.05, min_states: int | None = None,
                   novelty_rate: float = 0.01, min_occupancy: float = 3.0,
                   fitted_through: pd.Timestamp | None = None) -> RegimeModel:
    """Fit a Gaussian HMM by Baum-Welch (hmmlearn) on past data; keep the best of the restarts.

    Parameters
    ----------
    X_train : array-like of shape (T, D) or DataFrame
        Training rows, oldest first (sequences concatenated when ``lengths`` is given). Rows with
        a NaN are dropped (the sequence closes over them).
    seed : int
        Restart ``r`` uses hmmlearn ``random_state`` from ``SeedSequence(seed).spawn``.
    n_states : int, default=3
    lengths : sequence of int, optional
        Lengths of the concatenated sequences (e.g. one per symbol).
    labels : sequence of str, optional
        State names after relabelling; default ``DEFAULT_LABELS`` for 3 states.
    order_by, order_key : default=None, "mean"
        Feature (index or name) and statistic that order the states (see :func:`relabel`).
    covariance_type : {"full", "diag"}, default="full"
    n_restarts, n_iter, tol : default=4, 200, 1e-4
    stickiness : float, default=10.0
        Dirichlet pseudo-counts added to the diagonal of the transition prior (MAP): regimes
        persist for days, and short histories should not flip states on one noisy session.
    covar_floor : float, default=0.05
        Prior variance (standardized units, weight of one observation) added to each state's
        covariance: keeps a state fitted on a handful of sessions from collapsing.
    min_states : int, optional
        When given, fit every state count ``min_states..n_states`` and keep the lowest BIC,
        skipping counts where a state's expected occupancy is under ``min_occupancy`` rows (a
        state for one outlier session). The fitted states take the lowest labels; the others
        are added by :func:`_pad` (novelty states, or unreachable when ``novelty_rate=0``).
    novelty_rate : float, default=0.01
        Per-session probability of entering each state the history did not show.
    min_occupancy : float, default=3.0
    fitted_through : Timestamp, optional
        Recorded on the model: the last date of the training rows.

    Returns
    -------
    RegimeModel
        ``n_states`` states ordered by ``order_key`` of ``order_by``, named by ``labels``;
        parameters in units of the training ``center`` and ``scale``.

    Raises
    ------
    ValueError
        With fewer than ``5 * n_states`` complete training rows, or ``lengths`` that do not
        add up to the rows.
    """
    names = tuple(X_train.columns) if isinstance(X_train, pd.DataFrame) else None
    x = np.asarray(X_train, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    names = names or tuple(f"x{j}" for j in range(x.shape[1]))
    lens = np.asarray(lengths if lengths is not None else [len(x)], dtype=np.int64)
    if lens.sum() != len(x) or (lens < 0).any():
        raise ValueError(f"`lengths` add up to {lens.sum()}, `X_train` has {len(x)} rows")
    ok = ~np.isnan(x).any(axis=1)
    seq = np.repeat(np.arange(len(lens)), lens)
    lens = np.bincount(seq[ok], minlength=len(lens))
    lens, x = lens[lens > 0], x[ok]
    if len(x) < 5 * n_states:
        raise ValueError(f"fit_regime_hmm: {len(x)} complete training rows for "
                         f"`n_states={n_states}`; need at least {5 * n_states} (a longer "
                         "history, a later `min_train`, or fewer states)")
    center, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - center) / scale
    fits = []
    for k in range(min_states or n_states, n_states + 1):
        hmm, ll = _best_hmm(z, lens, k, seed=seed, covariance_type=covariance_type,
                            n_restarts=n_restarts, n_iter=n_iter, tol=tol,
                            stickiness=stickiness, covar_floor=covar_floor)
        if hmm is None:
            continue
        # a state that explains one outlier session (a flash crash) is not a regime
        if min_states is not None and k > min_states and min_occupancy > 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if hmm.predict_proba(z, lengths=lens).sum(axis=0).min() < min_occupancy:
                    continue
        fits.append((-2 * ll + _n_params(k, z.shape[1], covariance_type) * np.log(len(z)),
                     k, hmm, ll))
    if not fits:
        raise ValueError(f"fit_regime_hmm: no restart of {n_restarts} reached a finite "
                         "likelihood; check the features for constant or extreme columns")
    _, k, best, best_ll = min(fits, key=lambda f: f[0])
    labs = tuple(labels) if labels is not None else (
        DEFAULT_LABELS if n_states == 3 else tuple(f"state{j}" for j in range(n_states)))
    model = relabel(RegimeModel(
        labels=labs[:k], features=names, startprob=np.asarray(best.startprob_),
        transmat=np.asarray(best.transmat_), means=np.asarray(best.means_),
        covars=np.asarray(best.covars_), center=center, scale=scale, log_likelihood=best_ll,
        n_train=len(x), fitted_through=fitted_through, seed=seed), by=order_by, key=order_key)
    return _pad(model, labs, novelty_rate)


def _n_params(k: int, d: int, covariance_type: str) -> int:
    cov = k * d * (d + 1) // 2 if covariance_type == "full" else k * d
    return (k - 1) + k * (k - 1) + k * d + cov


def _pad(model: RegimeModel, labels: tuple[str, ...], novelty_rate: float) -> RegimeModel:
    """Append the states a short history did not show, up to ``len(labels)``.

    With ``novelty_rate=0`` they are unreachable (probability 0). Otherwise each is a *novelty*
    state above the fitted ones: the top state's covariance, its mean moved up by the calm-to-top
    gap (at least 2 sds of the top state per feature) once per missing level, entered from
    every fitted state with probability ``novelty_rate`` per session and left towards the top
    state at the top state's exit rate (at least 0.2 per session). A crisis never seen before
    then reads as "crisis" rather than as the highest regime the history held."""
    k, n = model.n_states, len(labels)
    if k == n:
        return model
    m, c, a = model.means, model.covars, model.transmat
    sd = np.sqrt(np.diagonal(c[-1]))
    gap = np.maximum(m[-1] - m[0], 2 * sd)
    trans = np.zeros((n, n))
    trans[:k, :k] = a * (1 - novelty_rate * (n - k))
    trans[:k, k:] = novelty_rate
    stay = min(a[-1, -1], 0.8)  # at most 5 sessions on average: a novelty is not a new calm
    for j in range(k, n):
        trans[j, j], trans[j, k - 1] = stay, 1 - stay
    if novelty_rate == 0:
        trans[k:] = np.eye(n)[k:]
    return replace(model, labels=labels, startprob=np.append(model.startprob, np.zeros(n - k)),
                   transmat=trans, means=np.vstack([m] + [m[-1] + (i + 1) * gap
                                                          for i in range(n - k)]),
                   covars=np.concatenate([c] + [c[-1:]] * (n - k)))


def _best_hmm(z: np.ndarray, lens: np.ndarray, k: int, *, seed: int, covariance_type: str,
              n_restarts: int, n_iter: int, tol: float, stickiness: float,
              covar_floor: float) -> tuple[Any, float]:
    """The best of ``n_restarts`` seeded Baum-Welch fits with ``k`` states (None if none ran)."""
    from hmmlearn.hmm import GaussianHMM
    from threadpoolctl import threadpool_limits

    prior = 1.0 + stickiness * np.eye(k)
    # an inverse-Wishart-like floor: one pseudo-observation of variance `covar_floor` per state
    # (hmmlearn adds a scalar prior to every entry of a full matrix: pass it as a diagonal)
    d = z.shape[1]
    cov_prior = covar_floor * np.eye(d) if covariance_type == "full" else covar_floor
    cov_weight = d + 1 if covariance_type == "full" else 2
    best, best_ll = None, -np.inf
    hmm_log = logging.getLogger("hmmlearn")
    level = hmm_log.level
    hmm_log.setLevel(logging.ERROR)  # "Model is not converging" on flat restarts
    # one thread: BLAS/OpenMP pools cost 10x more than they save on a few hundred rows
    try:
        with threadpool_limits(1):
            for child in np.random.SeedSequence(seed).spawn(n_restarts):
                hmm = GaussianHMM(n_components=k, covariance_type=covariance_type,
                                  n_iter=n_iter, tol=tol, transmat_prior=prior,
                                  covars_prior=cov_prior, covars_weight=cov_weight,
                                  random_state=int(child.generate_state(1)[0]))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        hmm.fit(z, lengths=lens)
                        ll = float(hmm.score(z, lengths=lens))
                    except (ValueError, np.linalg.LinAlgError):  # a state collapsed on few rows
                        continue
                if np.isfinite(ll) and ll > best_ll:
                    best, best_ll = hmm, ll
    finally:
        hmm_log.setLevel(level)
    return best, best_ll


# =========================================================================== inputs
def _session_fraction(dates: pd.Series, calendar: str | None) -> np.ndarray:
    """Length of each session over a full 6.5-hour one (1 where unknown or ``calendar=None``)."""
    if calendar is None or len(dates) == 0:
        return np.ones(len(dates))
    day = pd.DatetimeIndex(dates).as_unit("ns").asi8 // NS_DAY
    ok, op, cl = sessions_around(day, calendar, before=1, after=1).lookup(day)
    return np.where(ok, (cl - op) / _FULL_SESSION_NS, 1.0)


def _quote_features(quotes: pd.DataFrame, tz: str, rv_bucket_min: float) -> pd.DataFrame:
    """Per (symbol, session date): median log spread in bps, 5-min mid realized vol, knowledge.

    Integer keys and one sort (a million quotes in a few hundred milliseconds): the squared log
    changes of each bucket's last mid, summed over the buckets of the (symbol, date)."""
    bid, ask = quotes["bid_px"].to_numpy(np.float64), quotes["ask_px"].to_numpy(np.float64)
    keep = (bid > 0) & (ask > bid)
    bid, ask = bid[keep], ask[keep]
    mid = 0.5 * (bid + ask)
    ts = _ns(quotes["ts"])[keep]
    date = pd.DatetimeIndex(ts.view("M8[ns]")).tz_localize("UTC").tz_convert(tz) \
        .tz_localize(None).normalize().asi8
    sym, names = pd.factorize(quotes["symbol"], sort=True)
    days, day = np.unique(date, return_inverse=True)
    key = sym[keep].astype(np.int64) * len(days) + day.ravel()
    bucket = ts // int(rv_bucket_min * 60e9)
    order = np.lexsort((np.arange(len(key)), bucket, key))
    k, b, lm = key[order], bucket[order], np.log(mid[order])
    last = np.ones(len(k), bool)  # the last quote of each (key, bucket)
    last[:-1] = (k[1:] != k[:-1]) | (b[1:] != b[:-1])
    kl, ml = k[last], lm[last]
    same = kl[1:] == kl[:-1]
    r2 = np.where(same, np.diff(ml) ** 2, 0.0)
    groups, first = np.unique(k, return_index=True)
    pos = np.searchsorted(groups, kl[1:])
    # pandas' (compensated) sum, as the per-group sums of a groupby always were
    rv = pd.Series(r2[same]).groupby(pos[same]).sum().reindex(range(len(groups))).to_numpy()
    n_ret = np.bincount(pos[same], minlength=len(groups))
    spread = np.log((ask - bid) / mid * 1e4)[order]
    av = _ns(quotes["available_at"])[keep]
    with np.errstate(divide="ignore"):
        log_rv = np.where((n_ret > 0) & (rv > 0), 0.5 * np.log(np.where(rv > 0, rv, 1.0)),
                          np.nan)
    return pd.DataFrame({
        "symbol": np.asarray(names, dtype=object)[groups // len(days)].astype(str),
        "date": pd.to_datetime(days[groups % len(days)]).as_unit("ns"),
        "log_spread": pd.Series(spread).groupby(k).median().to_numpy(),
        "av_q": pd.to_datetime(np.maximum.reduceat(av[order], first), utc=True).as_unit("ns"),
        "log_rv": log_rv})


def regime_inputs(daily_bars: pd.DataFrame, *, quotes: pd.DataFrame | None = None,
                  level: Literal["market", "symbol"] = "market", baseline_sessions: int = 250,
                  min_baseline: int = 5, calendar: str | None = "XNYS",
                  tz: str = "America/New_York", rv_bucket_min: float = 5.0) -> pd.DataFrame:
    """Point-in-time regime features, one row per (session) or (symbol, session).

    Per symbol and session: ``log_range`` (log of ``ln(high/low)``), ``log_volume`` and, with
    ``quotes``, ``log_spread`` (median quoted spread, bps) and ``log_rv`` (realized volatility of
    ``rv_bucket_min``-minute mids); range, volume and rv are scaled to a full session (early
    closes of ``calendar``). Each becomes ``<name>_rel``: minus its median over the symbol's
    previous ``baseline_sessions`` sessions (at least ``min_baseline``, else NaN), so the value
    of session ``t`` uses sessions ``<= t`` only. ``level="market"`` takes the median over the
    symbols of each session (``n_symbols`` of them).

    Returns
    -------
    DataFrame
        ``date`` (naive session date), ``symbol`` (level "symbol" only), the ``*_rel`` columns,
        ``available_at`` (the latest knowledge time used: the session's close, or its last
        quote) and, at market level, ``n_symbols``; sorted by (symbol,) date.
    """
    b = daily_bars.assign(symbol=daily_bars["symbol"].astype(str),
                          date=pd.to_datetime(daily_bars["date"]).dt.as_unit("ns"))
    frac = _session_fraction(b["date"], calendar)
    with np.errstate(divide="ignore", invalid="ignore"):
        feats = pd.DataFrame({
            "symbol": b["symbol"].to_numpy(), "date": b["date"].to_numpy(),
            "log_range": np.log(np.log(b["high"] / b["low"]).to_numpy()) - 0.5 * np.log(frac),
            "log_volume": np.log(b["volume"].to_numpy(np.float64)) - np.log(frac),
            "frac": frac,
            "available_at": pd.to_datetime(b["available_at"], utc=True).dt.as_unit("ns")
                              .to_numpy()})
    names = ["log_range", "log_volume"]
    if quotes is not None:
        qf = _quote_features(quotes, tz, rv_bucket_min)
        feats = feats.merge(qf, on=["symbol", "date"], how="left")
        feats["log_rv"] = feats["log_rv"] - 0.5 * np.log(feats["frac"])
        av = pd.DataFrame({"a": feats["available_at"], "b": feats["av_q"]}).max(axis=1)
        feats["available_at"] = pd.to_datetime(av, utc=True).dt.as_unit("ns")
        feats = feats.drop(columns="av_q")
        names += ["log_spread", "log_rv"]
    feats = feats.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    for c in names:
        v = feats[c].where(np.isfinite(feats[c]))
        base = v.groupby(feats["symbol"]).transform(
            lambda s: s.shift(1).rolling(baseline_sessions, min_periods=min_baseline).median())
        feats[f"{c}_rel"] = v - base
    rel = [f"{c}_rel" for c in names]
    if level == "symbol":
        return feats[["date", "symbol", *rel, "available_at"]]
    g = feats.groupby("date", sort=True)
    out = g[rel].median()
    out["n_symbols"] = g[rel[0]].count()
    out["available_at"] = g["available_at"].max()
    return out.reset_index()


# =========================================================================== walk forward
def walk_forward_regimes(inputs: pd.DataFrame, *, seed: int, features: Sequence[str] | None = None,
                         refit_every: int = 5, min_train: int = 40, min_states: int | None = 1,
                         **fit_kw: Any) -> pd.DataFrame:
    """Filtered regime probabilities per session from models fitted on earlier sessions only.

    Sessions are the sorted distinct ``date`` of ``inputs``; models are refit at session
    positions ``min_train, min_train + refit_every, ...`` on every row dated strictly before
    (expanding window; one sequence per symbol when ``inputs`` has a ``symbol`` column). The
    probabilities of session ``t`` come from the latest such model and the forward filter over
    the rows up to ``t``; so row ``t`` is a function of the rows dated ``<= t`` only, and
    recomputing on inputs cut at ``t`` gives it again bit for bit.

    Parameters
    ----------
    inputs : DataFrame
        :func:`regime_inputs` output (``date``, features, ``available_at``, optional ``symbol``).
    seed : int
        Seed of every refit (the same at each refit: a refit differs only by its data).
    features : sequence of str, optional
        Default: every ``*_rel`` column (their average state mean orders the states).
    refit_every, min_train : int, default=5, 40
        Sessions between refits, and sessions before the first model. A refit whose window
        holds fewer complete rows than :func:`fit_regime_hmm` needs (``5 * n_states``) is
        skipped: its sessions keep NaN (a short history, or inputs with gaps).
    min_states : int or None, default=1
        Each refit picks its number of states in ``min_states..n_states`` by BIC (None: always
        ``n_states``). A short history often holds fewer regimes than ``n_states``; forcing
        three states on it splits calm into "calm" and "volatile" and raises false alarms.
        The fitted states take the lowest labels; the others are novelty states above them
        (``novelty_rate`` of :func:`fit_regime_hmm`) until a refit sees them, so a first crisis
        reads as "crisis" and not as the highest regime seen so far.
    **fit_kw
        Passed to :func:`fit_regime_hmm` (``n_states``, ``labels``, ``n_restarts`` ...).

    Returns
    -------
    DataFrame
        ``date``, (``symbol``), ``p_<label>`` per state, ``p_next_<label>`` (the same model's
        one-step prediction for the next session, :func:`predict_next`), ``regime`` (the argmax
        label of ``p_<label>``),
        ``fitted_through`` (last training date), ``n_train`` and ``available_at`` (the input
        row's); sessions before ``min_train`` have NaN probabilities and ``regime`` missing.
    """
    if min_train < 1 or refit_every < 1:
        raise ValueError(f"`min_train={min_train}` and `refit_every={refit_every}` must be >= 1")
    feats = list(features) if features is not None else [
        c for c in inputs.columns if c.endswith("_rel")]
    by = "symbol" in inputs.columns
    df = inputs.sort_values(["symbol", "date"] if by else ["date"], kind="stable")
    df = df.reset_index(drop=True)
    sessions = np.sort(df["date"].unique())
    pos = np.searchsorted(sessions, df["date"].to_numpy())
    groups = [np.flatnonzero(df["symbol"].to_numpy() == s) for s in df["symbol"].unique()] \
        if by else [np.arange(len(df))]
    x = df[feats].to_numpy(np.float64)
    probs: np.ndarray | None = None
    nxt = np.zeros((0, 0))
    through = np.full(len(df), np.datetime64("NaT", "ns"))
    n_train = np.zeros(len(df), np.int64)
    labels: tuple[str, ...] = ()
    complete = ~np.isnan(x).any(axis=1)
    need = 5 * int(fit_kw.get("n_states", 3))  # fit_regime_hmm's minimum
    for r in range(min_train, len(sessions), refit_every):
        if complete[pos < r].sum() < need:
            continue  # too few complete rows yet: these sessions keep NaN
        train = [idx[pos[idx] < r] for idx in groups]
        train = [i for i in train if len(i)]
        model = fit_regime_hmm(df.loc[np.concatenate(train), feats], seed=seed,
                               lengths=[len(i) for i in train],
                               fitted_through=pd.Timestamp(sessions[r - 1]),
                               min_states=min_states, **fit_kw)
        if probs is None:
            labels = model.labels
            probs = np.full((len(df), model.n_states), np.nan)
            nxt = probs.copy()
        for idx in groups:
            upto = idx[pos[idx] < r + refit_every]
            take = pos[upto] >= r
            if take.any():
                probs[upto[take]] = filtered_probabilities(model, x[upto])[take]
                nxt[upto[take]] = predict_next(model, probs[upto[take]])
                through[upto[take]] = sessions[r - 1]
                n_train[upto[take]] = model.n_train
    out = df[["date", "symbol"] if by else ["date"]].copy()
    if probs is None:
        labels = tuple(fit_kw.get("labels") or DEFAULT_LABELS)
        probs = nxt = np.full((len(df), len(labels)), np.nan)
    for k, lab in enumerate(labels):
        out[f"p_{lab}"] = probs[:, k]
    for k, lab in enumerate(labels):
        out[f"p_next_{lab}"] = nxt[:, k]
    has = ~np.isnan(probs).any(axis=1)
    out["regime"] = np.where(has, np.asarray(labels, dtype=object)[
        np.argmax(np.nan_to_num(probs, nan=-1.0), axis=1)], None)
    out["fitted_through"] = through
    out["n_train"] = n_train
    out["available_at"] = df["available_at"].to_numpy()
    return out


def regimes_table(walk_forward: pd.DataFrame) -> pd.DataFrame:
    """The ``regimes`` table of :func:`models.features.build_features` (``date, regime,
    available_at`` and ``symbol`` when present) from :func:`walk_forward_regimes` output: each
    session's filtered regime, usable from its ``available_at`` on (a decision on ``d`` sees the
    regime of ``d - 1``)."""
    cols = [c for c in ("date", "symbol", "regime", "available_at") if c in walk_forward.columns]
    return walk_forward.loc[walk_forward["regime"].notna(), cols].reset_index(drop=True)
