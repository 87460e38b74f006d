"""Shared pytest fixtures, one section per external service.

A missing service skips its tests on a developer's machine but fails them under CI=true:
a green CI run must mean the integration tests really ran. Add new services as new sections.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

with warnings.catch_warnings():
    # kafka-python emits DeprecationWarnings at import time (importlib.resources legacy API).
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Fail under CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: integration tests may not be skipped)", pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------------------------
# Kafka
#
# `kafka_bootstrap` (session): "host:port" of a Kafka 4.x broker, from the first that works of
#   1. KAFKA_BOOTSTRAP, an external broker;
#   2. a testcontainers apache/kafka container, when a Docker engine answers;
#   3. the local broker of deploy/kafka.sh (started if needed, left running afterwards).
# `kafka_broker` (session): the same, plus `restart()` where the broker can be restarted.
# `kafka_topics` (function): creates uniquely named topics for one test, deletes them after.
# --------------------------------------------------------------------------------------------

KAFKA_SCRIPT = ROOT / "deploy" / "kafka.sh"
KAFKA_IMAGE = "apache/kafka:4.1.0"


@dataclass
class KafkaBroker:
    """A broker the tests can reach, and how (if at all) it can be restarted."""

    bootstrap: str
    kind: str  # "external", "container" or "script"
    restart_fn: Callable[[], None] | None = None

    def restart(self) -> None:
        """Stops and starts the broker, keeping its data; fails/skips where impossible."""
        if self.restart_fn is None:
            unavailable(f"cannot restart the {self.kind} Kafka broker at {self.bootstrap}")
        self.restart_fn()
        wait_for_kafka(self.bootstrap, timeout=60)


def kafka_answers(bootstrap: str, timeout: float = 5.0) -> bool:
    """True when the broker at `bootstrap` answers a metadata request."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="pytest-probe",
            request_timeout_ms=int(timeout * 1000),
            bootstrap_timeout_ms=int(timeout * 1000),
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def wait_for_kafka(bootstrap: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not kafka_answers(bootstrap):
        if time.monotonic() > deadline:
            raise TimeoutError(f"Kafka at {bootstrap} did not answer within {timeout:.0f}s")
        time.sleep(0.5)


def docker_answers() -> bool:
    """True when a Docker engine is reachable (the CLI alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_kafka_container() -> tuple[KafkaBroker, Callable[[], None]]:
    """Single-node KRaft apache/kafka container; the host port is fixed so it can be advertised."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    port = free_port()
    host = os.environ.get("TESTCONTAINERS_HOST_OVERRIDE", "localhost")
    env = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{host}:{port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    }
    container = DockerContainer(KAFKA_IMAGE).with_bind_ports(9092, port)
    for key, value in env.items():
        container.with_env(key, value)
    container.start()
    wait_for_logs(container, "Kafka Server started", timeout=120)
    bootstrap = f"{host}:{port}"

    def restart() -> None:
        container.get_wrapped_container().restart(timeout=30)

    return KafkaBroker(bootstrap, "container", restart), container.stop


def run_kafka_script(command: str) -> None:
    """Runs `deploy/kafka.sh COMMAND`, raising with its output when it fails."""
    done = subprocess.run(
        [str(KAFKA_SCRIPT), command], capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"deploy/kafka.sh {command} failed:\n{done.stdout}{done.stderr}")


def start_script_broker() -> KafkaBroker:
    run_kafka_script("start")
    bootstrap = f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"

    def restart() -> None:
        run_kafka_script("stop")
        run_kafka_script("start")

    return KafkaBroker(bootstrap, "script", restart)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    external = os.environ.get("KAFKA_BOOTSTRAP")
    if external:
        if not kafka_answers(external, timeout=10):
            unavailable(f"KAFKA_BOOTSTRAP={external} does not answer")
        yield KafkaBroker(external, "external")
        return
    problems = []
    if docker_answers():
        try:
            broker, stop = start_kafka_container()
        except Exception as exc:  # any container failure falls through to the local broker
            problems.append(f"testcontainers {KAFKA_IMAGE}: {exc}")
        else:
            try:
                yield broker
            finally:
                stop()
            return
    else:
        problems.append("no Docker engine answers")
    try:
        broker = start_script_broker()
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        problems.append(str(exc))
        unavailable("no Kafka broker: " + "; ".join(problems))
    yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker) -> str:
    return kafka_broker.bootstrap


def unique_topic(base: str = "test") -> str:
    """A topic name no other test (or earlier run on the persistent broker) has used."""
    return f"{base}-{uuid.uuid4().hex[:12]}"


