"""Scaling of the Dask fan-out (issue 17): data 1x, 4x, 16x; Dask workers 1 and 2; the embedded
default (serial, in process, no Dask) beside them.

    .venv/bin/python benchmarks/bench_scaling.py                 # markdown tables (~5 min, 2 cores)
    .venv/bin/python benchmarks/bench_scaling.py --repeats 2 --json scaling.json   # ~9 min

Two workloads, both checked equal to the serial result at every size (exit 1 otherwise):

(a) **desk history**: :func:`models.desk_history.simulate_desk_history` of ``25,000 x scale``
    parent orders (about 9.6 children each) on a 4-symbol, 12-session synthetic market (quotes
    every 30 s). Serial: ``n_chunks=1``. Dask: ``n_chunks=4`` chunks of parents (each chunk's
    arrival state and both simulator runs on a worker; the market path scattered once), so the
    1-worker column measures the engine's cost and the 2-worker one its gain. The orders, their
    children and the plan summaries are drawn in the driver (one random stream): the serial part.
(b) **stress suite**: :func:`validation.stress.run_stress_suite` on the 4 synthetic scenarios
    (4 symbols x 12 sessions each), ``1,000 x scale`` orders per scenario, one task per
    scenario. The predictor is the square-root estimate with a +-1.28 timing-risk band (a
    module-level function: the cost model's own share of the time is small).

Each Dask column runs on a fresh ``bestex.distributed.cluster(workers)`` (processes, one thread
each, 127.0.0.1), warmed up first (imports and numba's cached kernels on the workers: reported
apart). Per run: wall seconds; microseconds per parent order; speed-up against 1 worker and
against the serial run; and where the time goes: ``driver`` (in process, outside the mapper:
the serial part), ``tasks`` (the summed seconds the tasks computed on the workers) and ``in
mapper`` (submission to the last result: tasks, pickling, transfer, scheduling); for the
stress suite ``longest task``, its slowest scenario (the floor with a worker per scenario).
Probes per cluster: the round trip of one trivial task (200 of them, in order) and the scatter
of the market path to every worker.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DESK_BASE, STRESS_BASE, DESK_CHUNKS = 25_000, 1_000, 4
Z80 = 1.2815515655446004


def predict(f: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The square-root estimate, band +-Z80 x timing risk (bps)."""
    mean = f["sqrt_pred_bps"].to_numpy(np.float64)
    sd = f["timing_risk_bps"].to_numpy(np.float64)
    return mean, mean - Z80 * sd, mean + Z80 * sd


def _timed(item, *, fn):
    t0 = time.perf_counter()
    out = fn(item)
    return time.perf_counter() - t0, out


class TimedMapper:
    """Wraps a mapper: seconds of each task (measured where it runs) and inside the mapper."""

    def __init__(self, inner) -> None:
        self.inner, self.task_s, self.mapper_s = inner, 0.0, 0.0

    def __call__(self, fn, items):
        t0 = time.perf_counter()
        out = []
        for secs, res in self.inner(partial(_timed, fn=fn), items):
            self.task_s += secs
            out.append(res)
        self.mapper_s += time.perf_counter() - t0
        return iter(out)


def _run(label: str, fn, mapper, repeats: int) -> dict:
    """The fastest of ``repeats`` runs (its breakdown and output)."""
    best: dict = {}
    for _ in range(repeats):
        tm = TimedMapper(mapper)
        t0 = time.perf_counter()
        out = fn(tm)
        wall = time.perf_counter() - t0
        if not best or wall < best["wall_s"]:
            best = {"wall_s": wall, "mapper_s": tm.mapper_s, "task_s": tm.task_s,
                    "driver_s": wall - tm.mapper_s, "out": out}
        del out
    print(f"  {label}: {best['wall_s']:.2f} s", flush=True)
    return best


