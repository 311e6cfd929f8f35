"""The execution policy of the model under validation (issue 14): its closed-loop backtest, the
efficient frontier and the reflexive loop (:func:`validation.policy_stage.evaluate_policy`),
as one stage-4 asset, ``validation/policy/synth``.

It writes a report (markdown, plots) to Dagster metadata and to MLflow twice: one run per policy
in the experiment ``execution_policy`` (its configuration, candidate grid and metrics, tagged
with the cost model's run: the policy is versioned beside the model it uses) and the same report
under ``validation/policy`` of the cost model's own run. ``[policy]`` of ``gates.toml`` judges
its table.
"""

import json

import dagster as dg
import pandas as pd

import sources
from assets._plots import md_images, reports_dir
from assets.execution import _market
from assets.learning import _TRAINING_KEY, COST_MODEL_KEY, _dagster_config
from assets.records import CostModelRecord
from bestex import settings
from models.cost_models import CostModelParams
from models.cost_training import TrainingConfig, holdout_split
from models.policy import PolicyConfig
from validation.policy_backtest import plot_backtest
from validation.policy_real import real_book_policy
from validation.policy_stage import PolicyStageConfig, PolicyStageResult, evaluate_policy
from validation.stress import book_spec

POLICY_KEY = dg.AssetKey(["validation", "policy", "synth"])
POLICY_EXPERIMENT = "execution_policy"

PolicyParams = _dagster_config(PolicyStageConfig, "PolicyParams")

_COLUMNS = ["group", "strategy", "n", "truth_bps", "realized_bps", "true_sd_bps",
            "objective_bps", "policy_minus_truth_bps", "policy_minus_truth_lo",
            "policy_minus_truth_hi", "policy_minus_objective_bps", "policy_minus_objective_hi"]


def _real_tables(context: dg.AssetExecutionContext, bundle, cfg: PolicyStageConfig
                 ) -> pd.DataFrame:
    """The policy's paired table on every real book of the data and landing folders."""
    parts = []
    data = settings.data_dir()
    if data is None:
        return pd.DataFrame()
    for book, kind in sources.real_books(data, settings.landing_dir(), warn=context.log.warning):
        spec, name = book_spec(book, kind)
        try:
            table, _ = real_book_policy(book, spec, name, bundle, n_boot=cfg.n_boot,
                                        config=PolicyConfig(risk_aversion=cfg.risk_aversion))
        except ValueError as exc:  # a book too short for a desk: said, not used
            context.log.warning(f"policy on {name}: left out: {exc}")
            continue
        parts.append(table)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _report(res: PolicyStageResult, cfg: PolicyStageConfig, model_run: str,
            real: pd.DataFrame) -> str:
    fmt = {"floatfmt": ".2f", "index": False}
    chosen = res.decisions.chosen["name"].value_counts().rename_axis("plan").reset_index()
    it = res.loop.iterations
    ope = res.loop.ope
    return "\n".join([
        "# Stage 4 — the execution policy", "",
        f"Cost model run `{model_run}`; risk aversion lambda = {cfg.risk_aversion}; "
        f"{len(res.orders)} out-of-sample orders, every candidate plan simulated on the same "
        "paths. `truth` is the simulator's true expected IS, `objective` = truth + lambda x "
        "true sd; `policy_minus_*`: paired mean and 95% bootstrap interval (negative: the "
        "policy is cheaper).", "",
        res.table[_COLUMNS].to_markdown(**fmt), "",
        "## Plans chosen", "", chosen.to_markdown(index=False), "",
        "## The same table on stress scenarios", "",
        "The policy on each stress scenario's market (calm sessions, then the stress: "
        "`validation.stress.SCENARIOS`), its own orders, every plan simulated; `regime` is the "
        "generator's true regime of the order's session.", "",
        (res.scenarios[["scenario", *_COLUMNS]].to_markdown(**fmt) if len(res.scenarios)
         else "(no scenario)"), "",
        "## The same table on the real replays", "",
        "The stage-4 desk's orders of each recorded book worked with every plan on the recorded "
        "quotes (simulator fills and footprint). No truth on a recorded day: `truth_bps` here "
        "is the market-adjusted cost (realized less the book's own move), `true_sd_bps` the "
        "desk's timing-risk estimate; the oracles are ex post on that path. VWAP and POV are "
        "not candidates (no volume profile of earlier sessions).", "",
        (real[["book", *_COLUMNS]].to_markdown(**fmt) if len(real) else "(no real book)"), "",
        "## Efficient frontier (the policy at each risk aversion)", "",
        res.frontier.to_markdown(**fmt), "",
        "## The reflexive loop", "",
        "Each iteration: the policy with model M_k works the next block of orders "
        f"epsilon-greedily (epsilon = {cfg.explore}); M_k's error against the true expected "
        "cost is out of sample; the logged fills, weighted 1/propensity, join the training rows "
        "of M_(k+1).", "", it.to_markdown(**fmt), "",
        "## Off-policy evaluation from the logged data", "",
        "IPS, self-normalized IPS and doubly robust (reward model: M_k's mean) estimates of "
        "each target policy's mean cost, against the simulated truth on the same orders; `ess`: "
        "effective sample size.", "", ope.to_markdown(**fmt), ""])