def create_topics(
    bootstrap: str,
    names: list[str],
    partitions: int = 1,
    configs: dict[str, str] | None = None,
) -> None:
    """Creates topics and waits until every partition has a leader."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="pytest-admin")
    try:
        spec = {"num_partitions": partitions, "replication_factor": 1, "configs": configs or {}}
        admin.create_topics({name: spec for name in names}, wait_for_metadata=True)
    finally:
        admin.close()


def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Best-effort delete, so the persistent local broker does not fill up with test topics."""
    if not names:
        return
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="pytest-admin")
    except KafkaError:
        return
    try:
        admin.delete_topics(names, raise_errors=False)
    except KafkaError:
        pass
    finally:
        admin.close()


@pytest.fixture
def kafka_topics(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """`kafka_topics(base, partitions=1, configs=None)` -> a new unique topic name."""
    created: list[str] = []

    def make(base: str = "test", partitions: int = 1, configs: dict[str, str] | None = None) -> str:
        name = unique_topic(base)
        create_topics(kafka_bootstrap, [name], partitions, configs)
        created.append(name)
        return name

    yield make
    delete_topics(kafka_bootstrap, created)


# --------------------------------------------------------------------------------------------
# Submission API (clearing/api) — fixtures for tests/test_api*.py
#
# `api_db_url` (function): a tmp SQLite database; a test module may override it (test_api.py
#   runs on PostgreSQL too, with `api_postgres_schema`: a fresh schema, dropped afterwards).
# `api_stack` (function): a unique topic prefix with its events topic on the real broker, the
#   `api_db_url` database migrated to the newest schema, and tokens for H1 and H2.
# `api_client` (function): `api_client(**config)` -> a `SyncApiClient` on the API alone
#   (`clearing.api.app.standalone`), closed after the test. Plain (and hypothesis) tests call it
#   synchronously; it runs aiohttp's TestClient on its own event loop.
# `stream_stand_in` (function): prices what lands on the stack's events topic with the
#   stream's own BatchProcessor (tests/builders.py refdata), in a thread, as the worker would.
# --------------------------------------------------------------------------------------------


@dataclass
class ApiStack:
    bootstrap: str
    prefix: str
    db_url: str
    tokens: dict[str, str]

    def config(self, **changes):
        from clearing.api.config import ApiConfig
        from clearing.topics import Topics

        return ApiConfig(self.bootstrap, Topics(self.prefix), self.db_url, **changes)


@dataclass
class ApiReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        import orjson

        return orjson.loads(self.body)


class SyncApiClient:
    """aiohttp's TestClient driven from synchronous code."""

    def __init__(self, app) -> None:
        import asyncio

        from aiohttp.test_utils import TestClient, TestServer

        async def start() -> TestClient:
            client = TestClient(TestServer(app))
            await client.start_server()
            return client

        self.loop = asyncio.new_event_loop()
        self.client = self.loop.run_until_complete(start())

    def request(
        self,
        method: str,
        path: str,
        body: bytes | dict | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiReply:
        import orjson

        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if isinstance(body, dict):
            body = orjson.dumps(body)
            sent.setdefault("Content-Type", "application/json")

        async def call() -> ApiReply:
            async with self.client.request(method, path, data=body, headers=sent) as response:
                return ApiReply(response.status, dict(response.headers), await response.read())

        return self.loop.run_until_complete(call())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


@pytest.fixture
def api_db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


@pytest.fixture(scope="session")
def api_postgres_url() -> str:
    """The PostgreSQL server of the ledger's tests (started if needed, left running)."""
    try:
        return postgres_server_url()
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        unavailable(f"no PostgreSQL: {exc}")


@pytest.fixture
def api_postgres_schema(api_postgres_url: str) -> Iterator[str]:
    """A database URL whose tables all land in a new schema of their own."""
    from sqlalchemy import create_engine, make_url, text

    schema = f"api_{uuid.uuid4().hex[:12]}"
    admin = create_engine(api_postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(api_postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def api_stack(kafka_bootstrap: str, api_db_url: str) -> Iterator[ApiStack]:
    from clearing import auth
    from clearing.store.db import open_engine
    from clearing.topics import EVENTS_PARTITIONS, Topics

    prefix = unique_topic("api")
    events = Topics(prefix).events
    create_topics(kafka_bootstrap, [events], EVENTS_PARTITIONS)
    db_url = api_db_url
    engine = open_engine(db_url)
    tokens = {hospital: auth.add(engine, "hospital", hospital) for hospital in ("H1", "H2")}
    engine.dispose()
    try:
        yield ApiStack(kafka_bootstrap, prefix, db_url, tokens)
    finally:
        delete_topics(kafka_bootstrap, [events])


@pytest.fixture
def api_client(api_stack: ApiStack) -> Iterator[Callable[..., SyncApiClient]]:
    from clearing.api.app import standalone

    clients: list[SyncApiClient] = []

    def make(**config) -> SyncApiClient:
        client = SyncApiClient(standalone(api_stack.config(**config)))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


class StreamStandIn:
    """Consumes the events topic and prices it with the stream's BatchProcessor."""

    def __init__(self, stack: ApiStack, refdata) -> None:
        import threading

        from clearing.store.db import open_engine
        from clearing.stream.batch import BatchProcessor

        self.stack = stack
        self.engine = open_engine(stack.db_url)
        self.processor = BatchProcessor(self.engine, lambda: refdata)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="stream-stand-in", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from clearing.stream.batch import Record
        from clearing.topics import EVENTS_PARTITIONS, Topics

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from kafka import KafkaConsumer, TopicPartition
        topic = Topics(self.stack.prefix).events
        consumer = KafkaConsumer(bootstrap_servers=self.stack.bootstrap, enable_auto_commit=False)
        try:
            parts = [TopicPartition(topic, p) for p in range(EVENTS_PARTITIONS)]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            while not self.stop.is_set():
                for tp, messages in consumer.poll(timeout_ms=50).items():
                    records = [
                        Record(tp.topic, tp.partition, m.offset, m.key, m.value) for m in messages
                    ]
                    self.processor.process(records)
        except BaseException as exc:  # reported by close(), so a test never passes silently
            self.error = exc
        finally:
            consumer.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.engine.dispose()
        if self.error is not None:
            raise self.error


@pytest.fixture
def stream_stand_in(api_stack: ApiStack) -> Iterator[StreamStandIn]:
    from builders import refdata

    stand_in = StreamStandIn(api_stack, refdata())
    yield stand_in
    stand_in.close()


# --------------------------------------------------------------------------------------------
# Database (ledger) — fixtures for tests/test_ledger*.py
#
# `pg_test_database` (session): URL of a PostgreSQL database made for this session
#   (`clearing_test_<uuid>`) and dropped at its end, on the server of CLEARING_PG_URL if set,
#   else on the local cluster of deploy/postgres.sh (started if needed, left running). The
#   role needs CREATEDB (deploy/postgres.sh grants it).
# `db_url` (function; params sqlite, postgresql): an empty ledger database for one test: a
#   SQLite file under tmp_path, or a fresh schema (via search_path) in the session database.
# --------------------------------------------------------------------------------------------

POSTGRES_SCRIPT = ROOT / "deploy" / "postgres.sh"


def postgres_server_url() -> str:
    """CLEARING_PG_URL, else the URL `deploy/postgres.sh start` prints."""
    url = os.environ.get("CLEARING_PG_URL")
    if url:
        return url
    done = subprocess.run(
        [str(POSTGRES_SCRIPT), "start"], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"deploy/postgres.sh start failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def pg_test_database() -> Iterator[str]:
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.exc import SQLAlchemyError

    from clearing.store.db import normalize_url

    name = f"clearing_test_{uuid.uuid4().hex[:12]}"
    try:
        server = normalize_url(postgres_server_url())
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except (OSError, RuntimeError, subprocess.TimeoutExpired, SQLAlchemyError) as exc:
        unavailable(f"no PostgreSQL for the ledger tests: {exc}")
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    from sqlalchemy import create_engine, make_url, text

    database = request.getfixturevalue("pg_test_database")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(database)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        engine.dispose()
    url = make_url(database).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture
def ledger(db_url: str) -> Iterator:
    """A migrated, empty `clearing.ledger.store.Ledger` on `db_url`."""
    from clearing.ledger.store import Ledger

    with Ledger(db_url) as opened:
        yield opened


# --------------------------------------------------------------------------------------------
# Stream (clearing/stream) — helpers for tests/test_stream*.py
#
# `stream_prefix_name()`: a topic prefix no other test or earlier run has used.
# `stream_topics_cleanup(bootstrap, prefix)`: best-effort removal of a prefix's topics.
# `stream_prefix` (function): a fresh prefix whose topics are removed after the test.
# --------------------------------------------------------------------------------------------


def stream_prefix_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def stream_topics_cleanup(bootstrap: str, prefix: str) -> None:
    from clearing.topics import Topics

    delete_topics(bootstrap, Topics(prefix).all())


@pytest.fixture
def stream_prefix(kafka_bootstrap: str) -> Iterator[str]:
    prefix = stream_prefix_name()
    yield prefix
    stream_topics_cleanup(kafka_bootstrap, prefix)


# --------------------------------------------------------------------------------------------
# The long suites — `pytest --full`
#
# Tests marked `slow` (the full fault suite: 100,000-event runs with many crashes) run only
# with `--full`. Without it they are deselected by choice, not for want of a service, so this
# skip holds under CI=true too: CI runs the short versions of the same checks.
# --------------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full", action="store_true", default=False, help="also run the tests marked slow"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--full"):
        return
    skip = pytest.mark.skip(reason="long suite: run with --full")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