def _probe(mapper, path) -> dict:
    t0 = time.perf_counter()
    list(mapper(abs, range(-200, 0)))
    per_task = (time.perf_counter() - t0) / 200
    import pickle

    size = len(pickle.dumps(path, protocol=5))
    t0 = time.perf_counter()
    fut = mapper.client.scatter([path], broadcast=True, hash=False)[0]
    scatter = time.perf_counter() - t0
    fut.release()
    return {"per_task_ms": per_task * 1e3, "path_mb": size / 1e6, "scatter_s": scatter}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=1, help="report the fastest of N runs")
    ap.add_argument("--json", type=Path, help="write every measurement here")
    args = ap.parse_args()

    from bestex.distributed import cluster
    from models.desk_history import DeskHistoryConfig, _MarketPath, simulate_desk_history
    from models.synthetic_market import SyntheticMarketConfig, generate_market
    from validation.stress import SCENARIOS, run_stress_suite

    market = generate_market(SyntheticMarketConfig(n_symbols=4, n_sessions=12, seed=3,
                                                   micro={"quote_interval_s": 30.0}))

    def desk(scale: int, mapper, n_chunks: int):
        return simulate_desk_history(market, DeskHistoryConfig(n_orders=DESK_BASE * scale),
                                     mapper=mapper, n_chunks=n_chunks)

    def stress(scale: int, mapper):
        return run_stress_suite(predict, n_orders=STRESS_BASE * scale, progress=None,
                                mapper=mapper)

    rows: list[dict] = []
    ok = True
    load = [os.getloadavg()[0]]
    t_all = time.perf_counter()

    def record(work: str, scale: int, engine: str, workers: int, r: dict, n: int,
               children: int) -> None:
        per_task = getattr(r["out"], "timings_s", {})  # the stress suite's seconds by scenario
        rows.append({"workload": work, "scale": scale, "engine": engine, "workers": workers,
                     "orders": n, "children": children, "longest_task_s": max(
                         per_task.values(), default=np.nan),
                     **{k: v for k, v in r.items() if k != "out"}})

    desk(1, map, 1)  # compile / load the numba kernels in this process
    serial_out: dict[tuple[str, int], object] = {}
    print("serial (embedded default)", flush=True)
    for s in args.scales:
        r = _run(f"desk {s}x", lambda m, s=s: desk(s, m, 1), map, args.repeats)
        h = serial_out["desk", s] = r["out"]
        record("desk history", s, "serial", 0, r, len(h.parent_orders), len(h.child_orders))
        r = _run(f"stress {s}x", lambda m, s=s: stress(s, m), map, args.repeats)
        serial_out["stress", s] = r["out"]
        record("stress suite", s, "serial", 0, r, 4 * STRESS_BASE * s, 0)
    probes = {}
    for w in args.workers:
        print(f"dask, {w} worker(s)", flush=True)
        t0 = time.perf_counter()
        with cluster(workers=w) as m:
            start = time.perf_counter() - t0
            t0 = time.perf_counter()
            desk(1, m, DESK_CHUNKS)
            run_stress_suite(predict, n_orders=200, progress=None, mapper=m,
                             scenarios={"covid_2020": SCENARIOS["covid_2020"]})
            probes[w] = {"start_s": start, "warmup_s": time.perf_counter() - t0,
                         **_probe(m, _MarketPath(market.quotes))}
            for s in args.scales:
                r = _run(f"desk {s}x", lambda mm, s=s: desk(s, mm, DESK_CHUNKS), m,
                         args.repeats)
                h, ref = r["out"], serial_out["desk", s]
                for t in ("parent_orders", "child_fills", "outcomes", "rejections"):
                    if not getattr(h, t).equals(getattr(ref, t)):
                        print(f"  desk {s}x, {w} workers: {t} differs from serial", flush=True)
                        ok = False
                record("desk history", s, "dask", w, r, len(h.parent_orders),
                       len(h.child_orders))
                r = _run(f"stress {s}x", lambda mm, s=s: stress(s, mm), m, args.repeats)
                ref = serial_out["stress", s]
                for t in ("calibration", "schedules", "risk_controls", "summary"):
                    if not getattr(r["out"], t).equals(getattr(ref, t)):
                        print(f"  stress {s}x, {w} workers: {t} differs from serial", flush=True)
                        ok = False
                record("stress suite", s, "dask", w, r, 4 * STRESS_BASE * s, 0)

    df = pd.DataFrame(rows)
    base = df[df["engine"] == "serial"].set_index(["workload", "scale"])["wall_s"]
    one = df[(df["engine"] == "dask") & (df["workers"] == 1)].set_index(
        ["workload", "scale"])["wall_s"]
    key = list(zip(df["workload"], df["scale"], strict=True))
    df["us_per_order"] = df["wall_s"] / df["orders"] * 1e6
    df["vs_serial"] = [base.get(k, np.nan) / t for k, t in zip(key, df["wall_s"], strict=True)]
    df["vs_1_worker"] = [one.get(k, np.nan) / t for k, t in zip(key, df["wall_s"], strict=True)]
    show = df.assign(engine=[("serial (embedded)" if e == "serial" else f"dask {w}w")
                             for e, w in zip(df["engine"], df["workers"], strict=True)])
    cols = ["workload", "scale", "orders", "children", "engine", "wall_s", "us_per_order",
            "vs_1_worker", "vs_serial", "driver_s", "mapper_s", "task_s", "longest_task_s"]
    print()
    print(show[cols].sort_values(["workload", "scale"], kind="stable").to_markdown(
        index=False, floatfmt=".3g"))
    print()
    print(pd.DataFrame(probes).T.rename_axis("workers").to_markdown(floatfmt=".3g"))
    load.append(os.getloadavg()[0])
    print(f"\nall results equal to the serial run: {ok}; {os.cpu_count()} cores, 1-minute "
          f"load average {load[0]:.2f} at the start, {load[1]:.2f} at the end; "
          f"{time.perf_counter() - t_all:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps({"rows": df.to_dict("records"), "probes": probes,
                                         "equal": ok, "cores": os.cpu_count(), "load": load},
                                        indent=1, default=float))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
