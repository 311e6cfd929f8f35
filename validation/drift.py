"""Drift statistics: PSI, two-sample KS, CUSUM, Page–Hinkley, and daily drift tables.

Pure numpy/scipy/pandas (``../shared/REFERENCES.md`` §7.2). Two questions, two families:

* **Did the inputs move?** :func:`psi` (size of a shift, on bins frozen at training time by
  :func:`psi_edges`) and :func:`ks` (its significance); :func:`feature_drift` runs both per
  (day, feature). PSI has no sample-size calibration and KS flags trivial shifts on big samples,
  so a feature is flagged only when both agree and the day holds ``min_count`` values.
* **Did the model stop being calibrated?** :class:`Cusum` and :class:`PageHinkley` are sequential
  detectors (``update(x) -> alarm``); :func:`calibration_drift` runs them over the daily
  standardized bias and adds the rolling coverage of the prediction band.

Thresholds live in ``validation/drift.toml`` (:func:`load_thresholds`, :class:`DriftThresholds`).

Examples
--------
>>> import numpy as np
>>> round(psi_from_shares([.25, .25, .25, .25], [.1, .2, .3, .4]), 4)
0.2282
>>> run_detector(Cusum(k=0.5, h=2.0), [0.2, -0.4, 0.1, 0.3, -0.2, 1.4, 1.1, 1.6, 0.9, 1.3])
7
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Final, Literal, NamedTuple, Protocol

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

__all__ = [
    "DEFAULT_DRIFT_PATH",
    "Z80",
    "Cusum",
    "Detector",
    "DriftThresholds",
    "KSResult",
    "PSIResult",
    "PageHinkley",
    "alarms",
    "calibration_drift",
    "feature_drift",
    "ks",
    "load_thresholds",
    "psi",
    "psi_edges",
    "psi_from_shares",
    "run_detector",
]

DEFAULT_DRIFT_PATH: Final = Path(__file__).resolve().parent / "drift.toml"
"""The packaged threshold file, read when :func:`load_thresholds` gets no path."""

Z80: Final = 1.2815515655446004
"""The standard normal 90 % quantile: an 80 % central band is ``mean ± Z80 · sd``."""

Side = Literal["upper", "lower", "two-sided"]


# --------------------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class DriftThresholds:
    """The drift thresholds; the values and their sources are in ``validation/drift.toml``.

    Parameters
    ----------
    psi_warn, psi_alarm : float, default=0.1, 0.25
        PSI at or above ``psi_warn`` is a moderate shift, above ``psi_alarm`` a major one.
    psi_bins : int, default=10
        Quantile bins of :func:`psi_edges` (deciles).
    psi_min_count : int, default=100
        Fewest live values a PSI is judged on (10 per decile bin).
    ks_p : float, default=0.01
        KS p-value below which the two samples are called different.
    cusum_k, cusum_h : float, default=0.5, 5.0
        CUSUM reference value and decision interval, in sd units of the monitored series.
    ph_delta, ph_lambda : float, default=0.5, 5.0
        Page–Hinkley tolerance and threshold, in sd units.
    ph_min_instances : int, default=5
        Days Page–Hinkley watches before it may alarm (its running mean needs a few).
    coverage_min : float, default=0.7
        Least rolling coverage of the 80 % band (nominal 0.8 minus a margin).
    window_days : int, default=20
        Days in the rolling coverage window.
    """

    psi_warn: float = 0.1
    psi_alarm: float = 0.25
    psi_bins: int = 10
    psi_min_count: int = 100
    ks_p: float = 0.01
    cusum_k: float = 0.5
    cusum_h: float = 5.0
    ph_delta: float = 0.5
    ph_lambda: float = 5.0
    ph_min_instances: int = 5
    coverage_min: float = 0.7
    window_days: int = 20

    def __post_init__(self) -> None:
        rules = [
            (0 < self.psi_warn <= self.psi_alarm, "0 < psi_warn <= psi_alarm"),
            (self.psi_bins >= 2, "psi_bins >= 2"),
            (self.psi_min_count >= 1, "psi_min_count >= 1"),
            (0 < self.ks_p < 1, "0 < ks_p < 1"),
            (self.cusum_k >= 0 and self.cusum_h > 0, "cusum_k >= 0 and cusum_h > 0"),
            (self.ph_delta >= 0 and self.ph_lambda > 0, "ph_delta >= 0 and ph_lambda > 0"),
            (self.ph_min_instances >= 0, "ph_min_instances >= 0"),
            (0 <= self.coverage_min <= 1, "0 <= coverage_min <= 1"),
            (self.window_days >= 1, "window_days >= 1"),
        ]
        broken = [rule for ok, rule in rules if not ok]
        if broken:
            raise ValueError(f"drift thresholds break {broken}: got {self}")


def load_thresholds(path: str | Path | None = None) -> DriftThresholds:
    """Read the drift thresholds from a TOML file (default ``validation/drift.toml``).

    Parameters
    ----------
    path : str or Path, optional
        A flat TOML file holding every field of :class:`DriftThresholds`, and nothing else.

    Returns
    -------
    DriftThresholds

    Raises
    ------
    ValueError
        The file is missing or not TOML, a key is unknown or missing, a value has the wrong type
        or breaks a rule. The message names the file and the key.
    """
    p = Path(path) if path is not None else DEFAULT_DRIFT_PATH
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ValueError(f"drift thresholds file {p} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"drift thresholds file {p} is not valid TOML: {exc}") from exc
    kinds = {f.name: (int if f.type in ("int", int) else float) for f in fields(DriftThresholds)}
    unknown = sorted(set(raw) - set(kinds))
    if unknown:
        raise ValueError(f"drift thresholds file {p}: unknown key(s) {unknown}; the allowed "
                         f"keys are {sorted(kinds)}")
    missing = sorted(set(kinds) - set(raw))
    if missing:
        raise ValueError(f"drift thresholds file {p}: missing key(s) {missing}")
    for key, value in raw.items():
        ok = (isinstance(value, int) if kinds[key] is int else isinstance(value, int | float))
        if isinstance(value, bool) or not ok:
            raise ValueError(f"drift thresholds file {p}: `{key} = {value!r}` must be "
                             f"{'an integer' if kinds[key] is int else 'a number'}")
    try:
        return DriftThresholds(**{k: kinds[k](v) for k, v in raw.items()})
    except ValueError as exc:
        raise ValueError(f"drift thresholds file {p}: {exc}") from exc


# --------------------------------------------------------------------------- PSI and KS


def _sample(name: str, values: object) -> np.ndarray:
    """The finite values of a 1-d sample; NaN are dropped, an empty or infinite one refused."""
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ValueError(f"`{name}` is empty; a drift statistic needs at least one value")
    if np.isinf(x).any():
        raise ValueError(f"`{name}` holds {int(np.isinf(x).sum())} infinite value(s)")
    x = x[~np.isnan(x)]
    if x.size == 0:
        raise ValueError(f"`{name}` holds only NaN; a drift statistic needs finite values")
    return x


def _edges(edges: object) -> np.ndarray:
    e = np.asarray(edges, dtype=float).ravel()
    if not np.isfinite(e).all():
        raise ValueError(f"PSI edges must be finite, got {e.tolist()}")
    bad = np.flatnonzero(np.diff(e) <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        raise ValueError(f"PSI edges must be strictly increasing: edges[{i}]={e[i]:g} <= "
                         f"edges[{i - 1}]={e[i - 1]:g}; build them with psi_edges()")
    return e


def _shares(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of ``x`` in the bins ``(-inf, e0), [e0, e1), ..., [e_last, inf)``."""
    idx = np.searchsorted(edges, x, side="right")
    return np.bincount(idx, minlength=edges.size + 1) / x.size


