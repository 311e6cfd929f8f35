"""Fan-out on Dask distributed (issue 17): the stress scenarios and the desk-history simulation
run on a 2-worker local cluster give the serial results bit for bit; the parents are cut only
where the simulator does not couple them; the local cluster listens on 127.0.0.1 only and its
worker processes end with the block; a scheduler address connects instead of starting one.
"""

from __future__ import annotations

import os
import time
from functools import partial

import numpy as np
import pandas as pd
import psutil
import pytest
from conftest import serving_rows, tiny_bundle

import bestex.distributed as engine
from bestex.distributed import DaskMapper, cluster, default_workers
from models._desk_execution import _Draws
from models.desk_history import (
    DESK_FEES,
    DeskHistoryConfig,
    execute_plan,
    parent_groups,
    simulate_desk_history,
)
from models.risk_controls import RiskLimits
from models.simulator import ConstantFillProb, SimulatorConfig
from models.synthetic_market import SyntheticMarketConfig, generate_market
from validation.stress import SCENARIOS, fit_stress_regime_model, run_stress_suite

HISTORY_TABLES = ("parent_orders", "child_fills", "outcomes", "rejections", "child_orders")


@pytest.fixture(scope="module")
def mapper():
    with cluster(workers=2) as m:
        yield m


@pytest.fixture(scope="module")
def market():
    return generate_market(SyntheticMarketConfig(n_symbols=3, n_sessions=8, seed=5,
                                                 micro={"quote_interval_s": 60.0}))


def _same_history(a, b) -> None:
    for name in HISTORY_TABLES:
        x, y = getattr(a, name), getattr(b, name)
        pd.testing.assert_frame_equal(x, y, check_exact=True, obj=name)
        assert type(x.index) is type(y.index), name


# ----------------------------------------------------------------------------- stress suite
def test_the_stress_suite_on_dask_workers_equals_the_serial_run(mapper):
    # a real CostModelBundle: its bound methods are what the stress stage ships to the workers
    bundle = tiny_bundle(serving_rows(300, seed=1))
    training = generate_market(SyntheticMarketConfig(n_symbols=3, n_sessions=30, seed=7,
                                                     micro={"quote_interval_s": 60.0}))
    kw = dict(scenarios={k: SCENARIOS[k] for k in ("flash_crash_2010", "covid_2020")},
              n_orders=200, n_symbols=2, n_sessions=10, domain=bundle.outside_domain,
              regime_model=fit_stress_regime_model(training.daily_bars, training.quotes))
    serial_lines, dask_lines = [], []
    serial = run_stress_suite(bundle.predict, progress=serial_lines.append, **kw)
    fanned = run_stress_suite(bundle.predict, progress=dask_lines.append, mapper=mapper, **kw)
    for name in ("calibration", "schedules", "risk_controls", "summary", "regimes"):
        pd.testing.assert_frame_equal(getattr(serial, name), getattr(fanned, name),
                                      check_exact=True, obj=name)
    assert serial.limits == fanned.limits
    assert list(fanned.timings_s) == ["flash_crash_2010", "covid_2020"]
    assert len(serial.regimes) == 20  # 10 sessions of each scenario scored by the HMM
    # one progress line per scenario, in order, the same but for the seconds
    assert [s.rsplit(" (", 1)[0] for s in serial_lines] == \
        [s.rsplit(" (", 1)[0] for s in dask_lines]


# ----------------------------------------------------------------------------- desk history
def _random_fills(market) -> SimulatorConfig:
    """Passive children fill with probability 1/2: the chunks need their slice of the stream."""
    return SimulatorConfig.from_truth(market.truth.impact, fees=DESK_FEES).model_copy(
        update={"fill": ConstantFillProb(prob=0.5)})


@pytest.mark.parametrize("coupling", ["none", "daily_loss", "shared_footprint"])
def test_the_desk_history_chunked_on_dask_equals_the_serial_run(mapper, market, coupling):
    sim = _random_fills(market)
    limits = RiskLimits(order_loss_limit=2e4)
    if coupling == "daily_loss":  # parents of one UTC day share the day's running loss
        limits = RiskLimits(order_loss_limit=2e4, daily_loss_limit=5e4)
    if coupling == "shared_footprint":  # parents of one symbol share its footprint
        sim = sim.model_copy(update={"shared_footprint": True})
    cfg = DeskHistoryConfig(n_orders=1500, seed=3, min_history_sessions=3)
    serial = simulate_desk_history(market, cfg, sim=sim, limits=limits)
    assert (serial.outcomes["unfilled_qty"] > 0).any()  # the passive draws matter
    if coupling != "none":
        assert len(serial.rejections)  # the limits fire: the coupling is exercised
    _same_history(serial, simulate_desk_history(market, cfg, sim=sim, limits=limits,
                                                mapper=mapper, n_chunks=3))
    # the builtin map, more chunks than groups allow for the coupled cases
    _same_history(serial, simulate_desk_history(market, cfg, sim=sim, limits=limits,
                                                n_chunks=16))


def test_execute_plan_chunked_equals_the_single_run(mapper, market):
    h = simulate_desk_history(market, DeskHistoryConfig(n_orders=600, seed=4,
                                                        min_history_sessions=3))
    sim = _random_fills(market)
    one = execute_plan(market, h.parent_orders, h.child_orders, sim, seed=9)
    _same_history(one, execute_plan(market, h.parent_orders, h.child_orders, sim, seed=9,
                                    mapper=mapper, n_chunks=mapper.n_workers))


