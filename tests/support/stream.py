"""Helpers shared by the tests that run the stream on the real broker.

- the offline recompute (`clearing price` + `clearing clear`) a stream run must equal;
- `Pipeline`: one run's topics, fresh SQLite ledger and worker processes, with publishing under
  chosen line numbers (duplicate floods) and collection of the results deduplicated by line;
- `verify_run`: results, statements, transfers, stream state and the ledger's own totals against
  the offline recompute, so nothing is lost and nothing is counted twice.
"""

from __future__ import annotations

import re
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from fixtures.stream import stream_prefix_name, stream_topics_cleanup

from clearing import auth
from clearing.core.netting import build_statement, check_transfers
from clearing.core.pricer import Pricer
from clearing.kafka_clients import producer
from clearing.ops.bundle import event_lines, load_refdata
from clearing.ops.collect import RunResults, collect, read_all
from clearing.ops.publish import event_key, new_run_id, publish
from clearing.ops.workers import Worker, free_port, worker_env
from clearing.store.db import open_engine
from clearing.stream.results import spec_view
from clearing.topics import Topics, ensure_topics

# ---------------------------------------------------------------------------------------------
# The offline recompute


PRICE_ASSIGNED = re.compile(r"price stage: [1-9][0-9]* partitions assigned")


def offline_results(refdata_dir: Path, events: Path | Sequence[bytes]) -> list[dict]:
    """`clearing price` of the file (or of these lines, in order), as dicts with `line`."""
    pricer = Pricer(load_refdata(refdata_dir))
    lines = event_lines(events) if isinstance(events, Path) else events
    out = []
    for number, raw in enumerate(lines, start=1):
        result = pricer.process(raw).model_dump(exclude_none=True)
        result["line"] = number
        out.append(result)
    return out


def offline_statements(results: list[dict]) -> dict[str, dict]:
    """`clearing clear` for every period that has priced or reversed results."""
    periods = {r["period"] for r in results if r["status"] in ("priced", "reversed")}
    return {
        p: build_statement(p, [r for r in results if r.get("period") == p]) for p in sorted(periods)
    }


def without_error(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "error"}


def read_jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def viewer_token(db_url: str, name: str = "prometheus") -> str:
    """A viewer's token in the run's ledger: what Prometheus scrapes `/metrics` with."""
    engine = open_engine(db_url)
    try:
        return auth.add(engine, "viewer", name, replace=True)
    finally:
        engine.dispose()


