"""``python -m aurora_sim.realdb [status|start|stop]``: the workbook's shared PostgreSQL, from a shell.

The server starts on first use and keeps running for later notebooks, endpoints and tests; ``stop`` ends it
(``make clean`` runs it too). ``--home`` names another folder than the per-user default (the tests use one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aurora_sim.realdb import shared
from aurora_sim.realdb.startup import shared_server


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m aurora_sim.realdb", description=__doc__)
    parser.add_argument("action", choices=("status", "start", "stop"), nargs="?", default="status")
    parser.add_argument("--home", type=Path, default=None,
                        help=f"the shared server's folder (default: {shared.default_home()})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one action and print what happened; returns the exit status (1 when start finds no PostgreSQL)."""
    args = _arguments(argv)
    if args.action == "stop":
        stopped = shared.stop(args.home)
        print(f"stopped postmaster {', '.join(map(str, stopped))}" if stopped else "no shared PostgreSQL was running")
        return 0
    if args.action == "start":
        pg = shared_server(args.home)
        print(pg.detail)
        print(pg.dsn or "")
        return 0 if pg.available else 1
    print("\n".join(shared.status(args.home)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
