"""``kill -9`` during a paper session, restart: the journal's positions, orders and fills equal
those of an uninterrupted run of the same feed and orders, and no child is filled twice.

The real command runs (``python -m bestex.cli paper --feed synth --speed 0 --orders FILE``) on a
small synthetic day written into a temporary lake, with a small champion in the registry.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import register_tiny_champion

from bestex.paper.journal import Journal
from models.synthetic_market import SyntheticMarketConfig, generate_market

ROOT = Path(__file__).resolve().parent.parent


def _home(tmp: Path, market) -> Path:
    lake = tmp / "lake"
    (lake / "cleansed/synth").mkdir(parents=True)
    (lake / "raw/synth").mkdir(parents=True)
    for t in ("quotes", "trades", "daily_bars"):
        getattr(market, t).to_parquet(lake / f"cleansed/synth/{t}.parquet")
    (lake / "raw/synth/ground_truth.json").write_text(market.truth.model_dump_json())
    register_tiny_champion(tmp, "paper_recovery")
    return tmp


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    market = generate_market(SyntheticMarketConfig(n_symbols=2, n_sessions=6, seed=3,
                                                   start_date="2025-01-06"))
    base = tmp_path_factory.mktemp("paper_rec")
    homes = [_home(base / name, market) for name in ("a", "b")]
    day = pd.to_datetime(market.quotes["ts"], utc=True).max().normalize()
    rng = np.random.default_rng(5)
    n = 24
    t = day + pd.Timedelta("14h35min") + pd.to_timedelta(np.sort(rng.uniform(0, 300, n)), "min")
    syms = sorted(market.quotes["symbol"].astype(str).unique())
    orders = pd.DataFrame({"cl_ord_id": [f"S{i:03d}" for i in range(n)],
                           "symbol": rng.choice(syms, n), "side": rng.choice([1, -1], n),
                           "qty": np.round(rng.uniform(500, 5000, n)), "decision_ts": t,
                           "duration_min": rng.choice([15.0, 30.0, 60.0], n)})
    path = base / "orders.csv"
    orders.to_csv(path, index=False)
    return homes, path


def _start(home: Path, orders: Path) -> subprocess.Popen:
    env = {**os.environ, "BESTEX_HOME": str(home), "BESTEX_FIX_PASSWORD": "pw",
           "MLFLOW_UV_AUTO_DETECT": "false"}
    return subprocess.Popen([sys.executable, "-m", "bestex.cli", "paper", "--feed", "synth",
                             "--speed", "0", "--fix-port", "0", "--orders", str(orders),
                             "--session", "rec"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _state(home: Path) -> tuple[pd.DataFrame, dict, list]:
    j = Journal(home / "paper/rec.db", readonly=True)
    fills = j.fills().drop(columns=["wall_ns"]).reset_index(drop=True)
    orders = [(o["order_id"], o["cl_ord_id"], o["status"], o["cum_qty"], o["plan"].get("name"))
              for o in j.orders()]
    return fills, j.positions(), orders


def test_kill_minus_9_and_restart_equals_an_uninterrupted_run(setup):
    (home_a, home_b), orders = setup
    # a: uninterrupted
    p = _start(home_a, orders)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()[-2000:]
    # b: killed with SIGKILL once some fills are journaled, then restarted
    p = _start(home_b, orders)
    db = home_b / "paper/rec.db"
    deadline = time.monotonic() + 240
    n_fills = 0
    while time.monotonic() < deadline:
        if db.is_file():
            try:
                n_fills = Journal(db, readonly=True).counts()["fills"]
            except Exception:
                n_fills = 0
            if n_fills >= 15:
                break
        if p.poll() is not None:
            break
        time.sleep(0.02)
    assert p.poll() is None, "the session ended before it could be killed"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    killed_fills = Journal(db, readonly=True).counts()["fills"]
    assert 15 <= killed_fills
    p = _start(home_b, orders)
    _out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()[-2000:]
    assert b"resumed" in err
    fa, pa, oa = _state(home_a)
    fb, pb, ob = _state(home_b)
    assert killed_fills < len(fa), "killed before the end"
    pd.testing.assert_frame_equal(fa, fb)
    assert pa == pb
    assert oa == ob
    assert fb.groupby(["order_id", "child"]).size().max() == 1  # nothing filled twice
    assert len(oa) == 24
    assert all(s in ("filled", "expired") for _, _, s, _, _ in oa)
