"""The dashboard in a real headless Chromium (Playwright) on a live paper session.

A paper session runs on the synthetic feed (the service in a thread, as
``test_paper_service.py`` starts it; its FIX client is reused); an independent simplefix FIX client sends orders that fill; the
dashboard serves the session's journal on a free 127.0.0.1 port. The page is opened while the
session is live and must come to show the journal's fill count, a symbol's position and the
model version; a POST to ``/api/kill`` without the token is refused (403) and leaves the control
table as it was; the page's kill form asks for confirmation and goes through the same check. A screenshot goes to the test's tmp dir (and to ``$BESTEX_SCREENSHOT``).

Chromium is Debian's (``scripts/ensure_chromium.sh``; Playwright's own download is never used).
The test skips, saying why, only when no ``chromium`` can be found after running that script.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import serving_rows, tiny_bundle
from playwright.sync_api import sync_playwright  # a dev dependency: missing is a failure
from test_paper_service import PASSWORD, Client, tag

from bestex.dashboard import create_app, serve
from bestex.dashboard.data import symbol_id
from bestex.paper.journal import Journal
from bestex.paper.market import synth_feed
from bestex.paper.service import ModelSource, PaperService, ServiceConfig
from models._desk_execution import _volume_history
from models.live_risk import LiveLimits
from models.synthetic_market import SyntheticMarketConfig, generate_market

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "browser-test-token"


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        subprocess.run(["sh", str(ROOT / "scripts" / "ensure_chromium.sh")], check=False,
                       timeout=600)
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("no `chromium` on PATH after scripts/ensure_chromium.sh (Debian's "
                    "chromium package could not be installed here)")
    return found


class _Session:
    """The paper service in a thread on the synthetic feed, as ``test_paper_service.Service``
    starts it, but waiting up to 60 s for its port (its planner process starts first, which
    takes longer than that helper's 5 s on a loaded machine)."""

    def __init__(self, market, bundle, path: Path, *, speed: float) -> None:
        self.feed = synth_feed(market.quotes, market.trades, market.daily_bars, market.truth,
                               volume_history=_volume_history)
        self.feed.advance(self.feed.start_ns + 30 * 60 * 10**9)
        self.journal = Journal(path)
        self.journal.set_meta("cursor", self.feed.cursor)
        cfg = ServiceConfig(port=0, speed=speed, password=PASSWORD, exit_at_end=True,
                            limits=LiveLimits())
        self.svc = PaperService(self.feed, self.journal,
                                ModelSource(self.feed, bundle=bundle, version="3"), cfg,
                                say=lambda _m: None)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.svc.run()), daemon=True)
        self.thread.start()
        self.port = _until(lambda: getattr(self.svc, "port", None), "the FIX port", 60.0)

    def stop(self) -> None:
        self.svc.stop()
        self.thread.join(timeout=10)


def _until(fn, what: str, timeout: float = 20.0):
    t0, last = time.monotonic(), None
    while time.monotonic() - t0 < timeout:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: not after {timeout} s (last {last!r})")


def test_the_dashboard_shows_the_live_session_and_refuses_a_kill_without_token(tmp_path):
    chromium = _chromium()
    market = generate_market(SyntheticMarketConfig(n_symbols=2, n_sessions=6, seed=3,
                                                   start_date="2025-01-06"))
    svc = _Session(market, tiny_bundle(serving_rows()), tmp_path / "paper" / "j.db", speed=120.0)
    path = svc.journal.path
    server = None
    try:
        # --- a live session with fills, from an independent FIX client
        c = Client(svc.port)
        assert tag(c.logon(), 35) == "A"
        syms = svc.feed.symbols
        for i, (sym, side, qty) in enumerate([(syms[0], 1, 3000), (syms[1], -1, 2000),
                                              (syms[0], 1, 1500), (syms[1], 1, 1000),
                                              (syms[0], -1, 800), (syms[1], -1, 1200)]):
            c.order(f"D{i}", sym, side, qty, extra=[(20002, "8")])  # 8 feed minutes: 4 s
            assert tag(c.expect("8"), 150) == "0"
        ro = Journal(path, readonly=True)
        _until(lambda: len(ro.fills()) > 0, "a first fill")

        # --- the dashboard, on a free loopback port, while the session is live
        app = create_app(path, token=TOKEN, home=tmp_path, refresh_ms=500)
        server = serve(app, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                         args=["--no-sandbox", "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.wait_for_selector("#fill-count", timeout=20_000)
            _until(lambda: page.text_content("#fill-count") not in ("", "0"),
                   "a fill on the page")
            first = int(page.text_content("#fill-count"))
            # the day's orders end (3 feed minutes), then the session stops: the journal is
            # final, and the page, refreshing, must come to show exactly it
            _until(lambda: all(o["status"] not in ("pending", "working")
                               for o in ro.orders()), "every order done", timeout=30)
            svc.stop()
            fills = ro.fills()
            n_fills = len(fills)
            pos = ro.positions()
            version = ro.meta("model_version")
            sym = max(pos, key=lambda s: abs(pos[s]))  # a symbol that has a position
            _until(lambda: page.text_content("#fill-count") == str(n_fills),
                   f"rendered fill count {n_fills}")
            assert n_fills >= first, (n_fills, first)
            shown = page.text_content(f"#position-{symbol_id(sym)}").replace(",", "")
            assert float(shown) == pytest.approx(pos[sym], abs=0.5), (sym, shown, pos)
            assert page.text_content("#model-version") == str(version) == "3", version
            n_orders = len(ro.orders())
            assert page.text_content("#order-count") == str(n_orders), n_orders
            assert page.text_content("#kill-state") == "off"
            assert page.locator("#slippage-graph .scatterlayer .trace").count() >= 3
            assert TOKEN not in page.content(), "the token is not in the page"

            # --- the kill API without the token: 403, nothing recorded
            before = ro.requests()
            for body in ({"reason": "from the page"}, {"reason": "x", "token": "guess"}):
                req = urllib.request.Request(f"{url}/api/kill", data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
                with pytest.raises(urllib.error.HTTPError) as err:
                    urllib.request.urlopen(req, timeout=5)
                assert err.value.code == 403
            # and from inside the page (its own origin), as a script on it could try
            status = page.evaluate("""async () => (await fetch('/api/kill', {method: 'POST',
                headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({reason: 'page script'})})).status""")
            assert status == 403
            pd_equal = ro.requests().equals(before)
            assert pd_equal, "a refused kill must not touch the control table"

            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("BESTEX_SCREENSHOT"):
                dest = Path(os.environ["BESTEX_SCREENSHOT"])
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shot, dest)
            # --- the page's kill form: a confirmation step, then the same token check
            page.on("dialog", lambda d: d.accept())  # the confirmation (window.confirm)
            page.fill("#kill-reason", "test: from the form")
            page.fill("#kill-token", "guess")
            page.click("#kill-button")
            _until(lambda: "refused (403)" in (page.text_content("#kill-result") or ""),
                   "the form refusing a wrong token")
            assert ro.requests().equals(before)
            page.fill("#kill-token", TOKEN)
            page.click("#kill-button")
            _until(lambda: "recorded" in (page.text_content("#kill-result") or ""),
                   "the form recording the kill")
            req = ro.requests()
            assert req[["action", "reason", "who"]].to_numpy().tolist() == [
                ["kill", "test: from the form", "dashboard"]]
            browser.close()
        c.close()
    finally:
        if server is not None:
            server.shutdown()
        svc.stop()
