"""Calibrate impact models on a desk's parent orders: bounded nonlinear least squares with standard errors.

Input, one row per parent order (the ``bestex calibrate-impact`` contract):

======================  ====================================================================
``is_bps``              realized implementation shortfall, bps of arrival, positive = cost
``qty``, ``adv``        order size and average daily volume, shares
``sigma``               daily volatility, decimal
``duration_days``       execution horizon, trading days (ATHL, and I-Star without ``pov``)
``shares_outstanding``  shares (ATHL only)
``pov``                 participation, decimal in (0, 1] (I-Star, optional: else
                        ``qty / (adv * duration_days)`` capped at 1)
======================  ====================================================================

The fit minimizes ``sum (model_bps - is_bps)^2`` with :func:`scipy.optimize.least_squares` inside
parameter bounds. Each model has one or two coefficients that enter linearly (sqrt ``y``, ATHL
``gamma`` and ``eta``, I-Star ``a1``): they are solved exactly (non-negative least squares) over a
small grid of the nonlinear parameters to pick the starting point, so the fit does not depend on a
hand-chosen start. Standard errors come from the Jacobian ``J`` at the optimum:
``cov = s^2 (J'J)^-1`` with ``s^2 = RSS/(n - p)``, or the HC1 sandwich
``n/(n-p) (J'J)^-1 J' diag(e^2) J (J'J)^-1`` with ``robust=True`` (heteroscedastic noise: the
shortfall's timing noise grows with ``sigma * sqrt(duration)``).

Rows are refused before fitting, the same way for every model (``_validate``): each cell the model
reads must be a number (a boolean is not; a boolean column is refused by name), finite, and in a
plausible domain for its unit (``_DOMAIN``: e.g. ``|is_bps| <= 1e5``, ``1e-8 <= sigma <= 10``,
sizes in ``[1e-9, 1e18]`` shares); what the model derives from a row must be too (``_DERIVED``:
participation ``qty/adv <= 100``, trade rate, inverse turnover ``shares_outstanding/adv``), and
its prediction and squared residual must be finite at every corner of the parameter box. One
refused row fails the whole call with a ``ValueError`` naming the source, the rows (0-based; the
CSV line too), the columns and the rules: the first five failures and a count.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from scipy.optimize import least_squares, nnls

from models.impact import ATHLImpact, ImpactModel, IStarImpact, SquareRootImpact

__all__ = ["ROWS_PER_PARAM", "CalibrationResult", "ModelName", "calibrate"]

ModelName = Literal["sqrt", "athl", "istar"]
ROWS_PER_PARAM = 10
"""A fit needs at least this many rows per fitted parameter."""

Data = dict[str, np.ndarray]


@dataclass(frozen=True)
class _Spec:
    """One model family: parameter bounds, defaults, what is fitted, what it reads."""

    cls: type[SquareRootImpact] | type[ATHLImpact] | type[IStarImpact]
    bounds: Mapping[str, tuple[float, float]]
    fit: tuple[str, ...]
    linear: tuple[str, ...]
    columns: tuple[str, ...]

    def model(self, params: Mapping[str, float]) -> ImpactModel:
        return self.cls.model_construct(**params)  # bounds were enforced by the optimizer

    def predict(self, params: Mapping[str, float], d: Data) -> np.ndarray:
        return self.model(params).expected_cost_bps(
            qty=d["qty"], adv=d["adv"], sigma_daily=d["sigma"], duration_days=d["duration_days"],
            shares_outstanding=d.get("shares_outstanding"), pov=d.get("pov"))


_SPECS: dict[str, _Spec] = {
    "sqrt": _Spec(SquareRootImpact, {"y": (0.0, 10.0), "exponent": (0.1, 1.0)},
                  fit=("y",), linear=("y",), columns=("qty", "adv", "sigma")),
    "athl": _Spec(ATHLImpact, {"gamma": (0.0, 10.0), "eta": (0.0, 10.0), "beta": (0.05, 1.5),
                               "delta": (0.0, 1.0), "alpha": (0.2, 2.0)},
                  fit=("gamma", "eta", "beta"), linear=("gamma", "eta"),
                  columns=("qty", "adv", "sigma", "duration_days", "shares_outstanding")),
    # Kissell's NLS bounds (REFERENCES.md §3.3), a1 widened to reach unseen desks.
    "istar": _Spec(IStarImpact, {"a1": (1.0, 5000.0), "a2": (0.1, 1.0), "a3": (0.1, 1.0),
                                 "a4": (0.1, 1.0), "b1": (0.5, 1.0)},
                   fit=("a1", "a2", "a3", "a4", "b1"), linear=("a1",),
                   columns=("qty", "adv", "sigma", "duration_days")),
}
_POSITIVE = ("qty", "adv", "sigma", "duration_days", "shares_outstanding", "pov")
_DOMAIN: dict[str, tuple[float, float, str]] = {
    # column: plausible [low, high] for its unit (subnormals and +-1e308 fall outside; the
    # sizes, sigma, duration and pov must also be > 0; a zero or negative shortfall is fine)
    "is_bps": (-1e5, 1e5, "bps of arrival: within 10x the price"),
    "qty": (1e-9, 1e18, "shares"),
    "adv": (1e-9, 1e18, "shares per day"),
    "shares_outstanding": (1e-9, 1e18, "shares"),
    "sigma": (1e-8, 10.0, "daily volatility, decimal"),
    "duration_days": (1e-9, 1e4, "trading days"),
    "pov": (1e-9, 1.0, "participation, decimal"),
}
_DERIVED: dict[str, tuple[tuple[str, ...], Callable[..., np.ndarray], float, float, str]] = {
    # derived quantity: (columns, formula, plausible [low, high], unit), checked on the rows whose
    # cells passed; the lower bounds of the ratios refuse underflow to 0 too
    "qty/adv": (("qty", "adv"), np.divide, 1e-15, 100.0,
                "participation: an order of at most 100 days of volume"),
    "qty/(adv*duration_days)": (("qty", "adv", "duration_days"),
                                lambda q, v, t: q / (v * t), 1e-20, 1e12,
                                "trade rate, a fraction of the market's volume rate"),
    "shares_outstanding/adv": (("shares_outstanding", "adv"), np.divide, 1e-3, 1e9,
                               "inverse turnover: shares outstanding over ADV"),
}


class CalibrationResult(BaseModel):
    """Fitted impact parameters with their standard errors (frozen).

    Attributes
    ----------
    model : {"sqrt", "athl", "istar"}
        The family fitted.
    params : dict of str to float
        Every parameter of the model: fitted ones and the fixed ones.
    std_errors : dict of str to float
        Standard error of each fitted parameter (``fixed`` ones have none).
    fixed : dict of str to float
        Parameters held at a given value.
    at_bounds : tuple of str
        Fitted parameters that ended on a bound (their standard error is not reliable).
    n : int
        Rows used.
    rmse_bps, r2 : float
        Root mean squared residual (bps) and ``1 - RSS/TSS``.
    robust : bool
        Whether ``std_errors`` are HC1 (heteroscedasticity-robust).
    by : str or None
        Column of the per-group fits in ``groups``; the top level is then the pooled fit.
    groups : dict of str to CalibrationResult
        One result per value of ``by`` (empty when ``by`` is None).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelName
    params: dict[str, float]
    std_errors: dict[str, float]
    fixed: dict[str, float]
    at_bounds: tuple[str, ...]
    n: int
    rmse_bps: float
    r2: float
    robust: bool
    by: str | None = None
    groups: dict[str, CalibrationResult] = {}

    def impact_model(self) -> ImpactModel:
        """The fitted model, ready for ``expected_cost_bps``."""
        return _SPECS[self.model].model(self.params)

    def to_json(self, indent: int | None = 1) -> str:
        """JSON text of the result (NaN standard errors become ``null``)."""
        return self.model_dump_json(indent=indent)


