"""Stage 5: the model under validation paper-trades a replayed real day through the paper
service, and the session is reconciled with a backtest of the same orders
(``validation/paper/amzn``).

The asset is a thin adapter around the real service: it writes a desk's parent orders for the
AMZN 2012-06-21 day (:func:`validation.paper_reconcile.desk_day_orders`), runs
``bestex paper --feed amzn --speed 0 --orders FILE --model <this run's model URI> --reconcile
DIR`` as its own process (the FIX acceptor bound to 127.0.0.1 on a free port, a password
generated for the session, the journal under ``BESTEX_HOME/paper``), and reads what the command
wrote: the per-order reconciliation, its summary, the report and plots, which go to Dagster
metadata and to ``validation/paper`` of the model's MLflow run. ``[paper]`` of ``gates.toml``
judges the summary.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd

import sources
from assets._plots import md_images, reports_dir
from assets.learning import COST_MODEL_KEY
from assets.records import CostModelRecord
from bestex import settings
from validation.paper_reconcile import desk_day_orders
from validation.stress import book_spec

PAPER_KEY = dg.AssetKey(["validation", "paper", "amzn"])

_ROOT = Path(__file__).resolve().parent.parent


class PaperStageConfig(dg.Config):
    """Run config of stage 5."""

    n_orders: int = 40
    seed: int = 5
    max_duration_min: float = 60.0
    timeout_s: float = 600.0


def _amzn_book(data: Path):
    books = [(b, k) for b, k in sources.recorded_books(data / "lobster") if b.symbol == "AMZN"]
    if not books:
        raise FileNotFoundError(f"no AMZN LOBSTER day in {data / 'lobster'}")
    return books[0]


@dg.asset(
    key=PAPER_KEY, group_name="validation", required_resource_keys={"registry"},
    ins={"model": dg.AssetIn(COST_MODEL_KEY)},
    check_specs=[
        dg.AssetCheckSpec("every_order_reconciled", asset=PAPER_KEY, blocking=True,
                          description="every parent the session planned was compared with "
                          "its backtest, and every planned child was sent"),
        dg.AssetCheckSpec("session_completed", asset=PAPER_KEY, blocking=True,
                          description="the paper session ran to the end of the day: every "
                          "order ended filled or expired at its horizon"),
    ],
    description="Stage 5: paper trading — the model's policy works a desk's orders on the "
    "replayed AMZN day through the FIX paper service (`bestex paper`), reconciled per order "
    "with a backtest of the same orders (latency and feed-time parts); gated by [paper].")
def amzn_paper(context: dg.AssetExecutionContext, config: PaperStageConfig,
               model: CostModelRecord):
    data = settings.data_dir()
    if data is None or not (data / "lobster").exists():
        context.log.warning("no real data folder: stage 5 (paper trading on AMZN) is skipped "
                            "and its gate not judged")
        yield dg.Output({}, metadata={"skipped": "no data folder"})
        for name in ("every_order_reconciled", "session_completed"):
            yield dg.AssetCheckResult(check_name=name, asset_key=PAPER_KEY, passed=True,
                                      metadata={"skipped": "no data folder"})
        return
    book, kind = _amzn_book(data)
    spec, _ = book_spec(book, kind)
    out = reports_dir() / "validation" / "paper"
    out.mkdir(parents=True, exist_ok=True)
    orders = desk_day_orders(book.quotes, symbol="AMZN", adv=spec.estimates["adv"],
                             n=config.n_orders, seed=config.seed, pct_adv=spec.pct_adv,
                             max_duration_min=config.max_duration_min)
    orders_path = out / "orders.csv"
    orders.to_csv(orders_path, index=False)
    session = f"stage5-{context.run_id[:8]}"
    cmd = [sys.executable, "-m", "bestex.cli", "paper", "--feed", "amzn", "--speed", "0",
           "--fix-port", "0", "--orders", str(orders_path), "--session", session,
           "--model", model.model_uri, "--reconcile", str(out)]
    env = {**os.environ, "BESTEX_FIX_PASSWORD": secrets.token_urlsafe(24),
           "MLFLOW_UV_AUTO_DETECT": "false"}
    context.log.info(f"stage 5: {' '.join(cmd[2:])}")
    run = subprocess.run(cmd, cwd=_ROOT, env=env, capture_output=True, text=True,
                         timeout=config.timeout_s, check=False)
    for line in run.stderr.splitlines():
        if line.startswith("paper:"):
            context.log.info(line)
    if run.returncode != 0:
        raise RuntimeError(f"the paper session failed (exit {run.returncode}): "
                           f"{run.stderr.strip().splitlines()[-1] if run.stderr else ''}")
    summary = json.loads((out / "summary.json").read_text())
    table = pd.read_csv(out / "reconciliation.csv")
    plots = [str(out / "paper_vs_backtest.png"), str(out / "paper_diff_parts.png")]
    md = (out / "report.md").read_text()
    metrics = {f"paper_{k}": float(v) for k, v in summary.items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    files = [out / "report.md", out / "reconciliation.csv", out / "summary.json",
             orders_path, *plots]
    context.resources.registry.attach(model.mlflow_run_id, "paper", files, metrics)
    yield dg.Output(summary, metadata={
        "report": dg.MetadataValue.md(md), "plots": dg.MetadataValue.md(md_images(plots)),
        "journal": summary.get("journal", ""),
        "summary": dg.MetadataValue.json(json.loads(json.dumps(summary, default=str)))})
    planned = int((table["children_planned"] > 0).sum())
    yield dg.AssetCheckResult(
        check_name="every_order_reconciled", asset_key=PAPER_KEY,
        passed=bool(summary["compared"] == planned == len(orders)
                    and summary["children_unsent"] == 0),
        metadata={"orders": len(orders), "planned": planned, "compared": summary["compared"],
                  "children_unsent": summary["children_unsent"]})
    ended = table["status"].isin(["filled", "expired"])
    yield dg.AssetCheckResult(check_name="session_completed", asset_key=PAPER_KEY,
                              passed=bool(ended.all()),
                              metadata={"statuses": dg.MetadataValue.json(
                                  table["status"].value_counts().to_dict())})


def paper_assets() -> list[dg.AssetsDefinition]:
    """Stage 5."""
    return [amzn_paper]


__all__ = ["PAPER_KEY", "PaperStageConfig", "paper_assets"]
