"""Execution schedules: a parent order -> child slices (TWAP, VWAP, POV, Almgren–Chriss, IS urgency).

Every schedule is a pure function ``(order, *, grid/bins, ...) -> pandas.DataFrame`` with the
columns of :class:`ScheduleSchema` (``order_id, slice_ts, slice_end_ts, qty``; UTC nanoseconds),
checked on the way out by :func:`check_schedule`. Invariants (tested for every schedule):

* child quantities sum to the parent ``qty`` (exactly for integral lots): each schedule fixes a
  cumulative target fraction ``F`` at the end of each slice; the cumulative position is rounded to
  whole lots (``floor(F * n_lots + 1/2)``), the last slice completes the order and carries the odd
  lot, so the rounding remainder goes to a deterministic place and the position never drifts more
  than half a lot from the target;
* ``decision_ts <= slice_ts <= slice_end_ts <= end_ts``; quantities > 0 (empty slices are
  dropped); the output is a deterministic function of the inputs.

:func:`schedule_batch` is the vectorized form for many orders (flat numpy arrays, no Python loop
per order), used by the simulator; :func:`schedule_orders` wraps it for a ``parent_orders`` frame.

VWAP and the POV forecast use an intraday volume profile built **only from sessions before the
decision session** (the first session that closes after ``decision_ts``); see
:func:`volume_profile`.

Layout: the time grids and lot rounding are in ``models._schedules_grid``, the volume profiles
and the volume schedules' fractions in ``models._schedules_volume``; every public name is
importable from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, NamedTuple

import numpy as np
import pandas as pd
import pandera.pandas as pa
from numpy.typing import ArrayLike, NDArray
from pandera.typing import Series

from models._schedules_grid import (
    Flat,
    Floats,
    Ints,
    edges_grid,
    elapsed,
    round_lots,
    ts_ns,
    uniform_grid,
)
from models._schedules_volume import (
    BIN_NS,
    VolumeProfile,
    build_history,
    cum_curve,
    forecast_volume,
    pov_frac,
    volume_fracs,
    volume_profile,
)
from models.almgren_chriss import AlmgrenChrissParams, holdings_fraction, kappa

__all__ = [
    "KINDS",
    "ChildSlices",
    "ScheduleSchema",
    "VolumeProfile",
    "almgren_chriss",
    "check_schedule",
    "forecast_volume",
    "is_urgency",
    "pov",
    "schedule_batch",
    "schedule_orders",
    "twap",
    "volume_profile",
    "vwap",
]

Kind = Literal["twap", "vwap", "pov", "almgren_chriss", "is_urgency"]
KINDS: Final = ("twap", "vwap", "pov", "almgren_chriss", "is_urgency")
_TS = {"dtype_kwargs": {"unit": "ns", "tz": "UTC"}}


class ScheduleSchema(pa.DataFrameModel):
    """Child slices: one row per slice of a parent order with a positive quantity."""

    order_id: Series[str] = pa.Field(str_length={"min_value": 1})
    slice_ts: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    slice_end_ts: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    qty: Series[float] = pa.Field(gt=0)

    class Config:
        strict = True
        coerce = True

    @pa.dataframe_check(name="slice_end_ts >= slice_ts", element_wise=False)
    def _ordered(cls, df: pd.DataFrame) -> Series[bool]:
        return df["slice_end_ts"] >= df["slice_ts"]


class ChildSlices(NamedTuple):
    """Flat child arrays of :func:`schedule_batch` (sorted by order, then time)."""

    order_idx: Ints
    slice_ns: Ints
    child_qty: Floats


# --------------------------------------------------------------------------- batch
def _check_orders(dec: Ints, end: Ints, qty: Floats) -> None:
    if not (dec.shape == end.shape == qty.shape and dec.ndim == 1):
        raise ValueError(f"decision_ns, end_ns and qty must be 1-d arrays of one length, got "
                         f"shapes {dec.shape}, {end.shape}, {qty.shape}")
    bad = np.flatnonzero(end < dec)
    if bad.size:
        raise ValueError(f"order {int(bad[0])}: end_ns < decision_ns ({int(end[bad[0]])} < "
                         f"{int(dec[bad[0]])}); an order must end at or after its decision")
    bad = np.flatnonzero(~(qty > 0) | ~np.isfinite(qty))
    if bad.size:
        raise ValueError(f"order {int(bad[0])}: qty={qty[bad[0]]} must be finite and > 0")


def _schedule_flat(kind: str, dec: Ints, end: Ints, qty: Floats, *, n_slices: Any, slice_ns: Any,
                   lot: float, urgency: Any, kappa_t: Any, volume_history: pd.Series | None,
                   bin_ns: int, lookback_sessions: int, rate: float | None,
                   max_rate: float | None, calendar: str, flat: Flat | None = None,
                   ) -> tuple[Flat, Floats]:
    if kind not in KINDS:
        raise ValueError(f"unknown schedule kind={kind!r}; choose one of {', '.join(KINDS)}")
    extra = {"urgency": urgency, "kappa_t": kappa_t, "volume_history": volume_history,
             "rate": rate, "max_rate": max_rate}
    wanted = {"is_urgency": {"urgency"}, "almgren_chriss": {"kappa_t"},
              "vwap": {"volume_history"}, "pov": {"volume_history", "rate", "max_rate"}}
    for name, val in extra.items():
        if val is not None and name not in wanted.get(kind, set()):
            raise ValueError(f"`{name}` does not apply to kind={kind!r}; drop it")
    _check_orders(dec, end, qty)
    flat = flat if flat is not None else uniform_grid(dec, end, n_slices, slice_ns)
    s = elapsed(flat, dec, end)
    if kind == "twap":
        frac = s
    elif kind == "is_urgency":
        if urgency is None:
            raise ValueError("kind='is_urgency' needs `urgency` (>= 0; 0 is TWAP; urgency=3 "
                             "trades 82% of the order in the first half of the horizon)")
        u = np.broadcast_to(np.asarray(urgency, dtype=np.float64), dec.shape)
        if (u < 0).any() or not np.isfinite(u).all():
            raise ValueError(f"`urgency` must be finite and >= 0, got min {u.min()}")
        ui = u[flat.idx]
        frac = np.divide(np.expm1(-ui * s), np.expm1(-ui), out=s.copy(), where=ui > 0)
    elif kind == "almgren_chriss":
        if kappa_t is None:
            raise ValueError("kind='almgren_chriss' needs `kappa_t` = kappa*T (dimensionless; "
                             "models.almgren_chriss.kappa(params) * params.T)")
        kt = np.broadcast_to(np.asarray(kappa_t, dtype=np.float64), dec.shape)
        if (kt < 0).any() or not np.isfinite(kt).all():
            raise ValueError(f"`kappa_t` must be finite and >= 0, got min {kt.min()}")
        frac = 1.0 - holdings_fraction(kt[flat.idx], s)
    else:
        if volume_history is None:
            raise ValueError(f"kind={kind!r} needs `volume_history` (volume per bin indexed by "
                             "tz-aware bin starts)")
        if kind == "pov":
            if rate is None or not 0 < rate <= 1:
                raise ValueError(f"kind='pov' needs `rate` in (0, 1], got rate={rate}")
            max_rate = rate if max_rate is None else max_rate
            if not rate <= max_rate:
                raise ValueError(f"`max_rate={max_rate}` must be >= rate={rate}")
        h = build_history(volume_history, first_ns=int(dec.min()), last_ns=int(end.max()),
                          bin_ns=bin_ns, calendar=calendar)
        frac = volume_fracs(kind, flat, dec, end, qty, h, lookback_sessions,
                            float(rate or 0.0), float(max_rate or 0.0))
    return flat, round_lots(flat, frac, qty, lot)


def schedule_batch(kind: Kind, decision_ns: ArrayLike, end_ns: ArrayLike, qty: ArrayLike, *,
                   n_slices: ArrayLike | None = None, slice_ns: ArrayLike | None = None,
                   lot: float = 1.0, urgency: ArrayLike | None = None,
                   kappa_t: ArrayLike | None = None, volume_history: pd.Series | None = None,
                   bin_ns: int = BIN_NS, lookback_sessions: int = 20, rate: float | None = None,
                   max_rate: float | None = None, calendar: str = "XNYS") -> ChildSlices:
    """Schedule many parent orders at once on a uniform time grid (vectorized).

    Parameters
    ----------
    kind : {"twap", "vwap", "pov", "almgren_chriss", "is_urgency"}
        Schedule family.
    decision_ns, end_ns : array_like of int64
        Decision and end times (UTC epoch ns), one per order; ``end_ns >= decision_ns``.
    qty : array_like of float
        Parent quantities (> 0; unsigned).
    n_slices, slice_ns : array_like of int, optional
        Exactly one: slices per order (equal lengths), or the slice length in ns (the last slice
        of each order is cut at ``end_ns``). Scalars broadcast. A zero-duration order is one slice.
    lot : float, default=1.0
        Lot size; cumulative positions are rounded to whole lots (see the module docstring).
    urgency : array_like of float, optional
        ``is_urgency`` only: trade rate ``~ exp(-urgency * t/duration)``; 0 is TWAP.
    kappa_t : array_like of float, optional
        ``almgren_chriss`` only: ``kappa * T``; holdings ``sinh(kT (1-s))/sinh(kT)``.
    volume_history : pandas.Series, optional
        ``vwap`` / ``pov``: volume per bin (tz-aware bin starts) of **one symbol** (call once per
        symbol); each order's forecast uses only sessions before its decision session
        (:func:`volume_profile`).
    bin_ns, lookback_sessions, calendar
        Volume-profile settings (see :func:`volume_profile`).
    rate, max_rate : float, optional
        ``pov`` only: target participation of forecast volume, and the cap up to which it rises
        when ``rate`` cannot complete the order by ``end_ns`` (default: ``rate``); whatever the
        cap cannot absorb is traded in the last slice.

    Returns
    -------
    ChildSlices
        Flat ``(order_idx, slice_ns, child_qty)``, sorted by order then time, slices with zero
        quantity dropped. ``slice_ns`` is each child's slice start.

    Examples
    --------
    >>> out = schedule_batch("twap", [0, 0], [600, 0], [10.0, 5.0], n_slices=3)
    >>> out.order_idx.tolist(), out.slice_ns.tolist(), out.child_qty.tolist()
    ([0, 0, 0, 1], [0, 200, 400, 0], [3.0, 4.0, 3.0, 5.0])
    """
    dec = np.asarray(decision_ns, dtype=np.int64)
    end = np.asarray(end_ns, dtype=np.int64)
    q = np.asarray(qty, dtype=np.float64)
    flat, child = _schedule_flat(kind, dec, end, q, n_slices=n_slices, slice_ns=slice_ns,
                                 lot=lot, urgency=urgency, kappa_t=kappa_t,
                                 volume_history=volume_history, bin_ns=bin_ns,
                                 lookback_sessions=lookback_sessions, rate=rate,
                                 max_rate=max_rate, calendar=calendar)
    keep = child > 0
    return ChildSlices(flat.idx[keep], flat.start[keep], child[keep])


# --------------------------------------------------------------------------- frames
def _order(order: Any) -> tuple[str, float, int, int]:
    def get(key: str) -> Any:
        return order[key] if isinstance(order, Mapping | pd.Series) else getattr(order, key)

    qty = float(get("qty"))
    return (str(get("order_id")), qty, ts_ns(get("decision_ts"), "decision_ts"),
            ts_ns(get("end_ts"), "end_ts"))


def _frame(order_ids: NDArray[Any], flat: Flat, child: Floats) -> pd.DataFrame:
    keep = child > 0
    return pd.DataFrame({
        "order_id": pd.array(order_ids[flat.idx[keep]], dtype="str"),
        "slice_ts": pd.to_datetime(flat.start[keep], utc=True),
        "slice_end_ts": pd.to_datetime(flat.stop[keep], utc=True),
        "qty": child[keep],
    })


def check_schedule(schedule: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """Validate a schedule against :class:`ScheduleSchema` and its parent orders.

    Checks, per order: child quantities sum to ``qty`` (to 1e-12 relative; exact for integral
    lots), no slice starts before ``decision_ts``, none ends after ``end_ts``, every order is
    scheduled and no unknown order appears.

    Raises
    ------
    ValueError
        Naming the first offending order, the rule, and the values.
    """
    out = ScheduleSchema.validate(schedule)
    o = orders.set_index(orders["order_id"].astype(str))
    g = out.groupby("order_id", sort=False)
    agg = pd.DataFrame({"sum": g["qty"].sum(), "first": g["slice_ts"].min(),
                        "last": g["slice_end_ts"].max()})
    unknown = agg.index.difference(o.index)
    missing = o.index.difference(agg.index)
    if len(unknown) or len(missing):
        raise ValueError(f"schedule and orders disagree: unknown order_id(s) {list(unknown[:3])},"
                         f" unscheduled {list(missing[:3])}")
    o = o.loc[agg.index]
    rules = {
        "sum(child qty) == parent qty":
            ~np.isclose(agg["sum"].to_numpy(), o["qty"].to_numpy(dtype=float), rtol=1e-12, atol=0),
        "slice_ts >= decision_ts": (agg["first"] < o["decision_ts"]).to_numpy(),
        "slice_end_ts <= end_ts": (agg["last"] > o["end_ts"]).to_numpy(),
    }
    for rule, bad in rules.items():
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"order_id={agg.index[i]} violates {rule!r}: {agg.iloc[i].to_dict()}"
                             f" vs order {o.iloc[i][['qty', 'decision_ts', 'end_ts']].to_dict()}")
    return out


def _single(order: Any, kind: str, *, flat: Flat | None = None, n_slices: Any = None,
            slice_ns: Any = None, lot: float = 1.0, **kw: Any) -> pd.DataFrame:
    oid, qty, dec, end = _order(order)
    d, e, q = np.array([dec]), np.array([end]), np.array([qty])
    defaults = {"urgency": None, "kappa_t": None, "volume_history": None, "bin_ns": BIN_NS,
                "lookback_sessions": 20, "rate": None, "max_rate": None, "calendar": "XNYS"}
    flat, child = _schedule_flat(kind, d, e, q, n_slices=n_slices, slice_ns=slice_ns, lot=lot,
                                 flat=flat, **(defaults | kw))
    orders = pd.DataFrame({"order_id": [oid], "qty": [qty],
                           "decision_ts": pd.to_datetime([dec], utc=True),
                           "end_ts": pd.to_datetime([end], utc=True)})
    return check_schedule(_frame(np.array([oid], dtype=object), flat, child), orders)


def twap(order: Any, *, n_slices: int | None = None, slice_ns: int | None = None,
         lot: float = 1.0) -> pd.DataFrame:
    """Time-weighted schedule: quantity proportional to slice duration.

    ``order`` is a parent-order record (mapping, ``pandas.Series`` or object) with ``order_id,
    qty, decision_ts, end_ts``; exactly one of ``n_slices`` or ``slice_ns`` sets the grid.

    Examples
    --------
    >>> o = dict(order_id="A", qty=1000.0, decision_ts=pd.Timestamp("2024-11-04 15:00", tz="UTC"),
    ...          end_ts=pd.Timestamp("2024-11-04 15:30", tz="UTC"))
    >>> twap(o, n_slices=3)["qty"].tolist()
    [333.0, 334.0, 333.0]
    """
    return _single(order, "twap", n_slices=n_slices, slice_ns=slice_ns, lot=lot)


def is_urgency(order: Any, *, urgency: float, n_slices: int | None = None,
               slice_ns: int | None = None, lot: float = 1.0) -> pd.DataFrame:
    """Implementation-shortfall schedule, front-loaded by ``urgency``.

    The trade rate decays as ``exp(-urgency * s)`` over the horizon fraction ``s``: the cumulative
    fraction is ``(1 - exp(-urgency s)) / (1 - exp(-urgency))``; ``urgency=0`` is TWAP, larger
    values finish sooner (the continuous Almgren–Chriss trajectory with ``kappa*T`` large behaves
    alike).
    """
    return _single(order, "is_urgency", n_slices=n_slices, slice_ns=slice_ns, lot=lot,
                   urgency=urgency)


def almgren_chriss(order: Any, *, params: AlmgrenChrissParams, lot: float = 1.0) -> pd.DataFrame:
    """Almgren–Chriss optimal schedule: ``params.N`` equal slices over ``[decision_ts, end_ts]``.

    The child fractions are the model's trades ``n_k / X`` (they depend only on ``kappa*T`` and
    ``N``, not on ``X``), applied to the order's ``qty``; the model horizon ``params.T`` (trading
    days) is mapped linearly onto the order's wall-clock window. Build ``params`` from a calibrated
    impact model and an urgency ``lam`` with :func:`models.almgren_chriss.params_from_athl`.
    """
    return _single(order, "almgren_chriss", n_slices=params.N, lot=lot,
                   kappa_t=kappa(params) * params.T)


def vwap(order: Any, *, volume_history: pd.Series, bin_ns: int = BIN_NS,
         lookback_sessions: int = 20, calendar: str = "XNYS", lot: float = 1.0) -> pd.DataFrame:
    """Volume-weighted schedule on the profile bins, from **earlier sessions only**.

    Slices are the profile bins (``bin_ns`` from each session open) that overlap the order's
    window, cut at ``decision_ts`` and ``end_ts``; quantity follows the forecast volume of each
    slice (uniform within a bin). See :func:`volume_profile` for the causality rule.

    Raises
    ------
    ValueError
        When no earlier session exists, or the window has no forecast volume (outside hours).
    """
    _, _, dec, end = _order(order)
    fc = forecast_volume(volume_history, decision_ts=pd.Timestamp(dec, tz="UTC"),
                         end_ts=pd.Timestamp(end, tz="UTC"), bin_ns=bin_ns,
                         lookback_sessions=lookback_sessions, calendar=calendar)
    starts = fc.index.as_unit("ns").asi8
    flat = edges_grid(dec, end, np.r_[starts, starts + bin_ns])
    return _single(order, "vwap", flat=flat, lot=lot, volume_history=volume_history,
                   bin_ns=bin_ns, lookback_sessions=lookback_sessions, calendar=calendar)


def pov(order: Any, *, market_volume: pd.Series, rate: float, max_rate: float | None = None,
        bin_ns: int = BIN_NS, lot: float = 1.0) -> pd.DataFrame:
    """Participation schedule: ``rate`` x market volume per bin, capped at ``max_rate``.

    Parameters
    ----------
    market_volume : pandas.Series
        Volume per bin (tz-aware bin starts, bins of ``bin_ns``): a causal forecast
        (:func:`forecast_volume`) or, for an ex-post replay, realized volume.
    rate : float
        Target participation in (0, 1]; the order completes early when volume allows.
    max_rate : float, optional
        Cap (default ``rate``): when ``rate`` x volume cannot complete the order by ``end_ts``,
        participation rises uniformly up to ``max_rate``; what the cap cannot absorb is traded
        in the last slice (the only slice allowed above the cap).
    """
    oid, qty, dec, end = _order(order)
    max_rate = rate if max_rate is None else max_rate
    if rate is None or not 0 < rate <= 1 or not rate <= max_rate:
        raise ValueError(f"pov needs 0 < rate <= 1 and max_rate >= rate, got rate={rate}, "
                         f"max_rate={max_rate}")
    mv = market_volume.sort_index()
    b0 = mv.index.tz_convert("UTC").as_unit("ns").asi8
    b1, vol = b0 + bin_ns, mv.to_numpy(dtype=np.float64, na_value=0.0)
    flat = edges_grid(dec, end, np.r_[b0, b1])
    c_dec = cum_curve(b0, b1, vol, np.array([dec]), dec)
    total = cum_curve(b0, b1, vol, np.array([end]), dec) - c_dec
    at = cum_curve(b0, b1, vol, flat.stop, dec) - c_dec[0]
    frac = pov_frac(at, total, np.array([qty]), flat.idx, rate, max_rate)
    child = round_lots(flat, frac, np.array([qty]), lot)
    orders = pd.DataFrame({"order_id": [oid], "qty": [qty],
                           "decision_ts": pd.to_datetime([dec], utc=True),
                           "end_ts": pd.to_datetime([end], utc=True)})
    return check_schedule(_frame(np.array([oid], dtype=object), flat, child), orders)


def schedule_orders(orders: pd.DataFrame, kind: Kind, **kwargs: Any) -> pd.DataFrame:
    """Schedule every row of a ``parent_orders`` frame with :func:`schedule_batch`; checked.

    ``kwargs`` are those of :func:`schedule_batch` (``n_slices`` or ``slice_ns`` required).
    Returns the :class:`ScheduleSchema` frame, sorted by order (input order) then time.
    """
    dec = pd.DatetimeIndex(orders["decision_ts"]).tz_convert("UTC").as_unit("ns").asi8
    end = pd.DatetimeIndex(orders["end_ts"]).tz_convert("UTC").as_unit("ns").asi8
    qty = orders["qty"].to_numpy(dtype=np.float64)
    defaults = {"n_slices": None, "slice_ns": None, "lot": 1.0, "urgency": None,
                "kappa_t": None, "volume_history": None, "bin_ns": BIN_NS,
                "lookback_sessions": 20, "rate": None, "max_rate": None, "calendar": "XNYS"}
    unknown = set(kwargs) - set(defaults)
    if unknown:
        raise TypeError(f"schedule_orders got unknown argument(s) {sorted(unknown)}; "
                        f"known: {sorted(defaults)}")
    flat, child = _schedule_flat(kind, dec, end, qty, **(defaults | kwargs))
    ids = orders["order_id"].astype(str).to_numpy(dtype=object)
    return check_schedule(_frame(ids, flat, child), orders)
