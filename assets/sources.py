"""Source assets: raw tables, each from one pure source function.

Raw tables are what the source produced before cleansing; the ``cleansed`` group checks them.
Real data sets are only defined when their files are there (``bestex.settings.data_dir()``).
"""


from pathlib import Path

import dagster as dg
import pandas as pd

import sources
from assets._meta import frame_metadata
from assets.cleansed import read_and_cleansed
from models.synthetic_market import SyntheticMarketConfig, generate_market
from sources import DEFAULT_LATENCY_NS
from validation.contracts import empty


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
        raw = sources.read("lobster", path, part=context.partition_key,
                           latency_ns=config.latency_ns)
        raw.setdefault("depth", empty("depth"))  # level 1: no book beyond the touch
        levels = int(context.partition_key.rsplit("_", 1)[1])
        for t in ("quotes", "trades", "depth", "halts"):
            df = raw[t]
            meta = frame_metadata(df)
            meta["levels"] = dg.MetadataValue.int(levels)
            meta["source"] = dg.MetadataValue.path(str(path))
            yield dg.Output(df, t, metadata=meta)

    return lobster


def sp500_assets(data: Path) -> list[dg.AssetsDefinition]:
    """S&P 500 daily bars (survivorship-free), membership, and index daily history.

    The tarball and index readers check rows as they parse them (one pass), so their assets sit in
    the ``cleansed`` group directly; membership is raw, then cleansed like every other table.
    """

    tarball = data / "daily_bars" / "teddykoker_survivorship_free_sp500_daily_csv.tar.xz"
    spans = data / "sp500_membership" / "fja05680_sp500_ticker_start_end.csv"
    changes = data / "sp500_membership" / "javierdejesusda_sp500_historical_changes.csv"

    @dg.asset(key=["raw", "sp500", "membership"], group_name="sources",
              description="S&P 500 membership spans with exit reasons: one row per span.")
    def sp500_membership() -> dg.Output[pd.DataFrame]:
        df = sources.read_membership(spans, changes)
        reasons = df["exit_reason"].value_counts(dropna=False).to_dict()
        return dg.Output(df, metadata=frame_metadata(df) | {
            "exit_reasons": dg.MetadataValue.json({str(k): int(v) for k, v in reasons.items()}),
        })

    return [
        sp500_membership,
        read_and_cleansed("sp500", "daily_bars", lambda: sources.ingest("daily-bars", tarball)["daily_bars"],
                          description=f"Survivorship-free S&P 500 daily bars read from {tarball.name}"),
        read_and_cleansed("index", "daily_bars", lambda: sources.ingest("index", data)["daily_bars"],
                          description="Index daily history (S&P 500, NASDAQ Composite)."),
    ]


def bitmex_assets(data: Path) -> dg.AssetsDefinition:
    """BitMEX XBTUSD/ETHUSD 10-level snapshots and trades from 2020-03-10."""
    crypto = data / "crypto"

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
        for t, df in sources.read("bitmex", crypto).items():
            yield dg.Output(df, t, metadata=frame_metadata(df))

    return bitmex


def landing_assets(folder: Path) -> list[dg.AssetsDefinition]:
    """One cleansed asset per contract table found in the user's landing folder."""
    return [
        read_and_cleansed(
            "landing", table,
            lambda table=table: sources.ingest("landing", folder, tables=[table])[table],
            description=f"The user's own {table} from {folder} (Parquet/CSV parts).",
        )
        for table in sources.landing_tables(folder)
    ]