def _rows(mask: np.ndarray, index: pd.Index) -> str:
    bad = list(index[mask])
    more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
    return f"{bad[:10]}{more}"


def _show(value: object) -> str:
    """A cell as written: text quoted, a float exactly (``1e-320``, not ``9.99989e-321``)."""
    return repr(value) if isinstance(value, str) else repr(float(value)) if isinstance(
        value, float) else str(value)


def _cells(raw: pd.Series, name: str, source: str) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """A column as float64 (NaN where not a number) and, by row position, the cells refused."""
    dtype = raw.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise ValueError(f"{source}: column '{name}' holds booleans (dtype {dtype}), not numbers; "
                         "write the values themselves")
    if isinstance(dtype, pd.CategoricalDtype):
        raw = raw.astype(object)
    kind = raw.dtype.kind
    if kind in "iuf":
        return np.array(raw.to_numpy(np.float64, na_value=np.nan)), []
    if kind not in "OSU" and not pd.api.types.is_string_dtype(raw.dtype):
        raise ValueError(f"{source}: column '{name}' has dtype {raw.dtype}, not numbers; "
                         "write plain numbers")
    cells = raw.astype(object).to_numpy()
    boolean = np.array([isinstance(v, bool | np.bool_) for v in cells], bool)
    missing = pd.isna(raw).to_numpy() & ~boolean
    num = pd.to_numeric(pd.Series(np.where(boolean | missing, None, cells), dtype=object),
                        errors="coerce").to_numpy(np.float64, na_value=np.nan).copy()
    text = np.array([isinstance(v, str) and v.strip().lower().lstrip("+-") == "nan"
                     for v in cells], bool)
    bad = boolean | (np.isnan(num) & ~missing & ~text)
    num[bad] = np.nan
    why = [(int(i), f"{_show(cells[i])} violates 'a number'"
            + (" (a boolean)" if boolean[i] else "")) for i in np.flatnonzero(bad)]
    return num, why