def fetch_metrics(port: int, token: str) -> str:
    """The worker's `/metrics`, read with an operator's or viewer's bearer token."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def assert_same_statement(got: dict, want: dict) -> None:
    assert got["period"] == want["period"]
    assert got["obligations"] == want["obligations"]
    assert got["net_positions"] == want["net_positions"]


# ---------------------------------------------------------------------------------------------
# One run's topics, ledger and workers


@dataclass
class Pipeline:
    """Topics under a fresh prefix, a fresh SQLite ledger and worker processes.

    The workers' environment is built here (never from a changed `os.environ`), so a test can
    run `deploy/kafka.sh` with the broker's own `CLEARING_HOME` while the workers use another.
    """

    bootstrap: str
    workdir: Path
    batch_size: int = 200
    log_level: str = "warn"
    prefix: str = field(default_factory=stream_prefix_name)
    run_id: str = field(default_factory=new_run_id)
    workers: dict[int, Worker] = field(default_factory=dict)
    starts: int = 0
    # The ledger: a fresh SQLite file in `workdir` unless a (fresh) database URL is given.
    db_url: str = ""

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.topics = Topics(self.prefix)
        if not self.db_url:
            self.db_url = f"sqlite:///{self.workdir / 'ledger.sqlite'}"

    def create(self, refdata: Path) -> None:
        ensure_topics(self.bootstrap, self.prefix)
        publish(self.bootstrap, self.topics, refdata, None)

    def start(self, number: int) -> Worker:
        """Starts worker `number` (its static group identity), replacing a dead one."""
        env = worker_env(self.bootstrap, self.prefix, self.db_url, free_port(), number)
        env["CLEARING_HOME"] = str(self.workdir / "home")
        env["CLEARING_BATCH_SIZE"] = str(self.batch_size)
        self.starts += 1
        log = self.workdir / f"worker-{number}.{self.starts}.log"
        worker = Worker(str(number), env, log, self.log_level).start()
        self.workers[number] = worker
        return worker

    def wait_ready(self, number: int, timeout: float = 180) -> None:
        """Until worker `number` has started (faust's "Worker ready", at log level info) and
        its price stage holds partitions: a worker stopped while still starting is another
        case than one that joins, works and leaves."""
        worker = self.workers[number]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""
            if "Worker ready" in text and PRICE_ASSIGNED.search(text):
                return
            assert worker.alive(), f"worker {number} exited while starting:\n{worker.log_tail()}"
            time.sleep(0.5)
        raise AssertionError(f"worker {number} not ready in {timeout:.0f} s:\n{worker.log_tail()}")

    def alive(self) -> bool:
        return any(w.alive() for w in self.workers.values())

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.workdir.glob("worker-*.log"))
        )

    def publish_lines(self, numbered: Iterable[tuple[int, bytes]]) -> int:
        """Each raw line unchanged, keyed like `clearing publish`, with its `line`/`run` headers."""
        failures: list[BaseException] = []
        kafka = producer(self.bootstrap)
        count = 0
        try:
            for number, raw in numbered:
                kafka.send(
                    self.topics.events,
                    key=event_key(raw, number),
                    value=raw,
                    headers=[("line", str(number).encode()), ("run", self.run_id.encode())],
                ).add_errback(failures.append)
                count += 1
            kafka.flush()
        finally:
            kafka.close()
        assert not failures, f"{len(failures)} events not acknowledged: {failures[0]!r}"
        return count

    def collect(self, expected: int, until: int | None = None, stall: float = 120) -> RunResults:
        """The run's results read from the start, until `until` (default: all) lines have one."""
        results = RunResults(self.run_id, expected)
        results.expected = expected if until is None else until
        collect(self.bootstrap, self.topics.results, results, stall, alive=self.alive)
        results.expected = expected
        return results

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()

    def cleanup(self) -> None:
        self.stop()
        stream_topics_cleanup(self.bootstrap, self.prefix)


def run_with(
    bootstrap: str,
    workdir: Path,
    refdata: Path,
    lines: Sequence[bytes],
    during: Callable[[Pipeline], None] | None = None,
    workers: int = 1,
) -> tuple[Pipeline, RunResults]:
    """A helper for the simple case: publish `lines`, let `during` interfere, collect all."""
    pipeline = Pipeline(bootstrap, workdir)
    pipeline.create(refdata)
    for n in range(1, workers + 1):
        pipeline.start(n)
    pipeline.publish_lines(enumerate(lines, start=1))
    if during is not None:
        during(pipeline)
    return pipeline, pipeline.collect(len(lines))


# ---------------------------------------------------------------------------------------------
# Checking a finished run


def results_by_line_and_source(bootstrap: str, topic: str, run_id: str) -> dict[int, set[bytes]]:
    """line -> every distinct result value on the topic (replays of a position are identical)."""
    copies: dict[int, set[bytes]] = defaultdict(set)
    for record in read_all(bootstrap, topic, idle=1.0, timeout=300):
        result = orjson.loads(record.value)
        if result.get("run") == run_id:
            copies[result["line"]].add(record.value)
    return copies


def ledger_totals(db_url: str) -> dict[str, dict]:
    """Per clearing period, what the ledger itself holds: obligations from its recorded results,
    net positions from the home-side payers' legs (basic fund, serious illness, assistance), and
    how many results and postings it has."""
    from sqlalchemy import create_engine, func, select

    from clearing.store.schema import balances, postings
    from clearing.store.schema import results as ledger_results

    engine = create_engine(db_url)
    totals: dict[str, dict] = defaultdict(
        lambda: {"obligations": {}, "net_positions": defaultdict(int), "results": 0}
    )
    try:
        with engine.connect() as conn:
            t = ledger_results
            rows = conn.execute(
                select(
                    t.c.clearing_period,
                    t.c.payer,
                    t.c.payee,
                    t.c.status,
                    func.count(),
                    func.sum(t.c.total_fen),
                    func.sum(t.c.fund_pay_fen),
                    func.sum(t.c.personal_pay_fen),
                ).group_by(t.c.clearing_period, t.c.payer, t.c.payee, t.c.status)
            ).all()
            for period, payer, payee, status, count, total, fund, personal in rows:
                ob = totals[period]["obligations"].setdefault(
                    (payer, payee),
                    {
                        "settlements": 0,
                        "reversals": 0,
                        "total_fen": 0,
                        "fund_pay_fen": 0,
                        "personal_pay_fen": 0,
                    },
                )
                ob["settlements" if status == "priced" else "reversals"] += count
                ob["total_fen"] += total
                ob["fund_pay_fen"] += fund
                ob["personal_pay_fen"] += personal
                totals[period]["results"] += count
            b = balances
            for period, account, debits, credits in conn.execute(
                select(b.c.clearing_period, b.c.account_id, b.c.debits_fen, b.c.credits_fen).where(
                    b.c.leg.in_(("fund", "critical", "assistance"))
                )
            ):
                province = account.split(":", 1)[1]
                totals[period]["net_positions"][province] += credits - debits
            posted = conn.execute(
                select(func.count()).select_from(postings).where(postings.c.leg == "fund")
            ).scalar()
            nonzero = conn.execute(
                select(func.count()).select_from(t).where(t.c.fund_pay_fen != 0)
            ).scalar()
            assert posted == nonzero, "one fund posting per result that moves money"
    finally:
        engine.dispose()
    return dict(totals)


def issue_statements(db_url: str, periods: list[str]) -> dict[str, dict]:
    """Closes and issues each period (oldest first) as `clearing run` does; the statements."""
    from clearing.ledger import cycle
    from clearing.ledger.store import Ledger

    with Ledger(db_url) as ledger:
        return {
            period: cycle.close_and_issue(ledger, period, force=True)[1].statement
            for period in sorted(periods)
        }


def stream_state_counts(db_url: str) -> int:
    """How many source positions the stream has stored a result for."""
    from sqlalchemy import create_engine, func, select

    from clearing.store.schema import stream_results

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(stream_results)).scalar()
    finally:
        engine.dispose()


