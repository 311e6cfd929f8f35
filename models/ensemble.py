"""A small, explainable ensemble of cost predictions: convex weights fitted once, then frozen.

Components (each a prediction in bps for the same rows):

* ``physics``: the calibrated parametric law already in the row (``athl_pred_bps``, else
  ``sqrt_pred_bps``: :func:`physics_bps`);
* ``learned``: the learned mean model;
* ``online``: the learned mean plus the online residual correction
  (:class:`models.online.OnlineCorrector`).

:class:`CostEnsemble` fits non-negative weights summing to 1 on a validation slice at the end of a
training window, minimizing the (inverse-noise weighted) squared error against the realized cost:

    min_w  sum_i v_i (y_i - sum_k w_k p_ik)^2   s.t.  w_k >= 0,  sum_k w_k = 1

solved exactly by enumerating the active sets (``2^K - 1`` equality-constrained least squares,
``K = 3``): the feasible one with the lowest loss. With ``group`` set, one weight vector per
group (regime) with at least ``min_group_rows`` validation rows, the pooled one elsewhere.
The weights are then frozen; :attr:`CostEnsemble.weights_` reports them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["COMPONENTS", "CostEnsemble", "EnsembleConfig", "physics_bps", "simplex_lstsq"]

COMPONENTS = ("physics", "learned", "online")


class EnsembleConfig(BaseModel):
    """Parameters of :class:`CostEnsemble` (frozen; the defaults are written here only).

    Parameters
    ----------
    group : str or None, default=None
        Column of the group of each row for per-group weights; None: one weight vector.
    min_group_rows : int, default=500
        Fewer validation rows in a group: it uses the pooled weights.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    group: str | None = None
    min_group_rows: int = Field(500, ge=2)


def physics_bps(frame: pd.DataFrame, fill_bps: float = np.nan,
                columns: Sequence[str] = ("athl_pred_bps", "sqrt_pred_bps")) -> np.ndarray:
    """The row's physics prediction: the first finite of ``columns``, else ``fill_bps``."""
    out = np.full(len(frame), np.nan)
    for c in columns:
        if c in frame.columns:
            v = pd.to_numeric(frame[c], errors="coerce").to_numpy(np.float64)
            out = np.where(np.isfinite(out), out, v)
    return np.where(np.isfinite(out), out, fill_bps)


def simplex_lstsq(P: ArrayLike, y: ArrayLike, weight: ArrayLike | None = None) -> np.ndarray:
    """Weights ``w >= 0, sum(w) = 1`` minimizing ``sum_i v_i (y_i - P_i w)^2``, exactly.

    Every non-empty subset ``S`` of the columns is solved with ``sum(w_S) = 1`` (Lagrange: the
    KKT system of ``P_S' V P_S``); the feasible solution (``w_S >= 0``) with the lowest loss wins.

    Examples
    --------
    >>> P = np.array([[1.0, 0.0], [2.0, 5.0], [3.0, 1.0]])
    >>> simplex_lstsq(P, [1.0, 2.0, 3.0]).tolist()
    [1.0, 0.0]
    """
    P = np.asarray(P, np.float64)
    y = np.asarray(y, np.float64)
    v = np.ones(len(y)) if weight is None else np.asarray(weight, np.float64)
    if P.ndim != 2 or P.shape[0] != len(y) or len(v) != len(y):
        raise ValueError(f"simplex_lstsq: P {P.shape}, y {y.shape} and weight {v.shape} "
                         "must have one row per observation")
    ok = np.isfinite(y) & np.isfinite(P).all(axis=1) & np.isfinite(v)
    P, y, v = P[ok], y[ok], v[ok]
    k = P.shape[1]
    if len(y) == 0:
        raise ValueError("simplex_lstsq: no row with finite predictions, label and weight")
    best, best_loss = np.full(k, 1.0 / k), np.inf
    for size in range(1, k + 1):
        for cols in combinations(range(k), size):
            Ps = P[:, cols]
            A = np.zeros((size + 1, size + 1))
            A[:size, :size] = Ps.T @ (Ps * v[:, None])
            A[:size, size] = A[size, :size] = 1.0
            b = np.append(Ps.T @ (v * y), 1.0)
            ws = np.linalg.lstsq(A, b, rcond=None)[0][:size]
            if (ws < -1e-12).any():
                continue
            ws = np.clip(ws, 0.0, None)
            ws = ws / ws.sum()
            loss = float(np.sum(v * (y - Ps @ ws) ** 2))
            if not np.isfinite(best_loss) or loss < best_loss - 1e-12 * max(1.0, best_loss):
                best_loss = loss
                best = np.zeros(k)
                best[list(cols)] = ws
    return best


