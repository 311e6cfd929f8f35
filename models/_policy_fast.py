r"""One parent order's plan decision in well under a millisecond (issue 14's latency target).

:func:`models.policy.decide` is the batch path: it builds each candidate's children as a frame
(:func:`models.policy.candidate_children`), their plan summaries
(:func:`models.desk_history.plan_summary`), stacks ``n_orders x n_candidates`` feature rows in
pandas and calls :meth:`models.cost_bundle.CostModelBundle.predict`. On one order nearly all of
that is fixed overhead (about 100 ms, most of it the volume profile rebuilt from the whole
history for VWAP and POV). :class:`FastPlanner` computes the same numbers for one order with
small numpy arrays:

* **one grid for all candidates**: every candidate works the order on the same uniform grid
  (``ceil(duration / child interval)`` slices, capped: ``uniform_grid``'s), so the grid and
  its elapsed fractions are built once; each distinct schedule (family, param) adds one row
  of cumulative target fractions (``_schedule_flat``'s formulas, with
  :func:`models.almgren_chriss.holdings_fraction`), rounded to whole shares row by row
  (``round_lots``' rule);
* **the volume profile is cached**: :func:`models._schedules_volume.build_history` once per
  symbol (and calendar span), the forecast bins once per symbol and decision session; then
  one :func:`models._schedules_volume.cum_curve` call gives VWAP and POV their fractions;
* **the plan summary on a candidates x slices matrix**: ``plan_summary``'s formulas, dropped
  (zero) slices as exact zeros, sums taken sequentially along each row (``bincount``'s
  order), so the numbers are those of ``plan_summary`` on this order alone; the rounding to
  whole shares and the summary run in one compiled loop (:func:`_plan_sums`) whose numpy
  reference is :func:`_round_rows` then :func:`_summary` (equal bit for bit, tested);
* **the features once per order**: when the row carries both parametric estimates (the
  serving state does), :func:`models._feature_scalar.derive_one` computes the state's features
  once in Python floats and only the plan's per candidate: the twin of ``_derive``, equal bit
  for bit (``tests/test_feature_scalar.py``), a third of the decision's time saved (0.60 ->
  0.40 ms p50); otherwise :func:`models.features.feature_columns` (the calibrations' pass
  included) on the order's state repeated once per candidate, the code ``decide`` runs;
* **the boosters in place**: the bundle's own ``_boosters`` on single-threaded copies of its
  boosters (OpenMP threads cost more than 14 rows of trees and make the tail erratic on busy
  cores), called through XGBoost's C function without its Python wrapper (:class:`_DenseCall`:
  half the cost; used only when it returns ``inplace_predict``'s numbers on a probe); the
  band as ``CostModelBundle._outputs`` forms it (the group's margin, the out-of-domain margin
  where a feature is outside the training domain, whose bounds are read once).

On the 14-candidate grid with the demo champion (100 + 100 rounds) that is about 0.3 ms per
order on an idle core (``benchmarks/bench_policy.py``); ``decide`` on one row takes ~100 ms,
and ~0.5 ms per order amortized over a batch.

Equality with :func:`models.policy.decide` (``tests/test_policy_fast.py``): the same chosen
candidate, every candidate's predicted mean, band and objective equal to 1e-9 relative (the
mean bit for bit). The differences are those of ``decide`` itself between a batch and one
order:

* ``plan_timing_var_days`` is summed per order here; ``plan_summary`` takes a batch's suffix
  sums from one reversed cumulative sum, which moves them by about ``n_orders`` ulps (so the
  noise scale and the band, ~1e-12 relative);
* a VWAP/POV schedule that cannot be built (no session before the decision, or VWAP without
  forecast volume in the window) falls back to TWAP for this order only; ``candidate_children``
  falls back for every order of the symbol in the batch;
* with ``explore > 0`` the draws come from the planner's own generator, one order at a time
  (``decide`` draws the batch at once): same propensities, other draws;
* a bundle without ``risk_fill_bps`` fills a missing timing risk with the median of the rows
  it prices (``noise_sd_bps``): the order's candidates here, the whole batch in ``decide``.
"""

from __future__ import annotations

import copy
import ctypes
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numba as nb
import numpy as np
import pandas as pd
import xgboost as xgb
from numpy.typing import NDArray

from models._domain import margins_of
from models._feature_registry import _STRATEGIES, NS_DAY
from models._feature_scalar import PLAN_DEPENDENT, derive_one
from models._feature_time import sessions_around
from models._schedules_volume import (
    BIN_NS,
    History,
    _decision_session,
    _forecast_bins,
    _profile,
    build_history,
    pov_frac,
)
from models._tree_eval import TreeEnsemble
from models.almgren_chriss import holdings_fraction
from models.desk_history import PLAN_COLUMNS
from models.features import FEATURES, STATE_INPUTS, derive_features, feature_columns
from models.policy import _NS_MIN, Z80, Candidate, PolicyConfig, candidate_grid
from models.simulator import SESSION_NS