def _metrics(res: PolicyStageResult) -> dict[str, float]:
    t = res.table
    m: dict[str, float] = {}
    for _, r in t[t["group"] == "all"].iterrows():
        m[f"policy_{r['strategy']}_truth_bps"] = float(r["truth_bps"])
        if r["strategy"] != "policy":
            m[f"policy_minus_{r['strategy']}_truth_bps"] = float(r["policy_minus_truth_bps"])
    it = res.loop.iterations
    for _, r in it.iterrows():
        k = int(r["iteration"])
        m[f"loop_{k}_model_mae_bps"] = float(r["model_mae_chosen_bps"])
        m[f"loop_{k}_policy_objective_bps"] = float(r["policy_objective_bps"])
    g = res.loop.ope[res.loop.ope["target"] == "greedy"]
    m["ope_greedy_coverage"] = float(g["covers_truth"].mean()) if len(g) else float("nan")
    return m


@dg.asset(
    key=POLICY_KEY, group_name="validation", required_resource_keys={"registry"},
    ins={"model": dg.AssetIn(COST_MODEL_KEY), "training_set": dg.AssetIn(_TRAINING_KEY),
         "quotes": dg.AssetIn(["cleansed", "synth", "quotes"]),
         "trades": dg.AssetIn(["cleansed", "synth", "trades"]),
         "daily_bars": dg.AssetIn(["cleansed", "synth", "daily_bars"]),
         "membership": dg.AssetIn(["cleansed", "synth", "membership"]),
         "truth": dg.AssetIn(["raw", "synth", "ground_truth"])},
    check_specs=[
        dg.AssetCheckSpec("plans_sum_to_parents", asset=POLICY_KEY, blocking=True,
                          description="every order's chosen plan was fully worked: the "
                          "simulated filled plus unfilled quantity equals the parent"),
        dg.AssetCheckSpec("loop_ran_three_iterations", asset=POLICY_KEY, blocking=True,
                          description="the reflexive loop ran at least 3 iterations"),
    ],
    description="Stage 4: the execution policy — per order the plan minimizing the model's "
    "predicted mean + lambda x predicted sd; closed-loop backtest against TWAP, VWAP, POV, "
    "fixed and oracle Almgren-Chriss on the same orders and paths; the reflexive loop with "
    "off-policy evaluation; gated by [policy].")
