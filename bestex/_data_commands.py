"""``bestex validate`` and ``bestex ingest``: files in, checked by the rules of the one way in
(:func:`sources.cleanse_file`, :func:`sources.ingest`), tables out under a manifest."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bestex._cli_common import EXIT_BAD_INPUT, _fail


# ----------------------------------------------------------------------------- validate
def _cleanse_config(args: argparse.Namespace) -> Any:
    """The market-data rules of ``validate`` / ``ingest landing``: ``--calendar``, ``--epoch-unit``."""
    from validation.cleansing import CleanseConfig

    cal = getattr(args, "calendar", "XNYS")
    return CleanseConfig(calendar=None if str(cal).lower() == "none" else cal,
                         epoch_unit=getattr(args, "epoch_unit", None))


def _naive_note(naive: dict[str, int]) -> str:
    if not naive:
        return ""
    cols = ", ".join(f"{c} {n}" for c, n in naive.items())
    return f"; naive timestamps taken as UTC: {cols}"


def cmd_validate(args: argparse.Namespace) -> int:
    """Check a file by the rules ``ingest`` applies to it (a landing table): what would be
    quarantined, by row (and line), with the rule."""
    import sources

    path = Path(args.file)
    if not path.exists():
        _fail(f"{path}: no such file")
    raw, res = sources.cleanse_file(args.table, path, config=_cleanse_config(args))
    is_csv = path.suffix.lower() == ".csv" or path.name.lower().endswith(".csv.gz")
    lines = sources.data_lines(path, len(raw)) if is_csv else None
    q = res.quarantine
    rules = "the contract" + (" and the market rules of ingest" if args.table in
                              ("quotes", "trades", "depth") else "")
    if not len(q):
        print(f"{path}: {len(raw)} rows meet the {args.table} contract ({rules})"
              f"{_naive_note(dict(res.naive_utc))}")
        return 0
    key_col = next((c for c in ("order_id", "symbol") if c in raw.columns), None)
    shown = q if args.max_errors <= 0 else q.head(args.max_errors)
    for row, detail in zip(shown["row"].tolist(), shown["detail"].tolist(), strict=True):
        line = "" if not is_csv else f" (line {row + 2 if lines is None else lines[row]})"
        key = f" ({key_col}={raw[key_col].iat[row]})" if key_col else ""
        print(f"{path} row {row}{line}{key}: {detail}")
    if len(shown) < len(q):
        print(f"... {len(q) - len(shown)} more rows (use --max-errors 0 to list all)")
    by_rule = ", ".join(f"{r} {n}" for r, n in res.counts_by_rule.items())
    print(f"{path}: {len(q)} of {len(raw)} rows would be quarantined by {rules} ({by_rule}); "
          f"{len(res.clean)} rows pass{_naive_note(dict(res.naive_utc))}", file=sys.stderr)
    return EXIT_BAD_INPUT


# ----------------------------------------------------------------------------- ingest
MANIFEST = "bestex_manifest.json"
"""Written last into every ``--out`` folder of ``bestex ingest``: what run wrote it."""


def _prepare_out(out: Path) -> Path:
    """A fresh temporary folder beside ``out``; ``out`` itself must be new, empty, or an earlier
    ``bestex ingest`` output (it has :data:`MANIFEST`), which :func:`_commit_out` replaces whole."""
    import shutil

    if out.exists() and not out.is_dir():
        _fail(f"{out}: --out exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        _fail(f"{out}: --out is a folder with files that bestex ingest did not write (no "
              f"{MANIFEST}); name a new or empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def _commit_out(tmp: Path, out: Path, report: dict[str, Any]) -> None:
    """Write the manifest into ``tmp``, then put ``tmp`` in the place of ``out`` (an earlier run's
    tables do not survive beside the new ones)."""
    import shutil
    from datetime import UTC, datetime
    from importlib.metadata import version

    files = sorted(p.name for p in tmp.iterdir())
    manifest = {"written_by": f"bestex {version('bestex')}", "command": sys.argv[1:],
                "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "files": {f: (tmp / f).stat().st_size for f in files}, "report": report}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    old = out.parent / f".{out.name}.replaced"
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def _write_parquet(df: Any, path: Path) -> None:
    import warnings

    import pyarrow as pa
    import pyarrow.parquet as pq
    from pandas.errors import Pandas4Warning

    with warnings.catch_warnings():  # pyarrow reads Series.values of tz-aware columns
        warnings.simplefilter("ignore", Pandas4Warning)
        table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path)


def _write_results(results: dict[str, Any], out: Path, prefix: str) -> dict[str, Any]:
    """Write each CleanseResult's clean/quarantine(/outages) tables; return the JSON summary."""
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    for table, res in results.items():
        base = f"{prefix}_{table}" if prefix else table
        _write_parquet(res.clean, out / f"{base}.parquet")
        _write_parquet(res.quarantine, out / f"{base}_quarantine.parquet")
        _write_parquet(res.outages, out / f"{base}_outages.parquet")
        summary[table] = {
            "input": res.rows_in,
            "clean": len(res.clean),
            "quarantined": len(res.quarantine),
            "by_rule": res.counts_by_rule,
            "outages": len(res.outages),
        }
        if res.naive_utc:
            summary[table]["naive_timestamps_taken_as_utc"] = dict(res.naive_utc)
    return summary


def _latency(args: argparse.Namespace) -> dict[str, int]:
    return {} if args.latency_ns is None else {"latency_ns": args.latency_ns}


def cmd_ingest(args: argparse.Namespace) -> int:
    import shutil

    path = Path(args.path)
    out = Path(args.out)
    if not path.exists():
        _fail(f"{path}: no such file or folder")
    if args.source != "landing" and (args.epoch_unit or args.calendar != "XNYS"):
        _fail(f"--epoch-unit and --calendar apply to landing files only, not {args.source}")
    tmp = _prepare_out(out)
    try:
        report = _ingest_into(args, path, tmp)
        report["out"] = str(out)
        _commit_out(tmp, out, report)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(report, indent=2, default=str))
    return 0


def _ingest_into(args: argparse.Namespace, path: Path, out: Path) -> dict[str, Any]:
    import sources

    report: dict[str, Any] = {"source": args.source, "input": str(path)}
    if args.source == "lobster":
        report["days"] = []
        for part in sources.parts("lobster", path):
            day = sources.ingest("lobster", path, part=part, **_latency(args))
            prefix = day.part  # SYMBOL_DATE_LEVELS: the _1 and _10 files of one day don't collide
            tables = _write_results(dict(day.results), out, prefix)
            halts = day.extras["halts"]
            _write_parquet(halts, out / f"{prefix}_halts.parquet")
            m = day.meta
            report["days"].append({"key": m["key"], "symbol": m["symbol"], "date": str(m["date"]),
                                   "levels": m["levels"], "events": m["events"],
                                   "halts": len(halts), "tables": tables})
    else:
        source = args.source
        if source == "bitmex":
            got = sources.ingest(source, path, trades=args.trades, **_latency(args))
        elif source == "landing":
            got = sources.ingest(source, path, config=_cleanse_config(args))
        else:
            got = sources.ingest(source, path)
        report["tables"] = _write_results(dict(got.results), out,
                                          "bitmex" if source == "bitmex" else "")
    return report
