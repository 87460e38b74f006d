"""Faults on the real broker: crashed workers, a stopped broker, duplicate floods.

Every run here ends with `verify_run`: one result per input line equal to the offline recompute
(`clearing price` + `clearing clear`), every copy of a result identical, every period's statement
equal offline with valid transfers, and the ledger's own rows and balances adding up to the
statements. The short versions run in CI; the `slow` ones (100,000 events, many crashes) only
with `pytest --full`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from random import Random

import orjson
import pytest
from fixtures.kafka import KafkaBroker, run_kafka_script, wait_for_kafka
from support.services import unavailable
from support.stream import Pipeline, offline_results, verify_run

from clearing.ops.bundle import event_lines
from clearing.ops.collect import RunResults, read_all
from clearing.ops.simulate.bundle import generate_bundle

pytestmark = pytest.mark.kafka


def bundle(tmp_path: Path, events: int, seed: int) -> tuple[Path, list[bytes]]:
    folder = tmp_path / "bundle"
    generate_bundle(folder, events=events, seed=seed, period="2026-01")
    return folder / "refdata", list(event_lines(folder / "events.jsonl"))


def results_so_far(pipeline: Pipeline, expected: int) -> RunResults:
    now = RunResults(pipeline.run_id, expected)
    for record in read_all(pipeline.bootstrap, pipeline.topics.results, idle=0.5):
        now.add(record.value)
    return now


# ---------------------------------------------------------------------------------------------
# (a) workers SIGKILLed at random points and restarted


def staged(
    pipeline: Pipeline, lines: list[bytes], rng: Random, stops: list[tuple[int, bool]]
) -> RunResults:
    """Publishes `lines` in stages and, at each (point, kill) of `stops`, waits until `point`
    lines have results and, if `kill`, SIGKILLs a worker chosen at random and restarts it.

    Each stage publishes a random stretch beyond its point first, so the workers are busy when
    the crash comes, and the rest of the input is not yet published: every crash is mid-run,
    however fast the stream is.
    """
    published = 0
    for point, kill in sorted(stops):
        # At least the last line stays unpublished until after the crashes.
        target = min(len(lines) - 1, point + rng.randint(200, 2000))
        if target > published:
            pipeline.publish_lines(enumerate(lines[published:target], start=published + 1))
            published = target
        pipeline.collect(len(lines), until=point)
        if kill:
            time.sleep(rng.uniform(0, 0.3))  # anywhere inside a batch: pricing, storing, producing
            victim = rng.choice(sorted(pipeline.workers))
            pipeline.workers[victim].kill()
            assert not results_so_far(pipeline, len(lines)).complete
            pipeline.start(victim)
    pipeline.publish_lines(enumerate(lines[published:], start=published + 1))
    return pipeline.collect(len(lines))


def crash_run(
    tmp_path: Path, bootstrap: str, events: int, kills: int, seed: int, db_url: str = ""
) -> None:
    refdata, lines = bundle(tmp_path, events, seed)
    expected = offline_results(refdata, lines)
    rng = Random(seed)
    points = rng.sample(range(len(lines) // 10, len(lines) * 9 // 10), kills)
    pipeline = Pipeline(bootstrap, tmp_path / "run", db_url=db_url)
    try:
        pipeline.create(refdata)
        for number in (1, 2):
            pipeline.start(number)
        results = staged(pipeline, lines, rng, [(point, True) for point in points])
        assert pipeline.starts == 2 + kills
        verify_run(pipeline, results, expected)
    except BaseException:
        print(pipeline.logs()[-8000:])
        raise
    finally:
        pipeline.cleanup()


def test_two_workers_sigkilled_twice_lose_nothing_and_count_nothing_twice(
    kafka_bootstrap: str, tmp_path: Path, db_url: str
) -> None:
    crash_run(tmp_path, kafka_bootstrap, events=10_000, kills=2, seed=101, db_url=db_url)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_full_many_sigkills_on_100k_events(kafka_bootstrap: str, tmp_path: Path) -> None:
    crash_run(tmp_path, kafka_bootstrap, events=100_000, kills=8, seed=202)


# ---------------------------------------------------------------------------------------------
# (b) a rebalance: a third worker joins mid-run and leaves again


def test_a_worker_joining_and_leaving_mid_run_moves_partitions_and_loses_nothing(
    kafka_bootstrap: str, tmp_path: Path, db_url: str
) -> None:
    """Partitions move twice while events flow: to the newcomer (the others drop those persons)
    and back (the newcomer finishes its batch in flight, commits, and its persons are read again
    from the store by their next owner). Nothing lost, nothing counted twice."""
    refdata, lines = bundle(tmp_path, 8000, seed=606)
    expected = offline_results(refdata, lines)
    rng = Random(606)
    pipeline = Pipeline(kafka_bootstrap, tmp_path / "run", db_url=db_url, log_level="info")
    try:
        pipeline.create(refdata)
        pipeline.start(1)
        pipeline.start(2)
        published = 0
        for point, change in ((len(lines) // 4, "join"), (len(lines) * 5 // 8, "leave")):
            target = point + rng.randint(500, 1500)
            pipeline.publish_lines(enumerate(lines[published:target], start=published + 1))
            published = target
            pipeline.collect(len(lines), until=point)
            if change == "join":
                pipeline.start(3)
                pipeline.wait_ready(3)
            else:
                assert pipeline.workers[3].stop() != -9, "the leaving worker did not stop"
        pipeline.publish_lines(enumerate(lines[published:], start=published + 1))
        results = pipeline.collect(len(lines), stall=180)
        logs = pipeline.logs()
        assert "partitions revoked" in logs and "partitions assigned" in logs
        verify_run(pipeline, results, expected)
    except BaseException:
        print(pipeline.logs()[-8000:])
        raise
    finally:
        pipeline.cleanup()


# ---------------------------------------------------------------------------------------------
# (c) the broker stopped and started mid-run


def stop_and_start_broker(broker: KafkaBroker, down_seconds: float) -> None:
    if broker.kind == "script":
        run_kafka_script("stop")
        time.sleep(down_seconds)
        run_kafka_script("start")
        wait_for_kafka(broker.bootstrap, timeout=120)
    else:  # a container restarts in one step; an external broker cannot be restarted at all
        broker.restart()


def test_broker_stopped_and_started_mid_run_workers_recover(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    if kafka_broker.kind == "external":
        unavailable("an external broker (KAFKA_BOOTSTRAP) cannot be stopped by the tests")
    refdata, lines = bundle(tmp_path, 4000, seed=303)
    expected = offline_results(refdata, lines)
    half = len(lines) // 2
    pipeline = Pipeline(kafka_broker.bootstrap, tmp_path / "run")
    try:
        pipeline.create(refdata)
        pipeline.start(1)
        pipeline.start(2)
        pipeline.publish_lines(enumerate(lines[:half], start=1))
        pipeline.collect(len(lines), until=half // 3)
        stop_and_start_broker(kafka_broker, down_seconds=8)
        # The workers rode out the outage (nobody restarted them) ...
        assert all(w.alive() for w in pipeline.workers.values()), "a worker died with the broker"
        # ... finish the first half and price what is published after it.
        pipeline.publish_lines(enumerate(lines[half:], start=half + 1))
        results = pipeline.collect(len(lines), stall=180)
        assert all(w.alive() for w in pipeline.workers.values())
        verify_run(pipeline, results, expected)
    except BaseException:
        print(pipeline.logs()[-8000:])
        raise
    finally:
        pipeline.cleanup()


# ---------------------------------------------------------------------------------------------
# (d) duplicate floods and conflicting re-submissions


def conflicting(raw: bytes, rng: Random) -> bytes | None:
    """The same id with other content: a settlement with one more fen, a reversal's new reason."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    if event.get("type") == "settlement" and isinstance(event.get("items"), list):
        items = event["items"]
        if not items or not isinstance(items[0], dict):
            return None
        items[0]["amount_fen"] = items[0].get("amount_fen", 0) + rng.randint(1, 99)
    elif event.get("type") == "reversal":
        event["reason"] = f"resubmitted {rng.randint(1, 999)}"
    else:
        return None
    return json.dumps(event).encode()


