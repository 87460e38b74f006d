"""The sender of every event on the real broker (authority.md): a worker with its gate, two
provinces logged in with the configs `clearing province add` writes, and the submission API.

- The broker refuses a province writing another province's inbound topic or the events topic.
- A settlement a province may not send (at another province's hospital), sent on its own
  inbound topic, is rejected NOT_AUTHORIZED and reaches only its own feed and the operators.
- A province's own events go through the gate and are priced as usual; bytes that are no event
  are dead-lettered with the parser's reason.
- Hospital A's reversal of hospital B's settlement through the API is NOT_AUTHORIZED when the
  settlement was published but not priced yet (the API cannot know its owner), and refused
  after it is priced (by the API, 403, and by the stream, for a copy that skipped the API).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import orjson
import pytest
from fixtures.api import SyncApiClient
from support.builders import CATALOG, POLICY, raw, reversal, settlement
from support.cli import clearing
from support.stream import Pipeline

from clearing.api.app import standalone
from clearing.api.config import ApiConfig
from clearing.kafka_auth import KafkaAuth
from clearing.kafka_clients import producer
from clearing.ops.collect import read_all
from clearing.ops.workers import wait_for_web

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

pytestmark = pytest.mark.kafka

BEIJING, TIANJIN, HEILONGJIANG = "110000", "120000", "230000"


@dataclass
class Stand:
    pipeline: Pipeline
    api: SyncApiClient
    tokens: dict[str, str]
    provinces: dict[str, KafkaAuth]


def province_producer(stand: Stand, code: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=stand.pipeline.bootstrap,
        max_block_ms=10000,
        acks="all",
        **stand.provinces[code].kafka_python_kwargs(),
    )


def values(bootstrap: str, topic: str) -> list[dict]:
    return [orjson.loads(r.value) for r in read_all(bootstrap, topic, idle=1.0)]


def eventually(find: Callable[[], object], timeout: float = 120) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError("not seen in time")


def result_of(stand: Stand, **ids: str) -> dict:
    """The one result on the results topic with these ids (waits for it)."""

    def find() -> list[dict]:
        topic = stand.pipeline.topics.results
        return [
            r for r in values(stand.pipeline.bootstrap, topic)
            if all(r.get(k) == v for k, v in ids.items())
        ]

    found = eventually(find)
    assert isinstance(found, list) and len(found) == 1, found
    return found[0]


def on_feed(stand: Stand, code: str, **ids: str) -> list[dict]:
    feed = values(stand.pipeline.bootstrap, stand.pipeline.topics.feed(code))
    return [r for r in feed if all(r.get(k) == v for k, v in ids.items())]


@pytest.fixture(scope="module")
def stand(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stand]:
    """The worker starts only after the events that must be pending are on the events topic."""
    from clearing import auth
    from clearing.store.db import open_engine

    workdir = tmp_path_factory.mktemp("authority")
    refdata = workdir / "refdata"
    docs = {
        "policies": [POLICY],
        "catalogs": [CATALOG, {**CATALOG, "province": TIANJIN}],
    }
    for folder, documents in docs.items():
        (refdata / folder).mkdir(parents=True)
        for n, doc in enumerate(documents):
            (refdata / folder / f"{n}.json").write_bytes(orjson.dumps(doc))
    pipeline = Pipeline(kafka_bootstrap, workdir / "run", batch_size=50)
    api: SyncApiClient | None = None
    added: list[str] = []
    try:
        pipeline.create(refdata)
        provinces = {}
        for code in (BEIJING, TIANJIN):
            out = workdir / f"{code}.properties"
            done = clearing("province", "add", code, "--prefix", pipeline.prefix,
                            "--out", str(out), "--replace", bootstrap=kafka_bootstrap)
            assert done.returncode == 0, done.stderr
            added.append(code)
            provinces[code] = KafkaAuth.from_properties_file(out)
        engine = open_engine(pipeline.db_url)
        # Each hospital registered with its province (A in Tianjin, B in Beijing).
        tokens = {
            h: auth.add(engine, "hospital", h, province=p)
            for h, p in (("HA", TIANJIN), ("HB", BEIJING))
        }
        engine.dispose()
        config = ApiConfig(kafka_bootstrap, pipeline.topics, pipeline.db_url, wait_seconds=0.2)
        api = SyncApiClient(standalone(config))
        yield Stand(pipeline, api, tokens, provinces)
    finally:
        if api is not None:
            api.close()
        for code in added:
            clearing("province", "revoke", code, "--prefix", pipeline.prefix,
                     bootstrap=kafka_bootstrap)
        pipeline.cleanup()


@pytest.fixture(scope="module")
def running(stand: Stand) -> Stand:
    """Before the worker runs: hospital A (HA, in Tianjin) files a settlement of its own and,
    through the API, a reversal of hospital B's (HB, in Beijing) settlement SB, which is on the
    events topic (published as a replay is) but not priced, so the API cannot tell its owner."""
    api, tokens = stand.api, stand.tokens
    own = settlement("SA", hospital_id="HA", hospital_region="120101", person_id="PA")
    assert api.request("POST", "/v1/settlements", own, tokens["HA"]).status == 202
    stand.pipeline.publish_lines([(1, raw(settlement("SB", hospital_id="HB", person_id="PB")))])
    early = api.request("POST", "/v1/reversals", reversal("RA", "SB", person_id="PB"), tokens["HA"])
    assert early.status == 202  # let through: nothing is known of SB here yet
    worker = stand.pipeline.start(1)
    assert wait_for_web(worker, timeout=180), worker.log_tail()
    return stand


def test_the_broker_refuses_a_province_writing_where_another_s_events_enter(stand: Stand):
    kafka = province_producer(stand, TIANJIN)
    topics = stand.pipeline.topics
    try:
        assert kafka.send(topics.inbound(TIANJIN), b"{}").get(10).offset >= 0
        for elsewhere in (topics.inbound(BEIJING), topics.events):
            with pytest.raises(KafkaError):
                kafka.send(elsewhere, b"{}").get(10)
    finally:
        kafka.close(timeout=5)


def test_a_settlement_a_province_may_not_send_is_refused_and_reaches_only_its_feed(running):
    stand = running
    foreign = settlement("ST", hospital_id="HB", person_id="PT")  # a Beijing hospital's
    kafka = province_producer(stand, TIANJIN)
    try:
        # A province cannot pass itself off as an operator: the gate names the sender.
        headers = [("principal", b"operator")]
        kafka.send(stand.pipeline.topics.inbound(TIANJIN), raw(foreign), headers=headers).get(10)
    finally:
        kafka.close(timeout=5)
    result = result_of(stand, settlement_id="ST")
    assert result["reasons"] == ["NOT_AUTHORIZED"]
    assert (result["principal"], result["feed"]) == ("province:120000", TIANJIN)
    assert eventually(lambda: on_feed(stand, TIANJIN, settlement_id="ST"))
    assert on_feed(stand, BEIJING, settlement_id="ST") == []
    assert on_feed(stand, HEILONGJIANG, settlement_id="ST") == []
    # The id was not taken: the rightful sender's settlement is priced.
    kafka = province_producer(stand, BEIJING)
    try:
        kafka.send(stand.pipeline.topics.inbound(BEIJING), raw(foreign)).get(10)
    finally:
        kafka.close(timeout=5)
    priced = eventually(lambda: [
        r for r in values(stand.pipeline.bootstrap, stand.pipeline.topics.results)
        if r.get("settlement_id") == "ST" and r["status"] == "priced"
    ])
    assert isinstance(priced, list) and len(priced) == 1
    assert eventually(lambda: on_feed(stand, HEILONGJIANG, settlement_id="ST", status="priced"))
    assert on_feed(stand, TIANJIN, settlement_id="ST", status="priced") == []


def test_a_province_s_own_events_go_through_and_no_event_is_dead_lettered(running):
    stand = running
    kafka = province_producer(stand, BEIJING)
    topics = stand.pipeline.topics
    try:
        own = settlement("SG", hospital_id="HB", person_id="PG")
        kafka.send(topics.inbound(BEIJING), raw(own)).get(10)
        kafka.send(topics.inbound(BEIJING), b"\x00 not an event").get(10)
    finally:
        kafka.close(timeout=5)
    result = result_of(stand, settlement_id="SG")
    assert result["status"] == "priced" and result["payee"] == BEIJING
    assert eventually(lambda: on_feed(stand, BEIJING, settlement_id="SG"))

    def dead() -> list:
        return [
            r for r in read_all(stand.pipeline.bootstrap, topics.deadletter, idle=1.0)
            if r.value == b"\x00 not an event"
        ]

    [letter] = eventually(dead)  # type: ignore[misc]
    headers = dict(letter.headers)
    assert headers["reason"].startswith(b"not JSON")
    assert headers["source_topic"] == topics.events.encode()


def test_hospital_a_reversing_b_settlement_is_refused_before_and_after_it_is_priced(running):
    stand = running
    api, tokens = stand.api, stand.tokens
    assert result_of(stand, settlement_id="SB", status="priced")["hospital_id"] == "HB"
    early = result_of(stand, reversal_id="RA")
    assert early["reasons"] == ["NOT_AUTHORIZED"]
    assert (early["principal"], early["feed"]) == (f"hospital:HA@{TIANJIN}", TIANJIN)
    answer = eventually(
        lambda: (r := api.request("GET", "/v1/reversals/RA", token=tokens["HA"])).status == 200
        and r
    )
    assert answer.json() == {  # type: ignore[union-attr]
        "status": "rejected",
        "settlement_id": "SB",
        "reversal_id": "RA",
        "reasons": ["NOT_AUTHORIZED"],
    }
    assert eventually(lambda: on_feed(stand, TIANJIN, reversal_id="RA"))
    assert on_feed(stand, BEIJING, reversal_id="RA") == []
    assert on_feed(stand, HEILONGJIANG, reversal_id="RA") == []

    # After: the API knows SB's owner and refuses; a copy that skipped the API is refused by
    # the stream.
    late = api.request("POST", "/v1/reversals", reversal("RL", "SB", person_id="PB"), tokens["HA"])
    assert late.status == 403
    kafka = producer(stand.pipeline.bootstrap)
    try:
        kafka.send(
            stand.pipeline.topics.events,
            key=b"PB",
            value=raw(reversal("RL", "SB", person_id="PB")),
            headers=[("principal", b"hospital:HA")],
        ).get(10)
    finally:
        kafka.close()
    assert result_of(stand, reversal_id="RL")["reasons"] == ["NOT_AUTHORIZED"]
    # B reverses its own settlement, with the very id A's refused reversal did not take.
    mine = api.request("POST", "/v1/reversals", reversal("RA", "SB", person_id="PB"), tokens["HB"])
    assert mine.status in (201, 202), mine.json()
    assert result_of(stand, reversal_id="RA", status="reversed")["settlement_id"] == "SB"
