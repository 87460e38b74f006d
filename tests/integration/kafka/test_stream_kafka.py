"""The stream on the real broker: the same results and statements as the offline commands.

One run of the sample bundle through `clearing run` is shared by the first tests (results line
for line, every period's statement, province feeds, dead letters); a bigger generated bundle is
then priced by a worker that is SIGKILLed mid-stream and restarted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fixtures.stream import stream_prefix_name, stream_topics_cleanup
from support.paths import CASES
from support.stream import (
    assert_same_statement,
    fetch_metrics,
    issue_statements,
    offline_results,
    offline_statements,
    read_jsonl,
    viewer_token,
    without_error,
)

from clearing.core.models.types import province_of
from clearing.ops.bundle import event_lines
from clearing.ops.collect import RunResults, collect, read_all
from clearing.ops.publish import new_run_id, publish
from clearing.ops.run import RunConfig, RunSummary, run
from clearing.ops.workers import free_port, start_workers
from clearing.stream.results import spec_view
from clearing.topics import PROVINCES, Topics, ensure_topics

pytestmark = pytest.mark.kafka



# ---------------------------------------------------------------------------------------------
# The sample bundle through `clearing run`


@pytest.fixture(scope="module")
def sample_run(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunSummary, Path]]:
    home = tmp_path_factory.mktemp("stream-home")
    out = tmp_path_factory.mktemp("stream-out")
    prefix = stream_prefix_name()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
        mp.setenv("CLEARING_HOME", str(home))
        config = RunConfig(
            refdata=CASES / "refdata",
            events=CASES / "events.jsonl",
            out=out,
            prefix=prefix,
            web_port=free_port(),
            stall_timeout=90,
        )
        summary = run(config)
    yield summary, out
    stream_topics_cleanup(kafka_bootstrap, prefix)


@pytest.fixture(scope="module")
def sample_offline() -> list[dict]:
    return offline_results(CASES / "refdata", CASES / "events.jsonl")


def test_sample_results_equal_clearing_price(sample_run, sample_offline) -> None:
    summary, out = sample_run
    got = read_jsonl(out / "results.jsonl")
    assert len(got) == summary.events == len(sample_offline)
    assert got == sample_offline
    # ... and the published expectation of the sample bundle (an error's wording is free).
    published = read_jsonl(CASES / "priced.jsonl")
    assert [without_error(r) for r in got] == [without_error(r) for r in published]


def test_sample_statements_equal_clearing_clear(sample_run, sample_offline) -> None:
    _, out = sample_run
    want = offline_statements(sample_offline)
    files = sorted(p.name for p in out.glob("statement-*.json"))
    assert files == [f"statement-{p}.json" for p in want]
    for period, statement in want.items():
        assert_same_statement(
            orjson.loads((out / f"statement-{period}.json").read_bytes()), statement
        )
    expected = orjson.loads((CASES / "statement-2026-01.json").read_bytes())
    assert_same_statement(orjson.loads((out / "statement-2026-01.json").read_bytes()), expected)


def expected_routes(events: Path, offline: list[dict]) -> dict[int, set[str]]:
    """line -> the provinces whose feeds must carry that line's result (computed from inputs)."""
    lines = list(event_lines(events))
    priced_by_sid: dict[str, tuple[str, dict]] = {}
    routes: dict[int, set[str]] = {}
    for result in offline:
        line = result["line"]
        status = result["status"]
        if status not in ("priced", "reversed", "rejected"):
            continue
        event = orjson.loads(lines[line - 1])
        if status in ("priced", "reversed"):
            routes[line] = {result["payer"], result["payee"]}
            if status == "priced":
                priced_by_sid[result["settlement_id"]] = (event["person_id"], result)
        elif status == "rejected" and event["type"] == "settlement":
            routes[line] = {
                province_of(event["home_region"]),
                province_of(event["hospital_region"]),
            }
        elif status == "rejected":
            original = priced_by_sid.get(event["settlement_id"])
            if original is not None and original[0] == event["person_id"]:
                routes[line] = {original[1]["payer"], original[1]["payee"]}
    return {line: provinces & set(PROVINCES) for line, provinces in routes.items()}


