"""`clearing flags`: the fund-safety monitoring flags (智能监控) of a JSON Lines event log.

The events are priced exactly as `clearing price` prices them, and every priced settlement and
reversal is shown to the monitor (`clearing.core.monitoring`). Flags are printed one JSON
object per line, in the order raised; at the end of the input every period in it counts as
closed, so the period rule's flags follow, periods ascending, hospitals sorted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from clearing.core.models.flags import Flag
from clearing.core.monitoring import DEFAULT_SETTINGS, Monitor, MonitorSettings
from clearing.core.pricer import Pricer
from clearing.core.refdata import RefDataError
from clearing.ops.bundle import load_refdata
from clearing.ops.offline import lines_of, open_input


def flag_json(flag: Flag) -> bytes:
    return orjson.dumps(flag.model_dump()) + b"\n"


def flag_lines(pricer: Pricer, monitor: Monitor, lines: Iterable[bytes]) -> Iterator[bytes]:
    """The flags of the events in order, then those of every period closing at the end."""
    for raw in lines:
        event, result = pricer.process_event(raw)
        for flag in monitor.observe(event, result):
            yield flag_json(flag)
    for period in monitor.periods():
        for flag in monitor.close_period(period):
            yield flag_json(flag)


def run_flags(args: argparse.Namespace) -> int:
    try:
        refdata = load_refdata(args.refdata)
    except (RefDataError, OSError) as exc:
        print(f"clearing flags: {exc}", file=sys.stderr)
        return 2
    settings = MonitorSettings(
        readmission_days=args.readmission_days,
        min_settlements=args.min_settlements,
        max_reversal_rate_bp=args.max_reversal_rate_bp,
    )
    out = sys.stdout.buffer
    try:
        with open_input(args.events) as handle:
            for chunk in flag_lines(Pricer(refdata), Monitor(settings), lines_of(handle, "flags")):
                out.write(chunk)
    except OSError as exc:
        print(f"clearing flags: {exc}", file=sys.stderr)
        return 2
    out.flush()
    return 0


def count_arg(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, not {value!r}")
    return int(value)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    flags = subparsers.add_parser(
        "flags", help="fund-safety monitoring flags of JSON Lines events (stdin when no file)"
    )
    flags.add_argument("--refdata", required=True, type=Path, help="reference-data folder")
    flags.add_argument("events", nargs="?", help="events file (JSON Lines)")
    flags.add_argument(
        "--readmission-days",
        type=count_arg,
        default=DEFAULT_SETTINGS.readmission_days,
        help="QUICK_READMISSION: most days from discharge to readmission (default %(default)s)",
    )
    flags.add_argument(
        "--min-settlements",
        type=count_arg,
        default=DEFAULT_SETTINGS.min_settlements,
        help="HIGH_REVERSAL_RATE: fewest settlements of a hospital in a period "
        "(default %(default)s)",
    )
    flags.add_argument(
        "--max-reversal-rate-bp",
        type=count_arg,
        default=DEFAULT_SETTINGS.max_reversal_rate_bp,
        help="HIGH_REVERSAL_RATE: reversals above this share of the settlements, in basis "
        "points (default %(default)s = 10 %%)",
    )
    flags.set_defaults(func=run_flags)
