"""Stress scenarios: each market shows its stress; calibration scoring; risk controls; real rows."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from assets._episodes import episode_books, index_bars
from models.synthetic_market import SyntheticMarketConfig, generate_market
from validation.stress import (
    CALIBRATION_COLUMNS,
    CALM,
    NY,
    SCENARIOS,
    Z80,
    StressResult,
    StressScenario,
    fit_stress_regime_model,
    index_stress_scenario,
    market_config,
    plot,
    run_stress_suite,
    score_calibration,
    stress_desk,
    stress_market,
    stress_windows,
    stressed_sessions,
)

N_ORDERS = 1500
SEED = 0  # market seed of the scenario checks


# ----------------------------------------------------------------------------- helpers
def _clock(ts: pd.Series) -> tuple[pd.Series, pd.Series]:
    """New York session date and minutes since 09:30."""
    local = ts.dt.tz_convert(NY)
    return local.dt.date, (local - local.dt.normalize()).dt.total_seconds() / 60 - 570


def _quotes(market) -> pd.DataFrame:
    q = market.quotes
    session, minute = _clock(q["ts"])
    mid = 0.5 * (q["bid_px"] + q["ask_px"])
    return pd.DataFrame({
        "ts": q["ts"], "symbol": q["symbol"].astype(str), "session": session, "minute": minute,
        "mid": mid, "spread_bps": (q["ask_px"] - q["bid_px"]) / mid * 1e4,
        "depth": 0.5 * (q["bid_sz"] + q["ask_sz"])})


def _rv(q: pd.DataFrame) -> float:
    """sd of 1-minute mid log returns within (symbol, session)."""
    q1 = q[np.isclose(q["minute"] % 1, 0)]
    r = np.log(q1["mid"]).groupby([q1["symbol"], q1["session"]]).diff()
    return float(r.std())


def _daily_volume(market) -> pd.Series:
    t = market.trades
    return t["qty"].groupby(t["ts"].dt.tz_convert(NY).dt.date).sum()


def _truth_predictor(desks: dict):
    """predict = the true expected cost, band +-Z80 * timing risk (the irreducible noise)."""
    truth = {(name, oid): v for name, (_, hist, _) in desks.items()
             for oid, v in zip(hist.outcomes["order_id"], hist.outcomes["truth_bps"],
                               strict=True)}

    def predict(f: pd.DataFrame):
        key = f["scenario"] if "scenario" in f else pd.Series("", index=f.index)
        mean = np.array([truth.get((s, o), np.nan) for s, o in zip(key, f["order_id"],
                                                                     strict=True)])
        sd = f["timing_risk_bps"].to_numpy(float)
        return mean, mean - Z80 * sd, mean + Z80 * sd

    return predict


# ----------------------------------------------------------------------------- scenarios
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_scenario_market_shows_its_stress(name):
    sc = SCENARIOS[name]
    m = stress_market(sc, seed=SEED)
    assert m.truth.config == market_config(sc, seed=SEED)
    sessions = list(m.truth.sessions)
    stressed = stressed_sessions(sc, m)
    assert stressed == sessions[-sc.n_stressed:]  # the stress is at the end, calm days first
    regimes = list(m.truth.regime_path)
    assert regimes[: len(sessions) - sc.crisis_sessions] == ["calm"] * (
        len(sessions) - sc.crisis_sessions)
    assert regimes[len(sessions) - sc.crisis_sessions:] == ["crisis"] * sc.crisis_sessions
    q = _quotes(m)
    win = stress_windows(sc, m)
    last = sessions[-1]
    calm_q = q[~q["session"].isin(stressed)]

    if sc.crisis_sessions:  # the crisis regime: vol, spread, volume multipliers
        days = stressed[:-1] if (sc.event or sc.gap_return or sc.halts) and len(stressed) > 1 \
            else stressed
        cq = q[q["session"].isin(days)]
        if days == [last] and sc.event is not None:  # keep clear of the opening event
            cq = cq[cq["minute"] >= sc.event.minutes + 30]
        ratio = _rv(cq) / _rv(calm_q)
        assert 0.6 * sc.vol_mult < ratio < 1.6 * sc.vol_mult, ratio
        sp = cq["spread_bps"].median() / calm_q["spread_bps"].median()
        assert 0.7 * sc.spread_mult < sp < 1.4 * sc.spread_mult, sp
        if days != [last]:
            vol = _daily_volume(m)
            v = vol[vol.index.isin(days)].mean() / vol[~vol.index.isin(stressed)].mean()
            assert 0.6 * sc.volume_mult < v < 1.6 * sc.volume_mult, v

    if sc.event is not None:  # the intraday window against the same clock minutes of calm days
        e, fc = sc.event, m.truth.flash_crash
        assert fc is not None
        assert fc.session == last
        inside = q[(q["ts"] >= fc.start) & (q["ts"] < fc.end)]
        lo, hi = inside["minute"].min(), inside["minute"].max()
        same = calm_q[calm_q["minute"].between(lo, hi)]
        day_mult = (sc.vol_mult, sc.spread_mult) if sc.crisis_sessions else (1.0, 1.0)
        sp = inside["spread_bps"].median() / same["spread_bps"].median()
        assert 0.5 * e.spread_mult * day_mult[1] < sp < 2 * e.spread_mult * day_mult[1], sp
        assert inside["depth"].mean() / same["depth"].mean() < max(0.5, 3 * e.depth_mult)
        rv = _rv(inside) / _rv(same)
        # (a few minutes of 1-minute returns: a loose band)
        assert 0.25 * e.vol_mult * day_mult[0] < rv < 2.5 * e.vol_mult * day_mult[0], rv
        t = m.trades
        in_t = t[(t["ts"] >= fc.start) & (t["ts"] < fc.end)]["qty"].sum()
        t_session, t_minute = _clock(t["ts"])
        calm_t = ~t_session.isin(stressed) & t_minute.between(lo, hi + 1)
        per_day = t["qty"][calm_t].sum() / t_session[calm_t].nunique()
        assert in_t / per_day > 0.5 * e.volume_mult, in_t / per_day

    bars = m.daily_bars.sort_values(["symbol", "date"])
    gap = (bars["open"] / bars.groupby("symbol")["close"].shift() - 1)[
        bars["date"] == pd.Timestamp(last)]
    if sc.gap_return is not None:  # the market opens down by the gap, the rest unchanged
        assert gap.mean() < 0, gap
        cfg = market_config(sc, seed=SEED)
        same = generate_market(cfg.model_copy(update={"scenarios": cfg.scenarios.model_copy(
            update={"gap_at": None})}))
        o = same.daily_bars.sort_values(["symbol", "date"])
        at_last = bars["date"] == pd.Timestamp(last)
        ratio = bars["open"][at_last].to_numpy() / o["open"][at_last].to_numpy()
        assert np.allclose(ratio, 1 + sc.gap_return, atol=1e-3), ratio
        pd.testing.assert_frame_equal(bars[~at_last], o[~at_last])
    else:  # only the usual overnight moves (wider in a crisis)
        assert gap.abs().max() < 0.04 * (sc.vol_mult if sc.crisis_sessions else 1.0)

    halts = win[win["kind"] == "halt"]
    assert len(halts) == sum(len(h.symbols) if h.symbols else 1 for h in sc.halts)
    for h in halts.itertuples():  # nothing prints inside a halt; quotes resume after it
        for tab in (m.quotes, m.trades):
            s = tab["symbol"].astype(str)
            on = s == h.symbol if h.symbol != "*" else pd.Series(True, index=tab.index)
            assert not (on & (tab["ts"] >= h.start) & (tab["ts"] < h.end)).any()
        sym = q["symbol"] == h.symbol if h.symbol != "*" else pd.Series(True, index=q.index)
        assert (sym & q["ts"].between(h.start - pd.Timedelta("1min"), h.start)).any()
        assert (sym & q["ts"].between(h.end, h.end + pd.Timedelta("1min"))).any()
        if h.symbol != "*":  # a single-stock pause: the others keep quoting
            assert (~sym & (q["ts"] >= h.start) & (q["ts"] < h.end)).any()

    if name == "flash_crash_2010":  # the scripted fall shows in the market average at the trough
        fc = m.truth.flash_crash
        lm = np.log(q.pivot_table(index="ts", columns="symbol", values="mid")).mean(axis=1)
        assert lm.asof(fc.trough) - lm.asof(fc.start) < -0.02
    if name == "covid_2020":  # the market-wide halt comes after the scripted fall of 7%:
        # against the same market without the gap and the opening fall (same random draws)
        cfg = market_config(sc, seed=SEED)
        base = generate_market(cfg.model_copy(update={"scenarios": cfg.scenarios.model_copy(
            update={"gap_at": None, "flash_crash_at": None})}))
        start = halts["start"].iloc[0]
        mids = [(lambda z: z[z["ts"] < start].groupby("symbol")["mid"].last())(_quotes(x))
                for x in (m, base)]
        move = float(np.log(mids[0] / mids[1]).mean())
        assert -0.13 < move < -0.015, move  # scripted -7.3%, plus the window's extra noise


def test_gap_also_applies_to_daily_only_markets_and_config_guards():
    base = {"n_symbols": 3, "n_sessions": 40, "seed": 2, "intraday": False,
            "membership": {"n_listings": 0, "n_delistings": 0}}
    plain = generate_market(SyntheticMarketConfig(**base))
    gapped = generate_market(SyntheticMarketConfig(**base, scenarios={"gap_at": 0.5,
                                                                      "gap_return": -0.1}))
    d = plain.truth.sessions[20]
    a = plain.daily_bars[plain.daily_bars["date"] == pd.Timestamp(d)]["open"].to_numpy()
    b = gapped.daily_bars[gapped.daily_bars["date"] == pd.Timestamp(d)]["open"].to_numpy()
    assert np.allclose(b / a, 0.9, atol=2e-3)
    before = plain.daily_bars["date"] < pd.Timestamp(d)
    pd.testing.assert_frame_equal(plain.daily_bars[before], gapped.daily_bars[before])
    with pytest.raises(ValueError, match="n_sessions"):
        market_config(SCENARIOS["crisis_2008"], n_sessions=8)
    cfg = market_config(CALM)
    assert cfg.scenarios.flash_crash_at is None
    assert cfg.scenarios.crisis_week_at is None


# ----------------------------------------------------------------------------- calibration
def test_score_calibration_drops_missing_rows():
    y = np.array([1.0, 2.0, np.nan, 4.0])
    p = np.array([0.0, 2.0, 1.0, np.nan])
    s = score_calibration(p, p - 1, p + 1, y, np.array([1.0, 1.0, 1.0, 1.0]))
    assert s["n"] == 2
    assert s["bias_bps"] == 0.5
    assert s["coverage_80"] == 1.0
    assert s["mae"] == 0.5
    assert score_calibration([np.nan], [0], [1], [1], [1])["n"] == 0


@pytest.fixture(scope="module")
def calm_desk():
    return stress_desk(CALM, n_orders=N_ORDERS, seed=0)


def test_perfect_predictor_is_calibrated_and_a_biased_one_is_caught(calm_desk):
    _, hist, feats = calm_desk
    assert feats["stressed"].sum() > 0
    assert (~feats["stressed"]).sum() > 0
    truth = hist.outcomes.set_index("order_id")["truth_bps"].reindex(feats["order_id"])
    y = hist.outcomes.set_index("order_id")["shortfall_bps"].reindex(feats["order_id"])
    sd = feats["timing_risk_bps"].to_numpy()
    t = truth.to_numpy()
    s = score_calibration(t, t - Z80 * sd, t + Z80 * sd, y, sd)
    assert s["n"] > 0.95 * N_ORDERS
    # a Gaussian band on heavy-tailed timing noise covers slightly more than 80% (0.82-0.86 over
    # seeds 0-7): the noise sd is right, its tails are fatter
    assert abs(s["coverage_80"] - 0.8) < 0.07, s
    assert abs(s["bias_bps"]) < 3 * s["bias_se_bps"], s
    assert s["noise_sd_bps"] > 0
    # the parametric estimates are refit point in time, as in training
    assert feats.loc[feats["stressed"], "sqrt_pred_bps"].notna().mean() > 0.9
    assert feats["knowledge_ts"].le(feats["decision_ts"]).all()
    b = score_calibration(t + 25, t + 25 - Z80 * sd, t + 25 + Z80 * sd, y, sd)
    assert abs(b["bias_bps"] + 25) < 3 * b["bias_se_bps"]
    assert b["bias_bps"] < -3 * b["bias_se_bps"]


# ----------------------------------------------------------------------------- the suite
@pytest.fixture(scope="module")
def suite():
    scen = {"calm": CALM, "flash_crash_2010": SCENARIOS["flash_crash_2010"],
            "crisis_2008": SCENARIOS["crisis_2008"]}
    desks = {n: stress_desk(sc, n_orders=N_ORDERS, seed=0) for n, sc in scen.items()}
    lines = []
    training = generate_market(SyntheticMarketConfig(n_symbols=8, n_sessions=60, seed=7,
                                                     micro={"quote_interval_s": 60.0}))
    res = run_stress_suite(_truth_predictor(desks), scenarios=scen, n_orders=N_ORDERS, seed=0,
                           progress=lines.append,
                           regime_model=fit_stress_regime_model(training.daily_bars,
                                                                training.quotes))
    return res, desks, lines


def test_suite_tables(suite):
    res, desks, lines = suite
    assert isinstance(res, StressResult)
    assert list(res.calibration.columns) == list(CALIBRATION_COLUMNS)
    assert {"scenario", "n", "bias_bps", "noise_sd_bps", "coverage_80"} <= set(
        res.calibration.columns)
    assert len(lines) == 3
    cal = res.calibration.set_index("scenario")
    calm = cal.loc["calm"]
    assert calm["kind"] == "synthetic"
    assert calm["n"] > 0
    assert abs(calm["coverage_80"] - 0.8) < 0.1
    assert abs(calm["bias_bps"]) < 3 * calm["bias_se_bps"]
    assert abs(calm["coverage_80_normal"] - 0.8) < 0.07
    # the suite's numbers are those of its own desk
    _, hist, feats = desks["calm"]
    st = feats["stressed"].to_numpy()
    assert calm["n"] == st.sum() - hist.outcomes["shortfall_bps"].isna().to_numpy()[st].sum()
    sch = res.schedules
    assert set(sch["strategy"]) == {"twap", "vwap", "pov", "almgren_chriss", "is_urgency"}
    tw = sch[sch["strategy"] == "twap"]
    assert (tw["minus_twap_bps"] == 0).all()
    assert (sch["se_bps"] > 0).all()
    sm = res.summary.set_index("scenario")
    # the flash crash day costs more and quotes wider than the calm days
    assert sm.loc["flash_crash_2010", "cost_stressed_bps"] > sm.loc["flash_crash_2010",
                                                                    "cost_normal_bps"]
    assert sm.loc["flash_crash_2010", "spread_stressed_bps"] > 1.3 * sm.loc[
        "flash_crash_2010", "spread_normal_bps"]


def test_real_rows_are_not_scored_without_data(suite):
    res = suite[0]
    cal = res.calibration.set_index("scenario")
    for name, kind in (("bitmex_2020_03_10", "real"), ("amzn_2012_06_21", "real"),
                       ("index_stress_days", "synthetic")):
        assert cal.loc[name, "kind"] == kind
        assert cal.loc[name, "n"] == 0
        assert cal.loc[name, "note"].startswith("not scored: ")
    assert not res.risk_controls["scenario"].isin(["bitmex_2020_03_10"]).any()


def test_risk_controls_fire_in_the_flash_crash(suite):
    rc = suite[0].risk_controls
    f = rc[rc["scenario"] == "flash_crash_2010"].set_index(["engine", "mode", "reason"])
    f = f.sort_index()
    calm = rc[rc["scenario"] == "calm"].set_index(["engine", "mode", "reason"]).sort_index()
    for engine in ("simulator", "book_replay"):
        allm = f.loc[engine, "all"]
        assert allm["fired_stressed"].sum() / allm["children_stressed"].iloc[0] > \
            allm["fired_normal"].sum() / allm["children_normal"].iloc[0]
        collar = f.loc[(engine, "alone", "price_collar")]
        assert collar["rate_stressed"] > 2 * collar["rate_normal"]
        assert collar["fired_event"] > 0  # the window itself trips the collar
        # the calm placebo's last session trips the collar far less than the crash day
        assert calm.loc[(engine, "all", "price_collar"), "rate_stressed"] < 0.25 * f.loc[
            (engine, "all", "price_collar"), "rate_stressed"]
    # on the live book most children sent inside the crash window are stopped by the collar
    rep = f.loc[("book_replay", "all", "price_collar")]
    assert rep["fired_event"] > 0.5 * rep["children_event"]


def test_loss_limits_fire_in_the_crisis_weeks(suite):
    """Limits set from the calm sessions (99th percentile order loss, 1.5x the worst calm day)
    fire on the crisis weeks' costs: each control alone, both engines."""
    rc = suite[0].risk_controls
    c = rc[(rc["scenario"] == "crisis_2008") & (rc["mode"] == "alone")].set_index(
        ["engine", "reason"]).sort_index()
    for engine in ("simulator", "book_replay"):
        for reason in ("order_loss_limit", "daily_loss_limit", "price_collar"):
            row = c.loc[(engine, reason)]
            assert row["rate_stressed"] > 3 * row["rate_normal"], (engine, reason)
        assert c.loc[(engine, "daily_loss_limit"), "fired_normal"] == 0  # 1.5x the worst day