def flood(lines: list[bytes], rng: Random) -> list[bytes]:
    """Every line 2-5 times (the same bytes) and some conflicting re-submissions, each copy at a
    random later place. A person's events keep their order (all of one person's copies go through
    one partition in file order), and the offline recompute prices this very file."""
    placed: list[tuple[float, int, bytes]] = []
    for index, raw in enumerate(lines):
        placed.append((index, 0, raw))
        for copy in range(1, rng.randint(2, 5)):
            placed.append((index + rng.uniform(0, 400), copy, raw))
        if rng.random() < 0.05:
            other = conflicting(raw, rng)
            if other is not None:
                placed.append((index + rng.uniform(0, 400), 9, other))
    placed.sort(key=lambda p: (p[0], p[1]))
    return [raw for _, _, raw in placed]


def flood_run(tmp_path: Path, bootstrap: str, events: int, seed: int, kills: int) -> None:
    refdata, lines = bundle(tmp_path, events, seed)
    rng = Random(seed)
    flooded = flood(lines, rng)
    # ... and then the whole original file republished once more, mid-run.
    everything = flooded + lines
    expected = offline_results(refdata, everything)
    statuses = {r["status"] for r in expected}
    assert "duplicate" in statuses and "rejected" in statuses
    conflicts = sum("DUPLICATE_CONFLICT" in r.get("reasons", ()) for r in expected)
    assert conflicts > 0
    pipeline = Pipeline(bootstrap, tmp_path / "run")
    try:
        pipeline.create(refdata)
        pipeline.start(1)
        crashes = rng.sample(range(len(flooded) // 3, len(everything) - 100), kills)
        # A pause half-way through the flood's results, before the original file goes out again.
        stops = [(len(flooded) // 2, False)] + [(point, True) for point in crashes]
        results = staged(pipeline, everything, rng, stops)
        statements = verify_run(pipeline, results, expected)
        assert statements  # money moved, and exactly once
    except BaseException:
        print(pipeline.logs()[-8000:])
        raise
    finally:
        pipeline.cleanup()


def test_duplicate_flood_and_conflicting_resubmissions_count_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    flood_run(tmp_path, kafka_bootstrap, events=2000, seed=404, kills=0)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_full_duplicate_flood_with_crashes(kafka_bootstrap: str, tmp_path: Path) -> None:
    flood_run(tmp_path, kafka_bootstrap, events=20_000, seed=505, kills=3)
