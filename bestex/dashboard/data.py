"""What the dashboard shows, read from a paper session's journal (read-only), as small frames.

Every function here takes the journal's path (or frames already read from it) and returns a
DataFrame or a dict; nothing here knows about Dash. :func:`snapshot` reads everything one
refresh needs through one read-only connection (``Journal(path, readonly=True)``), so the
dashboard never writes to the journal it watches (only the kill API does, through
``Journal.request`` like ``bestex kill``).

Formulas
--------
Realized slippage of a parent (implementation shortfall of its filled part, in bps of the
arrival mid, fees included; the simulator's :func:`models._sim_types.cost_bps` and the stage-5
reconciliation use the same)::

    IS_bps = (side * (sum(qty_i * px_i) - arrival_mid * sum(qty_i)) + sum(fee_i))
             / (arrival_mid * sum(qty_i)) * 1e4

with ``side`` +1 for a buy and -1 for a sell, the sums over the order's rows in ``fills`` and
``arrival_mid`` from the order's journaled state (the mid the service knew when it accepted or
planned the order). Positive is a cost. The prediction is the chosen candidate's ``mean_bps``
(and its ``lo_bps``/``hi_bps`` band) in the order's ``decision`` event.

Positions and P&L: the net filled quantity per symbol (buys positive); cash is
``-sum(side * qty * px) - sum(fee)``; the position is **marked to the symbol's last fill price**
(the journal holds no quotes), so ``pnl = cash + position * last_px``. For an inverse
perpetual (BitMEX, USD contracts) this is the linear approximation.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bestex.paper.journal import Journal
from models.live_risk import LiveLimits

__all__ = ["alerts", "fill_stats", "limits_of", "model_info", "positions", "risk_utilisation",
           "slippage", "snapshot", "symbol_id"]

ROLLING_ORDERS = 5
"""Window of the rolling mean of realized slippage (orders, in decision order)."""

ALERT_COLUMNS = ["ts", "source", "severity", "message"]


def symbol_id(symbol: str) -> str:
    """A symbol as it appears in an element id (``position-<SYMBOL>``): letters, digits, ``-``."""
    return re.sub(r"[^A-Za-z0-9-]", "-", str(symbol))


def _orders_frame(orders: list[dict[str, Any]]) -> pd.DataFrame:
    cols = ["order_id", "cl_ord_id", "symbol", "side", "qty", "status", "arrival_mid",
            "cum_qty", "decision_ns", "model_version", "plan_name"]
    if not orders:
        return pd.DataFrame(columns=cols)
    o = pd.DataFrame(orders)
    o["plan_name"] = [p.get("name", "") if isinstance(p, dict) else "" for p in o["plan"]]
    return o[cols]


def _decisions(events: pd.DataFrame) -> pd.DataFrame:
    """One row per ``decision`` event: the chosen plan's predicted mean and band."""
    cols = ["order_id", "chosen", "pred_bps", "pred_lo_bps", "pred_hi_bps", "model_version"]
    rows = []
    for oid, payload in zip(events["order_id"], events["payload"], strict=True):
        p = json.loads(payload)
        chosen = p.get("chosen", "")
        cand = next((c for c in p.get("candidates", []) if c.get("name") == chosen), {})
        rows.append((oid, chosen, cand.get("mean_bps", math.nan), cand.get("lo_bps", math.nan),
                     cand.get("hi_bps", math.nan), str(p.get("model_version", ""))))
    return pd.DataFrame(rows, columns=cols).drop_duplicates("order_id", keep="last")