def psi_edges(train: object, bins: int = 10) -> np.ndarray:
    """Interior PSI bin edges at the training quantiles, frozen at training time.

    Parameters
    ----------
    train : array-like
        The training sample (NaN dropped).
    bins : int, default=10
        Number of quantile bins (10: deciles). Duplicate quantiles (ties) are merged, so fewer
        bins may come back.

    Returns
    -------
    ndarray
        The ``bins - 1`` (or fewer) strictly increasing quantiles at ``1/bins, ..., (bins-1)/bins``
        (numpy ``"linear"`` method). The outer bins are open.

    Examples
    --------
    >>> psi_edges(np.arange(1, 9), bins=4).tolist()
    [2.75, 4.5, 6.25]
    """
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 2:
        raise ValueError(f"`bins` must be an integer >= 2, got `bins={bins!r}`")
    x = _sample("train", train)
    q = np.quantile(x, np.arange(1, bins) / bins, method="linear")
    return np.unique(q)


def psi_from_shares(expected: object, actual: object, eps: float = 1e-4) -> float:
    """PSI of two share vectors: ``Σ (a − e) · ln(a / e)``, shares clipped below at ``eps``.

    Parameters
    ----------
    expected, actual : array-like
        Training and live shares per bin, same length, each non-negative and summing to 1.
    eps : float, default=1e-4
        Floor of a share (an empty bin would make the log infinite); not renormalized.

    Returns
    -------
    float
        ``KL(a‖e) + KL(e‖a)``: 0 for equal shares, < 0.1 stable, > 0.25 a major shift.
    """
    e = np.asarray(expected, dtype=float).ravel()
    a = np.asarray(actual, dtype=float).ravel()
    if e.shape != a.shape or e.size == 0:
        raise ValueError(f"`expected` and `actual` must be non-empty and of equal length, got "
                         f"{e.size} and {a.size} bins")
    if not (eps > 0 and eps < 1):
        raise ValueError(f"`eps` must be in (0, 1), got `eps={eps}`")
    for name, s in (("expected", e), ("actual", a)):
        if not np.isfinite(s).all() or (s < 0).any() or abs(s.sum() - 1) > 1e-6:
            raise ValueError(f"`{name}` shares must be finite, >= 0 and sum to 1, got "
                             f"{s.tolist()} (sum {s.sum():g})")
    e, a = np.clip(e, eps, None), np.clip(a, eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class PSIResult:
    """One PSI: ``value``, the bin shares, and whether the live sample is large enough.

    ``expected`` and ``actual`` are the shares before clipping (an empty bin shows 0).
    """

    value: float
    expected: tuple[float, ...]
    actual: tuple[float, ...]
    edges: tuple[float, ...]
    n_live: int
    enough: bool


def psi(train: object, live: object, *, edges: object = None, bins: int = 10,
        eps: float = 1e-4, min_count: int = 100) -> PSIResult:
    """Population stability index of a live sample against a training sample.

    Parameters
    ----------
    train, live : array-like
        The samples (NaN dropped; empty or NaN-only is an error).
    edges : array-like, optional
        Frozen interior edges (strictly increasing); default ``psi_edges(train, bins)``.
    bins : int, default=10
        Quantile bins when ``edges`` is not given.
    eps : float, default=1e-4
        Floor of a share (:func:`psi_from_shares`).
    min_count : int, default=100
        Fewest live values for ``enough``: PSI has no sample-size calibration.

    Returns
    -------
    PSIResult

    Notes
    -----
    Bins are left-closed, ``[e_i, e_{i+1})``, and the outer bins open.

    Examples
    --------
    >>> r = psi(np.arange(1, 9), [1, 5, 6, 7, 7.5, 8, 9, 10], bins=4)
    >>> r.actual, round(r.value, 4), r.enough
    ((0.125, 0.0, 0.25, 0.625), 2.3855, False)
    """
    x = _sample("train", train)
    e = psi_edges(x, bins) if edges is None else _edges(edges)
    y = _sample("live", live)
    exp, act = _shares(x, e), _shares(y, e)
    return PSIResult(value=psi_from_shares(exp, act, eps), expected=tuple(exp.tolist()),
                     actual=tuple(act.tolist()), edges=tuple(e.tolist()), n_live=int(y.size),
                     enough=bool(y.size >= min_count))


class KSResult(NamedTuple):
    """Two-sample Kolmogorov–Smirnov: ``D = sup |F_train − F_live|`` and its p-value."""

    statistic: float
    pvalue: float


def ks(train: object, live: object) -> KSResult:
    """Two-sided two-sample KS test, ``scipy.stats.ks_2samp(method="auto")``, NaN dropped.

    Examples
    --------
    >>> d, p = ks(np.arange(1, 9), [1, 5, 6, 7, 7.5, 8, 9, 10])
    >>> round(d, 3), round(p, 3)
    (0.375, 0.66)
    """
    r = ks_2samp(_sample("train", train), _sample("live", live), alternative="two-sided",
                 method="auto")
    return KSResult(float(r.statistic), float(r.pvalue))


# --------------------------------------------------------------------------- detectors


class Detector(Protocol):
    """A sequential change detector: ``update`` one value, get whether it alarms."""

    def update(self, x: float) -> bool: ...

    def reset(self) -> None: ...


def _side(side: str) -> str:
    if side not in ("upper", "lower", "two-sided"):
        raise ValueError(f"`side` must be 'upper', 'lower' or 'two-sided', got `side={side!r}`")
    return side


def _finite(x: float) -> float:
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"a detector needs finite values, got x={x}")
    return v


