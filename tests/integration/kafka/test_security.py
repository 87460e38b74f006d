"""Security properties as tests, on the real broker.

- No province's feed carries a settlement between two other provinces, nor another province's
  part of a statement (a generated bundle through `clearing run`, all 31 feeds read back).
- Worker logs never carry event bodies: values planted in fields other than the pseudonymous
  person_id (diagnoses, a reversal's reason, malformed values) never appear in them, and a dead
  letter's headers say only what the parser says (field names), never a field's value.
- The worker's log (API mounted on its web server) never carries a bearer token.
- A hospital cannot reverse another hospital's settlement while it is still pending (the rest of
  "a hospital sees only its own" is in tests/integration/kafka/test_api.py).
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from random import Random

import orjson
import pytest
from fixtures.stream import stream_prefix_name, stream_topics_cleanup
from support.builders import reversal, settlement
from support.stream import Pipeline, offline_results

from clearing.core.statements import province_view
from clearing.ops.bundle import event_lines
from clearing.ops.collect import read_all
from clearing.ops.run import RunConfig, RunSummary, run
from clearing.ops.simulate.bundle import generate_bundle
from clearing.ops.workers import free_port, wait_for_web
from clearing.stream.results import spec_view
from clearing.topics import PROVINCES, Topics

pytestmark = pytest.mark.kafka

CANARY = "CANARY"  # every planted value contains it; the worker logs must never


def plant(lines: list[bytes], rng: Random) -> tuple[list[bytes], set[str]]:
    """Distinctive values in valid and invalid events; returns the lines and the planted values."""
    planted: set[str] = set()
    out = []
    for raw in lines:
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            out.append(raw)
            continue
        if isinstance(event, dict) and event.get("type") == "settlement" and rng.random() < 0.2:
            value = f"{CANARY}{rng.randint(100, 999)}"
            event["diagnosis"] = [value]
            planted.add(value)
            raw = json.dumps(event).encode()
        elif isinstance(event, dict) and event.get("type") == "reversal":
            value = f"{CANARY}-reason-{rng.randint(100, 999)} patient Wang, phone 13800138000"
            event["reason"] = value
            planted.add(value)
            raw = json.dumps(event).encode()
        out.append(raw)
    base = next(json.loads(r) for r in lines if b'"type": "settlement"' in r)
    bad: list[dict | bytes] = []
    for field, value in (
        ("hospital_level", f"{CANARY}-level"),
        ("settled_at", f"{CANARY}-time"),
        ("emergency", f"{CANARY}-flag"),
        ("kind", f"{CANARY}-kind"),
        ("note", f"{CANARY}-unknown-field"),
    ):
        bad.append({**base, field: value, "diagnosis": [f"{CANARY}-bad-{field}"[:16]]})
        planted.add(value)
        planted.add(f"{CANARY}-bad-{field}"[:16])
    items = [dict(base["items"][0], quantity=f"{CANARY}-qty")]
    bad.append({**base, "items": items})
    planted.add(f"{CANARY}-qty")
    bad.append({**base, "diagnosis": [f"{CANARY}-far-too-long-a-diagnosis"]})
    planted.add(f"{CANARY}-far-too-long-a-diagnosis")
    truncated = json.dumps({**base, "diagnosis": [f"{CANARY}-cut"]})[:400].encode()
    bad.append(truncated)
    planted.add(f"{CANARY}-cut")
    for item in bad:
        raw = item if isinstance(item, bytes) else json.dumps(item).encode()
        out.insert(rng.randrange(len(out) // 2), raw)  # valid events come after them
    return out, planted


@dataclass
class PlantedRun:
    summary: RunSummary
    bundle: Path  # refdata/ and the planted events
    out: Path  # results.jsonl, statement-*.json
    workdir: Path  # the ledger and the workers' logs
    lines: list[bytes]
    planted: set[str]


@pytest.fixture(scope="module")
def planted_run(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PlantedRun]:
    """A 3,000-event generated bundle with planted values through `clearing run` (logs at info)."""
    folder = tmp_path_factory.mktemp("security-bundle")
    generate_bundle(folder, events=3000, seed=606, period="2026-01")
    lines, planted = plant(list(event_lines(folder / "events.jsonl")), Random(606))
    events = folder / "planted.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    home = tmp_path_factory.mktemp("security-home")
    out = tmp_path_factory.mktemp("security-out")
    prefix = stream_prefix_name()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
        mp.setenv("CLEARING_HOME", str(home))
        config = RunConfig(
            refdata=folder / "refdata",
            events=events,
            out=out,
            prefix=prefix,
            web_port=free_port(),
            stall_timeout=120,
            log_level="info",
            workers=2,
        )
        summary = run(config)
    yield PlantedRun(summary, folder, out, home / "runs" / prefix, lines, planted)
    stream_topics_cleanup(kafka_bootstrap, prefix)


def test_no_feed_carries_a_settlement_between_two_other_provinces(
    planted_run, kafka_bootstrap: str
) -> None:
    summary = planted_run.summary
    topics = Topics(summary.prefix)
    feeds = {topics.feed(p): p for p in PROVINCES}
    received: dict[str, list[dict]] = {p: [] for p in PROVINCES}
    for record in read_all(kafka_bootstrap, list(feeds), idle=1.5, timeout=300):
        received[feeds[record.topic]].append(orjson.loads(record.value))
    results = {
        r["line"]: r
        for r in (
            orjson.loads(record.value)
            for record in read_all(kafka_bootstrap, topics.results, idle=1.0, timeout=300)
        )
    }
    cleared = {line for line, r in results.items() if r["status"] in ("priced", "reversed")}
    assert len(cleared) > 1000
    seen_lines: dict[str, set[int]] = {p: set() for p in PROVINCES}
    statements = 0
    for province, messages in received.items():
        for message in messages:
            if "status" in message:  # a result: only between this province and another
                assert province in (message["payer"], message["payee"]), (province, message)
                assert message["status"] in ("priced", "reversed", "rejected")
                assert message == results[message["line"]]
                seen_lines[province].add(message["line"])
            elif message["type"] == "statement":
                statements += 1
                assert message["province"] == province
                for obligation in message["obligations"]:
                    assert province in (obligation["payer"], obligation["payee"])
                for transfer in message["transfers"]:
                    assert province in (transfer["from"], transfer["to"])
                full = summary.statements[message["period"]]
                assert message == province_view(full, province)
            elif message["type"] == "flag":  # fund-safety flags: only those that involve it
                assert province in {*message["payers"], *message["payees"]}
            else:
                assert message["type"] in ("prepayment_alert", "prepayment_notice")
                assert message["province"] == province
    assert statements > 0
    # ... and every cleared result did reach both of its provinces.
    for line in cleared:
        for province in (results[line]["payer"], results[line]["payee"]):
            assert line in seen_lines[province], (line, province)


def test_worker_logs_never_show_event_bodies(planted_run) -> None:
    logs = "\n".join(
        p.read_text(errors="replace") for p in planted_run.workdir.glob("worker-*.log")
    )
    assert logs  # the workers did log (at info)
    for value in planted_run.planted:
        assert value not in logs
    assert CANARY not in logs
    assert '"items"' not in logs and '"diagnosis"' not in logs
    # The run itself was right: the planted values changed no result.
    got = [orjson.loads(x) for x in (planted_run.out / "results.jsonl").read_bytes().splitlines()]
    want = offline_results(planted_run.bundle / "refdata", planted_run.lines)
    assert [spec_view(r) for r in got] == want


def test_dead_letters_carry_only_the_parsers_reason(planted_run, kafka_bootstrap: str) -> None:
    lines = planted_run.lines
    topics = Topics(planted_run.summary.prefix)
    offline = {r["line"]: r for r in offline_results(planted_run.bundle / "refdata", lines)}
    invalid = {line for line, r in offline.items() if r["status"] == "invalid"}
    records = read_all(kafka_bootstrap, topics.deadletter, idle=1.0, timeout=300)
    seen = set()
    for record in records:
        headers = {k: v.decode() for k, v in record.headers}
        assert set(headers) == {
            "reason",
            "source_topic",
            "source_partition",
            "source_offset",
            "line",
            "run",
        }
        line = int(headers["line"])
        seen.add(line)
        assert headers["reason"] == offline[line]["error"]  # the parser's words, as offline
        for value in headers.values():
            assert CANARY not in value, (line, headers)
        assert record.value == lines[line - 1]  # the body is the raw bytes, kept for operators
    assert seen == invalid
    planted_invalid = [line for line in invalid if CANARY.encode() in lines[line - 1]]
    assert len(planted_invalid) >= 8


# ---------------------------------------------------------------------------------------------
# The API on a real worker: no bearer token in its log; no reversal of a pending settlement of
# another hospital


def call(url: str, method: str, path: str, body: dict | None, token: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = orjson.dumps(body) if body is not None else None
    request = urllib.request.Request(url + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_worker_log_never_carries_a_bearer_token(kafka_bootstrap: str, tmp_path: Path) -> None:
    from support.builders import CATALOG, POLICY

    from clearing import auth
    from clearing.store.db import open_engine

    refdata = tmp_path / "refdata"
    for folder, doc in (("policies", POLICY), ("catalogs", CATALOG)):
        (refdata / folder).mkdir(parents=True)
        (refdata / folder / "doc.json").write_bytes(orjson.dumps(doc))
    pipeline = Pipeline(kafka_bootstrap, tmp_path / "run", log_level="info")
    try:
        pipeline.create(refdata)
        engine = open_engine(pipeline.db_url)
        tokens = {h: auth.add(engine, "hospital", h) for h in ("H1", "H2")}
        engine.dispose()
        worker = pipeline.start(1)
        assert wait_for_web(worker, timeout=120), worker.log_tail()
        url = f"http://127.0.0.1:{worker.web_port}/v1"
        h1, h2 = tokens["H1"], tokens["H2"]
        deadline = time.monotonic() + 60
        while call(url, "GET", "/settlements/S0", None, h1) != 404:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert call(url, "POST", "/settlements", settlement("S1"), h1) in (201, 202)
        assert call(url, "POST", "/settlements", settlement("S2", hospital_id="H1"), h2) == 403
        assert call(url, "POST", "/reversals", reversal("R1", "S1"), h2) == 403
        assert call(url, "GET", "/settlements/S1", None, h2) == 404
        assert call(url, "GET", "/settlements/S1", None, h1) in (200, 202)
        assert call(url, "GET", "/settlements/S1", None, h1[:-4] + "abcd") == 401
        assert call(url, "POST", "/settlements", {"type": "settlement"}, h1) == 400
        pipeline.stop()
        logs = pipeline.logs()
        assert logs
        for secret in (h1, h2, h1[:-4], h1[:12], h2[:12]):
            assert secret not in logs
        assert not re.search(r"Bearer\s+\S", logs)  # no credential of any hospital, nor a guess
        assert not re.search(r"Authorization['\"]?\s*[:=]", logs)  # no header dump
    finally:
        pipeline.cleanup()


def test_a_pending_settlement_cannot_be_reversed_by_another_hospital(api_stack, api_client) -> None:
    """No stream prices here, so S1 stays pending: its owner is known from the API's claim."""
    client = api_client(wait_seconds=0.1)
    h1, h2 = api_stack.tokens["H1"], api_stack.tokens["H2"]
    assert client.request("POST", "/v1/settlements", settlement("S1"), h1).status == 202
    refused = client.request("POST", "/v1/reversals", reversal("R1", "S1"), h2)
    assert refused.status == 403
    assert refused.json()["fields"][0]["field"] == "settlement_id"
    assert client.request("GET", "/v1/settlements/S1", token=h2).status == 404
    assert client.request("GET", "/v1/reversals/R1", token=h2).status == 404
    assert client.request("POST", "/v1/reversals", reversal("R1", "S1"), h1).status == 202
