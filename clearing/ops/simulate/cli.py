"""`clearing simulate`: the command line of the bundle generator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clearing.core.periods import parse_period
from clearing.ops.simulate.bundle import generate_bundle

DESCRIPTION = (
    "`clearing simulate`: a deterministic synthetic bundle shaped like national cross-province"
    " flows."
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="write a deterministic synthetic bundle (refdata + events.jsonl)",
        description=DESCRIPTION,
    )
    parser.add_argument("--events", type=int, default=10_000, help="lines to write (10000)")
    parser.add_argument("--seed", type=int, default=0, help="the bundle's seed (0)")
    parser.add_argument("--out", type=Path, required=True, help="bundle directory")
    parser.add_argument("--period", help="YYYY-MM: a national month, every settled_at in it")
    parser.add_argument("--year", type=int, default=None, help="year to spread over (2026)")
    parser.add_argument(
        "--intents",
        action="store_true",
        help="also write intents.jsonl: each line's intended outcome",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.events < 0:
        print("clearing simulate: --events must be >= 0", file=sys.stderr)
        return 2
    year = args.year if args.year is not None else 2026
    if args.period is not None:
        try:
            period_year = parse_period(args.period)[0]
        except ValueError as exc:
            print(f"clearing simulate: {exc}", file=sys.stderr)
            return 2
        if args.year is not None and args.year != period_year:
            print("clearing simulate: --year disagrees with --period", file=sys.stderr)
            return 2
        year = period_year
    summary = generate_bundle(args.out, args.events, args.seed, args.period, year, args.intents)
    print(summary.line(), file=sys.stderr)
    return 0
