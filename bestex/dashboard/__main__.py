"""``python -m bestex.dashboard``: serve the paper-trading dashboard until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["main"]


def _default_journal(home: Path) -> Path:
    """The newest journal under ``home/paper`` (else that of ``bestex paper --feed synth``)."""
    found = sorted((home / "paper").glob("*.db"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else home / "paper" / "paper-synth.db"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bestex.dashboard",
                                description="live dashboard of a paper-trading session")
    p.add_argument("--journal", default=None,
                   help="the session's journal (default: the newest BESTEX_HOME/paper/*.db)")
    p.add_argument("--home", default=None, help="BESTEX_HOME (default: $BESTEX_HOME)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8050)
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback host")
    p.add_argument("--refresh-ms", type=int, default=1000)
    args = p.parse_args(argv)

    from bestex import settings
    from bestex.dashboard.app import TOKEN_ENV, check_host, create_app, load_token, serve

    try:
        check_host(args.host, allow_remote=args.allow_remote)
    except ValueError as exc:
        print(f"dashboard: {exc}", file=sys.stderr)
        return 2
    home = Path(args.home).resolve() if args.home else settings.home()
    journal = Path(args.journal) if args.journal else _default_journal(home)
    token, where = load_token(home)
    app = create_app(journal, token=token, home=home, refresh_ms=args.refresh_ms)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = serve(app, args.host, args.port)
    print(f"Dashboard: http://{args.host}:{args.port}   journal {journal}", flush=True)
    if where is None:
        print(f"dashboard: kill API token from ${TOKEN_ENV}", flush=True)
    else:
        print(f"dashboard: kill API token {token} (also in {where}, mode 0600)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
