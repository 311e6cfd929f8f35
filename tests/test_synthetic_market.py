"""The synthetic market: contracts, determinism, calendar, membership, scenarios, ground truth."""

from __future__ import annotations

import datetime as dt

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from models.synthetic_market import (
    GroundTruth,
    SyntheticMarketConfig,
    generate_market,
    write_market,
)
from validation.contracts import EXIT_REASONS, split_valid

TABLES = ("quotes", "trades", "daily_bars", "membership")
TINY = {"n_symbols": 3, "n_sessions": 4, "micro": {"quote_interval_s": 60.0},
        "membership": {"n_listings": 1, "n_delistings": 1}}


@pytest.fixture(scope="module")
def market():
    """The synthetic default (8 symbols x 30 sessions from 2024-11-01, 5-second quotes)."""
    return generate_market(SyntheticMarketConfig())


def _ny_date(ts: pd.Series) -> pd.Series:
    return ts.dt.tz_convert("America/New_York").dt.date


def _mid(q: pd.DataFrame) -> pd.Series:
    return (q["bid_px"] + q["ask_px"]) / 2


# ------------------------------------------------------------------------------ contracts
@pytest.mark.parametrize("table", TABLES)
def test_every_table_meets_its_contract(market, table):
    df = getattr(market, table)
    clean, failures = split_valid(table, df, source=f"synthetic {table}")
    assert failures == [], f"{table}: first failures {failures[:3]}"
    assert len(clean) == len(df) > 0


def test_default_size_is_the_documented_demo(market):
    assert len(market.quotes) > 900_000
    assert len(market.trades) > 500_000
    assert market.membership["symbol"].tolist() == [f"SYN{i:02d}" for i in range(8)]


# ------------------------------------------------------------------------------ determinism
def test_same_seed_gives_identical_frames_and_truth():
    a = generate_market(SyntheticMarketConfig(**TINY, seed=3))
    b = generate_market(SyntheticMarketConfig(**TINY, seed=3))
    for t in TABLES:
        pd.testing.assert_frame_equal(getattr(a, t), getattr(b, t))
    assert a.truth == b.truth


def test_different_seed_gives_different_frames():
    a = generate_market(SyntheticMarketConfig(**TINY, seed=3))
    b = generate_market(SyntheticMarketConfig(**TINY, seed=4))
    assert not a.quotes["bid_px"].equals(b.quotes["bid_px"])
    assert not a.daily_bars["close"].equals(b.daily_bars["close"])


# ------------------------------------------------------------------------------ calendar
@pytest.mark.filterwarnings("ignore:Series.values returning an ndarray")  # inside exchange_calendars
def test_sessions_are_the_xnys_sessions(market):
    cal = xcals.get_calendar("XNYS")
    expected = cal.sessions_in_range("2024-11-01", "2024-12-31")[:30]
    got = pd.DatetimeIndex(sorted(set(_ny_date(market.quotes["ts"])))).as_unit("ns")
    assert list(got) == list(expected.as_unit("ns"))
    assert dt.date(2024, 11, 28) not in set(_ny_date(market.trades["ts"]))  # Thanksgiving
    assert sorted(market.daily_bars["date"].unique()) == list(expected)


def test_rows_lie_inside_the_session_and_the_early_close_is_kept(market):
    for table in ("quotes", "trades"):
        df = getattr(market, table)
        local = df["ts"].dt.tz_convert("America/New_York")
        tod = local.dt.hour * 60 + local.dt.minute + local.dt.second / 60
        assert tod.min() >= 9 * 60 + 30
        day = local.dt.date
        assert tod[day == dt.date(2024, 11, 29)].max() <= 13 * 60  # 13:00 early close
        assert tod.max() <= 16 * 60
    assert tod[day == dt.date(2024, 11, 27)].max() == 16 * 60  # the closing auction print
    closes = market.daily_bars.groupby("date")["available_at"].first()
    assert closes[pd.Timestamp("2024-11-29")] == pd.Timestamp("2024-11-29 18:00", tz="UTC")
    assert closes[pd.Timestamp("2024-11-27")] == pd.Timestamp("2024-11-27 21:00", tz="UTC")


def test_available_at_is_ts_plus_latency(market):
    lat = pd.Timedelta(market.truth.config.micro.latency_ns, "ns")
    for table in ("quotes", "trades"):
        df = getattr(market, table)
        assert ((df["available_at"] - df["ts"]) == lat).all()
        assert df["ts"].is_monotonic_increasing


# ------------------------------------------------------------------------------ book sanity
def test_quotes_are_uncrossed_on_the_tick_grid_in_lots(market):
    q, tick, lot = market.quotes, 0.01, 100
    assert (q["bid_px"] < q["ask_px"]).all()
    for col in ("bid_px", "ask_px"):
        ticks = q[col] / tick
        assert np.allclose(ticks, np.round(ticks), atol=1e-6)
    for col in ("bid_sz", "ask_sz"):
        assert ((q[col] % lot) == 0).all()
        assert (q[col] >= lot).all()


