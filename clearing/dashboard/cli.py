"""`clearing operator add|revoke|list`: the tokens of the operators who may close and issue
periods from the dashboard."""

from __future__ import annotations

import argparse
import sys

from clearing.api.credentials import CredentialError
from clearing.api.tables import make_engine
from clearing.dashboard import operators


def _engine(args: argparse.Namespace):
    engine = make_engine(args.db)
    operators.create_tables(engine)
    return engine


def add(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        token = operators.add(engine, args.name, replace=args.replace)
    except CredentialError as exc:
        print(f"clearing operator add: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"token for operator {args.name} (shown once, only its hash is kept):", file=sys.stderr)
    print(token)
    return 0


def revoke(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        found = operators.revoke(engine, args.name)
    finally:
        engine.dispose()
    if not found:
        print(f"clearing operator revoke: {args.name} has no token", file=sys.stderr)
        return 1
    print(f"token of operator {args.name} revoked", file=sys.stderr)
    return 0


def show(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        for name, created in operators.listing(engine):
            print(f"{name}\t{created.isoformat()}")
    finally:
        engine.dispose()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("operator", help="dashboard operators' tokens (close/issue)")
    parser.add_argument(
        "--db", metavar="URL", help="database URL (default: CLEARING_DB_URL or the ledger's)"
    )
    commands = parser.add_subparsers(dest="operator_command", required=True, metavar="ACTION")
    adding = commands.add_parser("add", help="create an operator's token and print it once")
    adding.add_argument("name")
    adding.add_argument("--replace", action="store_true", help="rotate an existing token")
    adding.set_defaults(func=add)
    revoking = commands.add_parser("revoke", help="remove an operator's token")
    revoking.add_argument("name")
    revoking.set_defaults(func=revoke)
    listing = commands.add_parser("list", help="operators with a token, and since when")
    listing.set_defaults(func=show)
