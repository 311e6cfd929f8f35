"""Off-policy evaluation (OPE) of execution policies from logged decisions.

Contextual-bandit setting: for each parent order ``i`` the desk logged a context ``x_i``, the
action ``a_i`` its *logging* policy ``mu`` chose (an algo, a venue, an aggression level...), the
logging propensity ``p_log_i = mu(a_i | x_i)`` **stored at decision time**, and the outcome
``y_i`` (a cost in bps; any per-order outcome works). A *target* policy ``pi`` that was never
run is evaluated through the importance weight ``w_i = pi(a_i | x_i) / mu(a_i | x_i)``:

* :func:`ips` (Horvitz & Thompson 1952): ``V = (1/n) sum w_i y_i``. Unbiased when ``mu > 0``
  wherever ``pi > 0``.
* :func:`snips` (Swaminathan & Joachims 2015): ``V = sum w_i y_i / sum w_i``. Biased, consistent,
  and always inside ``[min y, max y]``.
* :func:`direct_method`: ``V = (1/n) sum_i sum_a pi(a|x_i) q(x_i, a)`` from a reward model ``q``.
* :func:`doubly_robust` (Dudik, Langford & Li 2011, arXiv:1103.4601):
  ``V = (1/n) sum_i [ sum_a pi(a|x_i) q(x_i, a) + w_i (y_i - q(x_i, a_i)) ]``. Unbiased if either
  the propensities or the reward model are right. Fit ``q`` by cross-fitting, never on the rows
  being evaluated.

Every estimator returns an :class:`OPEEstimate` with a standard error, a 95% interval (normal,
or percentile bootstrap over orders) and the effective sample size ``(sum w)^2 / sum w^2`` of the
weights. The formulas do not care about sign: a cost in bps (lower is better) and a reward
``-cost`` give estimates of opposite sign. :func:`epsilon_greedy_propensities` and
:func:`epsilon_greedy_prob` give ``pi(a|x)`` for the usual epsilon-greedy logging policy.

References: ``REFERENCES.md`` section 7.1; peer code ``st-tech/zr-obp``.

Examples
--------
The worked example of ``REFERENCES.md`` section 7.1 (reward = -slippage in bp, deterministic
target policy, so ``p_target`` is 1 where the target takes the logged action and 0 elsewhere):

>>> y = [-2.0, -6.0, -4.0, -3.0]
>>> p_log = [0.8, 0.2, 0.5, 0.4]
>>> p_target = [1.0, 0.0, 0.0, 1.0]
>>> ips(y, p_log, p_target).estimate
-2.5
>>> round(snips(y, p_log, p_target).estimate, 4)
-2.6667
>>> direct_method([-1.5, -3.0, -5.0, -4.0]).estimate
-3.375
>>> dr = doubly_robust(y, p_log, p_target, q_logged=[-1.5, -5.0, -3.0, -4.0],
...                    q_target_expected=[-1.5, -3.0, -5.0, -4.0])
>>> dr.estimate, round(dr.ess, 6)
(-2.90625, 1.8)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "OPEEstimate",
    "direct_method",
    "doubly_robust",
    "epsilon_greedy_prob",
    "epsilon_greedy_propensities",
    "ips",
    "snips",
]

_Z95 = 1.959963984540054  # standard normal 97.5% quantile
_BOOT_CELLS = 2_000_000  # resampled indices held in memory at once by the bootstrap

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class OPEEstimate:
    """An off-policy value estimate with its uncertainty.

    Attributes
    ----------
    estimate : float
        Estimated expected outcome per order (e.g. bps) under the target policy.
    se : float
        Standard error. For IPS, DR and DM the sample standard error of the per-order terms,
        ``std(terms, ddof=1) / sqrt(n)``; for SNIPS the delta-method (linearization) error
        ``sqrt(sum w_i^2 (y_i - V)^2) / sum w_i``. ``nan`` when ``n < 2``.
    ci_low, ci_high : float
        The 95% interval: ``estimate -/+ 1.96 se``, or the 2.5% and 97.5% percentiles of the
        bootstrap distribution when the estimator was called with ``bootstrap > 0``.
    n : int
        Number of logged orders used.
    ess : float
        Effective sample size of the importance weights, ``(sum w)^2 / sum w^2``: ``n`` when all
        weights are equal, much smaller when a few orders carry the estimate. ``n`` for the
        direct method (no weights); ``nan`` when every weight is zero.
    """

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    n: int
    ess: float


# --------------------------------------------------------------------------- input checks


def _vector(name: str, values: ArrayLike) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}` must be a 1-D array of numbers; could not convert it "
                         f"({exc})") from exc
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D (one value per logged order), got shape "
                         f"{arr.shape}")
    if arr.size == 0:
        raise ValueError(f"`{name}` is empty; off-policy evaluation needs at least one "
                         f"logged order")
    return arr


def _rows(mask: NDArray[np.bool_], arr: FloatArray) -> str:
    bad = np.flatnonzero(mask)
    shown = ", ".join(f"row {i}: {float(arr[i])!r}" for i in bad[:5])
    more = f" (and {bad.size - 5} more)" if bad.size > 5 else ""
    return f"{shown}{more}"


def _finite(name: str, arr: FloatArray) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"`{name}` must be finite; {_rows(bad, arr)}; drop or impute those "
                         f"orders first")


def _same_length(**arrays: FloatArray) -> int:
    (first, ref), *rest = arrays.items()
    for name, arr in rest:
        if arr.size != ref.size:
            raise ValueError(f"`{name}` has {arr.size} values but `{first}` has {ref.size}; "
                             f"pass one value per logged order")
    return ref.size


def _check_propensities(p_log: FloatArray, p_target: FloatArray) -> None:
    bad = ~((p_log > 0.0) & (p_log <= 1.0))  # also catches nan
    if bad.any():
        raise ValueError(f"`p_log` must be in (0, 1]; {_rows(bad, p_log)}. A logging "
                         f"propensity of 0 means the logged action could not have been taken: "
                         f"store mu(a_i|x_i) at decision time")
    bad = ~((p_target >= 0.0) & (p_target <= 1.0))
    if bad.any():
        raise ValueError(f"`p_target` must be in [0, 1]; {_rows(bad, p_target)}; it is the "
                         f"target policy's probability of the logged action")


def _check_bootstrap(bootstrap: int, seed: int) -> None:
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int | np.integer) or bootstrap < 0:
        raise ValueError(f"`bootstrap` must be a non-negative int (0 = normal interval), got "
                         f"bootstrap={bootstrap!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"`seed` must be an int, got seed={seed!r}")


def _logged(y: ArrayLike, p_log: ArrayLike, p_target: ArrayLike,
            ) -> tuple[FloatArray, FloatArray, FloatArray]:
    yv, pl, pt = _vector("y", y), _vector("p_log", p_log), _vector("p_target", p_target)
    _same_length(y=yv, p_log=pl, p_target=pt)
    _finite("y", yv)
    _check_propensities(pl, pt)
    return yv, pl, pt


# --------------------------------------------------------------------------- statistics


def _ess(w: FloatArray) -> float:
    s2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0.0 else float("nan")


def _bootstrap_ci(stat: Callable[[NDArray[np.intp]], FloatArray], n: int, bootstrap: int,
                  seed: int) -> tuple[float, float]:
    """Percentile interval of ``stat`` over ``bootstrap`` resamples of the ``n`` orders.

    ``stat`` maps a ``(b, n)`` block of resampled row indices to ``b`` estimates; resamples on
    which the estimate is undefined (``nan``) are left out of the percentiles.
    """
    rng = np.random.default_rng(seed)
    block = max(1, _BOOT_CELLS // n)
    draws = []
    for start in range(0, bootstrap, block):
        idx = rng.integers(0, n, size=(min(block, bootstrap - start), n))
        draws.append(stat(idx))
    values = np.concatenate(draws)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def _mean_estimate(terms: FloatArray, ess: float, bootstrap: int, seed: int) -> OPEEstimate:
    """Estimate, se and interval of ``mean(terms)`` (IPS, DR, DM)."""
    n = terms.size
    est = float(np.mean(terms))
    se = float(np.std(terms, ddof=1) / np.sqrt(n)) if n >= 2 else float("nan")
    if bootstrap > 0:
        lo, hi = _bootstrap_ci(lambda idx: terms[idx].mean(axis=1), n, bootstrap, seed)
    else:
        lo, hi = est - _Z95 * se, est + _Z95 * se
    return OPEEstimate(estimate=est, se=se, ci_low=lo, ci_high=hi, n=n, ess=ess)


# --------------------------------------------------------------------------- estimators


def ips(y: ArrayLike, p_log: ArrayLike, p_target: ArrayLike, *, bootstrap: int = 0,
        seed: int = 0) -> OPEEstimate:
    """Inverse propensity scoring: ``V = (1/n) sum_i w_i y_i``, ``w_i = p_target_i / p_log_i``.

    Parameters
    ----------
    y : array-like of float, shape (n,)
        Observed outcome of each logged order (e.g. cost in bps).
    p_log : array-like of float, shape (n,)
        Logging propensity ``mu(a_i | x_i)`` of the logged action, in (0, 1].
    p_target : array-like of float, shape (n,)
        Target policy's probability ``pi(a_i | x_i)`` of the logged action, in [0, 1].
    bootstrap : int, default=0
        When > 0, the interval is the percentile bootstrap over orders with this many resamples
        instead of the normal interval; ``se`` stays the analytic one.
    seed : int, default=0
        Seed of the bootstrap's ``numpy.random.Generator``; unused when ``bootstrap=0``.

    Returns
    -------
    OPEEstimate
        ``se = std(w * y, ddof=1) / sqrt(n)``; ``ess`` of the weights ``w``.

    Raises
    ------
    ValueError
        If an input is empty, not 1-D or of unequal length, ``y`` is not finite,
        ``p_log`` is outside (0, 1], ``p_target`` is outside [0, 1], or ``bootstrap``/``seed``
        is not a valid int. The message names the argument.

    Notes
    -----
    Unbiased when the logging policy gives positive probability to every action the target
    policy may take. Its variance grows with the weights: watch ``ess``. ``IPS(y + c) =
    IPS(y) + c mean(w)``, so unlike SNIPS it is not shift-equivariant unless ``mean(w) = 1``.
    With ``p_target == p_log`` it is exactly ``mean(y)``.

    Examples
    --------
    >>> ips([-2.0, -6.0, -4.0, -3.0], [0.8, 0.2, 0.5, 0.4], [1.0, 0.0, 0.0, 1.0]).estimate
    -2.5
    """
    _check_bootstrap(bootstrap, seed)
    yv, pl, pt = _logged(y, p_log, p_target)
    w = pt / pl
    return _mean_estimate(w * yv, _ess(w), bootstrap, seed)


def snips(y: ArrayLike, p_log: ArrayLike, p_target: ArrayLike, *, bootstrap: int = 0,
          seed: int = 0) -> OPEEstimate:
    """Self-normalized IPS: ``V = sum_i w_i y_i / sum_i w_i``.

    Parameters
    ----------
    y, p_log, p_target : array-like of float, shape (n,)
        As in :func:`ips`.
    bootstrap : int, default=0
        When > 0, percentile-bootstrap interval over orders with this many resamples (resamples
        whose weights are all zero are left out); ``se`` stays the delta-method one.
    seed : int, default=0
        Seed of the bootstrap's generator; unused when ``bootstrap=0``.

    Returns
    -------
    OPEEstimate
        ``se = sqrt(sum w_i^2 (y_i - V)^2) / sum w_i`` (delta method / linearization).

    Raises
    ------
    ValueError
        As :func:`ips`, and when every weight is zero (the target policy never takes a logged
        action, so ``0/0``).

    Notes
    -----
    Biased for finite ``n`` but consistent, always inside ``[min y, max y]``, usually of lower
    variance than IPS, and shift-equivariant: ``SNIPS(y + c) = SNIPS(y) + c``.

    Examples
    --------
    >>> e = snips([-2.0, -6.0, -4.0, -3.0], [0.8, 0.2, 0.5, 0.4], [1.0, 0.0, 0.0, 1.0])
    >>> round(e.estimate, 4), round(e.ess, 6)
    (-2.6667, 1.8)
    """
    _check_bootstrap(bootstrap, seed)
    yv, pl, pt = _logged(y, p_log, p_target)
    w = pt / pl
    sw = float(np.sum(w))
    if sw <= 0.0:
        raise ValueError("`p_target` is 0 for every logged action, so SNIPS = 0/0 is undefined: "
                         "the target policy never takes an action the log contains; use "
                         "doubly_robust or direct_method, or log with more exploration")
    n = yv.size
    est = float(np.sum(w * yv) / sw)
    se = float(np.sqrt(np.sum(w * w * (yv - est) ** 2)) / sw) if n >= 2 else float("nan")
    if bootstrap > 0:
        wy = w * yv

        def stat(idx: NDArray[np.intp]) -> FloatArray:
            den = w[idx].sum(axis=1)
            num = wy[idx].sum(axis=1)
            out = np.full(den.shape, np.nan)
            np.divide(num, den, out=out, where=den > 0.0)
            return out

        lo, hi = _bootstrap_ci(stat, n, bootstrap, seed)
    else:
        lo, hi = est - _Z95 * se, est + _Z95 * se
    return OPEEstimate(estimate=est, se=se, ci_low=lo, ci_high=hi, n=n, ess=_ess(w))


def doubly_robust(y: ArrayLike, p_log: ArrayLike, p_target: ArrayLike, q_logged: ArrayLike,
                  q_target_expected: ArrayLike, *, bootstrap: int = 0,
                  seed: int = 0) -> OPEEstimate:
    """Doubly robust estimate: ``V = (1/n) sum_i [qbar_i + w_i (y_i - q_i)]``.

    Parameters
    ----------
    y, p_log, p_target : array-like of float, shape (n,)
        As in :func:`ips`.
    q_logged : array-like of float, shape (n,)
        Reward-model prediction for the logged action, ``q_i = q(x_i, a_i)``.
    q_target_expected : array-like of float, shape (n,)
        Reward model averaged over the target policy, ``qbar_i = sum_a pi(a|x_i) q(x_i, a)``.
        From a ``(n, K)`` policy matrix ``pi`` and predictions ``q_hat``:
        ``(pi * q_hat).sum(axis=1)``; ``q_logged = q_hat[np.arange(n), a]``.
    bootstrap : int, default=0
        When > 0, percentile-bootstrap interval over orders with this many resamples.
    seed : int, default=0
        Seed of the bootstrap's generator; unused when ``bootstrap=0``.

    Returns
    -------
    OPEEstimate
        ``se`` from the per-order DR terms; ``ess`` of the weights ``w``.

    Raises
    ------
    ValueError
        As :func:`ips`, and when ``q_logged`` or ``q_target_expected`` is not finite or of
        the wrong length.

    Notes
    -----
    Dudik, Langford & Li (2011). Unbiased if either the propensities or the reward model are
    correct; with a good model its variance is far below IPS. ``q = 0`` gives IPS exactly and
    ``q_logged = y`` gives the direct method. Fit ``q`` by cross-fitting (never on the rows
    evaluated), or the correction term is shrunk towards zero and the bias of the model leaks
    into the estimate.

    Examples
    --------
    >>> doubly_robust([-2.0, -6.0, -4.0, -3.0], [0.8, 0.2, 0.5, 0.4], [1.0, 0.0, 0.0, 1.0],
    ...               [-1.5, -5.0, -3.0, -4.0], [-1.5, -3.0, -5.0, -4.0]).estimate
    -2.90625
    """
    _check_bootstrap(bootstrap, seed)
    yv, pl, pt = _logged(y, p_log, p_target)
    ql = _vector("q_logged", q_logged)
    qt = _vector("q_target_expected", q_target_expected)
    _same_length(y=yv, q_logged=ql, q_target_expected=qt)
    _finite("q_logged", ql)
    _finite("q_target_expected", qt)
    w = pt / pl
    return _mean_estimate(qt + w * (yv - ql), _ess(w), bootstrap, seed)


def direct_method(q_target_expected: ArrayLike, *, bootstrap: int = 0,
                  seed: int = 0) -> OPEEstimate:
    """Direct method: ``V = (1/n) sum_i qbar_i``, ``qbar_i = sum_a pi(a|x_i) q(x_i, a)``.

    Parameters
    ----------
    q_target_expected : array-like of float, shape (n,)
        Reward model averaged over the target policy for each logged context.
    bootstrap : int, default=0
        When > 0, percentile-bootstrap interval over orders with this many resamples.
    seed : int, default=0
        Seed of the bootstrap's generator; unused when ``bootstrap=0``.

    Returns
    -------
    OPEEstimate
        ``se = std(qbar, ddof=1) / sqrt(n)``; ``ess = n`` (no importance weights).

    Raises
    ------
    ValueError
        If ``q_target_expected`` is empty, not 1-D or not finite, or ``bootstrap``/``seed`` is
        invalid.

    Notes
    -----
    Low variance but biased by any error of the reward model, and ``se`` only reflects the
    spread over contexts, not the model's error: treat its interval as optimistic.

    Examples
    --------
    >>> direct_method([-1.5, -3.0, -5.0, -4.0]).estimate
    -3.375
    """
    _check_bootstrap(bootstrap, seed)
    qt = _vector("q_target_expected", q_target_expected)
    _finite("q_target_expected", qt)
    return _mean_estimate(qt, float(qt.size), bootstrap, seed)


# --------------------------------------------------------------------------- epsilon-greedy


def _epsilon_greedy_inputs(chosen: ArrayLike, n_actions: int | ArrayLike, epsilon: float,
                           ) -> tuple[NDArray[np.int64], NDArray[np.int64], float]:
    ch = np.asarray(chosen)
    if ch.ndim != 1 or ch.size == 0:
        raise ValueError(f"`chosen` must be a non-empty 1-D array of action indices, got shape "
                         f"{ch.shape}")
    if not np.issubdtype(ch.dtype, np.integer):
        raise ValueError(f"`chosen` must hold integer action indices, got dtype {ch.dtype}")
    k = np.asarray(n_actions)
    if not np.issubdtype(k.dtype, np.integer):
        raise ValueError(f"`n_actions` must be an int or an int array, got dtype {k.dtype}")
    if k.ndim == 0:
        k = np.full(ch.size, int(k))
    if k.shape != ch.shape:
        raise ValueError(f"`n_actions` has shape {k.shape} but `chosen` has {ch.shape}; pass one "
                         f"int or one per row")
    if (k < 1).any():
        raise ValueError(f"`n_actions` must be >= 1; {_rows(k < 1, k.astype(np.float64))}")
    bad = (ch < 0) | (ch >= k)
    if bad.any():
        raise ValueError(f"`chosen` must be in [0, n_actions); {_rows(bad, ch.astype(np.float64))}")
    try:
        eps = float(epsilon)
    except (TypeError, ValueError):
        eps = float("nan")
    if isinstance(epsilon, bool) or not 0.0 <= eps <= 1.0:  # nan fails the comparison
        raise ValueError(f"`epsilon` must be a float in [0, 1], got epsilon={epsilon!r}")
    return ch.astype(np.int64), k.astype(np.int64), eps


def epsilon_greedy_propensities(chosen: ArrayLike, n_actions: int | ArrayLike,
                                epsilon: float) -> FloatArray:
    """Action probabilities of an epsilon-greedy policy, one row per order.

    The policy plays ``chosen[i]`` with probability ``1 - epsilon + epsilon / K_i`` and each of
    the other ``K_i - 1`` actions with ``epsilon / K_i``.

    Parameters
    ----------
    chosen : array-like of int, shape (n,)
        The greedy action of each row, in ``[0, K_i)``.
    n_actions : int or array-like of int, shape (n,)
        Number of actions ``K``, the same for every row or one per row.
    epsilon : float
        Exploration rate in [0, 1]. A *logging* policy needs ``epsilon > 0`` for IPS and DR to be
        unbiased against targets that may differ from the greedy action.

    Returns
    -------
    ndarray of float, shape (n, max K)
        ``P[i, a] = pi(a | x_i)``; each row sums to 1, and actions ``a >= K_i`` of a row with
        fewer actions get 0. Index it with the logged actions for ``p_log`` or ``p_target``:
        ``P[np.arange(n), a]``, and use it for the DR input ``(P * q_hat).sum(axis=1)``.

    Raises
    ------
    ValueError
        If ``chosen`` is empty, not integer or out of range, ``n_actions < 1`` or of the wrong
        shape, or ``epsilon`` is outside [0, 1].

    Examples
    --------
    >>> epsilon_greedy_propensities([0, 2], 3, 0.3)
    array([[0.8, 0.1, 0.1],
           [0.1, 0.1, 0.8]])
    """
    ch, k, eps = _epsilon_greedy_inputs(chosen, n_actions, epsilon)
    cols = np.arange(int(k.max()))
    probs = np.where(cols[None, :] < k[:, None], eps / k[:, None], 0.0)
    probs[np.arange(ch.size), ch] += 1.0 - eps
    return probs


def epsilon_greedy_prob(actions: ArrayLike, chosen: ArrayLike, n_actions: int | ArrayLike,
                        epsilon: float) -> FloatArray:
    """Probability ``pi(actions[i] | x_i)`` of given actions under an epsilon-greedy policy.

    Parameters
    ----------
    actions : array-like of int, shape (n,)
        The action whose probability is wanted in each row (typically the logged action).
    chosen, n_actions, epsilon
        As in :func:`epsilon_greedy_propensities`.

    Returns
    -------
    ndarray of float, shape (n,)
        ``1 - epsilon + epsilon / K_i`` where ``actions[i] == chosen[i]``, else ``epsilon / K_i``.

    Raises
    ------
    ValueError
        As :func:`epsilon_greedy_propensities`, and when ``actions`` is not integer, of another
        length, or outside ``[0, K_i)``.

    Examples
    --------
    >>> epsilon_greedy_prob([0, 1], chosen=[0, 2], n_actions=4, epsilon=0.2)
    array([0.85, 0.05])
    """
    ch, k, eps = _epsilon_greedy_inputs(chosen, n_actions, epsilon)
    act = np.asarray(actions)
    if act.shape != ch.shape:
        raise ValueError(f"`actions` has shape {act.shape} but `chosen` has {ch.shape}; pass "
                         f"one action per row")
    if not np.issubdtype(act.dtype, np.integer):
        raise ValueError(f"`actions` must hold integer action indices, got dtype {act.dtype}")
    bad = (act < 0) | (act >= k)
    if bad.any():
        raise ValueError(f"`actions` must be in [0, n_actions); "
                         f"{_rows(bad, act.astype(np.float64))}")
    return np.where(act == ch, 1.0 - eps + eps / k, eps / k)
