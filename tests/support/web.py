"""The worker's web server as the worker serves it, without a broker: a faust app with the API
and the dashboard installed, started on a free port on an event loop of its own (a thread), so
tests can talk to it over raw sockets and see what aiohttp's own parser answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from clearing.topics import Topics
from support.dashboard import GROUP, PREFIX, StandInLag


@dataclass
class Raw:
    """What came back on a socket: the status (0 when nothing did), headers, body, and whether
    the server closed the connection."""

    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes
    closed: bool

    def json(self):
        return orjson.loads(self.body)


class ServedWeb:
    def __init__(self, folder: Path, db_url: str, read_timeout: float = 15.0) -> None:
        import faust

        from clearing.api import ApiConfig
        from clearing.api import install as install_api
        from clearing.dashboard import DashboardConfig
        from clearing.dashboard import install as install_dashboard
        from clearing.ops.workers import free_port

        self.port = free_port()
        self.app = faust.App(
            f"web-test-{self.port}",
            broker="kafka://127.0.0.1:1",
            web_port=self.port,
            web_bind="127.0.0.1",
            datadir=str(folder / "faust"),
        )
        topics = Topics(PREFIX)
        install_api(
            self.app,
            ApiConfig("127.0.0.1:1", topics, db_url, read_timeout=read_timeout, publish_timeout=1),
        )
        dashboard = install_dashboard(
            self.app,
            DashboardConfig(
                "127.0.0.1:1", topics, GROUP, db_url, ttl=60, sample_every=60,
                read_timeout=read_timeout,
            ),
            metrics=False,
        )  # fmt: skip
        assert dashboard is not None
        dashboard.lag_reader = StandInLag()  # type: ignore[assignment]
        dashboard.lag.load = dashboard.lag_reader.read
        self.app.web.init_server()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._run(self.app.web.start_server())

    def _run(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self._run(self.app.web.stop_server())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()

    def connect(self, timeout: float = 30) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def send(self, data: bytes, timeout: float = 30) -> Raw:
        """`data` as it is on a new connection; whatever comes back until the server closes it
        or `timeout` passes."""
        with self.connect(timeout) as sock:
            with contextlib.suppress(OSError):  # the server may close before reading it all
                sock.sendall(data)
            return receive(sock, timeout)


def receive(sock: socket.socket, timeout: float) -> Raw:
    """Reads until the server closes the connection (or `timeout`), then parses one answer."""
    sock.settimeout(timeout)
    data = b""
    closed = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
    return parse(data, closed)


def parse(data: bytes, closed: bool) -> Raw:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/"):
        return Raw(0, {}, b"", data, closed)
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Raw(status, headers, body, data, closed)
