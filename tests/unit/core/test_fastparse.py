"""The fast parser against the pydantic one: the same verdict, event and message on every input.

Valid events come from the simulator and the shared sample bundles; each is mutated in many
ways (fields dropped, renamed, added; wrong types, bools for ints, floats, huge and negative
numbers, bad dates and timestamps, bad regions, unicode look-alikes, nested junk, duplicate
keys, reordered fields, malformed bytes). A fixed seed keeps the cases the same on every run.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.paths import CASES

from clearing.core.fastparse import fast_event
from clearing.core.parse import Parsed, Rejection, parse_event, parse_event_reference
from clearing.ops.simulate.bundle import generate_bundle

SEED = 20260111
MUTANTS_PER_EVENT = 6
MIN_CASES = 10_000

JUNK: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    3,
    4,
    2**31,
    2**63 - 1,
    -(2**63),
    10**10,
    10**10 + 1,
    10**12,
    10**12 + 1,
    1.0,
    0.5,
    -0.0,
    1e300,
    "",
    " ",
    "x",
    "1",
    "0",
    "-1",
    "1.0",
    "true",
    "null",
    "１",
    "é",
    "\u0000",
    "\n",
    "a\n",
    "😀",
    "x" * 16,
    "x" * 17,
    "x" * 64,
    "x" * 65,
    "y" * 200,
    "y" * 201,
    [],
    [1],
    ["A01"],
    [[]],
    {},
    {"a": 1},
    {"nested": {"deep": [1, {}]}},
    "2026-01-01",
    "2026-02-29",
    "2026-02-30",
    "2026-13-01",
    "2026-1-01",
    "20260101",
    "２０２６-01-01",
    "2026-01-01T00:00:00+08:00",
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00.123456+08:00",
    "2026-01-01T00:00:00",
    "2026-01-01 00:00:00+08:00",
    "2026-01-01T24:00:00+08:00",
    "2026-01-01T00:00:00+24:00",
    "2026-01-01T00:00:00+23:59",
    "2026-01-01T00:00+08:00",
    "2026-01-01T00:00:00+0800",
    "2026-01-01T00:00:00.+08:00",
    "110000",
    "110101",
    "310000",
    "011000",
    "11000",
    "1100000",
    "110000\n",
    "１１００００",
    "١١٠٠٠٠",
    "1",
    "0.5",
    "0.0001",
    "0.00001",
    "0",
    "0.0000",
    "100000",
    "100000.0000",
    "100000.0001",
    "1.",
    ".5",
    "01",
    "1e3",
    "+1",
    " 1",
    "1 ",
    "inpatient",
    "outpatient",
    "chronic",
    "employee",
    "resident",
    "long_term",
    "temporary",
    "referral",
    "A",
    "B",
    "C",
    "a",
    "S-1_x",
    "S 1",
    "S/1",
    "Ｓ1",
]
NUMBERS: list[Any] = [
    0,
    1,
    2,
    3,
    -1,
    10**10,
    10**10 + 1,
    10**12,
    10**12 + 1,
    2**63 - 1,
    True,
    False,
    1.0,
    2.5,
    "1",
    None,
]


def sample_lines() -> list[bytes]:
    lines = (CASES / "events.jsonl").read_bytes().splitlines()
    return lines + (CASES / "tiers" / "events.jsonl").read_bytes().splitlines()


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    bundle: Path = tmp_path_factory.mktemp("fastparse") / "bundle"
    generate_bundle(bundle, events=1500, seed=SEED)
    return (bundle / "events.jsonl").read_bytes().splitlines() + sample_lines()


def dumps(obj: Any) -> bytes:
    """JSON bytes of any value, integers beyond 64 bits included (orjson refuses those)."""
    return json.dumps(obj, ensure_ascii=rng_ascii(obj)).encode()


def rng_ascii(obj: Any) -> bool:
    """Escaped or raw unicode, alternately by content, so both spellings occur."""
    return len(repr(obj)) % 2 == 0


def copy(obj: Any) -> Any:
    return orjson.loads(orjson.dumps(obj))


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every location in a JSON value: keys of objects, indexes of lists (a few)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield (*prefix, key)
            yield from paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index in sorted({0, len(obj) - 1} & set(range(len(obj)))):
            yield (*prefix, index)
            yield from paths(obj[index], (*prefix, index))


def parent(obj: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        obj = obj[step]
    return obj


def mutate(rng: random.Random, event: dict[str, Any]) -> bytes:
    """One malformed (or, by chance, still valid) variant of a valid event, as bytes."""
    mutant = copy(event)
    where = list(paths(mutant))
    path = rng.choice(where)
    container = parent(mutant, path)
    last = path[-1]
    kind = rng.randrange(14)
    items = mutant.get("items")
    has_items = isinstance(items, list) and items and all(isinstance(i, dict) for i in items)
    if kind == 0 and isinstance(container, dict):  # drop a field
        del container[last]
    elif kind == 1 and isinstance(container, dict):  # rename a field
        value = container.pop(last)
        container[rng.choice([last.upper(), last + "_", last[:-1], "class_", "type", ""])] = value
    elif kind == 2 and isinstance(container, dict):  # an extra field
        container[rng.choice(["extra", "note", "Type", "class", "class_", "x" * 70])] = rng.choice(
            JUNK
        )
    elif kind == 3:  # any junk value anywhere
        container[last] = rng.choice(JUNK)
    elif kind == 4:  # numbers: bools, floats, bounds
        container[last] = rng.choice(NUMBERS)
    elif kind == 5 and has_items:  # an item's field
        item = rng.choice(mutant["items"])
        field = rng.choice(["code", "quantity", "unit_price_fen", "amount_fen"])
        item[field] = rng.choice(JUNK + NUMBERS)
    elif kind == 6 and has_items:  # the list of items
        choice = rng.randrange(6)
        if choice == 0:
            mutant["items"] = []
        elif choice == 1:
            mutant["items"] = (items * (2001 // len(items) + 1))[: rng.choice([2000, 2001])]
        elif choice == 2:
            items.append(rng.choice(JUNK))
        elif choice == 3:  # the same item with its fields in another order: still valid
            index = rng.randrange(len(items))
            keys = list(items[index])
            rng.shuffle(keys)
            items[index] = {key: items[index][key] for key in keys}
        elif choice == 4:
            items[rng.randrange(len(items))].pop(
                rng.choice(["code", "quantity", "amount_fen"]), None
            )
        else:
            mutant["items"] = {"0": items[0]}
    elif kind == 7 and "diagnosis" in mutant:
        mutant["diagnosis"] = rng.choice(
            [[], [""], ["x" * 16], ["x" * 17], [1], "A01", [None], ["A01", []], ["é" * 16]]
        )
    elif kind == 8 and "valid_from" in mutant:  # validity windows
        mutant["valid_to"] = rng.choice(
            [None, mutant["valid_from"], "1999-12-31", "9999-12-31", "2026-02-30", 20260101]
        )
        if rng.random() < 0.3:
            del mutant["valid_to"]
    elif kind == 9:  # a duplicate key, first or last wins per parser
        key = rng.choice(list(mutant) or ["type"])
        body = dumps(mutant)
        dup = dumps({key: rng.choice(JUNK)})[1:-1]
        if rng.random() < 0.5:
            return b"{" + dup + b"," + body[1:]
        return body[:-1] + b"," + dup + b"}"
    elif kind == 10:  # bytes that are not one JSON object
        body = dumps(mutant)
        return rng.choice(
            [
                body[: rng.randrange(len(body))],
                b"[" + body + b"]",
                b"",
                b"null",
                b"1",
                b'"x"',
                body + b"x",
                body.replace(b'"', b"'", 1),
                b"\xff" + body,
            ]
        )
    elif kind == 11:  # the type itself
        mutant["type"] = rng.choice(
            [
                "Settlement",
                "settlement ",
                "refund",
                "",
                None,
                1,
                "reversal",
                "filing",
                "assistance",
                "settlement",
            ]
        )
    elif kind == 12 and "settled_at" in mutant:  # timestamps
        mutant["settled_at"] = rng.choice(
            [j for j in JUNK if isinstance(j, str) and j[:4] in ("2026", "２０２６")]
        )
    elif kind == 13 and has_items:  # money and quantities
        item = rng.choice(mutant["items"])
        choice = rng.randrange(4)
        if choice == 0:
            item["amount_fen"] = -item["amount_fen"] - 1
        elif choice == 1:
            item["amount_fen"] += 1  # still valid: a pricing rejection, not a parsing one
        elif choice == 2:
            item["unit_price_fen"] = rng.choice([0, 10**10, 10**10 + 1, 10**30])
        else:
            item["quantity"] = rng.choice(["0", "0.0001", "99999.9999", "100000", "100000.0001"])
    else:  # still the valid event, its keys shuffled
        keys = list(mutant)
        rng.shuffle(keys)
        mutant = {key: mutant[key] for key in keys}
    return dumps(mutant)


def cases(sources: list[bytes]) -> Iterator[bytes]:
    rng = random.Random(SEED)
    for raw in sources:
        yield raw
        if not isinstance(parse_event_reference(raw), Parsed):
            continue  # the sources' own malformed lines are cases, not seeds
        event = orjson.loads(raw)
        for _ in range(MUTANTS_PER_EVENT):
            yield mutate(rng, event)


def dumped(parsed: Parsed) -> bytes:
    return parsed.event.model_dump_json(by_alias=True).encode()


def test_fast_and_reference_parsers_agree(sources: list[bytes]) -> None:
    tally: Counter[str] = Counter()
    for raw in cases(sources):
        fast = parse_event(raw)
        reference = parse_event_reference(raw)
        assert type(fast) is type(reference), raw
        if isinstance(reference, Rejection):
            assert isinstance(fast, Rejection)
            assert fast.error == reference.error, raw
            tally["rejected"] += 1
            continue
        assert isinstance(fast, Parsed)
        assert type(fast.event) is type(reference.event), raw
        assert fast.event == reference.event, raw
        assert fast.event.model_dump() == reference.event.model_dump(), raw
        assert dumped(fast) == dumped(reference), raw  # field order too
        assert fast.fingerprint == reference.fingerprint
        assert fast.event.model_fields_set == reference.event.model_fields_set
        if fast.event.type == "settlement":
            assert fast.event.quantities_e4 == reference.event.quantities_e4  # type: ignore[union-attr]
        tally["valid"] += 1
        tally["fast"] += fast_event(orjson.loads(raw)) is not None
    assert tally["valid"] + tally["rejected"] >= MIN_CASES, tally
    assert tally["valid"] >= 2_000 and tally["rejected"] >= 5_000, tally
    assert tally["fast"] >= 0.9 * tally["valid"], tally  # the fast path is the one taken


def test_rejection_messages_name_the_field(sources: list[bytes]) -> None:
    event = orjson.loads(next(raw for raw in sources if b'"settlement"' in raw))
    event["items"][0]["quantity"] = 1
    got = parse_event(orjson.dumps(event))
    assert isinstance(got, Rejection)
    assert got.error == "items.0.quantity: must be a string"
    event["items"][0]["quantity"] = "0"
    got = parse_event(orjson.dumps(event))
    assert isinstance(got, Rejection)
    assert got.error == "items.0.quantity: must be > 0 and at most 100000"


CHECKS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "a bool is not an int": lambda e: {**e, "hospital_level": True},
    "an int is not a bool": lambda e: {**e, "emergency": 0},
    "a float is not an int": lambda e: {**e, "schema_version": 1.0},
    "an unknown field": lambda e: {**e, "extra": 1},
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_the_fast_path_never_accepts_what_the_models_reject(
    name: str, sources: list[bytes]
) -> None:
    event = orjson.loads(next(raw for raw in sources if b'"settlement"' in raw))
    assert fast_event(event) is not None
    mutant = CHECKS[name](event)
    assert fast_event(mutant) is None
    assert isinstance(parse_event(orjson.dumps(mutant)), Rejection)