_SESSION_NS: Final = float(SESSION_NS)

__all__ = ["FastDecision", "FastPlanner"]

_FAMILIES: Final = ("twap", "vwap", "pov", "almgren_chriss", "is_urgency")
_TIMES: Final = ("decision_ts", "end_ts")
_NUMBERS: Final = ("qty", "shares_outstanding", "sqrt_pred_bps", "athl_pred_bps",
                   *(c for c in STATE_INPUTS if c != "regime_known"))
"""The numeric inputs of :func:`models.features.feature_columns` (plus ``side``,
``regime_known`` and the two times): what a state row contributes to a candidate's features."""
_STATE_NUMBERS: Final = tuple(c for c in STATE_INPUTS if c != "regime_known")
_FEATURE_NAMES: Final = frozenset(f.name for f in FEATURES)
_LOOKBACK_SESSIONS: Final = 20  # candidate_children's schedule_batch defaults
_CALENDAR: Final = "XNYS"
_BETA: Final = 0.6  # plan_frame's defaults
_FAR: Final = np.iinfo(np.int64).max


@dataclass(frozen=True)
class FastDecision:
    """The plan chosen for one order, with every candidate's prediction.

    ``candidate`` is the index into :attr:`FastPlanner.grid` (``name`` its name); the
    ``pred_*`` and ``objective`` fields are the chosen candidate's, the arrays (one value per
    candidate) explain the choice. ``greedy`` is the objective's choice, ``explored`` whether
    exploration overrode it, ``propensity`` P(chosen | order)."""

    order_id: str | None
    candidate: int
    name: str
    greedy: int
    explored: bool
    propensity: float
    n_allowed: int
    pred_mean_bps: float
    pred_lo_bps: float
    pred_hi_bps: float
    pred_sd_bps: float
    objective: float
    mean_bps: NDArray[np.float64]
    lo_bps: NDArray[np.float64]
    hi_bps: NDArray[np.float64]
    objectives: NDArray[np.float64]
    allowed: NDArray[np.bool_]