def test_trades_print_at_the_prevailing_quote(market):
    t = market.trades
    assert np.allclose(t["px"] / 0.01, np.round(t["px"] / 0.01), atol=1e-6)
    assert ((t["qty"] % 1) == 0).all()
    assert (t["qty"] >= 1).all()
    assert set(t["aggressor"].unique()) == {-1, 0, 1}
    cont = t[t["aggressor"] != 0].iloc[:20_000]
    q = market.quotes.iloc[: 5 * len(cont)]
    j = pd.merge_asof(cont, q, on="ts", by="symbol", direction="backward")
    j = j.dropna(subset=["bid_px"])
    expected = np.where(j["aggressor"] > 0, j["ask_px"], j["bid_px"])
    assert np.allclose(j["px"], expected)


def test_daily_bars_are_derived_from_the_trades(market):
    t = market.trades.assign(date=_ny_date(market.trades["ts"]))
    g = t.groupby(["date", "symbol"], observed=True)
    agg = pd.DataFrame({"open": g["px"].first(), "high": g["px"].max(), "low": g["px"].min(),
                        "close": g["px"].last(), "volume": g["qty"].sum()}).reset_index()
    bars = market.daily_bars.assign(date=market.daily_bars["date"].dt.date)
    m = bars.merge(agg, on=["date", "symbol"], suffixes=("", "_t"))
    assert len(m) == len(bars)
    for col in ("open", "high", "low", "close", "volume"):
        assert np.allclose(m[col], m[f"{col}_t"]), col


# ------------------------------------------------------------------------------ membership
def test_listings_and_delistings_lie_inside_the_sample(market):
    mem, sessions = market.membership, market.truth.sessions
    first, last = pd.Timestamp(sessions[0]), pd.Timestamp(sessions[-1])
    late = mem[mem["start_date"] > first]
    gone = mem[mem["end_date"].notna()]
    assert len(late) == 2
    assert len(gone) == 2
    assert (gone["end_date"] < last).all()
    assert set(gone["exit_reason"]) <= set(EXIT_REASONS)
    assert mem["exit_reason"].isna().sum() == len(mem) - len(gone)
    ref = mem[mem["symbol"] == "SYN00"].iloc[0]
    assert ref["start_date"] == first
    assert pd.isna(ref["end_date"])


@pytest.mark.parametrize("table", ["quotes", "trades", "daily_bars"])
def test_no_rows_outside_a_symbols_membership(market, table):
    df = getattr(market, table)
    day = df["date"] if table == "daily_bars" else pd.to_datetime(_ny_date(df["ts"]))
    span = df[["symbol"]].assign(day=day.to_numpy()).groupby("symbol")["day"].agg(["min", "max"])
    mem = market.membership.set_index("symbol")
    for sym, row in mem.iterrows():
        assert span.loc[sym, "min"] == row["start_date"], sym
        sessions = pd.DatetimeIndex(market.truth.sessions)
        if pd.notna(row["end_date"]):  # exclusive: data stops the session before end_date
            end = sessions[sessions.get_loc(row["end_date"]) - 1]
        else:
            end = sessions[-1]
        assert span.loc[sym, "max"] == end, sym


# ------------------------------------------------------------------------------ scenarios
def test_flash_crash_is_visible_in_the_window(market):
    fc = market.truth.flash_crash
    assert fc is not None
    assert fc.session == dt.date(2024, 11, 19)
    start, end = pd.Timestamp(fc.start), pd.Timestamp(fc.end)
    q = market.quotes[_ny_date(market.quotes["ts"]) == fc.session]
    inside = (q["ts"] >= start) & (q["ts"] < end)
    before = (q["ts"] >= start - pd.Timedelta("60min")) & (q["ts"] < start)
    spread = (q["ask_px"] - q["bid_px"]) / _mid(q)
    depth = q["bid_sz"] + q["ask_sz"]
    recovered, vol_ratio = [], []
    assert spread[inside].mean() / spread[before].mean() > 8  # configured x20
    assert depth[inside].sum() / depth[before].sum() * 60 / 15 < 0.25  # configured x0.05
    for sym, g in q.groupby("symbol", observed=True):
        r = np.log(_mid(g).set_axis(g["ts"])).resample("1min").last().diff()
        r_in = r[(r.index >= start) & (r.index < end)]
        r_before = r[(r.index >= start - pd.Timedelta("60min")) & (r.index < start)]
        vol_ratio.append(r_in.std() / r_before.std())
        path = _mid(g)[inside[g.index]]
        assert path.min() / path.iloc[0] - 1 < -0.02, sym  # the fall ...
        recovered.append((path.iloc[-24:].mean() - path.min()) / (path.iloc[0] - path.min()))
    # ... and the rebound: configured 80% of the fall; the noisy minimum overshoots the trough
    assert np.median(recovered) > 0.3, np.round(recovered, 2)
    # configured x12 on the noise plus the V-shaped drift; the intraday vol factor moves each ratio
    assert np.median(vol_ratio) > 8
    assert min(vol_ratio) > 4


