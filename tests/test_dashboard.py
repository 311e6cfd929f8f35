"""The paper-trading dashboard without a browser: its journal readers on a hand-built journal
whose numbers are checked by hand, the page's rendered ids, the kill API's token check (Flask
test client) and the loopback rule.

The journal: a buy of 200 AAA at arrival mid 100 filled 60 @ 100.10 (fee 0.6) and 40 @ 100.20
(fee 0.4); a sell of 50 BBB at arrival mid 50 filled 50 @ 49.95 (fee 0.25); a refused order.
"""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from bestex.dashboard import data
from bestex.dashboard.__main__ import main as dashboard_main
from bestex.dashboard.app import check_host, create_app, load_token
from bestex.dashboard.layout import render
from bestex.paper.engine import ParentOrder
from bestex.paper.journal import Journal

TOKEN = "t0ken-for-tests"


def _order(oid, cl, sym, side, qty, mid, *, status, cum=0.0, notional=0.0, fees=0.0, t=0):
    o = ParentOrder(oid, cl, "DESK", sym, side, qty, "1", None, t, t + 60 * 10**9,
                    status=status, arrival_mid=mid, cum_qty=cum, notional=notional,
                    fees=fees, model_version="7", plan={"name": "twap_30"})
    return o.state()


def _fill(oid, child, sym, side, qty, px, fee, t):
    return {"exec_id": f"{oid}-{child}", "order_id": oid, "child": child, "symbol": sym,
            "side": side, "qty": qty, "px": px, "fee": fee, "maker": 0, "feed_ns": t}


def _decision(j, oid, chosen, mean, lo, hi):
    j.event("decision", {"chosen": chosen, "model_version": "7", "candidates": [
        {"name": "pov_10", "mean_bps": mean + 3, "lo_bps": lo, "hi_bps": hi + 5},
        {"name": chosen, "mean_bps": mean, "lo_bps": lo, "hi_bps": hi}]}, order_id=oid)


@pytest.fixture
def journal(tmp_path):
    j = Journal(tmp_path / "paper" / "hand.db")
    j.save_order(_order("P1", "A1", "AAA", 1, 200, 100.0, status="expired", cum=100,
                        notional=10014.0, fees=1.0, t=1))
    j.save_order(_order("P2", "B1", "BBB", -1, 50, 50.0, status="filled", cum=50,
                        notional=2497.5, fees=0.25, t=2))
    j.save_order(_order("P3", "A2", "AAA", 1, 10, 100.0, status="rejected", t=3))
    j.add_fill(_fill("P1", 0, "AAA", 1, 60, 100.10, 0.6, 10))
    j.add_fill(_fill("P2", 0, "BBB", -1, 50, 49.95, 0.25, 20))
    j.add_fill(_fill("P1", 1, "AAA", 1, 40, 100.20, 0.4, 30))
    _decision(j, "P1", "twap_30", 12.0, 5.0, 20.0)
    _decision(j, "P2", "twap_30", 8.0, 2.0, 14.0)
    j.event("start", {"feed": "synth", "model_version": "7"})
    j.set_meta("model_version", "7")
    j.set_meta("limits", {"max_position": 1000.0, "max_order_qty": 400.0})
    j.close()
    return tmp_path / "paper" / "hand.db"


def test_realized_slippage_is_the_shortfall_against_the_arrival_mid_fees_included(journal):
    s = data.snapshot(journal)["slippage"]
    # P1: (+1 * (6006 + 4008 - 100 * 100) + 1.0) / (100 * 100) * 1e4 = 15 bps
    # P2: (-1 * (2497.5 - 50 * 50) + 0.25) / (50 * 50) * 1e4 = 11 bps
    assert list(s["cl_ord_id"]) == ["A1", "B1"], "filled orders only, in decision order"
    assert s["realized_bps"].tolist() == pytest.approx([15.0, 11.0])
    assert s["rolling_bps"].tolist() == pytest.approx([15.0, 13.0])
    assert s["vwap"].tolist() == pytest.approx([100.14, 49.95])
    # the chosen candidate's prediction, not the other candidate's
    assert s[["pred_bps", "pred_lo_bps", "pred_hi_bps"]].to_numpy().tolist() == [
        [12.0, 5.0, 20.0], [8.0, 2.0, 14.0]]