def _in_domain(name: str, x: np.ndarray, lo: float, hi: float, positive: bool,
               unit: str) -> list[tuple[int, str]]:
    """Positions in ``x`` that are not finite, not positive (when ``positive``) or outside
    ``[lo, hi]``, each with the value and the rule it violates."""
    out = []
    for i in np.flatnonzero(~np.isfinite(x) | (positive & (x <= 0)) | (x < lo) | (x > hi)):
        v = float(x[i])
        if not np.isfinite(v):
            why = "violates 'finite'" + (" (missing or NaN)" if np.isnan(v) else "")
        elif positive and v <= 0:
            why = f"violates '{name} > 0'"
        else:
            why = f"violates '{name} {'>=' if v < lo else '<='} {lo if v < lo else hi:g}' ({unit})"
        out.append((int(i), f"{_show(v)} {why}"))
    return out


Failure = tuple[int, str, str]
"""A refused row: its position, where (``column 'x'`` or ``columns 'x', 'y'``) and why."""


def _cell_failures(df: pd.DataFrame, columns: Sequence[str], source: str
                   ) -> tuple[Data, list[Failure]]:
    """Each column read as float64; cells that are not numbers, not finite or outside ``_DOMAIN``."""
    data: Data = {}
    fails: list[Failure] = []
    for c in columns:
        num, why = _cells(df[c], c, source)
        fails += [(i, f"column '{c}'", w) for i, w in why]
        idx = np.setdiff1d(np.arange(len(df)), [i for i, _ in why])  # numbers, NaN or missing
        fails += [(int(idx[i]), f"column '{c}'", w)
                  for i, w in _in_domain(c, num[idx], *_DOMAIN[c][:2], c in _POSITIVE,
                                         _DOMAIN[c][2])]
        data[c] = num
    return data, fails


def _derived_failures(data: Data, rows: np.ndarray) -> list[Failure]:
    """Derived quantities (``_DERIVED``) of ``rows`` outside their domain (overflow, underflow)."""
    fails: list[Failure] = []
    for name, (cols, formula, lo, hi, unit) in _DERIVED.items():
        if all(c in data for c in cols):
            x = formula(*(data[c][rows] for c in cols))
            where = "columns " + ", ".join(f"'{c}'" for c in cols)
            fails += [(int(rows[i]), where, f"{name}={w}")
                      for i, w in _in_domain(name, x, lo, hi, True, unit)]
    return fails


