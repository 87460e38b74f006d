"""The `clearing` command: one entry point; each subcommand is registered by its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import TypeAlias

from clearing.config import private_state


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand as the top-level help lists it, and the module that registers it.

    The module exposes `register(subparsers)`, adding its parsers with `set_defaults(func=...)`;
    `func(args)` returns the process exit status. It is imported only when one of its
    subcommands runs, so `clearing --help` and the offline commands start without the stream's,
    the ledger's or the web server's libraries.
    """

    name: str
    module: str
    help: str
    aliases: tuple[str, ...] = ()


# In the order the help lists them; a test checks each against what its module registers.
COMMANDS: tuple[Command, ...] = (
    Command("price", "clearing.ops.offline", "price JSON Lines events (stdin when no file)"),
    Command("clear", "clearing.ops.offline", "net a period's priced results into a statement"),
    Command(
        "flags",
        "clearing.ops.flags",
        "fund-safety monitoring flags of JSON Lines events (stdin when no file)",
    ),
    Command(
        "schemas",
        "clearing.ops.schemas",
        "write the published JSON Schemas and the API's OpenAPI document",
    ),
    Command(
        "simulate",
        "clearing.ops.simulate.cli",
        "write a deterministic synthetic bundle (refdata + events.jsonl)",
    ),
    Command("db", "clearing.ops.ledger_cli", "the ledger's database schema"),
    Command("period", "clearing.ops.ledger_cli", "clearing periods: open -> closed -> issued"),
    Command("statement", "clearing.ops.ledger_cli", "print a period's issued statement"),
    Command(
        "reconcile",
        "clearing.ops.ledger_cli",
        "confirm or dispute statements; daily hospital totals",
    ),
    Command(
        "prepayment", "clearing.ops.ledger_cli", "provinces' prepayments (预付金) and their alerts"
    ),
    Command(
        "ledger-load",
        "clearing.ops.ledger_cli",
        "record a results file (output of `clearing price`) in the ledger",
        aliases=("import-results",),
    ),
    Command(
        "publish", "clearing.ops.cli", "publish reference data and raw event lines to the broker"
    ),
    Command("run", "clearing.ops.cli", "price and clear a bundle end to end on the broker"),
    Command("worker", "clearing.ops.cli", "run one stream worker in the foreground"),
    Command(
        "credentials",
        "clearing.ops.credentials_cli",
        "bearer tokens of hospitals, operators and viewers",
    ),
    Command(
        "province",
        "clearing.ops.province_cli",
        "a province node's Kafka login (credential, ACLs, client config)",
    ),
    Command("bench", "clearing.ops.bench.cli", "benchmarks (print figures)"),
)
SUBCOMMAND_MODULES = tuple(dict.fromkeys(command.module for command in COMMANDS))
_BY_NAME = {name: c for c in COMMANDS for name in (c.name, *c.aliases)}


Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _parser() -> tuple[argparse.ArgumentParser, Subparsers]:
    parser = argparse.ArgumentParser(prog="clearing", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    return parser, subparsers


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, every module imported; with `command`, only that command's module.

    `main` takes the second: the other subcommands are then unknown to the parser, which is
    only ever handed an argument list that names `command`.
    """
    parser, subparsers = _parser()
    modules = SUBCOMMAND_MODULES if command is None else (_BY_NAME[command].module,)
    for name in modules:
        importlib.import_module(name).register(subparsers)
    return parser


def help_parser() -> argparse.ArgumentParser:
    """The parser of the command table alone: the top-level help and errors, no import."""
    parser, subparsers = _parser()
    for command in COMMANDS:
        sub = subparsers.add_parser(
            command.name, aliases=list(command.aliases), help=command.help, add_help=False
        )
        sub.set_defaults(func=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    private_state()
    args_list = list(sys.argv[1:] if argv is None else argv)
    first = args_list[0] if args_list else None
    if first not in _BY_NAME:
        # Help, no command or an unknown one: argparse prints and exits from the table alone.
        # A list it accepts all the same (`--` before the command) is parsed again in full.
        args = help_parser().parse_known_args(args_list)[0]
        return main(args_list[args_list.index(args.command) :])
    args = build_parser(first).parse_args(args_list)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
