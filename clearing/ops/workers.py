"""Starting and stopping stream workers (`faust -A clearing.worker worker`) as processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from clearing.config import private_state, settings


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def worker_env(
    bootstrap: str, prefix: str, db_url: str, web_port: int, worker_id: str | int
) -> dict[str, str]:
    env = dict(os.environ)
    # The workers log in as this process does: the same variables, or the same properties
    # file when the login comes from one (the local admin file of its own CLEARING_HOME too).
    client_config = settings().kafka_client_config_file()
    if client_config is not None:
        env["KAFKA_CLIENT_CONFIG"] = str(client_config)
    env.update(
        KAFKA_BOOTSTRAP=bootstrap,
        CLEARING_TOPIC_PREFIX=prefix,
        CLEARING_DB_URL=db_url,
        CLEARING_WEB_PORT=str(web_port),
        CLEARING_WORKER_ID=str(worker_id),
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )
    return env


@dataclass
class Worker:
    """One worker process; its output goes to a log file."""

    worker_id: str
    env: dict[str, str]
    log_path: Path
    log_level: str = "warn"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def web_port(self) -> int:
        return int(self.env["CLEARING_WEB_PORT"])

    def start(self) -> Worker:
        private_state()  # the worker inherits it: its ledger, logs and faust data are private
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "faust", "-A", "clearing.worker", "worker"]
        command += ["-l", self.log_level]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to clean up."""
        if self.process is not None and self.alive():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (faust stops cleanly, committing offsets), SIGKILL after `timeout`."""
        if self.process is None:
            return None
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start_workers(
    count: int,
    bootstrap: str,
    prefix: str,
    db_url: str,
    log_dir: Path,
    web_port: int = 6066,
    log_level: str = "warn",
) -> list[Worker]:
    """`count` workers; the first serves the web page on `web_port` (another if it is taken)."""
    workers = []
    for n in range(1, count + 1):
        port = web_port + n - 1
        if not port_is_free(port):
            port = free_port()
        env = worker_env(bootstrap, prefix, db_url, port, n)
        workers.append(Worker(str(n), env, log_dir / f"worker-{n}.log", log_level).start())
    return workers


def wait_for_web(worker: Worker, timeout: float = 60.0) -> bool:
    """True once the worker's web server accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.alive():
        try:
            with socket.create_connection(("127.0.0.1", worker.web_port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False
