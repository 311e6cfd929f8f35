"""The paper service's market: a recorded or synthetic day replayed event by event, point in time.

A :class:`Feed` holds one day of a book (quotes and trades, contract columns) for one or more
symbols and publishes it in the order of its knowledge time (``available_at``): the service
asks for the events known at a feed time (:meth:`Feed.advance`) and reads the book only through
:meth:`Feed.known_quotes` / :meth:`Feed.known_trades`, prefixes that end at the last event
published. Nothing later is reachable from the engine: the time/knowledge rule of the brief.

Feeds (:func:`load_feed`):

* ``amzn``: LOBSTER AMZN 2012-06-21 (``$BESTEX_DATA/lobster``), the desk of the stage-4 replay
  (:func:`validation._stress_real.book_spec`: estimates, fees, XNYS calendar, 5-minute children);
* ``bitmex``: BitMEX XBTUSD 2020-03-10 18:25-18:43 UTC (``$BESTEX_DATA/crypto``), 1-minute
  children, BitMEX fees;
* ``synth``: the last session of the synthetic market in the lake (``make demo``), every symbol,
  with its daily bars (point in time) and the truth's impact parameters for the fills.

Fills (:meth:`Feed.fill`) are the simulator's replay fill model
(:func:`models.simulator.replay_l1` rules: marketable children walk the touch with temporary
impact beyond it, passive children fill on a trade-through within their slot, our permanent
footprint shifts later children of the same parent) run on the **known** book only: a child
that arrives at ``t`` meets the last quote with ``ts <= t`` that the feed had published.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from models._sim_kernels import replay_kernel
from models._sim_replay import _book, _run
from models.risk_controls import RiskLimits
from models.simulator import Children, Parents, SimResult, SimulatorConfig

__all__ = ["FEEDS", "Feed", "Fills", "load_feed"]

FEEDS: Final = ("amzn", "bitmex", "synth")
_QUOTES: Final = ("ts", "available_at", "symbol", "bid_px", "bid_sz", "ask_px", "ask_sz")
_TRADES: Final = ("ts", "available_at", "symbol", "px", "qty", "aggressor")


def _ns(s: pd.Series) -> np.ndarray:
    return np.ascontiguousarray(pd.to_datetime(s, utc=True).dt.as_unit("ns").array.asi8)


@dataclass
class _Symbol:
    """One symbol's day: quotes and trades sorted by knowledge time, the book arrays built once
    (sliced to the known prefix per fill), and how far the feed has published each."""

    quotes: pd.DataFrame
    trades: pd.DataFrame
    q_avail: np.ndarray
    t_avail: np.ndarray
    book: dict[str, Any]
    n_quotes: int = 0
    n_trades: int = 0


@dataclass(frozen=True)
class Fills:
    """Per child, what :meth:`Feed.fill` resolved (the :class:`SimResult` columns the engine
    journals)."""

    fill_qty: np.ndarray
    fill_px: np.ndarray
    fee: np.ndarray
    maker: np.ndarray
    fill_ts: np.ndarray
    reject_code: np.ndarray
    reject_value: np.ndarray
    reject_limit: np.ndarray


@dataclass
class Feed:
    """A day of one or more books, published in knowledge-time order.

    Parameters
    ----------
    name : str
        ``amzn``, ``bitmex``, ``synth`` or a test's own name.
    quotes, trades : pandas.DataFrame
        Contract columns (``ts, available_at, symbol, ...``).
    sim : SimulatorConfig
        The fill physics (impact, fees, latency).
    estimates : dict of str to dict, optional
        Per symbol, the desk's ``adv``, ``sigma_daily``, ``shares_outstanding`` (a recorded day
        has no history; the synthetic feed takes them from each order's point-in-time state).
    daily_bars : pandas.DataFrame, optional
        Earlier sessions' bars (point in time by their ``available_at``), for the features.
    calendar : str
        The session calendar of the features (``XNYS``, ``24/7``).
    child_interval_min, max_duration_min : float
        The desk's child interval and its longest order.
    volume_history : dict of str to pandas.Series, optional
        Volume per 5-minute bin of earlier sessions (VWAP / POV candidates); none on a
        one-day recorded book.
    regime_probabilities : pandas.DataFrame, optional
        The walk-forward HMM's filtered probabilities (point in time by ``available_at``).

    Raises
    ------
    ValueError
        No quotes, a symbol whose quote times go backwards once sorted by knowledge time (a
        feed that publishes a quote before an earlier one cannot be replayed in order).
    """

    name: str
    quotes: pd.DataFrame
    trades: pd.DataFrame
    sim: SimulatorConfig
    estimates: dict[str, dict[str, float]] = field(default_factory=dict)
    daily_bars: pd.DataFrame | None = None
    calendar: str = "XNYS"
    child_interval_min: float = 5.0
    max_duration_min: float = 120.0
    volume_history: dict[str, pd.Series] = field(default_factory=dict)
    regime_probabilities: pd.DataFrame | None = None
    source: str = ""
    history_quotes: pd.DataFrame | None = None
    """Quotes of the sessions before the day (all known before its first event; not replayed):
    what the features' lookbacks read (the previous session's volatility, the 20-session
    baselines of volatility and trade intensity). Without them those features of a decision
    would differ from the training pipeline's, which reads every earlier session."""
    history_trades: pd.DataFrame | None = None
    regime_inputs: pd.DataFrame | None = None
    """The regime HMM's per-session inputs (:func:`models.regimes.regime_inputs`) of the
    sessions before the day, from their bars **and quotes** (the feed holds the day's quotes
    only): the regime probabilities a decision sees are then those of the training pipeline,
    which reads every session's quotes. Without them they are computed from the day's quotes,
    which give no earlier session a complete input (NaN probabilities)."""
    inverse: bool = False
    """Quantities are USD contracts of an inverse perpetual (BitMEX XBTUSD: 1 contract =
    1 USD): an order's notional is its quantity, not quantity x price."""

    def __post_init__(self) -> None:
        if self.quotes.empty:
            raise ValueError(f"feed {self.name!r}: no quotes to replay")
        self._sym: dict[str, _Symbol] = {}
        hq, ht = self.history_quotes, self.history_trades
        start = min(int(_ns(self.quotes["available_at"]).min()),
                    int(_ns(self.trades["available_at"]).min()) if len(self.trades)
                    else np.iinfo(np.int64).max)
        for h, what in ((hq, "quotes"), (ht, "trades")):
            if h is not None and len(h) and int(_ns(h["available_at"]).max()) >= start:
                raise ValueError(f"feed {self.name!r}: history {what} must be known before the "
                                 "day's first event")
        # one categorical dtype for every symbol's frames: the features factorize its codes
        sym_dtype = pd.CategoricalDtype(sorted(self.quotes["symbol"].astype(str).unique()))
        for s, q in self.quotes.groupby(self.quotes["symbol"].astype(str), sort=True):
            if hq is not None:  # the earlier sessions first: known from the first event on
                q = pd.concat([hq[hq["symbol"].astype(str) == s], q], ignore_index=True)
            q = q.loc[:, list(_QUOTES)].copy()
            q["symbol"] = pd.Categorical([s] * len(q), dtype=sym_dtype)
            q = q.sort_values(["available_at", "ts"], kind="stable").reset_index(drop=True)
            ts = _ns(q["ts"])
            if np.any(np.diff(ts) < 0):
                i = int(np.argmax(np.diff(ts) < 0)) + 1
                raise ValueError(f"feed {self.name!r}: {s} quote {i} (ts {q['ts'].iloc[i]}) is "
                                 "known after a later quote; the feed publishes in knowledge-"
                                 "time order and the book must stay in time order")
            t = self.trades.loc[self.trades["symbol"].astype(str) == s, list(_TRADES)]
            if ht is not None:
                t = pd.concat([ht.loc[ht["symbol"].astype(str) == s, list(_TRADES)], t],
                              ignore_index=True)
            t = t.copy()
            t["symbol"] = pd.Categorical([s] * len(t), dtype=sym_dtype)
            t = t.sort_values(["available_at", "ts"], kind="stable").reset_index(drop=True)
            self._sym[s] = _Symbol(q, t, _ns(q["available_at"]), _ns(t["available_at"]),
                                   _book(q, 1))
        av = np.concatenate([v.q_avail for v in self._sym.values()]
                            + [v.t_avail for v in self._sym.values()])
        self.times = np.unique(av[av >= start])  # the history is not replayed
        """Every distinct knowledge time of the day, ascending: the feed's events."""
        self.cursor = 0
        """How many of :attr:`times` have been published."""
        # the day's state, kept between orders (known_bars, regime_table, fill)
        self._bar_avail = (None if self.daily_bars is None
                           else _ns(self.daily_bars["available_at"]))
        self._bar_cut: tuple[int, pd.DataFrame | None] = (-1, self.daily_bars)
        self._regime: tuple[Any, ...] | None = None
        self._regime_h: tuple[Any, pd.DataFrame] | None = None
        self._impact = self.sim.impact_model()

    # ------------------------------------------------------------------ publishing
    @property
    def symbols(self) -> list[str]:
        return list(self._sym)

    @property
    def start_ns(self) -> int:
        return int(self.times[0])

    @property
    def end_ns(self) -> int:
        return int(self.times[-1])

    @property
    def now_ns(self) -> int:
        """The knowledge time of the last published event (the first one's before any)."""
        return int(self.times[max(self.cursor - 1, 0)])

    def next_ns(self) -> int | None:
        """The next event's knowledge time, None at the end of the day."""
        return int(self.times[self.cursor]) if self.cursor < len(self.times) else None

    def advance(self, t_ns: int) -> int:
        """Publish every event known by ``t_ns``; return how many distinct times were new."""
        k = int(np.searchsorted(self.times, t_ns, side="right"))
        new = max(k - self.cursor, 0)
        if new:
            self.seek(k)
        return new

    def seek(self, cursor: int) -> None:
        """Publish exactly the first ``cursor`` event times (a restart resumes here)."""
        self.cursor = int(min(max(cursor, 0), len(self.times)))
        now = self.now_ns if self.cursor else -1
        for v in self._sym.values():
            v.n_quotes = int(np.searchsorted(v.q_avail, now, side="right"))
            v.n_trades = int(np.searchsorted(v.t_avail, now, side="right"))

    def known_quotes(self, symbol: str | None = None) -> pd.DataFrame:
        """The published quotes (of ``symbol``, else every symbol's), in knowledge order."""
        parts = [v.quotes.iloc[:v.n_quotes] for s, v in self._sym.items()
                 if symbol is None or s == symbol]
        return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)

    def known_trades(self, symbol: str | None = None) -> pd.DataFrame:
        parts = [v.trades.iloc[:v.n_trades] for s, v in self._sym.items()
                 if symbol is None or s == symbol]
        return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)

    def touch(self, symbol: str) -> tuple[float, float] | None:
        """The last published ``(bid, ask)`` of ``symbol`` (None before its first quote)."""
        v = self._sym.get(symbol)
        if v is None or v.n_quotes == 0:
            return None
        b = v.book
        return float(b["bid_px"][v.n_quotes - 1, 0]), float(b["ask_px"][v.n_quotes - 1, 0])

    # ------------------------------------------------------------------ the day's state
    def known_bars(self) -> pd.DataFrame | None:
        """The daily bars known at the feed's time (``available_at <= now``), cut once per new
        bar instead of once per order."""
        av = self._bar_avail
        if av is None:
            return None
        n = int((av <= self.now_ns).sum())
        if self._bar_cut[0] != n:
            self._bar_cut = (n, self.daily_bars[av <= self.now_ns])
        return self._bar_cut[1]

    def regime_table(self, config: Any) -> pd.DataFrame | None:
        """The regime HMM's probabilities (:func:`models.features.regime_probability_table`) as
        ``build_features`` would compute them from the bars and quotes known now, kept for the
        day instead of recomputed per order (the walk-forward HMM over every earlier session:
        more than half of an order's state time).

        Exact by the table's own contract: a row is a function of the bars and quotes of its
        session and earlier ones and is used from its ``available_at`` on, so the rows usable
        now do not change until a new bar is known or the next row's ``available_at`` passes;
        either recomputes it (``tests/test_paper_state.py`` compares the states). A feed given
        ``regime_probabilities`` (a detector's output) uses those."""
        if self.regime_probabilities is not None or self.daily_bars is None:
            return self.regime_probabilities
        from models.features import regime_probability_table

        bars, now = self.known_bars(), self.now_ns
        if self.regime_inputs is not None and bars is not None and set(
                bars["date"].unique()) <= set(self.regime_inputs["date"]):
            got = self._regime_h  # no bar of the day known yet
            if got is None or got[0] is not config:
                got = self._regime_h = (config, regime_probability_table(
                    bars, None, config=config, inputs=self.regime_inputs))
            return got[1]
        got = self._regime
        if got is None or got[0] is not config or got[1] != len(bars) or now >= got[2] \
                or not got[4]:
            quotes = self.known_quotes()
            table = regime_probability_table(bars, quotes, config=config)
            av = _ns(table["available_at"]) if len(table) else np.zeros(0, np.int64)
            later = av[av > now]
            got = self._regime = (config, len(bars), int(later.min()) if later.size
                                  else np.iinfo(np.int64).max, table, len(quotes) > 0)
        return got[3]

    def notional(self, qty: float, mid: float) -> float:
        """An order's notional in the quote currency."""
        return qty if self.inverse else qty * mid

    # ------------------------------------------------------------------ fills
    def fill(self, symbol: str, *, side: int, qty: float, start_ns: int, end_ns: int,
             arrival_mid: float, child_ns: Sequence[int], child_qty: Sequence[float],
             child_kind: Sequence[int], adv: float, sigma_daily: float,
             shares_outstanding: float, limits: RiskLimits | None = None,
             order_id: str = "") -> Fills | SimResult:
        """Replay one parent's children sent so far on the **known** book of ``symbol``.

        ``child_ns`` are the children's arrival times (at or before the feed's time), ``qty``
        the parent's, ``arrival_mid`` its mid at the decision, ``adv`` / ``sigma_daily`` /
        ``shares_outstanding`` what the desk knows of the instrument. The result is the simulator's
        (:func:`models.simulator.replay_l1` rules), so re-running it with one more child gives
        the same fills for the earlier ones: what the engine relies on to fill each child once.
        """
        v = self._sym[symbol]
        n = v.n_quotes
        if n == 0:
            raise ValueError(f"no quote of {symbol} known yet")
        t = np.asarray(child_ns, np.int64)
        if math.isfinite(arrival_mid) and len(t) and bool(np.all(t[1:] >= t[:-1])) \
                and bool(np.all(np.asarray(child_qty) > 0)):
            return self._fill_one(v, n, side, t, child_qty, child_kind, end_ns, arrival_mid,
                                  adv, sigma_daily, shares_outstanding, limits)
        return self.replay(symbol, side=side, start_ns=start_ns, end_ns=end_ns,
                           arrival_mid=arrival_mid, child_ns=child_ns, child_qty=child_qty,
                           child_kind=child_kind, adv=adv, sigma_daily=sigma_daily,
                           shares_outstanding=shares_outstanding, limits=limits,
                           order_id=order_id)

    def replay(self, symbol: str, *, side: int, start_ns: int, end_ns: int,
               arrival_mid: float, child_ns: Sequence[int], child_qty: Sequence[float],
               child_kind: Sequence[int], adv: float, sigma_daily: float,
               shares_outstanding: float, limits: RiskLimits | None = None,
               order_id: str = "") -> SimResult:
        """:meth:`fill` through the simulator's general entry (validated parents and
        children, :func:`models._sim_replay._run`): the reference the one-parent path is tested
        against, and the path of what it does not take (a NaN arrival mid: the mid known at
        ``start_ns``; children out of time order)."""
        v = self._sym[symbol]
        n = v.n_quotes
        if n == 0:
            raise ValueError(f"no quote of {symbol} known yet")
        b = v.book
        book = {k: b[k][:n] for k in ("ts", "avail", "bid_px", "bid_sz", "ask_px", "ask_sz")}
        book["blocks"] = {symbol: (0, n)}
        par = Parents(symbol_idx=np.zeros(1, np.int64), arrival_mid=np.array([arrival_mid]),
                      sigma_daily=np.array([sigma_daily]), adv=np.array([adv]),
                      spread_bps=np.array([np.nan]),
                      shares_outstanding=np.array([shares_outstanding]),
                      start_ns=np.array([start_ns]), end_ns=np.array([end_ns]),
                      order_id=np.array([order_id], dtype=object))
        k = len(child_ns)
        kids = Children(parent_idx=np.zeros(k, np.int64),
                        decision_ns=np.asarray(child_ns, np.int64) - self.sim.latency_ns,
                        qty=np.asarray(child_qty, np.float64), side=np.full(k, side, np.int64),
                        kind=np.asarray(child_kind, np.int8),
                        limit_offset_bps=np.full(k, np.nan))
        return _run(book, par, kids, self.sim, limits, [symbol], self.sim.l1_excess == "impact")

    def _fill_one(self, v: _Symbol, n: int, side: int, t: np.ndarray,
                  child_qty: Sequence[float], child_kind: Sequence[int], end_ns: int,
                  arrival_mid: float, adv: float, sigma_daily: float,
                  shares_outstanding: float, limits: RiskLimits | None) -> Fills:
        """One parent, children in time order, arrival mid known: the arrays
        :func:`models._sim_types.prepare` derives, built directly, and the replay kernel on the
        known rows ``0:n`` of the symbol's book (the kernel reads no row past ``n``). Bit for bit
        :meth:`replay` (``tests/test_paper_fill.py``) at a fraction of its cost: the validation
        of a general batch is most of a one-parent call, and the gateway's loop waits for it."""
        cfg = self.sim
        k = len(t)
        qty = np.asarray(child_qty, np.float64)
        slot = np.empty(k, np.int64)  # time to the next child, the last's to the horizon
        slot[:-1] = t[1:] - t[:-1]  # (decision_ns - latency) differences: the same
        slot[-1] = end_ns - (t[-1] - cfg.latency_ns)
        slot = np.maximum(slot, cfg.min_slot_ns)
        adv_a = np.array([adv])
        sig = np.array([sigma_daily])
        mvol = adv * (slot / cfg.session_ns)
        impact, lim = self._impact, limits or RiskLimits()
        perm = impact.permanent_per_share(adv=adv_a, sigma_daily=sig,
                                          shares_outstanding=np.array([shares_outstanding]))
        fees = cfg.fees
        z = np.zeros
        f_qty, f_px, f_fee, f_maker, f_ts = z(k), z(k), z(k), z(k, np.int8), z(k, np.int64)
        r_code, r_val, r_lim = z(k, np.int8), z(k), z(k)
        b = v.book
        replay_kernel(  # arrival = (decision = t - latency) + latency = t
            np.arange(k), np.zeros(k, np.int64), t, qty,
            np.asarray(child_kind, np.int8), np.full(k, np.inf), mvol, slot,
            np.array([side], np.int64), np.array([arrival_mid]), np.zeros(1, np.int64),
            np.array([n], np.int64), perm, sig, np.array([end_ns], np.int64),
            b["ts"], b["bid_px"], b["bid_sz"], b["ask_px"], b["ask_sz"], impact.eta, impact.beta,
            cfg.l1_excess == "impact",
            fees.taker_fee_bps, fees.taker_fee_per_share, fees.maker_rebate_bps,
            fees.maker_rebate_per_share,
            np.inf if cfg.participation_cap is None else cfg.participation_cap,
            *lim.kernel_args(),
            f_qty, f_px, f_fee, f_maker, f_ts, r_code, r_val, r_lim,
            z(1), z(1), z(1), np.full(1, np.nan))
        return Fills(f_qty, f_px, f_fee, f_maker, f_ts, r_code, r_val, r_lim)


