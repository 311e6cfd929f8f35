"""Reports and plots of validation stages 2 and 3 (markdown + PNG under the stage's folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from assets._plots import plt


def out_of_sample(model: Any, holdout: pd.DataFrame, cv: float, oos: float, degradation: float,
                  proof: bool, out: Path) -> tuple[str, Path]:
    """Stage 2's report (written to ``out/report.md``, returned) and its by-day plot."""
    h = model.holdout
    d = holdout.assign(day=holdout["decision_ts"].dt.date)
    d["err"] = (d["pred_bps"] - d["truth_bps"]).abs()
    d["sqrt_err"] = (d["sqrt_bps"] - d["truth_bps"]).abs()
    d["inside"] = (d["is_bps"] >= d["lo80_bps"]) & (d["is_bps"] <= d["hi80_bps"])
    by_day = d.groupby("day").agg(n=("err", "size"), truth_mae=("err", "mean"),
                                  sqrt_truth_mae=("sqrt_err", "mean"),
                                  coverage_80=("inside", "mean")).reset_index()
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].plot(by_day["day"].astype(str), by_day["truth_mae"], marker="o", label="model")
    ax[0].plot(by_day["day"].astype(str), by_day["sqrt_truth_mae"], marker="o", label="sqrt law")
    ax[0].set_ylabel("MAE vs true expected cost (bps)")
    ax[0].tick_params(axis="x", rotation=60, labelsize=7)
    ax[0].legend()
    ax[1].plot(by_day["day"].astype(str), by_day["coverage_80"], marker="o")
    ax[1].axhspan(0.77, 0.83, color="green", alpha=0.15)
    ax[1].set_ylim(0, 1)
    ax[1].set_ylabel("80% band coverage")
    ax[1].tick_params(axis="x", rotation=60, labelsize=7)
    fig.suptitle("Stage 2 — holdout by day")
    fig.tight_layout()
    fig.savefig(out / "holdout_by_day.png", dpi=90)
    plt.close(fig)
    md = "\n".join([
        "# Stage 2 — out-of-sample holdout", "",
        f"Holdout {model.holdout_start} .. {model.holdout_end} "
        f"({len(holdout)} orders), fixed before tuning. Training decisions "
        f"{model.train_start} .. {model.train_end}, labels end by "
        f"{model.train_max_t1}; embargo {float(model.embargo_s) / 3600:g} h. "
        f"Holdout start > training max t1 + embargo: **{proof}**.", "",
        f"Weighted RMSE: CV {cv:.3f} bps, holdout {oos:.3f} bps, degradation "
        f"{degradation:+.1f}%.", "",
        "| metric | value |", "|---|---|",
        *(f"| {k} | {v:.4f} |" for k, v in h.items()), "",
        by_day.round(3).to_markdown(index=False)])
    (out / "report.md").write_text(md)
    return md, out / "holdout_by_day.png"


def walk_forward(windows: pd.DataFrame, stab: pd.DataFrame, n_windows: int,
                 embargo_hours: float, out: Path) -> tuple[str, Path]:
    """Stage 3's report (``out/report.md``, ``out/windows.csv``, returned) and its plot."""
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    for a, (scheme, g) in zip(ax, windows.groupby("scheme", sort=False), strict=False):
        for c, lab in (("model_truth_mae", "model"), ("sqrt_truth_mae", "sqrt law"),
                       ("athl_truth_mae", "ATHL")):
            a.plot(g["window"], g[c], marker="o", label=lab)
        a.set_title(f"{scheme} window")
        a.set_xticks(g["window"], [f"{pd.Timestamp(t):%m-%d}" for t in g["test_start"]])
        a.set_xlabel("test window starts (UTC date)")
    ax[0].set_ylabel("MAE vs true expected cost (bps)")
    ax[0].legend()
    fig.suptitle("Stage 3 — walk-forward, retrained each window")
    fig.tight_layout()
    fig.savefig(out / "walk_forward.png", dpi=90)
    plt.close(fig)
    show = ["scheme", "window", "test_start", "n_train", "n_test", "model_truth_mae",
            "sqrt_truth_mae", "athl_truth_mae", "model_r2_over_oracle", "beats_sqrt"]
    md = "\n".join(["# Stage 3 — walk-forward", "",
                    f"{n_windows} windows per scheme on the training period (the holdout "
                    f"stays untouched); embargo {embargo_hours:g} h; hyperparameters of "
                    "the tuned model, refitted in every window.", "",
                    windows[show].to_markdown(index=False, floatfmt=".3f"), "", "## Stability", "",
                    stab.round(3).to_markdown(index=False)])
    (out / "report.md").write_text(md)
    windows.to_csv(out / "windows.csv", index=False)
    return md, out / "walk_forward.png"
