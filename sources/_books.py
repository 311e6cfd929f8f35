"""Recorded books as the replays read them: every symbol-day of a LOBSTER zip/folder/CSV pair
or a BitMEX snapshot file, cleansed through :func:`sources.ingest`, as a
:class:`models.desk_history.RecordedBook` (used by ``bestex score``, the real-book training
rows and the leave-one-real-book-out stage)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from models.desk_history import RecordedBook
from sources._ingest import BITMEX_BOOK, ingest, parts
from validation.contracts import ContractError

__all__ = ["book_kind", "real_books", "recorded_books"]


def book_kind(path: Path) -> str:
    """``lobster`` for a zip, a LOBSTER CSV or a folder without the BitMEX book file;
    ``bitmex`` for a ``.csv.gz`` snapshot file or a folder holding one."""
    name = path.name.lower()
    if path.is_dir():
        return "bitmex" if (path / BITMEX_BOOK).is_file() else "lobster"
    if name.endswith(".zip") or (name.endswith(".csv")
                                 and ("_message_" in name or "_orderbook_" in name)):
        return "lobster"
    if name.endswith(".csv.gz"):
        return "bitmex"
    raise ContractError(f"{path}: not a book bestex can score: give a LOBSTER zip, folder or "
                        "CSV pair, or a BitMEX snapshot file (.csv.gz) with its trades")


def recorded_books(path: str | Path, *, trades: str | Path | None = None
                   ) -> list[tuple[RecordedBook, str]]:
    """Every symbol-day of the book at ``path`` as a cleansed :class:`RecordedBook`, with its
    kind (``equity`` or ``crypto``), through :func:`sources.ingest`."""
    p = Path(path)
    if not p.exists():
        raise ContractError(f"{p}: no such file or folder")
    out: list[tuple[RecordedBook, str]] = []
    if book_kind(p) == "lobster":
        for part in parts("lobster", p):
            got = ingest("lobster", p, part=part)
            book = RecordedBook.of(got.clean("quotes"), got.clean("trades"), got.meta["symbol"],
                                   str(got.meta.get("source") or p))
            out.append((book, "equity"))
    else:
        got = ingest("bitmex", p, trades=trades)
        quotes, tr = got.clean("quotes"), got.clean("trades")
        for symbol in sorted(quotes["symbol"].astype(str).unique()):
            out.append((RecordedBook.of(quotes, tr, symbol, str(p)), "crypto"))
    keep = [(b, k) for b, k in out if len(b.quotes) and len(b.trades)]
    if not keep:
        raise ContractError(f"{p}: no symbol-day with clean quotes and trades to replay on")
    return keep


def real_books(data_dir: Path | None, landing_dir: Path | None = None, *,
               warn: Callable[[str], None] | None = None) -> list[tuple[RecordedBook, str]]:
    """Every real book a desk history can be replayed on: the LOBSTER days of
    ``data_dir/lobster``, the BitMEX symbols of ``data_dir/crypto``, and any LOBSTER zip in
    ``landing_dir`` (or its ``lobster`` subfolder). A book that cannot be read is skipped with
    the reason passed to ``warn``; none found is an empty list."""
    say = warn or (lambda _m: None)
    paths: list[Path] = []
    if data_dir is not None:
        paths += [data_dir / "lobster", data_dir / "crypto" / BITMEX_BOOK]
    if landing_dir is not None:
        for folder in (landing_dir, landing_dir / "lobster"):
            if folder.is_dir():
                paths += sorted(folder.glob("*.zip"))
    out: list[tuple[RecordedBook, str]] = []
    for p in paths:
        if not p.exists():
            continue
        try:
            out += recorded_books(p)
        except (ContractError, OSError) as exc:
            say(f"{p}: left out: {exc}")
    return out