class FastPlanner:
    """:func:`models.policy.decide` for one parent order at a time, built once per model.

    Parameters
    ----------
    bundle : models.cost_bundle.CostModelBundle
        The registered cost model (its boosters are copied once, single-threaded).
    grid : sequence of Candidate, optional
        Default :func:`models.policy.candidate_grid`.
    config : PolicyConfig, optional
    volume_history : dict of str to pandas.Series, optional
        Per symbol, volume per 5-minute bin of earlier sessions, for VWAP and POV (as
        ``decide`` takes it); a symbol without one is worked TWAP by those candidates.

    Raises
    ------
    TypeError
        ``bundle`` is not a :class:`~models.cost_bundle.CostModelBundle` (no boosters).
    ValueError
        A candidate of an unknown family.

    Examples
    --------
    >>> planner = FastPlanner(bundle, config=PolicyConfig(risk_aversion=0.5))  # doctest: +SKIP
    >>> d = planner.decide_one(state.iloc[0].to_dict())  # doctest: +SKIP
    >>> d.name, round(d.pred_mean_bps, 2)  # doctest: +SKIP
    ('almgren_chriss(kT=2)', 7.41)
    """

    def __init__(self, bundle: Any, *, grid: Sequence[Candidate] | None = None,
                 config: PolicyConfig | None = None,
                 volume_history: Mapping[str, pd.Series] | None = None) -> None:
        if not all(hasattr(bundle, a) for a in ("_boosters", "mean", "quantile", "features")):
            raise TypeError(f"FastPlanner needs a CostModelBundle (boosters, features, band), "
                            f"got {type(bundle).__name__}")
        self.bundle = bundle
        self.grid = tuple(grid or candidate_grid())
        self.config = config or PolicyConfig()
        self.volume_history = dict(volume_history or {})
        bad = [c.family for c in self.grid if c.family not in _FAMILIES]
        if bad:
            raise ValueError(f"unknown schedule family {bad[0]!r}; choose one of "
                             f"{', '.join(_FAMILIES)}")
        # the bundle's own prediction code on single-threaded copies of its boosters
        self._model = copy.copy(bundle)
        self._model.mean, self._model.quantile = (
            _dense_call(b, len(self.grid)) for b in (bundle.mean, bundle.quantile))
        # one schedule per distinct (family, param); candidates map onto them
        keys = [(c.family, c.param if c.family not in ("twap", "vwap") else 0.0)
                for c in self.grid]
        self._schedules = list(dict.fromkeys(keys))
        self._row_of = np.array([self._schedules.index(k) for k in keys])
        fam = np.array([f for f, _ in self._schedules], dtype=object)
        par = np.array([p for _, p in self._schedules], dtype=np.float64)
        self._ac, self._isu = ((np.flatnonzero(fam == f), par[fam == f][:, None])
                               for f in ("almgren_chriss", "is_urgency"))
        kt = self._ac[1]
        self._ac_log_sinh = (np.log(np.sinh(kt)) if kt.size and ((kt > 0) & (kt <= 20)).all()
                             else None)  # holdings_fraction's _log_sinh below its switch
        self._volume_rows = [(j, k) for j, k in enumerate(self._schedules)
                             if k[0] in ("vwap", "pov")]
        self._step = np.array([max(round(1 / c.passive), 1) if c.passive > 0 else 0
                               for c in self.grid])
        self._names = [c.name for c in self.grid]
        self._strategy = np.array([c.family for c in self.grid], dtype=object)
        self._labels: dict[tuple[int, ...], NDArray[np.object_]] = {}  # by the TWAP fallbacks
        # feature matrix columns: the model's, then the domain's other features
        dom = getattr(bundle, "domain", {}) or {}
        dom_names = [c for c, (lo, hi, _) in dom.items()
                     if c in _FEATURE_NAMES and np.isfinite(lo) and np.isfinite(hi)]
        self._columns = list(bundle.features) + [c for c in dom_names
                                                 if c not in bundle.features]
        self._n_features = len(bundle.features)
        unknown = [c for c in bundle.features if c not in _FEATURE_NAMES]
        if unknown:
            raise ValueError(f"the cost model needs feature column(s) {unknown} that "
                             "models.features does not derive; FastPlanner cannot price it")
        # decide's feature frame holds the FEATURES columns only (so does the group's)
        self._group = bundle.group_feature if bundle.group_feature in _FEATURE_NAMES else None
        self._dom_idx = np.array([self._columns.index(c) for c in dom_names], dtype=np.intp)
        self._dom_lo, self._dom_hi, nan_seen = (
            np.array([dom[c][k] for c in dom_names], dtype=np.float64) for k in range(3))
        self._dom_nan_ok = nan_seen.astype(bool)
        vary = set(PLAN_DEPENDENT)
        self._const_cols = [c for c in self._columns if c not in vary]
        self._vary_cols = [c for c in self._columns if c in vary]
        self._const_idx = np.array([self._columns.index(c) for c in self._const_cols], np.intp)
        self._vary_idx = np.array([self._columns.index(c) for c in self._vary_cols], np.intp)
        self._sessions: dict[int, tuple[bool, int, int]] = {}
        self._strategy_cols: dict[tuple[str, ...], dict[str, NDArray[np.float64]]] = {}
        self._histories: dict[tuple[str, int, int], History] = {}
        self._first_bin: dict[str, int] = {}
        self._bins: dict[tuple[str, int, int, int, int], Any] = {}
        self._rng = np.random.default_rng(np.random.SeedSequence([self.config.seed, 0x9011C7]))

    # ------------------------------------------------------------------ decide
    def decide_one(self, row: Mapping[str, Any] | pd.Series | pd.DataFrame, *,
                   allowed: Sequence[bool] | NDArray[np.bool_] | None = None) -> FastDecision:
        """Choose a candidate for one order.

        Parameters
        ----------
        row : mapping, pandas.Series or one-row pandas.DataFrame
            The order (``side, qty, decision_ts, end_ts``; ``order_id`` and ``symbol``
            optional) and its market state at the decision (:data:`models.features.STATE_INPUTS`,
            optional ``shares_outstanding, sqrt_pred_bps, athl_pred_bps``): a row of the
            ``state`` ``decide`` takes. Plan columns in it are ignored.
        allowed : array_like of bool, shape (n_candidates,), optional
            False where a candidate breaks a risk limit.

        Raises
        ------
        ValueError
            A frame with other than one row, a required column missing, a value that is not
            a number, or no allowed candidate with a finite prediction.
        """
        r = _one_row(row)
        cfg = self.config
        k = len(self.grid)
        for c in ("side", "qty", *_TIMES):
            if c not in r:
                raise ValueError(f"FastPlanner.decide_one: the row has no {c!r}; it needs the "
                                 "order (side, qty, decision_ts, end_ts) and its market state")
        dec, end = _ns(r["decision_ts"], "decision_ts"), _ns(r["end_ts"], "end_ts")
        qty = _number(r["qty"], "qty")
        if end < dec or not (qty > 0 and math.isfinite(qty)):
            raise ValueError(f"FastPlanner.decide_one: order {r.get('order_id')!r} has "
                             f"qty={qty}, decision_ts..end_ts = {dec}..{end} ns; it needs "
                             "qty > 0 and end_ts >= decision_ts")
        plan = self._plan(dec, end, qty, str(r.get("symbol", "")))
        x64, fc = self._matrix(r, dec, end, qty, plan)
        mean, lo, hi = self._predict(x64, fc)
        sd = (hi - lo) / (2 * Z80)
        obj = mean + cfg.risk_aversion * sd
        ok = np.ones(k, bool) if allowed is None else np.asarray(allowed, bool).reshape(k)
        ok = ok & np.isfinite(obj)
        n_ok = int(ok.sum())
        if n_ok == 0:
            raise ValueError(f"order {r.get('order_id')!r}: no candidate within the limits has "
                             "a finite prediction")
        greedy = int(np.argmin(np.where(ok, obj, np.inf)))
        choice, explored = greedy, False
        if cfg.explore > 0:  # decide's epsilon-greedy, drawn for this order alone
            explored = bool(self._rng.random() < cfg.explore)
            u = self._rng.random()
            if explored:
                choice = int(np.argmax(np.cumsum(ok) > math.floor(u * n_ok)))
        prop = (1 - cfg.explore if choice == greedy else 0.0) + cfg.explore / n_ok
        oid = r.get("order_id")
        return FastDecision(
            order_id=None if oid is None else str(oid), candidate=choice,
            name=self._names[choice], greedy=greedy, explored=explored and choice != greedy,
            propensity=float(prop), n_allowed=n_ok, pred_mean_bps=float(mean[choice]),
            pred_lo_bps=float(lo[choice]), pred_hi_bps=float(hi[choice]),
            pred_sd_bps=float(sd[choice]), objective=float(obj[choice]), mean_bps=mean,
            lo_bps=lo, hi_bps=hi, objectives=obj, allowed=ok)

    # ------------------------------------------------------------------ the model
    def _matrix(self, r: Mapping[str, Any], dec: int, end: int, qty: float,
                plan: dict[str, NDArray[Any]]
                ) -> tuple[NDArray[np.float64], dict[str, NDArray[Any]]]:
        """The candidates' feature rows (``self._columns``, float64) and the columns the band
        reads. A row with both parametric estimates (finite) takes the scalar path
        (:func:`models._feature_scalar.derive_one`: the state's features once, in floats,
        the plan's per candidate); any other the serving code on the repeated row."""
        given = [r.get(c) for c in ("sqrt_pred_bps", "athl_pred_bps")]
        try:
            scalar = all(v is not None and math.isfinite(v) for v in given)
        except TypeError:
            scalar = False
        if scalar:
            return self._matrix_scalar(r, dec, end, qty, plan)
        k = len(self.grid)
        names = [c for c in _NUMBERS if c in r]
        try:
            values = [float(r[c]) for c in names]
        except (TypeError, ValueError):
            values = [_number(r[c], c) for c in names]
        block = np.empty((len(names), k))
        block[:] = np.array(values)[:, None]
        cols: dict[str, Any] = dict(zip(names, block, strict=True))
        ints = np.empty((3, k), np.int64)
        ints[0], ints[1], ints[2] = int(r["side"]), dec, end
        cols["side"] = ints[0]
        cols["decision_ts"], cols["end_ts"] = ints[1:].view("datetime64[ns]")
        if "regime_known" in r:
            cols["regime_known"] = np.full(k, r["regime_known"], dtype=object)
        cols.update(plan)  # the plan inputs and each candidate's executed family
        fc = self._features(cols)
        return np.array([fc[c] for c in self._columns]).T, fc

    def _matrix_scalar(self, r: Mapping[str, Any], dec: int, end: int, qty: float,
                       plan: dict[str, NDArray[Any]]
                       ) -> tuple[NDArray[np.float64], dict[str, NDArray[Any]]]:
        try:
            state = {c: float(r[c]) if c in r else math.nan for c in _STATE_NUMBERS}
            so = float(r["shares_outstanding"]) if "shares_outstanding" in r else math.nan
        except (TypeError, ValueError):
            state = {c: _number(r[c], c) if c in r else math.nan for c in _STATE_NUMBERS}
            so = _number(r.get("shares_outstanding"), "shares_outstanding")
        for c in ("sqrt_pred_bps", "athl_pred_bps"):
            state[c] = float(r[c])
        const, vary = derive_one(
            state, regime_known=r.get("regime_known"), side=int(r["side"]), qty=qty,
            decision_ns=dec, end_ns=end, session=self._session(dec), shares_outstanding=so,
            plan=plan, strategy_onehot=self._onehot(plan["strategy"]),
            cfg=self.bundle.feature_config)
        x64 = np.empty((len(self.grid), len(self._columns)))
        x64[:, self._const_idx] = [const[c] for c in self._const_cols]
        if self._vary_cols:
            x64[:, self._vary_idx] = np.array([vary[c] for c in self._vary_cols]).T
        fc = {"timing_risk_bps": vary["timing_risk_bps"]}
        if self._group is not None:
            g = vary.get(self._group)
            fc[self._group] = g if g is not None else np.full(len(self.grid), const[self._group])
        return x64, fc

    def _session(self, dec: int) -> tuple[bool, int, int]:
        """``_Sessions.lookup`` of the decision's UTC day, cached per day."""
        day = dec // NS_DAY
        got = self._sessions.get(day)
        if got is None:
            cal = self.bundle.feature_config.calendar
            ok, op, cl = sessions_around(np.array([day]), cal).lookup(np.array([day]))
            got = self._sessions[day] = (bool(ok[0]), int(op[0]), int(cl[0]))
        return got

    def _onehot(self, labels: NDArray[np.object_]) -> dict[str, NDArray[np.float64]]:
        """``strategy_<family>`` of each candidate, cached per label row."""
        key = tuple(labels)
        got = self._strategy_cols.get(key)
        if got is None:
            strat = np.asarray(labels, dtype=object).astype(str)
            got = self._strategy_cols[key] = {f"strategy_{k}": (strat == k).astype(np.float64)
                                              for k in _STRATEGIES}
        return got

    def _features(self, cols: dict[str, Any]) -> dict[str, NDArray[Any]]:
        """:func:`models.features.feature_columns` of the candidates' rows. When the row
        gives both parametric estimates (finite), ``feature_columns`` keeps them and its
        calibration pass is skipped: :func:`models.features.derive_features` alone."""
        cfg = self.bundle.feature_config
        given = [cols.get(c) for c in ("sqrt_pred_bps", "athl_pred_bps")]
        if all(v is not None and np.isfinite(v[0]) for v in given):
            fc = derive_features(cols, config=cfg)
            fc["sqrt_pred_bps"], fc["athl_pred_bps"] = (np.array(v) for v in given)
            return fc
        return feature_columns(cols, config=cfg, calibrations=self.bundle.calibrations)

    def _predict(self, x64: NDArray[np.float64], fc: dict[str, NDArray[Any]]
                 ) -> tuple[NDArray[np.float64], ...]:
        """``CostModelBundle.predict``'s ``(mean, lo, hi)`` on the candidates' feature rows
        (``x64``: candidates x ``self._columns``; ``fc``: the columns the band reads)."""
        b = self._model
        x = np.ascontiguousarray(x64[:, :self._n_features], dtype=np.float32)
        sc = b.scale(fc)
        mean, q = b._boosters(x, sc)
        if not b.out_of_domain_rules:  # CostModelBundle._predict
            m = b.margin * sc
            return mean, q[:, 0] - m, q[:, -1] + m
        # CostModelBundle._outputs (no venue column on feature rows: no physics fallback)
        m = margins_of(fc, b.margin, self._group, b.group_margins)
        if b.ood_margin is not None and self._dom_idx.size:
            v = x64[:, self._dom_idx]
            with np.errstate(invalid="ignore"):  # models._domain.outside_matrix
                out = (v < self._dom_lo) | (v > self._dom_hi) | (~np.isfinite(v)
                                                                 & ~self._dom_nan_ok)
            m = np.where(out.any(axis=1), m + (b.ood_margin - b.margin), m)
        return mean, q[:, 0] - m * sc, q[:, -1] + m * sc

    # ------------------------------------------------------------------ the plans
    def _plan(self, dec: int, end: int, qty: float, symbol: str) -> dict[str, NDArray[Any]]:
        """The plan inputs (:data:`models.features.PLAN_INPUTS` but ``strategy``) of every
        candidate: ``plan_summary`` of ``candidate_children`` for this order."""
        cfg = self.config
        n_sl = min(max(math.ceil((end - dec) / (cfg.child_interval_min * _NS_MIN)), 1),
                   cfg.max_children)
        start, stop, s = _grid_one(dec, end, n_sl)
        u, m = len(self._schedules), s.size
        frac = np.empty((u, m))
        frac[:] = s  # twap, and candidate_children's fallback for VWAP / POV
        rows, kt = self._ac  # _schedule_flat's fractions, all rows of a family at once
        if rows.size and self._ac_log_sinh is not None and m > 1 and s[0] > 0:
            # holdings_fraction for 0 < kT <= 20 and 0 < s < 1 (every slice but the last,
            # which completes the order): exp(log sinh(kT (1 - s)) - log sinh(kT))
            frac[rows, :-1] = 1.0 - np.exp(np.log(np.sinh(kt * (1.0 - s[:-1])))
                                           - self._ac_log_sinh)
        elif rows.size:
            frac[rows] = 1.0 - holdings_fraction(kt, s)
        rows, ui = self._isu
        if rows.size:
            frac[rows] = np.divide(np.expm1(-ui * s), np.expm1(-ui),
                                   out=_rows_of(s, rows.size), where=ui > 0)
        twap_rows = []  # VWAP / POV schedules worked TWAP (labelled so, as candidate_children)
        if self._volume_rows:
            curve = self._volume_curve(stop, dec, end, symbol)
            for j, (fam, rate) in self._volume_rows:
                if curve is not None and fam == "vwap" and curve[1][0] > 0:
                    frac[j] = curve[0] / curve[1]
                elif curve is not None and fam == "pov" and 0 < rate <= 1 \
                        and rate <= cfg.pov_max_rate:
                    frac[j] = pov_frac(curve[0], curve[1], np.array([qty]),
                                       np.zeros(m, np.int64), rate, cfg.pov_max_rate)
                else:
                    twap_rows.append(j)
        sums, act_w, act_z = _plan_sums(frac, float(qty), self._row_of, self._step, start,
                                        dec, end)
        rate = (act_w * act_z ** _BETA).cumsum(axis=1)[:, -1]  # sequential, as bincount
        out = dict(zip(PLAN_COLUMNS, (*sums, rate), strict=True))
        key = tuple(twap_rows)
        labels = self._labels.get(key)
        if labels is None:
            labels = self._labels[key] = np.where(np.isin(self._row_of, twap_rows), "twap",
                                                  self._strategy).astype(object)
        out["strategy"] = labels.copy()
        return out

    def _volume_curve(self, stop: NDArray[np.int64], dec: int, end: int, symbol: str
                      ) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
        """``volume_fracs``' forecast volume from the decision to each slice end and to
        ``end`` (``at``, ``total``) on the cached history of ``symbol``; None where the
        schedule cannot be built (no history, no session before the decision session: then
        ``candidate_children`` works the order TWAP)."""
        vh = self.volume_history.get(symbol)
        if vh is None:
            return None
        first = self._first_bin.get(symbol)
        if first is None:
            first = self._first_bin[symbol] = int(vh.index.min().value) if len(vh) else dec
        h_key = (symbol, *_years(first, dec, end))
        h = self._histories.get(h_key)
        if h is None:
            h = self._histories[h_key] = build_history(vh, first_ns=dec, last_ns=end,
                                                        bin_ns=BIN_NS, calendar=_CALENDAR)
        sess = int(_decision_session(h, dec))
        j_last = int(np.searchsorted(h.opens, end, side="right") - 1)
        b_key = (*h_key, sess, j_last)
        bins = self._bins.get(b_key, False)
        if bins is False:
            try:
                prof, adv, _ = _profile(h, sess, _LOOKBACK_SESSIONS)
                origin = int(h.opens[min(sess, h.opens.size - 1)])
                bins = (*_curve(*_forecast_bins(h, sess, j_last, prof, adv), origin), origin)
            except ValueError:  # no session with volume before the decision session
                bins = None
            self._bins[b_key] = bins
        if bins is None:
            return None
        xp, fp, origin = bins  # cum_curve's breakpoints, read once per session
        t = (np.concatenate([[dec, end], stop]) - origin).astype(np.float64)
        c = np.interp(t, xp, fp) if xp is not None else np.zeros(t.size)
        return c[2:] - c[0], np.array([c[1] - c[0]])

    @staticmethod
    def records(state: pd.DataFrame) -> list[dict[str, Any]]:
        """The rows of a ``state`` frame as the mappings :meth:`decide_one` reads fastest."""
        return state.to_dict("records")


