"""Promotion gates: the config file, each gate on hand-checked numbers, the paired bootstrap."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pandas as pd
import pytest

from validation import _gates_bootstrap, _gates_config, _gates_report, gates
from validation.errors import GateFailed
from validation.gates import (
    DEFAULT_GATES_PATH,
    GateReport,
    GateResult,
    evaluate_gates,
    gate_challenger,
    gate_oos_degradation,
    gate_paper,
    gate_stress,
    gate_walk_forward,
    gates_text,
    load_gates,
    paired_bootstrap,
)


@pytest.fixture(scope="module")
def cfg():
    return load_gates()


def _write(tmp_path, text, name="gates.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("module", [gates, _gates_bootstrap, _gates_config, _gates_report])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


def test_public_names_are_importable_from_gates():
    assert sorted(gates.__all__) == sorted(set(gates.__all__))
    for name in gates.__all__:
        assert hasattr(gates, name), name


def test_default_config_values(cfg):
    assert cfg.oos.metric == "wrmse"
    assert cfg.oos.max_degradation_pct == 25.0
    wf = cfg.walk_forward
    assert (wf.metric, wf.truth_metric, wf.baseline) == ("mae", "truth_mae", "sqrt")
    assert (wf.min_share_beating, wf.max_cv) == (0.8, 0.5)
    st = cfg.stress
    assert (st.max_abs_bias_sd, st.max_abs_bias_bps) == (0.5, 10.0)
    assert (st.coverage_min, st.coverage_max, st.min_share_passing) == (0.6, 0.97, 0.75)
    assert st.kinds == ("synthetic",)
    ch = cfg.challenger
    assert (ch.n_boot, ch.confidence, ch.block, ch.max_worsening_bps, ch.seed) == (
        2000, 0.95, 50, 0.5, 0)
    assert cfg.source == str(DEFAULT_GATES_PATH)
    assert cfg.text == gates_text() == DEFAULT_GATES_PATH.read_text()
    assert cfg.render() == cfg.text


def test_config_is_frozen(cfg):
    with pytest.raises(ValueError, match="frozen"):
        cfg.oos.max_degradation_pct = 99.0  # type: ignore[misc]


def test_unknown_key_names_file_and_key(tmp_path):
    text = gates_text().replace("seed = 0", "seed = 0\nsed = 1")
    p = _write(tmp_path, text)
    with pytest.raises(ValueError, match=r"gates\.toml.*unknown key `challenger\.sed`"):
        load_gates(p)


def test_unknown_section_names_file_and_section(tmp_path):
    p = _write(tmp_path, gates_text() + "\n[extra]\nx = 1\n", name="mine.toml")
    with pytest.raises(ValueError, match=r"mine\.toml.*unknown section or key \['extra'\]"):
        load_gates(p)


def test_missing_key_names_file_and_key(tmp_path):
    text = "\n".join(line for line in gates_text().splitlines()
                     if not line.startswith("max_cv"))
    p = _write(tmp_path, text)
    with pytest.raises(ValueError, match=r"gates\.toml.*missing key `walk_forward\.max_cv`"):
        load_gates(p)


def test_out_of_range_value_names_key(tmp_path):
    p = _write(tmp_path, gates_text().replace("confidence = 0.95", "confidence = 95"))
    with pytest.raises(ValueError, match=r"gates\.toml.*`challenger\.confidence`.*95"):
        load_gates(p)


def test_inverted_coverage_bounds_rejected(tmp_path):
    p = _write(tmp_path, gates_text().replace("coverage_min = 0.6", "coverage_min = 0.99"))
    with pytest.raises(ValueError, match=r"coverage_min \(0\.99\) must be <= coverage_max"):
        load_gates(p)


def test_missing_file_and_bad_toml_name_the_file(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ValueError, match=r"nope\.toml: file not found"):
        load_gates(missing)
    with pytest.raises(ValueError, match=r"nope\.toml: file not found"):
        gates_text(missing)
    bad = _write(tmp_path, "[oos\nmetric = ", name="broken.toml")
    with pytest.raises(ValueError, match=r"broken\.toml: not valid TOML"):
        load_gates(bad)


# --------------------------------------------------------------------------- OOS


def test_oos_degradation_by_hand(cfg):
    ok = gate_oos_degradation(10.0, 12.0, cfg)
    assert ok.passed
    assert ok.value == pytest.approx(20.0)
    assert ok.name == "oos_degradation"
    bad = gate_oos_degradation(10.0, 13.0, cfg)
    assert not bad.passed
    assert bad.value == pytest.approx(30.0)
    assert "25.0%" in bad.detail
    assert bad.bound == "<= 25.0%"
    better = gate_oos_degradation(10.0, 9.0, cfg)
    assert better.passed
    assert better.value == pytest.approx(-10.0)
    assert gate_oos_degradation(10.0, 12.5, cfg).passed  # exactly 25%: within the bound


@pytest.mark.parametrize(("cv", "oos"), [(0.0, 1.0), (-1.0, 1.0), (math.nan, 1.0), (1.0, math.inf)])
def test_oos_degradation_rejects_bad_losses(cfg, cv, oos):
    with pytest.raises(ValueError, match="loss"):
        gate_oos_degradation(cv, oos, cfg)


# --------------------------------------------------------------------------- walk-forward


def test_walk_forward_by_hand(cfg):
    # model beats sqrt in windows 1-4, loses in window 5: share 4/5 = 0.8 >= 0.8.
    # model / sqrt = [1/2, 2/3, 3/4, 4/5, 5/4]: mean 0.7933, sample sd 0.2795, cv 0.3524 <= 0.5
    w = pd.DataFrame({"model_mae": [1.0, 2.0, 3.0, 4.0, 5.0],
                      "sqrt_mae": [2.0, 3.0, 4.0, 5.0, 4.0]})
    beats, stab = gate_walk_forward(w, cfg)
    assert beats.name == "walk_forward_beats_baseline"
    assert beats.passed
    assert beats.value == pytest.approx(0.8)
    assert stab.name == "walk_forward_stability"
    assert stab.passed
    r = np.array([1 / 2, 2 / 3, 3 / 4, 4 / 5, 5 / 4])
    assert stab.value == pytest.approx(r.std(ddof=1) / r.mean())
    assert stab.value == pytest.approx(0.3524, abs=1e-4)
    # ratios [1/2, 1, 1]: mean 5/6, sd 0.2887, cv 0.3464; 1 of 3 beats: fails.
    w2 = pd.DataFrame({"model_mae": [1.0, 2.0, 3.0], "sqrt_mae": [2.0, 2.0, 3.0]})
    beats2, stab2 = gate_walk_forward(w2, cfg)
    assert not beats2.passed
    assert beats2.value == pytest.approx(1 / 3)
    assert stab2.passed
    assert stab2.value == pytest.approx(np.sqrt(1 / 12) / (5 / 6))
    # a model whose skill swings: ratios [0.2, 1.0] -> cv 0.9428 > 0.5 fails
    _, stab3 = gate_walk_forward(pd.DataFrame({"model_mae": [1.0, 5.0],
                                               "sqrt_mae": [5.0, 5.0]}), cfg)
    assert not stab3.passed


def test_walk_forward_prefers_truth_columns(cfg):
    w = pd.DataFrame({"model_mae": [9.0, 9.0], "sqrt_mae": [1.0, 1.0],
                      "model_truth_mae": [1.0, 1.0], "sqrt_truth_mae": [2.0, 2.0]})
    beats, stab = gate_walk_forward(w, cfg)
    assert beats.value == 1.0
    assert beats.detail.startswith("truth_mae")
    assert stab.value == 0.0
    # an incomplete truth column falls back to the realized metric
    w.loc[1, "sqrt_truth_mae"] = np.nan
    beats, _ = gate_walk_forward(w, cfg)
    assert beats.value == 0.0
    assert beats.detail.startswith("mae")


def test_walk_forward_missing_columns_named(cfg):
    w = pd.DataFrame({"model_mae": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"lack column\(s\) \['sqrt_mae'\]"):
        gate_walk_forward(w, cfg)


def test_walk_forward_single_window_has_no_stability(cfg):
    beats, stab = gate_walk_forward(pd.DataFrame({"model_mae": [1.0], "sqrt_mae": [2.0]}), cfg)
    assert beats.passed
    assert not stab.passed
    assert math.isnan(stab.value)
    assert "at least 2 windows" in stab.detail


# --------------------------------------------------------------------------- stress


def _stress_table():
    return pd.DataFrame({
        "scenario": ["calm", "vol_spike", "halt", "wide_band", "biased"],
        "n": [100, 80, 0, 50, 60],
        #          |bias|<=10bps  12/30=0.4sd   unscored   ok            25bps = 1.25 sd
        "bias_bps": [1.0, 12.0, np.nan, -3.0, 25.0],
        "noise_sd_bps": [10.0, 30.0, np.nan, 20.0, 20.0],
        #               ok    ok    unscored  0.99 > 0.97  ok
        "coverage_80": [0.80, 0.75, np.nan, 0.99, 0.70],
    })


def test_stress_by_hand(cfg):
    # scored: calm, vol_spike, wide_band, biased (halt has n == 0); passing: calm, vol_spike.
    r = gate_stress(_stress_table(), cfg)
    assert r.name == "stress"
    assert r.value == pytest.approx(0.5)
    assert not r.passed
    assert "2 of 4 scored" in r.detail
    assert "wide_band (coverage 0.990 outside [0.6, 0.97])" in r.detail
    assert "biased (|bias| 25 bps = 1.25 sd" in r.detail
    assert "not scored: halt" in r.detail
    assert "calm" not in r.detail
    assert "vol_spike" not in r.detail


def test_stress_passes_at_share(cfg):
    t = _stress_table()
    t.loc[t.scenario == "biased", "bias_bps"] = -8.0  # within 10 bps now: 3 of 4 = 0.75 passes
    r = gate_stress(t, cfg)
    assert r.passed
    assert r.value == pytest.approx(0.75)


def test_stress_no_scored_rows_fails_and_missing_column_named(cfg):
    t = _stress_table().assign(n=0)
    r = gate_stress(t, cfg)
    assert not r.passed
    assert math.isnan(r.value)
    assert "no scenario scored" in r.detail
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['coverage_80'\]"):
        gate_stress(_stress_table().drop(columns="coverage_80"), cfg)


# --------------------------------------------------------------------------- paired bootstrap


@pytest.mark.parametrize("block", [1, 7, 50])
def test_bootstrap_constant_difference(block):
    rng = np.random.default_rng(3)
    b = rng.normal(size=503)
    mean, lo, hi = paired_bootstrap(b + 0.5, b, n_boot=500, block=block, seed=1)
    assert (mean, lo, hi) == pytest.approx((0.5, 0.5, 0.5), abs=1e-12)


def test_bootstrap_iid_width_matches_normal_theory():
    n, sd, mu = 2000, 1.0, 0.3
    d = np.random.default_rng(11).normal(mu, sd, size=n)
    mean, lo, hi = paired_bootstrap(d, np.zeros(n), n_boot=2000, confidence=0.95, block=1)
    assert mean == pytest.approx(d.mean())
    assert lo < mu < hi
    theory = 2 * 1.96 * sd / math.sqrt(n)  # 0.0877
    assert (hi - lo) == pytest.approx(theory, rel=0.15)


def test_block_bootstrap_widens_interval_under_autocorrelation():
    # AR(1) with phi = 0.9: the long-run sd of the mean is sqrt((1+phi)/(1-phi)) = 4.4x the
    # iid one, which the iid bootstrap misses and blocks of 50 largely recover.
    rng = np.random.default_rng(5)
    n, phi = 4000, 0.9
    e = rng.normal(size=n)
    d = np.empty(n)
    d[0] = e[0]
    for t in range(1, n):
        d[t] = phi * d[t - 1] + e[t]
    _, lo1, hi1 = paired_bootstrap(d, np.zeros(n), n_boot=1000, block=1)
    _, lo50, hi50 = paired_bootstrap(d, np.zeros(n), n_boot=1000, block=50)
    assert (hi50 - lo50) > 2.5 * (hi1 - lo1)


def test_bootstrap_is_seeded_and_validates():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=200), rng.normal(size=200)
    assert paired_bootstrap(a, b, seed=4) == paired_bootstrap(a, b, seed=4)
    with pytest.raises(ValueError, match=r"block.*\[1, 100\]"):
        paired_bootstrap(a, b, block=101)
    with pytest.raises(ValueError, match="has 200 values but"):
        paired_bootstrap(a, b[:-1])
    with pytest.raises(ValueError, match="non-finite"):
        paired_bootstrap(np.r_[a[:-1], np.nan], b)
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap(a, b, confidence=1.0)


# --------------------------------------------------------------------------- challenger


def test_challenger_refuses_uniformly_worse_and_accepts_equal(cfg):
    err = np.random.default_rng(2).normal(0, 20, size=1000)
    worse = gate_challenger(err + np.sign(err) * 1.0, err, cfg)  # |err| larger by 1 bps each
    assert not worse.passed
    assert worse.value == pytest.approx(1.0)
    assert "95% CI [+1, +1]" in worse.detail
    equal = gate_challenger(-err, err, cfg)  # same absolute errors
    assert equal.passed
    assert equal.value == 0.0
    better = gate_challenger(0.5 * err, err, cfg)
    assert better.passed
    assert better.value < 0


def test_challenger_requires_same_holdout(cfg):
    a = pd.Series([1.0] * 200, index=range(200))
    b = pd.Series([1.0] * 200, index=range(1, 201))
    with pytest.raises(ValueError, match="same holdout"):
        gate_challenger(a, b, cfg)


# --------------------------------------------------------------------------- report


def test_report_markdown_dict_and_frame(cfg):
    rep = evaluate_gates(cfg=cfg, cv_loss=10.0, oos_loss=12.0, stress=_stress_table())
    assert [r.name for r in rep.results] == ["oos_degradation", "stress"]
    assert not rep.passed
    assert rep.failures == [f"stress: {rep.results[1].detail}"]
    md = rep.to_markdown()
    assert "| oos_degradation | PASS | 20 | <= 25.0% |" in md
    assert "| stress | FAIL | 0.5 |" in md
    assert "**Promotion gates: FAIL** (1 of 2 passed)" in md
    assert "```toml\n" + cfg.text.rstrip("\n") + "\n```" in md
    assert rep.to_markdown(config_text="[x]\ny = 1").endswith("```toml\n[x]\ny = 1\n```\n")
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["passed"] is False
    assert d["n_gates"] == 2
    assert d["config"] == cfg.text
    assert d["results"][0] == {"name": "oos_degradation", "passed": True,
                               "value": pytest.approx(20.0), "bound": "<= 25.0%",
                               "detail": rep.results[0].detail}
    frame = rep.to_frame()
    assert list(frame.columns) == ["name", "passed", "value", "bound", "detail"]
    assert frame["passed"].tolist() == [True, False]
    with pytest.raises(GateFailed, match="stress: 2 of 4"):
        rep.raise_for_failures()


def test_evaluate_gates_skips_gates_without_input(cfg):
    rep = evaluate_gates(cfg=cfg, cv_loss=10.0, oos_loss=11.0)
    assert [r.name for r in rep.results] == ["oos_degradation"]
    assert rep.passed
    rep.raise_for_failures()
    # no champion yet: the challenger gate is skipped
    rep = evaluate_gates(cfg=cfg, challenger_err=np.ones(200))
    assert rep.results == []
    assert not rep.passed
    with pytest.raises(GateFailed, match="no promotion gate ran"):
        rep.raise_for_failures()
    w = pd.DataFrame({"model_mae": [1.0, 1.1], "sqrt_mae": [2.0, 2.0]})
    rep = evaluate_gates(cfg=cfg, walk_forward=w, challenger_err=np.ones(200),
                         champion_err=np.ones(200))
    assert [r.name for r in rep.results] == [
        "walk_forward_beats_baseline", "walk_forward_stability", "challenger_vs_champion"]
    assert rep.passed
    with pytest.raises(ValueError, match="both `cv_loss` and `oos_loss`"):
        evaluate_gates(cfg=cfg, cv_loss=1.0)
    with pytest.raises(ValueError, match="without `challenger_err`"):
        evaluate_gates(cfg=cfg, champion_err=np.ones(200))


def test_config_built_in_code_is_rendered(cfg):
    code = gates.GateConfig.model_validate(cfg.model_dump(exclude={"source", "text"}))
    assert code.text == ""
    assert code == cfg.model_copy(update={"source": "", "text": ""})
    rendered = code.render()
    assert "[challenger]\nn_boot = 2000\n" in rendered
    assert 'metric = "wrmse"' in rendered
    assert "```toml\n[oos]" in GateReport([GateResult("x", True, 1.0, "b", "d")],
                                          config_text=rendered).to_markdown()


def test_stress_gate_judges_only_the_configured_kinds(cfg):
    # the real row would fail (coverage 0.0, bias -268 bps) but is of a kind not gated
    t = pd.DataFrame({"scenario": ["crisis", "bitmex"], "kind": ["synthetic", "real"],
                      "n": [100, 500], "bias_bps": [1.0, -268.0],
                      "noise_sd_bps": [50.0, 17.0], "coverage_80": [0.8, 0.0]})
    res = gate_stress(t, cfg)
    assert res.passed
    assert res.value == 1.0
    assert "not gated" in res.detail
    assert "bitmex" in res.detail
    # without a kind column every row is judged
    assert not gate_stress(t.drop(columns="kind"), cfg).passed


# ----------------------------------------------------------------------------- real books
def _lobo(bias=(1.0, -2.0), cov=(0.78, 0.72), ratio=0.6, sd=30.0):
    rows = [{"book": b, "variant": "synthetic+real", "n": 500, "bias_bps": x,
             "noise_sd_bps": sd, "coverage80_paths": c, "coverage80": 0.5, "mae_ratio": 0.5}
            for b, x, c in zip(("AMZN", "XBT"), bias, cov, strict=True)]
    rows.append({"book": "AMZN", "variant": "synthetic", "n": 500, "bias_bps": 99.0,
                 "noise_sd_bps": sd, "coverage80_paths": 0.1, "coverage80": 0.1,
                 "mae_ratio": 3.0})  # another variant: never judged
    rows.append({"book": "pooled", "variant": "synthetic+real", "n": 1000, "bias_bps": np.nan,
                 "noise_sd_bps": np.nan, "coverage80_paths": np.nan, "coverage80": np.nan,
                 "mae_ratio": ratio})
    return pd.DataFrame(rows)


def test_real_books_gate_bounds():
    cfg = load_gates().model_copy(update={"real_books": load_gates().real_books.model_copy(
        update={"binding": True})})
    g = cfg.real_books
    assert (g.variant, g.max_abs_bias_sd, g.coverage_min, g.coverage_max, g.max_mae_ratio) == (
        "synthetic+real", 1.0, 0.70, 0.90, 0.8)
    ok = gates.gate_real_books(_lobo(), cfg)
    assert ok.passed
    assert ok.value == pytest.approx(0.6)
    # |bias| 31 bps against a noise sd of 30: 1.03 sd > 1
    bad = gates.gate_real_books(_lobo(bias=(31.0, 0.0)), cfg)
    assert not bad.passed
    assert "AMZN: |bias| 31.00 bps = 1.03 sd" in bad.detail
    bad = gates.gate_real_books(_lobo(cov=(0.78, 0.69)), cfg)
    assert not bad.passed
    assert "XBT: coverage80_paths 0.690" in bad.detail
    bad = gates.gate_real_books(_lobo(ratio=0.81), cfg)
    assert not bad.passed
    assert "pooled MAE ratio 0.810" in bad.detail
    one = _lobo().iloc[[0, 2, 3]]
    bad = gates.gate_real_books(one, cfg)
    assert not bad.passed
    assert "1 real book(s) held out, at least 2 needed" in bad.detail
    report = evaluate_gates(cfg=cfg, real_books=_lobo())
    assert [r.name for r in report.results] == ["real_books"]
    # the packaged file binds; not binding: judged and shown, never blocking
    assert load_gates().real_books.binding is True
    soft = load_gates().model_copy(update={"real_books": load_gates().real_books.model_copy(
        update={"binding": False})})
    res = gates.gate_real_books(_lobo(ratio=0.81), soft)
    assert res.passed
    assert res.name == "real_books (not binding)"
    assert res.detail.startswith("WOULD FAIL (not binding): ")


def _policy_table(*, ac_hi=-10.0, obj_hi=0.2, vol=(12.0, 20.0), bucket_lo=-3.0):
    rows = [{"group": "all", "strategy": "policy", "n": 100, "truth_bps": 12.0},
            {"group": "all", "strategy": "oracle_ac", "n": 100, "truth_bps": 24.0,
             "policy_minus_truth_bps": ac_hi - 1, "policy_minus_truth_lo": ac_hi - 2,
             "policy_minus_truth_hi": ac_hi, "policy_minus_objective_bps": -5.0,
             "policy_minus_objective_lo": -6.0, "policy_minus_objective_hi": -4.0},
            {"group": "all", "strategy": "oracle", "n": 100, "truth_bps": 12.5,
             "policy_minus_truth_bps": -0.5, "policy_minus_truth_lo": -0.7,
             "policy_minus_truth_hi": -0.3, "policy_minus_objective_bps": obj_hi - 0.05,
             "policy_minus_objective_lo": obj_hi - 0.1, "policy_minus_objective_hi": obj_hi},
            {"group": "regime=volatile", "strategy": "policy", "n": 80, "truth_bps": vol[0]},
            {"group": "regime=volatile", "strategy": "twap", "n": 80, "truth_bps": vol[1],
             "policy_minus_truth_lo": vol[0] - vol[1] - 1.0,
             "policy_minus_truth_hi": vol[0] - vol[1] + 1.0},
            {"group": "size=0-0.5% ADV", "strategy": "twap", "n": 60, "truth_bps": 10.0,
             "policy_minus_truth_lo": bucket_lo},
            {"group": "size=>5% ADV", "strategy": "twap", "n": 40, "truth_bps": 50.0,
             "policy_minus_truth_lo": -20.0}]
    return pd.DataFrame(rows)


def test_policy_gate_bounds():
    cfg = load_gates()
    g = cfg.policy
    assert (g.max_minus_oracle_ac_bps, g.max_objective_minus_oracle_bps, g.min_volatile_saving,
            g.min_volatile_orders, g.max_bucket_excess_bps, g.binding) == (
                0.5, 0.5, 0.10, 50, 0.0, True)
    ok = gates.gate_policy(_policy_table(), cfg)
    assert ok.passed
    assert ok.value == -10.0
    # 1 - 12/20 = 40 %; the interval's upper bound -7 bps guarantees 7/20 = 35 %
    assert "volatile saving vs TWAP 40.0% (at least 35.0% at 95%, n=80)" in ok.detail
    # the oracle AC's upper bound 0.6 > 0.5
    assert not gates.gate_policy(_policy_table(ac_hi=0.6), cfg).passed
    bad = gates.gate_policy(_policy_table(obj_hi=0.51), cfg)
    assert not bad.passed
    assert "objective - oracle upper bound +0.51" in bad.detail
    # 12 vs 14: a 14.3 % saving, but the interval guarantees only 1/14 = 7.1 %
    bad = gates.gate_policy(_policy_table(vol=(12.0, 14.0)), cfg)
    assert not bad.passed
    assert "volatile saving 7.1% at 95%" in bad.detail
    bad = gates.gate_policy(_policy_table(bucket_lo=0.4), cfg)
    assert not bad.passed
    assert "size=0-0.5% ADV: worse than TWAP" in bad.detail
    # no volatile orders, or too few: nothing to judge the saving on, the gate fails
    t = _policy_table()
    res = gates.gate_policy(t[~t["group"].str.startswith("regime=")], cfg)
    assert not res.passed
    assert "no volatile orders" in res.detail
    few = t.copy()
    few.loc[few["group"] == "regime=volatile", "n"] = 20
    res = gates.gate_policy(few, cfg)
    assert not res.passed
    assert "20 volatile orders < 50" in res.detail
    assert [r.name for r in evaluate_gates(cfg=cfg, policy=_policy_table()).results] == ["policy"]


# ------------------------------------------------------------------ [paper] (stage 5)
def _paper(**kw):
    base = {"orders": 40, "compared": 40, "mean_abs_diff_bps": 0.24, "p95_abs_diff_bps": 0.56,
            "paper_fill_rate": 0.981, "bt_fill_rate": 0.978, "mean_latency_bps": -0.15,
            "mean_feed_bps": 0.02}
    return {**base, **kw}


def test_paper_gate_passes_within_its_bounds_and_names_what_fails():
    cfg = load_gates()
    assert cfg.paper.binding is True
    ok = gate_paper(_paper(), cfg)
    assert ok.passed
    assert ok.value == pytest.approx(0.24)
    assert "latency -0.15" in ok.detail
    for kw, why in [({"mean_abs_diff_bps": 1.2}, "mean |diff| 1.20"),
                    ({"p95_abs_diff_bps": 6.0}, "p95 |diff| 6.00"),
                    ({"paper_fill_rate": 0.90}, "fill-rate gap 7.8%"),
                    ({"compared": 5}, "5 orders compared < 20")]:
        r = gate_paper(_paper(**kw), cfg)
        assert not r.passed, kw
        assert why in r.detail
    soft = cfg.model_copy(update={"paper": cfg.paper.model_copy(update={"binding": False})})
    r = gate_paper(_paper(mean_abs_diff_bps=3.0), soft)
    assert r.passed
    assert r.detail.startswith("WOULD FAIL")
    rep = evaluate_gates(cfg=cfg, paper=_paper(mean_abs_diff_bps=3.0))
    assert not rep.passed
    assert len(rep.failures) == 1
    assert rep.failures[0].startswith("paper: 40 orders")
