"""Data contracts: one pandera ``DataFrameModel`` per table of the product brief.

This module is a leaf: it imports nothing of the project, so every layer may use it.

Conventions (part of the product, see BRIEF.md):

* timestamps are UTC with nanosecond precision (``datetime64[ns, UTC]``);
* prices are in currency units (float64), sizes in shares/contracts (float64);
* ``side`` is +1 buy, -1 sell; ``aggressor`` is +1 buyer-initiated, -1 seller-initiated, 0 unknown;
* every market record carries ``available_at >= ts`` (the time it became known).

Schemas are strict (no unknown columns) and coercing. :func:`split_valid` is the row-level entry
point used by cleansing and by ``bestex validate``: it never drops a row silently; every rejected
row comes back with the rule that caught it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Optional

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from validation.values import (
    EARLIEST_DATE,
    EARLIEST_EVENT,
    MAX_BPS,
    MAX_PRICE,
    MAX_SIZE,
    NAME_PATTERN,
    parse_numbers,
    parse_timestamps,
)

UTC_NS: Final = pd.DatetimeTZDtype(unit="ns", tz="UTC")
_TS = {"dtype_kwargs": {"unit": "ns", "tz": "UTC"}}
_NAME = {"str_length": {"min_value": 1}, "str_matches": NAME_PATTERN}
"""Names (symbols, order ids, venues, strategies): not empty, no control characters."""
HEADLINE_PATTERN: Final = r"^(?=[^\x00-\x1f\x7f]*\Z)\s*\S"
"""A headline: one line of text with no control character and at least one visible character
(linear time; ``\\Z``, not ``$``, which would let a trailing line break through)."""
MAX_HEADLINE_CHARS: Final = 1000
"""Longest plausible headline; a longer one is a story body or lines run together."""


class ContractError(ValueError):
    """A table cannot be checked row by row: unreadable, or columns missing or unknown."""


class _Contract(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = True


# --------------------------------------------------------------------------- market data
class QuotesSchema(_Contract):
    """Level-1 quotes: one row per top-of-book update of one symbol."""

    ts: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    available_at: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    symbol: Series[str] = pa.Field(**_NAME)
    bid_px: Series[float] = pa.Field(gt=0, le=MAX_PRICE)
    bid_sz: Series[float] = pa.Field(gt=0, le=MAX_SIZE)
    ask_px: Series[float] = pa.Field(gt=0, le=MAX_PRICE)
    ask_sz: Series[float] = pa.Field(gt=0, le=MAX_SIZE)

    @pa.dataframe_check(name="available_at >= ts", element_wise=False)
    def _known_after_event(cls, df: pd.DataFrame) -> Series[bool]:
        return df["available_at"] >= df["ts"]

    @pa.dataframe_check(name="bid_px <= ask_px", element_wise=False)
    def _not_crossed(cls, df: pd.DataFrame) -> Series[bool]:
        return df["bid_px"] <= df["ask_px"]


class DepthSchema(_Contract):
    """Level-N book: one row per (ts, symbol, level); an empty side has null price and size 0."""

    ts: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    available_at: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    symbol: Series[str] = pa.Field(**_NAME)
    level: Series[int] = pa.Field(ge=1, le=1000)
    bid_px: Series[float] = pa.Field(gt=0, le=MAX_PRICE, nullable=True)
    bid_sz: Series[float] = pa.Field(ge=0, le=MAX_SIZE)
    ask_px: Series[float] = pa.Field(gt=0, le=MAX_PRICE, nullable=True)
    ask_sz: Series[float] = pa.Field(ge=0, le=MAX_SIZE)

    @pa.dataframe_check(name="available_at >= ts", element_wise=False)
    def _known_after_event(cls, df: pd.DataFrame) -> Series[bool]:
        return df["available_at"] >= df["ts"]

    @pa.dataframe_check(name="bid_px <= ask_px", element_wise=False)
    def _not_crossed(cls, df: pd.DataFrame) -> Series[bool]:
        both = df["bid_px"].notna() & df["ask_px"].notna()
        return ~both | (df["bid_px"] <= df["ask_px"])


class TradesSchema(_Contract):
    """Trades (prints): one row per execution."""

    ts: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    available_at: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    symbol: Series[str] = pa.Field(**_NAME)
    px: Series[float] = pa.Field(gt=0, le=MAX_PRICE)
    qty: Series[float] = pa.Field(gt=0, le=MAX_SIZE)
    aggressor: Series[int] = pa.Field(isin=[-1, 0, 1])

    @pa.dataframe_check(name="available_at >= ts", element_wise=False)
    def _known_after_event(cls, df: pd.DataFrame) -> Series[bool]:
        return df["available_at"] >= df["ts"]


class DailyBarsSchema(_Contract):
    """Daily bars: one row per (date, symbol); ``available_at`` is the session close (UTC)."""

    date: Series[pd.Timestamp] = pa.Field()
    symbol: Series[str] = pa.Field(**_NAME)
    open: Series[float] = pa.Field(gt=0, le=MAX_PRICE)
    high: Series[float] = pa.Field(gt=0, le=MAX_PRICE)
    low: Series[float] = pa.Field(gt=0, le=MAX_PRICE)
    close: Series[float] = pa.Field(gt=0, le=MAX_PRICE)
    volume: Series[float] = pa.Field(ge=0, le=MAX_SIZE)
    available_at: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)

    @pa.dataframe_check(name="low <= min(open, close) and high >= max(open, close)", element_wise=False)
    def _range_holds(cls, df: pd.DataFrame) -> Series[bool]:
        # a relative tolerance of 1e-6 absorbs float rounding of adjusted prices
        tol = 1e-6 * df["close"].abs()
        lo = df[["open", "close"]].min(axis=1)
        hi = df[["open", "close"]].max(axis=1)
        return (df["low"] <= lo + tol) & (df["high"] >= hi - tol)

    @pa.dataframe_check(name="date is a weekday without a time of day", element_wise=False)
    def _calendar_date(cls, df: pd.DataFrame) -> Series[bool]:
        d = df["date"]
        return (d == d.dt.normalize()) & (d.dt.day_of_week < 5)

    @pa.dataframe_check(
        name="available_at >= session close (13:00 New York at the earliest)", element_wise=False
    )
    def _known_after_close(cls, df: pd.DataFrame) -> Series[bool]:
        # the earliest close of any US session is 13:00 ET (early closes); a bar cannot be known
        # before its session closed. The exact close comes from the exchange calendar in sources.
        earliest_close = (df["date"].dt.normalize() + pd.Timedelta(hours=13)).dt.tz_localize(
            "America/New_York", ambiguous="NaT", nonexistent="NaT"
        )
        return df["available_at"] >= earliest_close

    @pa.dataframe_check(name="unique (date, symbol)", element_wise=False)
    def _one_bar_per_day(cls, df: pd.DataFrame) -> Series[bool]:
        return ~df.duplicated(["date", "symbol"], keep="first")


EXIT_REASONS: Final = ("acquired", "bankrupt", "delisted", "replaced", "other")


class MembershipSchema(_Contract):
    """Index membership spans: one row per (symbol, span).

    A symbol is a member on day ``d`` when ``start_date <= d < end_date``: ``end_date`` is
    exclusive (the first day it is no longer a member, which is the day its replacement joins in
    the S&P 500 change history); null = still a member.
    """

    symbol: Series[str] = pa.Field(**_NAME)
    start_date: Series[pd.Timestamp] = pa.Field()
    end_date: Series[pd.Timestamp] = pa.Field(nullable=True)
    exit_reason: Optional[Series[str]] = pa.Field(nullable=True, isin=list(EXIT_REASONS))  # noqa: UP045 (pandera reads Optional as "column may be absent")

    @pa.dataframe_check(name="end_date >= start_date", element_wise=False)
    def _ordered(cls, df: pd.DataFrame) -> Series[bool]:
        return df["end_date"].isna() | (df["end_date"] >= df["start_date"])


# --------------------------------------------------------------------------- execution data
class ParentOrdersSchema(_Contract):
    """Parent orders: one row per order a desk decided to work."""

    order_id: Series[str] = pa.Field(unique=True, **_NAME)
    symbol: Series[str] = pa.Field(**_NAME)
    side: Series[int] = pa.Field(isin=[-1, 1])
    qty: Series[float] = pa.Field(gt=0, le=MAX_SIZE)
    decision_ts: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    end_ts: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    strategy: Series[str] = pa.Field(**_NAME)
    limit_px: Optional[Series[float]] = pa.Field(gt=0, le=MAX_PRICE, nullable=True)  # noqa: UP045

    @pa.dataframe_check(name="end_ts >= decision_ts", element_wise=False)
    def _ordered(cls, df: pd.DataFrame) -> Series[bool]:
        return df["end_ts"] >= df["decision_ts"]


class ChildFillsSchema(_Contract):
    """Child fills: one row per execution report of a child order."""

    order_id: Series[str] = pa.Field(**_NAME)
    fill_ts: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    px: Series[float] = pa.Field(gt=0, le=MAX_PRICE)
    qty: Series[float] = pa.Field(gt=0, le=MAX_SIZE)
    fee: Series[float] = pa.Field()  # currency units; negative = rebate
    liquidity: Series[str] = pa.Field(isin=["maker", "taker"])
    venue: Series[str] = pa.Field(**_NAME)


class LabelsSchema(_Contract):
    """Realized cost labels: one row per parent order; ``is_bps > 0`` when execution cost money."""

    order_id: Series[str] = pa.Field(unique=True, **_NAME)
    decision_ts: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    t1: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    arrival_mid: Series[float] = pa.Field(gt=0, le=MAX_PRICE)
    avg_px: Series[float] = pa.Field(gt=0, le=MAX_PRICE, nullable=True)  # null when nothing filled
    filled_qty: Series[float] = pa.Field(ge=0, le=MAX_SIZE)
    is_bps: Series[float] = pa.Field(ge=-MAX_BPS, le=MAX_BPS)
    delay_bps: Series[float] = pa.Field(ge=-MAX_BPS, le=MAX_BPS, nullable=True)
    spread_bps: Series[float] = pa.Field(ge=-MAX_BPS, le=MAX_BPS, nullable=True)
    impact_bps: Series[float] = pa.Field(ge=-MAX_BPS, le=MAX_BPS, nullable=True)
    timing_bps: Series[float] = pa.Field(ge=-MAX_BPS, le=MAX_BPS, nullable=True)
    opportunity_bps: Series[float] = pa.Field(ge=-MAX_BPS, le=MAX_BPS, nullable=True)
    fees_bps: Series[float] = pa.Field(ge=-MAX_BPS, le=MAX_BPS, nullable=True)

    @pa.dataframe_check(name="t1 >= decision_ts", element_wise=False)
    def _label_ends_after_decision(cls, df: pd.DataFrame) -> Series[bool]:
        return df["t1"] >= df["decision_ts"]


# --------------------------------------------------------------------------- news
class NewsSchema(_Contract):
    """News: one row per (headline, symbol); a story about several symbols (a macro release
    moves them all) is one row for each.

    ``ts`` is when the event happened (or the story was stamped), ``available_at`` when the desk
    could read it; a feature for a decision at ``d`` may use a headline only when
    ``available_at <= d`` (:func:`models.news.news_features`).
    """

    ts: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    available_at: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    symbol: Series[str] = pa.Field(**_NAME)
    headline: Series[str] = pa.Field(str_length={"min_value": 1, "max_value": MAX_HEADLINE_CHARS},
                                     str_matches=HEADLINE_PATTERN)
    event_type: Optional[Series[str]] = pa.Field(nullable=True, **_NAME)  # noqa: UP045

    @pa.dataframe_check(name="available_at >= ts", element_wise=False)
    def _known_after_event(cls, df: pd.DataFrame) -> Series[bool]:
        return df["available_at"] >= df["ts"]


# --------------------------------------------------------------------------- bookkeeping tables
class OutagesSchema(_Contract):
    """Feed gaps: one row per in-session interval with no update longer than the threshold."""

    table: Series[str] = pa.Field()
    symbol: Series[str] = pa.Field()
    start_ts: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    end_ts: Series[pd.DatetimeTZDtype] = pa.Field(**_TS)
    gap_s: Series[float] = pa.Field(gt=0)


class QuarantineSchema(_Contract):
    """Quarantined rows: one row per rejected source row, with the first rule that caught it."""

    table: Series[str] = pa.Field()
    source: Series[str] = pa.Field()
    row: Series[int] = pa.Field(ge=0)  # 0-based position in the source table as read
    rule: Series[str] = pa.Field()
    detail: Series[str] = pa.Field()
    record: Series[str] = pa.Field()  # the source row as JSON


CONTRACTS: Final[dict[str, type[_Contract]]] = {
    "quotes": QuotesSchema,
    "depth": DepthSchema,
    "trades": TradesSchema,
    "daily_bars": DailyBarsSchema,
    "membership": MembershipSchema,
    "parent_orders": ParentOrdersSchema,
    "child_fills": ChildFillsSchema,
    "labels": LabelsSchema,
    "news": NewsSchema,
    "outages": OutagesSchema,
    "quarantine": QuarantineSchema,
}

# Public contract tables (the ones a user brings); bookkeeping tables are produced, never ingested.
USER_TABLES: Final = ("quotes", "depth", "trades", "daily_bars", "membership",
                      "parent_orders", "child_fills", "labels", "news")


def contract(table: str) -> type[_Contract]:
    """Return the schema of ``table``; raise ``ContractError`` naming the known tables."""
    try:
        return CONTRACTS[table]
    except KeyError:
        raise ContractError(
            f"unknown table {table!r}; known tables: {', '.join(CONTRACTS)}"
        ) from None


def columns(table: str) -> dict[str, tuple[str, bool]]:
    """Map column name -> (dtype string, required) for ``table``, in contract order."""
    cols = contract(table).to_schema().columns
    return {name: (str(col.dtype), bool(col.required)) for name, col in cols.items()}


def empty(table: str) -> pd.DataFrame:
    """An empty frame with the contract's required columns and dtypes."""
    schema = contract(table).to_schema()
    data = {
        name: pd.Series([], dtype=col.dtype.type)
        for name, col in schema.columns.items()
        if col.required
    }
    return pd.DataFrame(data)


