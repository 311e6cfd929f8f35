"""``bestex``: the command line over the same code the Dagster assets run.

Exit status: 0 success, 1 an internal failure, 2 bad input (the message names the file, the row
and the rule).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bestex._cli_common import EXIT_BAD_INPUT, BadInput, _fail
from bestex._data_commands import MANIFEST, cmd_ingest, cmd_validate

__all__ = ["EXIT_BAD_INPUT", "MANIFEST", "BadInput", "build_parser", "main"]


# ----------------------------------------------------------------------------- synth
def cmd_synth(args: argparse.Namespace) -> int:
    from models.synthetic_market import SyntheticMarketConfig, generate_market, write_market

    cfg = SyntheticMarketConfig(n_symbols=args.symbols, n_sessions=args.days, seed=args.seed)
    market = generate_market(cfg)
    write_market(market, Path(args.out))
    summary = {
        "out": str(Path(args.out)),
        "seed": args.seed,
        "tables": {name: len(getattr(market, name))
                   for name in ("quotes", "trades", "daily_bars", "membership")},
    }
    print(json.dumps(summary, indent=2))
    return 0


# ----------------------------------------------------------------------------- calibrate-impact
def cmd_calibrate_impact(args: argparse.Namespace) -> int:
    from sources import calibrate_file

    path = Path(args.file)
    if not path.exists():
        _fail(f"{path}: no such file")
    try:
        result = calibrate_file(path, args.model)
    except ValueError as exc:
        _fail(str(exc))
    print(result.to_json())
    return 0


# ----------------------------------------------------------------------------- demo / ui
def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import run_demo

    return run_demo(real_data=not args.synthetic_only, degraded=args.degraded_challenger)


def cmd_ui(args: argparse.Namespace) -> int:
    import os
    import signal
    import subprocess

    from bestex import settings

    home = settings.home()
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    (home / "mlflow").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DAGSTER_HOME=str(home / "dagster"))
    bindir = Path(sys.executable).parent
    backend = (settings.service_url("bestex_mlflow") if settings.profile() == "services"
               else f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    mlflow_cmd = [str(bindir / "mlflow"), "ui", "--host", "127.0.0.1", "--port",
                  str(args.mlflow_port), "--backend-store-uri", backend]
    dagster_cmd = [str(bindir / "dagster-webserver"), "-h", "127.0.0.1", "-p",
                   str(args.dagster_port), "-m", "pipelines.definitions"]
    dash_cmd = [sys.executable, "-m", "bestex.dashboard", "--home", str(home), "--host",
                "127.0.0.1", "--port", str(args.dashboard_port),
                *(["--journal", args.journal] if args.journal else [])]
    print(f"Dagster UI: http://127.0.0.1:{args.dagster_port}   "
          f"MLflow UI: http://127.0.0.1:{args.mlflow_port}   "
          f"Dashboard: http://127.0.0.1:{args.dashboard_port}", flush=True)
    mlflow_proc = subprocess.Popen(mlflow_cmd, env=env, start_new_session=True)
    dagster_proc = subprocess.Popen(dagster_cmd, env=env, start_new_session=True)
    dash_proc = subprocess.Popen(dash_cmd, env=env, start_new_session=True)
    procs = (dagster_proc, mlflow_proc, dash_proc)

    def _stop(*_: Any) -> None:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    try:
        return dagster_proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


# ----------------------------------------------------------------------------- registry
def _job_run(job_name: str, op: str, config: dict[str, Any]) -> Any:
    """Run a promotion job in process, recorded in the instance under ``BESTEX_HOME``."""
    from pipelines import promotion
    from pipelines.demo import dagster_instance

    job = {"promote": promotion.promote, "rollback": promotion.rollback}[job_name]
    # the op's failure (a refusal) is kept in the run record and printed once by the caller
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    return job.execute_in_process(run_config={**quiet, "ops": {op: {"config": config}}},
                                  instance=dagster_instance(), raise_on_error=False)


def _job_error(result: Any) -> tuple[str, str]:
    """(exception class name, message) of the root cause of a failed in-process run."""
    for ev in result.all_events:
        if ev.is_failure and ev.event_specific_data is not None:
            err = ev.event_specific_data.error
            while err is not None and err.cause is not None:
                err = err.cause
            if err is not None:
                return err.cls_name or "", err.message.strip()
    return "", "failed"


def _reason(value: str | None, flag: str) -> None:
    """A reason is recorded in the audit trail: blank is not one."""
    if value is not None and not value.strip():
        _fail(f"{flag} is blank; say why (it is recorded in the audit trail)")


def cmd_promote(args: argparse.Namespace) -> int:
    from pipelines.registry import UnknownVersion, default_registry

    _reason(args.reason, "--reason")
    _reason(args.override, "--override")

    try:
        info = default_registry().version(args.version)
    except UnknownVersion as exc:
        raise BadInput(str(exc)) from None
    result = _job_run("promote", "promote_version", {
        "version": str(args.version), "reason": args.reason, "override": args.override,
        "user": args.user})
    if not result.success:
        cls, message = _job_error(result)
        if cls == "PromotionRefused":  # recorded in the audit table as "refused"
            failures = info.gate_failures or ["(no gate results recorded)"]
            print(f"bestex: promotion of v{info.version} REFUSED (Dagster run {result.run_id}; "
                  "audit action 'refused'); failed gates:\n"
                  + "\n".join(f"  - {f}" for f in failures)
                  + "\nto promote anyway: --override REASON (recorded)", file=sys.stderr)
        else:
            print(f"bestex: error (Dagster run {result.run_id}): {message}", file=sys.stderr)
        return 1
    out = result.output_for_node("promote_version")
    print(f"v{out['version']} is champion" + (" (OVERRIDE recorded)" if args.override else "")
          + f"; promotion report {out['report']}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    _reason(args.reason, "--reason")
    result = _job_run("rollback", "rollback_champion", {"reason": args.reason,
                                                        "user": args.user})
    if not result.success:
        print(f"bestex: error (Dagster run {result.run_id}): {_job_error(result)[1]}",
              file=sys.stderr)
        return 1
    print(f"rolled back: v{result.output_for_node('rollback_champion')['version']} is champion")
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    from bestex.lineage import format_lineage
    from pipelines.registry import UnknownVersion, default_registry

    reg = default_registry()
    v = args.version
    if v in ("champion", "challenger"):
        info = reg.champion() if v == "champion" else reg.challenger()
        if info is None:
            raise BadInput(f"no {v} registered yet; run `make demo` first")
        v = info.version
    try:
        lineage = reg.lineage(v)
    except UnknownVersion as exc:
        raise BadInput(str(exc)) from None
    print(format_lineage(lineage))
    return 0 if lineage["proof"].get("holds") else 1


def cmd_models(args: argparse.Namespace) -> int:
    from pipelines.registry import default_registry

    reg = default_registry()
    import pandas as pd

    def cell(v: Any) -> Any:  # one line, at most 48 characters (the full text stays stored)
        if not isinstance(v, str):
            return v
        t = v.strip().replace("\n", " | ")
        return t if len(t) <= 48 else t[:45] + "..."

    def short(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.apply(lambda col: col if pd.api.types.is_numeric_dtype(col)
                           else col.map(cell))

    with pd.option_context("display.width", 200, "display.max_columns", 20):
        versions, audit = reg.versions(), reg.audit().tail(args.audit)
        if versions.empty:
            print(f"no version of {reg.name} registered yet under {reg.tracking_uri} "
                  "(run `make demo`)")
            return 0
        print(short(versions).to_string(index=False))
        print()
        print(short(audit).to_string(index=False))
    return 0


# ----------------------------------------------------------------------------- predict
def _write_table(df: Any, out: Path) -> None:
    name = out.name.lower()
    if name.endswith(".parquet"):
        df.to_parquet(out, index=False)
    elif name.endswith((".csv", ".csv.gz")):
        df.to_csv(out, index=False)
    else:
        _fail(f"{out}: output must end in .parquet, .csv or .csv.gz")


def cmd_predict(args: argparse.Namespace) -> int:
    """Cost, band and domain flag of each raw row of ``FILE`` from a registered model."""
    import time

    from models.cost_bundle import SERVING_OUTPUTS, ServingInputError, check_serving_rows
    from pipelines.registry import UnknownVersion, default_registry
    from sources import read_table_file

    path = Path(args.file)
    rows = read_table_file(path)
    try:
        checked = check_serving_rows(rows)
    except ServingInputError as exc:
        raise BadInput(f"{path}: {exc}") from None
    reg = default_registry()
    try:
        uri = reg.model_uri(args.model)
    except (LookupError, UnknownVersion) as exc:
        raise BadInput(f"{exc} (run `make demo` to register one)") from None
    t0 = time.perf_counter()
    model = reg.load_pyfunc(uri)
    t1 = time.perf_counter()
    pred = reg.predict(checked, model=model)
    t2 = time.perf_counter()
    out = rows.drop(columns=[c for c in SERVING_OUTPUTS if c in rows.columns])
    out = out.join(pred[list(SERVING_OUTPUTS)])
    if args.out:
        _write_table(out, Path(args.out))
        where = args.out
    else:
        out.to_csv(sys.stdout, index=False)
        where = "stdout"
    print(f"bestex predict: {len(out)} rows from {path} with {uri} -> {where} "
          f"(load {t1 - t0:.2f} s, predict {t2 - t1:.2f} s; "
          f"{int((~out['in_domain']).sum())} outside the training domain)", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- plan
def cmd_plan(args: argparse.Namespace) -> int:
    """Each order's chosen plan, child orders, predicted cost and band from a registered model."""
    from models.cost_bundle import ServingInputError
    from models.risk_controls import RiskLimits
    from pipelines.planning import plan_orders
    from pipelines.registry import UnknownVersion
    from sources import read_table_file

    path = Path(args.file)
    rows = read_table_file(path)
    if args.risk_aversion < 0:
        raise BadInput(f"--risk-aversion {args.risk_aversion} is negative")
    lim = None
    if args.max_child_qty is not None or args.max_participation is not None:
        try:
            lim = RiskLimits(max_child_qty=args.max_child_qty,
                             max_participation=args.max_participation)
        except ValueError as exc:
            raise BadInput(f"risk limits: {exc.errors()[0]['loc'][0]}: "  # type: ignore[attr-defined]
                           f"{exc.errors()[0]['msg']}") from None  # type: ignore[attr-defined]
    try:
        res = plan_orders(rows, ref=args.model, risk_aversion=args.risk_aversion, limits=lim)
    except ServingInputError as exc:
        raise BadInput(f"{path}: {exc}") from None
    except (LookupError, UnknownVersion) as exc:
        raise BadInput(f"{exc} (run `make demo` to register one)") from None
    if args.children:
        _write_table(res.children, Path(args.children))
    if args.out:
        _write_table(res.plans, Path(args.out))
        where = args.out
    else:
        res.plans.to_csv(sys.stdout, index=False, float_format="%.3f")
        where = "stdout"
    refused = int((res.plans["plan"] == "refused").sum())
    print(f"bestex plan: {len(res.plans)} orders from {path} with {res.model_uri}, risk "
          f"aversion {args.risk_aversion:g} -> {where}"
          + (f"; {len(res.children)} child orders -> {args.children}" if args.children else "")
          + (f"; {refused} refused (no plan within the risk limits)" if refused else ""),
          file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- score
def cmd_score(args: argparse.Namespace) -> int:
    """The model on a book it has not seen: replay a desk on it and score the predictions."""
    from pipelines.registry import UnknownVersion
    from pipelines.scoring import SCORE_COLUMNS, score_book_file

    try:
        rows = score_book_file(args.book, model=args.model, orders=args.orders, seed=args.seed,
                               trades=args.trades)
    except (LookupError, UnknownVersion) as exc:
        raise BadInput(f"{exc} (run `make demo` to register one)") from None
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    width = max(len(r["name"]) for r in rows)
    print("  ".join([f"{'book':<{width}}", *(f"{c:>16}" for c in SCORE_COLUMNS[1:])]))
    for r in rows:
        cells = [f"{r[c]:>16}" if isinstance(r[c], int) else f"{r[c]:>16.3f}"
                 for c in SCORE_COLUMNS[1:]]
        print("  ".join([f"{r['name']:<{width}}", *cells]))
    for r in rows:
        print(f"{r['name']}: {r['note']}")
    return 0


# ----------------------------------------------------------------------------- main
def _value_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epoch-unit", choices=["s", "ms", "us", "ns"], default=None,
                   help="unit of timestamps stored as numbers (epochs); without it a number in "
                        "a timestamp column is refused (landing files)")
    p.add_argument("--calendar", default="XNYS",
                   help="exchange calendar whose sessions bound market rows (default XNYS; "
                        "'none' for a 24-hour venue; landing files)")


