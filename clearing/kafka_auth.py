"""Kafka client credentials (SASL), one place for every client library the project uses.

The local broker of `deploy/kafka.sh` accepts only SASL_PLAINTEXT with SCRAM-SHA-512; its admin's
credentials are in a librdkafka properties file (`deploy/kafka.sh client-config` prints its
path). `KafkaAuth.from_settings(settings)` (or `from_env()`) finds the credentials a process
should use, from the first of (the variables are read by `clearing.config.Settings`):

1. `KAFKA_CLIENT_CONFIG`: the path of a librdkafka properties file (`sasl.username`, ...);
2. `KAFKA_USERNAME` with `KAFKA_PASSWORD` or `KAFKA_PASSWORD_FILE` (optional
   `KAFKA_SASL_MECHANISM`, default SCRAM-SHA-512, and `KAFKA_SECURITY_PROTOCOL`, default
   SASL_PLAINTEXT);
3. the local broker's admin file,
   `${CLEARING_HOME:-~/.local/share/clearing}/kafka/secrets/admin.properties`, if present;
4. else `None`: no authentication (PLAINTEXT).

Then `auth.aiokafka_kwargs()`, `auth.kafka_python_kwargs()` or `auth.faust_credentials()` give
what each client takes; the module-level functions of the same names also accept `None`.

Imports nothing of the project but `clearing.config`, and faust only when asked for faust's
credentials.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearing.config import (
    DEFAULT_SASL_MECHANISM,
    DEFAULT_SECURITY_PROTOCOL,
    LOCAL_ADMIN_FILE,
    Settings,
)

if TYPE_CHECKING:
    import faust

MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
DEFAULT_MECHANISM = DEFAULT_SASL_MECHANISM
DEFAULT_PROTOCOL = DEFAULT_SECURITY_PROTOCOL
__all__ = ["LOCAL_ADMIN_FILE", "KafkaAuth"]


@dataclass(frozen=True)
class KafkaAuth:
    """A SASL login. `repr`/`str` never show the password."""

    username: str
    password: str
    mechanism: str = DEFAULT_MECHANISM
    protocol: str = DEFAULT_PROTOCOL

    def __post_init__(self) -> None:
        if not self.username:
            raise ValueError("Kafka SASL username is empty")
        if not self.password:
            raise ValueError(f"Kafka SASL password for {self.username!r} is empty")
        for name, value in (("username", self.username), ("password", self.password)):
            if "\n" in value or "\r" in value:
                raise ValueError(f"Kafka SASL {name} contains a line break")
        if self.mechanism not in MECHANISMS:
            raise ValueError(f"unsupported SASL mechanism {self.mechanism!r} (one of {MECHANISMS})")
        if self.protocol not in PROTOCOLS:
            raise ValueError(
                f"unsupported security protocol {self.protocol!r} (one of {PROTOCOLS})"
            )

    def __repr__(self) -> str:
        return (
            f"KafkaAuth(username={self.username!r}, password='***', "
            f"mechanism={self.mechanism!r}, protocol={self.protocol!r})"
        )

    __str__ = __repr__

    # -- sources --------------------------------------------------------------------------

    @classmethod
    def from_properties(cls, properties: Mapping[str, str]) -> KafkaAuth:
        """From librdkafka settings (`sasl.mechanisms`; Java's singular `sasl.mechanism` too)."""
        username = properties.get("sasl.username")
        password = properties.get("sasl.password")
        if not username or not password:
            raise ValueError("Kafka client config has no sasl.username/sasl.password")
        mechanism = properties.get("sasl.mechanisms") or properties.get("sasl.mechanism")
        protocol = properties.get("security.protocol")
        return cls(
            username,
            password,
            (mechanism or DEFAULT_MECHANISM).upper(),
            (protocol or DEFAULT_PROTOCOL).upper(),
        )

    @classmethod
    def from_properties_file(cls, path: str | os.PathLike[str]) -> KafkaAuth:
        return cls.from_properties(read_properties(path))

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaAuth | None:
        """The first source of the module's table that is set; None means no authentication."""
        if settings.kafka_client_config is not None:
            return cls.from_properties_file(settings.kafka_client_config)
        if settings.kafka_username:
            password = settings.kafka_password
            if not password and settings.kafka_password_file is not None:
                password = settings.kafka_password_file.read_text(encoding="utf-8").strip()
            if not password:
                raise ValueError("KAFKA_USERNAME is set without KAFKA_PASSWORD(_FILE)")
            return cls(
                settings.kafka_username,
                password,
                settings.kafka_sasl_mechanism,
                settings.kafka_security_protocol,
            )
        if settings.kafka_admin_file.is_file():
            return cls.from_properties_file(settings.kafka_admin_file)
        return None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaAuth | None:
        """`from_settings` of the environment (or of `env`), as `clearing.config` reads it."""
        return cls.from_settings(Settings.from_env(env))

    # -- what each client takes ------------------------------------------------------------

    def _ssl_context(self) -> dict[str, Any]:
        return {"ssl_context": ssl.create_default_context()} if self.protocol == "SASL_SSL" else {}

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """For AIOKafkaProducer/AIOKafkaConsumer/AIOKafkaAdminClient (aiokafka >= 0.13)."""
        return {
            "security_protocol": self.protocol,
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
            **self._ssl_context(),
        }

    def kafka_python_kwargs(self) -> dict[str, Any]:
        """For kafka-python 3.x KafkaProducer/KafkaConsumer/KafkaAdminClient: the same names.

        With SASL_SSL kafka-python builds its own TLS context (its `ssl_cafile` etc. may be
        added by the caller); the system's CA store is then used.
        """
        return {
            "security_protocol": self.protocol,
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
        }

    def faust_credentials(self) -> faust.SASLCredentials:
        """`faust.SASLCredentials` for the app's `broker_credentials` setting.

        faust-streaming hands `credentials.mechanism.value` to aiokafka as `sasl_mechanism`
        (faust.transport.drivers.aiokafka.credentials_to_aiokafka_auth) for the consumer, the
        producer and topic creation alike, so SCRAM-SHA-512 passes straight through. The
        protocol is SASL_PLAINTEXT unless an ssl_context is given, which makes it SASL_SSL.
        """
        import faust

        return faust.SASLCredentials(
            username=self.username,
            password=self.password,
            mechanism=self.mechanism,
            ssl_context=ssl.create_default_context() if self.protocol == "SASL_SSL" else None,
        )

    def properties_text(self, bootstrap: str) -> str:
        """A librdkafka client config (kcat -F, confluent-kafka), readable by `read_properties`."""
        return (
            f"bootstrap.servers={bootstrap}\n"
            f"security.protocol={self.protocol}\n"
            f"sasl.mechanisms={self.mechanism}\n"
            f"sasl.username={self.username}\n"
            f"sasl.password={self.password}\n"
        )

    def write_properties_file(self, path: str | os.PathLike[str], bootstrap: str) -> Path:
        """Writes `properties_text` atomically, readable by the owner only (0600)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.properties_text(bootstrap))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def read_properties(path: str | os.PathLike[str]) -> dict[str, str]:
    """`key=value` lines as librdkafka reads them: `#` comments and blank lines skipped, split at
    the first `=`, surrounding whitespace stripped. (No Java-style escapes or `:` separators.)"""
    return parse_properties(Path(path).read_text(encoding="utf-8"))


def parse_properties(text: str) -> dict[str, str]:
    properties: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"line {number}: not key=value")
        properties[key.strip()] = value.strip()
    return properties


def bootstrap_from_properties_file(path: str | os.PathLike[str]) -> str | None:
    return read_properties(path).get("bootstrap.servers") or None


def local_admin_file(env: Mapping[str, str] | None = None) -> Path:
    """Where `deploy/kafka.sh` keeps its admin's client config."""
    return Settings.from_env(env).kafka_admin_file


# -- for callers that may have no credentials -----------------------------------------------


def aiokafka_kwargs(auth: KafkaAuth | None) -> dict[str, Any]:
    return auth.aiokafka_kwargs() if auth else {}


def kafka_python_kwargs(auth: KafkaAuth | None) -> dict[str, Any]:
    return auth.kafka_python_kwargs() if auth else {}


def faust_settings(auth: KafkaAuth | None) -> dict[str, Any]:
    """Keyword arguments for `faust.App(...)`: `broker_credentials`, or nothing."""
    return {"broker_credentials": auth.faust_credentials()} if auth else {}
