"""Market-data cleansing: quotes, trades and depth, checked row by row with numpy masks.

:func:`cleanse_market` is the entry point. It reads each contract column once into a numpy array,
evaluates every rule as a boolean mask, and splits the rows into a clean table (in the pandera
contract of the table) and a quarantine table (``QuarantineSchema``). It never calls pandera: the
contract bounds are re-implemented as masks here, and ``tests/test_cleansing.py`` proves that the
clean output passes ``validation.contracts.split_valid``. Nothing is dropped silently:
``rows_in == len(clean) + len(quarantine)``.

Rules, in priority order (a row that fails several is quarantined once, under the first; its
``detail`` lists every rule it failed with the offending values):

=========================  ====================================================================
rule                       the row is rejected when
=========================  ====================================================================
``type``                   a value cannot be read as its contract type (``px='abc'``), a number
                           is not finite (``px=inf``), or the reader marked the row unreadable
                           (the :data:`READ_ERROR` column)
``missing``                a required value is null (ts, available_at, symbol, a size, px, ...)
``bad_level``              depth: ``level`` outside 1..1000
``empty_book_side``        quotes: the bid or the ask price is missing (a one-sided book)
``non_positive_price``     a price is <= 0
``extreme_value``          a price above ``validation.values.MAX_PRICE`` (1e9) or a size above
                           ``MAX_SIZE`` (1e12): a broken record (``px=1e308``), not a market
``non_positive_size``      quotes/trades: a size is <= 0
``negative_size``          depth: a size is < 0 (an empty depth level has size 0)
``crossed_quote``          bid_px > ask_px (a locked book, bid == ask, is allowed)
``bad_aggressor``          trades: aggressor not in {-1, 0, +1}
``available_before_event`` available_at < ts
``duplicate``              every column equals an earlier row's (the first occurrence is kept)
``out_of_order``           ts is earlier than the running max ts of the symbol's earlier rows
``outside_session``        ts is outside [open, close] of every session of the calendar
``bad_tick``               quotes (mid) / trades (px): a jump away from every recent price that
                           comes back within a few rows (see :func:`bad_ticks`)
=========================  ====================================================================

``duplicate`` compares every column of ``raw``, including columns outside the contract (a source
may add identity columns such as LOBSTER's ``order_id``); those extra columns are kept in the
quarantine ``record`` and dropped from the clean table. ``out_of_order`` never re-sorts: the row
is quarantined and the rest keep their source order. Feed gaps (per symbol, in-session intervals
without an update longer than ``gap_threshold_s``) of quotes and depth go to the ``outages``
table; no row is deleted for a gap. Trades get no outages: a stretch without trades is a quiet
market, not a feed failure.

Two reserved columns let a reader that derives a table from a file pass what it knows; both are
optional, take no part in ``duplicate``, and are left out of the clean table and of ``record``:

* :data:`SOURCE_ROW` (``_src_row``, int >= 0): the row of the source file each row came from. The
  quarantine ``row`` (and the row numbers in ``duplicate`` and ``bad_tick`` details) are then file
  rows rather than positions in ``raw`` (LOBSTER trades are a subset of the message rows; depth
  has several rows per message row).
* :data:`READ_ERROR` (``_read_error``, str or null): why the reader could not read the row; a
  non-empty value fails rule ``type`` with that text as the detail.

The module is split for size: the numpy kernels (parsing, calendar, duplicates, bad ticks,
outages, :class:`CleanseConfig`) are in ``validation._cleansing_rules`` and the vectorized text
(details, JSON records) in ``validation._cleansing_text``; this module re-exports the public ones.

Naive timestamps are taken as UTC. Rules after ``available_before_event`` are evaluated only on
the rows that passed the value rules (``type`` .. ``available_before_event``), so a broken row
cannot hide or cause another row's duplicate, ordering or bad-tick verdict.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from validation import _cleansing_text as tx
from validation._cleansing_rules import (
    NAT,
    BadTicks,
    CleanseConfig,
    bad_ticks,
    duplicates,
    empty_table,
    groups,
    outages,
    parse_float,
    parse_int,
    parse_symbol,
    running_max_before,
    session_index,
    sessions,
)
from validation.contracts import ContractError, columns
from validation.quarantine import CleanseResult, quarantine_frame
from validation.values import MAX_PRICE, MAX_SIZE, NAME_PATTERN, ParsedTimes, parse_timestamps

__all__ = ["READ_ERROR", "RULE_ORDER", "SOURCE_ROW", "TABLE_RULES", "BadTicks", "CleanseConfig",
           "bad_ticks", "cleanse_market", "duplicates", "outages", "sessions"]

RULE_ORDER: Final = (
    "type",
    "missing",
    "bad_level",
    "empty_book_side",
    "non_positive_price",
    "extreme_value",
    "non_positive_size",
    "negative_size",
    "crossed_quote",
    "bad_aggressor",
    "available_before_event",
    "duplicate",
    "out_of_order",
    "outside_session",
    "bad_tick",
)
"""Every rule name, in the priority order used to pick a quarantined row's ``rule``."""

