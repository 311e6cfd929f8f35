"""Scoring a cost model under stress: bias, band coverage and domain share per scenario, schedules
against TWAP, and the risk controls replayed alone and together (what fired, stressed against
normal sessions). Used by :mod:`validation.stress`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from models.desk_history import (
    DeskHistory,
)
from models.risk_controls import REASONS, RiskLimits
from models.simulator import Children, Parents, SimulatorConfig, replay_l1
from validation._stress_scenarios import (
    QUOTE_COLUMNS,
    Domain,
    Predict,
    _Frozen,
    _in_windows,
    _session,
)


# =========================================================================== scoring
def score_calibration(pred_mean, band_lo, band_hi, realized, noise_sd) -> dict[str, float]:
    """Calibration of cost predictions against realized costs (bps).

    Rows where the prediction, the band or the realized cost is not finite are left out.

    Returns
    -------
    dict
        ``n``; ``bias_bps`` = mean(realized - predicted) (> 0: costs under-predicted) and its
        standard error ``bias_se_bps``; ``noise_sd_bps`` = mean of ``noise_sd`` (the irreducible
        timing noise: a bias is large only against it); ``coverage_80`` = share of realized costs
        inside ``[band_lo, band_hi]``; ``mae`` = mean |realized - predicted|.
    """
    p, lo, hi, y, sd = (np.asarray(a, np.float64).ravel() for a in
                        (pred_mean, band_lo, band_hi, realized, noise_sd))
    ok = np.isfinite(p) & np.isfinite(lo) & np.isfinite(hi) & np.isfinite(y)
    n = int(ok.sum())
    if n == 0:
        return {"n": 0, "bias_bps": np.nan, "bias_se_bps": np.nan, "noise_sd_bps": np.nan,
                "coverage_80": np.nan, "mae": np.nan}
    e = y[ok] - p[ok]
    s = sd[ok][np.isfinite(sd[ok])]
    return {"n": n, "bias_bps": float(e.mean()),
            "bias_se_bps": float(e.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan,
            "noise_sd_bps": float(s.mean()) if s.size else np.nan,
            "coverage_80": float(np.mean((y[ok] >= lo[ok]) & (y[ok] <= hi[ok]))),
            "mae": float(np.abs(e).mean())}


def score_real_book(pred_mean, band_lo, band_hi, realized, adjusted, noise_sd,
                    sqrt_law=None) -> dict[str, float]:
    """How a cost model does on a replayed real book (issue 13).

    Two targets: ``realized`` (the shortfall) and ``adjusted`` (the shortfall less the
    recorded market's own move to each fill's slot start,
    :func:`models.desk_history.market_drift_bps`: the same expectation, far less noise; on the
    synthetic desk it is exactly the true expected cost the holdout is scored against). The
    orders of one recorded day share one price path, so against the realized cost a bias or an
    error is mostly that path's move; against ``adjusted`` it is the model's.

    Returns ``n``; ``bias_bps`` = mean(adjusted - predicted) and ``bias_se_bps``;
    ``bias_realized_bps``; ``noise_sd_bps`` (mean ``noise_sd``); ``coverage80`` (share of
    **realized** costs inside the band: the band is for what the order will cost);
    ``mae_bps`` = mean |adjusted - predicted|, ``mae_realized_bps``; with ``sqrt_law`` (its
    predictions on the same rows) ``mae_sqrt_law_bps`` and ``mae_sqrt_law_realized_bps``
    (NaN without). Rows without a finite prediction, band, realized or adjusted cost are left
    out.
    """
    p, lo, hi, y, a, sd = (np.asarray(v, np.float64).ravel() for v in
                           (pred_mean, band_lo, band_hi, realized, adjusted, noise_sd))
    sq = (np.full(len(p), np.nan) if sqrt_law is None
          else np.asarray(sqrt_law, np.float64).ravel())
    ok = np.isfinite(p) & np.isfinite(lo) & np.isfinite(hi) & np.isfinite(y) & np.isfinite(a)
    n = int(ok.sum())
    nan = np.nan
    if n == 0:
        return {"n": 0, "bias_bps": nan, "bias_se_bps": nan, "bias_realized_bps": nan,
                "noise_sd_bps": nan, "coverage80": nan, "mae_bps": nan,
                "mae_realized_bps": nan, "mae_sqrt_law_bps": nan,
                "mae_sqrt_law_realized_bps": nan}
    e, er = a[ok] - p[ok], y[ok] - p[ok]
    s = sd[ok][np.isfinite(sd[ok])]
    both = ok & np.isfinite(sq)
    return {"n": n, "bias_bps": float(e.mean()),
            "bias_se_bps": float(e.std(ddof=1) / np.sqrt(n)) if n > 1 else nan,
            "bias_realized_bps": float(er.mean()),
            "noise_sd_bps": float(s.mean()) if s.size else nan,
            "coverage80": float(np.mean((y[ok] >= lo[ok]) & (y[ok] <= hi[ok]))),
            "mae_bps": float(np.abs(e).mean()), "mae_realized_bps": float(np.abs(er).mean()),
            "mae_sqrt_law_bps": float(np.abs(a[both] - sq[both]).mean()) if both.any() else nan,
            "mae_sqrt_law_realized_bps": float(np.abs(y[both] - sq[both]).mean())
            if both.any() else nan}


def _predict(predict: Predict, feats: pd.DataFrame) -> tuple[np.ndarray, ...]:
    mean, lo, hi = predict(feats)
    out = tuple(np.asarray(a, np.float64).ravel() for a in (mean, lo, hi))
    if any(len(a) != len(feats) for a in out):
        raise ValueError(f"predict returned arrays of lengths {[len(a) for a in out]} for "
                         f"{len(feats)} feature rows")
    return out


def _calibration_row(name: str, kind: str, feats: pd.DataFrame, realized: np.ndarray,
                     pred: tuple[np.ndarray, ...], note: str = "",
                     domain: Domain | None = None) -> dict:
    st = feats["stressed"].to_numpy(bool)
    sd = feats["timing_risk_bps"].to_numpy(np.float64)
    s = score_calibration(*(a[st] for a in pred), realized[st], sd[st])
    c = score_calibration(*(a[~st] for a in pred), realized[~st], sd[~st])
    if not note and s["n"] == 0:
        note = "not scored: no finite prediction on the stressed orders"
    return {"scenario": name, "kind": kind, **s, "n_normal": c["n"],
            "bias_normal_bps": c["bias_bps"], "coverage_80_normal": c["coverage_80"],
            **_domain_summary(domain, feats[st]), "note": note}


def _domain_summary(domain: Domain | None, feats: pd.DataFrame) -> dict:
    """Share of ``feats`` rows with a feature outside the training domain, and the features
    most often outside (``adv 100%, time_of_day 98%``); NaN / '' without ``domain``."""
    if domain is None or not len(feats):
        return {"outside_domain": np.nan, "outside_features": ""}
    flags = [str(f) for f in domain(feats)]
    counts: dict[str, int] = {}
    for f in flags:
        for name in filter(None, f.split(",")):
            counts[name] = counts.get(name, 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return {"outside_domain": float(np.mean([bool(f) for f in flags])),
            "outside_features": ", ".join(f"{k} {v / len(flags):.0%}" for k, v in top)}


def _not_scored(name: str, kind: str, reason: str) -> dict:
    return {"scenario": name, "kind": kind, "n": 0, "bias_bps": np.nan, "bias_se_bps": np.nan,
            "noise_sd_bps": np.nan, "coverage_80": np.nan, "mae": np.nan, "n_normal": 0,
            "bias_normal_bps": np.nan, "coverage_80_normal": np.nan, "outside_domain": np.nan,
            "outside_features": "", "note": f"not scored: {reason}"}


def _schedule_rows(name: str, strategy: np.ndarray, cost: np.ndarray, truth: np.ndarray,
                   stressed: np.ndarray) -> list[dict]:
    rows = []
    for label, mask in (("stressed", stressed), ("normal", ~stressed)):
        ok = mask & np.isfinite(cost)
        if not ok.any():
            continue
        tw = ok & (strategy == "twap")
        tw_mean = cost[tw].mean() if tw.any() else np.nan
        tw_var = cost[tw].var(ddof=1) / tw.sum() if tw.sum() > 1 else np.nan
        tw_truth = np.nanmean(truth[tw]) if tw.any() and np.isfinite(truth[tw]).any() else np.nan
        for s in sorted(set(strategy[ok])):
            k = ok & (strategy == s)
            n = int(k.sum())
            m = float(cost[k].mean())
            var = cost[k].var(ddof=1) / n if n > 1 else np.nan
            tr = truth[k]
            rows.append({
                "scenario": name, "sessions": label, "strategy": s, "n": n, "mean_cost_bps": m,
                "minus_twap_bps": 0.0 if s == "twap" else m - tw_mean,
                "se_bps": float(np.sqrt(var)) if s == "twap" else float(np.sqrt(var + tw_var)),
                "truth_minus_twap_bps": (float(np.nanmean(tr) - tw_truth)
                                         if np.isfinite(tr).any() else np.nan)})
    return rows


# =========================================================================== risk controls
class StressLimits(_Frozen):
    """Risk limits in units that carry across markets; :meth:`resolve` gives the RiskLimits.

    Loss limits are set the way a desk sets them, from its calm history (the sessions before the
    stress, so no look-ahead): ``order_loss_limit`` is the ``order_loss_quantile`` of the calm
    orders' realized loss (currency: ``shortfall_bps * arrival_mid * filled_qty``) and
    ``daily_loss_limit`` ``daily_loss_mult`` times the worst calm session's total. Without a
    calm history (the real episodes) the loss limits are off.

    Parameters
    ----------
    max_participation : float or None, default=1.0
        Child over its slot's market volume.
    price_collar_bps : float or None, default=50
        About 8x a calm half-spread (6-8 bps quoted): crossed only by a spread blown out
        (x5-50 at the worst instants, §5) or a child walking far beyond the touch.
    order_loss_quantile : float or None, default=0.99
    daily_loss_mult : float or None, default=1.5
    """

    max_participation: float | None = Field(default=1.0, gt=0.0)
    price_collar_bps: float | None = Field(default=50.0, gt=0.0)
    order_loss_quantile: float | None = Field(default=0.99, gt=0.0, lt=1.0)
    daily_loss_mult: float | None = Field(default=1.5, gt=0.0)

    def resolve(self, history: DeskHistory | None = None,
                calm: np.ndarray | None = None) -> RiskLimits:
        """The :class:`RiskLimits`; loss limits from ``history``'s orders where ``calm``."""
        kw: dict[str, float | None] = {"max_participation": self.max_participation,
                                       "price_collar_bps": self.price_collar_bps}
        if history is not None and calm is not None and np.any(calm):
            o = history.outcomes.set_index(history.outcomes["order_id"].astype(str))
            po = history.parent_orders
            o = o.loc[po["order_id"].astype(str)]
            loss = np.nan_to_num(o["shortfall_bps"].to_numpy() * 1e-4
                                 * o["arrival_mid"].to_numpy() * o["filled_qty"].to_numpy())
            calm = np.asarray(calm, bool)
            if self.order_loss_quantile is not None:
                kw["order_loss_limit"] = float(max(np.quantile(loss[calm],
                                                               self.order_loss_quantile), 0.0))
            if self.daily_loss_mult is not None:
                day = pd.Series(loss[calm]).groupby(_session(po["decision_ts"])[calm]).sum()
                worst = float(day.max())
                kw["daily_loss_limit"] = self.daily_loss_mult * worst if worst > 0 else None
        return RiskLimits(**kw)