def _model_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="champion",
                   help="alias (champion, challenger), version number or models:/ URI")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bestex", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check a Parquet/CSV file against a data contract")
    v.add_argument("table", help="contract name: quotes, depth, trades, daily_bars, membership, "
                                 "parent_orders, child_fills, labels, news")
    v.add_argument("file")
    v.add_argument("--max-errors", type=int, default=50, help="failures to list (0 = all)")
    _value_flags(v)
    v.set_defaults(func=cmd_validate)

    i = sub.add_parser("ingest", help="read a source, cleanse it, write tables and quarantine")
    i.add_argument("source", choices=["lobster", "bitmex", "daily-bars", "index", "landing"])
    i.add_argument("path", help="file or folder (LOBSTER zip/folder, BitMEX book file, tarball, "
                                "landing folder)")
    i.add_argument("--out", required=True,
                   help="output folder for Parquet tables: new, empty, or an earlier ingest's "
                        "(replaced whole; a bestex_manifest.json says what wrote it)")
    i.add_argument("--latency-ns", type=int, default=None,
                   help="feed latency added to ts to give available_at "
                        "(default: the source's, 1 ms for LOBSTER, 10 ms for BitMEX)")
    i.add_argument("--trades", help="BitMEX trades file (default: beside the book file)")
    _value_flags(i)
    i.set_defaults(func=cmd_ingest)

    s = sub.add_parser("synth", help="generate the synthetic market")
    s.add_argument("--symbols", type=int, default=8)
    s.add_argument("--days", type=int, default=30)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_synth)

    c = sub.add_parser("calibrate-impact",
                       help="fit an impact model to a desk's parent orders (Parquet/CSV)")
    c.add_argument("file", help="one row per parent order: is_bps, qty, adv, sigma, "
                                "duration_days (+ shares_outstanding for athl)")
    c.add_argument("--model", choices=["sqrt", "athl", "istar"], default="sqrt")
    c.set_defaults(func=cmd_calibrate_impact)

    d = sub.add_parser("demo", help="materialize the whole asset graph and print a summary")
    d.add_argument("--synthetic-only", action="store_true", help="skip the real data sets")
    d.add_argument("--degraded-challenger", action="store_true",
                   help="drill: retrain the cost model on shuffled labels and run it through "
                        "validation and the gates (it must be refused)")
    d.set_defaults(func=cmd_demo)

    pr = sub.add_parser("promote", help="make a registered cost-model version the champion")
    pr.add_argument("version")
    pr.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    pr.add_argument("--override", default=None,
                    help="promote although the gates failed; the reason is recorded")
    pr.add_argument("--user", default=None, help="who (default: $BESTEX_USER or the login)")
    pr.set_defaults(func=cmd_promote)

    rb = sub.add_parser("rollback", help="restore the previous champion")
    rb.add_argument("--reason", required=True)
    rb.add_argument("--user", default=None)
    rb.set_defaults(func=cmd_rollback)

    ln = sub.add_parser("lineage", help="the chain from a model version back to its data, and "
                                        "the proof that its holdout follows its training")
    ln.add_argument("version", help="a version number, or champion / challenger")
    ln.set_defaults(func=cmd_lineage)

    md = sub.add_parser("models", help="registered versions and the audit trail")
    md.add_argument("--audit", type=int, default=20, help="last audit rows to show")
    md.set_defaults(func=cmd_models)

    pd_ = sub.add_parser("predict", help="expected cost, 80%% band and domain flag of raw "
                                         "order rows (CSV/Parquet) from a registered model")
    pd_.add_argument("file", help="one row per parent order with its point-in-time market "
                                  "state (schema: README, 'Serving the cost model')")
    _model_flag(pd_)
    pd_.add_argument("--out", default=None,
                     help="output .csv/.csv.gz/.parquet (default: CSV on stdout)")
    pd_.set_defaults(func=cmd_predict)

    pl = sub.add_parser("plan", help="each parent order's execution plan (schedule, child "
                                     "orders, predicted cost and band) from a registered model")
    pl.add_argument("file", help="one row per parent order with its point-in-time market "
                                 "state (the serving schema; an order_id column is kept)")
    _model_flag(pl)
    pl.add_argument("--risk-aversion", type=float, default=0.5,
                    help="lambda: bps of mean cost per bps of predicted sd (default 0.5)")
    pl.add_argument("--max-child-qty", type=float, default=None, help="risk limit: shares")
    pl.add_argument("--max-participation", type=float, default=None,
                    help="risk limit: child qty / ADV share of its slot")
    pl.add_argument("--out", default=None,
                    help="plans as .csv/.csv.gz/.parquet (default: CSV on stdout)")
    pl.add_argument("--children", default=None, help="child orders of the plans to this file")
    pl.set_defaults(func=cmd_plan)

    sc = sub.add_parser("score", help="score a registered model on a book it has not seen "
                                      "(LOBSTER zip/folder, BitMEX snapshots + trades)")
    sc.add_argument("book", help="LOBSTER zip, folder or CSV pair; or a BitMEX snapshot "
                                 "file (.csv.gz) or its folder")
    _model_flag(sc)
    sc.add_argument("--orders", type=int, default=500, help="parent orders to replay per day")
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--trades", help="BitMEX trades file (default: beside the book file)")
    sc.add_argument("--json", action="store_true", help="the figures as JSON")
    sc.set_defaults(func=cmd_score)

    u = sub.add_parser("ui", help="start the Dagster UI, the MLflow UI and the paper-trading "
                       "dashboard on 127.0.0.1 (Ctrl-C stops all three)")
    u.add_argument("--dagster-port", type=int, default=3000)
    u.add_argument("--mlflow-port", type=int, default=5000)
    u.add_argument("--dashboard-port", type=int, default=8050)
    u.add_argument("--journal", default=None,
                   help="the paper journal the dashboard shows (default: the newest under "
                   "BESTEX_HOME/paper)")
    u.set_defaults(func=cmd_ui)

    from bestex._paper_commands import add_paper_commands
    from bestex._services_commands import add_services_commands

    add_paper_commands(sub)
    add_services_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    from validation.contracts import ContractError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValidationError as exc:
        errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"bestex: error: invalid {args.command} options: {errs}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (BadInput, ContractError, OSError) as exc:  # OSError: missing file, --out is a file …
        print(f"bestex: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