class Cusum:
    """Page's CUSUM: ``S_t = max(0, S_{t−1} + z_t − k)`` with ``z_t = (x_t − mu0) / sigma``.

    Parameters
    ----------
    k : float
        Reference value, half the shift to detect (0.5 for a 1 sd shift), in sd units.
    h : float
        Decision interval: alarm when ``S_t > h`` (4–5 sd).
    mu0 : float, default=0.0
        In-control mean.
    sigma : float, default=1.0
        Scale of the series; 1 leaves ``k`` and ``h`` in the units of the series.
    side : {"upper", "lower", "two-sided"}, default="upper"
        ``s_hi`` watches upward shifts, ``s_lo = max(0, s_lo − z − k)`` downward ones.

    Notes
    -----
    Page (1954), Biometrika 41:100–115. One-sided, k=0.5: ARL0 = 335 (h=4), 931 (h=5); ARL1 for
    a 1 sd shift 8.4 (h=4). Two-sided ARL0: ``1/ARL = 1/ARL⁺ + 1/ARL⁻`` (168 for h=4).
    """

    def __init__(self, k: float, h: float, *, mu0: float = 0.0, sigma: float = 1.0,
                 side: Side = "upper") -> None:
        if not (k >= 0 and h > 0 and sigma > 0 and math.isfinite(mu0)):
            raise ValueError(f"Cusum needs k >= 0, h > 0, sigma > 0 and a finite mu0, got "
                             f"k={k}, h={h}, sigma={sigma}, mu0={mu0}")
        self.k, self.h, self.mu0, self.sigma, self.side = k, h, mu0, sigma, _side(side)
        self.reset()

    def __repr__(self) -> str:
        return (f"Cusum(k={self.k}, h={self.h}, mu0={self.mu0}, sigma={self.sigma}, "
                f"side={self.side!r})")

    def reset(self) -> None:
        """Restart from ``S = 0``."""
        self.s_hi = 0.0
        self.s_lo = 0.0

    def update(self, x: float) -> bool:
        """Add one value; True when a watched statistic exceeds ``h``."""
        z = (_finite(x) - self.mu0) / self.sigma
        if self.side != "lower":
            self.s_hi = max(0.0, self.s_hi + z - self.k)
        if self.side != "upper":
            self.s_lo = max(0.0, self.s_lo - z - self.k)
        return self.s_hi > self.h or self.s_lo > self.h


