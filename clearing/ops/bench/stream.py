"""The stream end to end on the real broker: settlements/s, submit-to-feed latency, and the
raw Kafka pass-through of the same bytes as the ceiling, all in one run.

One generated bundle is cut into consecutive slices (so every person's events stay in order
across the phases), published under one fresh topic prefix to the same running workers:

- warm-up: a few hundred events, until their results are out (the workers have joined and
  read the reference data);
- `--rounds` times, alternately: the raw pass-through (the slice's exact bytes, keys and
  headers produced to a plain topic with the events topic's partitions and consumed back, no
  processing) and the pipeline at full speed (everything published at once, timed until every
  result has reached the results topic and each of its provinces' feeds);
- one rate-limited phase per `--rates` entry (e.g. 1,000/s and 5,000/s offered).

An event is delivered when its result and every feed message it is routed to have been read by
the bench's consumer; its latency runs from its publish call to that moment (one clock, one
process). The bench's producer and consumer are aiokafka's (as in the workers), in the raw
phase as in the pipeline phases, on one event loop in the bench's process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from clearing.core.errors import UnavailableError
from clearing.core.jsonish import JSONObject
from clearing.core.models.types import province_of
from clearing.core.provinces import PROVINCES
from clearing.kafka_clients import admin_client, aiokafka_auth
from clearing.ops.bench.database import scratch_database
from clearing.ops.bundle import event_lines
from clearing.ops.publish import event_key, new_run_id, publish
from clearing.stream.results import recipients
from clearing.topics import EVENTS_PARTITIONS, Topics, ensure_topics

if TYPE_CHECKING:  # aiokafka has no type information: these are `Any` to mypy
    from aiokafka import AIOKafkaProducer, ConsumerRecord

WARMUP = 300
# A topic's handler: the topic, one partition's records, when they arrived.
BatchHandler = Callable[[str, Sequence["ConsumerRecord"], float], None]


# ---------------------------------------------------------------------------------------------
# Publishing


@dataclass
class Slice:
    """Consecutive input lines: (line number, key, raw bytes, sending province)."""

    lines: list[tuple[int, bytes, bytes, str]]

    def __len__(self) -> int:
        return len(self.lines)


def senders(lines: Sequence[bytes]) -> list[str]:
    """The province node that sends each line (authority.md): a settlement's hospital province,
    for a reversal that of the settlement it names, a filing's or an assistance record's home
    province. A line that names none (malformed) comes from the first province."""
    hospital_of: dict[object, str] = {}
    out = []
    for raw in lines:
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            event = None
        sender = None
        if isinstance(event, dict):
            region = event.get("hospital_region") or event.get("home_region")
            if event.get("type") == "reversal":
                sender = hospital_of.get(event.get("settlement_id"))
            elif isinstance(region, str) and len(region) == 6:
                sender = province_of(region)
                if event.get("type") == "settlement":
                    hospital_of[event.get("settlement_id")] = sender
        out.append(sender if sender in PROVINCES else PROVINCES[0])
    return out


async def publish_slice(
    kafka: AIOKafkaProducer,
    topic: Callable[[str], str],
    part: Slice,
    run_id: str,
    rate: float | None,
) -> dict[int, float]:
    """Publishes the slice (at `rate` events/s, or as fast as the producer goes), each line to
    `topic(its sender)`, and waits for the broker's acknowledgements; returns the wall-clock
    time of each line's send."""
    sent: dict[int, float] = {}
    header = ("run", run_id.encode())
    pending = []
    started = time.perf_counter()
    for index, (number, key, raw, sender) in enumerate(part.lines):
        if rate:
            pause = started + index / rate - time.perf_counter()
            if pause > 0.001:
                await asyncio.sleep(pause)
        sent[number] = time.time()
        pending.append(
            await kafka.send(
                topic(sender), value=raw, key=key, headers=[("line", str(number).encode()), header]
            )
        )
    await asyncio.gather(*pending)
    return sent


def make_producer(bootstrap: str) -> AIOKafkaProducer:
    """aiokafka, as the workers use it: idempotent, acks=all, batching."""
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="clearing-bench",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=512 * 1024,
        max_request_size=1024 * 1024,
        **aiokafka_auth(),
    )


# ---------------------------------------------------------------------------------------------
# Consuming


