"""`clearing credentials add|revoke|list`: the bearer tokens of hospitals (the submission API),
operators (the dashboard's Close and Issue) and viewers (the dashboard, read-only).

    clearing credentials add --kind hospital H123 [--replace]   # prints the token once
    clearing credentials add --kind viewer prometheus --token-file FILE [--replace]
    clearing credentials revoke --kind operator alice
    clearing credentials list [--kind viewer]

Every command takes `--db URL` (default: CLEARING_DB_URL, else the ledger's SQLite file) and
migrates that database first. `--token-file` registers the token a file holds (its first
line) instead of making one, and prints nothing of it: a deployment's scraper reads its token
from that secret file (`deploy/compose/secrets.sh`). Exit status: 0 done; 1 refused (an id that
already has a token, a token to revoke that does not exist, a malformed id or given token, an
unreadable file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clearing import auth
from clearing.store.db import open_engine


def _given_token(path: Path) -> str:
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        raise auth.CredentialError(f"cannot read a token from {path}") from None
    return lines[0].strip() if lines else ""


def _add(args: argparse.Namespace) -> int:
    try:
        given = None if args.token_file is None else _given_token(args.token_file)
        engine = open_engine(args.db)
        try:
            token = auth.add(
                engine,
                args.kind,
                args.id,
                replace=args.replace,
                province=args.province,
                token=given,
            )
        finally:
            engine.dispose()
    except auth.CredentialError as exc:
        print(f"clearing credentials add: {exc}", file=sys.stderr)
        return 1
    if given is not None:
        print(f"token for {args.kind} {args.id} set from {args.token_file}", file=sys.stderr)
        return 0
    print(f"token for {args.kind} {args.id} (shown once, only its hash is kept):", file=sys.stderr)
    print(token)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    engine = open_engine(args.db)
    try:
        found = auth.revoke(engine, args.kind, args.id)
    finally:
        engine.dispose()
    if not found:
        print(f"clearing credentials revoke: {args.kind} {args.id} has no token", file=sys.stderr)
        return 1
    print(f"token of {args.kind} {args.id} revoked", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    engine = open_engine(args.db)
    try:
        for kind, principal, created in auth.listing(engine, args.kind):
            print(f"{kind}\t{principal}\t{created.isoformat()}")
    finally:
        engine.dispose()
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db", metavar="URL", help="database (default: CLEARING_DB_URL, else the ledger's)"
    )
    parser = subparsers.add_parser(
        "credentials", help="bearer tokens of hospitals, operators and viewers"
    )
    commands = parser.add_subparsers(dest="credentials_command", required=True, metavar="ACTION")
    kinds = list(auth.KINDS)
    kind_help = "hospital (API), operator or viewer (dashboard and /metrics)"

    adding = commands.add_parser("add", parents=[common], help="make a token and print it once")
    adding.add_argument("--kind", required=True, choices=kinds, help=kind_help)
    adding.add_argument("id", help="the hospital_id, or the operator's or viewer's name")
    adding.add_argument("--replace", action="store_true", help="rotate an existing token")
    adding.add_argument(
        "--province",
        help="a hospital's province code (e.g. 120000): its refused events go to that feed",
    )
    adding.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="register the token in FILE (its first line) instead of making one; prints nothing",
    )
    adding.set_defaults(func=_add)

    revoking = commands.add_parser("revoke", parents=[common], help="remove a token")
    revoking.add_argument("--kind", required=True, choices=kinds, help=kind_help)
    revoking.add_argument("id")
    revoking.set_defaults(func=_revoke)

    listing = commands.add_parser("list", parents=[common], help="who has a token, since when")
    listing.add_argument("--kind", choices=kinds, help=kind_help)
    listing.set_defaults(func=_list)
