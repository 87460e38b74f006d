"""`clearing province add|revoke`: a province node's login to the broker.

    clearing province add 110000 [--out FILE] [--replace]   # prints the client config's path
    clearing province revoke 110000

`add` creates the SCRAM-SHA-512 credential of `province-<code>` with a random password, its ACLs
(`clearing.kafka_acl.province_acls`: write `<prefix>.inbound.<code>`, read `<prefix>.feed.<code>`,
consumer groups prefixed `province-<code>`) and the province's topics if missing, then writes a
librdkafka client config (`kcat -F FILE`, confluent-kafka; mode 0600; default
`${CLEARING_HOME}/kafka/provinces/<code>.properties`). The password is in that file only, never
printed. A province that already has a credential is refused unless `--replace` (a new password:
the old config stops working). `revoke` removes the ACLs and the credential.

The command logs in as the environment says (KAFKA_CLIENT_CONFIG, ..., else the local broker's
admin): it needs to alter SCRAM credentials and ACLs, which only super users may. Exit status:
0 done; 1 refused (an unknown province code, an existing credential without `--replace`,
nothing to revoke) or the broker failed.
"""

from __future__ import annotations

import argparse
import secrets
import string
import sys
import warnings
from pathlib import Path

from clearing import kafka_acl as acl
from clearing.config import settings
from clearing.core.provinces import PROVINCES
from clearing.kafka_auth import KafkaAuth
from clearing.kafka_clients import admin_client, client_auth
from clearing.topics import Topics, ensure_topics

PASSWORD_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 32


def new_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def default_config_path(code: str) -> Path:
    return settings().home / "kafka" / "provinces" / f"{code}.properties"


def _kafka_errors() -> tuple[type[Exception], ...]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka.errors import KafkaError
    return (KafkaError, RuntimeError, TimeoutError, OSError, ValueError)


def add_province(
    code: str, out: Path | None = None, replace: bool = False, prefix: str | None = None
) -> Path:
    """Creates the province's credential, ACLs and topics; returns the client config's path.
    Raises `LookupError` for an unknown code or an existing credential without `replace`."""
    if code not in PROVINCES:
        raise LookupError(f"{code} is not a province code")
    s = settings()
    topics = Topics(prefix or s.topic_prefix)
    username = acl.province_username(code)
    path = out or default_config_path(code)
    auth = client_auth()
    ensure_topics(s.bootstrap, topics.prefix, auth)
    admin = admin_client(s.bootstrap, "clearing-province", auth)
    try:
        if username in acl.scram_users(admin) and not replace:
            raise LookupError(f"{username} already has a credential (--replace sets a new one)")
        province = KafkaAuth(username, new_password())
        acl.upsert_scram_user(admin, province.username, province.password)
        acl.grant_province(admin, code, topics.prefix)
    finally:
        admin.close()
    return province.write_properties_file(path, s.bootstrap)


def revoke_province(code: str, prefix: str | None = None) -> tuple[int, bool]:
    """Removes the province's ACLs and credential: (ACLs removed, whether it had a credential)."""
    if code not in PROVINCES:
        raise LookupError(f"{code} is not a province code")
    s = settings()
    username = acl.province_username(code)
    admin = admin_client(s.bootstrap, "clearing-province")
    try:
        removed = acl.revoke_province(admin, code, prefix or s.topic_prefix)
        had = username in acl.scram_users(admin)
        if had:
            acl.delete_scram_user(admin, username)
    finally:
        admin.close()
    return removed, had


def _add(args: argparse.Namespace) -> int:
    try:
        path = add_province(args.code, args.out, args.replace, args.prefix)
    except LookupError as exc:
        print(f"clearing province add: {exc.args[0]}", file=sys.stderr)
        return 1
    except _kafka_errors() as exc:
        print(f"clearing province add: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"client config of province {args.code} (0600, holds the password):", file=sys.stderr)
    print(path)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    try:
        removed, had = revoke_province(args.code, args.prefix)
    except LookupError as exc:
        print(f"clearing province revoke: {exc.args[0]}", file=sys.stderr)
        return 1
    except _kafka_errors() as exc:
        print(f"clearing province revoke: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if not removed and not had:
        print(f"clearing province revoke: {args.code} has no credential or ACLs", file=sys.stderr)
        return 1
    print(
        f"province {args.code}: {removed} ACLs removed"
        + (", credential deleted" if had else ", no credential"),
        file=sys.stderr,
    )
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("code", help="the province's code, e.g. 110000")
    common.add_argument(
        "--prefix", default=None, help="topic prefix (default: CLEARING_TOPIC_PREFIX, clearing)"
    )
    parser = subparsers.add_parser(
        "province", help="a province node's Kafka login (credential, ACLs, client config)"
    )
    commands = parser.add_subparsers(dest="province_command", required=True, metavar="COMMAND")
    add = commands.add_parser(
        "add", parents=[common], help="create the credential and ACLs, write its client config"
    )
    add.add_argument(
        "--out", type=Path, default=None, help="client config file (default: under CLEARING_HOME)"
    )
    add.add_argument(
        "--replace", action="store_true", help="set a new password if it already has one"
    )
    add.set_defaults(func=_add)
    revoke = commands.add_parser(
        "revoke", parents=[common], help="remove the ACLs and the credential"
    )
    revoke.set_defaults(func=_revoke)