async def watch(bootstrap: str, topics: list[str], handlers: dict[str, BatchHandler]) -> None:
    """Reads the topics from the beginning until cancelled, handing each partition's records
    with their arrival time to the topic's handler."""
    from aiokafka import AIOKafkaConsumer

    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="clearing-bench",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        **aiokafka_auth(),
    )
    await reader.start()
    try:
        reader.subscribe(topics=topics)
        while True:
            batches = await reader.getmany(timeout_ms=50, max_records=20000)
            arrived = time.time()
            for tp, records in batches.items():
                handlers[tp.topic](tp.topic, records, arrived)
    finally:
        await reader.stop()


@dataclass
class Delivery:
    """What the pipeline's consumer saw of one event."""

    result_at: float | None = None
    needed: int | None = None
    feeds: set[str] = field(default_factory=set)
    last_feed_at: float = 0.0
    done_at: float | None = None


class Deliveries:
    """Results and feed messages of every run, by (run, line)."""

    def __init__(self, topics: Topics) -> None:
        self.results_topic = topics.results
        self.feed_topics = set(topics.feeds())
        self.by_key: dict[tuple[str, int], Delivery] = {}
        self.done: dict[str, int] = {}
        self.changed = asyncio.Event()

    def on_batch(self, topic: str, records: Sequence[ConsumerRecord], arrived: float) -> None:
        is_result = topic == self.results_topic
        if True:
            for record in records:
                try:
                    result = orjson.loads(record.value)
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(result, dict):
                    continue
                run, line = result.get("run"), result.get("line")
                if not isinstance(run, str) or not isinstance(line, int):
                    continue  # statements and alerts
                d = self.by_key.get((run, line))
                if d is None:
                    d = self.by_key[(run, line)] = Delivery()
                if d.done_at is not None:
                    continue  # a replay
                if is_result:
                    d.result_at = arrived
                    d.needed = len(recipients(result))
                else:
                    d.feeds.add(topic)
                    d.last_feed_at = arrived
                if d.result_at is not None and d.needed is not None and len(d.feeds) >= d.needed:
                    d.done_at = max(d.result_at, d.last_feed_at)
                    self.done[run] = self.done.get(run, 0) + 1
        self.changed.set()

    async def wait(self, run_id: str, expected: int, timeout: float) -> bool:
        return await wait_for(lambda: self.done.get(run_id, 0) >= expected, self.changed, timeout)

    def done_times(self, run_id: str, lines: Sequence[int]) -> list[float]:
        times = []
        for n in lines:
            done_at = self.by_key[(run_id, n)].done_at
            if done_at is None:
                raise UnavailableError(f"run {run_id}: line {n} was not delivered")
            times.append(done_at)
        return times


async def wait_for(condition: Callable[[], bool], changed: asyncio.Event, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), min(left, 1.0))
    return True


class Counter:
    """Counts what arrives on the raw topic for one run (header `run`)."""

    def __init__(self) -> None:
        self.count: dict[bytes | None, int] = {}  # None: a record without the header
        self.last: dict[bytes | None, float] = {}
        self.changed = asyncio.Event()

    def on_batch(self, _topic: str, records: Sequence[ConsumerRecord], arrived: float) -> None:
        for record in records:
            run: bytes | None = dict(record.headers or ()).get("run")
            self.count[run] = self.count.get(run, 0) + 1
            self.last[run] = arrived
        self.changed.set()

    async def wait(self, run_id: str, expected: int, timeout: float) -> float | None:
        key = run_id.encode()
        if await wait_for(lambda: self.count.get(key, 0) >= expected, self.changed, timeout):
            return self.last[key]
        return None


# ---------------------------------------------------------------------------------------------
# Figures


def cpu_seconds(pids: Sequence[int]) -> float | None:
    """User + system CPU seconds the processes have used so far (Linux /proc), else None."""
    total = 0.0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return total