def _model_failures(model: str, data: Data, rows: np.ndarray, fixed: Mapping[str, float],
                    columns: Sequence[str]) -> list[Failure]:
    """``rows`` whose prediction or squared residual is not finite at a corner of the parameter
    box (free parameters at their bounds, fixed ones at their value): what the fit would meet."""
    spec = _SPECS[model]
    sub = {k: v[rows] for k, v in data.items()}
    over = np.zeros(rows.size, bool)
    for values in itertools.product(*([fixed[p]] if p in fixed else spec.bounds[p]
                                      for p in spec.bounds)):
        pred = spec.predict(dict(zip(spec.bounds, values, strict=True)), sub)
        over |= ~np.isfinite(pred) | ~np.isfinite((pred - sub["is_bps"]) ** 2)
    where = "columns " + ", ".join(f"'{c}'" for c in columns)
    return [(int(i), where, f"overflows model '{model}' (its prediction or squared residual is "
             "not finite at a bound of its parameters)") for i in rows[over]]


def _refusal(model: str, df: pd.DataFrame, fails: list[Failure], source: str) -> ValueError:
    """One line: how many rows are refused, the first five failures, the rows of the rest."""
    fails = sorted(fails, key=lambda f: f[0])
    csv = source.lower().endswith((".csv", ".csv.gz"))
    plain = df.index.equals(pd.RangeIndex(len(df)))

    def at(i: int) -> str:
        return (f"row {i}" + (f" (line {i + 2})" if csv else "")
                + ("" if plain else f" (index {df.index[i]!r})"))

    shown = "; ".join(f"{at(i)}, {where}: {why}" for i, where, why in fails[:5])
    rest = pd.Index(sorted({i for i, _, _ in fails[5:]}))
    more = (f"; ... and {len(fails) - 5} more failures (rows "
            f"{_rows(np.ones(len(rest), bool), rest)})" if len(fails) > 5 else "")
    return ValueError(f"{source}: {len({i for i, _, _ in fails})} of {len(df)} rows refused "
                      f"before fitting model '{model}' (rows 0-based; fix or drop them): "
                      f"{shown}{more}")


def _validate(model: str, df: pd.DataFrame, columns: Sequence[str], fixed: Mapping[str, float],
              source: str) -> Data:
    """The one gate of every model: each row it reads is checked before anything is fitted.

    A cell must be a number (not a boolean, not text), finite, and inside ``_DOMAIN`` for its
    column; the row's derived quantities must be inside ``_DERIVED``; and the model's prediction
    and squared residual must be finite at every corner of its parameter box. Any refused row
    fails the call (:func:`_refusal`): a fit on the other rows would lose it silently.

    Returns
    -------
    dict of str to numpy.ndarray
        The columns as float64, with ``duration_days`` (ones when not read) and, for I-Star,
        ``pov`` (``qty / (adv * duration_days)`` capped at 1 when not read): ready for the fit.
    """
    data, fails = _cell_failures(df, columns, source)
    good = np.ones(len(df), bool)
    with np.errstate(all="ignore"):
        good[[i for i, _, _ in fails]] = False
        fails += _derived_failures(data, np.flatnonzero(good))
        good[[i for i, _, _ in fails]] = False
        data.setdefault("duration_days", np.ones(len(df)))
        if model == "istar" and "pov" not in data:
            data["pov"] = IStarImpact.pov_of(data["qty"], data["adv"], data["duration_days"])
        fails += _model_failures(model, data, np.flatnonzero(good), fixed, columns)
    if fails:
        raise _refusal(model, df, fails, source)
    return data


