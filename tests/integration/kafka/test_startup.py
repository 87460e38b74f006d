"""Start-up and shut-down on the real broker: private state, migrations once, no orphan.

- Four workers started together on a fresh ledger all come up (the migrations run once, before
  they start), and the run equals the offline recompute; everything the run creates under
  CLEARING_HOME and in its output folder is the user's only (directories 0700, files 0600).
  Once, twice in a row (CI) and ten times in a row (`--full`).
- `clearing run` and the demo stopped by SIGTERM or SIGINT mid-way stop every worker they
  started: none is left, by pid and by a scan of /proc for the workers' command line.
- `clearing run` on a PostgreSQL ledger never shows the URL's password, in its output or in
  its workers' logs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fixtures.stream import stream_prefix_name, stream_topics_cleanup
from sqlalchemy import create_engine, make_url, text
from support.paths import CASES, ROOT
from support.stream import assert_same_statement, offline_results, offline_statements, read_jsonl

from clearing.ops.run import RunConfig, run
from clearing.ops.simulate.bundle import generate_bundle
from clearing.ops.workers import free_port, stop_workers, wait_for_web

pytestmark = pytest.mark.kafka

CLEARING = [sys.executable, "-m", "clearing.cli"]
DEMO = [sys.executable, "-m", "clearing.ops.demo"]


def worker_pids(prefix: str) -> set[int]:
    """Every live process that is a stream worker of `prefix`, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue
        if b"clearing.worker" in cmdline and f"CLEARING_TOPIC_PREFIX={prefix}".encode() in environ:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def private(root: Path) -> list[str]:
    """Paths under `root` (itself included) that anyone but their owner may read or enter."""
    loose = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        if path.stat().st_mode & 0o077:
            loose.append(f"{oct(path.stat().st_mode & 0o777)} {path}")
    return loose


@pytest.fixture
def restore_umask() -> Iterator[None]:
    """`run` makes this process's umask 077 (as it does for the command); put it back."""
    before = os.umask(0o022)
    os.umask(before)
    try:
        yield
    finally:
        os.umask(before)


@pytest.fixture
def big_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle long enough that a run is still going when it is stopped."""
    folder = tmp_path_factory.mktemp("bundle")
    generate_bundle(folder, events=20_000, seed=5, period="2026-01")
    return folder


def four_workers_on_a_fresh_ledger(
    kafka_bootstrap: str, root: Path, monkeypatch: pytest.MonkeyPatch, expected: list[dict]
) -> float:
    """One `clearing run --workers 4` on a fresh ledger (its own CLEARING_HOME and prefix):
    every worker up (web server answering, alive, no lost race on a table in its log), the
    results and statements equal to the offline recompute, every path private. Its seconds."""
    home, out = root / "home", root / "out"
    prefix = stream_prefix_name()
    monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("CLEARING_HOME", str(home))
    config = RunConfig(
        refdata=CASES / "refdata",
        events=CASES / "events.jsonl",
        out=out,
        workers=4,
        prefix=prefix,
        web_port=free_port(),
        stall_timeout=120,
        keep_workers=True,
    )
    started = time.monotonic()
    try:
        summary = run(config)
        try:
            assert len(summary.workers) == 4
            for worker in summary.workers:
                assert wait_for_web(worker, timeout=60), worker.log_tail()
                assert worker.alive(), worker.log_tail()
                assert "already exists" not in worker.log_tail(200)
        finally:
            stop_workers(summary.workers)
        seconds = time.monotonic() - started
        assert read_jsonl(out / "results.jsonl") == expected
        statements = offline_statements(expected)
        assert summary.periods == sorted(statements)
        for period, want in statements.items():
            got = orjson.loads((out / f"statement-{period}.json").read_bytes())
            assert_same_statement(got, want)
            assert got["transfers"] == want["transfers"]
        ledger = home / "runs" / prefix / "ledger.sqlite"
        assert ledger.is_file()
        assert sorted(p.name for p in (home / "runs" / prefix).glob("worker-*.log")) == [
            f"worker-{n}.log" for n in range(1, 5)
        ]
        assert private(home) == []
        assert private(out) == []
        return seconds
    finally:
        stream_topics_cleanup(kafka_bootstrap, prefix)


def repeated_runs(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs: int
) -> list[float]:
    """`runs` runs in a row, each on a fresh ledger; every one must pass. Their seconds."""
    expected = offline_results(CASES / "refdata", CASES / "events.jsonl")
    seconds = []
    for number in range(1, runs + 1):
        try:
            seconds.append(
                four_workers_on_a_fresh_ledger(
                    kafka_bootstrap, tmp_path / f"run-{number}", monkeypatch, expected
                )
            )
        except AssertionError as exc:
            raise AssertionError(f"run {number} of {runs}: {exc}") from exc
    print(f"{runs} runs of 4 workers, seconds each: {', '.join(f'{s:.1f}' for s in seconds)}")
    return seconds


def test_four_workers_on_a_fresh_ledger_all_come_up_and_state_is_private(
    kafka_bootstrap, tmp_path, monkeypatch, restore_umask
):
    repeated_runs(kafka_bootstrap, tmp_path, monkeypatch, runs=1)


def test_four_workers_on_a_fresh_ledger_twice_in_a_row(
    kafka_bootstrap, tmp_path, monkeypatch, restore_umask
):
    """CI's short version of the ten runs below."""
    assert len(repeated_runs(kafka_bootstrap, tmp_path, monkeypatch, runs=2)) == 2


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_full_four_workers_on_a_fresh_ledger_ten_times_in_a_row(
    kafka_bootstrap, tmp_path, monkeypatch, restore_umask
):
    """Issue 13's check: `clearing run --workers 4` ten times, every worker up every time and
    every run equal to the offline recompute (workers once lost the race on the migrations)."""
    assert len(repeated_runs(kafka_bootstrap, tmp_path, monkeypatch, runs=10)) == 10


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as handle:
        return subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


