"""deploy/kafka.sh on a state root of its own: a broker whose retained data cannot come up again
(as a broker killed under a stopped machine can leave it) is formatted afresh and started, not
left failing every later `make test` or `make demo`."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.kafka import KAFKA_SCRIPT, kafka_answers

from clearing.kafka_auth import KafkaAuth

pytestmark = pytest.mark.kafka


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def script(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KAFKA_SCRIPT), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "CLEARING_HOME": str(tmp_path / "home"),
        "KAFKA_PORT": str(free_port()),
        "KAFKA_CONTROLLER_PORT": str(free_port()),
    }
    try:
        yield env
    finally:
        script("stop", env)


def test_a_broker_that_cannot_come_up_on_its_data_is_formatted_afresh(
    own_broker: dict[str, str],
) -> None:
    env = own_broker
    first = script("start", env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert script("stop", env).returncode == 0
    meta = Path(env["CLEARING_HOME"]) / "kafka/data/meta.properties"
    # A node id the configuration does not have: Kafka refuses to start on this data.
    meta.write_text(meta.read_text().replace("node.id=1", "node.id=7"))

    again = script("start", env)

    assert again.returncode == 0, again.stdout + again.stderr
    assert "did not come up on the data it had" in again.stderr
    assert "node.id=1" in meta.read_text()
    auth = KafkaAuth.from_properties_file(
        Path(env["CLEARING_HOME"]) / "kafka/secrets/admin.properties"
    )
    assert kafka_answers(f"127.0.0.1:{env['KAFKA_PORT']}", timeout=20, auth=auth)
