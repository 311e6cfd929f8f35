"""Finding LOBSTER files: a zip, a folder, one file of a pair or a (message, orderbook) tuple
into message/order-book pairs named ``SYMBOL_DATE_START_END_{message|orderbook}_N[_tag].csv``,
and :func:`discover_lobster` (the symbol-days of a folder). Re-exported by
:mod:`sources.lobster`, which reads the pairs."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa

from validation.contracts import ContractError

FILE_NAME: Final = re.compile(
    r"^(?P<symbol>[A-Za-z0-9.\-]+)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)_"
    r"(?P<kind>message|orderbook)_(?P<levels>\d+)(?P<tag>_[A-Za-z0-9\-]+)?\.csv$"
)
"""``SYMBOL_DATE_START_END_{message|orderbook}_N[_tag].csv``."""


def day_key(symbol: str, date: dt.date, levels: int) -> str:
    """``SYMBOL_DATE_N``, the key of :func:`discover_lobster` and :attr:`LobsterDay.key`."""
    return f"{symbol}_{date}_{levels}"


# ----------------------------------------------------------------------------- finding files
_Opener = Callable[[], "str | pa.NativeFile"]


@dataclass(frozen=True)
class _Pair:
    symbol: str
    date: dt.date
    levels: int
    message: tuple[str, _Opener]
    orderbook: tuple[str, _Opener]


def _parse_name(name: str, where: str) -> re.Match[str] | None:
    m = FILE_NAME.match(Path(name).name)
    if m is None:
        return None
    try:
        dt.date.fromisoformat(m["date"])
    except ValueError:
        raise ContractError(f"{where}: file name has an invalid date {m['date']!r}") from None
    return m


def _pairs(entries: Sequence[tuple[str, str, _Opener]], where: str) -> list[_Pair]:
    """Pair (name, display, opener) entries by symbol, date, window, levels and tag."""
    found: dict[tuple[str, ...], dict[str, tuple[str, _Opener]]] = {}
    for name, display, opener in entries:
        m = _parse_name(name, display)
        if m is None:
            continue
        key = (m["symbol"], m["date"], m["start"], m["end"], m["levels"], m["tag"] or "")
        found.setdefault(key, {})[m["kind"]] = (display, opener)
    pairs = []
    for key, kinds in sorted(found.items()):
        if len(kinds) != 2:
            (kind, (display, _)), = kinds.items()
            other = "orderbook" if kind == "message" else "message"
            raise ContractError(f"{display}: LOBSTER {kind} file without its {other} file")
        pairs.append(_Pair(key[0], dt.date.fromisoformat(key[1]), int(key[4]),
                           kinds["message"], kinds["orderbook"]))
    if not pairs:
        raise ContractError(
            f"{where}: no LOBSTER message/orderbook pair "
            "(expected SYMBOL_DATE_START_END_message_N.csv and ..._orderbook_N.csv)"
        )
    return pairs


def _zip_entries(path: Path) -> list[tuple[str, str, _Opener]]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise ContractError(f"{path}: cannot read zip: {exc}") from None

    def opener(member: str) -> _Opener:
        def _open() -> pa.NativeFile:
            with zipfile.ZipFile(path) as zf:
                return pa.BufferReader(zf.read(member))
        return _open

    return [(n, f"{path}!{n}", opener(n)) for n in names if not n.endswith("/")]


def _file_entry(p: Path) -> tuple[str, str, _Opener]:
    return (p.name, str(p), lambda: str(p))


def _locate(path: str | Path | tuple[str | Path, str | Path]) -> list[_Pair]:
    if isinstance(path, tuple):
        files = [Path(p) for p in path]
        for f in files:
            if not f.is_file():
                raise ContractError(f"{f}: no such file")
        return _pairs([_file_entry(f) for f in files], " + ".join(map(str, files)))
    p = Path(path)
    if p.is_dir():
        entries: list[tuple[str, str, _Opener]] = []
        for f in sorted(p.iterdir()):
            if f.suffix.lower() == ".zip":
                entries += _zip_entries(f)
            elif f.suffix.lower() == ".csv":
                entries.append(_file_entry(f))
        return _pairs(entries, str(p))
    if not p.is_file():
        raise ContractError(f"{p}: no such file or folder")
    if p.suffix.lower() == ".zip":
        return _pairs(_zip_entries(p), str(p))
    m = _parse_name(p.name, str(p))
    if m is None:
        raise ContractError(
            f"{p}: not a LOBSTER file name (expected SYMBOL_DATE_START_END_message_N.csv, "
            "..._orderbook_N.csv or a zip of them)"
        )
    other = "orderbook" if m["kind"] == "message" else "message"
    partner = p.with_name(p.name.replace(f"_{m['kind']}_", f"_{other}_", 1))
    if not partner.is_file():
        raise ContractError(f"{p}: LOBSTER {m['kind']} file without its {other} file {partner.name}")
    return _pairs([_file_entry(p), _file_entry(partner)], str(p))


def discover_lobster(folder: str | Path) -> dict[str, Path]:
    """Map ``SYMBOL_DATE_N`` to the zip or message file that holds it, for a folder of LOBSTER data.

    ``N`` is the book depth: the ``_1``, ``_5`` and ``_10`` files of one symbol-day are three keys
    (``AMZN_2012-06-21_1``, ...), equal to :attr:`LobsterDay.key` of the day read from the file.
    Two files with the same key (another time window or tag) keep the first, in name order.
    Returns an empty dict when the folder is missing or holds no pair.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    out: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        try:
            pairs = _locate(f) if f.suffix.lower() in (".zip", ".csv") else []
        except ContractError:
            continue
        for pair in pairs:
            out.setdefault(day_key(pair.symbol, pair.date, pair.levels), f)
    return out
