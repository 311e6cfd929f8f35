"""Finding LOBSTER files: a zip, a folder, one file of a pair or a (message, orderbook) tuple
into message/order-book pairs named ``SYMBOL_DATE_START_END_{message|orderbook}_N[_tag].csv``,
and :func:`discover_lobster` (the symbol-days of a folder). Re-exported by
:mod:`sources.lobster`, which reads the pairs.

A folder holds one pair per ``SYMBOL_DATE_N``: a CSV beside a zip member of the same name is read
once when the bytes are equal (the zip unpacked in place) and refused when they differ, as is a
second pair of another window or tag. A zip member that cannot be read (bad CRC, bad deflate
stream, encrypted) is a ``ContractError`` naming the zip and the member; a zip cut short (its
directory lost) names the member it ends in."""

from __future__ import annotations

import datetime as dt
import mmap
import re
import zipfile
import zlib
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

    @property
    def key(self) -> str:
        """``SYMBOL_DATE_N``."""
        return day_key(self.symbol, self.date, self.levels)


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
    """Pair (name, display, opener) entries by symbol, date, window, levels and tag.

    One symbol-day at one depth (``SYMBOL_DATE_N``) must come from one pair: a second copy of a
    file (a CSV beside the zip it was unpacked from) is dropped when its bytes are the same, and
    refused when they differ; so is a second pair with another window or tag.
    """
    found: dict[tuple[str, ...], dict[str, tuple[str, _Opener]]] = {}
    for name, display, opener in entries:
        m = _parse_name(name, display)
        if m is None:
            continue
        key = (m["symbol"], m["date"], m["start"], m["end"], m["levels"], m["tag"] or "")
        kinds = found.setdefault(key, {})
        if m["kind"] in kinds:
            _same_or_refuse(where, kinds[m["kind"]], (display, opener))
            continue  # the same bytes twice: keep the first, in name order
        kinds[m["kind"]] = (display, opener)
    pairs: list[_Pair] = []
    for key, kinds in sorted(found.items()):
        if len(kinds) != 2:
            (kind, (display, _)), = kinds.items()
            other = "orderbook" if kind == "message" else "message"
            raise ContractError(f"{display}: LOBSTER {kind} file without its {other} file")
        pair = _Pair(key[0], dt.date.fromisoformat(key[1]), int(key[4]),
                     kinds["message"], kinds["orderbook"])
        twin = next((p for p in pairs if p.key == pair.key), None)
        if twin is not None:
            raise ContractError(
                f"{where}: two LOBSTER pairs for {pair.key}: {twin.message[0]} and "
                f"{pair.message[0]}; keep one of them (one symbol-day at one depth per folder)"
            )
        pairs.append(pair)
    if not pairs:
        raise ContractError(
            f"{where}: no LOBSTER message/orderbook pair "
            "(expected SYMBOL_DATE_START_END_message_N.csv and ..._orderbook_N.csv)"
        )
    return pairs


def _bytes(opener: _Opener) -> bytes:
    src = opener()
    return Path(src).read_bytes() if isinstance(src, str) else src.read()


def _same_or_refuse(where: str, first: tuple[str, _Opener], second: tuple[str, _Opener]) -> None:
    """Raise unless two copies of one LOBSTER file hold the same bytes."""
    try:
        same = _bytes(first[1]) == _bytes(second[1])
    except OSError as exc:
        raise ContractError(f"{where}: cannot compare {first[0]} with {second[0]}: {exc}") from None
    if not same:
        raise ContractError(
            f"{where}: {Path(first[0].rsplit('!', 1)[-1]).name} is there twice and the copies "
            f"differ: {first[0]} and {second[0]}; keep one of them"
        )


_ZIP_ERRORS: Final = (OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError,
                      NotImplementedError, ValueError)
"""What reading a damaged zip raises: bad CRC and bad headers (BadZipFile), a bad deflate stream
(zlib.error), a cut-off member (EOFError), an encrypted or unsupported member (RuntimeError,
NotImplementedError), a bad offset (ValueError, OSError)."""


def _zip_entries(path: Path) -> list[tuple[str, str, _Opener]]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except _ZIP_ERRORS as exc:
        raise ContractError(f"{path}: cannot read zip: {_reason(exc)}{_cut_member(path)}") from None

    def opener(member: str) -> _Opener:
        def _open() -> pa.NativeFile:
            try:
                with zipfile.ZipFile(path) as zf:
                    return pa.BufferReader(zf.read(member))
            except _ZIP_ERRORS as exc:
                raise ContractError(
                    f"{path}: cannot read member {member}: {_reason(exc)}") from None
        return _open

    return [(n, f"{path}!{n}", opener(n)) for n in names if not n.endswith("/")]


def _cut_member(path: Path) -> str:
    """Where a zip that lost its directory (kept at the end of the file) was cut, from the local
    headers of its members: `` (it ends inside member M)``; empty when that cannot be told."""
    member, directory = b"PK\x03\x04", b"PK\x01\x02"
    try:
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            last, at = "", 0
            while data[at:at + 4] == member and at + 30 <= len(data):
                n, extra = (int.from_bytes(data[k:k + 2], "little") for k in (at + 26, at + 28))
                last = data[at + 30:at + 30 + n].decode("utf-8", "replace")
                start = at + 30 + n + extra
                if int.from_bytes(data[at + 6:at + 8], "little") & 8:  # size after the data
                    found = [i for i in (data.find(member, start), data.find(directory, start))
                             if i >= 0]
                    at = min(found) if found else len(data) + 1
                else:
                    at = start + int.from_bytes(data[at + 18:at + 22], "little")
            return f" (it ends inside member {last})" if last and at > len(data) else ""
    except (OSError, ValueError):  # ValueError: an empty file cannot be mapped
        return ""


def _reason(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


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
    Two files with the same key (another time window or tag) keep the first, in name order
    (reading the folder as a whole refuses them: module notes). Returns an empty dict when the
    folder is missing or holds no pair.
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
