"""Point-in-time tradable universe and survivorship checks (pure: pandas/numpy only).

The universe of a date ``d`` is every symbol that, **on** ``d``, is an index member, has data on
the previous session, has enough history, and traded enough dollar volume — all measured from bars
dated strictly before ``d``. Nothing on or after ``d`` can change the universe of ``d``.

Membership spans are half-open, ``start_date <= d < end_date`` (``end_date`` null = still a
member). In the S&P 500 source (fja05680) the ``end_date`` of a removed name equals the
``start_date`` of the name that replaces it (the change's effective date, before the open), so an
inclusive end would put both names in the index on that day (e.g. 503 names instead of 500 on
2015-03-23).

Examples
--------
>>> import pandas as pd
>>> days = pd.bdate_range("2024-01-01", periods=4)
>>> bars = pd.DataFrame({"date": days.repeat(2), "symbol": ["A", "B"] * 4,
...                      "close": 10.0, "volume": [1e5, 1e3] * 4})
>>> members = pd.DataFrame({"symbol": ["A", "B"], "start_date": days[0],
...                         "end_date": [pd.NaT, days[3]]})
>>> u = point_in_time_universe(members, bars, days[2:], adv_window=2, min_adv_usd=5e4,
...                            min_history=2)
>>> u[["date", "symbol", "adv_usd"]]
        date symbol    adv_usd
0 2024-01-03      A  1000000.0
1 2024-01-04      A  1000000.0
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from validation.errors import SurvivorshipError

_DAY_KEY: Final = np.int64(1 << 22)  # > any day number we meet: (symbol code, day) -> one int64


class UniverseParams(BaseModel):
    """Rules of the point-in-time universe; the defaults of :func:`point_in_time_universe`.

    Attributes
    ----------
    adv_window : int, default=20
        Sessions (of the symbol's own bars, strictly before the date) averaged into ``adv_usd``.
    min_adv_usd : float, default=1_000_000.0
        Minimum average daily dollar volume (``close * volume``), in USD.
    min_history : int, default=20
        Minimum number of the symbol's bars strictly before the date.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    adv_window: int = Field(20, ge=1)
    min_adv_usd: float = Field(1_000_000.0, ge=0)
    min_history: int = Field(20, ge=1)


_DEFAULT: Final = UniverseParams()

REASONS: Final = ("not a member", "no data on previous session", "history < min_history",
                  "adv_usd < min_adv_usd")


def _as_dates(dates: object, what: str) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(dates)  # type: ignore[arg-type]
    if idx.tz is not None:
        raise ValueError(f"`{what}` must be naive calendar dates, got tz={idx.tz}; "
                         f"drop the time zone (e.g. `.tz_localize(None)`)")
    if idx.isna().any():
        raise ValueError(f"`{what}` contains NaT at position {int(np.flatnonzero(idx.isna())[0])}")
    return idx.as_unit("ns")


def _days(values: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)


def _active_pairs(membership: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """``(date, symbol, end_date)`` for every span active on each date (``[start, end)``)."""
    start = membership["start_date"].to_numpy(dtype="datetime64[ns]")
    end = membership["end_date"].to_numpy(dtype="datetime64[ns]")
    d = dates.to_numpy()[:, None]
    active = (start[None, :] <= d) & (np.isnat(end)[None, :] | (d < end[None, :]))
    di, si = np.nonzero(active)
    return pd.DataFrame({"date": dates.to_numpy()[di],
                         "symbol": membership["symbol"].to_numpy()[si], "end_date": end[si]})


def point_in_time_universe(
    membership: pd.DataFrame,
    daily_bars: pd.DataFrame,
    dates: object | None = None,
    *,
    adv_window: int = _DEFAULT.adv_window,
    min_adv_usd: float = _DEFAULT.min_adv_usd,
    min_history: int = _DEFAULT.min_history,
    include_rejected: bool = False,
) -> pd.DataFrame:
    """The tradable universe of each date, using only what was known before that date.

    Parameters
    ----------
    membership : pandas.DataFrame
        ``membership`` contract: ``symbol, start_date, end_date`` (null end = still a member).
    daily_bars : pandas.DataFrame
        At least ``date, symbol, close, volume`` (``daily_bars`` contract), one row per
        (date, symbol). The session grid is the set of all bar dates.
    dates : array-like of datetime, optional
        Naive dates to build the universe for (need not be sessions); default every bar date.
    adv_window : int, default=20
    min_adv_usd : float, default=1_000_000.0
    min_history : int, default=20
        See :class:`UniverseParams`.
    include_rejected : bool, default=False
        Also return rejected candidates (members that fail a rule, and non-members with data on
        the previous session), with ``in_universe=False`` and the first failed rule in ``reason``.

    Returns
    -------
    pandas.DataFrame
        One row per (date, symbol), sorted: ``date, symbol, member, prev_session,
        last_data_date, n_history, adv_usd, in_universe, reason``.
        ``prev_session`` is the last session strictly before ``date``; ``last_data_date`` is the
        symbol's last bar strictly before ``date`` (``< date`` always); ``n_history`` counts the
        symbol's bars before ``date``; ``adv_usd`` is the mean of ``close * volume`` over its last
        ``min(adv_window, n_history)`` of them.

    Raises
    ------
    ValueError
        When a parameter is out of range or ``dates`` are tz-aware or contain NaT.

    Notes
    -----
    Rules, in order (``reason`` names the first that fails): member on ``date``
    (``start_date <= date < end_date``); ``last_data_date == prev_session``;
    ``n_history >= min_history``; ``adv_usd >= min_adv_usd``.
    """
    p = UniverseParams(adv_window=adv_window, min_adv_usd=min_adv_usd, min_history=min_history)
    if dates is None:
        dates = daily_bars["date"].unique()
    days_idx = _as_dates(dates, "dates").unique().sort_values()
    bars = daily_bars[["date", "symbol", "close", "volume"]]
    spans = membership[["symbol", "start_date", "end_date"]]
    symbols, codes = np.unique(np.concatenate([bars["symbol"].to_numpy(dtype=object),
                                               spans["symbol"].to_numpy(dtype=object)]).astype(str),
                               return_inverse=True)
    bar_code = codes[: len(bars)]

    # bars sorted by (symbol, day): rolling dollar volume via one cumulative sum
    bar_day = _days(bars["date"])
    key = bar_code.astype(np.int64) * _DAY_KEY + bar_day
    order = np.argsort(key, kind="stable")
    key, bar_day, bar_code = key[order], bar_day[order], bar_code[order]
    dv = (bars["close"].to_numpy(dtype="float64") * bars["volume"].to_numpy(dtype="float64"))[order]
    n = len(key)
    group_start = np.zeros(n, dtype=np.int64)
    if n:
        new = np.r_[True, bar_code[1:] != bar_code[:-1]]
        group_start = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    lo = np.maximum(group_start, np.arange(n) - p.adv_window + 1)
    csum = np.r_[0.0, np.cumsum(dv)]
    adv_at = (csum[np.arange(n) + 1] - csum[lo]) / (np.arange(n) - lo + 1)
    hist_at = np.arange(n) - group_start + 1

    # candidates: members on each date, plus (optionally) every symbol with bars
    active = _active_pairs(spans, days_idx)
    cand = active[["date", "symbol"]].assign(member=True)
    if include_rejected:
        traded = np.unique(bars["symbol"].to_numpy(dtype=object).astype(str))
        grid = pd.DataFrame({"date": np.repeat(days_idx.to_numpy(), len(traded)),
                             "symbol": np.tile(traded, len(days_idx)), "member": False})
        cand = pd.concat([cand, grid], ignore_index=True)
    cand = cand.sort_values("member", ascending=False).drop_duplicates(["date", "symbol"])
    c_code = np.searchsorted(symbols, cand["symbol"].to_numpy(dtype=object).astype(str))
    c_day = _days(cand["date"])

    # last bar strictly before the date, for the same symbol
    j = np.searchsorted(key, c_code.astype(np.int64) * _DAY_KEY + c_day, side="left") - 1
    has = (j >= 0) & (bar_code[np.clip(j, 0, None)] == c_code) if n else np.zeros(len(cand), bool)
    jj = np.clip(j, 0, None)
    last_day = np.where(has, bar_day[jj] if n else 0, np.iinfo(np.int64).min)
    sessions = np.unique(bar_day)
    k = np.searchsorted(sessions, c_day, side="left") - 1
    prev_day = np.where(k >= 0, sessions[np.clip(k, 0, None)] if len(sessions) else 0,
                        np.iinfo(np.int64).min)

    out = pd.DataFrame({
        "date": cand["date"].to_numpy(dtype="datetime64[ns]"),
        "symbol": pd.array(cand["symbol"].to_numpy(dtype=object).astype(str), dtype="str"),
        "member": cand["member"].to_numpy(dtype=bool),
        "prev_session": _from_days(prev_day),
        "last_data_date": _from_days(last_day),
        "n_history": np.where(has, hist_at[jj] if n else 0, 0).astype(np.int64),
        "adv_usd": np.where(has, adv_at[jj] if n else np.nan, np.nan),
    })
    fresh = has & (last_day == prev_day)
    rules = (
        (REASONS[0], ~out["member"].to_numpy()),
        (REASONS[1], ~fresh),
        (REASONS[2], out["n_history"].to_numpy() < p.min_history),
        (REASONS[3], ~(out["adv_usd"].to_numpy() >= p.min_adv_usd)),
    )
    reason = np.full(len(out), "", dtype=object)
    for name, mask in reversed(rules):
        reason[mask] = name
    out["in_universe"] = reason == ""
    out["reason"] = pd.array(reason, dtype="str")
    if include_rejected:  # a non-member is only worth showing when it was trading
        out = out[out["member"] | fresh]
    else:
        out = out[out["in_universe"]]
    return out.sort_values(["date", "symbol"], ignore_index=True)


def _from_days(days: np.ndarray) -> np.ndarray:
    out = days.astype("datetime64[D]").astype("datetime64[ns]")
    out[days == np.iinfo(np.int64).min] = np.datetime64("NaT", "ns")
    return out


def _span_of_rows(universe: pd.DataFrame, membership: pd.DataFrame) -> pd.DataFrame:
    """Per universe row: whether a span holds it (``in_span``) and that span's ``end_date``."""
    u = universe[["date", "symbol"]].reset_index(drop=True).reset_index(names="_row")
    cols = ["symbol", "start_date", "end_date"] + (
        ["exit_reason"] if "exit_reason" in membership.columns else []
    )
    m = u.merge(membership[cols], on="symbol", how="inner")
    held = (m["start_date"] <= m["date"]) & (m["end_date"].isna() | (m["date"] < m["end_date"]))
    m = m[held]
    # an open span outranks any end date when spans overlap
    end = m["end_date"].to_numpy(dtype="datetime64[ns]")
    open_last = np.where(np.isnat(end), np.iinfo(np.int64).max, end.view(np.int64))
    m = m.assign(_end=open_last).sort_values("_end")
    m = m.drop_duplicates("_row", keep="last").set_index("_row")
    u["in_span"] = u["_row"].isin(m.index)
    u["end_date"] = m["end_date"].reindex(u["_row"]).to_numpy()
    if "exit_reason" in m.columns:
        u["exit_reason"] = m["exit_reason"].reindex(u["_row"]).to_numpy()
    return u.drop(columns="_row")


def check_membership_spans(universe: pd.DataFrame, membership: pd.DataFrame) -> pd.DataFrame:
    """The universe rows ``(date, symbol)`` that lie outside every membership span of the symbol.

    Parameters
    ----------
    universe : pandas.DataFrame
        At least ``date, symbol``; when ``in_universe`` is present only those rows are checked.
    membership : pandas.DataFrame
        ``membership`` contract.

    Returns
    -------
    pandas.DataFrame
        ``date, symbol`` of the offending rows (empty when the universe respects membership);
        evidence for an asset check.
    """
    u = universe[universe["in_universe"]] if "in_universe" in universe else universe
    spans = _span_of_rows(u, membership)
    return spans.loc[~spans["in_span"], ["date", "symbol"]].reset_index(drop=True)


MARKET_EXITS = ("acquired", "bankrupt", "delisted")


def survivorship_report(universe: pd.DataFrame, membership: pd.DataFrame) -> pd.DataFrame:
    """Per date: universe members, how many of them later left the index, and the index's own.

    Parameters
    ----------
    universe : pandas.DataFrame
        At least ``date, symbol`` (only ``in_universe`` rows when that column is present).
    membership : pandas.DataFrame
        ``membership`` contract; a null ``end_date`` means still a member when the file was made.

    Returns
    -------
    pandas.DataFrame
        One row per universe date: ``members``; ``later_leavers`` (members whose span ends after
        the date, at any time up to the membership file's last update); ``later_leaver_fraction``;
        ``later_left_market`` (later leavers whose ``exit_reason`` says they left the market —
        acquired, bankrupt or delisted — rather than being replaced in the index);
        ``leavers_in_window`` (members whose span ends on or before the last universe date);
        ``outside_span`` (rows with no span holding them); and ``index_members``,
        ``index_later_leavers``, ``index_leavers_in_window`` computed from ``membership`` alone.
    """
    u = universe[universe["in_universe"]] if "in_universe" in universe else universe
    dates = _as_dates(u["date"].unique(), "universe.date").sort_values()
    window_end = dates.max() if len(dates) else pd.NaT
    rows = _span_of_rows(u, membership)
    rows["later"] = rows["in_span"] & rows["end_date"].notna()
    rows["in_window"] = rows["later"] & (rows["end_date"] <= window_end)
    rows["outside"] = ~rows["in_span"]
    # names that left the market (acquired, bankrupt, delisted), not merely the index: a
    # database of today's listed stocks would not hold them at all
    gone = rows["exit_reason"].isin(MARKET_EXITS) if "exit_reason" in rows else False
    rows["left_market"] = rows["later"] & gone
    g = rows.groupby("date")
    rep = pd.DataFrame({"members": g["in_span"].sum(), "later_leavers": g["later"].sum(),
                        "later_left_market": g["left_market"].sum(),
                        "leavers_in_window": g["in_window"].sum(), "outside_span": g["outside"].sum()})
    idx = _active_pairs(membership, dates)
    idx["later"] = idx["end_date"].notna()
    idx["in_window"] = idx["later"] & (idx["end_date"] <= window_end)
    gi = idx.groupby("date")
    rep = rep.join(pd.DataFrame({"index_members": gi.size(), "index_later_leavers": gi["later"].sum(),
                                 "index_leavers_in_window": gi["in_window"].sum()}), how="left")
    rep = rep.fillna(0).astype(np.int64)
    rep.insert(2, "later_leaver_fraction",
               (rep["later_leavers"] / rep["members"].where(rep["members"] > 0)).fillna(0.0))
    rep.index.name = "date"
    return rep.reset_index()


def check_survivorship(
    report: pd.DataFrame, *, min_leaver_ratio: float = 0.5, min_index_leavers: int = 1
) -> None:
    """Raise ``SurvivorshipError`` when a universe looks built from survivors.

    Parameters
    ----------
    report : pandas.DataFrame
        From :func:`survivorship_report`.
    min_leaver_ratio : float, default=0.5
        The universe's share of member-days that leave within the window must be at least this
        fraction of the index's share (liquidity and data filters may drop some leavers).
    min_index_leavers : int, default=1
        Apply the leaver rules only when, on some date, at least this many index members leave
        within the window (raise it for short windows).

    Raises
    ------
    SurvivorshipError
        When universe rows lie outside their membership span; when no universe member leaves
        within the window although index members do; when too few leave (``min_leaver_ratio``).
    """
    if not 0 <= min_leaver_ratio <= 1:
        raise ValueError(f"`min_leaver_ratio` must be in [0, 1], got {min_leaver_ratio}")
    if report.empty:
        return
    first, last = report["date"].min().date(), report["date"].max().date()
    window = f"{first}..{last}"
    outside = report[report["outside_span"] > 0]
    if len(outside):
        raise SurvivorshipError(
            f"universe {window}: {int(outside['outside_span'].sum())} (date, symbol) rows lie outside "
            f"their membership span (first on {outside['date'].iloc[0].date()}); rule 'member on "
            f"date'. List them with check_membership_spans and build the universe from "
            f"point-in-time membership, not from a static ticker list")
    if report["index_leavers_in_window"].max() < min_index_leavers:
        return
    u_days, i_days = report["leavers_in_window"].sum(), report["index_leavers_in_window"].sum()
    if u_days == 0:
        raise SurvivorshipError(
            f"universe {window}: no member leaves the index within the window, but the membership "
            f"shows up to {int(report['index_leavers_in_window'].max())} members leaving; rule "
            f"'later leavers > 0': the universe looks built from today's members only. Include "
            f"names that were members on each date, even if they were later delisted")
    u_share = u_days / max(int(report["members"].sum()), 1)
    i_share = i_days / max(int(report["index_members"].sum()), 1)
    if u_share < min_leaver_ratio * i_share:
        raise SurvivorshipError(
            f"universe {window}: {u_share:.2%} of member-days belong to names that leave within the "
            f"window vs {i_share:.2%} in the index; rule 'leaver share >= {min_leaver_ratio} x "
            f"index share'. Check that delisted names keep their bars until they leave")
