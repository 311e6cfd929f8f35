"""Small PNG reports attached to materializations (saved under ``BESTEX_HOME/reports``)."""

import base64
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from bestex import settings


def reports_dir() -> Path:
    path = settings.home() / "reports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def md_images(paths: list[str] | list[Path]) -> str:
    """Markdown that shows the PNGs inline in the Dagster UI (embedded as data URIs: the UI
    cannot read files under ``BESTEX_HOME``), one per paragraph with its file name."""
    parts = []
    for p in map(Path, paths):
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        parts.append(f"**{p.name}**\n\n![{p.stem}](data:image/png;base64,{data})")
    return "\n\n".join(parts)


def survivorship_plot(report: pd.DataFrame, name: str) -> Path:
    """Universe size and members that later left, per date (``universe/<name>``)."""
    path = reports_dir() / f"universe_{name}.png"
    fig, ax = plt.subplots(figsize=(9, 3.5))
    dates = pd.to_datetime(report["date"])
    ax.plot(dates, report["members"], label="universe members", color="tab:blue")
    ax.plot(dates, report["later_leavers"], label="…of which later left the index",
            color="tab:red")
    if "later_left_market" in report:
        ax.plot(dates, report["later_left_market"], label="…left the market (acquired, "
                "bankrupt, delisted)", color="tab:orange")
    if "index_members" in report:
        ax.plot(dates, report["index_members"], label="index members", color="grey",
                linestyle=":")
    ax.set_title(f"Point-in-time universe: {name}")
    ax.set_ylabel("symbols")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def quarantine_plot(counts_by_rule: dict[str, int], name: str) -> Path | None:
    """Quarantined rows by rule for one cleansed table."""
    if not counts_by_rule:
        return None
    path = reports_dir() / f"quarantine_{name.replace('/', '_')}.png"
    rules = list(counts_by_rule)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(rules) + 1.2))
    ax.barh(rules, [counts_by_rule[r] for r in rules], color="tab:red")
    ax.set_xlabel("rows quarantined")
    ax.set_title(f"Quarantine: {name}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
