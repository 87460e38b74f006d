"""The one read of the environment: every setting of the workers, the API, the dashboard and
the tools, with its default. A malformed value is an `InputError` naming the variable.

| variable | default |
|---|---|
| CLEARING_HOME | ~/.local/share/clearing (state: the SQLite ledger, runs, the local services) |
| KAFKA_BOOTSTRAP | 127.0.0.1:9092 (`KAFKA_PORT` changes the local broker's port) |
| CLEARING_TOPIC_PREFIX | clearing |
| CLEARING_DB_URL (or CLEARING_DB_URL_FILE) | SQLite file `${CLEARING_HOME}/ledger.sqlite` |
| CLEARING_DB_OWNER_URL (or CLEARING_DB_OWNER_URL_FILE) | unset; the role that owns the schema and
  runs the migrations, when CLEARING_DB_URL's role may only read and write rows (PostgreSQL) |
| CLEARING_WEB_PORT | 6066 (`0` turns the web server off); CLEARING_WEB_BIND 127.0.0.1 |
| CLEARING_WEB_READ_TIMEOUT | 15 (seconds a request's headers, then its body, may take to arrive) |
| CLEARING_WORKER_ID | none; when set, static group membership (a restarted worker takes its
  partitions back at once instead of after the session timeout) |
| CLEARING_BATCH_SIZE, CLEARING_BATCH_WITHIN | 4000 events, 0.01 s (the price stage takes what
  has arrived, at most this many, waiting at most this long when nothing has) |
| CLEARING_CACHE_PERSONS | 100000 (persons the price stage keeps in memory per worker) |
| CLEARING_API_WAIT | 3 (seconds a submission waits for its result before answering 202) |
| CLEARING_API_MAX_BODY | 4194304 (bytes; larger bodies get 413) |
| CLEARING_DASHBOARD_TTL | 5 (seconds a ledger or Kafka figure is reused before it is asked again) |
| CLEARING_DASHBOARD_SAMPLE | 5 (seconds between two points of the live charts) |
| CLEARING_MONITOR | 1 (`0` turns fund-safety monitoring off in the price stage: no flags) |
| CLEARING_PARENT_PID | unset; set by `clearing run` for its workers: a worker stops when that
  process dies |
| CLEARING_CLIENT_DEBUG | unset (the Kafka client's DEBUG records are dropped unless set) |
| KAFKA_CLIENT_CONFIG | unset; a librdkafka properties file with the SASL login |
| KAFKA_USERNAME, KAFKA_PASSWORD or KAFKA_PASSWORD_FILE | unset; the SASL login, when there is
  no KAFKA_CLIENT_CONFIG (KAFKA_SASL_MECHANISM SCRAM-SHA-512, KAFKA_SECURITY_PROTOCOL
  SASL_PLAINTEXT) |
| (neither) | the local broker's admin file `${CLEARING_HOME}/kafka/secrets/admin.properties`
  when it exists (deploy/kafka.sh writes it), else no authentication |

`clearing.kafka_auth.KafkaAuth.from_settings` turns the Kafka login settings into credentials.
A `*_FILE` variable names a file holding the value (its first line), so that a URL with a
password need not sit in the environment of every shell. `mask_url` is the one way a URL is
shown; `private_state` makes what a process creates private to its user.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from clearing.core.errors import InputError

DEFAULT_PORT = "9092"
DEFAULT_BOOTSTRAP = f"127.0.0.1:{DEFAULT_PORT}"
DEFAULT_PREFIX = "clearing"
DEFAULT_WEB_PORT = 6066
MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_WEB_READ_TIMEOUT = 15.0
DEFAULT_SASL_MECHANISM = "SCRAM-SHA-512"
DEFAULT_SECURITY_PROTOCOL = "SASL_PLAINTEXT"
# Where deploy/kafka.sh keeps the local broker's admin login, under CLEARING_HOME.
LOCAL_ADMIN_FILE = Path("kafka") / "secrets" / "admin.properties"

T = TypeVar("T")


def _read(env: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise InputError(f"{name}: {raw!r} is not a valid {parse.__name__}") from None


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    bootstrap: str
    bootstrap_given: bool
    kafka_port: str
    topic_prefix: str
    db_url: str | None = field(repr=False)
    web_port: int
    web_bind: str
    web_read_timeout: float
    worker_id: str | None
    batch_size: int
    batch_within: float
    api_wait: float
    api_max_body: int
    dashboard_ttl: float
    dashboard_sample: float
    client_debug: bool
    monitor: bool = True
    cache_persons: int = 100_000
    kafka_client_config: Path | None = None
    kafka_username: str | None = None
    kafka_password: str | None = field(default=None, repr=False)
    kafka_password_file: Path | None = None
    kafka_sasl_mechanism: str = DEFAULT_SASL_MECHANISM
    kafka_security_protocol: str = DEFAULT_SECURITY_PROTOCOL
    db_owner_url: str | None = field(default=None, repr=False)
    parent_pid: int | None = None

    @property
    def kafka_admin_file(self) -> Path:
        """The local broker's admin client config: the fallback login."""
        return self.home / LOCAL_ADMIN_FILE

    def kafka_client_config_file(self) -> Path | None:
        """The properties file the Kafka login comes from: KAFKA_CLIENT_CONFIG, else (without
        KAFKA_USERNAME) the local admin file if it exists; None for a login from the variables
        or none at all. Child processes get it as KAFKA_CLIENT_CONFIG."""
        if self.kafka_client_config is not None:
            return self.kafka_client_config
        if self.kafka_username is None and self.kafka_admin_file.is_file():
            return self.kafka_admin_file
        return None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            home=Path(env.get("CLEARING_HOME") or Path.home() / ".local/share/clearing"),
            bootstrap=env.get("KAFKA_BOOTSTRAP") or DEFAULT_BOOTSTRAP,
            bootstrap_given=bool(env.get("KAFKA_BOOTSTRAP")),
            kafka_port=env.get("KAFKA_PORT") or DEFAULT_PORT,
            topic_prefix=env.get("CLEARING_TOPIC_PREFIX") or DEFAULT_PREFIX,
            db_url=_value_or_file(env, "CLEARING_DB_URL"),
            web_port=_read(env, "CLEARING_WEB_PORT", int, DEFAULT_WEB_PORT),
            web_bind=env.get("CLEARING_WEB_BIND") or "127.0.0.1",
            web_read_timeout=_read(
                env, "CLEARING_WEB_READ_TIMEOUT", float, DEFAULT_WEB_READ_TIMEOUT
            ),
            worker_id=env.get("CLEARING_WORKER_ID") or None,
            batch_size=_read(env, "CLEARING_BATCH_SIZE", int, 4000),
            batch_within=_read(env, "CLEARING_BATCH_WITHIN", float, 0.01),
            cache_persons=_read(env, "CLEARING_CACHE_PERSONS", int, 100_000),
            api_wait=_read(env, "CLEARING_API_WAIT", float, 3.0),
            api_max_body=_read(env, "CLEARING_API_MAX_BODY", int, MAX_BODY_BYTES),
            dashboard_ttl=_read(env, "CLEARING_DASHBOARD_TTL", float, 5.0),
            dashboard_sample=_read(env, "CLEARING_DASHBOARD_SAMPLE", float, 5.0),
            client_debug=bool(env.get("CLEARING_CLIENT_DEBUG")),
            monitor=(env.get("CLEARING_MONITOR") or "1").strip() != "0",
            kafka_client_config=_path(env.get("KAFKA_CLIENT_CONFIG")),
            kafka_username=env.get("KAFKA_USERNAME") or None,
            kafka_password=env.get("KAFKA_PASSWORD") or None,
            kafka_password_file=_path(env.get("KAFKA_PASSWORD_FILE")),
            kafka_sasl_mechanism=(
                env.get("KAFKA_SASL_MECHANISM") or DEFAULT_SASL_MECHANISM
            ).upper(),
            kafka_security_protocol=(
                env.get("KAFKA_SECURITY_PROTOCOL") or DEFAULT_SECURITY_PROTOCOL
            ).upper(),
            db_owner_url=_value_or_file(env, "CLEARING_DB_OWNER_URL"),
            parent_pid=_read(env, "CLEARING_PARENT_PID", int, None),
        )


def _path(raw: str | None) -> Path | None:
    return Path(raw) if raw else None


def _value_or_file(env: Mapping[str, str], name: str) -> str | None:
    """`name`, else the first line of the file `name_FILE` names (None when neither is set)."""
    if env.get(name):
        return env[name]
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    return lines[0].strip() if lines and lines[0].strip() else None


# userinfo of an URL: `scheme://user:password@`; the password is what is masked.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]*(?=@)")


def mask_url(url: str) -> str:
    """The URL with its password replaced by `***`: the only form in which a URL is printed
    or logged. Parsed as SQLAlchemy does, else masked by pattern (an URL it cannot parse)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _URL_PASSWORD.sub(r"\g<head>***", url)


PRIVATE_UMASK = 0o077


def private_state() -> None:
    """Files and directories this process (and every child) creates are its user's only:
    0700 and 0600 from their first write. Ledgers hold person tokens, logs and configs may
    hold secrets, and a later chmod would leave a window open."""
    os.umask(PRIVATE_UMASK)


def settings() -> Settings:
    """The settings as the environment says now (read afresh: tests and tools change it)."""
    return Settings.from_env()
