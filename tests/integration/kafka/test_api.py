"""The hospitals' submission API on the real broker and a tmp SQLite database.

Results come from `stream_stand_in`: the stream's own BatchProcessor consuming the test's events
topic (test_api_e2e.py runs the real faust worker instead).
"""

from __future__ import annotations

import logging
import time
import warnings

import pytest
from support.builders import refdata, reversal, settlement

from clearing import auth
from clearing.api.publisher import Publisher
from clearing.core.pricer import Pricer
from clearing.store.db import make_engine
from clearing.topics import Topics

pytestmark = pytest.mark.kafka


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api_db_url(request, tmp_path) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return request.getfixturevalue("api_postgres_schema")


PERSON = "Pq7TokenX"  # a distinctive pseudonymous person_id, to check it is never logged


def priced(event: dict) -> dict:
    """What `clearing price` answers for the event alone."""
    import orjson

    return Pricer(refdata()).process(orjson.dumps(event)).model_dump(exclude_none=True)


def events_on_topic(stack) -> list[tuple[bytes, bytes]]:
    """(key, value) of every message on the stack's events topic."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaConsumer, TopicPartition
    from clearing.kafka_clients import kafka_python_auth

    consumer = KafkaConsumer(
        bootstrap_servers=stack.bootstrap, enable_auto_commit=False, **kafka_python_auth()
    )
    try:
        topic = Topics(stack.prefix).events
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        out = []
        while any(consumer.position(tp) < end[tp] for tp in parts):
            for messages in consumer.poll(timeout_ms=500).values():
                out.extend((m.key, m.value) for m in messages)
        return out
    finally:
        consumer.close()


def eventually(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


# ---- 400 / 401 / 413 / routing ----------------------------------------------------------------


def test_invalid_body_names_every_field(api_stack, api_client) -> None:
    client = api_client()
    event = settlement("S1", hospital_id="H1", hospital_level=7, colour="red")
    event["items"] = [
        {"code": "A1", "quantity": "1", "unit_price_fen": 1, "amount_fen": 1},
        {"code": "A1", "quantity": "1", "unit_price_fen": "1", "amount_fen": 1},
        {"code": "A1", "quantity": 3, "unit_price_fen": 1, "amount_fen": -1},
    ]
    reply = client.request("POST", "/v1/settlements", event, api_stack.tokens["H1"])
    assert reply.status == 400
    body = reply.json()
    fields = {f["field"]: f["message"] for f in body["fields"]}
    assert set(fields) == {
        "hospital_level",
        "colour",
        "items.1.unit_price_fen",
        "items.2.quantity",
        "items.2.amount_fen",
    }
    assert fields["colour"] == "is not a known field"
    assert fields["items.1.unit_price_fen"] == "must be an integer"
    assert "hospital_level" in body["error"]


def test_model_level_errors_name_their_field(api_stack, api_client) -> None:
    event = settlement("S1", items=[{"code": "A1", "quantity": "0", "unit_price_fen": 1,
                                     "amount_fen": 0}])  # fmt: skip
    reply = api_client().request("POST", "/v1/settlements", event, api_stack.tokens["H1"])
    assert reply.status == 400
    assert reply.json()["fields"] == [
        {"field": "items.0.quantity", "message": "must be > 0 and at most 100000"}
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "not JSON"),
        (b'{"type": "settlement",', "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"[" * 5000 + b"]" * 5000, "not JSON"),
        (b'{"type": "reversal"}', "type"),
    ],
)
def test_malformed_bodies_are_400_with_a_reason(api_stack, api_client, body, expected) -> None:
    reply = api_client().request("POST", "/v1/settlements", body, api_stack.tokens["H1"])
    assert reply.status == 400
    assert reply.headers["Content-Type"].startswith("application/json")
    assert expected in reply.json()["error"]


def test_a_reversal_body_at_the_settlement_endpoint_is_400(api_stack, api_client) -> None:
    reply = api_client().request("POST", "/v1/settlements", reversal(), api_stack.tokens["H1"])
    assert reply.status == 400
    assert "type" in {f["field"] for f in reply.json()["fields"]}


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 300],
)
def test_without_a_valid_token_401(api_stack, api_client, authorization) -> None:
    client = api_client()
    headers = {"Authorization": authorization} if authorization else {}
    for method, path, body in [
        ("POST", "/v1/settlements", settlement()),
        ("POST", "/v1/reversals", reversal()),
        ("GET", "/v1/settlements/S1", None),
        ("GET", "/v1/reversals/R1", None),
    ]:
        reply = client.request(method, path, body, headers=headers)
        assert reply.status == 401, (method, path)
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        assert reply.json()["error"]


def test_a_revoked_token_is_401_at_once(api_stack, api_client) -> None:
    client = api_client()
    token = api_stack.tokens["H1"]
    assert client.request("GET", "/v1/settlements/S1", token=token).status == 404
    engine = make_engine(api_stack.db_url)
    assert auth.revoke(engine, "hospital", "H1")
    engine.dispose()
    assert client.request("GET", "/v1/settlements/S1", token=token).status == 401


def test_too_large_a_body_is_413(api_stack, api_client) -> None:
    client = api_client(max_body_bytes=10_000)
    big = settlement("S1", diagnosis=["K35.8"] * 2000)
    reply = client.request("POST", "/v1/settlements", big, api_stack.tokens["H1"])
    assert reply.status == 413
    assert "larger than 10000 bytes" in reply.json()["error"]


def test_the_default_limit_is_4_mib(api_stack, api_client) -> None:
    client = api_client()
    body = b'{"type": "settlement", "pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    reply = client.request("POST", "/v1/settlements", body, api_stack.tokens["H1"])
    assert reply.status == 413
    # A chunked body (no Content-Length) is cut off while it is read.

    async def chunks():
        for _ in range(5):
            yield body[:1_000_000]

    reply = client.request("POST", "/v1/settlements", chunks(), api_stack.tokens["H1"])
    assert reply.status == 413


def test_unknown_paths_and_methods_answer_json(api_stack, api_client) -> None:
    client = api_client()
    token = api_stack.tokens["H1"]
    reply = client.request("PUT", "/v1/settlements", settlement(), token)
    assert reply.status == 405
    assert reply.headers["Allow"] == "POST"
    assert reply.json()["error"]
    for path in ("/v1/nothing", "/v1/settlements/bad$id", "/v1/settlements/" + "x" * 65):
        reply = client.request("GET", path, token=token)
        assert reply.status == 404
        assert reply.json()["error"]


# ---- submitting ---------------------------------------------------------------------------------


def test_a_new_settlement_is_published_once_and_answered_201(
    api_stack, api_client, stream_stand_in
) -> None:
    client = api_client()
    event = settlement("S1", person_id=PERSON)
    reply = client.request("POST", "/v1/settlements", event, api_stack.tokens["H1"])
    assert reply.status == 201
    assert reply.headers["Location"] == "/v1/settlements/S1"
    assert reply.json() == priced(event)
    messages = events_on_topic(api_stack)
    assert len(messages) == 1
    key, value = messages[0]
    assert key == PERSON.encode()
    import orjson

    assert orjson.loads(value) == event


def test_the_same_id_and_content_gets_the_original_answer(
    api_stack, api_client, stream_stand_in
) -> None:
    client = api_client()
    token = api_stack.tokens["H1"]
    first = client.request("POST", "/v1/settlements", settlement("S1"), token)
    assert first.status == 201
    # Key order and spacing do not matter: the parsed objects are compared.
    import orjson

    reordered = dict(reversed(list(settlement("S1").items())))
    again = client.request("POST", "/v1/settlements", orjson.dumps(reordered), token)
    assert again.status == 200
    assert again.json() == first.json()
    assert len(events_on_topic(api_stack)) == 1  # not published again
    read = client.request("GET", "/v1/settlements/S1", token=token)
    assert (read.status, read.json()) == (200, first.json())


def test_the_same_id_with_other_content_is_409(api_stack, api_client, stream_stand_in) -> None:
    client = api_client()
    token = api_stack.tokens["H1"]
    assert client.request("POST", "/v1/settlements", settlement("S1"), token).status == 201
    other = settlement("S1", emergency=True)
    reply = client.request("POST", "/v1/settlements", other, token)
    assert reply.status == 409
    body = reply.json()
    assert "S1" in body["error"]
    assert body["fields"][0]["field"] == "settlement_id"
    assert len(events_on_topic(api_stack)) == 1


def test_a_conflict_is_409_even_before_the_first_is_priced(api_stack, api_client) -> None:
    client = api_client(wait_seconds=0.1)
    token = api_stack.tokens["H1"]
    assert client.request("POST", "/v1/settlements", settlement("S1"), token).status == 202
    again = client.request("POST", "/v1/settlements", settlement("S1"), token)
    assert again.status == 202
    assert again.json() == {"status": "pending", "settlement_id": "S1"}
    other = client.request("POST", "/v1/settlements", settlement("S1", emergency=True), token)
    assert other.status == 409
    assert len(events_on_topic(api_stack)) == 1


def test_pending_is_202_with_location_until_the_result_is_stored(api_stack, api_client) -> None:
    from fixtures.api import StreamStandIn

    client = api_client(wait_seconds=0.1)
    token = api_stack.tokens["H1"]
    reply = client.request("POST", "/v1/settlements", settlement("S1"), token)
    assert reply.status == 202
    assert reply.headers["Location"] == "/v1/settlements/S1"
    assert reply.json() == {"status": "pending", "settlement_id": "S1"}
    assert client.request("GET", "/v1/settlements/S1", token=token).status == 202
    stand_in = StreamStandIn(api_stack, refdata())
    try:
        done = eventually(
            lambda: (
                (r := client.request("GET", "/v1/settlements/S1", token=token)).status == 200 and r
            )
        )
    finally:
        stand_in.close()
    assert done and done.json() == priced(settlement("S1"))


def test_a_rejected_settlement_is_answered_with_its_reasons(
    api_stack, api_client, stream_stand_in
) -> None:
    event = settlement("S1", home_region="110100")  # same province: not cross-province
    reply = api_client().request("POST", "/v1/settlements", event, api_stack.tokens["H1"])
    assert reply.status == 201
    assert reply.json() == priced(event)
    assert reply.json()["reasons"][0] == "NOT_CROSS_PROVINCE"


def test_an_unacknowledged_publication_is_503_and_frees_the_id(
    api_stack, api_client, stream_stand_in, monkeypatch
) -> None:
    client = api_client()
    token = api_stack.tokens["H1"]
    real = Publisher.publish

    def broken(self, *args):
        raise TimeoutError("broker gone")

    monkeypatch.setattr(Publisher, "publish", broken)
    reply = client.request("POST", "/v1/settlements", settlement("S1"), token)
    assert reply.status == 503
    assert reply.headers["Retry-After"] == "5"
    assert "retry" in reply.json()["error"]
    monkeypatch.setattr(Publisher, "publish", real)
    reply = client.request("POST", "/v1/settlements", settlement("S1"), token)
    assert reply.status == 201


# ---- hospitals see only their own ----------------------------------------------------------------


def test_a_settlement_of_another_hospital_is_403(api_stack, api_client) -> None:
    client = api_client()
    reply = client.request(
        "POST", "/v1/settlements", settlement("S1", hospital_id="H1"), api_stack.tokens["H2"]
    )
    assert reply.status == 403
    assert reply.json()["fields"][0]["field"] == "hospital_id"
    assert events_on_topic(api_stack) == []


def test_reading_another_hospitals_result_is_404_like_a_missing_one(
    api_stack, api_client, stream_stand_in
) -> None:
    client = api_client()
    h1, h2 = api_stack.tokens["H1"], api_stack.tokens["H2"]
    assert client.request("POST", "/v1/settlements", settlement("S1"), h1).status == 201
    theirs = client.request("GET", "/v1/settlements/S1", token=h2)
    missing = client.request("GET", "/v1/settlements/S404", token=h2)
    assert theirs.status == missing.status == 404
    assert theirs.json().keys() == missing.json().keys() == {"error"}
    assert client.request("GET", "/v1/settlements/S1", token=h1).status == 200


def test_reversals_of_own_settlements_only(api_stack, api_client, stream_stand_in) -> None:
    client = api_client()
    h1, h2 = api_stack.tokens["H1"], api_stack.tokens["H2"]
    settled = client.request("POST", "/v1/settlements", settlement("S1"), h1)
    assert settled.status == 201

    refused = client.request("POST", "/v1/reversals", reversal("R1", "S1"), h2)
    assert refused.status == 403
    assert refused.json()["fields"][0]["field"] == "settlement_id"

    reply = client.request("POST", "/v1/reversals", reversal("R1", "S1"), h1)
    assert reply.status == 201
    assert reply.headers["Location"] == "/v1/reversals/R1"
    body = reply.json()
    assert body["status"] == "reversed"
    assert body["fund_pay_fen"] == -settled.json()["fund_pay_fen"]
    assert body["hospital_id"] == "H1"

    assert client.request("GET", "/v1/reversals/R1", token=h1).json() == body
    assert client.request("GET", "/v1/reversals/R1", token=h2).status == 404
    again = client.request("POST", "/v1/reversals", reversal("R1", "S1"), h1)
    assert (again.status, again.json()) == (200, body)
    other = client.request("POST", "/v1/reversals", reversal("R1", "S1", reason="other"), h1)
    assert other.status == 409


def test_a_reversal_of_an_unknown_settlement_is_priced_as_unknown(
    api_stack, api_client, stream_stand_in
) -> None:
    client = api_client()
    h1, h2 = api_stack.tokens["H1"], api_stack.tokens["H2"]
    reply = client.request("POST", "/v1/reversals", reversal("R9", "S404"), h1)
    assert reply.status == 201
    assert reply.json() == {
        "status": "rejected",
        "settlement_id": "S404",
        "reversal_id": "R9",
        "reasons": ["UNKNOWN_SETTLEMENT"],
    }
    assert client.request("GET", "/v1/reversals/R9", token=h1).status == 200
    assert client.request("GET", "/v1/reversals/R9", token=h2).status == 404


def test_ids_taken_outside_the_api(api_stack, api_client, stream_stand_in, tmp_path) -> None:
    """A settlement that came in a published file: its id is taken for the API too."""
    import orjson

    from clearing.ops.publish import publish

    path = tmp_path / "events.jsonl"
    path.write_bytes(orjson.dumps(settlement("S7")) + b"\n")
    publish(api_stack.bootstrap, Topics(api_stack.prefix), None, path, progress=False)
    client = api_client()
    h1, h2 = api_stack.tokens["H1"], api_stack.tokens["H2"]
    read = eventually(
        lambda: (r := client.request("GET", "/v1/settlements/S7", token=h1)).status == 200 and r
    )
    assert read and read.json()["status"] == "priced"
    assert client.request("GET", "/v1/settlements/S7", token=h2).status == 404
    same = client.request("POST", "/v1/settlements", settlement("S7"), h1)
    assert (same.status, same.json()) == (200, read.json())
    other = client.request("POST", "/v1/settlements", settlement("S7", emergency=True), h1)
    assert other.status == 409
    # Its hospital is known from the priced result: another hospital may not reverse it.
    assert client.request("POST", "/v1/reversals", reversal("R7", "S7"), h2).status == 403
    assert len(events_on_topic(api_stack)) == 1


# ---- the rest -----------------------------------------------------------------------------------


def test_openapi_is_served_without_a_token(api_stack, api_client) -> None:
    from clearing.api.openapi import generate

    reply = api_client().request("GET", "/v1/openapi.json")
    assert reply.status == 200
    assert reply.json() == generate()


def test_no_token_or_person_id_is_logged(api_stack, api_client, stream_stand_in, caplog) -> None:
    """Tokens appear in no log record at all; person_ids in none at INFO and above, nor in the
    API's own at any level (kafka-python's DEBUG records carry whole messages: keep it at INFO)."""
    caplog.set_level(logging.DEBUG)
    client = api_client()
    h1, h2 = api_stack.tokens["H1"], api_stack.tokens["H2"]
    client.request("POST", "/v1/settlements", settlement("S1", person_id=PERSON), h1)
    client.request("POST", "/v1/settlements", settlement("S2", person_id=PERSON), h2)
    client.request("POST", "/v1/reversals", reversal("R1", "S1", person_id=PERSON), h1)
    client.request("POST", "/v1/settlements", {"person_id": PERSON}, h1)
    client.request("GET", "/v1/settlements/S1", token="Bearer-guess-" + h1[:10])
    records = caplog.records
    everything = "\n".join(r.getMessage() for r in records)
    for secret in (h1, h2, h1[:10]):
        assert secret not in everything
    ours = "\n".join(
        r.getMessage()
        for r in records
        if r.levelno >= logging.INFO or r.name.startswith(("clearing", "aiohttp"))
    )
    assert "accepted" in ours  # the API does log, just not these
    assert PERSON not in ours


def test_racing_submissions_of_one_id_publish_once(api_stack, api_client) -> None:
    import asyncio

    import orjson

    client = api_client(wait_seconds=0.2)
    token = api_stack.tokens["H1"]
    bodies = [settlement("S1", emergency=bool(i % 2)) for i in range(12)]

    async def post(body: dict) -> int:
        async with client.client.post(
            "/v1/settlements", data=orjson.dumps(body), headers={"Authorization": f"Bearer {token}"}
        ) as response:
            return response.status

    async def race() -> list[int]:
        return await asyncio.gather(*(post(b) for b in bodies))

    statuses = client.loop.run_until_complete(race())
    assert statuses.count(202) + statuses.count(409) == len(bodies)
    assert 1 <= statuses.count(202) <= 6 and statuses.count(409) >= 6
    assert len(events_on_topic(api_stack)) == 1