def test_each_feed_carries_exactly_its_provinces_results(
    sample_run, sample_offline, kafka_bootstrap: str
) -> None:
    summary, _ = sample_run
    topics = Topics(summary.prefix)
    routes = expected_routes(CASES / "events.jsonl", sample_offline)
    by_line = {r["line"]: r for r in sample_offline}
    feeds = {topics.feed(p): p for p in PROVINCES}
    received: dict[str, list[dict]] = {p: [] for p in PROVINCES}
    for record in read_all(kafka_bootstrap, list(feeds), idle=1.0):
        received[feeds[record.topic]].append(orjson.loads(record.value))
    assert any(received.values())
    for province, messages in received.items():
        results = [m for m in messages if "status" in m]
        others = [m for m in messages if "status" not in m]
        got_lines = sorted(r["line"] for r in results)
        want_lines = sorted(line for line, provinces in routes.items() if province in provinces)
        assert got_lines == want_lines, province
        for result in results:
            assert spec_view(result) == by_line[result["line"]]
            assert province in (result["payer"], result["payee"])
        for message in others:  # statements, prepayment alerts and notices, flags: its own
            if message["type"] == "flag":
                assert province in {*message["payers"], *message["payees"]}
                continue
            assert message["type"] in ("statement", "prepayment_alert", "prepayment_notice")
            assert message["province"] == province
            for obligation in message.get("obligations", ()):
                assert province in (obligation["payer"], obligation["payee"])


def test_invalid_events_are_dead_lettered_and_the_worker_keeps_going(
    sample_run, sample_offline, kafka_bootstrap: str
) -> None:
    summary, _ = sample_run
    lines = list(event_lines(CASES / "events.jsonl"))
    invalid = {r["line"] for r in sample_offline if r["status"] == "invalid"}
    assert invalid and max(invalid) < len(lines)  # valid events came after them, and got results
    records = read_all(kafka_bootstrap, Topics(summary.prefix).deadletter, idle=0.5)
    seen = {}
    for record in records:
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["reason"]
        assert headers["source_topic"] == Topics(summary.prefix).events
        assert int(headers["source_partition"]) >= 0 and int(headers["source_offset"]) >= 0
        line = int(headers["line"])
        assert record.value == lines[line - 1]  # the raw bytes, unchanged
        seen[line] = headers["reason"]
    assert set(seen) == invalid


# ---------------------------------------------------------------------------------------------
# A worker SIGKILLed mid-stream


def test_worker_killed_mid_stream_loses_nothing_and_counts_nothing_twice(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clearing.ops.simulate.bundle import generate_bundle

    bundle = tmp_path / "bundle"
    generate_bundle(bundle, events=6000, seed=11, period="2026-01")
    events = bundle / "events.jsonl"
    expected = offline_results(bundle / "refdata", events)

    monkeypatch.setenv("CLEARING_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLEARING_BATCH_SIZE", "200")
    prefix = stream_prefix_name()
    topics = Topics(prefix)
    db_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    run_id = new_run_id()
    try:
        ensure_topics(kafka_bootstrap, prefix)
        publish(kafka_bootstrap, topics, bundle / "refdata", events, run_id=run_id)
        (worker,) = start_workers(1, kafka_bootstrap, prefix, db_url, tmp_path, free_port())
        results = RunResults(run_id, len(expected))
        # Until about a third of the results are out, then a crash with no clean-up at all.
        results.expected = len(expected) // 3
        collect(kafka_bootstrap, topics.results, results, stall_timeout=90, alive=worker.alive)
        worker.kill()
        crashed_at = RunResults(run_id, len(expected))
        for record in read_all(kafka_bootstrap, topics.results, idle=0.5):
            crashed_at.add(record.value)
        assert not crashed_at.complete  # the crash really was mid-stream
        (worker,) = start_workers(1, kafka_bootstrap, prefix, db_url, tmp_path, free_port())
        try:
            results = RunResults(run_id, len(expected))
            collect(kafka_bootstrap, topics.results, results, stall_timeout=90, alive=worker.alive)
            metrics = fetch_metrics(worker.web_port, viewer_token(db_url))
        finally:
            worker.stop()
        assert 'clearing_results_total{status="priced"}' in metrics
        assert "clearing_result_latency_seconds_bucket" in metrics
        assert "clearing_batch_size_count" in metrics
        got = [spec_view(r) for r in results.results()]
        assert got == expected
        # A replayed offset re-emits its stored result: every copy of a line's result is equal.
        copies: dict[int, bytes] = {}
        for record in read_all(kafka_bootstrap, topics.results, idle=0.5):
            line = orjson.loads(record.value)["line"]
            assert copies.setdefault(line, record.value) == record.value

        want = offline_statements(expected)
        statements = issue_statements(db_url, list(want))
        for period, statement in want.items():
            assert_same_statement(statements[period], statement)
    finally:
        stream_topics_cleanup(kafka_bootstrap, prefix)