class PageHinkley:
    """Page–Hinkley test against the running mean: ``PH_t = max(0, PH_{t−1} + x_t − x̄_t − δ)``.

    Parameters
    ----------
    delta : float
        Tolerance δ: mean deviations smaller than this do not accumulate.
    lam : float
        Threshold λ: alarm when ``PH_t > lam``.
    min_instances : int, default=0
        Values seen before an alarm may be raised (the statistic is updated meanwhile).
    side : {"upper", "lower", "two-sided"}, default="upper"
        ``ph_hi`` watches upward shifts, ``ph_lo = max(0, ph_lo + x̄_t − x_t − δ)`` downward.

    Notes
    -----
    Hinkley (1971), Biometrika 58:509–523. ``x̄_t`` is the mean of ``x_1..x_t`` at each step
    (the final mean would make ``Σ (x − x̄)`` vanish). :meth:`reset` forgets the mean too.
    """

    def __init__(self, delta: float, lam: float, *, min_instances: int = 0,
                 side: Side = "upper") -> None:
        if not (delta >= 0 and lam > 0 and min_instances >= 0):
            raise ValueError(f"PageHinkley needs delta >= 0, lam > 0, min_instances >= 0, got "
                             f"delta={delta}, lam={lam}, min_instances={min_instances}")
        self.delta, self.lam, self.min_instances = delta, lam, min_instances
        self.side = _side(side)
        self.reset()

    def __repr__(self) -> str:
        return (f"PageHinkley(delta={self.delta}, lam={self.lam}, "
                f"min_instances={self.min_instances}, side={self.side!r})")

    def reset(self) -> None:
        """Restart: statistics 0, running mean forgotten."""
        self.n = 0
        self.mean = 0.0
        self.ph_hi = 0.0
        self.ph_lo = 0.0

    def update(self, x: float) -> bool:
        """Add one value; True when a watched statistic exceeds ``lam``."""
        v = _finite(x)
        self.n += 1
        self.mean += (v - self.mean) / self.n
        d = v - self.mean
        if self.side != "lower":
            self.ph_hi = max(0.0, self.ph_hi + d - self.delta)
        if self.side != "upper":
            self.ph_lo = max(0.0, self.ph_lo - d - self.delta)
        return self.n >= self.min_instances and (self.ph_hi > self.lam or self.ph_lo > self.lam)


