"""The fund-safety monitor's CPU cost: the price stage with and without it, in-process.

A generated bundle is cut by person into the events topic's partitions and fed, batch after
batch, to the stream's own `BatchProcessor` on a fresh SQLite ledger, once with monitoring on
and once off per round (alternating, so drift hits both alike); CPU time per event of each is
the median of the rounds, and the overhead is their ratio. The pure path (`clearing price`
against `clearing flags`) is timed beside it, to tell the rules' cost from the store's. No
broker: this isolates what the monitor adds to a worker's CPU per event.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

from clearing.core.monitoring import Monitor
from clearing.core.pricer import Pricer
from clearing.core.refdata import RefData
from clearing.ops.bundle import event_lines, load_refdata
from clearing.ops.publish import event_key
from clearing.stream.batch import BatchProcessor, Record
from clearing.topics import EVENTS_PARTITIONS

TOPIC = "bench.events"


def batches_of(lines: Sequence[bytes], size: int) -> list[list[Record]]:
    """The lines as the stream consumes them: keyed by person, one partition per key, each
    partition's records in order, cut into batches taken from the partitions in turn."""
    partitions: list[list[Record]] = [[] for _ in range(EVENTS_PARTITIONS)]
    for number, raw in enumerate(lines, start=1):
        key = event_key(raw, number)
        partition = zlib.crc32(key) % EVENTS_PARTITIONS
        records = partitions[partition]
        records.append(Record(TOPIC, partition, len(records), key, raw, number))
    cut = [[p[i : i + size] for i in range(0, len(p), size)] for p in partitions]
    turns = max(map(len, cut))
    return [p[turn] for turn in range(turns) for p in cut if turn < len(p)]


def stage_seconds(
    refdata: RefData, batches: list[list[Record]], scratch: Path, monitor: bool
) -> float:
    """CPU seconds of the price stage (pricing, monitor, store and ledger) over every batch,
    on a fresh database."""
    from clearing.stream import ledger_link

    path = scratch / f"ledger-{time.monotonic_ns()}.sqlite"
    engine = ledger_link.open_database(f"sqlite:///{path}")
    processor = BatchProcessor(engine, lambda: refdata, ledger_link.record_results, monitor=monitor)
    gc.collect()
    start = time.process_time()
    for batch in batches:
        processor.process(batch)
    seconds = time.process_time() - start
    engine.dispose()
    return seconds


def pure_seconds(refdata: RefData, lines: Sequence[bytes], monitor: bool) -> float:
    """CPU seconds of the offline path: pricing every line, and the rules when `monitor`."""
    pricer = Pricer(refdata)
    rules = Monitor()
    gc.collect()
    start = time.process_time()
    for raw in lines:
        event, result = pricer.process_event(raw)
        if monitor:
            rules.observe(event, result)
    if monitor:
        for period in rules.periods():
            rules.close_period(period)
    return time.process_time() - start


def median_us(seconds: list[float], events: int) -> float:
    return round(statistics.median(seconds) / events * 1e6, 1)


def overhead_pct(on: float, off: float) -> float:
    return round((on - off) / off * 100, 1)


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        bundle = args.bundle
        if bundle is None:
            from clearing.ops.simulate.bundle import generate_bundle

            bundle = scratch / "bundle"
            generate_bundle(bundle, events=args.events, seed=args.seed)
        refdata = load_refdata(bundle / "refdata")
        lines = list(event_lines(bundle / "events.jsonl"))
        batches = batches_of(lines, args.batch)

        stage: dict[bool, list[float]] = {True: [], False: []}
        pure: dict[bool, list[float]] = {True: [], False: []}
        for n in range(args.rounds):
            for monitor in (n % 2 == 0, n % 2 != 0):
                stage[monitor].append(stage_seconds(refdata, batches, scratch, monitor))
                pure[monitor].append(pure_seconds(refdata, lines, monitor))

    events = len(lines)
    figures = {
        "events": events,
        "batch": args.batch,
        "rounds": args.rounds,
        "stage_us_per_event": {
            "monitor": median_us(stage[True], events),
            "no_monitor": median_us(stage[False], events),
        },
        "pure_us_per_event": {
            "monitor": median_us(pure[True], events),
            "no_monitor": median_us(pure[False], events),
        },
        "target_overhead_pct": 10,
    }
    s, p = figures["stage_us_per_event"], figures["pure_us_per_event"]
    figures["stage_overhead_pct"] = overhead_pct(s["monitor"], s["no_monitor"])
    figures["pure_overhead_pct"] = overhead_pct(p["monitor"], p["no_monitor"])
    print(
        f"events              {events:>10,}  (batches of {args.batch}, "
        f"median of {args.rounds} rounds, CPU time)"
    )
    print(
        f"price stage         {s['monitor']:>10,.1f} µs/event with the monitor, "
        f"{s['no_monitor']:,.1f} without: overhead {figures['stage_overhead_pct']:+.1f} %"
    )
    print(
        f"pure (offline)      {p['monitor']:>10,.1f} µs/event with the rules, "
        f"{p['no_monitor']:,.1f} without: overhead {figures['pure_overhead_pct']:+.1f} %"
    )
    print(f"target              {'≤ 10 %':>10}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "monitor", help="the fund-safety monitor's CPU cost per event in the price stage"
    )
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500, help="records per batch")
    parser.add_argument("--bundle", type=Path, help="an existing bundle instead of a generated one")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.set_defaults(func=run)
