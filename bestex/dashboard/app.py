"""The Dash app: the live page, its refresh, and the kill API (``POST /api/kill``).

The kill API is a Flask route on the Dash server. It refuses with HTTP 403, and records
nothing, unless the request carries the dashboard's token (header ``X-Bestex-Token`` or field
``token``, JSON or form); with it, the request is written into the journal with
``Journal(path).request(action, reason, who="dashboard")``, exactly as ``bestex kill`` does,
and the running paper service applies it within ~10 ms. The page's kill form goes through the
same check: the token is typed by the operator and is never part of the page.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from pathlib import Path
from typing import Any

import dash
from dash import Input, Output, State
from flask import jsonify, request

from bestex.dashboard.data import snapshot
from bestex.dashboard.layout import page, render
from bestex.paper.journal import Journal

__all__ = ["LOOPBACK", "TOKEN_ENV", "check_host", "control", "create_app", "load_token",
           "serve"]

TOKEN_ENV = "BESTEX_DASHBOARD_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_host(host: str, *, allow_remote: bool = False) -> str:
    """``host`` when it is a loopback address (or ``allow_remote``); else ValueError."""
    loop = host in LOOPBACK
    if not loop:
        try:
            loop = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loop = False
    if not loop and not allow_remote:
        raise ValueError(f"--host {host}: the dashboard binds a loopback address (127.0.0.1) "
                         "unless told otherwise (--allow-remote); its kill API controls a "
                         "trading session")
    return host


def load_token(home: Path) -> tuple[str, Path | None]:
    """The kill API's token: ``$BESTEX_DASHBOARD_TOKEN`` when set (file ``None``), else a new
    random one written to ``home/dashboard/token`` (mode 0600) with that path."""
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env, None
    token = secrets.token_urlsafe(24)
    folder = Path(home) / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode())
    finally:
        os.close(fd)
    return token, path


def control(journal: Path, token: str, *, action: str, reason: str, given: str | None,
            who: str = "dashboard") -> tuple[int, dict[str, Any]]:
    """Check ``given`` against ``token`` and record ``action`` (kill or reset) with ``reason``:
    ``(http_status, body)``. A wrong or missing token is 403 and touches nothing."""
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        return 403, {"error": "forbidden: missing or wrong dashboard token"}
    if action not in ("kill", "reset"):
        return 400, {"error": f"action {action!r}: use kill or reset"}
    if not (reason or "").strip():
        return 400, {"error": "a kill or reset needs a reason"}
    if not Path(journal).is_file():
        return 404, {"error": f"no paper session journal at {journal}"}
    j = Journal(journal)
    try:
        rid = j.request(action, reason.strip(), who=who)
    finally:
        j.close()
    return 200, {"id": rid, "action": action, "reason": reason.strip(), "journal": str(journal)}


def create_app(journal: str | Path, *, token: str, home: str | Path | None = None,
               refresh_ms: int = 1000) -> dash.Dash:
    """The dashboard of the paper session journaled at ``journal``.

    Parameters
    ----------
    journal : path-like
        The session's SQLite journal (read-only for the page; the kill API writes requests).
    token : str
        The kill API's token (:func:`load_token`).
    home : path-like, optional
        BESTEX_HOME, for ``monitoring/alerts.parquet``.
    refresh_ms : int, default=1000
        How often the page reads the journal again.
    """
    journal = Path(journal)
    app = dash.Dash(__name__, title="bestex paper trading", update_title=None)
    app.layout = page(str(journal), refresh_ms)

    @app.server.post("/api/kill")
    def _api_kill() -> Any:
        body = request.get_json(silent=True) or request.form.to_dict()
        given = request.headers.get("X-Bestex-Token") or body.get("token")
        status, out = control(journal, token, action=str(body.get("action", "kill")),
                              reason=str(body.get("reason", "")), given=given)
        return jsonify(out), status

    @app.callback(
        Output("header", "children"), Output("slippage-graph", "figure"),
        Output("stats", "children"), Output("positions", "children"),
        Output("risk", "children"), Output("model", "children"),
        Output("alerts", "children"), Output("kill-status", "children"),
        Input("tick", "n_intervals"))
    def _refresh(_n: int) -> tuple[Any, ...]:
        return render(snapshot(journal, home))

    @app.callback(Output("kill-confirm", "displayed"), Output("kill-confirm", "message"),
                  Input("kill-button", "n_clicks"), State("kill-action", "value"),
                  State("kill-reason", "value"), prevent_initial_call=True)
    def _ask(_n: int, action: str, reason: str | None) -> tuple[bool, str]:
        return True, (f"Record a {str(action).upper()} request in {journal.name} with reason "
                      f"{(reason or '').strip()!r}? A kill cancels every working order.")

    @app.callback(Output("kill-result", "children"),
                  Input("kill-confirm", "submit_n_clicks"), State("kill-action", "value"),
                  State("kill-reason", "value"), State("kill-token", "value"),
                  prevent_initial_call=True)
    def _submit(_n: int, action: str, reason: str | None, given: str | None) -> str:
        status, out = control(journal, token, action=action, reason=reason or "", given=given)
        if status == 200:
            return f"{action} request {out['id']} recorded"
        return f"refused ({status}): {out['error']}"

    return app


def serve(app: dash.Dash, host: str, port: int) -> Any:
    """A threaded WSGI server for ``app`` on ``host:port`` (``port`` 0: a free one); call
    ``serve_forever()`` on it (``shutdown()`` from another thread stops it)."""
    from werkzeug.serving import make_server

    return make_server(host, port, app.server, threaded=True)