def _prepare(model: str, df: pd.DataFrame, source: str, by: str | None, free: Sequence[str],
             fixed: Mapping[str, float]) -> tuple[Data, pd.Series | None]:
    spec = _SPECS[model]
    columns = ["is_bps", *spec.columns]
    if model == "istar" and "pov" in df.columns:
        columns.remove("duration_days")
        columns.append("pov")
    missing = [c for c in [*columns, *([by] if by else [])] if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(map(repr, missing))} needed by "
                         f"model '{model}' (it reads {', '.join(columns)}); add them")
    need = ROWS_PER_PARAM * len(free)
    if df.empty:
        raise ValueError(f"{source}: no rows to fit: model '{model}' fits {len(free)} "
                         f"parameter(s) and needs at least {need} rows")
    if len(df) < need:
        raise ValueError(f"{source}: too few rows: {len(df)}, but model '{model}' fits {len(free)} "
                         f"parameter(s) and needs at least {need} ({ROWS_PER_PARAM} per parameter)")
    data = _validate(model, df, columns, fixed, source)
    if by is not None and df[by].isna().any():
        raise ValueError(f"{source}: column '{by}' (the grouping) is missing at rows (0-based) "
                         f"{_rows(df[by].isna().to_numpy(), df.index)}; fill it or calibrate pooled")
    return data, (df[by] if by else None)


def _start(spec: _Spec, free: Sequence[str], fixed: Mapping[str, float], d: Data) -> np.ndarray:
    """Best start over a grid of the free nonlinear parameters, linear ones solved by NNLS."""
    y = d["is_bps"]
    lin = [p for p in free if p in spec.linear]
    nonlin = [p for p in free if p not in spec.linear]
    grids = [np.linspace(*spec.bounds[p], 7)[1:-1] for p in nonlin]
    best: tuple[float, dict[str, float]] = (np.inf, {})
    for values in itertools.product(*grids):
        base = {**fixed, **dict(zip(nonlin, values, strict=True)), **dict.fromkeys(lin, 0.0)}
        offset = spec.predict(base, d)
        basis = np.column_stack([spec.predict({**base, p: 1.0}, d) - offset for p in lin])
        coef = nnls(basis, y - offset)[0] if lin else np.zeros(0)
        trial = {**base, **dict(zip(lin, coef, strict=True))}
        rss = float(np.sum((spec.predict(trial, d) - y) ** 2))
        if rss < best[0]:
            best = (rss, trial)
    if not best[1]:
        raise ValueError(f"no finite start on the grid of {', '.join(nonlin) or 'the linear fit'}: "
                         "the data overflow the model (rows are validated before; report it)")
    lo, hi = (np.array([spec.bounds[p][i] for p in free]) for i in (0, 1))
    return np.clip([best[1][p] for p in free], lo, hi)


def _fit(model: str, d: Data, free: Sequence[str], fixed: Mapping[str, float],
         robust: bool) -> CalibrationResult:
    spec = _SPECS[model]
    y = d["is_bps"]

    def resid(theta: np.ndarray) -> np.ndarray:
        return spec.predict({**fixed, **dict(zip(free, theta, strict=True))}, d) - y

    lo, hi = (np.array([spec.bounds[p][i] for p in free]) for i in (0, 1))
    res = least_squares(resid, _start(spec, free, fixed, d), bounds=(lo, hi), jac="3-point",
                        x_scale="jac", method="trf", xtol=1e-12, ftol=1e-12, gtol=1e-12)
    n, p = y.size, len(free)
    e, jac = res.fun, res.jac
    jtj_inv = np.linalg.pinv(jac.T @ jac)
    if robust:
        meat = (jac * (e * e)[:, None]).T @ jac
        cov = jtj_inv @ meat @ jtj_inv * n / (n - p)
    else:
        cov = jtj_inv * float(e @ e) / (n - p)
    rss, tss = float(e @ e), float(np.sum((y - y.mean()) ** 2))
    span = hi - lo
    at_bounds = tuple(q for q, x, a, b, s in zip(free, res.x, lo, hi, span, strict=True)
                      if min(x - a, b - x) <= 1e-6 * s)
    return CalibrationResult(
        model=model,  # type: ignore[arg-type]
        params={**fixed, **{q: float(x) for q, x in zip(free, res.x, strict=True)}},
        std_errors={q: float(np.sqrt(max(cov[i, i], 0.0))) for i, q in enumerate(free)},
        fixed=dict(fixed), at_bounds=at_bounds, n=n, rmse_bps=float(np.sqrt(rss / n)),
        r2=1.0 - rss / tss if tss > 0 else float("nan"), robust=robust)


