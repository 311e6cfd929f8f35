"""Schedules: invariants for every schedule (contract test), hand-checked slices, no look-ahead.

Times: 2024-11-04 (Monday) is an XNYS session opening 14:30 UTC (EST); October sessions open at
13:30 UTC (EDT), so a profile keyed on the offset from the open must survive the DST change.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest

from models.almgren_chriss import AlmgrenChrissParams
from models.schedules import (
    KINDS,
    ScheduleSchema,
    almgren_chriss,
    check_schedule,
    forecast_volume,
    is_urgency,
    pov,
    schedule_batch,
    schedule_orders,
    twap,
    volume_profile,
    vwap,
)
from validation.contracts import ParentOrdersSchema

MIN = 60_000_000_000
BIN = 5 * MIN
T = pd.Timestamp


def utc(s: str) -> pd.Timestamp:
    return T(s, tz="UTC")


def order(qty: float = 10_007.0, start: str = "2024-11-04 15:02:17",
          end: str = "2024-11-04 16:31:00", oid: str = "A1") -> dict:
    return {"order_id": oid, "qty": qty, "decision_ts": utc(start), "end_ts": utc(end)}


def history(first: str = "2024-09-20", last: str = "2024-11-08",
            shape: Callable[[np.ndarray], np.ndarray] | None = None) -> pd.Series:
    """5-minute bin volumes of every XNYS session in [first, last]; U-shaped unless ``shape``."""
    with warnings.catch_warnings():  # exchange_calendars calls Series.values on tz-aware data
        warnings.simplefilter("ignore")
        cal = xcals.get_calendar("XNYS", start="2024-01-01", end="2024-12-31")
    sched = cal.schedule.loc[first:last]
    parts = []
    for open_, close in zip(sched["open"], sched["close"], strict=True):
        k = np.arange(int((close - open_) / pd.Timedelta(minutes=5)))
        vol = shape(k) if shape else 1000.0 + 40.0 * (k - 39.0) ** 2
        parts.append(pd.Series(vol, index=open_ + pd.to_timedelta(5 * k, unit="min")))
    return pd.concat(parts).tz_convert("UTC")


HIST = history()
AC = AlmgrenChrissParams(X=1e6, T=5, N=5, sigma=0.3 * 50 / 250**0.5, epsilon=0.0625,
                         gamma=2.5e-7, eta=2.5e-6, lam=1e-6)

SCHEDULES: dict[str, Callable[[dict], pd.DataFrame]] = {
    "twap_n": lambda o: twap(o, n_slices=7),
    "twap_slice_ns": lambda o: twap(o, slice_ns=10 * MIN),
    "twap_lots": lambda o: twap(o, n_slices=7, lot=100.0),
    "is_urgency": lambda o: is_urgency(o, urgency=3.0, n_slices=9),
    "almgren_chriss": lambda o: almgren_chriss(o, params=AC),
    "vwap": lambda o: vwap(o, volume_history=HIST),
    "vwap_lots": lambda o: vwap(o, volume_history=HIST, lot=100.0),
    "pov_forecast": lambda o: pov(o, market_volume=forecast_volume(
        HIST, decision_ts=o["decision_ts"], end_ts=o["end_ts"]), rate=0.05, max_rate=0.2),
    "pov_realized": lambda o: pov(o, market_volume=HIST, rate=0.2),
}
ORDERS = {
    "intraday": order(),
    "odd_qty": order(qty=1_050.5),
    "tiny": order(qty=3.0),
    "two_sessions": order(qty=250_001.0, start="2024-11-04 20:00", end="2024-11-05 15:00"),
}


# --------------------------------------------------------------------------- contract
@pytest.mark.parametrize("oname", list(ORDERS))
@pytest.mark.parametrize("sname", list(SCHEDULES))
def test_every_schedule_keeps_the_invariants(sname, oname):
    o = ORDERS[oname]
    out = SCHEDULES[sname](o)

    assert list(out.columns) == ["order_id", "slice_ts", "slice_end_ts", "qty"]
    ScheduleSchema.validate(out)
    assert str(out["slice_ts"].dtype) == "datetime64[ns, UTC]"
    assert out["qty"].sum() == o["qty"]  # exact
    assert (out["qty"] > 0).all()
    assert out["slice_ts"].min() >= o["decision_ts"]
    assert out["slice_end_ts"].max() <= o["end_ts"]
    assert out["slice_ts"].is_monotonic_increasing
    assert (out["order_id"] == o["order_id"]).all()
    pd.testing.assert_frame_equal(out, SCHEDULES[sname](o))  # deterministic
    if "lots" in sname:  # whole lots except the odd lot, carried by the last child
        assert (out["qty"].iloc[:-1] % 100 == 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_batch_keeps_the_invariants(kind):
    rng = np.random.default_rng(3)
    n = 500
    dec = utc("2024-11-04 14:30").value + rng.integers(0, 6 * 60 * MIN, n)
    end = dec + rng.integers(0, 120 * MIN, n)
    qty = np.floor(rng.pareto(1.0, n) * 1000) + 1
    kw = {"twap": {}, "is_urgency": {"urgency": rng.uniform(0, 5, n)},
          "almgren_chriss": {"kappa_t": rng.uniform(0, 4, n)}, "vwap": {"volume_history": HIST},
          "pov": {"volume_history": HIST, "rate": 0.1, "max_rate": 0.3}}[kind]
    if kind == "vwap":  # VWAP needs session volume in the window
        end = np.minimum(np.maximum(end, dec + MIN), utc("2024-11-04 21:00").value)

    out = schedule_batch(kind, dec, end, qty, slice_ns=7 * MIN, **kw)

    assert (np.bincount(out.order_idx, weights=out.child_qty, minlength=n) == qty).all()
    assert (out.child_qty > 0).all()
    assert (out.slice_ns >= dec[out.order_idx]).all()
    assert (out.slice_ns <= end[out.order_idx]).all()
    assert (np.diff(out.order_idx) >= 0).all()
    again = schedule_batch(kind, dec, end, qty, slice_ns=7 * MIN, **kw)
    assert all(np.array_equal(a, b) for a, b in zip(out, again, strict=True))


def test_batch_twap_schedules_100k_orders_well_under_a_second():
    rng = np.random.default_rng(0)
    n = 100_000
    dec = utc("2024-11-04 14:30").value + rng.integers(0, 6 * 60 * MIN, n)
    end = dec + rng.integers(MIN, 60 * MIN, n)
    qty = np.round(rng.pareto(1.0, n) * 1000) + 1

    t0 = time.perf_counter()
    out = schedule_batch("twap", dec, end, qty, n_slices=10)
    elapsed = time.perf_counter() - t0

    assert elapsed < 1.0, f"{elapsed:.2f} s"
    assert np.array_equal(np.bincount(out.order_idx, weights=out.child_qty, minlength=n), qty)


def test_schedule_orders_takes_a_parent_orders_frame():
    orders = ParentOrdersSchema.validate(pd.DataFrame({
        "order_id": ["A", "B"], "symbol": ["SYN0", "SYN1"], "side": [1, -1],
        "qty": [1000.0, 10.0], "decision_ts": [utc("2024-11-04 15:00"), utc("2024-11-04 16:00")],
        "end_ts": [utc("2024-11-04 15:30"), utc("2024-11-04 16:00")], "strategy": ["twap"] * 2}))

    out = schedule_orders(orders, "twap", n_slices=3)

    assert out["order_id"].tolist() == ["A", "A", "A", "B"]
    assert out["qty"].tolist() == [333.0, 334.0, 333.0, 10.0]
    pd.testing.assert_frame_equal(out.iloc[:3].reset_index(drop=True),
                                  twap(orders.iloc[0], n_slices=3))


def test_check_schedule_names_the_order_and_the_rule():
    o = order(qty=1000.0, start="2024-11-04 15:00", end="2024-11-04 15:30")
    good = twap(o, n_slices=3)
    orders = pd.DataFrame([o])
    bad = good.assign(qty=good["qty"].where(good.index > 0, 1.0))
    with pytest.raises(ValueError, match=r"order_id=A1 violates 'sum\(child qty\) == parent qty'"):
        check_schedule(bad, orders)
    late = good.assign(slice_end_ts=good["slice_end_ts"] + pd.Timedelta(seconds=1))
    with pytest.raises(ValueError, match="violates 'slice_end_ts <= end_ts'"):
        check_schedule(late, orders)
    early = good.assign(slice_ts=good["slice_ts"] - pd.Timedelta(hours=1))
    with pytest.raises(ValueError, match="violates 'slice_ts >= decision_ts'"):
        check_schedule(early, orders)


# --------------------------------------------------------------------------- hand-checked
def test_twap_by_count_and_by_length():
    o = order(qty=1000.0, start="2024-11-04 15:00", end="2024-11-04 15:30")
    assert twap(o, n_slices=3)["qty"].tolist() == [333.0, 334.0, 333.0]
    by_len = twap(o, slice_ns=20 * MIN)  # 20 + 10 minutes: time-weighted 2:1
    assert by_len["qty"].tolist() == [667.0, 333.0]
    assert by_len["slice_end_ts"].tolist() == [utc("2024-11-04 15:20"), utc("2024-11-04 15:30")]


def test_lot_rounding_puts_the_odd_lot_last():
    o = order(qty=1050.0, start="2024-11-04 15:00", end="2024-11-04 15:30")
    assert twap(o, n_slices=3, lot=100.0)["qty"].tolist() == [300.0, 400.0, 350.0]


def test_zero_duration_order_is_one_child_at_the_decision():
    o = order(qty=500.0, start="2024-11-04 15:00", end="2024-11-04 15:00")
    out = twap(o, n_slices=4)
    assert out[["slice_ts", "slice_end_ts", "qty"]].values.tolist() == [
        [utc("2024-11-04 15:00"), utc("2024-11-04 15:00"), 500.0]]


def test_is_urgency_front_loads_and_zero_urgency_is_twap():
    o = order(qty=1000.0, start="2024-11-04 15:00", end="2024-11-04 15:30")
    # urgency = 2 ln 3: half-way fraction 1/(1 + e^(-u/2)) = 3/4
    assert is_urgency(o, urgency=2 * np.log(3), n_slices=2)["qty"].tolist() == [750.0, 250.0]
    pd.testing.assert_frame_equal(is_urgency(o, urgency=0.0, n_slices=5), twap(o, n_slices=5))
    q = is_urgency(o, urgency=4.0, n_slices=10)["qty"].to_numpy()
    assert (np.diff(q) <= 0).all()


def test_almgren_chriss_schedule_is_the_paper_trajectory():
    o = order(qty=1e6, start="2024-11-04 15:00", end="2024-11-04 20:00")
    out = almgren_chriss(o, params=AC)
    # REFERENCES.md §3.4, lam = 1e-6: holdings 1,000,000 / 542,381 / 290,295 / 148,216 / 62,303 / 0
    assert out["qty"].tolist() == [457_619.0, 252_086.0, 142_079.0, 85_913.0, 62_303.0]
    assert out["slice_ts"].diff().dropna().eq(pd.Timedelta(hours=1)).all()


def test_pov_participates_finishes_early_and_respects_the_cap():
    mv = pd.Series(1000.0, index=pd.date_range("2024-11-04 15:00", periods=6, freq="5min",
                                               tz="UTC"))
    o = order(qty=250.0, start="2024-11-04 15:00", end="2024-11-04 15:30")
    assert pov(o, market_volume=mv, rate=0.1)["qty"].tolist() == [100.0, 100.0, 50.0]
    # 900 needs 15 % of 6000: within the 50 % cap, participation rises uniformly
    assert pov(order(qty=900.0, start="2024-11-04 15:00", end="2024-11-04 15:30"),
               market_volume=mv, rate=0.1, max_rate=0.5)["qty"].tolist() == [150.0] * 6
    # 5000 > 50 % of 6000: 500 per bin, the rest in the last slice
    capped = pov(order(qty=5000.0, start="2024-11-04 15:00", end="2024-11-04 15:30"),
                 market_volume=mv, rate=0.1, max_rate=0.5)
    assert capped["qty"].tolist() == [500.0] * 5 + [2500.0]


# --------------------------------------------------------------------------- VWAP causality
def two_bin_shape(k: np.ndarray) -> np.ndarray:
    return np.where(k == 6, 3.0, 1.0)  # bin 6 = open + 30 min holds 3x the volume


def test_vwap_follows_the_profile_keyed_on_the_open_across_dst():
    hist = history("2024-10-01", "2024-10-31", shape=two_bin_shape)  # opens 13:30 UTC (EDT)
    o = order(qty=1000.0, start="2024-11-04 15:00", end="2024-11-04 15:10")  # open 14:30 (EST)
    out = vwap(o, volume_history=hist)
    assert out["qty"].tolist() == [750.0, 250.0]
    assert out["slice_ts"].tolist() == [utc("2024-11-04 15:00"), utc("2024-11-04 15:05")]


def test_vwap_uses_no_bin_of_the_decision_session_or_later():
    o = order()
    open_ = utc("2024-11-04 14:30")  # the decision session's open
    past = HIST[HIST.index < open_]
    poisoned = HIST.copy()
    later = poisoned.index >= open_
    poisoned[later] = np.where(np.arange(later.sum()) % 7 == 0, 1e9, 0.0)  # wildly different

    ref = vwap(o, volume_history=past)
    pd.testing.assert_frame_equal(vwap(o, volume_history=poisoned), ref)
    pd.testing.assert_frame_equal(vwap(o, volume_history=HIST), ref)
    prof = volume_profile(poisoned, decision_ts=o["decision_ts"], lookback_sessions=5)
    assert prof.decision_session == T("2024-11-04")
    assert list(prof.sessions_used.strftime("%m-%d")) == ["10-28", "10-29", "10-30", "10-31",
                                                          "11-01"]
    # the batch form obeys the same rule, per order
    dec = np.array([o["decision_ts"].value, utc("2024-11-05 16:00").value])
    end = dec + 60 * MIN
    args = ("vwap", dec, end, np.array([5000.0, 7000.0]))
    a = schedule_batch(*args, slice_ns=BIN, volume_history=poisoned[poisoned.index < utc("2024-11-05 14:30")])
    b = schedule_batch(*args, slice_ns=BIN, volume_history=HIST)
    c = schedule_batch(*args, slice_ns=BIN, volume_history=poisoned)
    assert not np.array_equal(a.child_qty, b.child_qty)  # order 2 sees 11-04 in b, poison in a
    first = a.order_idx == 0
    assert np.array_equal(a.child_qty[first], b.child_qty[b.order_idx == 0])
    assert all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_decision_after_the_close_may_use_that_session():
    # decided at 22:00 UTC on 11-04 (after the close): the decision session is 11-05
    prof = volume_profile(HIST, decision_ts=utc("2024-11-04 22:00"), lookback_sessions=1)
    assert prof.decision_session == T("2024-11-05")
    assert prof.sessions_used.tolist() == [T("2024-11-04")]


def test_batch_vwap_on_the_bins_equals_the_single_vwap():
    o = order(qty=12_345.0, start="2024-11-04 15:00", end="2024-11-04 17:00")
    single = vwap(o, volume_history=HIST)
    batch = schedule_batch("vwap", [o["decision_ts"].value], [o["end_ts"].value], [o["qty"]],
                           slice_ns=BIN, volume_history=HIST)
    assert batch.child_qty.tolist() == single["qty"].tolist()
    assert batch.slice_ns.tolist() == single["slice_ts"].astype("int64").tolist()


# --------------------------------------------------------------------------- errors
def test_vwap_errors_say_what_to_do():
    with pytest.raises(ValueError, match=r"no session before the decision session 2024-11-04.*"
                                         "use twap"):
        vwap(order(), volume_history=HIST[HIST.index >= utc("2024-11-04 14:30")])
    with pytest.raises(ValueError, match="outside session hours; schedule them with twap"):
        schedule_batch("vwap", [utc("2024-11-04 22:00").value], [utc("2024-11-04 23:00").value],
                       [100.0], n_slices=2, volume_history=HIST)
    with pytest.raises(TypeError, match="tz-aware"):
        vwap(order(), volume_history=HIST.tz_localize(None))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"kind": "twap"}, "exactly one of `n_slices`"),
    ({"kind": "twap", "n_slices": 2, "slice_ns": MIN}, "exactly one of `n_slices`"),
    ({"kind": "twap", "n_slices": 0}, r"`n_slices` must be >= 1"),
    ({"kind": "twap", "n_slices": 2, "urgency": 1.0}, "`urgency` does not apply to kind='twap'"),
    ({"kind": "is_urgency", "n_slices": 2}, "needs `urgency`"),
    ({"kind": "is_urgency", "n_slices": 2, "urgency": -1.0}, "`urgency` must be finite and >= 0"),
    ({"kind": "almgren_chriss", "n_slices": 2}, "needs `kappa_t`"),
    ({"kind": "pov", "n_slices": 2, "volume_history": HIST}, r"needs `rate` in \(0, 1\]"),
    ({"kind": "vwap", "n_slices": 2}, "needs `volume_history`"),
    ({"kind": "wap", "n_slices": 2}, "unknown schedule kind='wap'"),
    ({"kind": "twap", "n_slices": 2, "lot": 0.0}, r"`lot=0.0` must be > 0"),
])
def test_batch_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        schedule_batch(decision_ns=[0], end_ns=[MIN], qty=[10.0], **kwargs)


def test_order_errors():
    with pytest.raises(ValueError, match=r"order 1: end_ns < decision_ns"):
        schedule_batch("twap", [0, 10], [5, 5], [1.0, 1.0], n_slices=1)
    with pytest.raises(ValueError, match=r"order 0: qty=0.0 must be finite and > 0"):
        schedule_batch("twap", [0], [5], [0.0], n_slices=1)
    naive = order() | {"decision_ts": T("2024-11-04 15:00")}
    with pytest.raises(ValueError, match="`decision_ts=2024-11-04 15:00:00` has no time zone"):
        twap(naive, n_slices=2)
