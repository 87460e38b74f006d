"""The sender in the stream, without a broker: the gate's forwarding, the price stage's check of
the `principal` header, and where a NOT_AUTHORIZED result is delivered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from kafka.partitioner.default import murmur2
from sqlalchemy import select
from support.builders import CATALOG, filing, raw, refdata, reversal, settlement

from clearing.core.models.refdata import Catalog
from clearing.ops.publish import event_key
from clearing.store import schema
from clearing.stream import ledger_link
from clearing.stream.batch import BatchProcessor, Record
from clearing.stream.gate import Gate, GateHandler
from clearing.stream.results import recipients, spec_view
from clearing.topics import EVENTS_PARTITIONS, PROVINCES, Topics

TOPICS = Topics("t")


class Feed:
    """Records of one events partition, numbered as the broker would."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self, event: dict | bytes, principal: str | None) -> Record:
        value = event if isinstance(event, bytes) else raw(event)
        header = principal.encode() if principal is not None else None
        record = Record("t.events", 0, self.offset, None, value, principal=header)
        self.offset += 1
        return record


@pytest.fixture
def proc(tmp_path: Path) -> BatchProcessor:
    engine = ledger_link.open_database(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    data = refdata()
    data.add_catalog(Catalog.model_validate({**CATALOG, "province": "120000"}))
    return BatchProcessor(engine, lambda: data, ledger_link.record_results)


def results(proc: BatchProcessor, *records: Record) -> list[dict]:
    return [e.result for e in proc.process(list(records)).emits]


def taken(proc: BatchProcessor) -> set[str]:
    with proc.engine.connect() as conn:
        return set(conn.execute(select(schema.ids.c.key)).scalars())


# ---- the gate --------------------------------------------------------------------------------


def test_the_gate_forwards_the_bytes_keyed_by_person_with_the_province_as_principal():
    gate = Gate(TOPICS)
    body = raw(settlement())
    headers = [("line", b"7"), ("run", b"r1"), ("principal", b"operator"), ("x", b"y")]
    topic, partition, key, value, out = gate.forward("t.inbound.110000", 3, b"k", body, headers)
    assert (topic, key, value) == ("t.events", b"P1", body)
    assert out == [("line", b"7"), ("run", b"r1"), ("principal", b"province:110000")]
    # The partition `clearing publish`'s producer (kafka-python's default partitioner) picks.
    assert partition == publishers_partition(event_key(body, 1))
    for n in range(200):
        person = f"person-{n}".encode()
        forwarded = gate.forward("t.inbound.120000", n, None, b'{"person_id":"%s"}' % person, None)
        assert forwarded[1] == publishers_partition(person)


def publishers_partition(key: bytes) -> int:
    """kafka-python's default partitioner (`clearing publish`, the API): its own murmur2."""
    return (murmur2(key) & 0x7FFFFFFF) % EVENTS_PARTITIONS


def test_the_gate_lets_bytes_that_are_no_event_through_for_the_price_stage_to_dead_letter():
    gate = Gate(TOPICS)
    _, _, key, value, headers = gate.forward("t.inbound.440000", 9, None, b"\xffnot json", None)
    assert (key, value, headers) == (b"t.inbound.440000:9", b"\xffnot json", [
        ("principal", b"province:440000")
    ])
    assert gate.forward("t.inbound.440000", 10, b"own", None, {"line": b"1"})[2:] == (
        b"own",
        b"",
        [("line", b"1"), ("principal", b"province:440000")],
    )
    with pytest.raises(ValueError, match="no province's inbound topic"):
        gate.forward("t.events", 0, None, body_of_nothing(), None)


def test_the_gate_commits_a_batch_only_after_every_forwarded_message_is_acknowledged(monkeypatch):
    """The first send fails: nothing is committed, the batch is sent again, then committed."""
    monkeypatch.setattr(asyncio, "sleep", _no_wait)
    inbound = [
        _Inbound("t.inbound.110000", 0, 5, None, raw(settlement("S1")), [("principal", b"x")]),
        _Inbound("t.inbound.110000", 0, 6, None, b"\xff", []),
    ]
    sent: list[list] = []
    committed: list[list] = []

    async def send_many(messages):
        sent.append(list(messages))
        loop = asyncio.get_running_loop()
        acks = []
        for _ in messages:
            ack = loop.create_future()
            if len(sent) == 1:
                ack.set_exception(OSError("broker away"))
            else:
                ack.set_result(None)
            acks.append(ack)
        return acks

    async def commit(records):
        assert len(sent) == 2, "committed before the broker acknowledged"
        committed.append(list(records))

    asyncio.run(GateHandler(Gate(TOPICS), send_many).handle(inbound, commit))

    assert committed == [inbound]
    assert sent[0] == sent[1] and len(sent[1]) == 2
    assert all(headers == [("principal", b"province:110000")] for *_, headers in sent[1])


class _Inbound:
    def __init__(self, topic, partition, offset, key, value, headers):
        self.topic, self.partition, self.offset = topic, partition, offset
        self.key, self.value, self.headers = key, value, headers


async def _no_wait(_seconds: float) -> None:
    return None


def body_of_nothing() -> bytes:
    return b"{}"


# ---- the price stage -------------------------------------------------------------------------


def test_a_province_s_settlement_at_another_province_s_hospital_is_refused(proc):
    feed = Feed()
    [result] = results(proc, feed(settlement(), "province:120000"))
    assert result["reasons"] == ["NOT_AUTHORIZED"]
    assert (result["principal"], result["feed"]) == ("province:120000", "120000")
    assert recipients(result) == ("120000",)  # not 110000 (the hospital's) nor 230000 (payer's)
    assert spec_view(result) == {
        "status": "rejected",
        "settlement_id": "S1",
        "reasons": ["NOT_AUTHORIZED"],
    }
    assert taken(proc) == set()  # no id: the rightful sender still uses it
    [priced] = results(proc, feed(settlement(), "province:110000"))
    assert priced["status"] == "priced"
    assert recipients(priced) == ("230000", "110000")


def test_events_without_a_principal_are_an_operator_s_and_a_bad_header_sends_nothing(proc):
    feed = Feed()
    first = results(proc, feed(filing(), None), feed(settlement(hospital_id="HX"), None))
    assert [r["status"] for r in first] == ["filed", "priced"]
    [refused] = results(proc, feed(filing("F2"), "root"))
    assert refused["reasons"] == ["NOT_AUTHORIZED"]
    assert "feed" not in refused and recipients(refused) == ()  # the operators only


def test_hospital_a_reversing_b_settlement_is_refused_and_goes_to_a_s_province(proc):
    feed = Feed()
    # A's own settlement (in 120000) tells where A lies; B's is in 110000.
    a_own = settlement("SA", hospital_id="HA", hospital_region="120101", person_id="P9")
    b_own = settlement("SB", hospital_id="HB")
    out = results(proc, feed(a_own, "hospital:HA"), feed(b_own, "hospital:HB"))
    assert [r["status"] for r in out] == ["priced", "priced"]
    # B's settlement priced in the same batch as A's reversal of it: refused too.
    c_own = settlement("SC", hospital_id="HB", person_id="P2")
    a_takes_c = reversal("RC", "SC", person_id="P2")
    a_takes_b = reversal("RB", "SB")
    out = results(proc, feed(c_own, "province:110000"), feed(a_takes_c, "hospital:HA"))
    out += results(proc, feed(a_takes_b, "hospital:HA"))
    assert [r["status"] for r in out] == ["priced", "rejected", "rejected"]
    for result in out[1:]:
        assert result["reasons"] == ["NOT_AUTHORIZED"]
        assert result["feed"] == "120000"
        assert recipients(result) == ("120000",)
    assert not {"R:RB", "R:RC"} & taken(proc)
    [reversed_] = results(proc, feed(a_takes_b, "hospital:HB"))
    assert reversed_["status"] == "reversed"


def test_a_refusal_replayed_is_the_stored_result(proc):
    record = Feed()(settlement(), "province:130000")
    [first] = results(proc, record)
    [again] = proc.process([record]).emits
    assert again.replayed and orjson.loads(again.message) == first


def test_recipients_of_a_refusal_ignore_payer_and_payee():
    refusal = {"status": "rejected", "reasons": ["NOT_AUTHORIZED"], "payer": "230000"}
    assert recipients({**refusal, "payee": "110000", "feed": "120000"}) == ("120000",)
    assert recipients({**refusal, "payee": "110000"}) == ()
    assert recipients({**refusal, "feed": "990000"}) == ()
    assert set(PROVINCES) >= {"120000"}
