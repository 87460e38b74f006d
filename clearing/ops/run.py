"""`clearing run`: a bundle through the broker end to end, with the same outputs as offline.

Topics under a fresh prefix and a fresh ledger database (unless given), worker processes,
publish, wait for one result per input line, close and issue every period, publish the
statements, write `results.jsonl` and `statement-YYYY-MM.json`, stop the workers.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from clearing.config import mask_url, private_state, settings
from clearing.core.errors import ClearingError, UnavailableError
from clearing.core.jsonish import JSONObject
from clearing.core.netting import Statement
from clearing.core.periods import CLEARED
from clearing.kafka_clients import admin_client
from clearing.ledger import cycle
from clearing.ledger.store import Ledger
from clearing.ops.bundle import event_lines
from clearing.ops.collect import RunResults, collect
from clearing.ops.publish import new_run_id, publish
from clearing.ops.workers import (
    Stopped,
    Worker,
    raise_if_stopped,
    start_workers,
    stop_workers,
    stopping_on_signals,
)
from clearing.store.db import open_engine
from clearing.stream.config import clearing_home
from clearing.stream.results import spec_view
from clearing.topics import Topics, ensure_topics

KAFKA_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kafka.sh"


def say(message: str) -> None:
    print(f"clearing run: {message}", file=sys.stderr, flush=True)


def local_broker() -> str:
    """`KAFKA_BOOTSTRAP`, else the development broker of `deploy/kafka.sh` (started if needed)."""
    s = settings()
    if s.bootstrap_given:
        return s.bootstrap
    port = s.kafka_port
    if broker_answers(f"127.0.0.1:{port}"):
        return f"127.0.0.1:{port}"
    if not KAFKA_SCRIPT.exists():
        raise UnavailableError("set KAFKA_BOOTSTRAP: no deploy/kafka.sh to start a local broker")
    done = subprocess.run(
        [str(KAFKA_SCRIPT), "start"], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise UnavailableError(f"deploy/kafka.sh start failed:\n{done.stdout}{done.stderr}")
    return f"127.0.0.1:{port}"


def broker_answers(bootstrap: str) -> bool:
    try:
        admin = admin_client(bootstrap, "clearing-probe")
    except Exception:  # any client failure means: not there
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        admin.close()


@dataclass
class RunConfig:
    refdata: Path
    events: Path
    out: Path
    workers: int = 1
    prefix: str | None = None
    db_url: str | None = None
    web_port: int = 6066
    stall_timeout: float = 120.0
    log_level: str = "warn"
    keep_workers: bool = False


@dataclass
class RunSummary:
    run_id: str
    prefix: str
    db_url: str
    events: int
    seconds: float
    statuses: dict[str, int]
    periods: list[str]
    replays: int
    web_port: int | None
    statements: dict[str, Statement] = field(default_factory=dict, repr=False)
    # Still running only when the run was asked to keep them (`keep_workers`).
    workers: list[Worker] = field(default_factory=list, repr=False)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def count_lines(path: Path) -> int:
    return sum(1 for _ in event_lines(path))


def run(config: RunConfig) -> RunSummary:
    private_state()
    bootstrap = local_broker()
    run_id = new_run_id()
    prefix = config.prefix or f"run-{run_id}"
    workdir = clearing_home() / "runs" / prefix
    workdir.mkdir(parents=True, exist_ok=True)
    db_url = config.db_url or f"sqlite:///{workdir / 'ledger.sqlite'}"
    topics = Topics(prefix)
    config.out.mkdir(parents=True, exist_ok=True)

    ensure_topics(bootstrap, prefix)
    publish(bootstrap, topics, config.refdata, None)
    expected = count_lines(config.events)
    say(f"{expected} events, topics {prefix}.*, ledger {mask_url(db_url)}")
    # The migrations run here, once, before any worker starts (workers starting together on a
    # fresh ledger would queue on the migration lock; now they find the schema at its head).
    open_engine(db_url).dispose()
    workers = start_workers(
        config.workers, bootstrap, prefix, db_url, workdir, config.web_port, config.log_level
    )
    try:
        started = time.perf_counter()
        published = publish(
            bootstrap, topics, None, config.events, run_id=run_id, check=raise_if_stopped
        )
        say(f"published {published.events} events in {published.seconds:.1f}s")
        results = wait_for_results(bootstrap, topics, run_id, expected, workers, config)
        seconds = time.perf_counter() - started
        statements = close_periods(bootstrap, topics, db_url, results.results())
        write_outputs(config.out, results, statements)
    except (Stopped, KeyboardInterrupt):
        stop_workers(workers)
        raise
    except BaseException:
        for worker in workers:
            tail = worker.log_tail()
            if tail:
                say(f"worker {worker.worker_id} log ({worker.log_path}):\n{tail}")
        stop_workers(workers)
        raise
    if not config.keep_workers:
        stop_workers(workers)
    statuses: dict[str, int] = {}
    for value in results.by_line.values():
        status = orjson.loads(value)["status"]
        statuses[status] = statuses.get(status, 0) + 1
    return RunSummary(
        run_id,
        prefix,
        db_url,
        expected,
        seconds,
        dict(sorted(statuses.items())),
        sorted(statements),
        results.replays,
        workers[0].web_port if workers else None,
        statements,
        workers,
    )


def wait_for_results(
    bootstrap: str,
    topics: Topics,
    run_id: str,
    expected: int,
    workers: list[Worker],
    config: RunConfig,
) -> RunResults:
    progress = None
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=expected, desc="results", unit=" results", unit_scale=True)
        progress = bar.update
    try:
        return collect(
            bootstrap,
            topics.results,
            RunResults(run_id, expected),
            stall_timeout=config.stall_timeout,
            alive=lambda: any(w.alive() for w in workers),
            progress=progress,
            check=raise_if_stopped,
        )
    finally:
        if bar is not None:
            bar.close()


def close_periods(
    bootstrap: str, topics: Topics, db_url: str, results: list[JSONObject]
) -> dict[str, Statement]:
    """Closes and issues every period with cleared results (oldest first), as `clearing period
    close --force` and `clearing period issue --republish` do; publishes each statement (again
    when an earlier run on this ledger issued it: these topics may be new)."""
    periods = sorted({r["period"] for r in results if r.get("status") in CLEARED})
    statements: dict[str, Statement] = {}
    with Ledger(db_url) as ledger, cycle.kafka_publisher(bootstrap, topics) as publisher:
        for period in periods:
            _, issued = cycle.close_and_issue(
                ledger, period, publisher, force=True, republish=True
            )
            if issued.statement is None:  # an issued period always carries its statement
                raise ClearingError(f"period {period} was issued without a statement")
            statements[period] = issued.statement
    return statements


def write_outputs(out: Path, results: RunResults, statements: dict[str, Statement]) -> None:
    with open(out / "results.jsonl", "wb") as handle:
        for line in sorted(results.by_line):
            handle.write(orjson.dumps(spec_view(orjson.loads(results.by_line[line]))) + b"\n")
    for period, statement in statements.items():
        path = out / f"statement-{period}.json"
        path.write_bytes(orjson.dumps(statement, option=orjson.OPT_INDENT_2) + b"\n")


def run_command(args: argparse.Namespace) -> int:
    config = RunConfig(
        refdata=Path(args.refdata),
        events=Path(args.events),
        out=Path(args.out),
        workers=args.workers,
        prefix=args.prefix,
        db_url=args.db,
        web_port=args.web_port,
        stall_timeout=args.stall_timeout,
        log_level=args.log_level,
    )
    try:
        with stopping_on_signals():
            summary = run(config)
    except (ClearingError, OSError) as exc:
        say(f"failed: {exc}")
        return 1
    except (Stopped, KeyboardInterrupt) as exc:
        say(f"{exc or 'interrupted'}; every worker stopped")
        return exc.exit_status if isinstance(exc, Stopped) else 130
    statuses = ", ".join(f"{k} {v}" for k, v in summary.statuses.items())
    say(
        f"{summary.events} events in {summary.seconds:.1f}s ({summary.rate:,.0f} events/s); "
        f"{statuses}; periods {', '.join(summary.periods) or 'none'}; outputs in {config.out}"
    )
    return 0
