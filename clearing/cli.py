"""The `clearing` command: one entry point; each subcommand is registered by its own module."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module exposes `register(subparsers)`, adding its parsers with `set_defaults(func=...)`;
# `func(args)` returns the process exit status.
SUBCOMMAND_MODULES = (
    "clearing.offline",
    "clearing.schemas",
    "clearing.simulate",
    "clearing.ledger.cli",
    "clearing.stream.cli",
    "clearing.bench.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clearing", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
