"""The `clearing` command's table of subcommands: complete, and imported only when used."""

from __future__ import annotations

import argparse
import subprocess
import sys

from support.paths import CASES

from clearing import cli

HEAVY = ("faust", "aiohttp", "sqlalchemy", "aiokafka", "alembic")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def registered() -> list[tuple[str, str | None, tuple[str, ...]]]:
    """(name, help, aliases) of every subcommand the modules register, in order."""
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in action._choices_actions}
    out: list[tuple[str, str | None, tuple[str, ...]]] = []
    seen: dict[int, str] = {}
    for name, sub in action.choices.items():
        if id(sub) in seen:  # an alias of the command registered just before
            primary = out[-1]
            out[-1] = (primary[0], primary[1], (*primary[2], name))
            continue
        seen[id(sub)] = name
        out.append((name, helps.get(name), ()))
    return out


def test_the_table_is_what_the_modules_register() -> None:
    table = [(c.name, c.help, c.aliases) for c in cli.COMMANDS]
    assert table == registered()


def test_help_lists_every_subcommand_without_importing_them() -> None:
    run = run_python(
        "import sys\n"
        "from clearing import cli\n"
        "try:\n"
        "    cli.main(['--help'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        f"print('LOADED', sorted(m for m in {HEAVY + ('pydantic',)!r} if m in sys.modules))\n"
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.rstrip().endswith("LOADED []")
    listing = run.stdout.split("positional arguments:")[1].split("options:")[0]
    for command in cli.COMMANDS:
        assert f"    {command.name} " in listing or f"    {command.name}\n" in listing
        assert command.help.split()[0] in listing
    for alias in ("import-results",):
        assert f"({alias})" in listing


def test_importing_the_cli_imports_no_framework() -> None:
    run = run_python(
        "import sys\n"
        "import clearing.cli\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_price_runs_without_the_stream_ledger_or_web_libraries() -> None:
    run = run_python(
        "import io, sys\n"
        "from clearing import cli\n"
        "sys.stdout = io.TextIOWrapper(io.BytesIO())\n"
        f"status = cli.main(['price', '--refdata', {str(CASES / 'refdata')!r}, "
        f"{str(CASES / 'events.jsonl')!r}])\n"
        "sys.stdout = sys.__stdout__\n"
        f"print(status, sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "0 []"


def test_unknown_and_missing_commands_are_usage_errors() -> None:
    for args in ([], ["nope"]):
        run = subprocess.run(
            [sys.executable, "-m", "clearing.cli", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 2
        assert run.stderr.startswith("usage: clearing [-h] COMMAND ...")
    run = subprocess.run(
        [sys.executable, "-m", "clearing.cli", "nope"], capture_output=True, text=True, check=False
    )
    assert "invalid choice: 'nope'" in run.stderr and "'price'" in run.stderr


def test_a_command_parses_with_its_own_module_only() -> None:
    args = cli.build_parser("ledger-load").parse_args(["import-results", "--results", "r.jsonl"])
    assert args.func is not None
    args = cli.build_parser("price").parse_args(["price", "--refdata", "x"])
    assert args.func.__name__ == "run_price"