def test_plot_and_markdown(suite, tmp_path):
    res = suite[0]
    paths = plot(res, tmp_path)
    assert [p.name for p in paths] == ["stress_calibration.png", "stress_schedules.png",
                                      "stress_risk_controls.png", "stress_regimes.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    md = res.to_markdown()
    for text in ("## Calibration", "## Schedules against TWAP", "## Risk controls",
                 "flash_crash_2010", "not scored", "## Regimes on the stress days"):
        assert text in md
    # the regimes of every synthetic scenario, session by session; the crisis week is caught
    det = res.regime_detection.set_index("scenario")
    assert list(det.index) == ["calm", "flash_crash_2010", "crisis_2008"]
    assert det.loc["crisis_2008", "stressed_flagged"] == 1.0
    assert det.loc["crisis_2008", "detection_delay"] == 0.0
    assert det.loc["calm", "false_alarm_rate"] == 0.0


# ----------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_episodes_and_index_stress_days():
    from bestex.settings import require_data_dir

    def spread_model(f: pd.DataFrame):
        m = f["spread_cost_bps"].to_numpy(float)
        sd = f["timing_risk_bps"].to_numpy(float)
        return m, m - Z80 * sd, m + Z80 * sd

    def domain(f: pd.DataFrame):  # a model trained on equities below $1bn ADV
        return ["adv" if a > 1e9 else "" for a in f["adv"]]

    data = require_data_dir()
    res = run_stress_suite(spread_model, scenarios={}, n_orders=N_ORDERS,
                           books=episode_books(data), index_bars=index_bars(data),
                           progress=None, real_orders=300,
                           domain=domain)
    days = res.index_days
    dates = set(pd.to_datetime(days["date"]).dt.date)
    assert {dt.date(2008, 9, 29), dt.date(2008, 10, 13), dt.date(2008, 10, 15)} <= dates
    assert (days["ret"].abs() >= 0.05).all()
    med = float(days["vol_mult"].median())
    assert 1.2 < med < 5
    sc = res.scenarios["index_stress_days"]
    assert isinstance(sc, StressScenario)
    assert sc.vol_mult == pytest.approx(med)
    assert sc == index_stress_scenario(days)
    cal = res.calibration.set_index("scenario")
    assert cal.loc["index_stress_days", "n"] > 0
    for name in ("bitmex_2020_03_10", "amzn_2012_06_21"):
        assert cal.loc[name, "kind"] == "real"
        assert cal.loc[name, "n"] > 50  # features exist where the plan and the quotes do
        assert "desk's estimates" in cal.loc[name, "note"]  # adv, sigma_daily: no daily bars
        assert 0 <= cal.loc[name, "coverage_80"] <= 1
    # the desk's XBTUSD ADV ($3bn) is outside that domain on every order; AMZN's is inside
    assert cal.loc["bitmex_2020_03_10", "outside_domain"] == 1.0
    assert cal.loc["bitmex_2020_03_10", "outside_features"] == "adv 100%"
    assert cal.loc["amzn_2012_06_21", "outside_domain"] == 0.0
    assert cal.loc["index_stress_days", "outside_domain"] == 0.0
    sm = res.summary.set_index("scenario")
    assert sm.loc["bitmex_2020_03_10", "spread_stressed_bps"] < 5  # XBTUSD: 0.5 USD at ~7,900
    assert 2 < sm.loc["amzn_2012_06_21", "spread_normal_bps"] < 15  # AMZN median $0.13 at $223
    assert np.isfinite(sm.loc["amzn_2012_06_21", "cost_normal_bps"])
    rc = res.risk_controls
    assert {"bitmex_2020_03_10", "amzn_2012_06_21"} <= set(rc["scenario"])
    bx = rc[rc["scenario"] == "bitmex_2020_03_10"]
    assert bx["fired_normal"].isna().all()
    assert (bx["children_stressed"] > 0).all()
    sch = res.schedules.set_index("scenario")
    assert sch.loc["amzn_2012_06_21", "strategy"] == "twap"


def test_missing_real_files_are_reported_not_scored(tmp_path):
    res = run_stress_suite(lambda f: (np.zeros(len(f)),) * 3, scenarios={},
                           books=episode_books(tmp_path), index_bars=index_bars(tmp_path),
                           progress=None)
    cal = res.calibration.set_index("scenario")
    assert set(cal.index) == {"index_stress_days", "bitmex_2020_03_10", "amzn_2012_06_21"}
    assert (cal["n"] == 0).all()
    assert cal["note"].str.startswith("not scored: ").all()
    assert res.risk_controls.empty
