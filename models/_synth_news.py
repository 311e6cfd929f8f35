"""The synthetic news feed: headlines from templates, with the true sentiment and the true effect
of each event on volatility, spread and impact kept beside them. Re-exported by
:mod:`models.news` (import it from there).

Each template is written for a polarity and a strength, with words that the VADER lexicon scores
(REFERENCES.md §7.5: "strong" +2.3, "misses" -0.9, "cuts" -1.2, "shares" +1.2). A share
``gap_share`` of the headlines comes instead from the *lexicon-gap* templates: real newswire
phrasing that VADER misreads ("beats", "surge", "slump", "guidance" are not in the lexicon,
"shares" is positive, an upgrade to "overweight" is negative), so the text score is informative
but not an oracle of the truth.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from models._feature_registry import NS_DAY
from models._feature_time import sessions_around

_NS_PER_MIN: Final = 60_000_000_000


@dataclass(frozen=True)
class EventSpec:
    """How one event type is drawn and how strongly it moves the market.

    ``weight`` is its share of company news; ``p_positive`` the chance its sentiment is
    positive; at full strength (``|true_sentiment| = 1``, positive news) volatility is
    multiplied by ``1 + vol``, the spread by ``1 + spread`` and our impact by ``1 + impact``
    (negative news: ``NEGATIVE_AMPLIFIER`` times those excesses); the effect lasts
    ``hours`` (low, high) and the mid drifts by ``drift_bps * true_sentiment`` over it.
    """

    weight: float
    p_positive: float
    vol: float
    spread: float
    impact: float
    hours: tuple[float, float]
    drift_bps: float


EVENT_SPECS: Final[dict[str, EventSpec]] = {
    "earnings": EventSpec(0.24, 0.55, 1.6, 0.8, 1.0, (3.0, 6.5), 60.0),
    "guidance": EventSpec(0.12, 0.40, 1.0, 0.5, 0.7, (2.0, 5.0), 40.0),
    "upgrade": EventSpec(0.12, 1.00, 0.5, 0.2, 0.4, (1.0, 3.0), 25.0),
    "downgrade": EventSpec(0.12, 0.00, 0.6, 0.3, 0.5, (1.0, 3.0), 25.0),
    "mna": EventSpec(0.06, 0.85, 1.4, 0.6, 0.9, (2.0, 6.5), 80.0),
    "legal": EventSpec(0.10, 0.15, 0.7, 0.4, 0.5, (1.0, 4.0), 30.0),
    "product": EventSpec(0.12, 0.70, 0.4, 0.2, 0.3, (1.0, 3.0), 15.0),
    "management": EventSpec(0.12, 0.35, 0.5, 0.3, 0.4, (1.0, 4.0), 20.0),
}
"""Company event types (weights sum to 1)."""

MACRO_SPEC: Final = EventSpec(1.0, 0.45, 0.8, 0.4, 0.5, (1.0, 3.0), 20.0)
"""Macro releases: one headline for every listed symbol at 08:30 or 14:00 New York."""

NEGATIVE_AMPLIFIER: Final = 1.5
"""Bad news moves volatility, spreads and impact 1.5 times as much as good news."""

EVENT_TYPES: Final = (*EVENT_SPECS, "macro")

# (event type, polarity, strong?) -> templates; "{s}" is the symbol. Each is checked in
# tests/test_news.py: VADER's compound has the template's sign.
TEMPLATES: Final[dict[tuple[str, str, bool], tuple[str, ...]]] = {
    ("earnings", "pos", False): ("{s} reports solid quarterly growth",
                                 "{s} quarterly sales rise on stable demand, margins improve"),
    ("earnings", "pos", True): ("{s} posts strong quarterly profit growth",
                                "{s} delivers excellent results as profits impress"),
    ("earnings", "neg", False): ("{s} quarterly revenue misses estimates",
                                 "{s} reports weaker quarterly sales"),
    ("earnings", "neg", True): ("{s} swings to a loss as sales collapse",
                                "{s} posts dismal quarter, losses widen"),
    ("guidance", "pos", False): ("{s} lifts outlook on improved demand",
                                 "{s} sees better full-year sales"),
    ("guidance", "pos", True): ("{s} raises outlook, confident of strong growth",
                                "{s} upbeat outlook cheers investors"),
    ("guidance", "neg", False): ("{s} cuts full-year outlook",
                                 "{s} warns of weaker demand"),
    ("guidance", "neg", True): ("{s} slashes outlook amid grim demand, cuts jobs",
                                "{s} warns of losses as crisis hits sales"),
    ("upgrade", "pos", False): ("Analysts upgrade {s}, see steady gains",
                                "{s} upgraded on improved margins"),
    ("upgrade", "pos", True): ("{s} upgraded to buy on strong growth outlook",
                               "Top analyst praises {s}, sees great upside"),
    ("downgrade", "neg", False): ("{s} downgraded on weak demand",
                                  "Analyst cuts {s} target on weak sales"),
    ("downgrade", "neg", True): ("{s} downgraded to sell on dismal outlook",
                                 "Analysts slash {s} target, warn of losses"),
    ("mna", "pos", False): ("{s} agrees to deal, board welcomes offer",
                            "{s} wins approval for acquisition"),
    ("mna", "pos", True): ("{s} receives generous takeover offer, a great premium",
                           "{s} wins strong bid, shareholders cheer"),
    ("mna", "neg", False): ("{s} deal blocked by regulators",
                            "{s} bid rejected, talks fail"),
    ("mna", "neg", True): ("{s} takeover collapses, hostile fight ahead",
                           "{s} deal fails amid fraud concerns"),
    ("legal", "pos", False): ("{s} wins court case",
                              "{s} cleared of charges, relief for investors"),
    ("legal", "pos", True): ("{s} wins major lawsuit, a great victory",
                             "Court clears {s}, a big win for the company"),
    ("legal", "neg", False): ("{s} faces lawsuit over defects",
                              "{s} hit with penalty by regulators"),
    ("legal", "neg", True): ("{s} charged with fraud, faces big penalty",
                             "{s} fraud scandal deepens, executives charged"),
    ("product", "pos", False): ("{s} launch wins good reviews",
                                "{s} new product gains popularity"),
    ("product", "pos", True): ("{s} launch a great success, reviews praise product",
                               "{s} excellent new product wins award"),
    ("product", "neg", False): ("{s} product launch delay worries buyers",
                                "{s} product defects trouble buyers"),
    ("product", "neg", True): ("{s} recall widens as defects hurt sales",
                               "{s} product failure damages brand"),
    ("management", "pos", False): ("{s} appoints respected new chief, investors welcome move",
                                   "{s} names confident new CEO"),
    ("management", "pos", True): ("{s} hires star CEO, a great win for shareholders",
                                  "{s} strong new leadership praised"),
    ("management", "neg", False): ("{s} CEO resigns unexpectedly",
                                   "{s} finance chief departs amid doubts"),
    ("management", "neg", True): ("{s} CEO fired amid scandal",
                                  "{s} leadership crisis deepens as CEO resigns"),
    ("macro", "pos", False): ("Inflation eases, markets calm", "Jobs report shows solid hiring"),
    ("macro", "pos", True): ("Strong jobs report boosts confidence",
                             "Inflation falls sharply, optimism lifts markets"),
    ("macro", "neg", False): ("Rate worries weigh on markets",
                              "Factory activity weaker than expected"),
    ("macro", "neg", True): ("Recession fears grip markets, panic selling",
                             "Unemployment jumps, crisis fears grow"),
}

GAP_TEMPLATES: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("earnings", "pos"): ("{s} beats earnings estimates", "{s} shares surge after earnings beat"),
    ("earnings", "neg"): ("{s} shares slump after earnings", "{s} earnings fall short"),
    ("guidance", "pos"): ("{s} raises full-year guidance",),
    ("guidance", "neg"): ("{s} shares drop on guidance",),
    ("upgrade", "pos"): ("{s} upgraded to overweight",),
    ("downgrade", "neg"): ("{s} shares fall on downgrade",),
    ("mna", "pos"): ("{s} to be acquired in all-cash deal",),
    ("mna", "neg"): ("{s} shares tumble as merger talks end",),
    ("legal", "pos"): ("{s} settles probe, pays fine",),
    ("legal", "neg"): ("{s} shares sink on probe report",),
    ("product", "pos"): ("{s} unveils new flagship device",),
    ("product", "neg"): ("{s} shares slide on product recall",),
    ("management", "pos"): ("{s} shares jump on CEO appointment",),
    ("management", "neg"): ("{s} shares plunge as CFO exits",),
    ("macro", "pos"): ("Fed signals rate cuts",),
    ("macro", "neg"): ("Treasury yields spike after CPI",),
}
"""Lexicon-gap headlines: most score 0 or the wrong sign in VADER; the few it gets right it gets
right by accident ("shares" +1.2 carries "shares surge" and "shares jump")."""


def _universe(source) -> tuple[pd.DatetimeIndex, list[np.ndarray]]:
    """Sessions and the symbols listed on each: from a market (``.truth``), a ground truth
    (``.sessions``, ``.symbols``), or a pair ``(sessions, symbols)`` (every symbol every day)."""
    truth = getattr(source, "truth", source)
    if hasattr(truth, "sessions") and hasattr(truth, "symbols"):
        dates = pd.DatetimeIndex(pd.to_datetime(list(truth.sessions)))
        names = np.array([s.symbol for s in truth.symbols], dtype=object)
        first = pd.to_datetime([s.first_session for s in truth.symbols]).to_numpy()
        last = pd.to_datetime([s.last_session for s in truth.symbols]).to_numpy()
        return dates, [names[(first <= d) & (d <= last)] for d in dates.to_numpy()]
    try:
        sessions, symbols = source
    except (TypeError, ValueError):
        raise TypeError("news_feed: pass a SyntheticMarket, its GroundTruth, or a pair "
                        f"(sessions, symbols); got {type(source).__name__}") from None
    dates = pd.DatetimeIndex(pd.to_datetime(list(sessions)))
    names = np.array([str(s) for s in symbols], dtype=object)
    return dates, [names] * len(dates)


def _ny(date: pd.Timestamp, hour: int, minute: int) -> int:
    t = pd.Timestamp(dt.datetime.combine(date.date(), dt.time(hour, minute)),
                     tz="America/New_York")
    return int(t.tz_convert("UTC").value)


def _effects(spec: EventSpec, sentiment: np.ndarray, rng: np.random.Generator
             ) -> dict[str, np.ndarray]:
    """True effect of events with ``sentiment``: multipliers grow with its strength."""
    n = len(sentiment)
    k = np.abs(sentiment) * np.where(sentiment < 0, NEGATIVE_AMPLIFIER, 1.0)
    jitter = rng.uniform(0.7, 1.3, (3, n))
    lo, hi = spec.hours
    return {"vol_mult": 1.0 + spec.vol * k * jitter[0],
            "spread_mult": 1.0 + spec.spread * k * jitter[1],
            "impact_mult": 1.0 + spec.impact * k * jitter[2],
            "effect_hours": rng.uniform(lo, hi, n),
            "drift_bps": spec.drift_bps * sentiment}


def _headlines(kind: str, sentiment: np.ndarray, symbols: np.ndarray, gap_share: float,
               rng: np.random.Generator) -> list[str]:
    out = []
    gap = rng.random(len(sentiment)) < gap_share
    pick = rng.random(len(sentiment))
    for s, g, u, sym in zip(sentiment, gap, pick, symbols, strict=True):
        pol = "pos" if s > 0 else "neg"
        opts = GAP_TEMPLATES[(kind, pol)] if g else TEMPLATES[(kind, pol, bool(abs(s) > 0.6))]
        out.append(opts[int(u * len(opts))].format(s=sym))
    return out


def news_feed(source, *, seed: int, rate_per_symbol_day: float = 0.6,
              macro_rate_per_day: float = 0.3, pre_open_share: float = 0.3,
              latency_median_s: float = 20.0, latency_log_sd: float = 1.0,
              late_share: float = 0.05, late_minutes: tuple[float, float] = (5.0, 60.0),
              gap_share: float = 0.12, calendar: str = "XNYS") -> pd.DataFrame:
    """A synthetic news feed over the sessions and symbols of ``source``, with its truth.

    Parameters
    ----------
    source : SyntheticMarket, GroundTruth or (sessions, symbols)
        The market (its ``truth``: sessions and each symbol's listed span) or a pair of session
        dates and symbol names (every symbol listed every session).
    seed : int
        Root of every random draw (``numpy.random.SeedSequence([seed, ...])``).
    rate_per_symbol_day : float, default=0.6
        Mean number of company headlines per symbol and session (Poisson).
    macro_rate_per_day : float, default=0.3
        Mean number of macro releases per session (08:30 or 14:00 New York); each is one row
        for every listed symbol, with one headline, one truth and one wire time.
    pre_open_share : float, default=0.3
        Share of company news stamped in the 90 minutes before the open (the rest uniform over
        the session).
    latency_median_s, latency_log_sd : float, default=20.0, 1.0
        Publication latency ``available_at - ts``: log-normal with this median (seconds) and
        log-sd, except for ...
    late_share, late_minutes : float, (float, float), default=0.05, (5.0, 60.0)
        ... a share ``late_share`` of stories that reach the wire late: uniform in
        ``late_minutes``.
    gap_share : float, default=0.12
        Share of headlines written with the lexicon-gap templates (:data:`GAP_TEMPLATES`).
    calendar : str, default="XNYS"
        Exchange calendar of the sessions' open and close.

    Returns
    -------
    pandas.DataFrame
        One row per (headline, symbol), sorted by ``available_at`` then ``symbol``: ``ts,
        available_at, symbol, headline, event_type`` (the ``news`` contract) and the truth:
        ``true_sentiment`` in [-1, 1]; ``vol_mult, spread_mult, impact_mult`` (>= 1: the
        market's volatility, the quoted spread and an order's impact are multiplied by these
        while the event is in effect); ``effect_hours`` (from ``ts``); ``drift_bps`` (the mid's
        drift over the effect window, signed like the sentiment).

    Examples
    --------
    >>> import datetime as dt
    >>> feed = news_feed(([dt.date(2024, 11, 4), dt.date(2024, 11, 5)], ["AAA", "BBB"]),
    ...                  seed=1, rate_per_symbol_day=2.0)
    >>> bool((feed["available_at"] >= feed["ts"]).all())
    True
    >>> bool(feed["true_sentiment"].abs().le(1).all())
    True
    """
    for name, v, ok in (("rate_per_symbol_day", rate_per_symbol_day, rate_per_symbol_day >= 0),
                        ("macro_rate_per_day", macro_rate_per_day, macro_rate_per_day >= 0),
                        ("pre_open_share", pre_open_share, 0 <= pre_open_share <= 1),
                        ("late_share", late_share, 0 <= late_share <= 1),
                        ("gap_share", gap_share, 0 <= gap_share <= 1),
                        ("latency_median_s", latency_median_s, latency_median_s > 0),
                        ("latency_log_sd", latency_log_sd, latency_log_sd >= 0),
                        ("late_minutes", late_minutes, 0 <= late_minutes[0] <= late_minutes[1])):
        if not ok:
            raise ValueError(f"news_feed: `{name}={v}` is out of range (rates >= 0, shares in "
                             "[0, 1], latency_median_s > 0, late_minutes (low, high) >= 0)")
    dates, listed = _universe(source)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x4E5753]))
    day = dates.as_unit("ns").asi8 // NS_DAY
    ok, opens, closes = sessions_around(day, calendar).lookup(day) if len(day) else (
        np.zeros(0, bool), day, day)
    if not ok.all():
        raise ValueError(f"news_feed: not {calendar} sessions: "
                         f"{[str(d.date()) for d in dates[~ok]]}")

    def latency_ns(n: int) -> np.ndarray:
        lat = np.exp(np.log(latency_median_s) + latency_log_sd * rng.standard_normal(n))
        late = rng.random(n) < late_share
        return (np.where(late, 60 * rng.uniform(*late_minutes, n), lat) * 1e9).astype(np.int64)

    kinds = np.array(list(EVENT_SPECS), dtype=object)
    w = np.array([s.weight for s in EVENT_SPECS.values()])
    parts: list[pd.DataFrame] = []
    for t, syms in enumerate(listed):
        sym = np.repeat(syms, rng.poisson(rate_per_symbol_day, len(syms)))
        kind = kinds[rng.choice(len(kinds), len(sym), p=w / w.sum())]
        pre = rng.random(len(sym)) < pre_open_share
        u = rng.random(len(sym))
        ts = np.where(pre, opens[t] - u * 90 * _NS_PER_MIN,
                      opens[t] + u * (closes[t] - opens[t])).astype(np.int64)
        for k in kinds:
            m = kind == k
            if m.any():
                parts.append(_events(k, sym[m], ts[m], latency_ns(int(m.sum())), gap_share, rng))
        for _ in range(rng.poisson(macro_rate_per_day)):
            hour, minute = (8, 30) if rng.random() < 0.6 else (14, 0)
            at = np.full(len(syms), _ny(dates[t], hour, minute))
            parts.append(_events("macro", syms, at, np.repeat(latency_ns(1), len(syms)),
                                 gap_share, rng))
    cols = ["ts", "available_at", "symbol", "headline", "event_type", "true_sentiment",
            "vol_mult", "spread_mult", "impact_mult", "effect_hours", "drift_bps"]
    if not parts:
        empty = {c: pd.Series(dtype="float64") for c in cols}
        empty |= {c: pd.Series(dtype="str") for c in ("symbol", "headline", "event_type")}
        empty |= {c: pd.Series(dtype="datetime64[ns, UTC]") for c in ("ts", "available_at")}
        return pd.DataFrame(empty)[cols]
    feed = pd.concat(parts, ignore_index=True)
    ts, lat = feed["ts"].to_numpy(np.int64), feed["latency_ns"].to_numpy(np.int64)
    feed["ts"] = pd.to_datetime(ts, utc=True).as_unit("ns")
    feed["available_at"] = pd.to_datetime(ts + lat, utc=True).as_unit("ns")
    feed = feed[cols].sort_values(["available_at", "symbol"], kind="stable")
    for c in ("symbol", "headline", "event_type"):
        feed[c] = feed[c].astype("str")
    return feed.reset_index(drop=True)


def _events(kind: str, symbols: np.ndarray, ts: np.ndarray, latency_ns: np.ndarray,
            gap_share: float, rng: np.random.Generator) -> pd.DataFrame:
    """Rows of ``kind`` events at ``ts``: one draw per row, or for ``macro`` one draw shared by
    every row (one release seen by every symbol)."""
    spec = MACRO_SPEC if kind == "macro" else EVENT_SPECS[kind]
    n = 1 if kind == "macro" else len(symbols)
    sign = np.where(rng.random(n) < spec.p_positive, 1.0, -1.0)
    sentiment = sign * rng.uniform(0.2, 1.0, n)
    eff = _effects(spec, sentiment, rng)
    named = np.asarray(symbols, dtype=object)[:n] if kind != "macro" else np.array(["-"])
    head = _headlines(kind, sentiment, named, gap_share, rng)
    rep = len(symbols) if kind == "macro" else 1
    return pd.DataFrame({"ts": ts.astype(np.int64), "latency_ns": latency_ns,
                         "symbol": np.asarray(symbols, dtype=object),
                         "headline": np.repeat(np.asarray(head, dtype=object), rep),
                         "event_type": kind, "true_sentiment": np.repeat(sentiment, rep),
                         **{k: np.repeat(v, rep) for k, v in eff.items()}})
