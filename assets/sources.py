"""Source assets: raw tables, each from one pure source function.

Raw tables are what the source produced before cleansing; the ``cleansed`` group checks them.
Real data sets are only defined when their files are there (``bestex.settings.data_dir()``).
"""


from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from assets._meta import frame_metadata
from models.synthetic_market import SyntheticMarketConfig, generate_market
from sources.lobster import DEFAULT_LATENCY_NS


class SyntheticMarketParams(dg.Config):
    """Run config of the synthetic market; fields map onto ``SyntheticMarketConfig``."""

    n_symbols: int = SyntheticMarketConfig.model_fields["n_symbols"].default
    n_sessions: int = 60  # three months: a desk history long enough to learn costs from
    seed: int = SyntheticMarketConfig.model_fields["seed"].default


SYNTH_TABLES = ("quotes", "trades", "daily_bars", "membership")


@dg.multi_asset(
    name="synthetic_market",
    group_name="sources",
    outs={
        **{t: dg.AssetOut(key=["raw", "synth", t], description=f"Synthetic market {t} (raw).")
           for t in SYNTH_TABLES},
        "truth": dg.AssetOut(key=["raw", "synth", "ground_truth"],
                             description="Ground-truth parameters of the synthetic market (JSON)."),
    },
)
def synthetic_market(context: dg.AssetExecutionContext, config: SyntheticMarketParams):
    """The embedded default: N symbols x D sessions on the XNYS calendar, truth kept beside it."""
    cfg = SyntheticMarketConfig(n_symbols=config.n_symbols, n_sessions=config.n_sessions,
                                seed=config.seed)
    market = generate_market(cfg)
    for t in SYNTH_TABLES:
        df = getattr(market, t)
        yield dg.Output(df, t, metadata=frame_metadata(df))
    truth = market.truth.model_dump(mode="json") if hasattr(market.truth, "model_dump") \
        else __import__("json").loads(market.truth.to_json())
    yield dg.Output(truth, "truth", metadata={"seed": cfg.seed})


def _raw_outputs(dataset: str, tables: dict[str, str]) -> dict[str, dg.AssetOut]:
    return {t: dg.AssetOut(key=["raw", dataset, t], description=d) for t, d in tables.items()}


class LobsterParams(dg.Config):
    """Run config of the LOBSTER source."""

    latency_ns: int = DEFAULT_LATENCY_NS  # feed latency: available_at = ts + latency_ns


def lobster_assets(files: dict[str, Path]) -> dg.AssetsDefinition:
    """LOBSTER raw tables partitioned by symbol-day-level (``AMZN_2012-06-21_1``)."""
    from sources.lobster import read_lobster

    partitions = dg.StaticPartitionsDefinition(sorted(files))

    @dg.multi_asset(
        name="lobster",
        group_name="sources",
        partitions_def=partitions,
        outs=_raw_outputs("lobster", {
            "quotes": "LOBSTER level-1 quotes from the order-book file: one row per event.",
            "trades": "LOBSTER executions (visible and hidden): one row per execution message.",
            "depth": "LOBSTER level-N book, long format: one row per (event, level); empty for N=1.",
            "halts": "LOBSTER trading halts and resumptions: one row per type-7 message.",
        }),
    )
    def lobster(context: dg.AssetExecutionContext, config: LobsterParams):
        path = files[context.partition_key]
        day = next(d for d in read_lobster(path, latency_ns=config.latency_ns)
                   if d.key == context.partition_key)
        from validation.contracts import empty

        tables = {"quotes": day.quotes, "trades": day.trades,
                  "depth": day.depth if day.depth is not None else empty("depth"),
                  "halts": day.halts}
        for t, df in tables.items():
            meta = frame_metadata(df)
            meta["levels"] = dg.MetadataValue.int(day.levels)
            meta["source"] = dg.MetadataValue.path(str(path))
            yield dg.Output(df, t, metadata=meta)

    return lobster