# =========================================================================== boosters
class _DenseCall:
    """``Booster.inplace_predict`` of a dense float32 matrix through XGBoost's C function
    alone (``XGBoosterPredictFromDense``, what ``inplace_predict`` calls): the Python
    wrapper around it costs as much as 14 rows of 100 trees. Same arguments (``missing``
    NaN, values, all trees), same numbers; :func:`_dense_call` checks that on a probe."""

    def __init__(self, booster: Any, lib: Any) -> None:
        self._booster, self._lib = booster, lib
        self._args = json.dumps({"type": 0, "training": False, "iteration_begin": 0,
                                 "iteration_end": 0, "missing": math.nan,
                                 "strict_shape": False, "cache_id": 0}).encode()

    def inplace_predict(self, data: NDArray[np.float32], *, missing: float = math.nan
                        ) -> NDArray[np.float32]:
        if not (isinstance(missing, float) and math.isnan(missing)):
            return self._booster.inplace_predict(data, missing=missing)
        x = np.ascontiguousarray(data, dtype=np.float32)
        face = (f'{{"data": [{x.ctypes.data}, true], "shape": [{x.shape[0]}, {x.shape[1]}], '
                '"strides": null, "typestr": "<f4", "version": 3}').encode()
        preds = ctypes.POINTER(ctypes.c_float)()
        shape = ctypes.POINTER(ctypes.c_uint64)()
        dims = ctypes.c_uint64()
        if self._lib.XGBoosterPredictFromDense(
                self._booster.handle, face, self._args, None, ctypes.byref(shape),
                ctypes.byref(dims), ctypes.byref(preds)) != 0:
            raise RuntimeError(f"XGBoost prediction failed: "
                               f"{self._lib.XGBGetLastError().decode()}")
        out = np.empty(tuple(int(shape[i]) for i in range(dims.value)), np.float32)
        ctypes.memmove(out.ctypes.data, preds, out.nbytes)
        return out


