"""`clearing bench …`: each benchmark is a subcommand that prints its figures."""

from __future__ import annotations

import argparse

from clearing.ops.bench import monitor, price, replay, stream


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = subparsers.add_parser("bench", help="benchmarks (print figures)")
    kinds = bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    monitor.add_parser(kinds)
    price.add_parser(kinds)
    stream.add_parser(kinds)
    replay.add_parser(kinds)