# --------------------------------------------------------------------------- row-level checking
@dataclass(frozen=True)
class RowFailure:
    """One rejected row: its 0-based position, the column (or '*' for a row rule), rule and value."""

    row: int
    column: str
    rule: str
    value: str


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _coerce(table: str, df: pd.DataFrame, *, epoch_unit: str | None = None
            ) -> tuple[pd.DataFrame, list[RowFailure], dict[str, int]]:
    """Coerce each column to its contract dtype by the rules of :mod:`validation.values`; values
    that cannot be read become failures. Also returns, per timestamp column, how many values
    were naive (taken as UTC)."""
    schema = contract(table).to_schema()
    out: dict[str, pd.Series] = {}
    failures: list[RowFailure] = []
    naive: dict[str, int] = {}
    pos = np.arange(len(df))
    for name, col in schema.columns.items():
        if name not in df.columns:
            continue
        s = df[name]
        dtype = col.dtype.type
        want = str(col.dtype)
        if want.startswith("string") and pd.api.types.is_string_dtype(s.dtype) \
                and s.dtype != object:
            out[name] = s
            continue
        if isinstance(dtype, pd.DatetimeTZDtype) or want.startswith("datetime64"):
            aware = isinstance(dtype, pd.DatetimeTZDtype)
            p = parse_timestamps(s, epoch_unit=epoch_unit,
                                 earliest=EARLIEST_EVENT if aware else EARLIEST_DATE)
            for i in pos[p.bad]:
                failures.append(RowFailure(int(i), name, f"type: {p.rule(name, p.problem[i])}",
                                           _show(s.iat[i])))
            conv = pd.Series(pd.DatetimeIndex(p.ns.view("M8[ns]"), tz="UTC"), index=df.index)
            if aware:
                if p.naive:
                    naive[name] = p.naive
            else:
                conv = conv.dt.tz_localize(None)
            out[name] = conv
            continue
        if want in ("float64", "int64"):
            p_num = parse_numbers(s)
            conv = pd.Series(p_num.values, index=df.index)
            for i in pos[p_num.bad]:
                boolean = isinstance(s.iat[i], (bool, np.bool_)) \
                    or pd.api.types.is_bool_dtype(s.dtype)
                failures.append(RowFailure(int(i), name, f"type: {name} must be {want}",
                                           _show(s.iat[i]) + (" (a boolean is not a number)"
                                                              if boolean else "")))
            inf = np.isinf(p_num.values)
            for i in pos[inf]:
                failures.append(RowFailure(int(i), name,
                                           f"type: {name} must be a finite float64",
                                           _show(s.iat[i])))
            conv = conv.where(~inf)
            if want == "int64":
                frac = conv.notna() & (conv != np.round(conv))
                for i in pos[frac.to_numpy()]:
                    failures.append(RowFailure(int(i), name, f"type: {name} must be {want}",
                                               _show(s.iat[i])))
                conv = conv.mask(frac)
            out[name] = conv
            continue
        conv = s.astype("str")  # strings; pandas >= 3 keeps missing values missing
        out[name] = conv
    extra = {c: df[c] for c in df.columns if c not in out}
    return pd.DataFrame({**out, **extra}, index=df.index), failures, naive


