"""End to end: the real faust worker (`clearing.worker`) with the API installed on its web
server, on the real broker. A hospital's settlement goes in over HTTP and comes back priced.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from fixtures.kafka import free_port
from support.builders import CATALOG, POLICY, refdata, reversal, settlement
from support.paths import ROOT

from clearing import auth
from clearing.core.pricer import Pricer
from clearing.ops.publish import publish
from clearing.store.db import open_engine
from clearing.topics import Topics, delete_topics, ensure_topics

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

# The hook the stream's app module carries (a no-op here if it already does).
WORKER = (
    "import clearing.worker as m; from clearing.api import ApiConfig, install; "
    "install(m.app, ApiConfig.from_stream(m.config)); m.app.main()"
)


@dataclass
class Worker:
    url: str
    tokens: dict[str, str]
    log: Path

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        """(status, headers, parsed JSON body)."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = orjson.dumps(body) if body is not None else None
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), orjson.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), orjson.loads(error.read())


@pytest.fixture
def worker(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Worker]:
    prefix = f"apie2e-{os.urandom(6).hex()}"
    ensure_topics(kafka_bootstrap, prefix)
    for folder, name, doc in (("policies", "p.json", POLICY), ("catalogs", "c.json", CATALOG)):
        (tmp_path / "refdata" / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / "refdata" / folder / name).write_bytes(orjson.dumps(doc))
    publish(kafka_bootstrap, Topics(prefix), tmp_path / "refdata", None, progress=False)

    db_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    engine = open_engine(db_url)
    tokens = {h: auth.add(engine, "hospital", h) for h in ("H1", "H2")}
    engine.dispose()

    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CLEARING_TOPIC_PREFIX": prefix,
        "CLEARING_DB_URL": db_url,
        "CLEARING_HOME": str(tmp_path / "home"),
        "CLEARING_WEB_PORT": str(port),
        "CLEARING_API_WAIT": "15",
    }
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", WORKER, "worker", "-l", "info"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Worker(f"http://127.0.0.1:{port}", tokens, log)
    try:
        wait_for_web(running, process)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        delete_topics(kafka_bootstrap, prefix)


def wait_for_web(worker: Worker, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            pytest.fail(f"worker exited {process.returncode}:\n{worker.log.read_text()[-4000:]}")
        try:
            if worker.call("GET", "/v1/openapi.json")[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"worker web server not up:\n{worker.log.read_text()[-4000:]}")
        time.sleep(0.3)


def test_a_submitted_settlement_is_priced_by_the_worker(worker: Worker) -> None:
    h1, h2 = worker.tokens["H1"], worker.tokens["H2"]
    event = settlement("S1")
    status, headers, body = worker.call("POST", "/v1/settlements", event, h1)
    assert status == 201, (body, worker.log.read_text()[-3000:])
    assert headers["Location"] == "/v1/settlements/S1"
    expected = Pricer(refdata()).process(orjson.dumps(event)).model_dump(exclude_none=True)
    assert body == expected

    status, _, again = worker.call("POST", "/v1/settlements", event, h1)
    assert (status, again) == (200, expected)
    status, _, read = worker.call("GET", "/v1/settlements/S1", token=h1)
    assert (status, read) == (200, expected)
    assert worker.call("GET", "/v1/settlements/S1", token=h2)[0] == 404
    assert worker.call("POST", "/v1/settlements", settlement("S1", emergency=True), h1)[0] == 409
    assert worker.call("POST", "/v1/reversals", reversal("R1", "S1"), h2)[0] == 403

    status, _, reversed_ = worker.call("POST", "/v1/reversals", reversal("R1", "S1"), h1)
    assert status == 201
    assert reversed_["status"] == "reversed"
    assert reversed_["fund_pay_fen"] == -expected["fund_pay_fen"]

    status, _, invalid = worker.call("POST", "/v1/settlements", {"type": "settlement"}, h1)
    assert status == 400
    assert {"settlement_id", "items"} <= {f["field"] for f in invalid["fields"]}
    assert worker.call("POST", "/v1/settlements", event)[0] == 401