def test_fill_counts_rate_positions_and_pnl(journal):
    snap = data.snapshot(journal)
    st = snap["stats"]
    assert (st["orders"], st["rejected"], st["fills"]) == (3, 1, 3)
    assert (st["ordered_qty"], st["filled_qty"]) == (250.0, 150.0)  # the refused 10 not ordered
    assert st["fill_rate"] == pytest.approx(0.6)
    pos = snap["positions"].set_index("symbol")
    assert pos["position"].to_dict() == {"AAA": 100.0, "BBB": -50.0}
    assert pos["last_px"].to_dict() == pytest.approx({"AAA": 100.20, "BBB": 49.95})
    # AAA: cash -10014 - 1.0, marked 100 @ 100.20 -> +5.0; BBB: 2497.5 - 0.25 - 50 * 49.95
    assert pos["pnl"].to_dict() == pytest.approx({"AAA": 5.0, "BBB": -0.25})


def test_risk_utilisation_uses_the_journal_limits_else_the_defaults(journal):
    snap = data.snapshot(journal)
    assert snap["limits_source"] == "journal meta"
    r = snap["risk"].set_index(["limit", "detail"])["used"]
    assert r[("max_position", "AAA")] == pytest.approx(0.1)
    assert r[("max_position", "BBB")] == pytest.approx(0.05)
    assert r[("max_order_qty", "largest parent")] == pytest.approx(0.5)
    assert r[("max_order_notional", "largest parent at arrival mid")] == pytest.approx(
        20_000 / 50_000_000)  # the default, not in the journal's limits
    assert pd.isna(r[("daily_loss_limit", "shortfall so far")])  # off by default
    day_loss = snap["risk"].set_index("limit").loc["daily_loss_limit", "value"]
    assert day_loss == pytest.approx(15.0 + 2.75)
    lim, src = data.limits_of(None)
    assert src == "LiveLimits defaults"
    assert lim.max_order_qty == 1_000_000.0


def test_alerts_from_journal_events_and_the_monitoring_parquet(journal, tmp_path):
    assert data.snapshot(journal, tmp_path)["alerts"].empty
    j = Journal(journal)
    j.event("alert", {"severity": "warning", "message": "slippage drift", "source": "monitor"})
    j.close()
    (tmp_path / "monitoring").mkdir()
    pd.DataFrame({"ts": [pd.Timestamp("2025-01-06 15:00", tz="UTC")], "source": ["drift"],
                  "severity": ["critical"], "message": ["PSI 0.4 on spread"]}).to_parquet(
        tmp_path / "monitoring" / "alerts.parquet")
    a = data.snapshot(journal, tmp_path)["alerts"]
    assert set(a["message"]) == {"slippage drift", "PSI 0.4 on spread"}
    assert a["message"].iloc[0] == "slippage drift", "newest first"


def test_model_version_and_policy(journal):
    m = data.snapshot(journal)["model"]
    assert (m["model_version"], m["versions"], m["feed"]) == ("7", ["7"], "synth")
    assert m["plans"] == {"twap_30": 2}


def _by_id(node, found=None):
    found = {} if found is None else found
    if isinstance(node, list | tuple):
        for n in node:
            _by_id(n, found)
        return found
    if getattr(node, "id", None):
        found[node.id] = node
    children = getattr(node, "children", None)
    if children is not None and not isinstance(children, str):
        _by_id(children, found)
    return found


