"""``loc2 worker``: the engine as the QGIS plugin's long-lived worker process (``worker/server.py``).

Imports nothing beyond the standard library at start, so the worker starts (and reports what is missing)
even in an engine environment that lacks a package.
"""

from __future__ import annotations

import argparse
import sys

from ..worker import protocol as p
from ..worker.server import DEFAULT_IDLE_TIMEOUT_S, Worker, check_engine_imports, protocol_stdout, serve


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "worker",
        help="serve the QGIS plugin: JSON requests on stdin, events on stdout (see core/worker/protocol.py)",
        description="The engine as a long-lived worker process for the QGIS plugin: one JSON request per "
        "line on stdin, one JSON event per line on stdout, the log on stderr.",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT_S,
        metavar="S",
        help=f"exit after this many seconds without a request (default {DEFAULT_IDLE_TIMEOUT_S:.0f})",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="check that this Python has everything the engine needs, print its description and exit",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.check:
        check_engine_imports()  # Loc2Error names a missing package
        info = Worker.describe({"device": "auto"})
        print(p.encode(info).decode("ascii"), end="")
        return 0
    out = protocol_stdout()
    return serve(sys.stdin.fileno(), out, args.idle_timeout)
