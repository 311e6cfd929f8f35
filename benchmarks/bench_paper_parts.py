"""The paper service's per-order parts, each alone (issue 15): a fill, an order's state.

    .venv/bin/python benchmarks/bench_paper_parts.py --home /tmp/demoP

On the ``synth`` feed of a ``make demo`` home, with its champion:

(a) one parent's fill, ``Feed.fill`` (the one-parent path the engine uses) beside
    ``Feed.replay`` (the simulator's general entry, what ``fill`` was before): 12 marketable
    children of 100 shares over the last hour, at mid-day; ``--calls`` calls after 50 warm-up
    ones; p50 / p99 in microseconds;
(b) one order's point-in-time state, ``bestex.paper.engine.order_state`` (what the planner
    computes before each decision): 200 orders at feed positions spread over the day, each
    symbol in turn, after 20 warm-up ones; p50 / p99 in milliseconds. Beside it the same with
    the feed's history (the earlier sessions' quotes and trades) left out, which is what the
    state cost before the feed carried it (the state then differed from training's).

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(xs: list[float], scale: float) -> str:
    p50, p99 = np.percentile(np.asarray(xs) * scale, [50, 99])
    return f"{p50:.3g} / {p99:.3g}"


def fills(feed, calls: int) -> dict[str, list[float]]:
    feed.seek(len(feed.times) // 2)
    sym = feed.symbols[0]
    bid, ask = feed.touch(sym)
    now = feed.now_ns
    start = now - 3_600 * 10**9
    kw = dict(side=1, start_ns=start, end_ns=now, arrival_mid=0.5 * (bid + ask),
              child_ns=[start + i * 300 * 10**9 for i in range(12)], child_qty=[100.0] * 12,
              child_kind=[0] * 12, adv=1e6, sigma_daily=0.02, shares_outstanding=1e8)
    out: dict[str, list[float]] = {}
    for name, fn in (("fill", lambda: feed.fill(sym, qty=1200.0, **kw)),
                     ("replay", lambda: feed.replay(sym, **kw))):
        for _ in range(50):
            fn()
        took = []
        for _ in range(calls):
            t0 = time.perf_counter_ns()
            fn()
            took.append(time.perf_counter_ns() - t0)
        out[name] = took
    return out


def states(feed, model, n: int = 200) -> list[int]:
    from bestex.paper.engine import ParentOrder, order_state

    took = []
    for i, cur in enumerate(np.linspace(len(feed.times) // 10, len(feed.times) - 1,
                                        n + 20).astype(int)):
        feed.seek(int(cur))
        now = feed.now_ns
        o = ParentOrder(f"O{i}", f"C{i}", "DESK", feed.symbols[i % len(feed.symbols)], 1,
                        500.0, "1", None, now, now + 600 * 10**9)
        t0 = time.perf_counter_ns()
        order_state(feed, model, [o])
        if i >= 20:
            took.append(time.perf_counter_ns() - t0)
    return took


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--home", type=Path, required=True, help="a `make demo` home")
    ap.add_argument("--calls", type=int, default=2000)
    a = ap.parse_args(argv)
    os.environ["BESTEX_HOME"] = str(a.home)
    from bestex.paper.market import load_feed
    from bestex.paper.service import ModelSource

    feed = load_feed("synth", home=a.home)
    model = ModelSource(feed)
    f = fills(feed, a.calls)
    with_history = states(feed, model)
    bare = load_feed("synth", home=a.home)
    bare.history_quotes = bare.history_trades = None
    bare.__post_init__()  # the same day without the earlier sessions
    without = states(bare, ModelSource(bare))
    print(f"| part (synth feed of {a.home}, champion v{model.version}) | p50 / p99 |")
    print("|---|---:|")
    print(f"| (a) one parent's fill, `Feed.fill` (12 children), us | {pct(f['fill'], 1e-3)} |")
    print(f"| … the general replay, `Feed.replay`, us | {pct(f['replay'], 1e-3)} |")
    print(f"| (b) one order's state, `order_state`, ms ({len(with_history)} orders) | "
          f"{pct(with_history, 1e-6)} |")
    print(f"| … without the feed's history (the state then differed from training's), ms | "
          f"{pct(without, 1e-6)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
