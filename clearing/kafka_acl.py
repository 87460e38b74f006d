"""Who may do what on the broker: ACL sets per principal, and SCRAM users.

The broker denies everything without an ACL (`allow.everyone.if.no.acl.found=false`); its super
users are `broker` and `admin`. The sets follow the authority spec's channels (a province sends
on its own inbound topic and reads only its own feed; operators read everything):

- `province-<code>`: write (+describe) `<prefix>.inbound.<code>`, read (+describe)
  `<prefix>.feed.<code>`, read consumer groups prefixed `province-<code>`.
- `workers`: read, write, describe every topic prefixed `<prefix>.`; the faust app's own topics
  (prefixed `<app_id>-`: leader, changelogs; also create); groups prefixed `<prefix>` (the app id
  `<prefix>-stream` is one); transactional ids prefixed `<app_id>` (exactly-once); describe the
  cluster; idempotent write.
- `api`: write (+describe) `<prefix>.events`; idempotent write.
- `operator`: read, write, describe, describe-configs and create topics prefixed `<prefix>.`;
  groups prefixed `<prefix>`; describe the cluster; idempotent write.

The sets are plain data (`AclBinding`), built without a broker; `create_acls`/`delete_acls` and
the SCRAM user functions take a kafka-python (3.x) `KafkaAdminClient` (see `admin_client`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

from clearing.kafka_auth import KafkaAuth, kafka_python_kwargs

# Resource types, pattern types and operations by kafka-python's enum member names.
TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID = "TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID"
LITERAL, PREFIXED = "LITERAL", "PREFIXED"
CLUSTER_NAME = "kafka-cluster"
SCRAM_ITERATIONS = 8192


@dataclass(frozen=True, order=True)
class AclBinding:
    """One ALLOW rule: `principal` may `operation` on the resource, from any host."""

    principal: str  # "User:name"
    resource_type: str  # TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID
    name: str
    pattern: str  # LITERAL or PREFIXED
    operation: str  # READ, WRITE, DESCRIBE, CREATE, DESCRIBE_CONFIGS, IDEMPOTENT_WRITE, ...
    host: str = "*"


def user(name: str) -> str:
    return f"User:{name}"


def province_username(code: str) -> str:
    return f"province-{code}"


def _grants(
    principal: str, resource_type: str, name: str, pattern: str, *operations: str
) -> list[AclBinding]:
    return [AclBinding(principal, resource_type, name, pattern, op) for op in operations]


def province_acls(code: str, prefix: str) -> list[AclBinding]:
    """A province node: writes its own inbound topic, reads its own feed, nothing else."""
    principal = user(province_username(code))
    return [
        *_grants(principal, TOPIC, f"{prefix}.inbound.{code}", LITERAL, "WRITE", "DESCRIBE"),
        *_grants(principal, TOPIC, f"{prefix}.feed.{code}", LITERAL, "READ", "DESCRIBE"),
        *_grants(principal, GROUP, province_username(code), PREFIXED, "READ"),
    ]


def workers_acls(prefix: str, app_id: str | None = None, name: str = "workers") -> list[AclBinding]:
    """The faust workers (app id `<prefix>-stream` unless given; it is also their group)."""
    principal = user(name)
    app_id = app_id or f"{prefix}-stream"
    groups = [prefix] if app_id.startswith(prefix) else [prefix, app_id]
    return [
        *_grants(principal, TOPIC, f"{prefix}.", PREFIXED, "READ", "WRITE", "DESCRIBE"),
        *_grants(principal, TOPIC, f"{app_id}-", PREFIXED, "READ", "WRITE", "DESCRIBE", "CREATE"),
        *(g for group in groups for g in _grants(principal, GROUP, group, PREFIXED, "READ")),
        *_grants(principal, TRANSACTIONAL_ID, app_id, PREFIXED, "WRITE", "DESCRIBE"),
        *_grants(principal, CLUSTER, CLUSTER_NAME, LITERAL, "DESCRIBE", "IDEMPOTENT_WRITE"),
    ]


def api_acls(prefix: str, name: str = "api") -> list[AclBinding]:
    """The submission API: publishes accepted events, nothing else."""
    principal = user(name)
    return [
        *_grants(principal, TOPIC, f"{prefix}.events", LITERAL, "WRITE", "DESCRIBE"),
        *_grants(principal, CLUSTER, CLUSTER_NAME, LITERAL, "IDEMPOTENT_WRITE"),
    ]


def operator_acls(prefix: str, name: str = "operator") -> list[AclBinding]:
    """Operators' tools (publish, collect, replays, `ensure_topics`): all of the prefix."""
    principal = user(name)
    return [
        *_grants(
            principal,
            TOPIC,
            f"{prefix}.",
            PREFIXED,
            "READ",
            "WRITE",
            "DESCRIBE",
            "DESCRIBE_CONFIGS",
            "CREATE",
        ),
        *_grants(principal, GROUP, prefix, PREFIXED, "READ"),
        *_grants(principal, CLUSTER, CLUSTER_NAME, LITERAL, "DESCRIBE", "IDEMPOTENT_WRITE"),
    ]


# -- on a broker (kafka-python admin client) ---------------------------------------------------


def _kafka_admin() -> Any:  # kafka.admin (untyped)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import kafka.admin as admin
    return admin


