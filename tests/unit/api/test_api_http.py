"""The worker's web server under hostile requests, over raw sockets so that aiohttp's own
parser sees them (no broker: the API and the dashboard mounted on a faust app's web server, as
the worker mounts them).

- Every answer is JSON `{"error": ...}`, including what aiohttp refuses before any handler
  runs (over-long request lines and headers, malformed headers, bad methods, bad lengths) and
  what routing answers (404, 405, 413).
- No planted credential is ever echoed in an answer nor written to a log: long and malformed
  `Authorization` headers, bearer tokens in query strings and in bodies.
- A client that stalls in its headers or its body is answered 408 or disconnected after the
  read timeout.
"""

from __future__ import annotations

import logging
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from support.builders import settlement
from support.web import Raw, ServedWeb, receive

from clearing import auth
from clearing.config import Settings
from clearing.core.errors import InputError
from clearing.store.db import open_engine

READ_TIMEOUT = 1.0


def planted(n: int = 40) -> str:
    """A secret that looks like a token; its presence anywhere is a leak."""
    return "PLANTED" + secrets.token_urlsafe(n)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServedWeb, dict[str, str]]]:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    engine = open_engine(url)
    tokens = {
        "hospital": auth.add(engine, "hospital", "H1"),
        "operator": auth.add(engine, "operator", "olga"),
        "viewer": auth.add(engine, "viewer", "vera"),
    }
    engine.dispose()
    web = ServedWeb(tmp_path, url, read_timeout=READ_TIMEOUT)
    try:
        yield web, tokens
    finally:
        web.close()