def test_the_page_renders_the_values_under_stable_ids(journal):
    ids = _by_id(render(data.snapshot(journal)))
    assert ids["fill-count"].children == "3"
    assert ids["order-count"].children == "3"
    assert ids["fill-rate"].children == "60.0%"
    assert ids["position-AAA"].children == "100"
    assert ids["position-BBB"].children == "-50"
    assert ids["model-version"].children == "7"
    assert ids["kill-state"].children == "off"
    assert ids["risk-max_position-AAA"].children == "10.0%"


def test_a_missing_journal_renders_a_waiting_page(tmp_path):
    snap = data.snapshot(tmp_path / "nope.db")
    assert not snap["ok"]
    assert "no paper journal" in snap["error"]
    render(snap)


@pytest.mark.parametrize("headers_or_body", [
    {}, {"json": {"token": "wrong"}}, {"headers": {"X-Bestex-Token": "wrong"}},
    {"json": {"token": ""}},
])
def test_kill_api_refuses_without_the_right_token_and_records_nothing(journal,
                                                                      headers_or_body):
    client = create_app(journal, token=TOKEN).server.test_client()
    kw = {"json": {"reason": "runaway", **headers_or_body.get("json", {})},
          "headers": headers_or_body.get("headers", {})}
    r = client.post("/api/kill", **kw)
    assert r.status_code == 403
    assert Journal(journal, readonly=True).requests().empty


def test_kill_api_records_kill_and_reset_like_bestex_kill(journal):
    client = create_app(journal, token=TOKEN).server.test_client()
    r = client.post("/api/kill", json={"reason": "runaway algo"},
                    headers={"X-Bestex-Token": TOKEN})
    assert r.status_code == 200
    assert r.get_json()["action"] == "kill"
    r = client.post("/api/kill", data={"reason": "cleared", "action": "reset", "token": TOKEN})
    assert r.status_code == 200
    assert client.post("/api/kill", json={"reason": "  ", "token": TOKEN}).status_code == 400
    req = Journal(journal, readonly=True).requests()
    assert req[["action", "reason", "who"]].to_numpy().tolist() == [
        ["kill", "runaway algo", "dashboard"], ["reset", "cleared", "dashboard"]]
    assert req["applied_ns"].isna().all(), "the service applies it, not the dashboard"


def test_kill_api_on_a_missing_journal_is_404_and_creates_nothing(tmp_path):
    client = create_app(tmp_path / "nope.db", token=TOKEN).server.test_client()
    r = client.post("/api/kill", json={"reason": "x", "token": TOKEN})
    assert r.status_code == 404
    assert not (tmp_path / "nope.db").exists()


def test_the_token_comes_from_the_environment_or_a_0600_file(tmp_path, monkeypatch):
    monkeypatch.setenv("BESTEX_DASHBOARD_TOKEN", "from-env")
    assert load_token(tmp_path) == ("from-env", None)
    monkeypatch.delenv("BESTEX_DASHBOARD_TOKEN")
    token, path = load_token(tmp_path)
    assert path == tmp_path / "dashboard" / "token"
    assert path.read_text().strip() == token
    assert len(token) >= 24
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_token(tmp_path)[0] != token, "a new token at each start"


def test_the_page_does_not_hold_the_token(journal):
    app = create_app(journal, token=TOKEN)
    client = app.server.test_client()
    for url in ("/", "/_dash-layout"):
        assert TOKEN not in client.get(url).get_data(as_text=True)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_a_non_loopback_host_is_refused_unless_allowed(host):
    with pytest.raises(ValueError, match="--allow-remote"):
        check_host(host)
    assert check_host(host, allow_remote=True) == host


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_hosts_are_accepted(host):
    assert check_host(host) == host


def test_the_command_refuses_a_non_loopback_host_with_exit_2(tmp_path, capsys):
    assert dashboard_main(["--host", "0.0.0.0", "--home", str(tmp_path)]) == 2
    assert "--allow-remote" in capsys.readouterr().err
