"""``bestex plan ORDERS_FILE`` (issue 14): each order's plan, child orders, predicted cost and
band from the registered champion; bad input exits 2 with one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import register_tiny_champion, serving_rows

from bestex.cli import main
from models.features import features_from_state
from models.policy import plan_frame


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    home = tmp_path_factory.mktemp("plan_home")
    bundle, _, _ = register_tiny_champion(home, "plan_test")
    return home, bundle


@pytest.fixture
def home(champion, monkeypatch):
    monkeypatch.setenv("BESTEX_HOME", str(champion[0]))
    return champion[0]


def test_plans_children_and_predictions_agree(home, champion, tmp_path, capsys):
    rows = serving_rows(30, seed=4)
    src = tmp_path / "orders.parquet"
    rows.to_parquet(src)
    out, kids = tmp_path / "plans.csv", tmp_path / "children.parquet"
    assert main(["plan", str(src), "--out", str(out), "--children", str(kids)]) == 0
    assert "30 orders" in capsys.readouterr().err
    plans, ch = pd.read_csv(out), pd.read_parquet(kids)
    assert plans["order_id"].tolist() == rows["order_id"].tolist()
    assert {"plan", "mean_bps", "p10_bps", "p90_bps", "n_children"} <= set(plans.columns)
    assert (plans["p10_bps"] < plans["p90_bps"]).all()
    # the children of each plan sum to the parent and stay inside [decision, end)
    tot = ch.groupby("order_id")["qty"].sum().reindex(rows["order_id"])
    np.testing.assert_allclose(tot.to_numpy(), rows["qty"].to_numpy(), rtol=1e-12)
    t = pd.to_datetime(ch["send_ts"], utc=True)
    o = rows.set_index("order_id").loc[ch["order_id"]]
    assert (t.to_numpy() >= o["decision_ts"].to_numpy()).all()
    assert (t.to_numpy() < o["end_ts"].to_numpy()).all()
    assert (plans["n_children"].to_numpy() == ch.groupby("order_id").size()
            .reindex(rows["order_id"]).to_numpy()).all()
    # the printed cost is the champion's prediction for the chosen plan
    bundle = champion[1]
    i = 7
    oid = rows["order_id"].iloc[i]
    mine = ch[ch["order_id"] == oid].assign(send_ts=lambda d: pd.to_datetime(d["send_ts"],
                                                                             utc=True),
                                            kind=lambda d: (d["kind"] == "passive").astype(int))
    one = rows.iloc[[i]].reset_index(drop=True)
    from models.policy import candidate_grid

    cand = next(c for c in candidate_grid() if c.name == plans["plan"].iloc[i])
    state = one.drop(columns=["strategy", "plan_n_children", "plan_passive_share",
                              "plan_front_load", "plan_timing_var_days", "plan_rate_shape"])
    feats = features_from_state(state.join(plan_frame(one, mine.rename(
        columns={"send_ts": "decision_ts"}), cand)), calibrations=bundle.calibrations)
    m, lo, hi = bundle.predict(feats)
    assert plans["mean_bps"].iloc[i] == pytest.approx(m[0], abs=1e-3)
    assert plans["p10_bps"].iloc[i] == pytest.approx(lo[0], abs=1e-3)
    assert plans["p90_bps"].iloc[i] == pytest.approx(hi[0], abs=1e-3)


def test_risk_aversion_and_limits(home, tmp_path, capsys):
    rows = serving_rows(20, seed=5)
    src = tmp_path / "orders.csv"
    rows.to_csv(src, index=False)
    out = tmp_path / "p.csv"
    assert main(["plan", str(src), "--out", str(out), "--risk-aversion", "1000"]) == 0
    fast = pd.read_csv(out)
    assert main(["plan", str(src), "--out", str(out), "--risk-aversion", "0"]) == 0
    slow = pd.read_csv(out)
    # a desk that fears risk pays more impact for less timing risk
    assert fast["sd_bps"].mean() < slow["sd_bps"].mean()
    assert fast["mean_bps"].mean() >= slow["mean_bps"].mean()
    capsys.readouterr()
    assert main(["plan", str(src), "--out", str(out), "--max-child-qty", "1"]) == 0
    refused = pd.read_csv(out)
    assert (refused["plan"] == "refused").all()
    assert "20 refused" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--risk-aversion", "-1"], "--risk-aversion -1.0 is negative"),
    (["--max-child-qty", "-5"], "max_child_qty"),
])
def test_bad_flags_exit_2(home, tmp_path, capsys, args, message):
    src = tmp_path / "orders.csv"
    serving_rows(5).to_csv(src, index=False)
    assert main(["plan", str(src), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("bestex: error:")
    assert message in err[0]


def test_a_missing_column_exits_2_naming_it(home, tmp_path, capsys):
    src = tmp_path / "orders.csv"
    serving_rows(5).drop(columns=["adv"]).to_csv(src, index=False)
    assert main(["plan", str(src)]) == 2
    err = capsys.readouterr().err
    assert "adv" in err
    assert str(src) in err
