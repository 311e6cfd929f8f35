"""The main job's journey, timed and checked: from nothing to a champion, then the registry drill.

Runs the ``bestex`` CLI as a user would, in a fresh ``BESTEX_HOME`` (a temporary folder unless
``--home`` is given; it must not exist yet or be empty):

1. ``bestex demo``                        -> a champion (v1); wall time <= 300 s is the target
2. ``bestex demo``                        -> a retrained challenger (v2); the gates decide
3. ``bestex demo --degraded-challenger``  -> v3 on shuffled labels; the gates must fail it
4. ``bestex promote 3``                   -> refused (exit 1) with the failed gates; audited
5. ``bestex promote 2``                   -> champion v2, previous-champion v1 (if v2 passed)
6. ``bestex rollback``                    -> champion v1 again
7. ``bestex promote 3 --override``        -> champion v3, override reason in the audit
8. ``bestex rollback``                    -> champion v1 again
9. ``bestex lineage champion``            -> PROOF ... OK (exit 0)

Prints a markdown table (step, seconds, outcome, check) and exits 1 when any check fails.

Usage: ``.venv/bin/python benchmarks/bench_journey.py [--home DIR] [--keep]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BESTEX = [sys.executable, "-m", "bestex.cli"]
DEMO_TARGET_S = 300.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, help="BESTEX_HOME to create (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary BESTEX_HOME")
    args = ap.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="bestex_journey_"))
    if home.exists() and any(home.iterdir()):
        print(f"bench_journey: {home} is not empty; the journey starts from nothing",
              file=sys.stderr)
        return 2
    env = {**os.environ, "BESTEX_HOME": str(home), "MLFLOW_UV_AUTO_DETECT": "false"}
    sys.path.insert(0, str(ROOT))
    os.environ["BESTEX_HOME"] = str(home)
    from pipelines.registry import default_registry

    rows: list[tuple[str, float, str, bool]] = []

    def run(label: str, *argv: str) -> tuple[int, str, float]:
        print(f"- {label}: bestex {' '.join(argv)}", flush=True)
        t0 = time.perf_counter()
        p = subprocess.run([*BESTEX, *argv], cwd=ROOT, env=env, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        (home / "journey_logs").mkdir(exist_ok=True)
        (home / "journey_logs" / f"{len(rows) + 1:02d}.log").write_text(p.stdout + p.stderr)
        return p.returncode, p.stdout + p.stderr, dt

    def state() -> tuple[str | None, str | None]:
        reg = default_registry()
        c, p = reg.champion(), reg.previous()
        return (c.version if c else None), (p.version if p else None)

    def last_audit() -> dict:
        return default_registry().audit().iloc[-1].to_dict()

    rc, _, dt = run("1 first demo", "demo")
    champ, _ = state()
    rows.append(("1 `bestex demo` (fresh home)", dt, f"exit {rc}, champion v{champ}",
                 rc == 0 and champ == "1" and dt <= DEMO_TARGET_S))

    def version(v: str):
        try:
            return default_registry().version(v)
        except LookupError:
            return None

    rc, _, dt = run("2 second demo", "demo")
    v2 = version("2")
    if v2 is None:
        rows.append(("2 `bestex demo` again", dt, f"exit {rc}, no v2 registered", False))
        return _report(rows, home, args)
    rows.append(("2 `bestex demo` again", dt, f"exit {rc}, v2 challenger, gates "
                 f"{'PASS' if v2.gates_passed else 'FAIL: ' + ' | '.join(v2.gate_failures)}",
                 rc == 0 and state()[0] == "1" and "challenger" in v2.aliases))

    rc, _, dt = run("3 degraded challenger", "demo", "--degraded-challenger")
    v3 = version("3")
    if v3 is None:
        rows.append(("3 `bestex demo --degraded-challenger`", dt, f"exit {rc}, no v3", False))
        return _report(rows, home, args)
    failed = [f.split(":")[0] for f in v3.gate_failures]
    rows.append(("3 `bestex demo --degraded-challenger`", dt,
                 f"exit {rc}, v3 gates FAIL ({', '.join(failed)})",
                 rc == 0 and not v3.gates_passed and bool(v3.gate_failures)))

    rc, out, dt = run("4 promote degraded", "promote", "3", "--reason", "journey: try it")
    a = last_audit()
    rows.append(("4 `bestex promote 3`", dt, f"exit {rc}, audit '{a['action']}', champion "
                 f"v{state()[0]}", rc == 1 and a["action"] == "refused" and "REFUSED" in out
                 and state()[0] == "1"))

    if v2.gates_passed:
        rc, _, dt = run("5 promote challenger", "promote", "2", "--reason",
                        "journey: weekly retrain passed its gates")
        champ, prev = state()
        rows.append(("5 `bestex promote 2`", dt, f"exit {rc}, champion v{champ}, previous "
                     f"v{prev}", rc == 0 and (champ, prev) == ("2", "1")))
        rc, _, dt = run("6 rollback", "rollback", "--reason", "journey: restore v1")
        rows.append(("6 `bestex rollback`", dt, f"exit {rc}, champion v{state()[0]}",
                     rc == 0 and state()[0] == "1"))
    else:
        rows.append(("5-6 promote v2 / rollback", 0.0, "skipped: v2 failed its gates", False))

    reason = "journey: knowingly promote the shuffled-label model"
    rc, _, dt = run("7 override", "promote", "3", "--reason", "journey", "--override", reason)
    a = last_audit()
    rows.append(("7 `bestex promote 3 --override`", dt, f"exit {rc}, champion v{state()[0]}, "
                 f"audit '{a['action']}'", rc == 0 and state()[0] == "3"
                 and a["action"] == "override" and a["override_reason"] == reason))

    rc, _, dt = run("8 rollback", "rollback", "--reason", "journey: undo the override")
    rows.append(("8 `bestex rollback`", dt, f"exit {rc}, champion v{state()[0]}",
                 rc == 0 and state()[0] == "1"))

    rc, out, dt = run("9 lineage", "lineage", "champion")
    proof = next((line for line in out.splitlines() if line.startswith("PROOF")), "no PROOF")
    rows.append(("9 `bestex lineage champion`", dt, proof.replace("|", "/"),
                 rc == 0 and proof.endswith(")") and ": OK" in proof))

    return _report(rows, home, args)


def _report(rows: list[tuple[str, float, str, bool]], home: Path, args: argparse.Namespace
            ) -> int:
    print("\n| step | s | outcome | check |\n|---|---:|---|---|")
    for label, dt, outcome, ok in rows:
        print(f"| {label} | {dt:.0f} | {outcome} | {'ok' if ok else 'FAIL'} |")
    if args.home is None and not args.keep:
        shutil.rmtree(home, ignore_errors=True)
        print("\n(the temporary home and its logs are removed; --keep or --home DIR keeps them)")
    else:
        print(f"\nlogs: {home / 'journey_logs'}")
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
