"""Online residual correction of a cost model between retrains (issue 16, item 3).

A retrained cost model is frozen until the next retrain; the market is not. The
:class:`OnlineCorrector` adds to a base model's prediction an exponentially weighted mean of its
recent residuals ``r = realized - base`` (bps), one mean per regime (group), shrunk toward the
pooled mean. It learns only from labels that are *known*: a realized cost becomes usable at its
label's knowledge time (``t1``, the end of the order's execution, by default), never before.

Update rule
-----------
With the half-life ``h`` (in absorbed orders) the decay is ``lam = 2 ** (-1 / h)``. Each absorbed
label (residual ``r`` of group ``g``) updates the pooled sums and its group's sums::

    S <- lam * S + v r,      W <- lam * W + v          (pooled)
    S_g <- lam * S_g + v r,  W_g <- lam * W_g + v      (group g only: its clock is its orders)

where ``v = floor^2 / (timing_risk^2 + floor^2)`` in ``(0, 1]`` is the residual's inverse-noise
weight (1 without a timing risk), so a long order in a volatile market, whose realized cost is
mostly the price's move, barely moves the mean.

and the correction of a row of group ``g`` is the group's weighted mean shrunk toward the pooled
one, itself shrunk toward zero, with ``n0 = prior_orders`` pseudo-orders::

    c = S / (W + n0),      c_g = (S_g + n0 * c) / (W_g + n0)

A step of ``b`` bps in the residuals, with the sums saturated (``W_g = 1 / (1 - lam)``) and
``n0 = 0`` and unit weights, is learned as ``c_g(n) = b (1 - lam ** n)`` after ``n`` labels: 90% of it after
``n = h log2(10) ~ 3.32 h`` labels.

Timing
------
:meth:`OnlineCorrector.observe` queues labelled rows; nothing is absorbed then.
:meth:`OnlineCorrector.predict` walks the rows to price in decision order and, before each row,
absorbs every queued label whose knowledge time is ``<=`` that row's decision time (in knowledge
order). The state only moves forward: pricing a decision earlier than a label already absorbed
raises :class:`validation.errors.LeakageError`.

A second, multiplicative corrector, :func:`ew_recalibration`, refits ``a + b * prediction`` by
exponentially forgotten least squares: the right form when every cost scales (liquidity halves:
impact x sqrt 2 under the square-root law), where an additive mean corrects the level but not
the orders' spread (the break scenario, :mod:`validation.drift_break`).

Deterministic, numpy and pandas only; nothing here logs or writes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from validation.errors import LeakageError

__all__ = ["BasePredictor", "OnlineConfig", "OnlineCorrector", "ew_recalibration"]

BasePredictor = Callable[[pd.DataFrame], np.ndarray]
"""``base(frame) -> predicted cost (bps)`` of each row: the frozen model being corrected."""


class OnlineConfig(BaseModel):
    """Parameters of :class:`OnlineCorrector` (frozen; the defaults are written here only).

    Parameters
    ----------
    half_life_orders : float, default=200.0
        Half-life of a residual's weight, in absorbed orders (of its group, for the group mean).
    prior_orders : float, default=50.0
        ``n0``: pseudo-orders of shrinkage (group toward pooled, pooled toward zero).
    group : str or None, default="regime_code"
        Column of the group (regime) of each row; None or absent: one pooled mean. A missing
        value falls in the pooled mean.
    label : str, default="is_bps"
        The realized cost.
    known : str, default="t1"
        The time at which a row's label becomes known (its execution's end).
    decision : str, default="decision_ts"
        The time at which a row is priced.
    noise_floor_bps : float or None, default=5.0
        Each residual weighs ``v = floor^2 / (timing_risk^2 + floor^2)`` (in ``(0, 1]``: an
        order without timing risk counts as one order), the inverse-noise weights of the
        training; None, or no ``risk`` column: every residual weighs 1.
    risk : str, default="timing_risk_bps"
        The column of each order's timing-risk sd (bps).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    half_life_orders: float = Field(200.0, gt=0)
    prior_orders: float = Field(50.0, ge=0)
    group: str | None = "regime_code"
    label: str = "is_bps"
    known: str = "t1"
    decision: str = "decision_ts"
    noise_floor_bps: float | None = Field(5.0, gt=0)
    risk: str = "timing_risk_bps"

    @property
    def decay(self) -> float:
        """``lam = 2 ** (-1 / half_life_orders)``."""
        return float(2.0 ** (-1.0 / self.half_life_orders))