class CostEnsemble:
    """Convex combination of component predictions, weights fitted on a validation slice.

    Parameters
    ----------
    config : EnsembleConfig, optional
    components : sequence of str, default=("physics", "learned", "online")

    Examples
    --------
    >>> y = np.array([10.0, 20.0, 30.0, 40.0])
    >>> preds = {"physics": y + [5, -5, 5, -5], "learned": y, "online": y + 1}
    >>> ens = CostEnsemble().fit(preds, y)
    >>> ens.weights_["pooled"]
    {'physics': 0.0, 'learned': 1.0, 'online': 0.0}
    """

    def __init__(self, config: EnsembleConfig | None = None,
                 components: Sequence[str] = COMPONENTS) -> None:
        self.config = config or EnsembleConfig()
        self.components = tuple(components)
        self.weights_: dict[object, dict[str, float]] = {}

    def _matrix(self, preds: Mapping[str, ArrayLike]) -> np.ndarray:
        missing = [c for c in self.components if c not in preds]
        if missing:
            raise ValueError(f"CostEnsemble: predictions lack component(s) {missing}; "
                             f"expected {list(self.components)}")
        return np.column_stack([np.asarray(preds[c], np.float64) for c in self.components])

    def _groups(self, frame: pd.DataFrame | None, n: int) -> np.ndarray | None:
        g = self.config.group
        if g is None:
            return None
        if frame is None or g not in frame.columns:
            raise ValueError(f"CostEnsemble: per-group weights need the rows' {g!r} column; "
                             "pass frame=")
        vals = frame[g].to_numpy()
        if len(vals) != n:
            raise ValueError(f"CostEnsemble: frame has {len(vals)} rows, predictions {n}")
        return vals

    def fit(self, preds: Mapping[str, ArrayLike], y: ArrayLike, *,
            weight: ArrayLike | None = None, frame: pd.DataFrame | None = None) -> CostEnsemble:
        """Fit the weights on validation rows: component predictions, realized costs ``y``,
        optional regression weights (e.g. inverse noise) and the rows (for ``group``)."""
        P = self._matrix(preds)
        y = np.asarray(y, np.float64)
        v = np.ones(len(y)) if weight is None else np.asarray(weight, np.float64)
        self.weights_ = {"pooled": self._named(simplex_lstsq(P, y, v))}
        g = self._groups(frame, len(y))
        if g is not None:
            for key in pd.unique(g[pd.notna(g)]):
                m = g == key
                if m.sum() >= self.config.min_group_rows:
                    self.weights_[key] = self._named(simplex_lstsq(P[m], y[m], v[m]))
        return self

    def _named(self, w: np.ndarray) -> dict[str, float]:
        return {c: round(float(x), 12) for c, x in zip(self.components, w, strict=True)}

    def predict(self, preds: Mapping[str, ArrayLike], *, frame: pd.DataFrame | None = None
                ) -> np.ndarray:
        """The weighted prediction (bps) of each row; a component that is not finite in a row
        hands its weight to the others of that row."""
        if not self.weights_:
            raise ValueError("CostEnsemble: call fit() before predict()")
        P = self._matrix(preds)
        W = np.tile(self._vector("pooled"), (len(P), 1))
        g = self._groups(frame, len(P))
        if g is not None:
            for key in self.weights_:
                if key != "pooled":
                    W[g == key] = self._vector(key)
        fin = np.isfinite(P)
        W = np.where(fin, W, 0.0)
        tot = W.sum(axis=1)
        out = np.where(fin, P, 0.0)
        return np.where(tot > 0, (W * out).sum(axis=1) / np.where(tot > 0, tot, 1.0), np.nan)

    def _vector(self, key: object) -> np.ndarray:
        return np.array([self.weights_[key][c] for c in self.components])

    def weights_table(self) -> pd.DataFrame:
        """One row per weight vector (``pooled`` and each group): a column per component."""
        return pd.DataFrame([{"group": k, **w} for k, w in self.weights_.items()])