def test_crisis_week_is_visible_in_the_data(market):
    truth = market.truth
    crisis = set(truth.crisis_week)
    assert len(crisis) == 5
    assert all(truth.regime_path[truth.sessions.index(d)] == "crisis"
                                    for d in crisis)
    calm = {d for d, r in zip(truth.sessions, truth.regime_path, strict=True)
            if r == "calm" and d != truth.flash_crash.session}
    q = market.quotes.assign(day=_ny_date(market.quotes["ts"]))
    q["spread"] = (q["ask_px"] - q["bid_px"]) / _mid(q)
    bars = market.daily_bars.assign(day=market.daily_bars["date"].dt.date)
    r = np.log(q.groupby(["symbol", "day", q["ts"].dt.floor("5min")], observed=True)
               [["bid_px", "ask_px"]].last().mean(axis=1)).groupby(level=[0, 1]).diff()
    per_day = {  # (symbol x day) tables; ratios are per symbol (a $7 stock sits on the 1-tick floor)
        "spread": q.groupby(["symbol", "day"], observed=True)["spread"].mean().unstack(),
        "volume": bars.pivot(index="symbol", columns="day", values="volume"),
        "vol": ((r**2).groupby(level=[0, 1]).mean() ** 0.5).unstack(),
    }
    ratio = {k: np.nanmedian(t.reindex(columns=sorted(crisis)).mean(axis=1)
                             / t.reindex(columns=sorted(calm)).mean(axis=1))
             for k, t in per_day.items()}
    assert 1.6 < ratio["spread"] < 2.6, ratio  # configured x2
    assert ratio["volume"] > 2, ratio  # configured x3
    assert ratio["vol"] > 2.5, ratio  # configured x3.5


def test_flash_crash_on_an_early_close_is_moved_inside_the_session():
    cfg = SyntheticMarketConfig(**TINY | {"n_sessions": 4}, start_date=dt.date(2024, 11, 27),
                                scenarios={"flash_crash_at": 0.25, "crisis_week_at": None})
    fc = generate_market(cfg).truth.flash_crash
    assert fc.session == dt.date(2024, 11, 29)
    assert pd.Timestamp(fc.end) <= pd.Timestamp("2024-11-29 17:00", tz="UTC")  # 1 h before 13:00


# ------------------------------------------------------------------------------ truth and IO
def test_ground_truth_round_trips_through_json_and_parquet(tmp_path):
    m = generate_market(SyntheticMarketConfig(**TINY))
    assert GroundTruth.from_json(m.truth.to_json()) == m.truth
    paths = write_market(m, tmp_path / "synth")
    assert sorted(p.name for p in paths.values()) == [
        "daily_bars.parquet", "ground_truth.json", "membership.parquet", "quotes.parquet",
        "trades.parquet"]
    back = pd.read_parquet(paths["trades"])
    assert np.array_equal(back["px"], m.trades["px"])
    assert back["ts"].equals(m.trades["ts"])
    truth = GroundTruth.from_json(paths["ground_truth"].read_text())
    assert truth.impact.sqrt_law_y == 0.8
    assert truth.symbols[0].is_reference
    assert len(truth.symbols[1].daily_vol_path) == (
        truth.sessions.index(truth.symbols[1].last_session)
        - truth.sessions.index(truth.symbols[1].first_session) + 1)


def test_daily_only_mode_gives_long_contract_clean_bars():
    cfg = SyntheticMarketConfig(n_symbols=4, n_sessions=2000, start_date=dt.date(2005, 1, 3),
                                intraday=False)
    m = generate_market(cfg)
    assert m.quotes.empty
    assert m.trades.empty
    assert len(m.daily_bars) > 3 * 2000
    assert m.membership["end_date"].notna().sum() == 1  # 3 other symbols: 2 listings, 1 delisting
    _, failures = split_valid("daily_bars", m.daily_bars)
    assert failures == []


# ------------------------------------------------------------------------------ config errors
def test_config_is_frozen_and_rejects_unknown_fields():
    cfg = SyntheticMarketConfig()
    with pytest.raises(ValidationError, match="frozen"):
        cfg.n_symbols = 3
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        SyntheticMarketConfig(n_symbol=3)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"micro": {"quote_interval_s": 7.0}}, "must divide the 6.5-hour session"),
    ({"membership": {"exit_reasons": ["merged"]}}, "subset of"),
    ({"regimes": {"transition": [[1, 0, 0], [0, 1, 0], [0.5, 0.6, 0]]}},
     r"transition\[2\].*summing to 1"),
    ({"volatility": {"memory_weights": [1.0]}}, "one per `memory_timescales_days`"),
])
def test_config_errors_name_the_field_and_the_fix(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        SyntheticMarketConfig(**kwargs)