TABLE_RULES: Final[dict[str, tuple[str, ...]]] = {
    "quotes": ("type", "missing", "empty_book_side", "non_positive_price", "extreme_value",
               "non_positive_size",
               "crossed_quote", "available_before_event", "duplicate", "out_of_order",
               "outside_session", "bad_tick"),
    "trades": ("type", "missing", "non_positive_price", "extreme_value", "non_positive_size",
               "bad_aggressor",
               "available_before_event", "duplicate", "out_of_order", "outside_session",
               "bad_tick"),
    "depth": ("type", "missing", "bad_level", "non_positive_price", "extreme_value",
              "negative_size",
              "crossed_quote", "available_before_event", "duplicate", "out_of_order",
              "outside_session"),
}
"""The rules each market table is checked against, in priority order."""

SOURCE_ROW: Final = "_src_row"
"""Reserved column: the source-file row of each raw row (reported as the quarantine ``row``)."""
READ_ERROR: Final = "_read_error"
"""Reserved column: a reader's reason why the row is unreadable (non-empty -> rule ``type``)."""
RESERVED: Final = (SOURCE_ROW, READ_ERROR)

_PRIORITY: Final = {r: i for i, r in enumerate(RULE_ORDER)}
_OUTAGE_TABLES: Final = ("quotes", "depth")

Describe = Callable[[np.ndarray], "tuple[tx.Text, ...]"]


# ----------------------------------------------------------------------------- checks
@dataclass
class _Checks:
    """Masks of failed rules, each with a function that describes the failure of given rows.

    A describer takes the failing positions and returns the pieces of one string per position:
    constant strings and pyarrow arrays (built with :mod:`validation._cleansing_text`, never a
    loop over rows), joined by ``_quarantine`` behind the rule name.
    """

    n: int
    entries: list[tuple[str, np.ndarray, Describe]] = field(default_factory=list)
    failed: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.failed = np.zeros(self.n, dtype=bool)

    def add(self, rule: str, mask: np.ndarray, describe: Describe) -> None:
        if mask.any():
            self.entries.append((rule, mask, describe))
            self.failed |= mask


def _parts(*parts: tx.Text) -> tuple[tx.Text, ...]:
    return parts


def _values_of(name: str, arr: np.ndarray) -> Describe:
    return lambda rows: _parts(f"{name}=", tx.float_repr(arr[rows]))


def _constant(text: str) -> Describe:
    return lambda rows: _parts(tx.repeat(text, len(rows)))


def _type_check(checks: _Checks, name: str, s: pd.Series, vals: np.ndarray, bad: np.ndarray,
                kind: str) -> None:
    """``type`` for values that do not parse (``px='abc'``) and numbers that are not finite."""
    if bad.any():
        raw = s.to_numpy(dtype=object)
        checks.add("type", bad, lambda rows: _parts(
            f"{name}=", tx.per_value(raw[rows], repr), f" is not {kind}"))
    if vals is not None:
        inf = np.isinf(vals) & ~bad
        checks.add("type", inf, lambda rows: _parts(
            f"{name}=", tx.float_repr(vals[rows]), " is not a finite number"))