def check_columns(table: str, df: pd.DataFrame, *, source: str = "<frame>") -> None:
    """Raise ``ContractError`` when required columns are missing or unknown columns are present."""
    cols = columns(table)
    required = [c for c, (_, req) in cols.items() if req]
    missing = [c for c in required if c not in df.columns]
    unknown = [c for c in df.columns if c not in cols]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if unknown:
            parts.append(f"unknown columns {unknown}")
        raise ContractError(
            f"{source}: {table} contract: {'; '.join(parts)} "
            f"(expected {list(cols)}; optional: {[c for c, (_, r) in cols.items() if not r]})"
        )


DUPLICATE_RULE: Final = "duplicate: every column repeats an earlier row"
_KEYLESS_DUPLICATES: Final = ("daily_bars", "membership", "parent_orders", "child_fills", "labels",
                               "news")
"""Tables whose exact repeats :func:`split_valid` refuses. Market tables (quotes, trades, depth)
are judged by the market cleansing's ``duplicate`` rule, which also compares a source's identity
columns (two LOBSTER executions alike but for their order id are two events)."""


def _duplicates(coerced: pd.DataFrame, order: list[str], keep: np.ndarray,
                failures: list[RowFailure]) -> None:
    """Exact repeats among the rows still kept (the first occurrence stays): a file delivered
    twice, or the same rows in two parts of a table, are not two sets of events."""
    rows = np.flatnonzero(keep)
    cand = coerced.iloc[rows][order]
    dup = cand.duplicated(keep="first").to_numpy()
    if not dup.any():
        return
    first = cand.groupby(order, dropna=False, sort=False).ngroup().to_numpy()
    first_row = {}
    for r, g in zip(rows, first, strict=True):
        first_row.setdefault(int(g), int(r))
    for r, g in zip(rows[dup], first[dup], strict=True):
        failures.append(RowFailure(int(r), "*", DUPLICATE_RULE, f"repeats row {first_row[int(g)]}"))
        keep[int(r)] = False


