"""`clearing publish`, `clearing run` and `clearing worker`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from clearing.config import settings
from clearing.core.errors import ClearingError


def run_publish(args: argparse.Namespace) -> int:
    from clearing.ops.publish import publish
    from clearing.topics import Topics, ensure_topics

    bootstrap = args.bootstrap or settings().bootstrap
    topics = Topics(args.prefix) if args.prefix else Topics.from_env()
    try:
        ensure_topics(bootstrap, topics.prefix)
        done = publish(bootstrap, topics, args.refdata, args.events, run_id=args.run_id)
    except (ClearingError, OSError) as exc:
        print(f"clearing publish: {exc}", file=sys.stderr)
        return 1
    print(
        f"clearing publish: run {done.run_id}: {done.refdata} refdata documents, "
        f"{done.events} events in {done.seconds:.1f}s to {topics.prefix}.*",
        file=sys.stderr,
    )
    return 0


def run_run(args: argparse.Namespace) -> int:
    from clearing.ops.run import run_command

    return run_command(args)


def run_worker(args: argparse.Namespace) -> int:
    """`faust -A clearing.worker worker` with the settings given as options."""
    if args.prefix:
        os.environ["CLEARING_TOPIC_PREFIX"] = args.prefix
    if args.db:
        os.environ["CLEARING_DB_URL"] = args.db
    if args.web_port is not None:
        os.environ["CLEARING_WEB_PORT"] = str(args.web_port)
    command = ["faust", "-A", "clearing.worker", "worker", "-l", args.log_level]
    os.execv(sys.executable, [sys.executable, "-m", *command])


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    publish = subparsers.add_parser(
        "publish", help="publish reference data and raw event lines to the broker"
    )
    publish.add_argument("--refdata", type=Path, help="reference-data folder")
    publish.add_argument("--bootstrap", help="broker (default KAFKA_BOOTSTRAP or 127.0.0.1:9092)")
    publish.add_argument("--prefix", help="topic prefix (default CLEARING_TOPIC_PREFIX)")
    publish.add_argument("--run-id", help="the `run` header (default: a new id)")
    publish.add_argument("events", nargs="?", type=Path, help="events file (JSON Lines)")
    publish.set_defaults(func=run_publish)

    run = subparsers.add_parser("run", help="price and clear a bundle end to end on the broker")
    run.add_argument("--refdata", required=True, type=Path, help="reference-data folder")
    run.add_argument("--out", required=True, type=Path, help="output folder")
    run.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    run.add_argument("--prefix", help="topic prefix (default: a fresh one)")
    run.add_argument("--db", help="database URL (default: a fresh SQLite ledger)")
    run.add_argument("--web-port", type=int, default=6066, help="first worker's web port")
    run.add_argument(
        "--stall-timeout", type=float, default=120.0, help="seconds without a result to give up"
    )
    run.add_argument("--log-level", default="warn", help="workers' log level (default warn)")
    run.add_argument("events", help="events file (JSON Lines)")
    run.set_defaults(func=run_run)

    worker = subparsers.add_parser("worker", help="run one stream worker in the foreground")
    worker.add_argument("--prefix", help="topic prefix (default CLEARING_TOPIC_PREFIX)")
    worker.add_argument("--db", help="database URL (default CLEARING_DB_URL)")
    worker.add_argument("--web-port", type=int, help="web port (default CLEARING_WEB_PORT/6066)")
    worker.add_argument("--log-level", default="info", help="crit, error, warn, info, debug")
    worker.set_defaults(func=run_worker)
