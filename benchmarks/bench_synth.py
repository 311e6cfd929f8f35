"""Benchmark of the synthetic market generator; also regenerates the calibration table and plots.

    .venv/bin/python benchmarks/bench_synth.py            # timings, markdown table on stdout
    .venv/bin/python benchmarks/bench_synth.py --docs     # + calibration table and PNGs in docs/

Timings: best of 3 ``generate_market`` calls at 1x, 4x and 16x the demo size (symbols x sessions),
rows/s over quotes + trades; beside it, a raw ``pyarrow.csv.read_csv`` of the same rows written as
CSV (the cost of only reading that much data).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.synthetic_market import SyntheticMarketConfig, generate_market  # noqa: E402

SIZES = {"1x": (8, 30), "4x": (16, 60), "16x": (32, 120)}


def _best_of(n: int, fn):
    best, out = float("inf"), None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench(repeats: int = 3, sizes: dict[str, tuple[int, int]] = SIZES) -> list[dict]:
    """Time generation and a raw CSV read of the same rows for each size."""
    rows = []
    for label, (n_sym, n_sess) in sizes.items():
        cfg = SyntheticMarketConfig(n_symbols=n_sym, n_sessions=n_sess)
        gen_s, m = _best_of(repeats, lambda cfg=cfg: generate_market(cfg))
        n = len(m.quotes) + len(m.trades)
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for name in ("quotes", "trades"):
                p = Path(tmp) / f"{name}.csv"
                pacsv.write_csv(pa.Table.from_pandas(getattr(m, name), preserve_index=False), p)
                paths.append(p)
            mb = sum(p.stat().st_size for p in paths) / 1e6
            csv_s, _ = _best_of(repeats, lambda paths=paths: [pacsv.read_csv(p) for p in paths])
        del m
        rows.append({"size": label, "symbols x sessions": f"{n_sym} x {n_sess}",
                     "rows (quotes+trades)": n, "generate s": gen_s, "rows/s": n / gen_s,
                     "CSV MB": mb, "read_csv s": csv_s, "read_csv rows/s": n / csv_s})
    return rows


def markdown(rows: list[dict]) -> str:
    """The rows as a markdown table."""
    head = list(rows[0])
    fmt = {"rows (quotes+trades)": "{:,}", "generate s": "{:.2f}", "rows/s": "{:,.0f}",
           "CSV MB": "{:,.0f}", "read_csv s": "{:.2f}", "read_csv rows/s": "{:,.0f}"}
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join(fmt.get(k, "{}").format(r[k]) for k in head) + " |")
    return "\n".join(lines)


def docs(out: Path, lobster_zip: Path) -> str:
    """Write the intraday-profile PNGs into ``out`` and return the calibration table (markdown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from models._synth_calibration import calibration_table, intraday_profiles, lobster_profiles

    table = calibration_table(lobster_zip)
    m = generate_market(SyntheticMarketConfig())
    vol, spread = intraday_profiles(m.quotes, m.trades, volume_bin_min=30, spread_bin_min=10)
    a_vol, a_spread = lobster_profiles(lobster_zip)
    out.mkdir(parents=True, exist_ok=True)
    for name, syn, real, width, ylabel in [
        ("synthetic_volume_profile.png", vol, a_vol, 30, "volume / mean 30-min bin"),
        ("synthetic_spread_profile.png", spread, a_spread, 10, "spread / mean 10-min bin"),
    ]:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        t = (np.arange(len(syn)) + 0.5) * width
        ax.plot(t, syn, "o-", label="synthetic default (8 symbols x 30 sessions)")
        ax.plot((np.arange(len(real)) + 0.5) * width, real, "s--", alpha=0.7,
                label="AMZN 2012-06-21 (LOBSTER)")
        ax.axhline(1.0, color="grey", lw=0.5)
        ax.set_xlabel("minutes since the open")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
    return table.to_markdown(index=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-size", choices=list(SIZES), default="16x")
    ap.add_argument("--docs", action="store_true", help="write docs/ PNGs, print calibration table")
    ap.add_argument("--lobster", type=Path,
                    default=ROOT.parent / "shared/data/lobster/LOBSTER_SampleFile_AMZN_2012-06-21_1.zip")
    args = ap.parse_args()
    if args.docs:
        print(docs(ROOT / "docs", args.lobster))
        print()
    keep = list(SIZES)[: list(SIZES).index(args.max_size) + 1]
    print(markdown(bench(args.repeats, {k: SIZES[k] for k in keep})))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