class OnlineCorrector:
    """Exponentially weighted residual mean per group, updated only with known labels.

    Parameters
    ----------
    base : callable
        ``base(frame) -> array`` of the frozen model's predicted cost (bps).
    config : OnlineConfig, optional

    Examples
    --------
    >>> t = pd.to_datetime(["2025-01-02 10:00", "2025-01-02 11:00"], utc=True)
    >>> past = pd.DataFrame({"decision_ts": t - pd.Timedelta("1h"), "t1": t,
    ...                      "is_bps": [14.0, 14.0], "regime_code": [0, 0]})
    >>> c = OnlineCorrector(lambda f: np.full(len(f), 10.0),
    ...                     OnlineConfig(half_life_orders=1e9, prior_orders=0.0)).observe(past)
    >>> now = pd.DataFrame({"decision_ts": t + pd.Timedelta("1min"), "regime_code": [0, 0]})
    >>> c.predict(now).tolist()  # one label known at the first decision, both at the second
    [14.0, 14.0]
    >>> c.n_absorbed
    2
    """

    def __init__(self, base: BasePredictor, config: OnlineConfig | None = None) -> None:
        self.base = base
        self.config = config or OnlineConfig()
        self._lam = self.config.decay
        self._sums: dict[object, list[float]] = {}  # group -> [S_g, W_g]
        self._pooled = [0.0, 0.0]
        self._queue: list[tuple[int, int, object, float, float]] = []  # (known, seq, g, r, v)
        self._seq = 0
        self.clock: pd.Timestamp | None = None  # knowledge time of the last absorbed label
        self.n_absorbed = 0

    # --------------------------------------------------------------------- inputs
    def _groups(self, frame: pd.DataFrame) -> list[object]:
        g = self.config.group
        if g is None or g not in frame.columns:
            return [None] * len(frame)
        return [None if pd.isna(v) else v for v in frame[g].tolist()]

    @staticmethod
    def _ns(col: pd.Series, what: str) -> np.ndarray:
        ts = pd.to_datetime(col, utc=True)
        if ts.isna().any():
            raise ValueError(f"OnlineCorrector: column {what!r} has missing times; every row "
                             "needs one")
        return ts.astype("int64").to_numpy()

    def observe(self, frame: pd.DataFrame) -> OnlineCorrector:
        """Queue the labelled rows of ``frame``: each residual ``label - base`` is absorbed only
        by a later :meth:`predict` at a decision at or after its knowledge time. Rows without
        a finite label are skipped."""
        cfg = self.config
        missing = [c for c in (cfg.label, cfg.known) if c not in frame.columns]
        if missing:
            raise ValueError(f"OnlineCorrector.observe: frame lacks column(s) {missing}")
        if len(frame) == 0:
            return self
        r = frame[cfg.label].to_numpy(np.float64) - np.asarray(self.base(frame), np.float64)
        known = self._ns(frame[cfg.known], cfg.known)
        wts = np.ones(len(frame))
        if cfg.noise_floor_bps is not None and cfg.risk in frame.columns:
            f2 = cfg.noise_floor_bps ** 2
            risk = frame[cfg.risk].to_numpy(np.float64)
            wts = np.where(np.isfinite(risk), f2 / (risk * risk + f2), 1.0)
        for k, g, v, w in zip(known, self._groups(frame), r, wts, strict=True):
            if np.isfinite(v):
                heapq.heappush(self._queue, (int(k), self._seq, g, float(v), float(w)))
                self._seq += 1
        return self

    # --------------------------------------------------------------------- state
    def _absorb(self, g: object, r: float, v: float) -> None:
        lam = self._lam
        self._pooled[0] = lam * self._pooled[0] + v * r
        self._pooled[1] = lam * self._pooled[1] + v
        if g is not None:
            s = self._sums.setdefault(g, [0.0, 0.0])
            s[0] = lam * s[0] + v * r
            s[1] = lam * s[1] + v
        self.n_absorbed += 1

    def _current(self, g: object) -> float:
        n0 = self.config.prior_orders
        S, W = self._pooled
        pooled = S / (W + n0) if W + n0 > 0 else 0.0
        s = self._sums.get(g) if g is not None else None
        if s is None:
            return pooled
        return (s[0] + n0 * pooled) / (s[1] + n0)

    def _advance(self, until_ns: int) -> None:
        q = self._queue
        while q and q[0][0] <= until_ns:
            k, _, g, r, v = heapq.heappop(q)
            self._absorb(g, r, v)
            self.clock = pd.Timestamp(k, tz="UTC")

    # --------------------------------------------------------------------- outputs
    def correction(self, frame: pd.DataFrame) -> np.ndarray:
        """The correction (bps) of each row of ``frame`` (in its order), rows taken in decision
        order, each after absorbing every queued label known at or before its decision.

        Raises
        ------
        LeakageError
            A row's decision precedes the knowledge time of a label already absorbed.
        """
        cfg = self.config
        if cfg.decision not in frame.columns:
            raise ValueError(f"OnlineCorrector: frame lacks column {cfg.decision!r}")
        dec = self._ns(frame[cfg.decision], cfg.decision)
        out = np.empty(len(frame))
        groups = self._groups(frame)
        for i in np.argsort(dec, kind="stable"):
            if self.clock is not None and dec[i] < self.clock.value:
                raise LeakageError(
                    f"OnlineCorrector: row {i} is priced at {pd.Timestamp(dec[i], tz='UTC')}, "
                    f"before the label absorbed at {self.clock}; price decisions in time order "
                    "or start a new corrector")
            self._advance(int(dec[i]))
            out[i] = self._current(groups[i])
        return out

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """``base(frame) + correction(frame)`` (bps)."""
        return np.asarray(self.base(frame), np.float64) + self.correction(frame)

    def state(self) -> pd.DataFrame:
        """The current sums and correction per group (``group=None``: pooled)."""
        rows = [{"group": None, "S": self._pooled[0], "W": self._pooled[1],
                 "correction_bps": self._current(None)}]
        rows += [{"group": g, "S": s[0], "W": s[1], "correction_bps": self._current(g)}
                 for g, s in sorted(self._sums.items(), key=lambda kv: str(kv[0]))]
        return pd.DataFrame(rows)