_LIMIT_FIELD: Final = {"kill_switch": "kill_switch", "max_child_size": "max_child_qty",
                       "max_participation": "max_participation",
                       "price_collar": "price_collar_bps", "order_loss_limit": "order_loss_limit",
                       "daily_loss_limit": "daily_loss_limit"}


def _limit_value(limits: RiskLimits, reason: str) -> float:
    v = getattr(limits, _LIMIT_FIELD[reason])
    return np.nan if v is None or v is False else float(v)


def _children(child_orders: pd.DataFrame, orders: pd.DataFrame) -> Children:
    pi = pd.Index(orders["order_id"].astype(str)).get_indexer(child_orders["order_id"].astype(str))
    return Children(parent_idx=pi, decision_ns=child_orders["decision_ts"].dt.as_unit("ns")
                    .array.asi8, qty=child_orders["qty"].to_numpy(),
                    side=child_orders["side"].to_numpy(), kind=child_orders["kind"].to_numpy(),
                    limit_offset_bps=np.full(len(child_orders), np.nan))


def _replay_rejections(quotes: pd.DataFrame, orders: pd.DataFrame, child_orders: pd.DataFrame,
                       sim: SimulatorConfig, limits: RiskLimits, *, sigma: str,
                       adv: str) -> pd.DataFrame:
    """Replay the children on the L1 ``quotes`` with ``limits``; the rejections frame."""
    codes, names = pd.factorize(orders["symbol"].astype(str), sort=True)
    par = Parents(symbol_idx=codes, arrival_mid=orders["arrival_mid"].to_numpy(),
                  sigma_daily=orders[sigma].to_numpy(), adv=orders[adv].to_numpy(),
                  spread_bps=orders["arrival_spread_bps"].to_numpy(),
                  shares_outstanding=orders["shares_outstanding"].to_numpy(),
                  start_ns=orders["decision_ts"].dt.as_unit("ns").array.asi8,
                  end_ns=orders["end_ts"].dt.as_unit("ns").array.asi8,
                  order_id=orders["order_id"].to_numpy())
    book = quotes[[*QUOTE_COLUMNS]][quotes["symbol"].astype(str).isin(list(names))]
    res = replay_l1(book, par, _children(child_orders, orders), sim, limits=limits,
                    symbols=[str(s) for s in names])
    return res.rejections()


