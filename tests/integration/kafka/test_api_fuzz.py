"""Property-based fuzz of the submission endpoints with malformed bodies and headers.

Every malformed request gets a 4xx JSON answer with a reason: never a 5xx, never an unhandled
exception (the server's error log stays empty). 2,400 examples in all, in well under a minute.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from copy import deepcopy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.builders import reversal, settlement

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

FUZZ = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one API per test, shared by its examples
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

SETTLEMENT = settlement("S1")
REVERSAL = reversal("R1", "S1")
STRING_FIELDS = {
    "settlement_id", "kind", "person_id", "scheme", "home_region", "hospital_id",
    "hospital_region", "admitted_on", "settled_at", "reversal_id", "reason", "type",
}  # fmt: skip
INT_LIMITS = {  # field: (lowest valid, highest valid)
    "schema_version": (1, 1),
    "hospital_level": (1, 3),
    "unit_price_fen": (0, 10**10),
    "amount_fen": (0, 10**12),
}
MARK = "__fuzz_value__"
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def dumps(obj) -> bytes:
    """JSON of anything a strategy makes (orjson refuses integers past 64 bits)."""
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


# ---- strategies ---------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


def wrong_type(field: str):
    """A value of a JSON type the field never accepts."""
    if field in STRING_FIELDS or field in ("code", "quantity"):
        return st.one_of(
            st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
            st.lists(st.text(max_size=3), max_size=3), st.just({}),
        )  # fmt: skip
    if field in INT_LIMITS:
        return st.one_of(
            st.none(), st.booleans(), st.text(max_size=5), st.lists(st.integers(), max_size=2),
            st.floats(allow_nan=False, allow_infinity=False),  # 3.0 is not an integer either
        )  # fmt: skip
    if field == "emergency":
        return st.one_of(st.none(), st.integers(0, 1), st.text(max_size=5), st.just([]))
    # diagnosis and items: lists
    return st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.just({}))


def paths(event: dict) -> list[tuple]:
    """Every field of an event, items' fields included, as key paths."""
    out: list[tuple] = [(k,) for k in event]
    if "items" in event:
        out += [("items", 0, k) for k in event["items"][0]]
    return out


def replaced(event: dict, path: tuple, value) -> dict:
    copy = deepcopy(event)
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copy


def removed(event: dict, path: tuple) -> dict:
    copy = deepcopy(event)
    target = copy
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return copy


def with_raw_value(event: dict, path: tuple, text: str) -> bytes:
    """The event's JSON with one value written as raw text (numbers JSON cannot round-trip)."""
    return dumps(replaced(event, path, MARK)).replace(f'"{MARK}"'.encode(), text.encode())


@st.composite
def truncated(draw, event: dict) -> bytes:
    raw = dumps(event)
    return raw[: draw(st.integers(0, len(raw) - 1))]


@st.composite
def wrong_types(draw, event: dict) -> bytes:
    path = draw(st.sampled_from(paths(event)))
    return dumps(replaced(event, path, draw(wrong_type(str(path[-1])))))


@st.composite
def missing_or_unknown(draw, event: dict) -> bytes:
    if draw(st.booleans()):
        return dumps(removed(event, draw(st.sampled_from(paths(event)))))
    name = draw(st.text(min_size=1, max_size=10).filter(lambda n: n not in event))
    return dumps({**event, name: draw(json_values)})


@st.composite
def huge_numbers(draw, event: dict) -> bytes:
    fields = [p for p in paths(event) if p[-1] in INT_LIMITS]
    path = draw(st.sampled_from(fields))
    low, high = INT_LIMITS[str(path[-1])]
    text = draw(
        st.one_of(
            st.integers(min_value=high + 1).map(str),
            st.integers(max_value=low - 1).map(str),
            st.integers(20, 5000).map(lambda n: "9" * n),
            st.integers(20, 5000).map(lambda n: "-" + "9" * n),
            st.sampled_from(["1e400", "-1e400", "1E+308", "1.0", "1e0", "0.5", "1e-400"]),
        )
    )
    return with_raw_value(event, path, text)


