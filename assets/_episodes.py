"""The stress stage's real inputs, ingested the one way (:func:`sources.ingest`): the recorded
episodes' cleansed books and the S&P 500 index bars."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pandas as pd

import sources
from validation.contracts import ContractError
from validation.stress import EPISODE_SYMBOLS, EpisodeBook

AMZN_LOBSTER: Final = "lobster/LOBSTER_SampleFile_AMZN_2012-06-21_1.zip"
_FILES: Final = {"bitmex_2020_03_10": ("bitmex", "crypto", None),
                 "amzn_2012_06_21": ("lobster", AMZN_LOBSTER, "AMZN_2012-06-21_1")}


def episode_books(data_dir: str | Path | None) -> dict[str, EpisodeBook | str]:
    """Each recorded episode's :class:`validation.stress.EpisodeBook`, or why it is missing."""
    if data_dir is None:
        return {name: "no data folder (BESTEX_DATA)" for name in _FILES}
    out: dict[str, EpisodeBook | str] = {}
    for name, (source, rel, part) in _FILES.items():
        path = Path(data_dir) / rel
        try:
            got = sources.ingest(source, path, part=part)
        except (ContractError, OSError) as exc:
            out[name] = str(exc)
            continue
        out[name] = EpisodeBook.of(got.clean("quotes"), got.clean("trades"),
                                   EPISODE_SYMBOLS[name], got.meta.get("source") or str(path))
    return out


def index_bars(data_dir: str | Path | None) -> pd.DataFrame | str | None:
    """Cleansed S&P 500 index daily bars (``SPX``), why they are missing, or None without data."""
    if data_dir is None:
        return None
    try:
        return sources.ingest("index", data_dir, symbols=["SPX"]).clean("daily_bars")
    except (ContractError, OSError) as exc:
        return str(exc)
