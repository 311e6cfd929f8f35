"""S&P 500 index membership: the fja05680 spans with the reason each ended span ended.

:func:`read_membership` reads the spans into the ``membership`` contract and classifies each
exit from the English Reason text of the change history (javierdejesusda,
:func:`classify_exit_reason`); spans are half-open ``[start_date, end_date)`` (see
:mod:`sources.sp500`). Re-exported by :mod:`sources.sp500`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
from pandera.errors import SchemaErrors

from validation.contracts import ContractError, MembershipSchema

# --------------------------------------------------------------------------- membership
_REASON_PATTERNS: Final = (
    ("bankrupt", re.compile(r"bankrupt|chapter\s*11|receivership", re.I)),
    ("delisted", re.compile(r"delist|no longer listed", re.I)),
    ("acquired", re.compile(r"acqui|merg|taken over|taken private|purchas|bought|buyout|takeover", re.I)),
    ("replaced", re.compile(r"market\s*cap|capitali[sz]ation|replac|mid-cap|public float|"
                            r"rebalanc|too small|market value|no longer representative", re.I)),
)


def classify_exit_reason(reason: str | None) -> str:
    """Map the English Reason text of an index change to an ``exit_reason``.

    Examples
    --------
    >>> classify_exit_reason("Founder Michael Dell and Silver Lake Partners acquired Dell.[193]")
    'acquired'
    >>> classify_exit_reason("Market capitalization change.[6]")
    'replaced'
    >>> classify_exit_reason("PCG filed for bankruptcy[89]"), classify_exit_reason("JEF spun off SPB.")
    ('bankrupt', 'other')
    """
    text = re.sub(r"\[[^\]]*\]", "", reason or "")
    for label, pattern in _REASON_PATTERNS:
        if pattern.search(text):
            return label
    return "other"


def _read_csv(path: Path, required: list[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise ContractError(f"{path}: cannot read as CSV ({exc})") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ContractError(f"{path}: lacks columns {missing} (has {list(df.columns)})")
    return df


def read_membership(
    spans_csv: str | Path, changes_csv: str | Path | None = None, *, max_gap_days: int = 10
) -> pd.DataFrame:
    """Read S&P 500 membership spans; classify why each ended span ended.

    Parameters
    ----------
    spans_csv : str or pathlib.Path
        ``ticker,start_date,end_date`` (empty end = still a member).
    changes_csv : str or pathlib.Path, optional
        ``Date,Removed_Ticker,Reason,...``: a span gets the class of the removal of its ticker
        nearest its ``end_date`` within ``max_gap_days`` (:func:`classify_exit_reason`).
    max_gap_days : int, default=10
        Largest |change date - end_date| accepted as the same event.

    Returns
    -------
    pandas.DataFrame
        ``membership`` contract: ``symbol, start_date, end_date, exit_reason``; ``exit_reason``
        is null for open spans and for ended spans with no matching change (unknown).

    Raises
    ------
    validation.contracts.ContractError
        When a file lacks columns, a date does not parse or a span ends before it starts
        (the message names the file, the row and the rule).

    Notes
    -----
    Spans are half-open, ``[start_date, end_date)``: see the module docstring.
    """
    spans_csv = Path(spans_csv)
    raw = _read_csv(spans_csv, ["ticker", "start_date", "end_date"])
    out = pd.DataFrame({
        "symbol": raw["ticker"].str.strip(),
        "start_date": pd.to_datetime(raw["start_date"], format="%Y-%m-%d", errors="coerce"),
        "end_date": pd.to_datetime(raw["end_date"].replace("", None), format="%Y-%m-%d", errors="coerce"),
    })
    for col in ("start_date", "end_date"):
        bad = out[col].isna() & (raw[col].str.strip() != "")
        if col == "start_date":
            bad |= out[col].isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ContractError(f"{spans_csv} row {i} (ticker={raw.at[i, 'ticker']}): "
                                f"{col}={raw.at[i, col]!r} violates 'YYYY-MM-DD date'")
    reason = pd.Series(pd.NA, index=out.index, dtype="str")
    if changes_csv is not None:
        ch = _read_csv(Path(changes_csv), ["Date", "Removed_Ticker", "Reason"])
        ch = pd.DataFrame({
            "symbol": ch["Removed_Ticker"].str.strip(),
            "change_date": pd.to_datetime(ch["Date"], format="%Y-%m-%d", errors="coerce"),
            "exit_reason": ch["Reason"].map(classify_exit_reason),
        })
        ch = ch[(ch["symbol"] != "") & ch["change_date"].notna()]
        ended = out[out["end_date"].notna()].reset_index(names="span")
        m = ended.merge(ch, on="symbol")
        m["gap"] = (m["change_date"] - m["end_date"]).abs()
        m = m[m["gap"] <= pd.Timedelta(days=max_gap_days)]
        m = m.sort_values(["span", "gap"]).drop_duplicates("span")
        reason.loc[m["span"].to_numpy()] = m["exit_reason"].to_numpy()
    out["exit_reason"] = reason
    try:
        return MembershipSchema.validate(out, lazy=True)
    except SchemaErrors as exc:
        shown = exc.failure_cases[["index", "check"]].head(5).to_string(index=False)
        raise ContractError(f"{spans_csv}: membership contract failed:\n{shown}") from exc


def exit_reason_coverage(membership: pd.DataFrame) -> dict[str, object]:
    """How many ended spans got an ``exit_reason``, and the count per reason."""
    ended = membership[membership["end_date"].notna()]
    got = ended["exit_reason"].notna()
    return {"spans": len(membership), "ended": len(ended), "with_reason": int(got.sum()),
            "coverage": float(got.mean()) if len(ended) else 0.0,
            "by_reason": ended.loc[got, "exit_reason"].value_counts().to_dict()}
