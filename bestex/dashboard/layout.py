"""The dashboard's page: static layout and the rendering of one :func:`~bestex.dashboard.data.snapshot`.

Rendered values carry stable element ids, so a test (or a person with the browser's inspector)
can find them: ``order-count``, ``fill-count``, ``fill-rate``, ``filled-qty``, ``ordered-qty``,
``position-<SYMBOL>``, ``pnl-<SYMBOL>``, ``pnl-total``, ``model-version``, ``model-versions``,
``policy``, ``kill-state``, ``risk-<limit>[-<SYMBOL>]``, ``alert-count``, ``last-update``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html

from bestex.dashboard.data import ROLLING_ORDERS, symbol_id

__all__ = ["page", "render", "slippage_figure"]

_CARD = {"border": "1px solid #ddd", "borderRadius": "6px", "padding": "10px 14px",
         "margin": "6px", "background": "#fff"}
_CELL = {"padding": "2px 10px", "textAlign": "right", "borderBottom": "1px solid #eee"}


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return str(x)


def _table(header: list[str], rows: list[list[Any]], table_id: str) -> html.Table:
    return html.Table(id=table_id, style={"borderCollapse": "collapse"}, children=[
        html.Thead(html.Tr([html.Th(h, style=_CELL) for h in header])),
        html.Tbody([html.Tr([c if isinstance(c, html.Td) else html.Td(c, style=_CELL)
                             for c in r]) for r in rows])])


def _card(title: str, body: Any, card_id: str, width: str = "30%") -> html.Div:
    return html.Div(id=card_id, style={**_CARD, "flex": f"1 1 {width}"},
                    children=[html.H4(title, style={"margin": "0 0 8px 0"}), body])


def page(journal: str, refresh_ms: int) -> html.Div:
    """The static page: the panels (filled by :func:`render`), the timer and the kill form."""
    kill_form = html.Div([
        html.P("Records a kill (cancel every working order, refuse new ones) or a reset in the "
               "journal, as `bestex kill` does. Needs the dashboard's token (printed at start, "
               "in BESTEX_HOME/dashboard/token); the page does not hold it."),
        dcc.RadioItems(id="kill-action", value="kill", inline=True,
                       options=[{"label": " kill ", "value": "kill"},
                                {"label": " reset ", "value": "reset"}]),
        dcc.Input(id="kill-reason", type="text", placeholder="reason (required)",
                  style={"width": "45%", "marginRight": "6px"}),
        dcc.Input(id="kill-token", type="password", placeholder="token",
                  style={"width": "25%", "marginRight": "6px"}),
        html.Button("Submit…", id="kill-button", n_clicks=0,
                    style={"background": "#b00020", "color": "white"}),
        dcc.ConfirmDialog(id="kill-confirm", message=""),
        html.Div(id="kill-result", style={"marginTop": "6px", "fontWeight": "bold"}),
    ])
    return html.Div(style={"fontFamily": "sans-serif", "background": "#f6f6f6",
                           "padding": "8px"}, children=[
        html.H2("bestex — paper trading", style={"margin": "4px 8px"}),
        html.Div(id="header", children=f"journal {journal}", style={"margin": "0 8px"}),
        dcc.Interval(id="tick", interval=refresh_ms, n_intervals=0),
        html.Div(style={"display": "flex", "flexWrap": "wrap"}, children=[
            _card("Realized vs predicted slippage (bps)",
                  dcc.Graph(id="slippage-graph", figure=slippage_figure(pd.DataFrame()),
                            style={"height": "360px"}), "panel-slippage", "60%"),
            _card("Fills", html.Div(id="stats"), "panel-fills", "25%"),
            _card("Positions and P&L", html.Div(id="positions"), "panel-positions"),
            _card("Risk-limit utilisation", html.Div(id="risk"), "panel-risk"),
            _card("Model and policy", html.Div(id="model"), "panel-model"),
            _card("Alerts", html.Div(id="alerts"), "panel-alerts", "45%"),
            _card("Kill switch", html.Div([html.Div(id="kill-status"), kill_form]),
                  "panel-kill", "45%"),
        ]),
    ])


def slippage_figure(s: pd.DataFrame) -> go.Figure:
    """Per order (decision order): the predicted band, the prediction, the realized shortfall
    and its rolling mean."""
    fig = go.Figure()
    if len(s):
        x = [f"{c} {sym}" for c, sym in zip(s["cl_ord_id"], s["symbol"], strict=True)]
        text = x
        fig.add_trace(go.Scatter(x=x, y=s["pred_lo_bps"], mode="lines", line={"width": 0},
                                 showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=s["pred_hi_bps"], mode="lines", line={"width": 0},
                                 fill="tonexty", fillcolor="rgba(31,119,180,0.18)",
                                 name="predicted band (lo–hi)", hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=s["pred_bps"], mode="lines+markers", text=text,
                                 name="predicted (mean)", line={"color": "#1f77b4"}))
        fig.add_trace(go.Scatter(x=x, y=s["realized_bps"], mode="markers", text=text,
                                 name="realized IS", marker={"color": "#d62728", "size": 8}))
        fig.add_trace(go.Scatter(x=x, y=s["rolling_bps"], mode="lines",
                                 name=f"realized, rolling mean ({ROLLING_ORDERS} orders)",
                                 line={"color": "#d62728", "dash": "dot"}))
    else:
        fig.add_annotation(text="no filled order yet", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
    fig.update_layout(margin={"l": 40, "r": 10, "t": 10, "b": 40}, uirevision="keep",
                      xaxis_title="order (decision order)",
                      xaxis={"type": "category"}, yaxis_title="bps (cost > 0)",
                      legend={"orientation": "h", "y": -0.2}, template="plotly_white")
    return fig


def _stats(st: dict[str, Any]) -> html.Div:
    rate = st["fill_rate"]
    return _table(["", ""], [
        ["orders", html.Td(str(st["orders"]), id="order-count", style=_CELL)],
        ["rejected", html.Td(str(st["rejected"]), id="rejected-count", style=_CELL)],
        ["working", html.Td(str(st["working"]), id="working-count", style=_CELL)],
        ["fills", html.Td(str(st["fills"]), id="fill-count", style=_CELL)],
        ["ordered qty", html.Td(_fmt(st["ordered_qty"], 0), id="ordered-qty", style=_CELL)],
        ["filled qty", html.Td(_fmt(st["filled_qty"], 0), id="filled-qty", style=_CELL)],
        ["fill rate", html.Td("—" if math.isnan(rate) else f"{rate:.1%}", id="fill-rate",
                              style=_CELL)]], "stats-table")


def _positions(pos: pd.DataFrame) -> html.Div:
    rows = []
    for r in pos.itertuples():
        sid = symbol_id(r.symbol)
        rows.append([str(r.symbol),
                     html.Td(_fmt(float(r.position), 0), id=f"position-{sid}", style=_CELL),
                     _fmt(float(r.last_px), 4),
                     html.Td(_fmt(float(r.pnl)), id=f"pnl-{sid}", style=_CELL)])
    total = float(pos["pnl"].sum()) if len(pos) else 0.0
    return html.Div([
        _table(["symbol", "position", "mark (last fill)", "P&L"], rows, "positions-table"),
        html.Div(["total P&L: ", html.Span(_fmt(total), id="pnl-total")],
                 style={"marginTop": "6px"}),
        html.Small("positions marked to each symbol's last fill price; fees included")])


def _risk(risk: pd.DataFrame, source: str) -> html.Div:
    rows = []
    for r in risk.itertuples():
        rid = f"risk-{r.limit}" + (f"-{symbol_id(r.detail)}" if r.limit == "max_position"
                                   else "")
        used = "off" if math.isnan(float(r.used)) else f"{float(r.used):.1%}"
        colour = "#b00020" if used != "off" and float(r.used) >= 0.8 else "inherit"
        rows.append([r.limit, r.detail, _fmt(float(r.value)),
                     _fmt(None if r.max is None or pd.isna(r.max) else float(r.max)),
                     html.Td(used, id=rid, style={**_CELL, "color": colour})])
    return html.Div([_table(["limit", "on", "value", "max", "used"], rows, "risk-table"),
                     html.Small(f"limits from {source}")])


def _model(m: dict[str, Any]) -> html.Div:
    plans = ", ".join(f"{k}: {v}" for k, v in m["plans"].items()) or "—"
    return _table(["", ""], [
        ["model version", html.Td(m["model_version"] or "—", id="model-version", style=_CELL)],
        ["versions that decided", html.Td(", ".join(m["versions"]) or "—",
                                          id="model-versions", style=_CELL)],
        ["reloads", str(m["reloads"])],
        ["feed", m["feed"] or "—"],
        ["policy choices (plan: orders)", html.Td(plans, id="policy", style=_CELL)]],
        "model-table")


def _alerts(a: pd.DataFrame) -> html.Div:
    if a.empty:
        return html.Div([html.Span("0", id="alert-count", hidden=True),
                         html.Span("no alerts", id="alerts-empty")])
    rows = [[str(r.ts), str(r.source), str(r.severity), str(r.message)]
            for r in a.head(50).itertuples()]
    return html.Div([html.Div(["alerts: ", html.Span(str(len(a)), id="alert-count")]),
                     _table(["time", "source", "severity", "message"], rows, "alerts-table")])


def _kill_status(kill: dict[str, Any], control: pd.DataFrame) -> html.Div:
    on = bool(kill.get("on"))
    pending = int(control["applied_ns"].isna().sum()) if len(control) else 0
    text = (f"KILLED ({kill.get('reason', '')}, by {kill.get('who', '')})" if on
            else "off")
    return html.Div([
        html.Span("kill switch: "),
        html.Span(text, id="kill-state",
                  style={"color": "#b00020" if on else "#2e7d32", "fontWeight": "bold"}),
        html.Span(f"   requests: {len(control)} ({pending} pending)", id="control-count")])


def render(snap: dict[str, Any]) -> tuple[Any, ...]:
    """The children of every panel for one snapshot: header, figure, stats, positions, risk,
    model, alerts, kill status (in the order of the refresh callback's outputs)."""
    stamp = html.Span(time.strftime("%H:%M:%S"), id="last-update")
    if not snap["ok"]:
        waiting = html.Div(f"waiting: {snap['error']}")
        return (html.Div([f"{snap['error']} (waiting for the session) — updated ", stamp]),
                slippage_figure(pd.DataFrame()), waiting, waiting, waiting, waiting,
                _alerts(snap["alerts"]), waiting)
    return (html.Div([f"journal {snap['path']} — updated ", stamp]),
            slippage_figure(snap["slippage"]), _stats(snap["stats"]),
            _positions(snap["positions"]), _risk(snap["risk"], snap["limits_source"]),
            _model(snap["model"]), _alerts(snap["alerts"]),
            _kill_status(snap["kill"], snap["control"]))
