"""The ``loc2`` command line: one module per subcommand, as rasterio's ``rio``.

Subcommands: ``localize`` (the pipeline), ``merge`` (a Ray job's result parts into one output), ``demo``, ``train``, ``eval``, ``depth``, ``models``, ``worker``.
Each module of this package provides ``add_parser(subparsers)``, which registers its subcommand and sets
``func`` (``SUBCOMMANDS``); the library modules hold no argparse code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from functools import partial

from ..errors import Loc2Error

# (command, the module that adds its parser), in the order ``loc2 --help`` lists them
SUBCOMMANDS = tuple(
    (command, f"loc2.core.cli.{command}")
    for command in ("localize", "merge", "demo", "train", "eval", "depth", "models", "worker")
)


def _unavailable(command: str, exc: ModuleNotFoundError, _args: argparse.Namespace) -> int:
    raise Loc2Error(
        f"this Python ({sys.executable}) lacks the package {exc.name!r} that 'loc2 {command}' needs: install "
        "the engine's packages into it (pip install -r core/requirements.txt)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand. A subcommand whose module needs a package this Python lacks is still
    listed, and says what is missing when it is run (so ``worker`` starts, and reports, in a broken
    environment)."""
    parser = argparse.ArgumentParser(
        prog="loc2",
        description="Loc2: fine-grained cross-view localization of street-level photos on orthophotos.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command, name in SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that subcommand is not part of this build
                continue
            stub = sub.add_parser(command, help=f"(unavailable here: no module {exc.name!r})", add_help=False)
            stub.set_defaults(func=partial(_unavailable, command, exc))
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        from ..model.runtime import keep_freed_memory, make_cpu_reproducible
    except ImportError:  # no torch in this Python: the commands that need it say so (``worker --check``)
        pass
    else:
        make_cpu_reproducible()  # before any torch computation: MKL reads MKL_CBWR at its first call
        keep_freed_memory()
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not isinstance(getattr(args, "func", None), partial):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
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