def _dense_call(booster: Any, n_rows: int) -> Any:
    """A single-threaded copy of ``booster`` (OpenMP threads cost more than a few rows of
    trees and make the tail erratic when the cores are busy), predicting through
    :class:`_DenseCall` when that gives ``inplace_predict``'s numbers on a probe (else the
    copy itself)."""
    b = booster.copy()
    b.set_param({"nthread": 1})
    probe = np.random.default_rng(0).normal(size=(n_rows, b.num_features())).astype(np.float32)
    probe[::3, ::5] = np.nan
    try:  # the trees walked by a compiled loop: a tenth of XGBoost's per-call cost
        trees = TreeEnsemble(b)
        if np.array_equal(trees.inplace_predict(probe), b.inplace_predict(probe,
                                                                          missing=np.nan)):
            return trees
    except ValueError:
        pass
    lib = getattr(xgb.core, "_LIB", None)
    if lib is None or not hasattr(lib, "XGBoosterPredictFromDense"):
        return b
    fast = _DenseCall(b, lib)
    try:
        same = np.array_equal(fast.inplace_predict(probe),
                              b.inplace_predict(probe, missing=np.nan))
    except (RuntimeError, ValueError, TypeError):
        same = False
    return fast if same else b


# =========================================================================== helpers
def _curve(start: NDArray[np.int64], stop: NDArray[np.int64], vol: NDArray[np.float64],
           origin: int) -> tuple[NDArray[np.float64] | None, NDArray[np.float64] | None]:
    """:func:`models._schedules_volume.cum_curve`'s interpolation breakpoints ``(xp, fp)``
    (None without bins: the curve is 0)."""
    if start.size == 0:
        return None, None
    c = np.cumsum(vol)
    xp = np.column_stack([start, stop]).ravel() - origin
    return xp.astype(np.float64), np.column_stack([c - vol, c]).ravel()