def _time_check(checks: _Checks, name: str, s: pd.Series, p: ParsedTimes) -> None:
    """``type`` for timestamps that are not ISO 8601, outside the plausible window, numbers
    without a declared epoch unit, or booleans (:func:`validation.values.parse_timestamps`)."""
    if not p.bad.any():
        return
    raw = s.to_numpy(dtype=object)
    for code in np.unique(p.problem[p.bad]):
        rule = p.rule(name, int(code)).removeprefix(f"{name} ")
        checks.add("type", p.problem == code, lambda rows, rule=rule: _parts(
            f"{name}=", tx.per_value(raw[rows], repr), f" {rule}"))


def _name_check(checks: _Checks, codes: np.ndarray, names: np.ndarray) -> None:
    """``type`` for a symbol holding a control character (a NUL byte, a line break)."""
    ctrl = np.array([re.search(NAME_PATTERN, str(n)) is None for n in names], dtype=bool)
    if not ctrl.any():
        return
    bad = (codes >= 0) & ctrl[np.maximum(codes, 0)]
    checks.add("type", bad, lambda rows: _parts(
        "symbol=", tx.per_value(names[codes[rows]], repr), " holds a control character"))


def _read_error(checks: _Checks, raw: pd.DataFrame) -> None:
    if READ_ERROR not in raw.columns:
        return
    s = raw[READ_ERROR]
    text = s.to_numpy(dtype=object)
    mask = s.notna().to_numpy() & (s.astype(object) != "").to_numpy()
    checks.add("type", mask, lambda rows: _parts(tx.per_value(text[rows], str)))


def _row_ids(raw: pd.DataFrame, source: str) -> np.ndarray | None:
    if SOURCE_ROW not in raw.columns:
        return None
    s = raw[SOURCE_ROW]
    if not (pd.api.types.is_integer_dtype(s.dtype) and not s.hasnans and (s >= 0).all()):
        raise ContractError(f"{source}: column {SOURCE_ROW!r} must hold integers >= 0 "
                            f"(source-file rows); got dtype {s.dtype}")
    return s.to_numpy(dtype=np.int64)


# ----------------------------------------------------------------------------- entry point
@functools.lru_cache(maxsize=8)
def _spec(table: str) -> dict[str, tuple[str, bool]]:
    return columns(table)


