"""Cleansed assets: every raw table checked against its contract, bad rows quarantined.

One factory builds, for a (dataset, table) pair, a multi-asset with three outputs —
``cleansed/<dataset>/<table>`` (the clean rows), ``quarantine/<dataset>/<table>`` (one row per
rejected source row, with its rule) and ``outages/<dataset>/<table>`` (feed gaps) — and two
blocking checks on the clean table: the row counts reconcile, and the clean rows meet the
contract. A failure puts its evidence (failure cases) in the check's metadata.
"""


from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import pandas as pd

from assets._meta import cleanse_metadata, frame_metadata
from assets._plots import quarantine_plot
from validation.contracts import split_valid
from validation.quarantine import CleanseResult

Cleanser = Callable[[str, pd.DataFrame, str], CleanseResult]

_GRAIN = {
    "quotes": "one row per top-of-book update",
    "depth": "one row per (book update, level)",
    "trades": "one row per trade",
    "daily_bars": "one row per (date, symbol)",
    "membership": "one row per membership span",
}


def _failure_cases(result: CleanseResult, per_rule: int = 3) -> list[dict[str, Any]]:
    q = result.quarantine
    if q.empty:
        return []
    sample = q.groupby("rule", sort=False).head(per_rule)
    return sample[["row", "rule", "detail", "record"]].to_dict(orient="records")


def _outs(dataset: str, table: str, grain: str) -> dict[str, dg.AssetOut]:
    return {
        "clean": dg.AssetOut(key=["cleansed", dataset, table],
                             description=f"{dataset} {table}, cleansed: {grain}."),
        "quarantine": dg.AssetOut(
            key=["quarantine", dataset, table],
            description=f"Rejected {dataset} {table} rows: one row per source row, with the rule.",
        ),
        "outages": dg.AssetOut(
            key=["outages", dataset, table],
            description=f"Feed gaps in {dataset} {table}: one row per in-session gap.",
        ),
    }


def _checks(clean_key: dg.AssetKey, table: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec("rows_reconcile", asset=clean_key, blocking=True,
                          description="rows in == rows clean + rows quarantined"),
        dg.AssetCheckSpec("meets_contract", asset=clean_key, blocking=True,
                          description=f"every clean row meets the {table} contract (pandera)"),
    ]


def _emit(result: CleanseResult, clean_key: dg.AssetKey, table: str) -> Iterator[Any]:
    """Outputs (clean, quarantine, outages) and the two check results of one cleansing."""
    yield dg.Output(result.clean, "clean", metadata=cleanse_metadata(result))
    q_meta = frame_metadata(result.quarantine)
    q_meta["by_rule"] = dg.MetadataValue.json(result.counts_by_rule)
    plot = quarantine_plot(result.counts_by_rule, clean_key.to_user_string())
    if plot is not None:
        q_meta["plot"] = dg.MetadataValue.path(str(plot))
    yield dg.Output(result.quarantine, "quarantine", metadata=q_meta)
    yield dg.Output(result.outages, "outages", metadata=frame_metadata(result.outages))
    yield dg.AssetCheckResult(
        check_name="rows_reconcile",
        asset_key=clean_key,
        passed=result.reconciles,
        metadata={
            "rows_in": result.rows_in,
            "rows_clean": len(result.clean),
            "rows_quarantined": len(result.quarantine),
            "by_rule": dg.MetadataValue.json(result.counts_by_rule),
            "failure_cases": dg.MetadataValue.json(_failure_cases(result)),
        },
    )
    _, failures = split_valid(table, result.clean, source=result.source)
    yield dg.AssetCheckResult(
        check_name="meets_contract",
        asset_key=clean_key,
        passed=not failures,
        metadata={
            "failures": len(failures),
            "failure_cases": dg.MetadataValue.json([f.__dict__ for f in failures[:20]]),
        },
    )


def cleansed_table(
    dataset: str,
    table: str,
    cleanse: Cleanser,
    *,
    partitions_def: dg.PartitionsDefinition | None = None,
) -> dg.AssetsDefinition:
    """Build the cleansing multi-asset of ``raw/<dataset>/<table>``."""
    clean_key = dg.AssetKey(["cleansed", dataset, table])

    @dg.multi_asset(
        name=f"cleanse_{dataset}_{table}",
        group_name="cleansed",
        partitions_def=partitions_def,
        ins={"raw": dg.AssetIn(["raw", dataset, table])},
        outs=_outs(dataset, table, _GRAIN.get(table, "one row per record")),
        check_specs=_checks(clean_key, table),
    )
    def _cleanse(context: dg.AssetExecutionContext, raw: pd.DataFrame) -> Iterator[Any]:
        source = f"raw/{dataset}/{table}" + (
            f"[{context.partition_key}]" if context.has_partition_key else ""
        )
        yield from _emit(cleanse(table, raw, source), clean_key, table)

    return _cleanse


def read_and_cleansed(
    dataset: str, table: str, read: Callable[[], CleanseResult], *, description: str
) -> dg.AssetsDefinition:
    """Build a cleansed multi-asset for a source whose reader checks rows as it reads them.

    Used where reading and checking in one pass is much faster than a raw table followed by a
    pandera pass (the S&P 500 tarball, the index files); the outputs and checks are the same as
    ``cleansed_table``'s.
    """
    clean_key = dg.AssetKey(["cleansed", dataset, table])

    @dg.multi_asset(
        name=f"read_cleanse_{dataset}_{table}",
        group_name="cleansed",
        outs=_outs(dataset, table, _GRAIN.get(table, "one row per record")),
        check_specs=_checks(clean_key, table),
        description=description,
    )
    def _read_cleanse() -> Iterator[Any]:
        yield from _emit(read(), clean_key, table)

    return _read_cleanse