def split_valid(
    table: str, df: pd.DataFrame, *, source: str = "<frame>", epoch_unit: str | None = None
) -> tuple[pd.DataFrame, list[RowFailure]]:
    """Split ``df`` into the rows that meet ``table``'s contract and the failures of the others.

    Parameters
    ----------
    table : str
        Contract name (see ``CONTRACTS``).
    df : pandas.DataFrame
        Rows as read; positions (0-based) identify rows in the failures.
    source : str, default="<frame>"
        Name used in error messages (usually the file path).
    epoch_unit : {"s", "ms", "us", "ns"} or None, default=None
        Unit of timestamp columns stored as numbers (refused without one:
        :func:`validation.values.parse_timestamps`).

    Returns
    -------
    clean : pandas.DataFrame
        Coerced rows that pass every rule, index reset, columns in contract order;
        ``clean.attrs["naive_utc"]`` maps each timestamp column with naive values (taken as UTC)
        to their count.
    failures : list of RowFailure
        One entry per (row, rule) that failed; a row may fail several rules.

    Raises
    ------
    ContractError
        When columns are missing or unknown: such a table cannot be checked row by row.
    """
    check_columns(table, df, source=source)
    df = df.reset_index(drop=True)
    coerced, failures, naive = _coerce(table, df, epoch_unit=epoch_unit)
    bad_rows = {f.row for f in failures}
    keep = np.ones(len(df), dtype=bool)
    if bad_rows:
        keep[list(bad_rows)] = False
    schema = contract(table).to_schema()
    order = [c for c in schema.columns if c in coerced.columns]
    if table in _KEYLESS_DUPLICATES and keep.sum() > 1:  # before the key rules: an exact
        _duplicates(coerced, order, keep, failures)       # repeat keeps its first occurrence
    cand = coerced[keep]
    try:
        schema.validate(cand, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        seen: set[tuple[int, str]] = set()
        for rec in fc.itertuples(index=False):
            idx = rec.index
            if idx is None or (isinstance(idx, float) and np.isnan(idx)):
                raise ContractError(
                    f"{source}: {table} contract: {rec.check} failed on column {rec.column}"
                ) from None
            row_rule = rec.schema_context == "DataFrameSchema"
            col = "*" if row_rule else str(rec.column)
            rule = str(rec.check) if row_rule else f"{col}: {rec.check}"
            if (int(idx), rule) in seen:
                continue
            seen.add((int(idx), rule))
            value = "" if row_rule else str(rec.failure_case)
            failures.append(RowFailure(int(idx), col, rule, value))
            keep[int(idx)] = False
    clean = coerced.loc[keep, order].reset_index(drop=True)
    for name, col in schema.columns.items():
        if name in clean.columns and str(col.dtype) == "int64" and clean[name].dtype != "int64":
            clean[name] = clean[name].astype("int64")
    failures.sort(key=lambda f: f.row)
    clean.attrs["naive_utc"] = naive
    return clean, failures