# =========================================================================== loading
def load_feed(name: str, *, home: Path | None = None, data_dir: Path | None = None,
              day: str | None = None) -> Feed:
    """The named feed (:data:`FEEDS`).

    Raises
    ------
    ValueError
        An unknown feed name, or a synthetic day not in the lake.
    FileNotFoundError
        The data the feed replays is missing (the message says which and how to get it).
    """
    if name == "synth":
        return _synth_feed(home, day)
    if name in ("amzn", "bitmex"):
        return _recorded_feed(name, data_dir)
    raise ValueError(f"unknown feed {name!r}; choose one of {', '.join(FEEDS)}")


def _recorded_feed(name: str, data_dir: Path | None) -> Feed:
    from bestex.settings import require_data_dir
    from sources import BITMEX_BOOK, recorded_books
    from validation._stress_real import book_spec

    root = data_dir or require_data_dir()
    path, symbol = ((root / "lobster", "AMZN") if name == "amzn"
                    else (root / "crypto" / BITMEX_BOOK, "XBTUSD"))
    if not path.exists():
        raise FileNotFoundError(f"feed {name!r} replays {path}, which is missing; set "
                                "BESTEX_DATA to the shared data folder")
    books = [(b, k) for b, k in recorded_books(path) if b.symbol == symbol]
    if not books:
        raise FileNotFoundError(f"feed {name!r}: no {symbol} book in {path}")
    book, kind = books[0]
    spec, _ = book_spec(book, kind)
    sim = SimulatorConfig(venue="REPLAY", session_ns=spec.session_ns, fees=spec.fees)
    return Feed(name, book.quotes, book.trades, sim,
                estimates={symbol: dict(spec.estimates)}, calendar=spec.calendar,
                child_interval_min=spec.child_interval_min,
                max_duration_min=spec.max_duration_min, source=book.source,
                inverse=name == "bitmex")


