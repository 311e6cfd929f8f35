"""``bestex services up|down|status``: the local PostgreSQL server of ``bestex.services``."""

from __future__ import annotations

import argparse
import json
import sys

from bestex._cli_common import BadInput

__all__ = ["add_services_commands", "cmd_services"]

EXIT_SERVICE_FAILED = 1


def _print_status(st: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(st, indent=2, default=str))
        return
    state = f"running (pid {st['pid']})" if st["running"] else "stopped"
    print(f"postgres: {state} on {st['host']}:{st['port']}  data {st['data_dir']}")
    for db, info in st.get("databases", {}).items():
        rows = ", ".join(f"{t}={n}" for t, n in info["rows"].items()) or "no known tables yet"
        print(f"  {db}: {info['size_bytes'] / 1e6:.1f} MB; {rows}")


def cmd_services(args: argparse.Namespace) -> int:
    """Bring the services up, down, or report them; exit 1 when the server cannot be handled."""
    from bestex import services, settings

    home = settings.home()
    action = {"up": services.up, "down": services.down, "status": services.status}.get(args.action)
    if action is None:
        raise BadInput(f"services {args.action!r}: choose one of up, down, status")
    try:
        st = action(home)
    except services.ServicesError as exc:
        print(f"bestex services {args.action}: {exc}", file=sys.stderr)
        return EXIT_SERVICE_FAILED
    _print_status(st, args.json)
    if args.action == "up" and not st["running"]:
        return EXIT_SERVICE_FAILED
    return 0


def add_services_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("services", help="the local PostgreSQL server under BESTEX_HOME/services "
                       "(Optuna, and MLflow/Dagster with BESTEX_PROFILE=services)")
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=cmd_services)
