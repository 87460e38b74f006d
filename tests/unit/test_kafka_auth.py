"""Kafka client credentials (clearing.kafka_auth), how every client gets them, and the ACL sets
(clearing.kafka_acl), without a broker. On the broker: integration/kafka/test_kafka_security.py.
"""

from __future__ import annotations

import inspect
import os
import stat
import subprocess
import warnings
from pathlib import Path

import pytest
from support.paths import ROOT

from clearing import kafka_acl as acl
from clearing.config import Settings
from clearing.core.provinces import PROVINCES
from clearing.kafka_auth import (
    KafkaAuth,
    aiokafka_kwargs,
    faust_settings,
    kafka_python_kwargs,
    local_admin_file,
    parse_properties,
    read_properties,
)

SECRET = "s3cret-Value=with=equals"


def auth(**changes: str) -> KafkaAuth:
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


# -- every client takes the login from the settings -----------------------------------------


def test_settings_read_the_login_and_never_show_the_password(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "CLEARING_HOME": str(tmp_path),
            "KAFKA_USERNAME": "api",
            "KAFKA_PASSWORD": SECRET,
            "KAFKA_SASL_MECHANISM": "scram-sha-256",
        }
    )
    assert settings.kafka_username == "api"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-256"
    assert settings.kafka_admin_file == tmp_path / "kafka/secrets/admin.properties"
    assert SECRET not in repr(settings)
    assert KafkaAuth.from_settings(settings) == KafkaAuth("api", SECRET, "SCRAM-SHA-256")
    assert settings.kafka_client_config_file() is None  # the login is not in a file


def test_client_config_file_is_what_child_processes_get(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert Settings.from_env({"CLEARING_HOME": str(home)}).kafka_client_config_file() is None
    admin_file = auth(username="admin").write_properties_file(
        local_admin_file({"CLEARING_HOME": str(home)}), "h:1"
    )
    env = {"CLEARING_HOME": str(home)}
    assert Settings.from_env(env).kafka_client_config_file() == admin_file
    given = tmp_path / "given.properties"
    env["KAFKA_CLIENT_CONFIG"] = str(given)
    assert Settings.from_env(env).kafka_client_config_file() == given


def test_clients_log_in_as_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clearing import kafka_clients
    from clearing.dashboard.lag import LagReader
    from clearing.ops.workers import worker_env
    from clearing.stream.config import StreamConfig
    from clearing.stream.refdata_feed import RefdataFeed

    config = auth(username="workers").write_properties_file(tmp_path / "w.properties", "h:1")
    monkeypatch.delenv("KAFKA_USERNAME", raising=False)
    monkeypatch.setenv("CLEARING_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KAFKA_CLIENT_CONFIG", str(config))

    assert kafka_clients.client_auth() == auth(username="workers")
    assert kafka_clients.kafka_python_auth()["sasl_plain_username"] == "workers"
    assert kafka_clients.aiokafka_auth()["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kafka_clients.kafka_python_auth(None) == {}
    assert StreamConfig.from_env().auth == auth(username="workers")
    assert worker_env("h:1", "p", "sqlite://", 1, 1)["KAFKA_CLIENT_CONFIG"] == str(config)
    assert LagReader("h:1", "g", ["t"]).auth is kafka_clients.ENV
    assert RefdataFeed("h:1", "t").auth is kafka_clients.ENV

    monkeypatch.delenv("KAFKA_CLIENT_CONFIG")
    assert kafka_clients.client_auth() is None  # no admin file under this CLEARING_HOME
    assert kafka_clients.kafka_python_auth() == {}


def test_topics_include_one_inbound_topic_per_province() -> None:
    from clearing.topics import Topics

    specs = {spec.name: spec for spec in Topics("p").specs()}
    for code in PROVINCES:
        assert specs[f"p.inbound.{code}"].partitions == 1
        assert f"p.feed.{code}" in specs


def test_province_cli_is_registered() -> None:
    from clearing.cli import build_parser

    args = build_parser().parse_args(["province", "add", "110000", "--out", "x.properties"])
    assert args.code == "110000" and args.out == Path("x.properties") and not args.replace
    args = build_parser().parse_args(["province", "revoke", "110000"])
    assert args.func.__name__ == "_revoke"


def test_province_passwords_are_random_and_plain() -> None:
    from clearing.ops.province_cli import new_password

    first, second = new_password(), new_password()
    assert first != second
    assert len(first) == 32 and first.isalnum()
