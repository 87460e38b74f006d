"""Trial pricing (预结算, tiers.md) through `POST /v1/settlements/trial`, on SQLite and PostgreSQL.

A trial is priced from the stored state and changes nothing: every table's rows and the events
topic's end offsets are the same before and after, and the real submission then gets the
trial's numbers.
"""

from __future__ import annotations

import orjson
import pytest
from support.builders import item, refdata, settlement

from clearing.core.pricer import Pricer
from clearing.topics import Topics

pytestmark = pytest.mark.kafka

TRIAL = "/v1/settlements/trial"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api_db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return request.getfixturevalue("api_postgres_schema")


@pytest.fixture
def trial_client(api_client):
    data = refdata()
    return api_client(refdata=lambda: data)


def tables(db_url: str) -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order."""
    from sqlalchemy import MetaData, create_engine, select

    engine = create_engine(db_url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return {
                name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
                for name, table in meta.tables.items()
            }
    finally:
        engine.dispose()


def end_offsets(stack) -> dict[int, int]:
    from clearing.kafka_clients import consumer

    reader = consumer(stack.bootstrap, Topics(stack.prefix).events)
    try:
        ends = reader.end_offsets(reader.assignment())
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        reader.close()


def in_order(*events: dict) -> list[dict]:
    """What `clearing price` answers for the events one after another."""
    pricer = Pricer(refdata())
    return [pricer.process(orjson.dumps(e)).model_dump(exclude_none=True) for e in events]


def test_trials_change_nothing_and_the_submission_gets_their_numbers(
    api_stack, trial_client, stream_stand_in
) -> None:
    token = api_stack.tokens["H1"]
    # A settled stay takes 24 048 800 fen of the inpatient fund cap of 40 000 000...
    first = settlement("S1", items=[item("A1", "1", 32000000)])
    assert trial_client.request("POST", "/v1/settlements", first, token).status == 201
    # ... so a second stay of 25 000 000 fen crosses the cap given the stored accumulators.
    second = settlement(
        "S2",
        items=[item("A1", "1", 25000000)],
        admitted_on="2026-02-01",
        settled_at="2026-02-05T10:00:00+08:00",
    )
    rejected = settlement("S3", home_region="110100")  # not cross-province
    other = settlement("S4", person_id="P2")
    before, offsets = tables(api_stack.db_url), end_offsets(api_stack)

    trials = {
        name: trial_client.request("POST", TRIAL, event, token)
        for name, event in {
            "second": second,
            "taken": first,
            "rejected": rejected,
            "other": other,
        }.items()
    }
    again = trial_client.request("POST", TRIAL, second, token)  # nothing moved by the first

    assert tables(api_stack.db_url) == before
    assert end_offsets(api_stack) == offsets
    assert {name: reply.status for name, reply in trials.items()} == dict.fromkeys(trials, 200)
    answers = {name: reply.json() for name, reply in trials.items()}
    assert all(answer.pop("trial") is True for answer in answers.values())
    assert again.json() == {**answers["second"], "trial": True}
    _, after_first = in_order(first, second)
    assert answers["second"] == after_first
    assert answers["second"]["cap_reached"] is True
    # A taken id is priced as if new: no duplicate, and on top of the stored accumulators.
    assert answers["taken"]["status"] == "priced"
    assert answers["taken"] == in_order(first, first | {"settlement_id": "S1x"})[1] | {
        "settlement_id": "S1"
    }
    assert answers["rejected"]["status"] == "rejected"
    assert answers["rejected"]["reasons"][0] == "NOT_CROSS_PROVINCE"
    assert answers["other"] == in_order(other)[0]

    for name, event in (("second", second), ("rejected", rejected), ("other", other)):
        real = trial_client.request("POST", "/v1/settlements", event, token)
        assert real.status == 201
        assert real.json() == answers[name]


def test_a_trial_of_another_hospital_is_403(api_stack, trial_client) -> None:
    reply = trial_client.request("POST", TRIAL, settlement("S1"), api_stack.tokens["H2"])
    assert reply.status == 403
    assert reply.json()["fields"][0]["field"] == "hospital_id"


def test_an_invalid_trial_is_400_naming_fields(api_stack, trial_client) -> None:
    event = settlement("S1", hospital_level=7)
    reply = trial_client.request("POST", TRIAL, event, api_stack.tokens["H1"])
    assert reply.status == 400
    assert "hospital_level" in {f["field"] for f in reply.json()["fields"]}
    assert trial_client.request("POST", TRIAL, settlement("S1")).status == 401


def test_without_reference_data_a_trial_is_503(api_stack, api_client) -> None:
    reply = api_client().request("POST", TRIAL, settlement("S1"), api_stack.tokens["H1"])
    assert reply.status == 503
