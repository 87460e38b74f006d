"""`clearing hospital add|revoke|list` (API credentials) and `clearing openapi`."""

from __future__ import annotations

import argparse
import sys

from clearing.api import credentials
from clearing.api.tables import create_tables, make_engine


def _engine(args: argparse.Namespace):
    engine = make_engine(args.db_url)
    create_tables(engine)
    return engine


def add(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        token = credentials.add(engine, args.hospital_id, replace=args.replace)
    except credentials.CredentialError as exc:
        print(f"clearing hospital add: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(
        f"token for hospital {args.hospital_id} (shown once, only its hash is kept):",
        file=sys.stderr,
    )
    print(token)
    return 0


def revoke(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        found = credentials.revoke(engine, args.hospital_id)
    finally:
        engine.dispose()
    if not found:
        print(f"clearing hospital revoke: {args.hospital_id} has no token", file=sys.stderr)
        return 1
    print(f"token of hospital {args.hospital_id} revoked", file=sys.stderr)
    return 0


def show(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        for hospital, created in credentials.listing(engine):
            print(f"{hospital}\t{created.isoformat()}")
    finally:
        engine.dispose()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("hospital", help="hospitals' API credentials")
    parser.add_argument(
        "--db-url", default=None, help="database URL (default: CLEARING_DB_URL or the ledger's)"
    )
    commands = parser.add_subparsers(dest="hospital_command", required=True, metavar="ACTION")
    adding = commands.add_parser("add", help="create a hospital's token and print it once")
    adding.add_argument("hospital_id")
    adding.add_argument("--replace", action="store_true", help="rotate an existing token")
    adding.set_defaults(func=add)
    revoking = commands.add_parser("revoke", help="remove a hospital's token")
    revoking.add_argument("hospital_id")
    revoking.set_defaults(func=revoke)
    listing = commands.add_parser("list", help="hospitals with a token, and since when")
    listing.set_defaults(func=show)

