"""`clearing bench monitor`: the records it feeds the price stage are the stream's."""

from __future__ import annotations

import orjson

from clearing.ops.bench.monitor import batches_of


def test_batches_keep_each_person_in_one_partition_in_order() -> None:
    lines = [orjson.dumps({"person_id": f"P{n % 7}", "n": n}) for n in range(100)] + [b"not json"]
    batches = batches_of(lines, 6)
    assert all(0 < len(b) <= 6 and len({r.partition for r in b}) == 1 for b in batches)
    records = [r for b in batches for r in b]
    assert sorted(r.line or 0 for r in records) == list(range(1, 102))
    where: dict[bytes, set[int]] = {}
    for r in records:
        where.setdefault(r.key or b"", set()).add(r.partition)
    assert all(len(p) == 1 for p in where.values())
    for key in where:
        mine = [r for r in records if r.key == key]
        assert [r.line for r in mine] == sorted(r.line or 0 for r in mine)
        assert [r.offset for r in mine] == sorted(r.offset for r in mine)