def run_detector(detector: Detector, series: Iterable[float]) -> int | None:
    """0-based index of the first alarm of a freshly reset ``detector`` over ``series``, or None."""
    detector.reset()
    for i, x in enumerate(series):
        if detector.update(x):
            return i
    return None


def alarms(detector: Detector, series: Iterable[float]) -> list[int]:
    """0-based indices of every alarm, the detector reset after each (false-alarm counting).

    Over a calm series of length T, ``T / len(alarms(...))`` estimates ARL0.
    """
    detector.reset()
    out = []
    for i, x in enumerate(series):
        if detector.update(x):
            out.append(i)
            detector.reset()
    return out


# --------------------------------------------------------------------------- daily tables


def _columns(frame: pd.DataFrame, name: str, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"`{name}` lacks column(s) {missing}; it has {list(frame.columns)}")


def feature_drift(train: pd.DataFrame, live: pd.DataFrame, *, features: Sequence[str],
                  day_col: str, bins: int | None = None, min_count: int | None = None,
                  thresholds: DriftThresholds | None = None) -> pd.DataFrame:
    """PSI and KS of each feature on each live day against the whole training sample.

    Parameters
    ----------
    train, live : DataFrame
        Training rows (``features``) and live rows (``features`` and ``day_col``).
    features : sequence of str
        Columns compared; the PSI edges of each are frozen on ``train``.
    day_col : str
        Column of ``live`` that groups rows into days.
    bins, min_count : int, optional
        PSI bins and fewest values per day; default ``thresholds.psi_bins`` / ``psi_min_count``.
    thresholds : DriftThresholds, optional
        Default ``DriftThresholds()`` (the values of ``validation/drift.toml``).

    Returns
    -------
    DataFrame
        One row per (day, feature), days ascending: ``day, feature, n, psi, ks_stat, ks_p,
        enough`` (``n >= min_count``), ``psi_warn`` (``psi >= psi_warn``), ``psi_alarm``
        (``psi > psi_alarm``), ``ks_reject`` (``ks_p < ks_p``) and ``drift`` (enough, PSI alarm
        and KS reject together). A day with no value of a feature has NaN statistics.
    """
    t = thresholds or DriftThresholds()
    bins = t.psi_bins if bins is None else bins
    min_count = t.psi_min_count if min_count is None else min_count
    if not features:
        raise ValueError("`features` is empty; name the columns to compare")
    _columns(train, "train", features)
    _columns(live, "live", [*features, day_col])
    base = {}
    for f in features:
        try:
            x = _sample(f"train[{f!r}]", train[f])
        except ValueError as exc:
            raise ValueError(f"feature {f!r}: {exc}") from exc
        base[f] = (x, psi_edges(x, bins))
    rows = []
    for day, g in live.groupby(day_col, sort=True):
        for f in features:
            y = g[f].to_numpy(dtype=float)
            y = y[~np.isnan(y)]
            row = {"day": day, "feature": f, "n": int(y.size), "psi": np.nan, "ks_stat": np.nan,
                   "ks_p": np.nan}
            if y.size:
                x, edges = base[f]
                row["psi"] = psi(x, y, edges=edges, min_count=min_count).value
                row["ks_stat"], row["ks_p"] = ks(x, y)
            rows.append(row)
    out = pd.DataFrame(rows, columns=["day", "feature", "n", "psi", "ks_stat", "ks_p"])
    out["enough"] = out["n"] >= min_count
    out["psi_warn"] = out["psi"] >= t.psi_warn
    out["psi_alarm"] = out["psi"] > t.psi_alarm
    out["ks_reject"] = out["ks_p"] < t.ks_p
    out["drift"] = out["enough"] & out["psi_alarm"] & out["ks_reject"]
    return out


