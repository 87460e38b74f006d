"""The `clearing` command: one entry point; each subcommand is registered by its own module."""

from __future__ import annotations

import argparse
import importlib
import sys

from clearing.config import private_state

# Each module exposes `register(subparsers)`, adding its parsers with `set_defaults(func=...)`;
# `func(args)` returns the process exit status.
SUBCOMMAND_MODULES = (
    "clearing.ops.offline",
    "clearing.ops.flags",
    "clearing.ops.schemas",
    "clearing.ops.simulate.cli",
    "clearing.ops.ledger_cli",
    "clearing.ops.cli",
    "clearing.ops.credentials_cli",
    "clearing.ops.province_cli",
    "clearing.ops.bench.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clearing", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    private_state()
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
