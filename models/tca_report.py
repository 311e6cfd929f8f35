r"""TCA report: a markdown file with PNG plots of realized cost (``is_bps``) by size, schedule, regime.

Sections: overall summary and mean decomposition; cost against %ADV (log x; scatter, binned
means with bootstrap 95 % CIs, and the fitted square-root curve ``Y·σ·sqrt(Q/V)·1e4`` when a fit
is given); cost by schedule/strategy; cost by regime; the distribution of ``is_bps``. Each section
has a summary table (``n, mean, median, std, ci_lo, ci_hi`` per bucket).

Confidence intervals are percentile bootstraps of the mean (resampling orders with replacement).
Every table draws from its own ``np.random.Generator`` seeded from ``(seed, section)``, so the
report is deterministic and adding a section does not change the others.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

__all__ = ["bootstrap_mean_ci", "bucket_summary", "tca_report"]

COMPONENTS: Final = ("delay_bps", "spread_bps", "impact_bps", "timing_bps", "opportunity_bps",
                     "fees_bps")
_SUMMARY_COLS: Final = ("bucket", "n", "mean", "median", "std", "ci_lo", "ci_hi")


def _rng(seed: int, section: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(section.encode())]))


def bootstrap_mean_ci(x: np.ndarray, *, rng: np.random.Generator, n_boot: int = 1000,
                      level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``x``.

    Parameters
    ----------
    x : numpy.ndarray
        Sample (NaNs are dropped).
    rng : numpy.random.Generator
        Source of the resamples (inject a seeded one for a deterministic result).
    n_boot : int, default=1000
        Number of resamples.
    level : float, default=0.95
        Coverage of the interval.

    Returns
    -------
    tuple of float
        ``(lo, hi)``; ``(nan, nan)`` for an empty sample, ``(x, x)`` for a single value.

    Examples
    --------
    >>> lo, hi = bootstrap_mean_ci(np.arange(10.0), rng=np.random.default_rng(0))
    >>> bool(lo < 4.5 < hi)
    True
    """
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return float("nan"), float("nan")
    means = np.empty(n_boot)
    chunk = max(1, 4_000_000 // len(x))  # bounded memory: ≤ ~32 MB of indices per chunk
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        means[start:start + k] = x[rng.integers(0, len(x), (k, len(x)))].mean(axis=1)
    a = (1 - level) / 2
    lo, hi = np.quantile(means, [a, 1 - a])
    return float(lo), float(hi)


def bucket_summary(values: pd.Series, buckets: pd.Series, *, seed: int, section: str,
                   n_boot: int = 1000) -> pd.DataFrame:
    """One row per bucket (in sorted/categorical order): n, mean, median, std and the mean's CI."""
    rng = _rng(seed, section)
    rows = []
    for key, grp in values.groupby(buckets, sort=True, observed=True):
        x = grp.to_numpy(float)
        lo, hi = bootstrap_mean_ci(x, rng=rng, n_boot=n_boot)
        rows.append((str(key), len(x), float(np.mean(x)), float(np.median(x)),
                     float(np.std(x, ddof=1)) if len(x) > 1 else float("nan"), lo, hi))
    return pd.DataFrame(rows, columns=list(_SUMMARY_COLS))


def _md_table(df: pd.DataFrame) -> str:
    def cell(v: object) -> str:
        if isinstance(v, float | np.floating):
            return "" if np.isnan(v) else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _bar(summary: pd.DataFrame, title: str, path: Path) -> None:
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    x = np.arange(len(summary))
    err = np.vstack([summary["mean"] - summary["ci_lo"], summary["ci_hi"] - summary["mean"]])
    ax.bar(x, summary["mean"], yerr=err, capsize=4, color="tab:blue", alpha=0.8)
    ax.set_xticks(x, summary["bucket"], rotation=20)
    ax.axhline(0, color="k", lw=0.5)
    ax.set(ylabel="mean is_bps (95% bootstrap CI)", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _adv_section(df: pd.DataFrame, *, fitted_sqrt: float | None, seed: int, n_boot: int,
                 n_bins: int, path: Path) -> pd.DataFrame:
    pct = df["pct_adv"].to_numpy(float)
    ok = pct > 0
    d = df[ok]
    edges = np.unique(np.quantile(np.log(pct[ok]), np.linspace(0, 1, n_bins + 1)))
    cut = pd.cut(np.log(d["pct_adv"]), edges, include_lowest=True)
    labels = [f"{100 * np.exp(iv.left):.3g}–{100 * np.exp(iv.right):.3g}%"
              for iv in cut.cat.categories]
    buckets = cut.cat.rename_categories(labels)
    summary = bucket_summary(d["is_bps"], buckets, seed=seed, section="pct_adv", n_boot=n_boot)
    centers = d.groupby(buckets, observed=True)["pct_adv"].median().to_numpy()

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    ax.scatter(100 * d["pct_adv"], d["is_bps"], s=4, alpha=0.25, color="grey", label="orders")
    err = np.vstack([summary["mean"] - summary["ci_lo"], summary["ci_hi"] - summary["mean"]])
    ax.errorbar(100 * centers, summary["mean"], yerr=err, fmt="o-", color="tab:blue", capsize=3,
                label="bin mean, 95% bootstrap CI")
    if fitted_sqrt is not None:
        sigma = float(np.nanmedian(d["_sigma"]))
        grid = np.geomspace(pct[ok].min(), pct[ok].max(), 100)
        ax.plot(100 * grid, fitted_sqrt * sigma * np.sqrt(grid) * 1e4, color="tab:red",
                label=f"Y·σ·√(Q/V), Y={fitted_sqrt:.3g}, median σ={sigma:.3g}")
    ax.set_xscale("log")
    lo, hi = np.nanquantile(d["is_bps"], [0.01, 0.99])
    ax.set_ylim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
    ax.set(xlabel="order size, % of ADV (log)", ylabel="is_bps", title="Cost against size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return summary


def _hist(x: np.ndarray, path: Path) -> None:
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    lo, hi = np.nanquantile(x, [0.005, 0.995])
    ax.hist(np.clip(x, lo, hi), bins=60, color="tab:blue", alpha=0.8)
    ax.axvline(float(np.nanmean(x)), color="tab:red", label=f"mean {np.nanmean(x):.2f}")
    ax.axvline(float(np.nanmedian(x)), color="k", ls="--", label=f"median {np.nanmedian(x):.2f}")
    ax.set(xlabel="is_bps (clipped to the 0.5–99.5% range)", ylabel="orders",
           title="Distribution of implementation shortfall")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def tca_report(labels: pd.DataFrame, parent_orders: pd.DataFrame, *,
               order_features: pd.DataFrame | None = None, fitted_sqrt: float | None = None,
               out_dir: str | Path, seed: int = 0, n_boot: int = 1000,
               n_adv_bins: int = 8) -> Path:
    """Write ``tca_report.md`` and its PNG plots into ``out_dir``; return the markdown path.

    Parameters
    ----------
    labels : pandas.DataFrame
        The ``labels`` contract (from :func:`models.tca.compute_labels`).
    parent_orders : pandas.DataFrame
        The ``parent_orders`` contract; ``strategy`` is the default schedule grouping.
    order_features : pandas.DataFrame or None, default=None
        One row per ``order_id`` with any of ``pct_adv`` (Q/ADV as a fraction), ``sigma_est``
        or ``sigma`` (daily volatility, decimal), ``schedule`` (overrides ``strategy``) and
        ``regime``. A section whose column is absent says so instead of plotting.
    fitted_sqrt : float or None, default=None
        ``Y`` of a fitted square-root law; the curve ``Y·σ·sqrt(Q/V)·1e4`` is drawn at the median
        ``σ`` of the orders (needs ``sigma_est`` or ``sigma``).
    out_dir : str or pathlib.Path
        Folder for the report (created if needed).
    seed : int, default=0
        Seed of the bootstrap; the same inputs and seed give the same report.
    n_boot : int, default=1000
        Bootstrap resamples per confidence interval.
    n_adv_bins : int, default=8
        Equal-count bins of log %ADV.

    Returns
    -------
    pathlib.Path
        ``out_dir / "tca_report.md"``; plots ``cost_vs_adv.png``, ``cost_by_schedule.png``,
        ``cost_by_regime.png`` and ``is_distribution.png`` beside it (those with data).

    Raises
    ------
    ValueError
        If ``labels`` is empty or ``fitted_sqrt`` is given without a volatility column.
    """
    if len(labels) == 0:
        raise ValueError("tca_report: labels is empty; nothing to report")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = labels.merge(parent_orders[["order_id", "symbol", "strategy", "qty"]], on="order_id",
                      how="left", validate="one_to_one")
    feats = order_features if order_features is not None else pd.DataFrame({"order_id": []})
    df = df.merge(feats.drop(columns=[c for c in ("strategy", "qty", "symbol") if c in feats]),
                  on="order_id", how="left", validate="one_to_one")
    sig = next((c for c in ("sigma_est", "sigma") if c in df), None)
    if fitted_sqrt is not None and sig is None:
        raise ValueError("tca_report: fitted_sqrt needs a daily volatility per order; add "
                         "`sigma_est` (or `sigma`) to order_features")
    if sig is not None:
        df["_sigma"] = df[sig]

    n = len(df)
    fill = df["filled_qty"].sum() / df["qty"].sum() if df["qty"].notna().all() else float("nan")
    md = ["# Transaction-cost analysis", "",
          f"{n} parent orders, {df['filled_qty'].gt(0).sum()} with fills; filled "
          f"{100 * fill:.1f}% of ordered quantity. Cost is implementation shortfall in bps of "
          "the arrival notional (positive = cost), see `models/tca.py`. Intervals are 95% "
          f"percentile-bootstrap CIs of the mean ({n_boot} resamples, seed {seed}).", "",
          "## Overall and decomposition", ""]
    comp = df[["is_bps", *COMPONENTS]].melt(var_name="bucket", value_name="v")
    comp["bucket"] = pd.Categorical(comp["bucket"], categories=["is_bps", *COMPONENTS])
    md += [_md_table(bucket_summary(comp["v"], comp["bucket"], seed=seed, section="overall",
                                    n_boot=n_boot)), ""]

    md += ["## Cost against %ADV", ""]
    if "pct_adv" in df and df["pct_adv"].gt(0).any():
        s = _adv_section(df, fitted_sqrt=fitted_sqrt, seed=seed, n_boot=n_boot,
                         n_bins=n_adv_bins, path=out / "cost_vs_adv.png")
        md += ["![cost vs %ADV](cost_vs_adv.png)", "", _md_table(s), ""]
    else:
        md += ["Not available: order_features has no `pct_adv`.", ""]

    sched = "schedule" if "schedule" in df else "strategy"
    for title, col, png in (("schedule", sched, "cost_by_schedule.png"),
                            ("regime", "regime", "cost_by_regime.png")):
        md += [f"## Cost by {title}", ""]
        if col in df and df[col].notna().any():
            s = bucket_summary(df["is_bps"], df[col].astype(str), seed=seed, section=title,
                               n_boot=n_boot)
            _bar(s, f"Cost by {title}", out / png)
            md += [f"![cost by {title}]({png})", "", _md_table(s), ""]
        else:
            md += [f"Not available: no `{col}` column.", ""]

    _hist(df["is_bps"].to_numpy(float), out / "is_distribution.png")
    md += ["## Distribution of is_bps", "", "![is_bps distribution](is_distribution.png)", ""]
    path = out / "tca_report.md"
    path.write_text("\n".join(md))
    return path