def calibration_drift(frame: pd.DataFrame, *, realized: str, mean: str, lo: str, hi: str,
                      day_col: str, window: int | None = None, daily_sd: float | None = None,
                      thresholds: DriftThresholds | None = None) -> pd.DataFrame:
    """Daily calibration of a predictive band: bias, standardized bias, coverage, CUSUM and PH.

    Parameters
    ----------
    frame : DataFrame
        One row per prediction, with ``realized``, ``mean`` and the 80 % band ``[lo, hi]``.
    realized, mean, lo, hi, day_col : str
        Column names.
    window : int, optional
        Days in the rolling coverage; default ``thresholds.window_days``.
    daily_sd : float, optional
        The sd of a day's mean standardized residual while calibrated. Default ``1/sqrt(n)``
        (independent rows); pass a value measured on a calm period when rows of a day share a
        common shock.
    thresholds : DriftThresholds, optional
        Default ``DriftThresholds()``.

    Returns
    -------
    DataFrame
        One row per day, ascending: ``day, n, bias`` (mean realized − mean predicted),
        ``z_mean`` (mean of ``(realized − mean) / sd``, ``sd = (hi − lo) / (2 · 1.2816)``),
        ``coverage_day``, ``coverage`` (pooled share inside ``[lo, hi]`` over the last
        ``window`` days), ``coverage_low`` (coverage below ``coverage_min`` on a full window),
        ``z_day`` (``z_mean / daily_sd``, ~N(0, 1) while calibrated), ``cusum_hi, cusum_lo,
        cusum_alarm`` (two-sided :class:`Cusum`), ``ph_hi, ph_lo, ph_alarm`` (two-sided
        :class:`PageHinkley`) and ``alarm`` (any of the three). Each detector restarts the day
        after it alarms; the statistics shown are those before the restart.
    """
    t = thresholds or DriftThresholds()
    window = t.window_days if window is None else window
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"`window` must be an integer >= 1 (days), got `window={window!r}`")
    if daily_sd is not None and not daily_sd > 0:
        raise ValueError(f"`daily_sd` must be > 0, got `daily_sd={daily_sd}`")
    cols = [realized, mean, lo, hi]
    _columns(frame, "frame", [*cols, day_col])
    if frame.empty:
        raise ValueError("`frame` is empty; calibration drift needs at least one day of rows")
    v = frame[cols].to_numpy(dtype=float)
    bad = ~np.isfinite(v).all(axis=1)
    if bad.any():
        raise ValueError(f"`frame` has {int(bad.sum())} row(s) with a missing or infinite "
                         f"{cols} value (first: row {frame.index[bad][0]!r}); drop them first")
    narrow = v[:, 3] <= v[:, 2]
    if narrow.any():
        raise ValueError(f"`frame` has {int(narrow.sum())} row(s) with {hi} <= {lo} (first: row "
                         f"{frame.index[narrow][0]!r}); the band must have positive width")
    sd = (v[:, 3] - v[:, 2]) / (2 * Z80)
    d = pd.DataFrame({"day": frame[day_col].to_numpy(), "res": v[:, 0] - v[:, 1],
                      "z": (v[:, 0] - v[:, 1]) / sd,
                      "inside": (v[:, 0] >= v[:, 2]) & (v[:, 0] <= v[:, 3])})
    g = d.groupby("day", sort=True)
    out = pd.DataFrame({"n": g.size(), "bias": g["res"].mean(), "z_mean": g["z"].mean(),
                        "coverage_day": g["inside"].mean()})
    covered = g["inside"].sum().rolling(window, min_periods=1).sum()
    n_window = out["n"].rolling(window, min_periods=1).sum()
    out["coverage"] = covered / n_window
    full = np.arange(len(out)) >= window - 1
    out["coverage_low"] = full & (out["coverage"] < t.coverage_min).to_numpy()
    scale = 1 / np.sqrt(out["n"]) if daily_sd is None else daily_sd
    out["z_day"] = out["z_mean"] / scale
    cusum = Cusum(t.cusum_k, t.cusum_h, side="two-sided")
    ph = PageHinkley(t.ph_delta, t.ph_lambda, min_instances=t.ph_min_instances,
                     side="two-sided")
    stats = []
    for z in out["z_day"]:
        c_alarm, p_alarm = cusum.update(z), ph.update(z)
        stats.append((cusum.s_hi, cusum.s_lo, c_alarm, ph.ph_hi, ph.ph_lo, p_alarm))
        if c_alarm:
            cusum.reset()
        if p_alarm:
            ph.reset()
    names = ["cusum_hi", "cusum_lo", "cusum_alarm", "ph_hi", "ph_lo", "ph_alarm"]
    out[names] = pd.DataFrame(stats, columns=names, index=out.index)
    out["alarm"] = out["cusum_alarm"] | out["ph_alarm"] | out["coverage_low"]
    return out.rename_axis("day").reset_index()