def cleanse_market(
    table: str,
    raw: pd.DataFrame,
    *,
    source: str,
    config: CleanseConfig = CleanseConfig(),  # noqa: B008 - frozen, so a shared default is safe
) -> CleanseResult:
    """Cleanse a ``quotes``, ``trades`` or ``depth`` table: clean rows, quarantine and outages.

    Parameters
    ----------
    table : {"quotes", "trades", "depth"}
        Contract of ``raw``.
    raw : pandas.DataFrame
        Rows as read, with every required contract column; columns may be strings (each value is
        converted, and one that does not convert fails the ``type`` rule). Extra columns are
        allowed: they take part in ``duplicate`` and are dropped from the clean table. The
        reserved columns :data:`SOURCE_ROW` and :data:`READ_ERROR` are optional (module notes).
    source : str
        Where the rows came from (a path); written into every quarantine row.
    config : CleanseConfig, default=CleanseConfig()
        Rule parameters.

    Returns
    -------
    validation.quarantine.CleanseResult
        ``clean`` (contract columns and dtypes, index 0..n-1, source order), ``quarantine`` (one
        row per rejected row, ``row`` its 0-based position in ``raw`` or its :data:`SOURCE_ROW`,
        ``rule`` the first rule it failed in :data:`RULE_ORDER`, ``detail`` every rule it failed
        with the values) and ``outages`` (quotes and depth only; empty for trades).

    Raises
    ------
    validation.contracts.ContractError
        When ``table`` is not a market table, ``raw`` lacks a required column, or
        :data:`SOURCE_ROW` holds something other than integers >= 0.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame({
    ...     "ts": pd.to_datetime(["2012-06-21 14:00:00", "2012-06-21 14:00:01"], utc=True),
    ...     "available_at": pd.to_datetime(["2012-06-21 14:00:00", "2012-06-21 14:00:01"], utc=True),
    ...     "symbol": ["AMZN", "AMZN"], "px": [220.5, -1.0], "qty": [100.0, 100.0],
    ...     "aggressor": [1, -1]})
    >>> res = cleanse_market("trades", raw, source="example")
    >>> len(res.clean), res.quarantine["rule"].tolist()
    (1, ['non_positive_price'])
    """
    if table not in TABLE_RULES:
        raise ContractError(
            f"{source}: cleanse_market handles {', '.join(TABLE_RULES)}; got table {table!r} "
            "(use validation.quarantine.cleanse_contract for the other tables)"
        )
    spec = _spec(table)
    missing_cols = [c for c, (_, req) in spec.items() if req and c not in raw.columns]
    if missing_cols:
        raise ContractError(
            f"{source}: {table} contract: missing columns {missing_cols} (expected {list(spec)})"
        )
    if not (isinstance(raw.index, pd.RangeIndex) and raw.index.start == 0 and raw.index.step == 1):
        raw = raw.reset_index(drop=True)
    n = len(raw)
    ids = _row_ids(raw, source)
    checks = _Checks(n)

    # --- read every contract column once -----------------------------------------------------
    _read_error(checks, raw)
    p_ts = parse_timestamps(raw["ts"], epoch_unit=config.epoch_unit)
    p_av = parse_timestamps(raw["available_at"], epoch_unit=config.epoch_unit)
    ts, bad_ts, av, bad_av = p_ts.ns, p_ts.bad, p_av.ns, p_av.bad
    codes, names, no_sym = parse_symbol(raw["symbol"])
    _time_check(checks, "ts", raw["ts"], p_ts)
    _time_check(checks, "available_at", raw["available_at"], p_av)
    _name_check(checks, codes, names)
    num: dict[str, np.ndarray] = {}
    for c, (dtype, _) in spec.items():
        if c in ("ts", "available_at", "symbol"):
            continue
        is_int = dtype.startswith("int")
        num[c], bad = (parse_int if is_int else parse_float)(raw[c])
        _type_check(checks, c, raw[c], num[c], bad, "an integer" if is_int else "a number")
    type_bad = checks.failed.copy()

    # --- value rules --------------------------------------------------------------------------
    def missing(name: str, mask: np.ndarray) -> None:
        checks.add("missing", mask & ~type_bad, _constant(f"{name} is null"))

    missing("ts", (ts == NAT) & ~bad_ts)
    missing("available_at", (av == NAT) & ~bad_av)
    missing("symbol", no_sym)
    nullable_px = table == "depth"
    px_cols = [c for c in num if c.endswith("px")]
    for c in num:
        if c in px_cols and (nullable_px or table == "quotes"):
            continue
        missing(c, np.isnan(num[c]))
    if table == "depth":
        lvl = num["level"]
        checks.add("bad_level", (lvl < 1) | (lvl > 1000), _values_of("level", lvl))
    if table == "quotes":
        for side in ("bid", "ask"):
            px = num[f"{side}_px"]
            checks.add("empty_book_side", np.isnan(px) & ~type_bad,
                       _constant(f"{side} side empty ({side}_px is null)"))
    for c in px_cols:
        checks.add("non_positive_price", num[c] <= 0, _values_of(c, num[c]))
    for c in num:
        limit = MAX_PRICE if c in px_cols else MAX_SIZE if c.endswith(("_sz", "qty")) else None
        if limit is not None:
            too_big = np.isfinite(num[c]) & (num[c] > limit) & ~type_bad
            checks.add("extreme_value", too_big, lambda rows, c=c, limit=limit: _parts(
                f"{c}=", tx.float_repr(num[c][rows]), f" > {limit:g}"))
    for c in num:
        if not c.endswith(("_sz", "qty")):
            continue
        v = num[c]
        if table == "depth":
            checks.add("negative_size", v < 0, _values_of(c, v))
        elif table == "quotes":
            live = ~np.isnan(num[c.replace("_sz", "_px")])
            checks.add("non_positive_size", live & (v <= 0), _values_of(c, v))
        else:
            checks.add("non_positive_size", v <= 0, _values_of(c, v))
    if table in ("quotes", "depth"):
        bid, ask = num["bid_px"], num["ask_px"]
        checks.add("crossed_quote", bid > ask, lambda rows: _parts(
            "bid_px=", tx.float_repr(bid[rows]), " > ask_px=", tx.float_repr(ask[rows])))
    if table == "trades":
        ag = num["aggressor"]
        checks.add("bad_aggressor", np.isfinite(ag) & ~np.isin(ag, (-1.0, 0.0, 1.0)),
                   lambda rows: _parts(tx.per_value(
                       ag[rows], lambda v: f"aggressor={v:g} not in (-1, 0, 1)")))
    ts_ok = (ts != NAT) & (av != NAT)
    checks.add("available_before_event", ts_ok & (av < ts), lambda rows: _parts(
        "available_at=", tx.iso(av[rows]), " < ts=", tx.iso(ts[rows])))

    # --- row rules on the rows that passed the value rules -----------------------------------
    row_of = (lambda pos: pos) if ids is None else (lambda pos: ids[pos])
    valid = ~checks.failed
    vrows = np.flatnonzero(valid) if not valid.all() else np.arange(n)
    keys = [ts, av, codes, *num.values()]
    keys += [np.asarray(raw[c].to_numpy()) for c in raw.columns
             if c not in spec and c not in RESERVED]
    d_rows, d_orig = duplicates(keys, vrows)
    if len(d_rows):
        dup = np.zeros(n, dtype=bool)
        dup[d_rows] = True
        orig_of = np.zeros(n, dtype=np.int64)
        orig_of[d_rows] = row_of(d_orig)
        checks.add("duplicate", dup,
                   lambda rows: _parts("repeats row ", tx.int_str(orig_of[rows])))
        valid &= ~dup
        vrows = np.flatnonzero(valid)

    ooo = np.zeros(n, dtype=bool)
    prev_max = np.full(n, NAT)
    for grp in groups(codes, vrows):
        pm = running_max_before(ts[grp])
        prev_max[grp] = pm
        ooo[grp] = ts[grp] < pm
    checks.add("out_of_order", ooo, lambda rows: _parts(
        "ts=", tx.iso(ts[rows]), " < ", tx.iso(prev_max[rows]), " seen earlier"))
    valid &= ~ooo

    if config.calendar is not None and len(vrows):
        lo, hi = int(ts[vrows].min()), int(ts[vrows].max())
        opens, closes = sessions(config.calendar, lo, hi)
        outside = valid.copy()
        outside[vrows] = session_index(ts[vrows], opens, closes) < 0
        outside &= valid
        checks.add("outside_session", outside, lambda rows: _parts(
            "ts=", tx.iso(ts[rows]), f" outside every {config.calendar} session"))
        valid &= ~outside

    if config.bad_tick and table in ("quotes", "trades"):
        x = num["bid_px"] / 2 + num["ask_px"] / 2 if table == "quotes" else num["px"]
        label = "mid" if table == "quotes" else "px"
        bt = bad_ticks(x, ts, codes, np.flatnonzero(valid), config)
        if len(bt.rows):
            mask = np.zeros(n, dtype=bool)
            mask[bt.rows] = True
            at = np.zeros(n, dtype=np.int64)
            at[bt.rows] = np.arange(len(bt.rows))
            back = row_of(bt.revert_row)

            def tick(rows: np.ndarray) -> tuple[tx.Text, ...]:  # few rows by construction
                return _parts(tx.as_text([
                    f"{label}={x[i]:.10g} is more than {bt.threshold[k]:.6g} from every "
                    f"recent price (nearest {bt.nearest[k]:.6g}, median {bt.median[k]:.6g}); "
                    f"back at row {back[k]}" for i, k in zip(rows, at[rows], strict=True)]))

            checks.add("bad_tick", mask, tick)

    # --- split ---------------------------------------------------------------------------------
    bad = checks.failed
    q_rows = np.flatnonzero(bad)
    keep = None if len(q_rows) == 0 else ~bad
    clean = _clean_frame(table, raw, spec, ts, av, codes, names, num, keep)
    quarantine = _quarantine(table, source, raw, checks, q_rows, ids)
    if table in _OUTAGE_TABLES:
        keep_ts = ts if keep is None else ts[keep]
        keep_codes = codes if keep is None else codes[keep]
        gaps = outages(table, keep_ts, keep_codes, names, config)
    else:
        gaps = empty_table("outages")
    naive = {c: p.naive for c, p in (("ts", p_ts), ("available_at", p_av)) if p.naive}
    return CleanseResult(table=table, source=source, rows_in=n, clean=clean,
                         quarantine=quarantine, outages=gaps, naive_utc=naive)