def calibrate(model: ModelName, df: pd.DataFrame, *, by: str | None = None,
              fit: Sequence[str] | None = None, fixed: Mapping[str, float] | None = None,
              robust: bool = False, source: str = "input") -> CalibrationResult:
    """Fit an impact model to realized shortfalls, pooled and optionally per group.

    Parameters
    ----------
    model : {"sqrt", "athl", "istar"}
        Family: sqrt fits ``y`` (exponent 1/2); athl fits ``gamma, eta, beta`` (``delta=0.25``,
        ``alpha=1``); istar fits ``a1, a2, a3, a4, b1``.
    df : pandas.DataFrame
        One row per parent order, columns as in the module docstring (numbers or numeric strings).
    by : str, optional
        Column to group by (e.g. ``"symbol"``): each group is fitted alone into ``groups``; the
        top-level result is the pooled fit.
    fit : sequence of str, optional
        Parameters to fit instead of the family's default, e.g. ``("gamma", "eta", "beta",
        "delta")`` to fit ATHL's inverse-turnover exponent too.
    fixed : mapping of str to float, optional
        Values of the parameters that are not fitted (default: the model's published defaults).
    robust : bool, default=False
        HC1 (heteroscedasticity-robust) standard errors instead of ``s^2 (J'J)^-1``.
    source : str, default="input"
        Name of the data in error messages (``sources.desk.calibrate_file`` passes the path).

    Returns
    -------
    CalibrationResult

    Raises
    ------
    ValueError
        Unknown model or parameter; missing columns (named, with ``source``); no rows, or fewer
        than ``10 x fitted parameters`` rows (pooled, or in a group, named); a boolean column
        (named); rows refused by ``_validate`` (see the module docstring): non-numeric, missing,
        non-finite, non-positive or implausible values, or ones that overflow the model, with
        ``source``, the rows, the columns and the rules. Nothing is fitted then.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> qty = rng.uniform(1e3, 1e5, 200)
    >>> df = pd.DataFrame({"qty": qty, "adv": 1e6, "sigma": 0.02})
    >>> df["is_bps"] = 0.7 * 0.02 * np.sqrt(qty / 1e6) * 1e4 + rng.normal(0, 1, 200)
    >>> r = calibrate("sqrt", df)
    >>> round(r.params["y"], 2), r.n
    (0.7, 200)
    """
    if model not in _SPECS:
        raise ValueError(f"unknown impact model {model!r}; use one of {', '.join(get_args(ModelName))}")
    spec = _SPECS[model]
    free = tuple(spec.fit if fit is None else fit)
    unknown = [p for p in (*free, *(fixed or {})) if p not in spec.bounds]
    if unknown or not free:
        raise ValueError(f"model '{model}' has parameters {', '.join(spec.bounds)}; got "
                         f"fit={list(free)}, fixed={dict(fixed or {})}")
    defaults = spec.cls().model_dump(exclude={"kind", "trading_days_per_year"})
    fixed_all = {p: float({**defaults, **(fixed or {})}[p]) for p in spec.bounds if p not in free}
    data, groups = _prepare(model, df, source, by, free, fixed_all)
    pooled = _fit(model, data, free, fixed_all, robust)
    if groups is None:
        return pooled
    per: dict[str, CalibrationResult] = {}
    for key, idx in groups.groupby(groups, sort=True).indices.items():
        if idx.size < ROWS_PER_PARAM * len(free):
            raise ValueError(f"{source}: too few rows in group {by}={key!r}: {idx.size}, but model "
                             f"'{model}' fits {len(free)} parameter(s) and needs at least "
                             f"{ROWS_PER_PARAM * len(free)}; drop the group or calibrate pooled")
        per[str(key)] = _fit(model, {k: v[idx] for k, v in data.items()}, free, fixed_all, robust)
    return pooled.model_copy(update={"by": by, "groups": per})
