"""A live dashboard of a paper-trading session, read from its journal.

``python -m bestex.dashboard --journal PATH [--home DIR] [--host 127.0.0.1] [--port 8050]``
serves a page (127.0.0.1 only, unless ``--allow-remote``) that reads the session's SQLite
journal read-only every second: realized against predicted slippage per order, fill rate and
counts, positions and P&L, risk-limit utilisation, alerts, the model version and the policy's
choices, and a kill switch (``POST /api/kill``, token required).

Why Dash (with Plotly): it is mature and widely used, its callbacks run server-side in Python
(the journal is read where it lives, with the project's own code; no JavaScript to build or
ship), a ``dcc.Interval`` gives the live refresh in one line, and it runs on Flask, so the kill
API is one ordinary route on the same server. Streamlit re-runs whole scripts and has no plain
HTTP routes; a hand-written Flask + JS page would need its own charting.

Modules: :mod:`bestex.dashboard.data` (journal -> small frames; no Dash),
:mod:`bestex.dashboard.layout` (the page), :mod:`bestex.dashboard.app` (the app, its refresh
callback and the kill API), ``__main__`` (the command line).
"""

from bestex.dashboard.app import check_host, control, create_app, load_token, serve

__all__ = ["check_host", "control", "create_app", "load_token", "serve"]