def _alone(limits: RiskLimits) -> list[tuple[str, RiskLimits]]:
    """One RiskLimits per active control, with only that control on."""
    return [(r, RiskLimits(**{_LIMIT_FIELD[r]: getattr(limits, _LIMIT_FIELD[r])}))
            for r in REASONS[1:] if np.isfinite(_limit_value(limits, r))]


def _control_rows(name: str, engines: Mapping[str, Callable[[RiskLimits], pd.DataFrame]],
                  limits: RiskLimits, child_orders: pd.DataFrame, order_stressed: pd.Series,
                  windows: pd.DataFrame, order_symbol: pd.Series,
                  kind: Literal["synthetic", "real"] = "synthetic",
                  episode_stressed: bool = True) -> list[dict]:
    """Every engine run with all ``limits`` together (mode ``all``) and with each control
    alone (mode ``alone``: where it would fire were it the only one; in ``all`` an earlier
    control may take the child first: kill switch, size, participation, collar, order loss,
    daily loss)."""
    rows = []
    kw = {"child_orders": child_orders, "order_stressed": order_stressed, "windows": windows,
          "order_symbol": order_symbol, "kind": kind, "episode_stressed": episode_stressed}
    for engine, run in engines.items():
        rows += _risk_rows(name, engine, run(limits), limits, mode="all", **kw)
        for reason, one in _alone(limits):
            rows += [r for r in _risk_rows(name, engine, run(one), one, mode="alone", **kw)
                     if r["reason"] == reason]
    return rows