@st.composite
def huge_arrays(draw, event: dict) -> bytes:
    if "items" not in event:
        return dumps({**event, "reason": ["x"] * draw(st.integers(2001, 100_000))})
    count = draw(st.integers(2001, 70_000))  # past 2000 items; past ~55,000 also past 4 MiB
    return dumps({**event, "items": event["items"] * count})


@st.composite
def invalid_utf8(draw, event: dict) -> bytes:
    raw = dumps(event)
    bad = draw(
        st.sampled_from(
            [b"\xff", b"\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"\xe4\xb8", b"\xf4\x90\x80\x80",
             b"\x80", b"\xf0\x9f\x98"]
        )
    )  # fmt: skip
    at = draw(st.integers(0, len(raw)))
    return raw[:at] + bad + raw[at:]


@st.composite
def deep_nesting(draw, event: dict) -> bytes:
    path = draw(st.sampled_from(paths(event)))
    depth = draw(st.integers(2, 3000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = "[]" if opener == "[" else "{}"
    return with_raw_value(event, path, opener * depth + inner + closer * depth)


def malformed(event: dict):
    return st.one_of(
        truncated(event),
        wrong_types(event),
        missing_or_unknown(event),
        huge_numbers(event),
        huge_arrays(event),
        invalid_utf8(event),
        deep_nesting(event),
    )


# ---- the checks ---------------------------------------------------------------------------------


class Errors(logging.Handler):
    """Collects ERROR records: an unhandled exception in a handler is logged at ERROR."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def fuzz(api_stack, api_client) -> Iterator:
    errors = Errors()
    logging.getLogger().addHandler(errors)
    client = api_client(wait_seconds=0.05)

    def post(path: str, body: bytes, token: str | None = api_stack.tokens["H1"], headers=None):
        reply = client.request("POST", path, body, token, headers)
        check_4xx_json(reply)
        return reply

    post.client = client  # type: ignore[attr-defined]
    post.tokens = api_stack.tokens  # type: ignore[attr-defined]
    yield post
    logging.getLogger().removeHandler(errors)
    assert [r.getMessage() for r in errors.records] == []


def check_4xx_json(reply) -> None:
    assert 400 <= reply.status < 500, (reply.status, reply.body[:300])
    assert reply.headers["Content-Type"].startswith("application/json")
    body = reply.json()
    assert isinstance(body["error"], str) and body["error"]


@settings(FUZZ, max_examples=900)
@given(body=malformed(SETTLEMENT))
def test_malformed_settlements(fuzz, body: bytes) -> None:
    reply = fuzz("/v1/settlements", body)
    assert reply.status in (400, 413)


@settings(FUZZ, max_examples=600)
@given(body=malformed(REVERSAL))
def test_malformed_reversals(fuzz, body: bytes) -> None:
    reply = fuzz("/v1/reversals", body)
    assert reply.status in (400, 413)


@settings(FUZZ, max_examples=400)
@given(
    body=st.one_of(st.binary(max_size=3000), json_values.map(dumps)),
    path=st.sampled_from(["/v1/settlements", "/v1/reversals"]),
)
def test_arbitrary_bytes_and_json(fuzz, body: bytes, path: str) -> None:
    assert fuzz(path, body).status == 400


@settings(FUZZ, max_examples=250)
@given(
    authorization=st.one_of(
        st.text(PRINTABLE, max_size=300),
        st.text(PRINTABLE, max_size=300).map(lambda t: "Bearer " + t),
    ).map(str.strip),
    body=st.binary(max_size=200),
)
def test_arbitrary_authorization_headers(fuzz, authorization: str, body: bytes) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    assert fuzz("/v1/settlements", body, token=None, headers=headers).status == 401


@settings(FUZZ, max_examples=250)
@given(
    ident=st.text(
        st.characters(codec="utf-8", exclude_characters="/?#%."), min_size=1, max_size=80
    ),
    kind=st.sampled_from(["settlements", "reversals"]),
)
def test_arbitrary_ids_in_read_paths(fuzz, ident: str, kind: str) -> None:
    from urllib.parse import quote

    reply = fuzz.client.request("GET", f"/v1/{kind}/{quote(ident)}", token=fuzz.tokens["H1"])
    check_4xx_json(reply)
    assert reply.status == 404