def stop_and_check(process: subprocess.Popen[bytes], signum: int, prefix: str) -> list[int]:
    """Waits for the workers, sends `signum`, and proves none is left; returns their pids."""
    wait_for(lambda: worker_pids(prefix) or process.poll() is not None, 240, "the workers")
    assert process.poll() is None, "the run ended before it could be stopped"
    pids = sorted(worker_pids(prefix))
    assert pids
    process.send_signal(signum)
    process.wait(90)
    for pid in pids:
        assert not alive(pid), f"worker {pid} outlived its parent"
    assert worker_pids(prefix) == set()
    return pids


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_clearing_run_stopped_leaves_no_worker(
    kafka_bootstrap, tmp_path, big_bundle, signum
):
    prefix = stream_prefix_name()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CLEARING_HOME": str(tmp_path / "home"),
    }
    log = tmp_path / "run.log"
    command = [
        *CLEARING, "run", "--refdata", str(big_bundle / "refdata"), "--out", str(tmp_path / "out"),
        "--workers", "2", "--prefix", prefix, "--web-port", str(free_port()),
        str(big_bundle / "events.jsonl"),
    ]
    process = start(command, env, log)
    try:
        stop_and_check(process, signum, prefix)
        assert process.returncode == (128 + signum if signum == signal.SIGTERM else 130)
        assert "every worker stopped" in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
        stream_topics_cleanup(kafka_bootstrap, prefix)


def test_demo_serving_stopped_by_sigterm_leaves_no_worker(kafka_bootstrap, tmp_path):
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CLEARING_HOME": str(tmp_path / "home"),
    }
    log = tmp_path / "demo.log"
    command = [
        *DEMO, "--serve", "--events", "1000", "--out", str(tmp_path / "out"),
        "--web-port", str(free_port()),
    ]
    process = start(command, env, log)
    try:
        wait_for(
            lambda: "dashboard at" in log.read_text() or process.poll() is not None,
            300,
            "the demo to serve",
        )
        assert process.poll() is None, log.read_text()[-3000:]
        prefix = next(
            line.split("topics ")[1].split(".*")[0]
            for line in log.read_text().splitlines()
            if "(topics " in line
        )
        stop_and_check(process, signal.SIGTERM, prefix)
        assert private(tmp_path / "home") == []
        assert private(tmp_path / "out") == []
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.postgres
def test_clearing_run_never_shows_the_database_password(
    kafka_bootstrap, tmp_path, pg_test_database
):
    """The run's PostgreSQL URL carries a password: not in the output, not in a worker log."""
    password = make_url(pg_test_database).password
    assert password
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(pg_test_database)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(pg_test_database).update_query_dict({"options": f"-csearch_path={schema}"})
    prefix = stream_prefix_name()
    home = tmp_path / "home"
    env = {**os.environ, "KAFKA_BOOTSTRAP": kafka_bootstrap, "CLEARING_HOME": str(home)}
    try:
        done = subprocess.run(
            [
                *CLEARING, "run", "--refdata", str(CASES / "refdata"),
                "--out", str(tmp_path / "out"), "--prefix", prefix,
                "--db", url.render_as_string(hide_password=False),
                "--web-port", str(free_port()), "--log-level", "info",
                str(CASES / "events.jsonl"),
            ],
            env=env, capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert ":***@" in done.stderr
        assert password not in done.stdout + done.stderr
        logs = list((home / "runs" / prefix).glob("worker-*.log"))
        assert logs
        for log in logs:
            assert password not in log.read_text(errors="replace")
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
        stream_topics_cleanup(kafka_bootstrap, prefix)