def _risk_rows(name: str, engine: str, rejections: pd.DataFrame, limits: RiskLimits, *,
               mode: str, child_orders: pd.DataFrame, order_stressed: pd.Series,
               windows: pd.DataFrame, order_symbol: pd.Series,
               kind: Literal["synthetic", "real"] = "synthetic",
               episode_stressed: bool = True) -> list[dict]:
    """Rejections by reason in the stressed / normal sessions and inside the stress windows."""
    cid = child_orders["order_id"].astype(str)
    c_st = order_stressed.reindex(cid).to_numpy(bool)
    c_ev = _in_windows(windows, order_symbol.reindex(cid).to_numpy(), child_orders["decision_ts"])
    rid = rejections["order_id"].astype(str)
    r_st = order_stressed.reindex(rid).to_numpy(bool)
    r_ev = _in_windows(windows, order_symbol.reindex(rid).to_numpy(), rejections["ts"])
    reason = rejections["reason"].astype(str).to_numpy()
    rows = []
    for r in REASONS[1:]:
        lim = _limit_value(limits, r)
        if np.isnan(lim):
            continue
        k = reason == r
        row = {"scenario": name, "engine": engine, "mode": mode, "reason": r, "limit": lim,
               "fired_stressed": int((k & r_st).sum()), "fired_normal": int((k & ~r_st).sum()),
               "fired_event": int((k & r_ev).sum()), "children_stressed": int(c_st.sum()),
               "children_normal": int((~c_st).sum()), "children_event": int(c_ev.sum())}
        if kind == "real":  # one episode: all of it is stressed, or all of it is normal
            tot, n = int(k.sum()), len(cid)
            row |= {"fired_stressed": tot if episode_stressed else np.nan,
                    "fired_normal": np.nan if episode_stressed else tot,
                    "children_stressed": n if episode_stressed else 0,
                    "children_normal": 0 if episode_stressed else n}
        rows.append(row)
    return rows


def _halt_rows(name: str, child_orders: pd.DataFrame, order_stressed: pd.Series,
               order_symbol: pd.Series, windows: pd.DataFrame) -> list[dict]:
    """Children sent while their symbol is halted (a venue state; the simulators fill them)."""
    if not (windows["kind"] == "halt").any():
        return []
    cid = child_orders["order_id"].astype(str)
    c_st = order_stressed.reindex(cid).to_numpy(bool)
    hit = _in_windows(windows, order_symbol.reindex(cid).to_numpy(), child_orders["decision_ts"],
                      kind="halt")
    return [{"scenario": name, "engine": "venue", "mode": "all", "reason": "halted_market",
             "limit": np.nan,
             "fired_stressed": int((hit & c_st).sum()), "fired_normal": int((hit & ~c_st).sum()),
             "fired_event": int(hit.sum()), "children_stressed": int(c_st.sum()),
             "children_normal": int((~c_st).sum()),
             "children_event": int(_in_windows(windows, order_symbol.reindex(cid).to_numpy(),
                                               child_orders["decision_ts"]).sum())}]