def verify_run(pipeline: Pipeline, results: RunResults, expected: list[dict]) -> dict[str, dict]:
    """The stream run equals the offline recompute, and nothing is counted twice anywhere.

    Returns the issued statements.
    """
    # One result per input line (deduplicated by line, as `clearing run` does), equal offline.
    assert results.complete
    got = [spec_view(r) for r in results.results()]
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        assert mine == theirs, f"line {theirs['line']}"
    # Each line was published once, so it has one source position; a replay of that position
    # re-emits the same bytes: every copy of a line's result on the topic is identical.
    copies = results_by_line_and_source(
        pipeline.bootstrap, pipeline.topics.results, pipeline.run_id
    )
    assert sorted(copies) == [r["line"] for r in expected]
    differing = {line: len(values) for line, values in copies.items() if len(values) != 1}
    assert not differing, f"lines with differing result copies: {differing}"
    # The stream's own state: one stored result per consumed position, no more.
    assert stream_state_counts(pipeline.db_url) == len(expected)

    want = offline_statements(expected)
    statements = issue_statements(pipeline.db_url, list(want))
    assert sorted(statements) == sorted(want)
    for period, statement in want.items():
        assert_same_statement(statements[period], statement)
        assert (
            check_transfers(statements[period]["net_positions"], statements[period]["transfers"])
            == []
        )

    # The ledger's own rows and balances add up to the statements: nothing recorded twice.
    totals = ledger_totals(pipeline.db_url)
    assert sorted(totals) == sorted(want)
    cleared = sum(1 for r in expected if r["status"] in ("priced", "reversed"))
    assert sum(t["results"] for t in totals.values()) == cleared
    for period, statement in want.items():
        held = totals[period]
        for ob in statement["obligations"]:
            mine = held["obligations"].pop((ob["payer"], ob["payee"]))
            assert mine == {k: ob[k] for k in mine}, (period, ob["payer"], ob["payee"])
        assert held["obligations"] == {}, period
        positions = {p: v for p, v in held["net_positions"].items() if v}
        assert positions == {p: v for p, v in statement["net_positions"].items() if v}, period
    return statements
