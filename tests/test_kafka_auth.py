"""Kafka client credentials (clearing.kafka_auth) and ACL sets (clearing.kafka_acl).

Everything but the last test runs without a broker. The integration test's logic is
`check_secure_broker(bootstrap, admin_auth, prefix)`; its fixture here reads the broker and the
admin's credentials from a librdkafka properties file (`KAFKA_CLIENT_CONFIG`, else the local
broker's `deploy/kafka.sh client-config`) and skips when there is none.
"""

from __future__ import annotations

import inspect
import os
import stat
import subprocess
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from clearing import kafka_acl as acl
from clearing.kafka_auth import (
    KafkaAuth,
    aiokafka_kwargs,
    faust_settings,
    kafka_python_kwargs,
    local_admin_file,
    parse_properties,
    read_properties,
)

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cret-Value=with=equals"


def auth(**changes) -> KafkaAuth:
    return KafkaAuth(**{"username": "province-110000", "password": SECRET, **changes})


# -- properties files -----------------------------------------------------------------------


def test_properties_text_round_trip(tmp_path: Path) -> None:
    original = auth()
    path = original.write_properties_file(tmp_path / "client.properties", "127.0.0.1:19092")

    assert KafkaAuth.from_properties_file(path) == original
    assert read_properties(path)["bootstrap.servers"] == "127.0.0.1:19092"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_properties(path) == {
        "bootstrap.servers": "127.0.0.1:19092",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "province-110000",
        "sasl.password": SECRET,
    }


def test_parse_properties_librdkafka_style() -> None:
    text = (
        "# a comment\n"
        "\n"
        "  bootstrap.servers = 127.0.0.1:9092  \n"
        "security.protocol=sasl_plaintext\n"
        "sasl.mechanism=scram-sha-256\n"  # Java's singular name is accepted too
        "sasl.username=api\n"
        "sasl.password=a=b=c\n"
    )
    properties = parse_properties(text)
    assert properties["bootstrap.servers"] == "127.0.0.1:9092"
    assert properties["sasl.password"] == "a=b=c"
    assert KafkaAuth.from_properties(properties) == KafkaAuth(
        "api", "a=b=c", "SCRAM-SHA-256", "SASL_PLAINTEXT"
    )


def test_parse_properties_rejects_garbage_and_missing_credentials() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_properties("a=b\nnot a property\n")
    with pytest.raises(ValueError, match="sasl.username"):
        KafkaAuth.from_properties({"bootstrap.servers": "x:1", "sasl.username": "u"})


def test_invalid_values_are_refused() -> None:
    with pytest.raises(ValueError):
        auth(mechanism="SCRAM-SHA-1")
    with pytest.raises(ValueError):
        auth(protocol="PLAINTEXT")
    with pytest.raises(ValueError):
        auth(password="")
    with pytest.raises(ValueError):
        auth(password="two\nlines")  # would break the properties file


# -- the password stays hidden --------------------------------------------------------------


def test_repr_and_str_hide_the_password() -> None:
    credentials = auth()
    for text in (repr(credentials), str(credentials), f"{credentials}", repr([credentials])):
        assert SECRET not in text
        assert "province-110000" in text
    assert SECRET not in repr(credentials.faust_credentials())


# -- from_env -------------------------------------------------------------------------------


def test_from_env_order(tmp_path: Path) -> None:
    config = auth(username="from-file").write_properties_file(tmp_path / "c.properties", "h:1")
    password_file = tmp_path / "pw"
    password_file.write_text("from-password-file\n")
    home = tmp_path / "home"
    auth(username="local-admin").write_properties_file(
        local_admin_file({"CLEARING_HOME": str(home)}), "h:1"
    )

    env = {
        "KAFKA_CLIENT_CONFIG": str(config),
        "KAFKA_USERNAME": "from-env",
        "KAFKA_PASSWORD": "pw",
        "CLEARING_HOME": str(home),
    }
    assert KafkaAuth.from_env(env).username == "from-file"
    del env["KAFKA_CLIENT_CONFIG"]
    assert KafkaAuth.from_env(env) == KafkaAuth("from-env", "pw")
    env["KAFKA_PASSWORD"] = ""
    env["KAFKA_PASSWORD_FILE"] = str(password_file)
    assert KafkaAuth.from_env(env).password == "from-password-file"
    del env["KAFKA_USERNAME"]
    assert KafkaAuth.from_env(env).username == "local-admin"
    assert KafkaAuth.from_env({"CLEARING_HOME": str(tmp_path / "empty")}) is None


