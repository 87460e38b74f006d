"""A process stopped by a signal ends, and takes its workers with it, even when its way out
hangs (`stopping_on_signals`' watchdog) or a library swallowed the stop; one whose way out is
quick is left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# A stand-in worker (a process in its own session, registered as a Worker) and a main thread
# that, once stopped, hangs on its way out as a half-made producer batch once made it hang.
HANGS = """
    import subprocess, sys, threading, time
    from pathlib import Path
    from clearing.ops import workers

    child = subprocess.Popen(["sleep", "300"], start_new_session=True)
    worker = workers.Worker("1", {}, Path("unused.log"), process=child)
    workers._running.append(worker)
    print(child.pid, flush=True)
    with workers.stopping_on_signals(deadline=DEADLINE):
        try:
            time.sleep(120)
        finally:
            threading.Event().wait()
"""

QUICK = """
    import time
    from clearing.ops import workers

    print(0, flush=True)
    try:
        with workers.stopping_on_signals(deadline=DEADLINE):
            time.sleep(120)
    except (workers.Stopped, KeyboardInterrupt):
        print("stopped", flush=True)
    time.sleep(DEADLINE + 2)
    print("still here", flush=True)
"""

# A library on the main thread that swallows what its tasks raise, as kafka-python's does.
SWALLOWED = """
    import time
    from clearing.ops import workers

    print(0, flush=True)
    try:
        with workers.stopping_on_signals(deadline=60):
            try:
                time.sleep(120)
            except BaseException:
                pass
            print("went on", flush=True)
    except (workers.Stopped, KeyboardInterrupt):
        print("stopped", flush=True)
"""

# The same library called in a loop that checks for a stop at every turn, as `clearing run`'s
# publishing and collecting do: the stop ends the loop at once, not when the work is done.
CHECKED_LOOP = """
    import time
    from clearing.ops import workers

    print(0, flush=True)
    started = time.monotonic()
    try:
        with workers.stopping_on_signals(deadline=60):
            while time.monotonic() - started < 60:
                try:
                    time.sleep(0.05)
                except BaseException:
                    pass
                workers.raise_if_stopped()
            print("went on to the end", flush=True)
    except (workers.Stopped, KeyboardInterrupt):
        print(f"stopped after {time.monotonic() - started:.1f}s", flush=True)
    workers.raise_if_stopped()
    print("outside the block no stop is pending", flush=True)
"""


def run_and_stop(
    script: str, deadline: float, signum: int
) -> tuple[subprocess.Popen[str], int]:
    code = textwrap.dedent(script).replace("DEADLINE", repr(deadline))
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    child = int(process.stdout.readline())
    time.sleep(0.3)  # inside the block
    process.send_signal(signum)
    return process, child


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


SIGNALS = pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["SIGTERM", "SIGINT", "SIGHUP"]
)


@SIGNALS
def test_a_way_out_that_hangs_ends_at_the_deadline_with_no_worker_left(signum):
    process, child = run_and_stop(HANGS, 2.0, signum)
    try:
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        if alive(child):
            os.kill(child, signal.SIGKILL)
    assert process.returncode == 128 + signum
    name = signal.Signals(signum).name
    assert f"stopped by {name}, still unwinding after 2s; every worker stopped" in err
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)  # reaped by init once its parent is gone
    assert not alive(child), "the worker outlived the process that started it"


def lines_after_a_stop(script: str, deadline: float, signum: int) -> list[str]:
    """The output lines of a script that catches its stop and ends normally (exit status 0)."""
    process, _ = run_and_stop(script, deadline, signum)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    return out.splitlines()


@SIGNALS
def test_a_quick_way_out_is_not_cut_short_later(signum):
    assert lines_after_a_stop(QUICK, 1.0, signum) == ["stopped", "still here"]


@SIGNALS
def test_a_stop_a_library_swallowed_is_raised_again_on_the_way_out(signum):
    assert lines_after_a_stop(SWALLOWED, 60.0, signum) == ["went on", "stopped"]


@SIGNALS
def test_a_checked_loop_ends_at_its_next_turn_when_a_library_swallowed_the_stop(signum):
    stopped, outside = lines_after_a_stop(CHECKED_LOOP, 60.0, signum)
    assert stopped.startswith("stopped after ")
    assert float(stopped.removeprefix("stopped after ").removesuffix("s")) < 5
    assert outside == "outside the block no stop is pending"
