"""The ``loc2`` command line: one subcommand per job; each module contributes its own parser.

Subcommands: ``localize`` (pipeline), ``demo``, ``train``, ``eval``, ``depth``, ``models``.
Each module provides ``add_parser(subparsers)`` that registers its subcommand and sets ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import Loc2Error

SUBCOMMAND_MODULES = (
    "loc2.core.cli_localize",
    "loc2.core.demo",
    "loc2.core.train",
    "loc2.core.evaluation",
    "loc2.core.depth_models",
    "loc2.core.models",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loc2",
        description="Loc2: fine-grained cross-view localization of street-level photos on orthophotos.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that subcommand is not part of this build
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except Loc2Error as exc:
        print(f"loc2 {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"loc2 {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