def test_parent_groups_by_hand():
    # parents: A, B on symbol X day 1; C on Y day 1; D on X day 2 (children at the decision)
    t = pd.to_datetime(["2024-01-02 15:00", "2024-01-02 16:00", "2024-01-02 15:30",
                        "2024-01-03 15:00"], utc=True)
    orders = pd.DataFrame({"order_id": list("ABCD"), "symbol": list("XXYX"), "decision_ts": t})
    ch = pd.DataFrame({"order_id": list("ABCD"), "decision_ts": t})
    sim, daily = SimulatorConfig(), RiskLimits(daily_loss_limit=1.0)
    shared = sim.model_copy(update={"shared_footprint": True})
    np.testing.assert_array_equal(parent_groups(orders, ch, sim), [0, 1, 2, 3])
    day = t.as_unit("ns").asi8 // 86_400_000_000_000
    np.testing.assert_array_equal(parent_groups(orders, ch, sim, daily), day)
    np.testing.assert_array_equal(parent_groups(orders, ch, shared), [0, 0, 1, 0])
    np.testing.assert_array_equal(parent_groups(orders, ch, shared, daily), [0, 0, 0, 0])
    # a child of A arriving the next day ties the two days together
    late = pd.concat([ch, pd.DataFrame({"order_id": ["A"], "decision_ts": [t[3]]})])
    np.testing.assert_array_equal(parent_groups(orders, late, sim, daily), [0, 0, 0, 0])


def test_n_chunks_must_be_a_positive_integer(market):
    with pytest.raises(ValueError, match=r"`n_chunks` must be an integer >= 1, got `n_chunks=0`"):
        simulate_desk_history(market, DeskHistoryConfig(n_orders=50, min_history_sessions=3),
                              n_chunks=0)


def test_draws_replay_refuses_a_call_out_of_order():
    d = _Draws(np.zeros(3), np.zeros(2), np.full(3, 0.5))
    with pytest.raises(RuntimeError, match=r"simulate asked random\(3\), the chunk holds "
                                           r"standard_normal\(3\)"):
        d.random(3)


# ----------------------------------------------------------------------------- the engine
def _fail(x: int) -> int:
    if x == 2:
        raise ValueError(f"task {x} failed")
    return x


def test_results_come_in_order_and_errors_reach_the_caller(mapper):
    assert list(mapper(partial(np.multiply, 10), range(6))) == [0, 10, 20, 30, 40, 50]
    frame = pd.DataFrame({"a": np.arange(1000.0)})
    # a keyword is shared: scattered once, resolved on the worker
    got = list(mapper(partial(lambda i, *, df: float(df["a"].iloc[i]), df=frame), [3, 999]))
    assert got == [3.0, 999.0]
    with pytest.raises(ValueError, match="task 2 failed"):
        list(mapper(_fail, range(4)))


def _gone(pids: list[int], timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        alive = [p for p in pids if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.2)
    return False


def test_local_cluster_binds_localhost_ends_its_workers_and_an_address_connects(monkeypatch):
    env = dict(os.environ)
    with cluster(workers=1) as owned:
        info = owned.client.scheduler_info(n_workers=-1)
        addresses = [owned.client.scheduler.address, *info["workers"]]
        assert all(a.startswith("tcp://127.0.0.1:") for a in addresses), addresses
        pids = list(owned.client.run(os.getpid).values())
        assert len(pids) == 1
        assert os.getpid() not in pids  # a worker process, not a thread
        listening = [c.laddr.ip for p in pids for c in psutil.Process(p).net_connections("inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening
        assert set(listening) == {"127.0.0.1"}
        # BESTEX_DASK_SCHEDULER: connect to that scheduler, start nothing, leave it running
        address = owned.client.scheduler.address
        monkeypatch.setenv("BESTEX_DASK_SCHEDULER", address)
        with cluster(workers=5) as remote:
            assert isinstance(remote, DaskMapper)
            assert remote.client.scheduler.address == address
            assert remote.n_workers == 1
            assert list(remote(abs, [-1, -2])) == [1, 2]
        with engine.fanout(0) as configured:  # what a run config with workers=0 gets
            assert configured.client.scheduler.address == address
        assert list(owned(abs, [-3])) == [3]
    assert _gone(pids), f"worker processes {pids} outlived the cluster"
    # the variables the nanny set in this process (OMP_NUM_THREADS, PYTHONHASHSEED) are gone
    assert dict(os.environ) == env | {"BESTEX_DASK_SCHEDULER": address}


def test_fanout_is_the_builtin_map_unless_asked(monkeypatch):
    monkeypatch.delenv("BESTEX_DASK_SCHEDULER", raising=False)
    with engine.fanout(0) as m:
        assert m is map


def test_bestex_workers_is_checked(monkeypatch):
    monkeypatch.setenv("BESTEX_WORKERS", "3")
    assert default_workers() == 3
    monkeypatch.setenv("BESTEX_WORKERS", "two")
    with pytest.raises(ValueError, match=r"BESTEX_WORKERS='two' is not an integer"):
        default_workers()


class _FakeClient:
    """Answers ``client.run(fn)`` for two workers, one with another number of BLAS threads."""

    def run(self, fn):
        return {"tcp://10.0.0.1:1": engine.blas_threads(), "tcp://10.0.0.2:1": [("openblas", 7)]}


def test_a_worker_with_other_blas_threads_is_warned_about():
    with pytest.warns(UserWarning, match=r"Dask workers \['tcp://10.0.0.2:1'\] run BLAS with "
                                         r"\[\('openblas', 7\)\] threads"):
        engine._check_blas(_FakeClient())


def test_the_local_workers_run_blas_as_this_process_does(mapper):
    # the stress suite's least-squares refits round differently on another number of threads
    mine = engine.blas_threads()
    assert mine
    assert all(t == mine for t in mapper.client.run(engine.blas_threads).values())
