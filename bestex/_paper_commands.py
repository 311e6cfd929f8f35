"""``bestex paper`` (the stage-5 execution service) and ``bestex kill`` (its kill switch)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from bestex._cli_common import BadInput

__all__ = ["add_paper_commands", "cmd_kill", "cmd_paper"]

PASSWORD_ENV = "BESTEX_FIX_PASSWORD"


def _session(args: argparse.Namespace) -> str:
    return args.session or f"paper-{args.feed}"


def cmd_paper(args: argparse.Namespace) -> int:
    """Run the FIX acceptor on a replayed feed until the feed's day is over (or Ctrl-C)."""
    from bestex import settings
    from bestex.paper.journal import Journal
    from bestex.paper.market import FEEDS, load_feed
    from bestex.paper.service import (
        ModelSource,
        PaperService,
        ServiceConfig,
        journal_path,
        scripted_orders,
    )
    from models.live_risk import LiveLimits

    password = os.environ.get(PASSWORD_ENV, "")
    if not password:
        raise BadInput(f"the paper service refuses to start without a FIX password: set "
                       f"{PASSWORD_ENV}")
    if args.feed not in FEEDS:
        raise BadInput(f"--feed {args.feed!r}: choose one of {', '.join(FEEDS)}")
    if args.speed < 0:
        raise BadInput(f"--speed {args.speed} is negative (0 = as fast as possible)")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.allow_remote:
        raise BadInput(f"--host {args.host}: the service binds 127.0.0.1 unless told otherwise "
                       "(--allow-remote)")
    try:
        feed = load_feed(args.feed, day=args.day)
    except (FileNotFoundError, ValueError) as exc:
        raise BadInput(str(exc)) from None
    orders = None
    if args.orders:
        try:
            orders = scripted_orders(Path(args.orders))
        except ValueError as exc:
            raise BadInput(str(exc)) from None
    try:
        model = ModelSource(feed, alias=args.model, risk_aversion=args.risk_aversion)
    except RuntimeError as exc:
        raise BadInput(str(exc)) from None
    journal = Journal(journal_path(settings.home(), _session(args)))
    cfg = ServiceConfig(host=args.host, port=args.fix_port, speed=args.speed,
                        password=password,
                        allowed_clients=frozenset(c.strip() for c in args.clients.split(",")),
                        exit_at_end=not args.stay, pin_cores=True,
                        limits=LiveLimits.for_contracts(inverse=feed.inverse))
    service = PaperService(feed, journal, model, cfg, orders=orders)
    try:
        asyncio.run(service.run())
    except KeyboardInterrupt:
        print("paper: stopped (Ctrl-C); the journal keeps the session", file=sys.stderr)
    counts = journal.counts()
    print(f"paper: {counts['orders']} orders, {counts['fills']} fills, {counts['messages']} "
          f"FIX messages; positions {journal.positions()}", file=sys.stderr)
    if args.reconcile:
        _reconcile(journal, feed, model, Path(args.reconcile), cfg.limits)
    return 0


def _reconcile(journal, feed, model, out: Path, limits) -> None:
    """Paper against backtest of the same orders on the same day, written to ``out``."""
    import json

    import pandas as pd

    from validation.paper_reconcile import PaperJournal, plot_reconciliation, reconcile

    orders = pd.DataFrame(journal.orders())
    orders["plan_name"] = [p.get("name", "") for p in orders["plan"]]
    pj = PaperJournal(orders, journal.fills(), journal.events())
    rec = reconcile(pj, feed.quotes, feed.sim, limits=limits.child_limits())
    out.mkdir(parents=True, exist_ok=True)
    rec.table.to_csv(out / "reconciliation.csv", index=False)
    summary = {**rec.summary, "feed": feed.name, "source": feed.source,
               "model_version": model.version, "journal": str(journal.path)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    plots = plot_reconciliation(rec.table, out)
    (out / "report.md").write_text(rec.to_markdown(title=f"Stage 5 — paper trading on "
                                                         f"{feed.name}", plots=plots))
    print(f"paper: reconciled {rec.summary['compared']} orders with the backtest: mean "
          f"|diff| {rec.summary['mean_abs_diff_bps']:.2f} bps -> {out}", file=sys.stderr)


def cmd_kill(args: argparse.Namespace) -> int:
    """Ask a running (or the next) paper session to cancel everything and refuse new orders."""
    from bestex import settings
    from bestex.paper.journal import Journal
    from bestex.paper.service import journal_path

    path = journal_path(settings.home(), _session(args))
    if not path.is_file():
        raise BadInput(f"no paper session journal at {path}; start `bestex paper --feed "
                       f"{args.feed}` first (or pass --session)")
    if not args.reason.strip():
        raise BadInput("--reason TEXT is required: a kill or reset is recorded with its reason")
    j = Journal(path)
    action = "reset" if args.reset else "kill"
    rid = j.request(action, args.reason, who=args.who)
    print(f"bestex kill: {action} request {rid} recorded in {path} ({args.reason!r}); the "
          "service applies it within 10 ms", file=sys.stderr)
    return 0


def add_paper_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("paper", help="stage 5: the FIX 4.4 execution service on a replayed feed")
    p.add_argument("--feed", required=True, help="amzn, bitmex or synth")
    p.add_argument("--speed", type=float, default=60.0,
                   help="feed seconds per wall second (0 = as fast as possible)")
    p.add_argument("--fix-port", type=int, default=9878)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--allow-remote", action="store_true", help="allow binding another host")
    p.add_argument("--clients", default="DESK", help="allowed client SenderCompIDs, comma-separated")
    p.add_argument("--session", default=None, help="journal name (default paper-FEED)")
    p.add_argument("--orders", default=None, help="a desk's parent orders to submit at their "
                   "decision times (CSV/Parquet: cl_ord_id, symbol, side, qty, decision_ts)")
    p.add_argument("--day", default=None, help="synthetic day (ISO date; default the last)")
    p.add_argument("--model", default="champion",
                   help="champion (default; reloaded when the alias moves), challenger, a "
                   "version number or a model URI")
    p.add_argument("--reconcile", default=None, metavar="DIR",
                   help="at the end, reconcile the session with a backtest of the same orders "
                   "and write reconciliation.csv, summary.json, report.md and plots to DIR")
    p.add_argument("--risk-aversion", type=float, default=0.5)
    p.add_argument("--stay", action="store_true", help="keep serving after the day's last event")
    p.set_defaults(func=cmd_paper)

    k = sub.add_parser("kill", help="kill switch of a paper session: cancel all, refuse new")
    k.add_argument("--reason", required=True)
    k.add_argument("--reset", action="store_true", help="lift the kill switch")
    k.add_argument("--feed", default="synth", help="the session's feed (names its journal)")
    k.add_argument("--session", default=None)
    k.add_argument("--who", default=os.environ.get("USER", "cli"))
    k.set_defaults(func=cmd_kill)