def synth_policy(context: dg.AssetExecutionContext, config: PolicyParams,
                 model: CostModelRecord, training_set: pd.DataFrame, quotes: pd.DataFrame,
                 trades: pd.DataFrame, daily_bars: pd.DataFrame, membership: pd.DataFrame,
                 truth: dict):
    registry = context.resources.registry
    cfg = PolicyStageConfig(**config.model_dump())
    bundle = registry.load_bundle(model.model_uri)
    tcfg = TrainingConfig(seed=model.seed, noise_floor_bps=model.noise_floor_bps)
    split = holdout_split(training_set, tcfg)
    market = _market(quotes, trades, daily_bars, membership, truth)
    res = evaluate_policy(market, bundle, split.train, CostModelParams(**model.params),
                          start=split.holdout["decision_ts"].min(), config=cfg,
                          progress=context.log.info)
    out = reports_dir() / "validation" / "policy"
    out.mkdir(parents=True, exist_ok=True)
    plots = [str(p) for p in plot_backtest(res.table, out, frontier=res.frontier)]
    real = _real_tables(context, bundle, cfg)
    md = _report(res, cfg, model.mlflow_run_id, real)
    (out / "report.md").write_text(md)
    res.table.to_csv(out / "backtest.csv", index=False)
    res.loop.iterations.to_csv(out / "loop.csv", index=False)
    res.loop.ope.to_csv(out / "ope.csv", index=False)
    real.to_csv(out / "real_books.csv", index=False)
    res.scenarios.to_csv(out / "scenarios.csv", index=False)
    files = [out / "report.md", out / "backtest.csv", out / "loop.csv", out / "ope.csv",
             out / "real_books.csv", out / "scenarios.csv", *map(str, plots)]
    metrics = _metrics(res)
    if len(real):
        for _, r in real[(real["group"] == "all") & (real["strategy"] == "twap")].iterrows():
            metrics[f"policy_real_{r['book']}_minus_twap_bps"] = float(
                r["policy_minus_truth_bps"])
    grid = [c.model_dump() for c in res.decisions.grid]
    with registry.start_run(experiment=POLICY_EXPERIMENT,
                            run_name=f"policy lambda={cfg.risk_aversion:g} on "
                                     f"{model.mlflow_run_id[:8]}",
                            tags={"cost_model_run_id": model.mlflow_run_id,
                                  "cost_model_uri": model.model_uri,
                                  "dagster_run_id": context.run_id}) as run:
        run.log_params({**cfg.model_dump(), "n_candidates": len(grid),
                        "policy_config": json.dumps(res.decisions.config.model_dump())})
        run.log_dict({"policy": res.decisions.config.model_dump(), "candidates": grid,
                      "stage": cfg.model_dump(), "cost_model_run_id": model.mlflow_run_id},
                     "policy.json")
        run.log_metrics(metrics)
        for f in files:
            run.log_artifact(f, artifact_path="report")
        policy_run = run.run_id
    registry.attach(model.mlflow_run_id, "policy", files, metrics)
    ch = res.chosen_children().groupby("order_id")["qty"].sum()
    parent = res.orders.set_index(res.orders["order_id"].astype(str))["qty"]
    gap = (ch.reindex(parent.index).fillna(0.0) - parent).abs() / parent
    worked = bool((gap < 1e-9).all())
    yield dg.Output(res.table, metadata={
        "report": dg.MetadataValue.md(md), "plots": dg.MetadataValue.md(md_images(plots)),
        "policy_mlflow_run": policy_run,
        "timings_s": dg.MetadataValue.json({k: round(v, 2) for k, v in res.timings_s.items()}),
        "metrics": dg.MetadataValue.json(json.loads(json.dumps(metrics)))})
    yield dg.AssetCheckResult(check_name="plans_sum_to_parents", asset_key=POLICY_KEY,
                              passed=worked, metadata={"orders": len(res.orders),
                                                       "max_rel_gap": float(gap.max())})
    yield dg.AssetCheckResult(check_name="loop_ran_three_iterations", asset_key=POLICY_KEY,
                              passed=len(res.loop.iterations) >= 3,
                              metadata={"iterations": len(res.loop.iterations)})


def policy_assets() -> list[dg.AssetsDefinition]:
    """The policy stage."""
    return [synth_policy]