def _quarantine(table: str, source: str, raw: pd.DataFrame, checks: _Checks,
                q_rows: np.ndarray, ids: np.ndarray | None) -> pd.DataFrame:
    """One quarantine row per failed row: the first rule, and every failure joined by ``'; '``."""
    if len(q_rows) == 0:
        return empty_table("quarantine")
    n_rules = len(RULE_ORDER)
    first = np.full(len(checks.failed), n_rules, dtype=np.int64)
    slot = np.full(len(checks.failed), -1, dtype=np.int64)  # position of a row in q_rows
    slot[q_rows] = np.arange(len(q_rows))
    detail: pa.Array | None = None
    for rule, mask, describe in sorted(checks.entries, key=lambda e: _PRIORITY[e[0]]):
        np.minimum(first, np.where(mask, _PRIORITY[rule], n_rules), out=first)
        rows = np.flatnonzero(mask)
        part = tx.concat(f"{rule}: ", *describe(rows))
        if len(rows) < len(q_rows):
            take = np.full(len(q_rows), -1, dtype=np.int64)
            take[slot[rows]] = np.arange(len(rows))
            part = part.take(pa.array(take, mask=take < 0))
        if detail is None:
            detail = part
        else:  # (pyarrow's null_handling="skip" drops rows where every input is null)
            both = pc.binary_join_element_wise(detail, part, pa.scalar("; ", pa.large_string()))
            detail = pc.coalesce(both, detail, part)
    rules = tx.as_text(list(RULE_ORDER)).take(pa.array(first[q_rows]))
    return quarantine_frame(table, source, raw, q_rows, rules, detail,
                            row_ids=ids, exclude=RESERVED)


