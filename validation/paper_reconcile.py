"""Stage 5: reconcile a paper-trading session with a backtest of the same parent orders.

The paper service (``bestex paper``) works each parent with the champion's policy on a replayed
day and journals every fill (:mod:`bestex.paper.journal`). The backtest works the **same
parents with the same planned children** on the same recorded day with the simulator
(:func:`models.simulator.replay_l1`), as the research stages do. The two differ only where a
live session differs from a backtest, and each difference is attributed:

* **latency**: a child leaves when the service acts on the first market event at or after its
  scheduled time (plus the venue latency), not at the scheduled time itself; the backtest run
  again at the paper's own arrival times, on the full book, isolates this part
  (``latency_bps = IS(backtest at paper times) - IS(backtest)``);
* **feed time**: the service fills a child on the book it **knew** (quotes published by their
  ``available_at``), the backtest on the book as it was (``ts``): the rest of the difference
  (``feed_bps = IS(paper) - IS(backtest at paper times)``);
* **queue position** is not a source here: both sides use the replay's passive fill rule
  (filled on a trade-through within the child's slot, queue ignored); the report says so.

The implementation shortfall is the simulator's: fills against the parent's arrival mid, fees
included, on the filled part (:func:`models._sim_types.cost_bps`), in bps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.risk_controls import RiskLimits
from models.simulator import Children, Parents, SimulatorConfig, replay_l1

__all__ = ["PaperJournal", "Reconciliation", "desk_day_orders", "plot_reconciliation", "reconcile"]

_NS_MIN = 60_000_000_000


@dataclass(frozen=True)
class PaperJournal:
    """A paper session's parents (their journaled state, one row each: ``child_ns``,
    ``sent_ns``, ``child_qty``, ``child_kind`` lists, ``plan_name``), fills and events, as
    read from its journal by the caller (``assets.paper``; a stage reads no file)."""

    orders: pd.DataFrame
    fills: pd.DataFrame
    events: pd.DataFrame


def desk_day_orders(quotes: pd.DataFrame, *, symbol: str, adv: float, n: int = 40,
                    seed: int = 5, pct_adv: tuple[float, float] = (1e-4, 1e-2),
                    min_duration_min: float = 5.0, max_duration_min: float = 60.0,
                    session_ns: int | None = None) -> pd.DataFrame:
    """A desk's parent orders over a recorded day (the ``--orders`` file of ``bestex paper``):
    decision times uniform over the day's quotes (the first 15 minutes and the last order's
    horizon left free), sizes log-uniform in ``pct_adv`` of ``adv``, horizons uniform."""
    rng = np.random.default_rng(seed)
    ts = pd.to_datetime(quotes["ts"], utc=True)
    first, last = ts.min(), ts.max()
    span = (last - first).value
    lo = first + pd.Timedelta(minutes=min(15.0, span / _NS_MIN * 0.05))
    dur = rng.uniform(min_duration_min, max_duration_min, n)
    hi_ns = last.value - int(max_duration_min * _NS_MIN)
    if hi_ns <= lo.value:  # a short recording (BitMEX's 18 minutes): horizons to fit
        dur = np.minimum(dur, max((last - lo).value / _NS_MIN / 2, 1.0))
        hi_ns = last.value - int(dur.max() * _NS_MIN)
    dec = np.sort(rng.uniform(lo.value, max(hi_ns, lo.value + 1), n)).astype(np.int64)
    pct = np.exp(rng.uniform(np.log(pct_adv[0]), np.log(pct_adv[1]), n))
    return pd.DataFrame({"cl_ord_id": [f"D{i:04d}" for i in range(n)], "symbol": symbol,
                         "side": rng.choice([1, -1], n),
                         "qty": np.maximum(np.round(pct * adv), 1.0),
                         "decision_ts": pd.to_datetime(dec, utc=True), "duration_min": dur})


@dataclass(frozen=True)
class Reconciliation:
    """Per order (``table``) and overall (``summary``) paper against backtest."""

    table: pd.DataFrame
    summary: dict[str, Any]

    def to_markdown(self, *, title: str = "Stage 5 — paper trading",
                    plots: list[Path] | None = None) -> str:
        """The report: the summary, the attribution, the ten largest differences, the plots."""
        s, t = self.summary, self.table
        lines = [f"# {title}", "",
                 f"{s['orders']} parent orders paper-traded; {s['compared']} compared with the "
                 "backtest of the same parents and planned children on the same day.", "",
                 "| measure | paper | backtest |", "|---|---:|---:|",
                 f"| fill rate (by quantity) | {s['paper_fill_rate']:.3f} | "
                 f"{s['bt_fill_rate']:.3f} |",
                 f"| mean IS (bps) | {t['paper_is_bps'].mean():.2f} | "
                 f"{t['bt_is_bps'].mean():.2f} |", "",
                 f"Per order, paper minus backtest: mean {s['mean_diff_bps']:+.2f} bps, mean "
                 f"|diff| {s['mean_abs_diff_bps']:.2f}, p95 |diff| {s['p95_abs_diff_bps']:.2f}, "
                 f"max {s['max_abs_diff_bps']:.2f}. Split: latency {s['mean_latency_bps']:+.2f} "
                 f"bps (children left {s['mean_delay_ms']:.0f} ms after their schedule on "
                 f"average: at the next market event), feed time {s['mean_feed_bps']:+.2f} bps "
                 "(the book the service knew against the book as it was). Queue position: "
                 f"{s['queue_position']}.", "",
                 "Reasons: " + ", ".join(f"{k} {v}" for k, v in s["reasons"].items()) + ".",
                 "", "Largest differences:", "",
                 "| order | plan | paper IS | backtest IS | diff | latency | feed | delay ms "
                 "| reason |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
        top = t.reindex(t["diff_bps"].abs().sort_values(ascending=False).index).head(10)
        for r in top.itertuples():
            lines.append(f"| {r.cl_ord_id} | {r.plan} | {r.paper_is_bps:.2f} | "
                         f"{r.bt_is_bps:.2f} | {r.diff_bps:+.2f} | {r.latency_bps:+.2f} | "
                         f"{r.feed_bps:+.2f} | {r.mean_delay_ms:.0f} | {r.reason} |")
        for p in plots or []:
            lines += ["", f"![{Path(p).stem}]({Path(p).name})"]
        return "\n".join(lines) + "\n"


def _replay(quotes: pd.DataFrame, o: pd.DataFrame, child_ns: list[np.ndarray],
            qty: list[np.ndarray], kind: list[np.ndarray], sim: SimulatorConfig,
            limits: RiskLimits | None, symbol: str) -> Any:
    n = len(o)
    par = Parents(symbol_idx=np.zeros(n, np.int64),
                  arrival_mid=o["arrival_mid"].to_numpy(np.float64),
                  sigma_daily=o["sigma_daily"].to_numpy(np.float64),
                  adv=o["adv"].to_numpy(np.float64), spread_bps=np.full(n, np.nan),
                  shares_outstanding=o["shares_outstanding"].to_numpy(np.float64),
                  start_ns=o["decision_ns"].to_numpy(np.int64),
                  end_ns=o["end_ns"].to_numpy(np.int64),
                  order_id=o["order_id"].to_numpy())
    idx = np.concatenate([np.full(len(c), i) for i, c in enumerate(child_ns)]).astype(np.int64)
    kids = Children(parent_idx=idx, decision_ns=np.concatenate(child_ns).astype(np.int64),
                    qty=np.concatenate(qty), side=o["side"].to_numpy(np.int64)[idx],
                    kind=np.concatenate(kind).astype(np.int8),
                    limit_offset_bps=np.full(len(idx), np.nan))
    book = quotes.loc[quotes["symbol"].astype(str) == symbol,
                      ["ts", "available_at", "symbol", "bid_px", "bid_sz", "ask_px", "ask_sz"]]
    return replay_l1(book.sort_values("ts", kind="stable"), par, kids, sim, limits,
                     symbols=[symbol])


def reconcile(journal: PaperJournal, quotes: pd.DataFrame, sim: SimulatorConfig, *,
              limits: RiskLimits | None = None, tolerance_bps: float = 0.01) -> Reconciliation:
    """Paper against backtest for every parent the session planned.

    Parameters
    ----------
    journal : PaperJournal
    quotes : pandas.DataFrame
        The recorded day's quotes (contract columns), the book the backtest replays.
    sim : SimulatorConfig
        The session's fill physics (the feed's: fees, latency, impact).
    limits : RiskLimits, optional
        The child limits the session ran under.
    tolerance_bps : float
        A difference below this is "none".
    """
    o = journal.orders
    if o.empty:
        raise ValueError("the paper session journaled no orders")
    o = o[o["child_ns"].map(len) > 0].reset_index(drop=True)
    if o.empty:
        raise ValueError("no order of the paper session was planned (no children)")
    f = journal.fills
    got = f.assign(notional=f["qty"] * f["px"]).groupby("order_id")[
        ["qty", "notional", "fee"]].sum() if len(f) else pd.DataFrame(
            columns=["qty", "notional", "fee"])
    got = got.reindex(o["order_id"]).fillna(0.0)
    side = o["side"].to_numpy(np.float64)
    mid = o["arrival_mid"].to_numpy(np.float64)
    filled = got["qty"].to_numpy(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        paper_is = np.where(filled > 0, (side * (got["notional"].to_numpy() - mid * filled)
                                         + got["fee"].to_numpy()) / (mid * filled) * 1e4,
                            np.nan)
    lat = sim.latency_ns
    parts: list[pd.DataFrame] = []
    for sym, g in o.groupby("symbol", sort=False):
        idx = g.index.to_numpy()
        sched = [np.asarray(x, np.int64) for x in g["child_ns"]]
        # the children the paper session sent, at the times it sent them (less the venue's
        # latency, which the simulator adds back); a child never sent was not worked
        sent = [np.asarray(x, np.int64) - lat for x in g["sent_ns"]]
        qty = [np.asarray(x, np.float64) for x in g["child_qty"]]
        kind = [np.asarray(x, np.int64) for x in g["child_kind"]]
        n_sent = [len(s) for s in sent]
        full = _replay(quotes, g, sched, qty, kind, sim, limits, str(sym))
        at_paper = _replay(quotes, g, sent, [q[:k] for q, k in zip(qty, n_sent, strict=True)],
                           [c[:k] for c, k in zip(kind, n_sent, strict=True)], sim, limits,
                           str(sym)) if sum(n_sent) else None
        delay = [float(np.mean(s - t[:len(s)]) / 1e6) if len(s) else np.nan
                 for s, t in zip(sent, sched, strict=True)]
        parts.append(pd.DataFrame({
            "i": idx, "bt_is_bps": full.shortfall_bps, "bt_filled": full.filled_qty,
            "bt_at_paper_is_bps": (at_paper.shortfall_bps if at_paper is not None
                                   else np.full(len(g), np.nan)),
            "mean_delay_ms": delay, "children_planned": [len(t) for t in sched],
            "children_sent": n_sent}))
    r = pd.concat(parts).set_index("i").sort_index()
    t = pd.DataFrame({
        "order_id": o["order_id"], "cl_ord_id": o["cl_ord_id"], "symbol": o["symbol"],
        "side": o["side"], "qty": o["qty"], "plan": o.get("plan_name", ""),
        "status": o["status"], "paper_filled": filled, "bt_filled": r["bt_filled"].to_numpy(),
        "paper_is_bps": paper_is, "bt_is_bps": r["bt_is_bps"].to_numpy(),
        "bt_at_paper_is_bps": r["bt_at_paper_is_bps"].to_numpy(),
        "mean_delay_ms": r["mean_delay_ms"].to_numpy(),
        "children_planned": r["children_planned"].to_numpy(),
        "children_sent": r["children_sent"].to_numpy()})
    t["paper_fill_rate"] = t["paper_filled"] / t["qty"]
    t["bt_fill_rate"] = t["bt_filled"] / t["qty"]
    t["diff_bps"] = t["paper_is_bps"] - t["bt_is_bps"]
    t["latency_bps"] = t["bt_at_paper_is_bps"] - t["bt_is_bps"]
    t["feed_bps"] = t["paper_is_bps"] - t["bt_at_paper_is_bps"]
    t["reason"] = [_reason(row, tolerance_bps) for row in t.itertuples()]
    both = t["paper_is_bps"].notna() & t["bt_is_bps"].notna()
    d = t.loc[both, "diff_bps"].to_numpy(np.float64)
    summary = {
        "orders": len(t), "compared": int(both.sum()),
        "mean_diff_bps": float(np.mean(d)) if d.size else float("nan"),
        "mean_abs_diff_bps": float(np.mean(np.abs(d))) if d.size else float("nan"),
        "p95_abs_diff_bps": float(np.percentile(np.abs(d), 95)) if d.size else float("nan"),
        "max_abs_diff_bps": float(np.max(np.abs(d))) if d.size else float("nan"),
        "mean_latency_bps": float(t.loc[both, "latency_bps"].mean()),
        "mean_feed_bps": float(t.loc[both, "feed_bps"].mean()),
        "paper_fill_rate": float(t["paper_filled"].sum() / t["qty"].sum()),
        "bt_fill_rate": float(t["bt_filled"].sum() / t["qty"].sum()),
        "mean_delay_ms": float(t["mean_delay_ms"].mean()),
        "children_unsent": int((t["children_planned"] - t["children_sent"]).sum()),
        "reasons": t["reason"].str.split(":").str[0].value_counts().to_dict(),
        "queue_position": "not a source: paper and backtest use the replay's passive rule "
                          "(trade-through within the slot; queue ignored)"}
    return Reconciliation(t, summary)


def _reason(row: Any, tol: float) -> str:
    d, lat, feed = row.diff_bps, row.latency_bps, row.feed_bps
    if row.children_sent < row.children_planned:
        return (f"not worked: {row.children_planned - row.children_sent} of "
                f"{row.children_planned} children never sent ({row.status})")
    if not np.isfinite(d):
        return "no fill on one side"
    if abs(d) < tol:
        return "none: same fills"
    if abs(lat) >= abs(feed):
        return (f"latency: children sent {row.mean_delay_ms:.0f} ms after their schedule "
                f"({lat:+.2f} bps)")
    return f"feed time: the book the service knew lagged the market ({feed:+.2f} bps)"


def plot_reconciliation(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """PNG plots: paper against backtest IS per order (on the diagonal when they agree), and
    each order's difference split into latency and feed time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = table.dropna(subset=["paper_is_bps", "bt_is_bps"])
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(t["bt_is_bps"], t["paper_is_bps"], s=14, c=t["mean_delay_ms"], cmap="viridis")
    lo = float(min(t["bt_is_bps"].min(), t["paper_is_bps"].min())) if len(t) else 0.0
    hi = float(max(t["bt_is_bps"].max(), t["paper_is_bps"].max())) if len(t) else 1.0
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
    ax.set_xlabel("backtest IS (bps)")
    ax.set_ylabel("paper IS (bps)")
    ax.set_title("paper against backtest, per order (colour: child delay, ms)", fontsize=9)
    fig.tight_layout()
    scatter = out / "paper_vs_backtest.png"
    fig.savefig(scatter, dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    o = t.sort_values("diff_bps")
    x = np.arange(len(o))
    ax.bar(x, o["latency_bps"], color="tab:blue", label="latency")
    ax.bar(x, o["feed_bps"], bottom=o["latency_bps"], color="tab:orange", label="feed time")
    ax.plot(x, o["diff_bps"], "k.", ms=4, label="paper - backtest")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel("orders, by difference")
    ax.set_ylabel("bps")
    ax.set_title("paper minus backtest: the two parts", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    parts = out / "paper_diff_parts.png"
    fig.savefig(parts, dpi=110)
    plt.close(fig)
    return [scatter, parts]