def slippage(orders: pd.DataFrame, fills: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """Realized against predicted slippage, one row per parent with fills, in decision order.

    Columns: ``order_id, cl_ord_id, symbol, side, filled_qty, vwap, arrival_mid, realized_bps,
    pred_bps, pred_lo_bps, pred_hi_bps, rolling_bps`` (the mean of ``realized_bps`` over the
    last :data:`ROLLING_ORDERS` orders). The formula is in the module docstring.
    """
    cols = ["order_id", "cl_ord_id", "symbol", "side", "filled_qty", "vwap", "arrival_mid",
            "realized_bps", "pred_bps", "pred_lo_bps", "pred_hi_bps", "rolling_bps"]
    if fills.empty or orders.empty:
        return pd.DataFrame(columns=cols)
    got = (fills.assign(notional=fills["qty"] * fills["px"])
           .groupby("order_id")[["qty", "notional", "fee"]].sum()
           .rename(columns={"qty": "filled_qty"}))
    o = orders.merge(got, left_on="order_id", right_index=True, how="inner")
    o = o.merge(decisions[["order_id", "pred_bps", "pred_lo_bps", "pred_hi_bps"]],
                on="order_id", how="left").sort_values(["decision_ns", "order_id"])
    side = o["side"].to_numpy(np.float64)
    mid = o["arrival_mid"].astype(float).to_numpy()
    filled = o["filled_qty"].to_numpy(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        o["realized_bps"] = (side * (o["notional"].to_numpy() - mid * filled)
                             + o["fee"].to_numpy()) / (mid * filled) * 1e4
        o["vwap"] = o["notional"].to_numpy() / filled
    o["rolling_bps"] = o["realized_bps"].rolling(ROLLING_ORDERS, min_periods=1).mean()
    return o[cols].reset_index(drop=True)


def fill_stats(orders: pd.DataFrame, fills: pd.DataFrame) -> dict[str, Any]:
    """Counts and fill rate: ``orders`` (every parent journaled), ``rejected``, ``working``,
    ``fills`` (rows of the fills table), ``ordered_qty`` (the accepted parents' quantity),
    ``filled_qty`` and ``fill_rate = filled_qty / ordered_qty`` (NaN when nothing was ordered)."""
    accepted = orders[orders["status"] != "rejected"] if len(orders) else orders
    ordered = float(accepted["qty"].sum()) if len(accepted) else 0.0
    filled = float(fills["qty"].sum()) if len(fills) else 0.0
    return {"orders": len(orders), "rejected": len(orders) - len(accepted),
            "working": int(orders["status"].isin(["pending", "working"]).sum())
            if len(orders) else 0,
            "fills": len(fills), "ordered_qty": ordered, "filled_qty": filled,
            "fill_rate": filled / ordered if ordered > 0 else math.nan}


def positions(fills: pd.DataFrame) -> pd.DataFrame:
    """Per symbol: ``position`` (net filled qty, buys positive), ``bought``, ``sold``,
    ``cash``, ``fees``, ``last_px`` (the mark: the last fill's price) and ``pnl``."""
    cols = ["symbol", "position", "bought", "sold", "cash", "fees", "last_px", "pnl"]
    if fills.empty:
        return pd.DataFrame(columns=cols)
    f = fills.sort_values(["feed_ns", "wall_ns"])
    signed = f["side"] * f["qty"]
    g = f.assign(signed=signed, bought=f["qty"].where(f["side"] > 0, 0.0),
                 sold=f["qty"].where(f["side"] < 0, 0.0),
                 cash=-signed * f["px"] - f["fee"]).groupby("symbol", sort=True)
    out = pd.DataFrame({"position": g["signed"].sum(), "bought": g["bought"].sum(),
                        "sold": g["sold"].sum(), "cash": g["cash"].sum(),
                        "fees": g["fee"].sum(), "last_px": g["px"].last()})
    out["pnl"] = out["cash"] + out["position"] * out["last_px"]
    return out.reset_index()[cols]


def limits_of(meta_limits: Any) -> tuple[LiveLimits, str]:
    """The session's limits: the journal's ``meta['limits']`` when it holds them, else the
    defaults of :class:`models.live_risk.LiveLimits`; with where they came from."""
    if isinstance(meta_limits, dict):
        known = {k: v for k, v in meta_limits.items() if k in LiveLimits.model_fields}
        return LiveLimits(**known), "journal meta"
    return LiveLimits(), "LiveLimits defaults"


def risk_utilisation(limits: LiveLimits, orders: pd.DataFrame, pos: pd.DataFrame
                     ) -> pd.DataFrame:
    """One row per control: ``limit``, ``value``, ``used`` (``value / limit``; NaN when the
    control is off) and ``detail``.

    ``max_position`` per symbol is ``|position| / max_position``; ``max_order_qty`` and
    ``max_order_notional`` use the largest accepted parent (notional at its arrival mid);
    ``daily_loss_limit`` uses the engine's day loss, ``sum(side * (notional - arrival_mid *
    cum_qty) + fees)`` over parents with fills (the orders' journaled state).
    """
    rows: list[tuple[str, float | None, float, str]] = []
    for r in pos.itertuples():
        rows.append(("max_position", limits.max_position, abs(float(r.position)),
                     str(r.symbol)))
    acc = orders[orders["status"] != "rejected"] if len(orders) else orders
    qty = float(acc["qty"].max()) if len(acc) else 0.0
    notional = float((acc["qty"] * acc["arrival_mid"].astype(float)).max()) if len(acc) else 0.0
    rows.append(("max_order_qty", limits.max_order_qty, qty, "largest parent"))
    rows.append(("max_order_notional", limits.max_order_notional,
                 0.0 if math.isnan(notional) else notional, "largest parent at arrival mid"))
    day_loss = 0.0
    if len(acc):
        for r in acc.itertuples():
            if r.cum_qty > 0 and math.isfinite(float(r.arrival_mid)):
                day_loss += float(r.side) * (float(r.notional) - float(r.arrival_mid)
                                             * float(r.cum_qty)) + float(r.fees)
    rows.append(("daily_loss_limit", limits.daily_loss_limit, day_loss, "shortfall so far"))
    out = pd.DataFrame(rows, columns=["limit", "max", "value", "detail"])
    cap = out["max"].astype(float)
    out["used"] = out["value"] / cap  # NaN where the control is off (None)
    return out


def alerts(events: pd.DataFrame, home: Path | None) -> pd.DataFrame:
    """Alerts from the journal's ``alert`` events and ``home/monitoring/alerts.parquet``
    (columns ``ts, source, severity, message``), newest first; empty when neither exists."""
    parts = []
    ev = events[events["kind"] == "alert"]
    if len(ev):
        pay = [json.loads(p) for p in ev["payload"]]
        parts.append(pd.DataFrame({
            "ts": pd.to_datetime(ev["wall_ns"].to_numpy(), utc=True),
            "source": [p.get("source", "journal") for p in pay],
            "severity": [p.get("severity", "info") for p in pay],
            "message": [p.get("message", json.dumps(p)) for p in pay]}))
    file = None if home is None else Path(home) / "monitoring" / "alerts.parquet"
    if file is not None and file.is_file():
        a = pd.read_parquet(file)
        missing = [c for c in ALERT_COLUMNS if c not in a.columns]
        if missing:
            a = pd.DataFrame({"ts": [pd.Timestamp.now(tz="UTC")], "source": ["dashboard"],
                              "severity": ["warning"],
                              "message": [f"{file} lacks columns {missing}"]})
        a = a[ALERT_COLUMNS].assign(ts=pd.to_datetime(a["ts"], utc=True))
        parts.append(a)
    if not parts:
        return pd.DataFrame(columns=ALERT_COLUMNS)
    return pd.concat(parts, ignore_index=True).sort_values("ts", ascending=False,
                                                           ignore_index=True)


def model_info(meta_version: Any, decisions: pd.DataFrame, events: pd.DataFrame
               ) -> dict[str, Any]:
    """The model version in use (``meta['model_version']``, else the last decision's), every
    version that decided an order, reloads, and the policy's choices (plan name -> orders)."""
    versions = sorted({v for v in decisions["model_version"] if v})
    current = str(meta_version) if meta_version not in (None, "") else (
        str(decisions["model_version"].iloc[-1]) if len(decisions) else "")
    start = events[events["kind"] == "start"]
    feed = json.loads(start["payload"].iloc[-1]).get("feed", "") if len(start) else ""
    return {"model_version": current, "versions": versions,
            "reloads": int((events["kind"] == "model_reloaded").sum()),
            "plans": decisions["chosen"].value_counts().sort_index().to_dict(),
            "feed": feed}


def snapshot(path: str | Path, home: str | Path | None = None) -> dict[str, Any]:
    """Everything one refresh shows, read from the journal at ``path`` (read-only).

    Returns a dict with ``ok`` (False and ``error`` when there is no journal yet), ``orders``,
    ``fills``, ``slippage``, ``stats``, ``positions``, ``risk``, ``limits_source``, ``alerts``,
    ``model``, ``kill`` (meta['kill'] or ``{"on": False}``) and ``control`` (the requests).
    """
    try:
        j = Journal(path, readonly=True)
    except FileNotFoundError as exc:
        return {"ok": False, "error": str(exc), "alerts": alerts(
            pd.DataFrame(columns=["kind", "payload", "wall_ns"]),
            None if home is None else Path(home))}
    try:
        raw = j.orders()
        fills = j.fills()
        events = j.events()
        meta = {k: j.meta(k) for k in ("model_version", "limits", "kill")}
        control = j.requests()
    finally:
        j.close()
    orders = _orders_frame(raw)
    extra = pd.DataFrame(raw)[["notional", "fees"]] if raw else pd.DataFrame(
        columns=["notional", "fees"])
    orders_full = pd.concat([orders, extra], axis=1)
    decisions = _decisions(events[events["kind"] == "decision"])
    pos = positions(fills)
    limits, source = limits_of(meta["limits"])
    return {"ok": True, "path": str(path), "orders": orders, "fills": fills,
            "slippage": slippage(orders, fills, decisions), "stats": fill_stats(orders, fills),
            "positions": pos, "risk": risk_utilisation(limits, orders_full, pos),
            "limits_source": source,
            "alerts": alerts(events, None if home is None else Path(home)),
            "model": model_info(meta["model_version"], decisions, events),
            "kill": meta["kill"] or {"on": False}, "control": control}
