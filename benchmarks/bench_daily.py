"""Benchmark: the daily-bar loader against a raw pyarrow CSV read of the same bytes.

The tarball is decompressed to memory once (not timed). Then, at 1x, 4x and 16x the data (members
replicated under new symbol names ``<SYM>_r<k>``), best of 3:

* ``pyarrow.csv.read_csv`` over each member's bytes (the floor: parsing only);
* ``sources.sp500.parse_daily_bars`` (parse by column name, both date formats, symbols,
  ``available_at`` from the XNYS calendar, contract checks, quarantine, data spans).

Run: ``.venv/bin/python benchmarks/bench_daily.py`` (prints a markdown table for BENCHMARKS.md).
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from pathlib import PurePosixPath

import pyarrow.csv as pacsv

from bestex.settings import require_data_dir
from sources.sp500 import DAILY_BARS_TARBALL, parse_daily_bars, read_daily_bars, read_tar_members


def _best_of(fn: Callable[[], int], repeat: int = 3) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = fn()
        best = min(best, time.perf_counter() - t0)
    return best, rows


def _replicate(members: dict[str, bytes], factor: int) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for k in range(factor):
        for name, data in members.items():
            p = PurePosixPath(name)
            out[str(p.with_name(p.stem + (f"_r{k}" if k else "") + p.suffix))] = data
    return out


def _raw_pyarrow(members: dict[str, bytes]) -> int:
    return sum(pacsv.read_csv(io.BytesIO(b)).num_rows for b in members.values())


def _loader(members: dict[str, bytes]) -> int:
    return parse_daily_bars(members, source="bench").rows_in


def main(factors: tuple[int, ...] = (1, 4, 16)) -> None:
    """Print the markdown table of timings."""
    path = require_data_dir() / DAILY_BARS_TARBALL
    t0 = time.perf_counter()
    base = read_tar_members(path)
    decompress_s = time.perf_counter() - t0
    _loader(base)  # warm the calendar cache and imports
    print(f"decompress tar.xz to memory: {decompress_s:.2f} s ({len(base)} members, "
          f"{sum(map(len, base.values())) / 1e6:.1f} MB)")
    full, rows = _best_of(lambda: read_daily_bars(path).rows_in)
    print(f"read_daily_bars(path) end to end (best of 3): {full:.2f} s, {rows:,} rows\n")
    print("| data | reader | rows | s | rows/s | ratio to pyarrow |")
    print("|---|---|---:|---:|---:|---:|")
    for f in factors:
        members = _replicate(base, f)
        raw_s, raw_rows = _best_of(lambda m=members: _raw_pyarrow(m))
        our_s, our_rows = _best_of(lambda m=members: _loader(m))
        assert raw_rows == our_rows, (raw_rows, our_rows)
        for name, s in (("pyarrow.csv.read_csv per member", raw_s),
                        ("parse_daily_bars", our_s)):
            print(f"| {f}x | {name} | {raw_rows:,} | {s:.2f} | {raw_rows / s:,.0f} | "
                  f"{s / raw_s:.2f} |")
        del members
    sys.stdout.flush()


if __name__ == "__main__":
    main()