def ew_recalibration(t_known: np.ndarray, pred_known: np.ndarray, y_known: np.ndarray,
                     t_query: np.ndarray, pred_query: np.ndarray, *, half_life: float,
                     prior: float) -> np.ndarray:
    """``a + b * pred_query``, with ``(a, b)`` the exponentially forgotten least-squares fit of
    ``y ~ a + b * pred`` on the labels known at each query (``t_known <= t_query``, absorbed in
    knowledge-time order, weights halving every ``half_life`` labels) plus a ridge prior of
    weight ``prior`` at ``a = 0, b = 1`` (so that no label leaves the prediction as it is)."""
    order = np.argsort(t_known, kind="stable")
    tk, p, y = t_known[order], pred_known[order], y_known[order]
    lam = 0.5 ** (1.0 / half_life)
    # the forgotten sums of 1, p, p^2, y, p*y after each label (index 0: none)
    terms = np.stack([np.ones_like(p), p, p * p, y, p * y])
    sums = np.zeros((5, len(p) + 1))
    acc = np.zeros(5)
    for i in range(len(p)):  # the recursion, label by label
        acc = lam * acc + terms[:, i]
        sums[:, i + 1] = acc
    n = np.searchsorted(tk, t_query, side="right")
    s1, sp, spp, sy, spy = sums[:, n]
    # normal equations with the prior: minimize sum w (y - a - b p)^2 + prior (a^2 + (b-1)^2)
    a11, a12, a22 = s1 + prior, sp, spp + prior
    r1, r2 = sy, spy + prior
    det = a11 * a22 - a12 * a12
    a = (r1 * a22 - a12 * r2) / det
    b = (a11 * r2 - a12 * r1) / det
    return a + b * pred_query