def _is_contract_dtype(have: object, want: str) -> bool:
    if want == "string[pyarrow]":
        return isinstance(have, pd.StringDtype) and have.storage == "pyarrow" and \
            have.na_value is pd.NA
    return str(have) == want


def _clean_frame(
    table: str,
    raw: pd.DataFrame,
    spec: dict[str, tuple[str, bool]],
    ts: np.ndarray,
    av: np.ndarray,
    codes: np.ndarray,
    names: np.ndarray,
    num: dict[str, np.ndarray],
    keep: np.ndarray | None,
) -> pd.DataFrame:
    """Build the clean table: kept rows, contract columns and dtypes (typed raw columns reused)."""

    def pick(a: np.ndarray) -> np.ndarray:
        return a if keep is None else a[keep]

    data: dict[str, object] = {}
    for c, (dtype, _) in spec.items():
        if c not in raw.columns:
            continue
        s = raw[c]
        if keep is None and _is_contract_dtype(s.dtype, dtype):
            data[c] = s.array
        elif c in ("ts", "available_at"):
            data[c] = pd.DatetimeIndex(pick(ts if c == "ts" else av).view("M8[ns]"), tz="UTC")
        elif c == "symbol":
            kc = pick(codes)
            if len(names) == 1:
                arr = pa.repeat(pa.scalar(str(names[0])), len(kc))
            else:
                arr = pa.array(names.tolist(), type=pa.string()).take(pa.array(kc))
            data[c] = pd.array(arr, dtype="string[pyarrow]")
        elif dtype.startswith("int"):
            data[c] = pick(num[c]).astype(np.int64)
        else:
            data[c] = pick(num[c]).astype(np.float64, copy=False)
    return pd.DataFrame(data, copy=False)