def _grid_one(dec: int, end: int, n_slices: int
              ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Slice starts, ends and elapsed fractions of one order: ``uniform_grid`` and
    ``elapsed`` of :mod:`models._schedules_grid` (``b_j = dec + floor(j D / n)``; a
    zero-duration order is one slice, fully elapsed)."""
    dur = end - dec
    n = 1 if dur == 0 else n_slices
    j = np.arange(n + 1, dtype=np.int64)
    q, r = divmod(dur, n)
    b = j * q + (j * r) // n
    s = b[1:] / dur if dur > 0 else np.ones(n)
    return dec + b[:-1], dec + b[1:], s


@nb.njit(cache=True, nogil=True)
def _plan_sums(frac, qty, row_of, step, t, dec, end):  # pragma: no cover - compiled
    """:func:`_round_rows` then :func:`_summary` of ``child[row_of]`` in one compiled loop,
    the same operations in the same order (bit for bit: ``tests/test_policy_fast.py``):
    ``(5, n_candidates)``, the rows of :data:`models.desk_history.PLAN_COLUMNS`, the last
    (``plan_rate_shape``) still to be summed: its terms ``w (w / slot) ** beta`` need numpy's
    ``power`` (SIMD on this CPU: an ulp from libm's ``pow``), so ``(w, w / slot)`` of each
    active child come back, zeros elsewhere."""
    u, m = frac.shape
    n_lots = math.floor(qty + 1e-9)
    child = np.empty((u, m))
    for r in range(u):  # round_lots: cumulative whole shares, the last slice completes
        prev = 0
        for j in range(m):
            f = min(max(frac[r, j], 0.0), 1.0)
            c = n_lots if j == m - 1 else math.floor(f * n_lots + 0.5)
            c = max(c, prev)
            child[r, j] = float(c - prev)
            prev = c
        child[r, m - 1] += max(qty - n_lots, 0.0)
    k = row_of.shape[0]
    out = np.zeros((4, k))
    act_w = np.zeros((k, m))
    act_z = np.zeros((k, m))
    window = max(end - dec, 1) / _SESSION_NS
    w = np.empty(m)
    s_k = np.empty(m)
    nxt = np.empty(m, np.int64)
    for i in range(k):
        row = child[row_of[i]]
        total = 0.0
        for j in range(m):
            total += row[j]
        for j in range(m):
            w[j] = row[j] / total
        acc = 0.0
        for j in range(m - 1, -1, -1):
            acc = w[j] if j == m - 1 else acc + w[j]
            s_k[j] = acc
        nk = end
        for j in range(m - 1, -1, -1):  # the next child's start, else the order's end
            nxt[j] = nk
            if row[j] > 0:
                nk = t[j]
        st = step[i]
        rank = 0
        a0 = a1 = a2 = a3 = 0.0
        for j in range(m):
            if row[j] <= 0:
                continue
            passive = st > 0 and rank % st == st - 1
            rank += 1
            slot = max(nxt[j] - t[j], 1_000_000_000) / _SESSION_NS
            tau = max(t[j] - dec, 0) / _SESSION_NS
            a0 += 1.0
            if passive:
                a1 += w[j]
            a2 += w[j] * tau / window
            a3 += tau * w[j] * (2 * s_k[j] - w[j])
            if not passive:
                act_w[i, j] = w[j]
                act_z[i, j] = w[j] / slot
        out[0, i], out[1, i], out[2, i], out[3, i] = a0, a1, a2, a3
    return out, act_w, act_z


def _round_rows(frac: NDArray[np.float64], qty: float) -> NDArray[np.float64]:
    """``round_lots`` (lot 1) of rows that are each one schedule of the same order: the
    cumulative position rounded to whole shares, the last slice completing the order."""
    n_lots = math.floor(qty + 1e-9)
    cum = np.floor(np.clip(frac, 0.0, 1.0) * n_lots + 0.5).astype(np.int64)
    cum[:, -1] = n_lots
    cum = np.maximum.accumulate(cum, axis=1)
    child = np.diff(cum, axis=1, prepend=0).astype(np.float64)
    child[:, -1] += max(qty - n_lots, 0.0)
    return child


def _summary(child: NDArray[np.float64], t: NDArray[np.int64], dec: int, end: int,
             step: NDArray[np.int64]) -> dict[str, NDArray[np.float64]]:
    """:func:`models.desk_history.plan_summary` of one order's candidates: ``child`` is
    ``(n_candidates, n_slices)`` (0 = no child in that slice), ``t`` the slice starts,
    ``step`` the passive pattern (every ``step``-th child rests; 0 = none). Sums run
    sequentially along each row, as ``bincount`` runs along a parent's children."""
    keep = child > 0
    w = child / child.cumsum(axis=1)[:, -1:]
    rests = step[:, None] > 0
    safe = np.maximum(step, 1)[:, None]
    if keep.all():  # every slice has its child: ranks are slice numbers, next child is next
        passive = rests & (np.arange(t.size) % safe == safe - 1)
        nxt = np.append(t[1:], end)
    else:
        passive = keep & rests & ((keep.cumsum(axis=1) - 1) % safe == safe - 1)
        tk = np.where(keep, t, _FAR)  # the next child's start, else the order's end
        nk = np.minimum.accumulate(tk[:, ::-1], axis=1)[:, ::-1]
        nxt = np.concatenate([nk[:, 1:], np.full((len(child), 1), _FAR)], axis=1)
        nxt = np.where(nxt == _FAR, end, nxt)
    slot = np.maximum(nxt - t, 1_000_000_000) / SESSION_NS
    tau = np.maximum(t - dec, 0) / SESSION_NS
    window = max(end - dec, 1) / SESSION_NS
    s_k = w[:, ::-1].cumsum(axis=1)[:, ::-1]
    terms = np.stack([keep, w * passive, w * tau / window, tau * w * (2 * s_k - w),
                      np.where(keep & ~passive, w * (w / slot) ** _BETA, 0.0)])
    sums = terms.cumsum(axis=2)[:, :, -1]  # sequential, as bincount
    return dict(zip(PLAN_COLUMNS, sums, strict=True))


def _rows_of(s: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """``np.tile(s, (n, 1))`` without its Python overhead."""
    out = np.empty((n, s.size))
    out[:] = s
    return out


def _one_row(row: Any) -> Mapping[str, Any]:
    if isinstance(row, pd.DataFrame):
        if len(row) != 1:
            raise ValueError(f"FastPlanner.decide_one takes one order, got a frame of "
                             f"{len(row)} rows; use models.policy.decide for a batch")
        row = row.iloc[0]
    if isinstance(row, pd.Series):
        return dict(zip(row.index, row.to_numpy(), strict=True))
    return row


def _number(v: Any, name: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        if v is None or v is pd.NA or v is pd.NaT:
            return math.nan
        raise ValueError(f"FastPlanner.decide_one: column {name!r} must be a number, got "
                         f"{v!r}") from None


def _ns(v: Any, name: str) -> int:
    """UTC epoch ns of a timestamp (naive = UTC, as ``pd.to_datetime(utc=True)``)."""
    try:
        ts = pd.Timestamp(v)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"FastPlanner.decide_one: column {name!r} must be a timestamp, got "
                         f"{v!r}: {exc}") from None
    if ts is pd.NaT:
        raise ValueError(f"FastPlanner.decide_one: column {name!r} is missing")
    return int(ts.value)


def _years(first: int, dec: int, end: int) -> tuple[int, int]:
    """The calendar years ``build_history`` covers for this order (its cache key); ``first``
    is the history's first bin."""
    return (time.gmtime(min(first, dec) // 10**9).tm_year - 1,
            time.gmtime(max(end, dec) // 10**9).tm_year + 1)