def sp500_assets(data: Path) -> list[dg.AssetsDefinition]:
    """S&P 500 daily bars (survivorship-free), membership, and index daily history.

    The tarball and index readers check rows as they parse them (one pass), so their assets sit in
    the ``cleansed`` group directly; membership is raw, then cleansed like every other table.
    """
    from assets.cleansed import read_and_cleansed
    from sources.index_daily import INDEX_FILES, read_index_daily
    from sources.sp500 import read_daily_bars, read_membership
    from validation.quarantine import CleanseResult, concat_quarantine

    tarball = data / "daily_bars" / "teddykoker_survivorship_free_sp500_daily_csv.tar.xz"
    spans = data / "sp500_membership" / "fja05680_sp500_ticker_start_end.csv"
    changes = data / "sp500_membership" / "javierdejesusda_sp500_historical_changes.csv"

    @dg.asset(key=["raw", "sp500", "membership"], group_name="sources",
              description="S&P 500 membership spans with exit reasons: one row per span.")
    def sp500_membership() -> dg.Output[pd.DataFrame]:
        df = read_membership(spans, changes)
        reasons = df["exit_reason"].value_counts(dropna=False).to_dict()
        return dg.Output(df, metadata=frame_metadata(df) | {
            "exit_reasons": dg.MetadataValue.json({str(k): int(v) for k, v in reasons.items()}),
        })

    def _index() -> CleanseResult:
        parts = [read_index_daily(data / rel, sym) for sym, rel in INDEX_FILES.items()]
        return CleanseResult(
            table="daily_bars", source=", ".join(p.source for p in parts),
            rows_in=sum(p.rows_in for p in parts),
            clean=pd.concat([p.clean for p in parts], ignore_index=True),
            quarantine=concat_quarantine([p.quarantine for p in parts]),
        )

    return [
        sp500_membership,
        read_and_cleansed("sp500", "daily_bars", lambda: read_daily_bars(tarball).cleanse,
                          description=f"Survivorship-free S&P 500 daily bars read from {tarball.name}"),
        read_and_cleansed("index", "daily_bars", _index,
                          description="Index daily history (S&P 500, NASDAQ Composite)."),
    ]


def bitmex_assets(data: Path) -> dg.AssetsDefinition:
    """BitMEX XBTUSD/ETHUSD 10-level snapshots and trades from 2020-03-10."""
    from sources.bitmex import read_bitmex_book, read_bitmex_trades

    book = data / "crypto" / "bitmex_2020-03-10_orderbook10_snapshots.csv.gz"
    trades = data / "crypto" / "bitmex_2020-03-10_trades.csv.gz"

    @dg.multi_asset(
        name="bitmex",
        group_name="sources",
        outs=_raw_outputs("bitmex", {
            "quotes": "BitMEX level 1 from 10-level snapshots: one row per snapshot.",
            "depth": "BitMEX 10-level book: one row per (snapshot, level).",
            "trades": "BitMEX trades: one row per trade, aggressor from side.",
        }),
    )
    def bitmex():
        depth, quotes = read_bitmex_book(book)
        tables: dict[str, Any] = {"quotes": quotes, "depth": depth,
                                  "trades": read_bitmex_trades(trades)}
        for t, df in tables.items():
            yield dg.Output(df, t, metadata=frame_metadata(df))

    return bitmex


def landing_assets(folder: Path) -> list[dg.AssetsDefinition]:
    """One cleansed asset per contract table found in the user's landing folder."""
    from assets.cleansed import read_and_cleansed
    from sources.landing import discover_landing, ingest_landing

    return [
        read_and_cleansed(
            "landing", table,
            lambda table=table: ingest_landing(folder, tables=[table])[table],
            description=f"The user's own {table} from {folder} (Parquet/CSV parts).",
        )
        for table in discover_landing(folder)
    ]
