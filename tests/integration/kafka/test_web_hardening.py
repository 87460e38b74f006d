"""The worker's web server, as `faust worker` serves it, under hostile requests: raw-socket
requests that aiohttp's own parser refuses, tokens planted in headers, query strings and bodies,
and stalled headers and bodies. Every answer is JSON and quotes nothing; the worker's log file
holds none of the planted secrets (tests/unit/api/test_api_http.py checks the same without a
process of its own).
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import orjson
import pytest
from support.builders import CATALOG, POLICY
from support.stream import Pipeline
from support.web import Raw, parse, receive

from clearing import auth
from clearing.ops.workers import Worker, free_port, wait_for_web, worker_env
from clearing.store.db import open_engine

pytestmark = pytest.mark.kafka

READ_TIMEOUT = 2.0


def send(port: int, data: bytes, timeout: float = 30) -> Raw:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except OSError:  # closed before all was read: what came back is still parsed
            return parse(b"", True)
        return receive(sock, timeout)


def request(method: str, target: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def test_a_worker_answers_hostile_requests_in_json_and_logs_no_secret(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    refdata = tmp_path / "refdata"
    for folder, doc in (("policies", POLICY), ("catalogs", CATALOG)):
        (refdata / folder).mkdir(parents=True)
        (refdata / folder / "doc.json").write_bytes(orjson.dumps(doc))
    pipeline = Pipeline(kafka_bootstrap, tmp_path / "run", log_level="debug")
    worker: Worker | None = None
    try:
        pipeline.create(refdata)
        engine = open_engine(pipeline.db_url)
        hospital = auth.add(engine, "hospital", "H1")
        operator = auth.add(engine, "operator", "olga")
        engine.dispose()
        env = worker_env(pipeline.bootstrap, pipeline.prefix, pipeline.db_url, free_port(), 1)
        env["CLEARING_HOME"] = str(pipeline.workdir / "home")
        env["CLEARING_WEB_READ_TIMEOUT"] = str(READ_TIMEOUT)
        worker = Worker("1", env, pipeline.workdir / "worker-1.1.log", "debug").start()
        pipeline.workers[1] = worker
        assert wait_for_web(worker, timeout=120), worker.log_tail()
        port = worker.web_port

        secret = "PLANTED" + secrets.token_urlsafe(32)
        long = secret + "A" * 9000
        bearer = {"Authorization": f"Bearer {hospital}"}
        hostile = [
            request("GET", "/v1/settlements/S1", {"Authorization": f"Bearer {long}"}),
            request("GET", f"/v1/settlements/S1?access_token={long}", {}),
            request("GET", "/dashboard/api/overview", {"Authorization": f"Bearer {long}"}),
            f"GET / HTTP/1.1\r\nAuthorization {secret}\r\n\r\n".encode(),
            f"G\x01T /?token={secret} HTTP/1.1\r\n\r\n".encode(),
            request("GET", f"/v1/settlements/S1?access_token={secret}", {}),
            request("GET", f"/nowhere?access_token={secret}", {}),
            request("GET", "/dashboard/api/live", {"Authorization": f"Bearer {secret}"}),
            request("GET", "/dashboard/api/overview", bearer),  # a hospital's: 403
            request("PUT", "/v1/settlements", bearer),
            request("POST", "/v1/settlements", bearer, f'{{"type": "{secret}"}}'.encode()),
            request("POST", "/v1/settlements", bearer, f'{{"{secret}": 1}}'.encode()),
            request("POST", "/v1/settlements", bearer, secret.encode()),
        ]
        replies = [send(port, data) for data in hostile]
        for reply in replies:
            assert 400 <= reply.status < 500, reply.raw[:300]
            assert reply.headers["content-type"].startswith("application/json")
            assert isinstance(reply.json()["error"], str)
            assert secret.encode() not in reply.raw and hospital.encode() not in reply.raw
        assert [r.status for r in replies][-5:] == [403, 405, 400, 400, 400]

        # Stalled headers are cut off, a stalled body gets 408, and both are disconnected.
        import socket

        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET /v1/openapi.json HTTP/1.1\r\nHost: a\r\nX-Slow: ")
            stalled = receive(sock, timeout=30)
        assert stalled.closed and time.monotonic() - started < 30
        body_head = request(
            "POST",
            "/dashboard/api/periods/2026-03/close",
            {"Authorization": f"Bearer {operator}", "Content-Length": "100"},
        )
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(body_head + b'{"force"')
            partial = receive(sock, timeout=30)
        assert partial.status == 408 and partial.closed
        assert partial.json()["error"]

        pipeline.stop()
        logs = pipeline.logs()
        assert "LineTooLong" in logs  # the refusals are logged, as their kind
        for planted in (secret, secret[:16], hospital, operator, hospital[:12]):
            assert planted not in logs
        assert not re.search(r"Bearer\s+\S", logs)
        assert not re.search(r"Authorization['\"]?\s*[:=]", logs)
    finally:
        pipeline.cleanup()