def test_from_env_username_without_password_fails(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="KAFKA_PASSWORD"):
        KafkaAuth.from_env({"KAFKA_USERNAME": "u", "CLEARING_HOME": str(tmp_path)})


def test_local_admin_file_follows_clearing_home() -> None:
    assert local_admin_file({"CLEARING_HOME": "/x"}) == Path("/x/kafka/secrets/admin.properties")
    assert local_admin_file({}) == (
        Path.home() / ".local/share/clearing/kafka/secrets/admin.properties"
    )


# -- what each client takes -----------------------------------------------------------------


def test_kwargs_are_the_clients_own_settings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    credentials = auth()
    expected = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "province-110000",
        "sasl_plain_password": SECRET,
    }
    assert credentials.kafka_python_kwargs() == expected
    assert credentials.aiokafka_kwargs() == expected
    for client in (KafkaProducer, KafkaConsumer, KafkaAdminClient):
        assert set(expected) <= set(client.DEFAULT_CONFIG), client
    for client in (AIOKafkaProducer, AIOKafkaConsumer):
        assert set(expected) <= set(inspect.signature(client).parameters), client

    assert aiokafka_kwargs(None) == kafka_python_kwargs(None) == faust_settings(None) == {}
    assert "ssl_context" in auth(protocol="SASL_SSL").aiokafka_kwargs()


def test_faust_passes_scram_sha_512_through_to_aiokafka() -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    settings = credentials_to_aiokafka_auth(auth().faust_credentials())
    assert settings["security_protocol"] == "SASL_PLAINTEXT"
    assert settings["sasl_mechanism"] == "SCRAM-SHA-512"
    assert settings["sasl_plain_username"] == "province-110000"
    assert settings["sasl_plain_password"] == SECRET
    assert settings["ssl_context"] is None
    assert faust_settings(auth())["broker_credentials"].mechanism.value == "SCRAM-SHA-512"

    secured = credentials_to_aiokafka_auth(auth(protocol="SASL_SSL").faust_credentials())
    assert secured["security_protocol"] == "SASL_SSL"
    assert secured["ssl_context"] is not None


# -- deploy/kafka.sh client-config (no broker needed) -----------------------------------------


