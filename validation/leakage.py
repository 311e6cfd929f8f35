"""Leakage guards: evidence (the offending rows) and ``assert_*`` variants raising ``LeakageError``.

The rule (BRIEF.md): a feature for a decision at ``d`` uses only records with
``available_at <= d``; labels may use the future but carry ``t1``, the last time they depend on.
Each guard returns a DataFrame of offending rows (empty = pass) so an asset check can attach the
evidence; the ``assert_*`` variant raises :class:`validation.errors.LeakageError` naming the
table, the rows and the rule. Pure (pandas/numpy), no project imports beyond ``validation``.

* :func:`knowledge_after_decision` — rows with ``knowledge_ts > decision_ts``.
* :func:`truncation_test` — recompute features of a seeded sample of orders from sources **cut at
  each decision time** and compare with the features computed on the full sources.
* :func:`labels_end_after_decisions` — labels with ``t1 < decision_ts`` (or no ``t1``).
* :func:`calibration_fitted_before` — calibrations whose ``fitted_through_ts`` is after their
  fold's training window (or missing: fail closed).
* :func:`inject_future_feature` — the leak canary: a feature built from the label (known at
  ``t1``) with ``knowledge_ts`` raised to ``t1``; every guard above must catch it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import numpy as np
import pandas as pd

from validation.errors import LeakageError

__all__ = [
    "DEFAULT_TIME_COLS",
    "assert_calibration_fitted_before",
    "assert_knowledge_before_decision",
    "assert_labels_end_after_decisions",
    "assert_no_leakage",
    "assert_truncation_invariant",
    "calibration_fitted_before",
    "embargo_proof",
    "inject_future_feature",
    "knowledge_after_decision",
    "labels_end_after_decisions",
    "truncation_test",
]

DEFAULT_TIME_COLS: Final[dict[str, str]] = {
    "quotes": "available_at", "trades": "available_at", "daily_bars": "available_at",
    "depth": "available_at", "regimes": "available_at", "labels_history": "available_at",
}
"""Knowledge-time column of each source; a source not listed uses ``available_at`` (then ``t1``)."""


def _utc(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, utc=True).dt.as_unit("ns")


def _head(df: pd.DataFrame, n: int = 10) -> str:
    more = f"\n... and {len(df) - n} more" if len(df) > n else ""
    return df.head(n).to_string(index=False) + more


# =========================================================================== knowledge
def knowledge_after_decision(features: pd.DataFrame, *, decision_col: str = "decision_ts",
                             knowledge_col: str = "knowledge_ts") -> pd.DataFrame:
    """Rows whose ``knowledge_ts`` is after their ``decision_ts`` (must be empty).

    ``knowledge_ts`` NaT means no source record was used: not an offence. A frame without a
    ``knowledge_ts`` column cannot be checked and raises ``LeakageError``.
    """
    for c in (decision_col, knowledge_col):
        if c not in features.columns:
            raise LeakageError(f"features: no column '{c}'; every feature row must record the "
                               "latest knowledge time it used (rule: knowledge_ts <= decision_ts)")
    d, k = _utc(features[decision_col]), _utc(features[knowledge_col])
    bad = (k > d).fillna(False).to_numpy(bool)
    cols = [c for c in ("order_id", "symbol") if c in features.columns]
    out = features.loc[bad, [*cols, decision_col, knowledge_col]].copy()
    out["excess"] = k[bad] - d[bad]
    return out.reset_index(drop=True)


def assert_knowledge_before_decision(features: pd.DataFrame, **kw: Any) -> None:
    """Raise ``LeakageError`` when :func:`knowledge_after_decision` finds rows."""
    ev = knowledge_after_decision(features, **kw)
    if len(ev):
        raise LeakageError(
            f"features: {len(ev)} row(s) with knowledge_ts > decision_ts (rule: a feature for a "
            f"decision at d uses only records with available_at <= d):\n{_head(ev)}\n"
            "fix: join sources as of available_at (not ts) and drop features built from later "
            "records")


# =========================================================================== truncation
def _time_col(name: str, df: pd.DataFrame, mapping: Mapping[str, str]) -> str:
    col = mapping.get(name) or DEFAULT_TIME_COLS.get(name, "available_at")
    if col not in df.columns and name not in mapping and "t1" in df.columns:
        col = "t1"
    if col not in df.columns:
        raise ValueError(f"truncation_test: source '{name}' has no knowledge-time column "
                         f"'{col}'; pass time_col_by_source={{'{name}': ...}}")
    return col


def _same(a: pd.Series, b: pd.Series, rtol: float, atol: float) -> np.ndarray:
    a_na, b_na = a.isna().to_numpy(bool), b.isna().to_numpy(bool)
    if pd.api.types.is_bool_dtype(a) or pd.api.types.is_bool_dtype(b):
        eq = (a.astype(object).to_numpy() == b.astype(object).to_numpy())
    elif pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
        x = a.to_numpy(np.float64, na_value=np.nan)
        y = b.to_numpy(np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            eq = np.isclose(x, y, rtol=rtol, atol=atol) | (x == y)
    elif pd.api.types.is_datetime64_any_dtype(a) and pd.api.types.is_datetime64_any_dtype(b):
        eq = (_utc(a) == _utc(b)).fillna(False).to_numpy(bool)
    else:
        eq = (a.astype(object).to_numpy() == b.astype(object).to_numpy()).astype(bool)
    return (a_na & b_na) | (~a_na & ~b_na & eq)


def truncation_test(orders_sample: pd.DataFrame, build_fn: Callable[..., pd.DataFrame],
                    sources: Mapping[str, pd.DataFrame | None], *,
                    time_col_by_source: Mapping[str, str] | None = None, n_sample: int = 25,
                    seed: int = 0, rtol: float = 1e-9, atol: float = 1e-12,
                    key: str = "order_id", decision_col: str = "decision_ts",
                    ignore: tuple[str, ...] = ()) -> pd.DataFrame:
    """Recompute features from sources cut at each decision time; return the differences.

    Parameters
    ----------
    orders_sample : pandas.DataFrame
        Orders (``key``, ``decision_ts`` and what ``build_fn`` reads); ``n_sample`` of them are
        drawn with ``numpy.random.default_rng(seed)`` (all when fewer).
    build_fn : callable
        ``build_fn(orders, **sources) -> DataFrame`` with one row per order and a ``key`` column
        (e.g. ``functools.partial(models.features.build_features, config=...)``).
    sources : mapping of str to DataFrame or None
        Keyword arguments of ``build_fn``; ``None`` entries are passed through unchanged.
    time_col_by_source : mapping, optional
        Knowledge-time column per source (default :data:`DEFAULT_TIME_COLS`, else
        ``available_at``, else ``t1``). A source lacking it raises ``ValueError``.
    rtol, atol : float
        Float tolerance of the comparison (NaN equals NaN).
    ignore : tuple of str
        Output columns not compared.

    Returns
    -------
    pandas.DataFrame
        ``order_id, decision_ts, feature, full, truncated``: one row per differing (order,
        feature) pair, and ``feature="<row>"`` when the truncated build lost the order. Empty
        when every sampled row is identical.
    """
    mapping = dict(time_col_by_source or {})
    n = len(orders_sample)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(n, size=min(n_sample, n), replace=False)) if n else np.zeros(0, int)
    sample = orders_sample.iloc[pick].reset_index(drop=True)
    times = {name: _utc(df[_time_col(name, df, mapping)]).to_numpy()
             for name, df in sources.items() if df is not None}
    full = build_fn(sample, **sources).set_index(key)
    dec = _utc(sample[decision_col]).to_numpy()
    rows: list[dict[str, Any]] = []
    for i in range(len(sample)):
        cut = {name: (df if df is None else df[times[name] <= dec[i]])
               for name, df in sources.items()}
        one = build_fn(sample.iloc[[i]], **cut).set_index(key)
        oid = sample[key].iloc[i]
        if oid not in one.index or oid not in full.index:
            rows.append({key: oid, "decision_ts": dec[i], "feature": "<row>",
                         "full": oid in full.index, "truncated": oid in one.index})
            continue
        a, b = full.loc[[oid]], one.loc[[oid]]
        for col in full.columns:
            if col in ignore:
                continue
            if col not in b.columns:
                rows.append({key: oid, "decision_ts": dec[i], "feature": col,
                             "full": a[col].iloc[0], "truncated": "<missing>"})
            elif not _same(a[col], b[col], rtol, atol)[0]:
                rows.append({key: oid, "decision_ts": dec[i], "feature": col,
                             "full": a[col].iloc[0], "truncated": b[col].iloc[0]})
    return pd.DataFrame(rows, columns=[key, "decision_ts", "feature", "full", "truncated"])


def assert_truncation_invariant(orders_sample: pd.DataFrame,
                                build_fn: Callable[..., pd.DataFrame],
                                sources: Mapping[str, pd.DataFrame | None], **kw: Any) -> None:
    """Raise ``LeakageError`` when :func:`truncation_test` finds differences."""
    ev = truncation_test(orders_sample, build_fn, sources, **kw)
    if len(ev):
        feats = sorted(set(ev["feature"]))
        raise LeakageError(
            f"features: {len(ev)} (order, feature) value(s) change when the sources are cut at "
            f"the decision time (rule: only records with available_at <= decision_ts may be "
            f"used); features {feats}:\n{_head(ev)}\nfix: these features read records that "
            "were not yet known at the decision")


# =========================================================================== labels
def labels_end_after_decisions(labels: pd.DataFrame, *, decision_col: str = "decision_ts",
                               t1_col: str = "t1") -> pd.DataFrame:
    """Labels whose ``t1`` is before their ``decision_ts``, or missing (purging needs it)."""
    for c in (decision_col, t1_col):
        if c not in labels.columns:
            raise LeakageError(f"labels: no column '{c}'; every label must carry decision_ts "
                               "and t1 (the last time it depends on)")
    d, t1 = _utc(labels[decision_col]), _utc(labels[t1_col])
    missing = t1.isna().to_numpy(bool)
    before = (t1 < d).fillna(False).to_numpy(bool)
    bad = missing | before
    cols = [c for c in ("order_id",) if c in labels.columns]
    out = labels.loc[bad, [*cols, decision_col, t1_col]].copy()
    out["reason"] = np.where(missing[bad], "t1 missing", "t1 < decision_ts")
    return out.reset_index(drop=True)


def assert_labels_end_after_decisions(labels: pd.DataFrame, **kw: Any) -> None:
    """Raise ``LeakageError`` when :func:`labels_end_after_decisions` finds rows."""
    ev = labels_end_after_decisions(labels, **kw)
    if len(ev):
        raise LeakageError(
            f"labels: {len(ev)} row(s) end before their decision or have no t1 (rule: "
            f"t1 >= decision_ts, the label's last dependency):\n{_head(ev)}\n"
            "fix: t1 = max(end_ts, last fill_ts)")


# =========================================================================== calibrations
def _through(meta: Any) -> Any:
    if isinstance(meta, Mapping):
        return meta.get("fitted_through_ts")
    return getattr(meta, "fitted_through_ts", None)


def _is_single(meta: Any) -> bool:
    return hasattr(meta, "fitted_through_ts") or (
        isinstance(meta, Mapping) and "fitted_through_ts" in meta)


def calibration_fitted_before(fold_train_end_ts: Any, calibration_meta: Any) -> pd.DataFrame:
    """Calibrations that used data after their fold's training window.

    Parameters
    ----------
    fold_train_end_ts : timestamp or mapping of fold to timestamp
        End of each fold's training window (inclusive).
    calibration_meta : object, mapping or DataFrame
        One calibration (anything with ``fitted_through_ts``: an attribute or a key), a mapping
        fold -> calibration, or a DataFrame with ``fitted_through_ts`` (and ``fold``).

    Returns
    -------
    pandas.DataFrame
        ``fold, fitted_through_ts, train_end_ts, reason`` for each calibration with
        ``fitted_through_ts > train_end_ts`` or without ``fitted_through_ts`` (fail closed).
    """
    if isinstance(calibration_meta, pd.DataFrame):
        if "fitted_through_ts" not in calibration_meta.columns:
            raise LeakageError("calibration_meta: no column 'fitted_through_ts'; a calibration "
                               "must record the last knowledge time of the data it was fitted on")
        folds = (calibration_meta["fold"] if "fold" in calibration_meta.columns
                 else pd.Series([None] * len(calibration_meta)))
        items = list(zip(folds, calibration_meta["fitted_through_ts"], strict=True))
    elif _is_single(calibration_meta):
        items = [(None, _through(calibration_meta))]
    elif isinstance(calibration_meta, Mapping):
        items = [(f, _through(m)) for f, m in calibration_meta.items()]
    else:
        items = [(None, None)]
    rows = []
    for fold, through in items:
        if isinstance(fold_train_end_ts, Mapping):
            if fold not in fold_train_end_ts:
                rows.append({"fold": fold, "fitted_through_ts": through, "train_end_ts": pd.NaT,
                             "reason": "no training window for this fold"})
                continue
            end = fold_train_end_ts[fold]
        else:
            end = fold_train_end_ts
        end_ts = pd.Timestamp(end)
        end_ts = end_ts.tz_localize("UTC") if end_ts.tzinfo is None else end_ts.tz_convert("UTC")
        if through is None or pd.isna(through):
            rows.append({"fold": fold, "fitted_through_ts": pd.NaT, "train_end_ts": end_ts,
                         "reason": "no fitted_through_ts"})
            continue
        th = pd.Timestamp(through)
        th = th.tz_localize("UTC") if th.tzinfo is None else th.tz_convert("UTC")
        if th > end_ts:
            rows.append({"fold": fold, "fitted_through_ts": th, "train_end_ts": end_ts,
                         "reason": "fitted on data after the training window"})
    return pd.DataFrame(rows, columns=["fold", "fitted_through_ts", "train_end_ts", "reason"])


def assert_calibration_fitted_before(fold_train_end_ts: Any, calibration_meta: Any) -> None:
    """Raise ``LeakageError`` when :func:`calibration_fitted_before` finds calibrations."""
    ev = calibration_fitted_before(fold_train_end_ts, calibration_meta)
    if len(ev):
        raise LeakageError(
            f"calibrations: {len(ev)} fitted on data outside their fold's training window "
            f"(rule: a calibration used as a feature is fitted only on the training fold's "
            f"data, fitted_through_ts <= train end):\n{_head(ev)}\n"
            "fix: call fit_parametric on the training fold only")


# =========================================================================== canary
def inject_future_feature(features: pd.DataFrame, labels: pd.DataFrame, *,
                          column: str = "is_bps", name: str = "leak_future_label",
                          knowledge_col: str = "t1", key: str = "order_id") -> pd.DataFrame:
    """The leak canary: ``features`` plus ``name`` = the label ``column`` (known at ``t1``).

    ``knowledge_ts`` is raised to the label's ``t1`` where the canary is set, as an honest
    builder would record it; :func:`knowledge_after_decision` must then flag those rows, and a
    builder that adds the canary must fail :func:`truncation_test`.
    """
    for c in (column, knowledge_col, key):
        if c not in labels.columns:
            raise ValueError(f"inject_future_feature: labels lack column '{c}'")
    lab = labels[[key, column, knowledge_col]].rename(
        columns={column: "__leak_value", knowledge_col: "__leak_known"})
    out = features.merge(lab, on=key, how="left", validate="one_to_one")
    out[name] = out.pop("__leak_value")
    known = _utc(out.pop("__leak_known"))
    k = _utc(out["knowledge_ts"]) if "knowledge_ts" in out.columns else known
    out["knowledge_ts"] = k.where(k.notna() & ~(known > k), known)
    return out


def assert_no_leakage(features: pd.DataFrame, labels: pd.DataFrame | None = None) -> None:
    """Every row known before its decision; with ``labels``, every label ends after its decision.

    Raises
    ------
    LeakageError
        With the evidence of the first failing guard.
    """
    assert_knowledge_before_decision(features)
    if labels is not None:
        assert_labels_end_after_decisions(labels)


# =========================================================================== holdout embargo
def _as_utc(raw: str) -> pd.Timestamp:
    ts = pd.Timestamp(raw)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def embargo_proof(tags: dict[str, str]) -> dict[str, Any]:
    """``holdout_start > train_max_t1 + embargo`` from the tag contract.

    Returns ``holds`` (the inequality), ``holdout_after_train_end`` (``holdout_start >
    train_end``), the timestamps, the ``bound`` (``train_max_t1 + embargo``), the ``margin``
    (``holdout_start - bound``, a ``Timedelta``) and ``margin_s``; ``missing`` lists absent or
    unreadable tags, in which case ``holds`` is False and the margin is None.
    """
    need = ("holdout_start", "train_max_t1", "embargo_s")
    missing = [k for k in need if not tags.get(k)]
    out: dict[str, Any] = {"holds": False, "holdout_after_train_end": None, "holdout_start": None,
                           "train_max_t1": None, "embargo": None, "bound": None, "margin": None,
                           "margin_s": None, "missing": missing}
    if missing:
        return out
    try:
        hs, t1 = _as_utc(tags["holdout_start"]), _as_utc(tags["train_max_t1"])
        emb = pd.Timedelta(seconds=float(tags["embargo_s"]))
    except (ValueError, TypeError) as e:
        out["missing"] = [f"unreadable window tags: {e}"]
        return out
    bound = t1 + emb
    margin = hs - bound
    out.update({"holds": bool(hs > bound), "holdout_start": hs, "train_max_t1": t1,
                "embargo": emb, "bound": bound, "margin": margin,
                "margin_s": margin.total_seconds()})
    if tags.get("train_end"):
        try:
            out["holdout_after_train_end"] = bool(hs > _as_utc(tags["train_end"]))
        except ValueError:
            pass
    return out