def admin_client(
    bootstrap: str, auth: KafkaAuth | None, client_id: str = "clearing-acl", **config: Any
) -> Any:
    """A kafka-python `KafkaAdminClient` (`config`: its other settings); close it when done."""
    return _kafka_admin().KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id=client_id, **kafka_python_kwargs(auth), **config
    )


def to_kafka_acl(binding: AclBinding) -> Any:
    admin = _kafka_admin()
    return admin.ACL(
        principal=binding.principal,
        host=binding.host,
        operation=admin.ACLOperation[binding.operation],
        permission_type=admin.ACLPermissionType.ALLOW,
        resource_pattern=admin.ResourcePattern(
            admin.ResourceType[binding.resource_type],
            binding.name,
            admin.ACLResourcePatternType[binding.pattern],
        ),
    )


def create_acls(admin: Any, bindings: list[AclBinding]) -> None:
    """Creates the rules (existing identical rules are fine); raises if any failed."""
    if not bindings:
        return
    result = admin.create_acls([to_kafka_acl(b) for b in bindings])
    if result["failed"]:
        raise RuntimeError(f"creating ACLs failed: {result['failed']}")


def delete_acls(admin: Any, bindings: list[AclBinding]) -> int:
    """Deletes exactly these rules; returns how many the broker removed."""
    if not bindings:
        return 0
    removed = 0
    for _filter, matched, error in admin.delete_acls([to_kafka_acl(b) for b in bindings]):
        if error.errno != 0:
            raise RuntimeError(f"deleting ACLs failed: {error.__name__}")
        removed += len(matched)
    return removed


def describe_acls(admin: Any, principal: str) -> set[AclBinding]:
    """The ALLOW rules the broker's authorizer holds for `principal`."""
    kadmin = _kafka_admin()
    found, _error = admin.describe_acls(
        kadmin.ACLFilter(
            principal=principal,
            host=None,
            operation=kadmin.ACLOperation.ANY,
            permission_type=kadmin.ACLPermissionType.ALLOW,
            resource_pattern=kadmin.ResourcePatternFilter(
                kadmin.ResourceType.ANY, None, kadmin.ACLResourcePatternType.ANY
            ),
        )
    )
    return {
        AclBinding(
            a.principal,
            a.resource_pattern.resource_type.name,
            a.resource_pattern.resource_name,
            a.resource_pattern.pattern_type.name,
            a.operation.name,
            a.host,
        )
        for a in found
    }


def wait_for_acls(admin: Any, bindings: list[AclBinding], timeout: float = 30.0) -> None:
    """Waits until the broker's authorizer holds every rule: ACLs reach it through the metadata
    log, so a client started right after `create_acls` may still be refused (and an idempotent
    producer refused its producer id stays failed)."""
    deadline = time.monotonic() + timeout
    for principal in sorted({b.principal for b in bindings}):
        wanted = {b for b in bindings if b.principal == principal}
        while not wanted <= describe_acls(admin, principal):
            if time.monotonic() > deadline:
                raise TimeoutError(f"ACLs of {principal} not in effect after {timeout:.0f}s")
            time.sleep(0.2)


def grant_province(admin: Any, code: str, prefix: str, wait: bool = True) -> None:
    bindings = province_acls(code, prefix)
    create_acls(admin, bindings)
    if wait:
        wait_for_acls(admin, bindings)


def revoke_province(admin: Any, code: str, prefix: str) -> int:
    return delete_acls(admin, province_acls(code, prefix))


def upsert_scram_user(
    admin: Any,
    username: str,
    password: str,
    mechanism: str = "SCRAM-SHA-512",
    iterations: int = SCRAM_ITERATIONS,
) -> None:
    """Creates the user's SCRAM credential or replaces its password (AlterUserScramCredentials;
    the password is salted and hashed client-side, only the salted form is sent)."""
    admin_mod = _kafka_admin()
    change = admin_mod.UserScramCredentialUpsertion(
        username, mechanism, password, iterations=iterations
    )
    _check_users(admin.alter_user_scram_credentials([change]), "setting")


def delete_scram_user(admin: Any, username: str, mechanism: str = "SCRAM-SHA-512") -> None:
    """Removes the user's credential for `mechanism`; its ACLs stay until deleted.

    On Kafka 4.4 a deletion that is not yet covered by a metadata snapshot can make the broker
    forget every SCRAM credential at its next restart; deploy/kafka.sh keeps that from happening
    (frequent snapshots, see `metadata_snapshotted` there). On another broker, make sure a
    snapshot holding a credential that is never deleted exists before deleting users."""
    change = _kafka_admin().UserScramCredentialDeletion(username, mechanism)
    _check_users(admin.alter_user_scram_credentials([change]), "deleting")


def scram_users(admin: Any) -> dict[str, list[str]]:
    """User name -> its SCRAM mechanisms."""
    described = admin.describe_user_scram_credentials()
    return {
        name: [info["mechanism"].name.replace("_", "-") for info in entry["credential_infos"]]
        for name, entry in described.items()
        if not entry["error"]
    }


def _check_users(results: dict[str, str | None], doing: str) -> None:
    errors = {name: message for name, message in results.items() if message}
    if errors:
        raise RuntimeError(f"{doing} SCRAM credentials failed: {errors}")