def test_kafka_sh_client_config_is_private(tmp_path: Path) -> None:
    env = {**os.environ, "CLEARING_HOME": str(tmp_path), "KAFKA_PORT": "19999"}
    done = subprocess.run(
        [str(ROOT / "deploy" / "kafka.sh"), "client-config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    path = Path(done.stdout.strip())
    secrets = tmp_path / "kafka" / "secrets"
    assert path == secrets / "admin.properties"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    for file in secrets.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    password = (secrets / "admin.password").read_text().strip()
    assert len(password) == 32 and password.isalnum()
    assert password not in done.stdout + done.stderr
    assert KafkaAuth.from_properties_file(path) == KafkaAuth("admin", password)
    assert read_properties(path)["bootstrap.servers"] == "127.0.0.1:19999"

    again = subprocess.run(
        [str(ROOT / "deploy" / "kafka.sh"), "client-config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert again.stdout == done.stdout
    assert (secrets / "admin.password").read_text().strip() == password  # not regenerated


# -- ACL sets -------------------------------------------------------------------------------


def rules(bindings: list[acl.AclBinding]) -> set[tuple[str, str, str, str]]:
    return {(b.resource_type, b.name, b.pattern, b.operation) for b in bindings}


def test_province_acls() -> None:
    bindings = acl.province_acls("110000", "clearing")
    assert {b.principal for b in bindings} == {"User:province-110000"}
    assert {b.host for b in bindings} == {"*"}
    assert rules(bindings) == {
        ("TOPIC", "clearing.inbound.110000", "LITERAL", "WRITE"),
        ("TOPIC", "clearing.inbound.110000", "LITERAL", "DESCRIBE"),
        ("TOPIC", "clearing.feed.110000", "LITERAL", "READ"),
        ("TOPIC", "clearing.feed.110000", "LITERAL", "DESCRIBE"),
        ("GROUP", "province-110000", "PREFIXED", "READ"),
    }


def test_provinces_share_nothing() -> None:
    from clearing.provinces import PROVINCES

    names = {
        code: {b.name for b in acl.province_acls(code, "p") if b.resource_type == "TOPIC"}
        for code in PROVINCES
    }
    for code, topics in names.items():
        for other, other_topics in names.items():
            if other != code:
                assert not topics & other_topics
        assert all(
            b.pattern == "LITERAL"
            for b in acl.province_acls(code, "p")
            if b.resource_type == "TOPIC"
        )


def test_workers_acls() -> None:
    bindings = acl.workers_acls("clearing")
    assert {b.principal for b in bindings} == {"User:workers"}
    got = rules(bindings)
    for op in ("READ", "WRITE", "DESCRIBE"):
        assert ("TOPIC", "clearing.", "PREFIXED", op) in got
    assert ("TOPIC", "clearing-stream-", "PREFIXED", "CREATE") in got
    assert ("TOPIC", "clearing.", "PREFIXED", "CREATE") not in got  # topics are made up front
    assert ("GROUP", "clearing", "PREFIXED", "READ") in got  # covers the app id clearing-stream
    assert ("CLUSTER", "kafka-cluster", "LITERAL", "IDEMPOTENT_WRITE") in got
    assert ("CLUSTER", "kafka-cluster", "LITERAL", "DESCRIBE") in got
    assert ("TRANSACTIONAL_ID", "clearing-stream", "PREFIXED", "WRITE") in got
    # An app id outside the prefix gets its own group rule.
    assert ("GROUP", "other-app", "PREFIXED", "READ") in rules(acl.workers_acls("p", "other-app"))


def test_api_and_operator_acls() -> None:
    assert rules(acl.api_acls("clearing")) == {
        ("TOPIC", "clearing.events", "LITERAL", "WRITE"),
        ("TOPIC", "clearing.events", "LITERAL", "DESCRIBE"),
        ("CLUSTER", "kafka-cluster", "LITERAL", "IDEMPOTENT_WRITE"),
    }
    operator = rules(acl.operator_acls("clearing"))
    for op in ("READ", "WRITE", "DESCRIBE", "CREATE", "DESCRIBE_CONFIGS"):
        assert ("TOPIC", "clearing.", "PREFIXED", op) in operator
    assert ("GROUP", "clearing", "PREFIXED", "READ") in operator
    assert {b.principal for b in acl.operator_acls("clearing")} == {"User:operator"}


def test_every_binding_converts_to_a_kafka_python_acl() -> None:
    bindings = [
        *acl.province_acls("110000", "c"),
        *acl.workers_acls("c"),
        *acl.api_acls("c"),
        *acl.operator_acls("c"),
    ]
    for binding in bindings:
        converted = acl.to_kafka_acl(binding)
        assert converted.principal == binding.principal
        assert converted.operation.name == binding.operation
        assert converted.permission_type.name == "ALLOW"
        assert converted.resource_pattern.resource_type.name == binding.resource_type
        assert converted.resource_pattern.pattern_type.name == binding.pattern
        assert converted.resource_pattern.resource_name == binding.name


# -- on a secured broker --------------------------------------------------------------------


def check_secure_broker(
    bootstrap: str,
    admin_auth: KafkaAuth,
    prefix: str,
    restart: Callable[[], None] | None = None,
) -> None:
    """On a broker with SASL/SCRAM and ACLs: anonymous clients are refused; a province principal
    writes its inbound topic and reads its feed, and nothing of another province or the events
    topic. Creates (and removes) its topics, the user `province-110000` and its ACLs.

    With `restart` (e.g. conftest's `kafka_broker.restart`), the broker is restarted after the
    user was deleted and admin must still log in: deleting a SCRAM user can lock everyone out
    after a restart on Kafka 4.4 (see `metadata_snapshotted` in deploy/kafka.sh)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
        from kafka.errors import KafkaError, KafkaTimeoutError, TopicAuthorizationFailedError

    with pytest.raises(KafkaTimeoutError):  # PLAINTEXT to a SASL listener: no bootstrap
        KafkaAdminClient(bootstrap_servers=bootstrap, bootstrap_timeout_ms=3000).close()

    own_inbound, own_feed = f"{prefix}.inbound.110000", f"{prefix}.feed.110000"
    other_feed, events = f"{prefix}.feed.120000", f"{prefix}.events"
    topics = [own_inbound, own_feed, other_feed, events]
    province = KafkaAuth("province-110000", uuid.uuid4().hex)
    admin = acl.admin_client(bootstrap, admin_auth, client_id="pytest-kafka-auth")
    try:
        spec = {"num_partitions": 1, "replication_factor": 1}
        admin.create_topics({name: spec for name in topics}, wait_for_metadata=True)
        acl.upsert_scram_user(admin, province.username, province.password)
        acl.grant_province(admin, "110000", prefix)
        assert "SCRAM-SHA-512" in acl.scram_users(admin)[province.username]
        seed = KafkaProducer(bootstrap_servers=bootstrap, **admin_auth.kafka_python_kwargs())
        for name in (own_feed, other_feed):
            seed.send(name, f"for {name}".encode()).get(30)
        seed.close()

        assert set(acl.province_acls("110000", prefix)) == acl.describe_acls(
            admin, "User:province-110000"
        )
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, max_block_ms=10000, **province.kafka_python_kwargs()
        )
        try:
            assert producer.send(own_inbound, b"from 110000").get(10).offset == 0
            with pytest.raises(KafkaError):
                producer.send(events, b"not allowed").get(10)
        finally:
            producer.close(timeout=5)

        def read(topic: str, group: str) -> list[bytes]:
            consumer = KafkaConsumer(
                bootstrap_servers=bootstrap,
                group_id=group,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                **province.kafka_python_kwargs(),
            )
            try:
                consumer.assign([TopicPartition(topic, 0)])
                received: list[bytes] = []
                deadline = time.monotonic() + 20
                while not received and time.monotonic() < deadline:
                    for records in consumer.poll(timeout_ms=500).values():
                        received.extend(r.value for r in records)
                return received
            finally:
                consumer.close()

        assert read(own_feed, "province-110000-pytest") == [f"for {own_feed}".encode()]
        with pytest.raises(TopicAuthorizationFailedError):
            read(other_feed, "province-110000-pytest")
    finally:
        try:
            acl.revoke_province(admin, "110000", prefix)
            acl.delete_scram_user(admin, province.username)
        except (KafkaError, RuntimeError):
            pass
        admin.delete_topics(topics, raise_errors=False)
        admin.close()
    if restart is not None:
        restart()
        acl.admin_client(bootstrap, admin_auth, client_id="pytest-after-restart").close()


@pytest.fixture
def secure_kafka() -> Iterator[tuple[str, KafkaAuth]]:
    """(bootstrap, admin credentials) of a secured broker, from its client properties file."""
    path = Path(os.environ.get("KAFKA_CLIENT_CONFIG") or local_admin_file())
    if not path.is_file():
        pytest.skip(f"no Kafka client config at {path} (KAFKA_CLIENT_CONFIG)")
    bootstrap = read_properties(path).get("bootstrap.servers")
    if not bootstrap:
        pytest.skip(f"{path} has no bootstrap.servers")
    admin_auth = KafkaAuth.from_properties_file(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka.errors import KafkaError
    try:
        acl.admin_client(
            bootstrap, admin_auth, client_id="pytest-probe", bootstrap_timeout_ms=10000
        ).close()
    except KafkaError as exc:
        pytest.skip(f"the secured broker at {bootstrap} does not answer: {exc}")
    yield bootstrap, admin_auth


@pytest.mark.kafka
def test_secure_broker_enforces_province_acls(secure_kafka: tuple[str, KafkaAuth]) -> None:
    bootstrap, admin_auth = secure_kafka
    check_secure_broker(bootstrap, admin_auth, f"authz-{uuid.uuid4().hex[:8]}")