def machine_busy() -> tuple[float, float] | None:
    """(busy, total) jiffies of the whole machine so far (Linux /proc/stat), else None."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


class CpuMeter:
    """CPU the workers, the bench itself and the whole machine used during a phase."""

    def __init__(self, workers: Sequence[int]) -> None:
        self.workers = list(workers)
        self.start = (cpu_seconds(self.workers), cpu_seconds([os.getpid()]), machine_busy())

    def figures(self, events: int) -> JSONObject:
        workers, bench, machine = self.start
        out: JSONObject = {}
        now = cpu_seconds(self.workers)
        if workers is not None and now is not None:
            out["worker_cpu_us_per_event"] = round((now - workers) / events * 1e6)
        now = cpu_seconds([os.getpid()])
        if bench is not None and now is not None:
            out["bench_cpu_us_per_event"] = round((now - bench) / events * 1e6)
        busy = machine_busy()
        if machine is not None and busy is not None and busy[1] > machine[1]:
            out["machine_busy"] = round((busy[0] - machine[0]) / (busy[1] - machine[1]), 3)
        return out


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def latency_figures(latencies: Sequence[float]) -> dict[str, float]:
    return {
        f"p{q}_ms": round(percentile(latencies, q) * 1000, 1) for q in (50, 95, 99)
    } | {"max_ms": round(max(latencies) * 1000, 1) if latencies else float("nan")}


def spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values)),
        "min": round(min(values)),
        "max": round(max(values)),
    }


# ---------------------------------------------------------------------------------------------
# The benchmark


@dataclass
class Bench:
    kafka: AIOKafkaProducer
    topics: Topics
    raw_topic: str
    deliveries: Deliveries
    counter: Counter
    timeout: float
    worker_pids: list[int]
    # Publish as the province nodes do (each to its inbound topic, through the gate), or
    # straight to the events topic as an operator's replay does.
    direct: bool = False

    def entry(self, sender: str) -> str:
        return self.topics.events if self.direct else self.topics.inbound(sender)

    async def pipeline(self, part: Slice, rate: float | None) -> JSONObject:
        run_id = new_run_id()
        cpu = CpuMeter(self.worker_pids)
        sent = await publish_slice(self.kafka, self.entry, part, run_id, rate)
        if not await self.deliveries.wait(run_id, len(part), self.timeout):
            raise UnavailableError(f"the pipeline did not deliver {len(part)} events in time")
        done = self.deliveries.done_times(run_id, [n for n, _, _, _ in part.lines])
        latencies = [d - sent[n] for (n, _, _, _), d in zip(part.lines, done, strict=True)]
        seconds = max(done) - min(sent.values())
        return {
            "events": len(part),
            "offered_per_s": rate,
            "seconds": round(seconds, 3),
            "events_per_s": round(len(part) / seconds),
            "publish_seconds": round(max(sent.values()) - min(sent.values()), 3),
            **latency_figures(latencies),
            **cpu.figures(len(part)),
        }

    async def raw(self, part: Slice) -> JSONObject:
        run_id = new_run_id()
        cpu = CpuMeter([])
        sent = await publish_slice(self.kafka, lambda _: self.raw_topic, part, run_id, None)
        last = await self.counter.wait(run_id, len(part), self.timeout)
        if last is None:
            raise UnavailableError("the raw pass-through did not come back in time")
        seconds = last - min(sent.values())
        figures = cpu.figures(len(part))
        figures.pop("worker_cpu_us_per_event", None)
        return {"events": len(part), "seconds": round(seconds, 3),
                "events_per_s": round(len(part) / seconds), **figures}


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = admin_client(bootstrap, "clearing-bench")
    try:
        admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1}},
            raise_errors=False,
            wait_for_metadata=True,
        )
    finally:
        admin.close()


def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = admin_client(bootstrap, "clearing-bench")
    try:
        existing = set(admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            admin.delete_topics(doomed, raise_errors=False)
    finally:
        admin.close()


def load_slices(bundle: Path, sizes: Sequence[int]) -> list[Slice]:
    raws = list(event_lines(bundle / "events.jsonl"))
    lines = [
        (number, event_key(raw, number), raw, sender)
        for number, (raw, sender) in enumerate(zip(raws, senders(raws), strict=True), start=1)
    ]
    if len(lines) < sum(sizes):
        raise UnavailableError(f"{bundle}: {len(lines)} events, the phases need {sum(sizes)}")
    out: list[Slice] = []
    start = 0
    for size in sizes:
        out.append(Slice(lines[start : start + size]))
        start += size
    return out


def run(args: argparse.Namespace) -> int:
    from clearing.ops.run import local_broker
    from clearing.ops.workers import start_workers

    bootstrap = local_broker()
    rates = [float(r) for r in args.rates]
    rate_sizes = [max(1, int(r * args.rate_seconds)) for r in rates]
    sizes = [args.warmup] + [args.events] * args.rounds + rate_sizes
    with tempfile.TemporaryDirectory(prefix="clearing-bench-") as scratch:
        workdir = Path(scratch)
        bundle = args.bundle
        if bundle is None:
            from clearing.ops.simulate.bundle import generate_bundle

            bundle = workdir / "bundle"
            print(f"generating {sum(sizes):,} events ...", flush=True)
            generate_bundle(bundle, events=sum(sizes), seed=args.seed)
        warm, *rest = load_slices(bundle, sizes)
        rounds, rated = rest[: args.rounds], rest[args.rounds :]

        prefix = f"bench-{new_run_id()}"
        topics = Topics(prefix)
        raw_topic = f"{prefix}.raw"
        ensure_topics(bootstrap, prefix)
        create_topic(bootstrap, raw_topic, EVENTS_PARTITIONS)
        publish(bootstrap, topics, bundle / "refdata", None)
        cleanup = contextlib.ExitStack()
        db_url = cleanup.enter_context(scratch_database(args.db, workdir))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            workers = start_workers(
                args.workers, bootstrap, prefix, db_url, workdir, args.web_port, "warn",
            )
        try:
            print(f"{args.workers} worker(s), topics {prefix}.*; warming up ...", flush=True)
            phases = asyncio.run(
                measure(bootstrap, topics, raw_topic, args.timeout, args.direct,
                        [w.process.pid for w in workers if w.process is not None],
                        warm, rounds, rates, rated)
            )
        except BaseException:
            for worker in workers:
                print(f"worker {worker.worker_id} log:\n{worker.log_tail()}")
            raise
        finally:
            for worker in workers:
                worker.stop()
            delete_topics(bootstrap, [*topics.all(), raw_topic])
            cleanup.close()

    figures = summarise(args, *phases)
    print_table(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


async def measure(
    bootstrap: str,
    topics: Topics,
    raw_topic: str,
    timeout: float,
    direct: bool,
    worker_pids: list[int],
    warm: Slice,
    rounds: list[Slice],
    rates: list[float],
    rated: list[Slice],
) -> tuple[list[JSONObject], list[JSONObject], list[JSONObject]]:
    deliveries, counter = Deliveries(topics), Counter()
    handlers: dict[str, BatchHandler] = {
        topics.results: deliveries.on_batch, raw_topic: counter.on_batch
    }
    handlers |= {feed: deliveries.on_batch for feed in topics.feeds()}
    watcher = asyncio.ensure_future(watch(bootstrap, list(handlers), handlers))
    kafka = make_producer(bootstrap)
    await kafka.start()
    try:
        bench = Bench(
            kafka, topics, raw_topic, deliveries, counter, timeout, worker_pids, direct
        )
        await bench.pipeline(warm, None)
        raw_rounds: list[JSONObject] = []
        full_rounds: list[JSONObject] = []
        rate_runs: list[JSONObject] = []
        for n, part in enumerate(rounds, start=1):
            raw_rounds.append(await bench.raw(part))
            full_rounds.append(await bench.pipeline(part, None))
            print(f"round {n}: raw {raw_rounds[-1]['events_per_s']:,}/s, "
                  f"pipeline {full_rounds[-1]['events_per_s']:,}/s", flush=True)
        for rate, part in zip(rates, rated, strict=True):
            rate_runs.append(await bench.pipeline(part, rate))
            print(f"offered {rate:,.0f}/s: p99 {rate_runs[-1]['p99_ms']:,} ms", flush=True)
    finally:
        await kafka.stop()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    return raw_rounds, full_rounds, rate_runs


def summarise(
    args: argparse.Namespace,
    raw_rounds: list[JSONObject],
    full_rounds: list[JSONObject],
    rate_runs: list[JSONObject],
) -> JSONObject:
    raw = spread([r["events_per_s"] for r in raw_rounds])
    full = spread([r["events_per_s"] for r in full_rounds])
    at_max = {
        k: statistics.median(r[k] for r in full_rounds) for k in ("p50_ms", "p95_ms", "p99_ms")
    }
    cpu = {
        key: statistics.median(r[key] for r in full_rounds)
        for key in ("worker_cpu_us_per_event", "bench_cpu_us_per_event", "machine_busy")
        if all(key in r for r in full_rounds)
    }
    if "bench_cpu_us_per_event" in raw_rounds[0]:
        cpu["raw_bench_cpu_us_per_event"] = statistics.median(
            r["bench_cpu_us_per_event"] for r in raw_rounds
        )
    for r in rate_runs:  # held: the pipeline kept up with what was offered
        r["held"] = r["events_per_s"] >= 0.95 * r["offered_per_s"]
    return {
        "workers": args.workers,
        "database": "postgresql" if args.db else "sqlite",
        "published_to": "events topic (operator)" if args.direct else "inbound topics (gate)",
        "worker_cpu_us_per_event": cpu.get("worker_cpu_us_per_event"),
        "cpu_at_max": cpu,
        "events_per_round": args.events,
        "rounds": args.rounds,
        "sustained_events_per_s": full,
        "raw_passthrough_events_per_s": raw,
        "ratio_to_raw": round(full["median"] / raw["median"], 3),
        "latency_at_max": at_max,
        "latency_at_rate": rate_runs,
        "rounds_detail": {"raw": raw_rounds, "pipeline": full_rounds},
        "targets": {
            "events_per_s": 10000,
            "ratio_to_raw": 0.5,
            "worker_cpu_us_per_event": 100,
            "p99_ms_at_1000_per_s": 250,
            "p99_ms_at_5000_per_s": 1000,
        },
    }


def print_table(figures: JSONObject) -> None:
    full, raw = figures["sustained_events_per_s"], figures["raw_passthrough_events_per_s"]
    rounds = figures["rounds"]
    print()
    print(f"workers {figures['workers']} on {figures['database']}, "
          f"{figures['events_per_round']:,} events per round, medians of {rounds} rounds, "
          f"published to the {figures['published_to']}")
    print(f"{'':28}{'median':>10}{'min':>10}{'max':>10}")
    print(f"{'pipeline events/s':28}{full['median']:>10,}{full['min']:>10,}{full['max']:>10,}")
    print(f"{'raw Kafka pass-through/s':28}{raw['median']:>10,}{raw['min']:>10,}{raw['max']:>10,}")
    print(f"{'ratio pipeline / raw':28}{figures['ratio_to_raw']:>10.3f}")
    print()
    header = f"{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'events/s':>10}"
    print(f"{'submit-to-feed latency':28}{header}{'held':>6}")
    m = figures["latency_at_max"]
    print(f"{'at maximum (median)':28}{m['p50_ms']:>10,.0f}{m['p95_ms']:>10,.0f}"
          f"{m['p99_ms']:>10,.0f}{full['median']:>10,}")
    cpu = figures["cpu_at_max"]
    for r in figures["latency_at_rate"]:
        label = f"offered {r['offered_per_s']:,.0f}/s"
        print(f"{label:28}{r['p50_ms']:>10,.0f}{r['p95_ms']:>10,.0f}{r['p99_ms']:>10,.0f}"
              f"{r['events_per_s']:>10,}{'yes' if r['held'] else 'no':>6}")
    if cpu:
        print()
        print("CPU at maximum (median): "
              + ", ".join(f"{key} {value:,}" for key, value in cpu.items()))


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "stream", help="end to end through the broker: events/s, latency, raw Kafka ceiling"
    )
    parser.add_argument("--events", type=int, default=10000, help="events per full-speed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=WARMUP,
                        help="events published (and waited for) before the first round")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rates", nargs="*", default=["1000", "5000"],
                        help="offered rates (events/s) of the latency phases")
    parser.add_argument("--rate-seconds", type=float, default=5.0,
                        help="how long each rate-limited phase publishes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bundle", type=Path, help="an existing bundle instead of a generated one")
    parser.add_argument("--web-port", type=int, default=6166)
    parser.add_argument("--direct", action="store_true",
                        help="publish straight to the events topic (an operator's replay) "
                        "instead of each event to its province's inbound topic (the gate)")
    parser.add_argument("--db", help="a PostgreSQL URL: the run gets a fresh database beside it "
                        "(default: a SQLite file in the run's scratch directory)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds a phase may take before the bench gives up")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.set_defaults(func=run)