def request(
    method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def assert_json_error(reply: Raw, status: int | tuple[int, ...]) -> None:
    statuses = (status,) if isinstance(status, int) else status
    assert reply.status in statuses, reply.raw[:300]
    assert reply.headers["content-type"].startswith("application/json"), reply.raw[:300]
    assert isinstance(reply.json()["error"], str)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record as formatted, with its traceback."""
    handler = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(handler.format(record) for record in caplog.records)


def assert_nowhere(secret: str, replies: list[Raw], caplog: pytest.LogCaptureFixture) -> None:
    for reply in replies:
        assert secret.encode() not in reply.raw, reply.raw[:300]
        assert secret[:16].encode() not in reply.raw
    text = logged(caplog)
    assert secret not in text and secret[:16] not in text


# ------------------------------------------------------------------------- aiohttp's refusals


def test_what_aiohttp_refuses_is_answered_in_json_quoting_nothing(
    served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    web, tokens = served
    secret = planted()
    long_token = secret + "A" * 9000  # past aiohttp's 8,190-byte limit on a header
    cases = {
        "long Authorization": request(
            "GET", "/v1/settlements/S1", {"Authorization": f"Bearer {long_token}"}
        ),
        "long request line": request("GET", f"/v1/settlements/S1?access_token={long_token}"),
        "long header name": request("GET", "/", {secret + "X" * 9000: "1"}),
        "malformed header": f"GET / HTTP/1.1\r\nHost: a\r\nAuthorization {secret}\r\n\r\n",
        "control character": f"GET / HTTP/1.1\r\nAuthorization: Bearer {secret}\x01\r\n\r\n",
        "bad method": f"G\x01T /?token={secret} HTTP/1.1\r\nHost: a\r\n\r\n",
        "bad request line": f"{secret}\r\n\r\n",
        "bad content length": request("POST", "/v1/settlements", {"Content-Length": secret}),
        "bad chunk": request(
            "POST",
            "/v1/settlements",
            {"Transfer-Encoding": "chunked", "Authorization": f"Bearer {tokens['hospital']}"},
        )
        + f"zz{secret}\r\n".encode(),
        "bad version": f"GET / HTTP/9.{secret}\r\n\r\n",
    }
    replies = []
    for name, data in cases.items():
        raw = data if isinstance(data, bytes) else data.encode("latin-1")
        reply = web.send(raw)
        assert_json_error(reply, (400, 413, 431, 501))
        assert reply.closed, name
        replies.append(reply)
    assert_nowhere(secret, replies, caplog)
    for token in tokens.values():
        assert_nowhere(token, replies, caplog)
    # The refusals are logged, at most as their kind.
    assert "LineTooLong" in logged(caplog)
    assert not [r for r in caplog.records if r.name.startswith("aiohttp") and r.exc_info]


def test_routing_errors_and_bodies_are_answered_in_json(
    served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    web, tokens = served
    secret = planted()
    hospital = {"Authorization": f"Bearer {tokens['hospital']}"}
    operator = {"Authorization": f"Bearer {tokens['operator']}"}
    json_body = {"Content-Type": "application/json"}
    replies = []

    def check(status: int | tuple[int, ...], data: bytes) -> Raw:
        reply = web.send(data)
        assert_json_error(reply, status)
        replies.append(reply)
        return reply

    check(404, request("GET", f"/nothing/{secret}?access_token={secret}"))
    check(404, request("GET", f"/v1/nothing?token={secret}", hospital))
    check(404, request("GET", f"/dashboard/api/{secret}", operator))
    not_allowed = check(405, request("PUT", "/v1/settlements", hospital))
    assert "POST" in not_allowed.headers["allow"]
    check(405, request("DELETE", "/dashboard/api/overview", operator))
    check(401, request("GET", f"/v1/settlements/S1?access_token={secret}"))
    check(401, request("GET", f"/dashboard/api/overview?access_token={secret}"))
    check(401, request("GET", "/v1/settlements/S1", {"Authorization": f"Bearer {secret} x"}))
    check(401, request("GET", "/v1/settlements/S1", {"Authorization": f"Basic {secret}"}))
    check(401, request("GET", "/dashboard/api/live", {"Authorization": secret}))
    check(401, request("GET", "/v1/settlements/S1", {"Authorization": "Bearer é" + secret}))
    check(413, request("POST", "/v1/settlements", hospital, b"x" * (4 * 1024 * 1024 + 1)))
    check(413, request("POST", "/dashboard/api/periods/2026-03/close", operator, b"{" * 70_000))
    check(400, request("POST", "/v1/settlements", {**hospital, **json_body}, secret.encode()))
    check(400, request("POST", "/v1/settlements", hospital, b'{"token": "' + secret.encode()))
    check(400, request("POST", "/dashboard/api/flags/X/review", operator, secret.encode()))
    # Tokens in a body's fields, valid JSON but not an event.
    for body in (
        {"type": "settlement", "hospital_id": secret, "settlement_id": secret},
        {**settlement("S1"), "hospital_id": secret},
        {**settlement("S1"), "hospital_id": "H1", "person_id": secret + " \u0000"},
        {**settlement("S1"), "insured_region": secret},
        {**settlement("S1"), "items": [{"code": secret}]},
        {"type": secret},
        {secret: secret},
        [secret],
    ):
        reply = check((400, 403), request("POST", "/v1/settlements", hospital, orjson.dumps(body)))
        assert reply.json()["error"]
    assert_nowhere(secret, replies, caplog)


def test_a_planted_token_is_never_logged_nor_echoed_to_an_http_client(
    served, caplog: pytest.LogCaptureFixture
) -> None:
    """The same through an ordinary client (urllib), as most callers are."""
    caplog.set_level(logging.DEBUG)
    web, tokens = served
    secret = planted()
    base = f"http://127.0.0.1:{web.port}"

    def call(path: str, token: str | None = None, body: dict | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = orjson.dumps(body) if body is not None else None
        sent = urllib.request.Request(base + path, data, headers)
        try:
            with urllib.request.urlopen(sent, timeout=30) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as error:
            assert error.headers["Content-Type"].startswith("application/json")
            return error.code, error.read()

    replies = [
        call("/v1/settlements/S1", secret),
        call(f"/v1/settlements/S1?bearer={secret}"),
        call("/dashboard/api/overview", secret),
        call("/dashboard/api/whoami", tokens["hospital"]),
        call("/v1/reversals", tokens["hospital"], {"reason": secret}),
        call("/v1/settlements/trial", secret, {"x": secret}),
    ]
    assert [status for status, _ in replies] == [401, 401, 401, 403, 400, 401]
    for _status, body in replies:
        assert secret.encode() not in body and tokens["hospital"].encode() not in body
    text = logged(caplog)
    assert secret not in text and tokens["hospital"] not in text


# ------------------------------------------------------------------------- read timeouts


def test_a_client_stalling_in_its_headers_is_disconnected(served) -> None:
    web, _tokens = served
    with web.connect() as sock:
        sock.sendall(b"GET /v1/openapi.json HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        stalled = receive(sock, timeout=10 * READ_TIMEOUT)
    assert stalled.closed and stalled.status in (0, 408)
    # A slowloris that keeps sending a byte at a time is cut off all the same.
    with web.connect() as sock:
        sock.sendall(b"GET /v1/openapi.json HTTP/1.1\r\n")
        started = time.monotonic()
        cut = False
        while time.monotonic() - started < 10 * READ_TIMEOUT:
            try:
                sock.sendall(b"X-A: b\r\n")
            except OSError:
                cut = True
                break
            time.sleep(READ_TIMEOUT / 5)
        trickled = receive(sock, timeout=READ_TIMEOUT) if not cut else None
    assert cut or (trickled is not None and trickled.closed and trickled.status in (0, 408))
    # A connection that never sends anything is closed too.
    with web.connect() as sock:
        idle = receive(sock, timeout=10 * READ_TIMEOUT)
    assert idle.closed and idle.status == 0
    # And a whole request is answered as usual.
    reply = web.send(request("GET", "/v1/openapi.json"))
    assert reply.status == 200 and reply.json()["openapi"].startswith("3.1")


@pytest.mark.parametrize(
    ("path", "who"),
    [
        ("/v1/settlements", "hospital"),
        ("/v1/settlements/trial", "hospital"),
        ("/v1/reversals", "hospital"),
        ("/dashboard/api/periods/2026-03/close", "operator"),
        ("/dashboard/api/flags/X/review", "operator"),
    ],
)
def test_a_client_stalling_in_its_body_gets_408_and_is_disconnected(
    served, path: str, who: str
) -> None:
    web, tokens = served
    head = request(
        "POST", path, {"Authorization": f"Bearer {tokens[who]}", "Content-Length": "1000"}
    )
    with web.connect() as sock:
        sock.sendall(head + b'{"type": "settl')
        reply = receive(sock, timeout=10 * READ_TIMEOUT)
    assert_json_error(reply, 408)
    assert reply.closed


def test_the_read_timeout_is_a_setting() -> None:
    assert Settings.from_env({}).web_read_timeout == 15.0
    assert Settings.from_env({"CLEARING_WEB_READ_TIMEOUT": "2.5"}).web_read_timeout == 2.5
    with pytest.raises(InputError, match="CLEARING_WEB_READ_TIMEOUT"):
        Settings.from_env({"CLEARING_WEB_READ_TIMEOUT": "soon"})
