"""Offline pricing speed: `clearing price` on a generated bundle, events per second on one core.

Times the same pure path the stream uses (parse, price, serialise), in-process, several
rounds, and reports the median; then one run of the real command for the end-to-end figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from clearing.core.pricer import Pricer
from clearing.core.refdata import RefData
from clearing.ops.bundle import load_refdata
from clearing.ops.offline import price_lines

# The hot-path issue's targets on the 2-core machine.
TARGET_IN_PROCESS = 40_000
TARGET_COMMAND = 25_000


def price_all(refdata: RefData, lines: list[bytes]) -> float:
    """Seconds to price every line once with a fresh book, serialised as `clearing price`
    does (the output is dropped)."""
    pricer = Pricer(refdata)
    gc.collect()
    start = time.perf_counter()
    for _ in price_lines(pricer, lines):
        pass
    return time.perf_counter() - start


def bundle_mix(lines: list[bytes]) -> dict[str, float]:
    kinds: dict[str, int] = {}
    items = settlements = 0
    for raw in lines:
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict):
            kind = str(event.get("type"))
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind == "settlement" and isinstance(event.get("items"), list):
                settlements += 1
                items += len(event["items"])
    return {**kinds, "items_per_settlement": round(items / max(settlements, 1), 1)}


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        bundle = args.bundle
        if bundle is None:
            from clearing.ops.simulate.bundle import generate_bundle

            bundle = Path(scratch) / "bundle"
            generate_bundle(bundle, events=args.events, seed=args.seed)
        refdata = load_refdata(bundle / "refdata")
        lines = (bundle / "events.jsonl").read_bytes().splitlines()

        rounds = [price_all(refdata, lines) for _ in range(args.rounds)]
        rates = sorted(len(lines) / seconds for seconds in rounds)

        start = time.perf_counter()
        command = [
            sys.executable,
            "-m",
            "clearing.cli",
            "price",
            "--refdata",
            str(bundle / "refdata"),
            str(bundle / "events.jsonl"),
        ]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        command_seconds = time.perf_counter() - start

    figures = {
        "events": len(lines),
        "mix": bundle_mix(lines),
        "rounds": args.rounds,
        "in_process_events_per_s": {
            "median": round(statistics.median(rates)),
            "min": round(rates[0]),
            "max": round(rates[-1]),
        },
        "command_events_per_s": round(len(lines) / command_seconds),
        "target_in_process_events_per_s": TARGET_IN_PROCESS,
        "target_command_events_per_s": TARGET_COMMAND,
    }
    print(f"events            {figures['events']:>10,}")
    print(f"mix               {figures['mix']}")
    rate = figures["in_process_events_per_s"]
    print(
        f"in-process        {rate['median']:>10,} events/s median of {args.rounds} "
        f"(min {rate['min']:,}, max {rate['max']:,})"
    )
    print(
        f"clearing price    {figures['command_events_per_s']:>10,} events/s "
        "(one run, start-up and I/O included)"
    )
    print(
        f"targets           {TARGET_IN_PROCESS:>10,} events/s in-process, "
        f"{TARGET_COMMAND:,} for the whole command"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("price", help="offline pricing speed (events/s, one core)")
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bundle", type=Path, help="an existing bundle instead of a generated one")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.set_defaults(func=run)