def _synth_feed(home: Path | None, day: str | None) -> Feed:
    from bestex import settings
    from models._desk_execution import _volume_history
    from models.desk_history import DESK_FEES
    from models.synthetic_market import GroundTruth

    lake = (home or settings.home()) / "lake"
    files = {t: lake / f"cleansed/synth/{t}.parquet" for t in ("quotes", "trades", "daily_bars")}
    truth_file = lake / "raw/synth/ground_truth.json"
    missing = [str(p) for p in [*files.values(), truth_file] if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"feed 'synth' replays the demo's synthetic market; missing "
                                f"{missing[0]}: run `make demo` (or set BESTEX_HOME)")
    truth = GroundTruth.model_validate(json.loads(truth_file.read_text()))
    quotes, trades, bars = (pd.read_parquet(p) for p in files.values())
    return synth_feed(quotes, trades, bars, truth, day=day, fees=DESK_FEES,
                      volume_history=lambda t, s: _volume_history(t, s),
                      source=str(lake / "cleansed/synth"))


def synth_feed(quotes: pd.DataFrame, trades: pd.DataFrame, daily_bars: pd.DataFrame,
               truth: Any, *, day: str | None = None, fees: Any = None,
               volume_history: Any = None, source: str = "synthetic",
               history_sessions: int = 21) -> Feed:
    """A synthetic market's session ``day`` (ISO date; default its last) as a feed: the day's
    quotes and trades, the earlier sessions' trades as volume history, the daily bars (point in
    time), the truth's impact parameters for the fills, and what the features need of the past:
    the quotes and trades of the ``history_sessions`` sessions before the day (the lookbacks:
    previous session, 20-session baselines) and the regime HMM's inputs of every earlier
    session, so a decision's state is the training pipeline's (``tests/test_paper_state.py``)."""
    from models.desk_history import DESK_FEES

    qd = pd.to_datetime(quotes["ts"], utc=True).dt.date
    days = sorted(qd.unique())
    pick = days[-1] if day is None else pd.Timestamp(day).date()
    if pick not in set(days):
        raise ValueError(f"synthetic day {day} is not in the market ({days[0]}..{days[-1]})")
    td = pd.to_datetime(trades["ts"], utc=True).dt.date
    q, t = quotes[qd == pick], trades[td == pick]
    earlier = trades[td < pick]
    vh = {}
    if volume_history is not None:
        vh = {str(s): volume_history(earlier, s) for s in q["symbol"].astype(str).unique()
              if (earlier["symbol"].astype(str) == s).any()}
    sim = SimulatorConfig.from_truth(truth.impact, fees=fees or DESK_FEES).model_copy(
        update={"venue": "PAPER"})
    from models._feature_regime import _calendar_and_tz
    from models.regimes import regime_inputs

    bd = pd.to_datetime(daily_bars["date"]).dt.date
    before = quotes[qd < pick]
    keep = set(days[max(days.index(pick) - history_sessions, 0):days.index(pick)])
    cal, tz = _calendar_and_tz("XNYS")
    inputs = regime_inputs(daily_bars[bd < pick], quotes=before if len(before) else None,
                           calendar=cal, tz=tz) if (bd < pick).any() else None
    return Feed("synth", q, t, sim, daily_bars=daily_bars, calendar="XNYS",
                child_interval_min=5.0, max_duration_min=390.0, volume_history=vh,
                source=f"{source} {pick}", regime_inputs=inputs,
                history_quotes=before[qd[qd < pick].isin(keep)],
                history_trades=earlier[td[td < pick].isin(keep)])
