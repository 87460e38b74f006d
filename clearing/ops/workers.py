"""Starting and stopping stream workers (`faust -A clearing.worker worker`) as processes.

No worker outlives the process that started it: each runs in its own process group (a
terminal's Ctrl-C reaches only the parent, which stops them cleanly), `stop` signals the whole
group, `stopping_on_signals` turns SIGTERM and SIGHUP into `Stopped` (SIGINT into
KeyboardInterrupt) so the parent unwinds through its `finally` blocks, and ends it at a deadline
if that hangs, every worker still running at exit is stopped (`atexit`), and a
worker learns its parent's pid (CLEARING_PARENT_PID) and asks the kernel for SIGTERM when that
parent dies, SIGKILL included (`clearing.worker.follow_parent`).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

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
        CLEARING_PARENT_PID=str(os.getpid()),
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )
    return env


class Stopped(BaseException):
    """A signal asked the process that started workers to stop: raised in its main thread so
    that every `finally` on the way out stops what it started."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


# How long the way out of `stopping_on_signals` may take after a signal before the watchdog
# stops the workers itself (as gracefully as `stop_workers` does) and ends the process.
UNWIND_DEADLINE_SECONDS = 15.0


@contextmanager
def stopping_on_signals(
    signals: Iterable[int] = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT),
    deadline: float = UNWIND_DEADLINE_SECONDS,
) -> Iterator[None]:
    """Within it, the first of `signals` raises `Stopped` (SIGINT: KeyboardInterrupt, as
    always); later ones are ignored, so that they cannot interrupt the stopping itself. Only
    in the main thread (elsewhere a no-op: signals reach the main thread only).

    The exception is raised at whatever line the main thread was on, and a library may swallow
    it there (kafka-python's event loop catches whatever a task raises) or be left waiting for
    ever (a client that was connecting never finishes). So a stop is never lost: a block left
    without an exception after a signal raises it again on the way out (catch it outside the
    block), long loops within it raise it again at once (`raise_if_stopped`), and a signal
    starts a watchdog: if the block has not been left `deadline` seconds later, the watchdog
    stops every worker still running and ends the process with the signal's exit status."""
    global _stop_signal
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: int | None = None
    left = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        nonlocal fired
        global _stop_signal
        if fired is None:
            fired = _stop_signal = signum
            threading.Thread(
                target=_exit_unless_left, args=(left, deadline, signum), daemon=True,
                name="unwind-deadline",
            ).start()
            raise _stop_exception(signum)

    outer = _stop_signal
    previous = {signum: signal.signal(signum, handler) for signum in signals}
    try:
        yield
    finally:
        left.set()
        _stop_signal = outer
        for signum, old in previous.items():
            signal.signal(signum, old)
    if fired is not None:
        raise _stop_exception(fired)


# The signal that stopped the innermost `stopping_on_signals` block, while in it.
_stop_signal: int | None = None


def raise_if_stopped() -> None:
    """For loops on the main thread that call into a client library: raises the stop of the
    enclosing `stopping_on_signals` block if a signal came (the library may have swallowed
    it), so that the stop takes effect at the next turn of the loop."""
    if _stop_signal is not None:
        raise _stop_exception(_stop_signal)


def _stop_exception(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Stopped(signum)


def _exit_unless_left(left: threading.Event, deadline: float, signum: int) -> None:
    if left.wait(deadline):
        return
    stop_workers(list(_running))
    name = signal.Signals(signum).name
    print(
        f"{Path(sys.argv[0]).name}: stopped by {name}, still unwinding after {deadline:.0f}s; "
        "every worker stopped; exiting",
        file=sys.stderr, flush=True,
    )
    os._exit(128 + signum)


# Every worker started and not yet stopped, stopped at exit whatever the way out.
_running: list[Worker] = []


def stop_workers(workers: Iterable[Worker], timeout: float = 30.0) -> None:
    """SIGTERM to every worker's group at once, then waits for each (SIGKILL after `timeout`)."""
    workers = list(workers)
    for worker in workers:
        worker.terminate()
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.stop(max(0.0, deadline - time.monotonic()))


def _stop_all_at_exit() -> None:
    stop_workers(list(_running))


atexit.register(_stop_all_at_exit)


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
        _running.append(self)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to clean up."""
        if self.process is not None and self.alive():
            self._signal_group(signal.SIGKILL)
            self.process.wait()

    def terminate(self) -> None:
        """SIGTERM to the worker's process group, without waiting."""
        if self.process is not None and self.alive():
            self._signal_group(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (faust stops cleanly, committing offsets), SIGKILL after `timeout`; then
        SIGKILL to whatever is left of its process group."""
        if self.process is None:
            return None
        if self.alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait()
        self._signal_group(signal.SIGKILL)
        with suppress(ValueError):  # another thread may have stopped it at the same time
            _running.remove(self)
        return self.process.returncode

    def _signal_group(self, signum: int) -> None:
        """The worker leads its own session, so its group id is its pid."""
        if self.process is None:
            return
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

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
