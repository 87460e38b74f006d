"""A long replay through the stream: events/s, worker memory, and the statements checked
against the offline recompute.

A generated bundle (1,000,000 events by default) is published under a fresh topic prefix to
`--workers` worker processes on a fresh ledger database (SQLite, or beside `--db` on
PostgreSQL). While the results arrive, each worker's resident memory is read at every
`--sample-every` results; at the end every period is closed and issued, and each statement is
compared with `clearing price` + `clearing clear` of the same file. Exits 1 when any differs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
import warnings
from pathlib import Path

import orjson

from clearing.core.jsonish import JSONObject
from clearing.core.netting import Statement, build_statement
from clearing.core.periods import CLEARED
from clearing.core.pricer import Pricer
from clearing.ops.bench.database import rss_bytes, scratch_database
from clearing.ops.bench.stream import delete_topics
from clearing.ops.bundle import event_lines, load_refdata
from clearing.ops.collect import RunResults, collect
from clearing.ops.publish import new_run_id, publish
from clearing.ops.workers import Worker
from clearing.topics import Topics, ensure_topics

MB = 1024 * 1024


def offline_statements(bundle: Path, scratch: Path) -> dict[str, Statement]:
    """`clearing price` of the file into a scratch file, then `clearing clear` per period."""
    pricer = Pricer(load_refdata(bundle / "refdata"))
    priced = scratch / "offline.jsonl"
    periods: set[str] = set()
    with open(priced, "wb") as out:
        for number, raw in enumerate(event_lines(bundle / "events.jsonl"), start=1):
            result = pricer.process(raw).model_dump(exclude_none=True)
            result["line"] = number
            if result["status"] in CLEARED:
                periods.add(result["period"])
            out.write(orjson.dumps(result) + b"\n")
    statements: dict[str, Statement] = {}
    for period in sorted(periods):
        with open(priced, "rb") as handle:
            rows = (orjson.loads(line) for line in handle)
            statements[period] = build_statement(
                period, (r for r in rows if r.get("period") == period)
            )
    return statements


def same(got: Statement, want: Statement) -> bool:
    return (
        got["period"] == want["period"]
        and got["obligations"] == want["obligations"]
        and got["net_positions"] == want["net_positions"]
    )


class Memory:
    """Each worker's resident memory at the sampled result counts."""

    def __init__(self, workers: list[Worker], every: int) -> None:
        self.workers = workers
        self.every = every
        self.seen = 0
        self.samples: list[JSONObject] = []

    def sample(self) -> None:
        rss = [rss_bytes(w.process.pid) if w.process else None for w in self.workers]
        self.samples.append(
            {"results": self.seen, "worker_rss_mb": [round(r / MB) if r else None for r in rss]}
        )

    def progress(self, added: int) -> None:
        before, self.seen = self.seen, self.seen + added
        if before // self.every != self.seen // self.every:
            self.sample()


def run(args: argparse.Namespace) -> int:
    from clearing.ops.run import close_periods, local_broker
    from clearing.ops.workers import start_workers

    bootstrap = local_broker()
    with tempfile.TemporaryDirectory(prefix="clearing-replay-") as scratch_dir:
        scratch = Path(scratch_dir)
        bundle = args.bundle
        if bundle is None:
            from clearing.ops.simulate.bundle import generate_bundle

            bundle = scratch / "bundle"
            print(f"generating {args.events:,} events ...", flush=True)
            generate_bundle(bundle, events=args.events, seed=args.seed)
        print("offline recompute (clearing price + clearing clear) ...", flush=True)
        want = offline_statements(bundle, scratch)
        expected = sum(1 for _ in event_lines(bundle / "events.jsonl"))

        run_id = new_run_id()
        prefix = f"replay-{run_id}"
        topics = Topics(prefix)
        ensure_topics(bootstrap, prefix)
        publish(bootstrap, topics, bundle / "refdata", None)
        with contextlib.ExitStack() as cleanup:
            db_url = cleanup.enter_context(scratch_database(args.db, scratch))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                workers = start_workers(
                    args.workers, bootstrap, prefix, db_url, scratch, args.web_port, "warn"
                )
            cleanup.callback(delete_topics, bootstrap, topics.all())
            for worker in workers:
                cleanup.callback(worker.stop)
            memory = Memory(workers, args.sample_every)
            print(f"{args.workers} worker(s), {expected:,} events, topics {prefix}.*", flush=True)
            started = time.perf_counter()
            published = publish(bootstrap, topics, None, bundle / "events.jsonl", run_id=run_id)
            print(f"published in {published.seconds:.1f}s", flush=True)
            results = collect(
                bootstrap, topics.results, RunResults(run_id, expected),
                stall_timeout=args.stall_timeout,
                alive=lambda: any(w.alive() for w in workers),
                progress=memory.progress,
            )
            seconds = time.perf_counter() - started
            if not memory.samples or memory.samples[-1]["results"] != memory.seen:
                memory.sample()
            got = close_periods(bootstrap, topics, db_url, results.results())
    equal = sorted(got) == sorted(want) and all(same(got[p], want[p]) for p in want)
    figures: JSONObject = {
        "events": expected,
        "workers": args.workers,
        "database": "postgresql" if args.db else "sqlite",
        "seconds": round(seconds, 1),
        "events_per_s": round(expected / seconds),
        "memory": memory.samples,
        "periods": sorted(want),
        "statements_equal_offline": equal,
    }
    print(f"{expected:,} events in {seconds:,.1f}s: {figures['events_per_s']:,} events/s "
          f"with {args.workers} worker(s) on {figures['database']}")
    for point in memory.samples:
        print(f"  at {point['results']:>9,} results: worker RSS {point['worker_rss_mb']} MB")
    print(f"statements equal to the offline recompute: {'yes' if equal else 'NO'}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if equal else 1


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "replay", help="a long replay through the stream: events/s, worker RSS, statements"
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bundle", type=Path, help="an existing bundle instead of a generated one")
    parser.add_argument("--db", help="a PostgreSQL URL: the run gets a fresh database beside it "
                        "(default: SQLite in a scratch directory)")
    parser.add_argument("--sample-every", type=int, default=100_000,
                        help="read the workers' memory every this many results")
    parser.add_argument("--web-port", type=int, default=6266)
    parser.add_argument("--stall-timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.set_defaults(func=run)

