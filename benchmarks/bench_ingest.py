"""Benchmark: LOBSTER ingest + cleanse against a raw ``pyarrow.csv.read_csv`` of the same bytes.

Run ``.venv/bin/python benchmarks/bench_ingest.py``. The AMZN level-1 sample day (57,515 events) is
replicated k times (k = 1, 4, 16, 20) as k symbols ``AMZN00 .. AMZN{k-1}`` of the same date, each
with its own message and order-book file in a temporary folder: every copy is a valid, in-order,
in-session symbol-day, so the cleansing rules do their full work and quarantine only what they
quarantine on the real day. (One big file with repeated times would trip ``out_of_order``.)

For each k the script times, best of 3 and in-process:

* ``raw``: ``pyarrow.csv.read_csv`` of every file of the folder (no header, types inferred);
* ``ingest``: ``sources.lobster.ingest_lobster(folder)`` — parse, build quotes/trades, cleanse.

It prints a markdown table and exits 1 when the 20x ingest takes more than ``MAX_RATIO`` (5) times
the raw read. The calendar and imports are warmed up before timing.

A second table times the opposite case: the AMZN day concatenated 20 times into ONE message /
order-book file pair. Every copy after the first repeats the first (``duplicate``), so ~95% of the
1.15 million quote rows and 228,000 trade rows are quarantined, each with its detail and its JSON
record: this measures the quarantine path. Its ratio is printed, not enforced.
"""

from __future__ import annotations

import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Final

import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bestex.settings import require_data_dir  # noqa: E402
from sources.lobster import ingest_lobster  # noqa: E402

MAX_RATIO: Final = 5.0
COPIES: Final = (1, 4, 16, 20)
STEM: Final = "AMZN_2012-06-21_34200000_57600000"


def replicate(folder: Path, k: int) -> int:
    """Write k copies of the AMZN day (symbols AMZN00..) into ``folder``; return the byte count."""
    zpath = require_data_dir() / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip"
    with zipfile.ZipFile(zpath) as zf:
        msg = zf.read(f"{STEM}_message_1.csv")
        book = zf.read(f"{STEM}_orderbook_1.csv")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(k):
        stem = STEM.replace("AMZN", f"AMZN{i:02d}")
        (folder / f"{stem}_message_1.csv").write_bytes(msg)
        (folder / f"{stem}_orderbook_1.csv").write_bytes(book)
    return k * (len(msg) + len(book))


def concatenate(folder: Path, k: int) -> int:
    """Write the AMZN day k times into ONE message/orderbook pair in ``folder``; return bytes."""
    zpath = require_data_dir() / "lobster" / "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip"
    with zipfile.ZipFile(zpath) as zf:
        msg = zf.read(f"{STEM}_message_1.csv")
        book = zf.read(f"{STEM}_orderbook_1.csv")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{STEM}_message_1.csv").write_bytes(msg * k)
    (folder / f"{STEM}_orderbook_1.csv").write_bytes(book * k)
    return k * (len(msg) + len(book))


def quarantined(folder: Path) -> tuple[int, int]:
    """Ingest ``folder``; return (rows in, rows quarantined) over quotes and trades."""
    days = ingest_lobster(folder)
    assert all(r.reconciles for d in days for r in d.results.values())
    res = [r for d in days for r in d.results.values()]
    return sum(r.rows_in for r in res), sum(len(r.quarantine) for r in res)


def raw_read(folder: Path) -> int:
    """Read every CSV of ``folder`` with pyarrow (no header); return the row count."""
    opts = pacsv.ReadOptions(autogenerate_column_names=True)
    return sum(pacsv.read_csv(f, read_options=opts).num_rows for f in sorted(folder.glob("*.csv")))


def ingest(folder: Path) -> int:
    """Ingest and cleanse every symbol-day of ``folder``; return the rows in (quotes + trades)."""
    days = ingest_lobster(folder)
    assert all(r.reconciles for d in days for r in d.results.values())
    return sum(r.rows_in for d in days for r in d.results.values())


def best_of(fn, arg, repeat: int = 3) -> tuple[float, int]:
    """Best wall time of ``repeat`` calls and the call's result."""
    best, out = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(arg)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> int:
    """Run the benchmark, print the table, return the exit status."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm"
        replicate(warm, 1)
        ingest(warm)  # imports, calendar, numpy/pandas first-call costs
        raw_read(warm)
        for k in COPIES:
            folder = Path(tmp) / f"x{k}"
            nbytes = replicate(folder, k)
            t_raw, n_raw = best_of(raw_read, folder)
            t_ing, n_in = best_of(ingest, folder)
            rows.append((k, nbytes, n_raw, t_raw, n_in, t_ing))
        one = Path(tmp) / "one"
        one_bytes = concatenate(one, COPIES[-1])
        t_raw1, n_raw1 = best_of(raw_read, one)
        t_one, (n_in1, n_q1) = best_of(quarantined, one)
    print("| copies | MB | CSV rows | raw read s | raw rows/s | ingest+cleanse s | rows/s | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, nbytes, n_raw, t_raw, _n_in, t_ing in rows:
        print(f"| {k} | {nbytes / 1e6:.1f} | {n_raw:,} | {t_raw:.3f} | {n_raw / t_raw:,.0f} "
              f"| {t_ing:.3f} | {n_raw / t_ing:,.0f} | {t_ing / t_raw:.2f} |")
    ratio = rows[-1][5] / rows[-1][3]
    ok = ratio <= MAX_RATIO
    print(f"\n{COPIES[-1]}x ratio {ratio:.2f} {'<=' if ok else '>'} {MAX_RATIO}: "
          f"{'PASS' if ok else 'FAIL'}")
    print(f"\none file, {COPIES[-1]}x concatenated: most rows quarantined\n")
    print("| copies | MB | CSV rows | raw read s | rows in | quarantined | ingest+cleanse s | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratio1 = t_one / t_raw1
    print(f"| {COPIES[-1]} | {one_bytes / 1e6:.1f} | {n_raw1:,} | {t_raw1:.3f} | {n_in1:,} "
          f"| {n_q1:,} ({n_q1 / n_in1:.0%}) | {t_one:.3f} | {ratio1:.2f} |")
    print(f"\none-file {COPIES[-1]}x ratio {ratio1:.2f} (informative; target about {MAX_RATIO})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
