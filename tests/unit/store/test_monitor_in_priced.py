"""Revision 0007: the monitor's rows move into the priced settlements' rows, and back.

A database at 0006 with a remembered settlement (a `monitor_seen` row), a reversed one and one
priced while monitoring was off is upgraded: the rules read the same history from
`stream_priced`, and the downgrade makes the same `monitor_seen` again. On both databases.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
import pytest
from alembic import command
from sqlalchemy import Boolean, Date, LargeBinary, column, insert, inspect, select, table
from sqlalchemy.exc import IntegrityError

from clearing.core.monitoring import Items, PersonHistory, Seen
from clearing.store import db, schema
from clearing.store.monitor import load_histories

ITEMS = orjson.dumps([["B1", 10000, 3000], ["A1", 20000, 1500]])
SEEN_ROW: dict[str, Any] = {
    "settlement_id": "S1",
    "person_id": "P1",
    "source_offset": 7,
    "kind": "inpatient",
    "hospital_id": "H1",
    "admitted_on": date(2026, 1, 1),
    "discharged": date(2026, 1, 5),
    "diagnosis": "I21.0",
    "items": ITEMS,
    "period": "2026-01",
    "payer": "650000",
    "payee": "510000",
    "total_fen": 12_345,
}
OLD_PRICED = table(
    "stream_priced",
    *(column(c) for c in ("settlement_id", "person_id", "year", "kind", "counted_fen")),
    column("result", LargeBinary()),
    column("reversed", Boolean()),
)
OLD_SEEN = table(
    "monitor_seen",
    *(column(c) for c in SEEN_ROW if c not in ("admitted_on", "discharged", "items")),
    column("admitted_on", Date()),
    column("discharged", Date()),
    column("items", LargeBinary()),
)


def result(sid: str, hospital: str = "H1") -> bytes:
    fields = {"hospital_id": hospital, "period": "2026-01", "payer": "650000", "payee": "510000"}
    return orjson.dumps({"settlement_id": sid, "total_fen": 12_345, **fields})


def priced_row(sid: str, reversed_: bool) -> dict[str, Any]:
    return {
        "settlement_id": sid,
        "person_id": "P1",
        "year": 2026,
        "kind": "inpatient",
        "counted_fen": 0,
        "result": result(sid),
        "reversed": reversed_,
    }


def migrate(url: str, to: str, down: bool = False) -> None:
    engine = db.migration_engine(url)
    try:
        with engine.begin() as conn:
            run = command.downgrade if down else command.upgrade
            run(db.alembic_config(conn), to)
    finally:
        engine.dispose()


def test_the_monitor_rows_move_into_the_priced_rows_and_back(db_url: str) -> None:
    assert db.upgrade(db_url, "0006") == "0006"
    engine = db.make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(OLD_PRICED),
                [priced_row("S1", False), priced_row("S2", True), priced_row("S3", False)],
            )
            conn.execute(insert(OLD_SEEN), [SEEN_ROW])

        migrate(db_url, "0007")
        t = schema.stream_priced
        with engine.connect() as conn:
            rows = {r.settlement_id: r for r in conn.execute(select(t))}
            histories = load_histories(conn, ["P1", "P2"])
        moved = rows["S1"]
        assert (moved.source_offset, moved.diagnosis, bytes(moved._mapping["items"])) == (
            7,
            "I21.0",
            ITEMS,
        )
        assert (moved.admitted_on, moved.discharged) == (date(2026, 1, 1), date(2026, 1, 5))
        for sid in ("S2", "S3"):  # reversed, and priced with monitoring off: nothing to read
            assert [rows[sid]._mapping[c] for c in schema.MONITOR_COLUMNS] == [None] * 5
        wanted = Seen(
            "S1",
            "inpatient",
            "H1",
            date(2026, 1, 1),
            date(2026, 1, 5),
            "I21.0",
            Items(ITEMS),
            "2026-01",
            "650000",
            "510000",
            12_345,
        )
        assert histories == {"P1": PersonHistory("P1", (wanted,))}
        assert "monitor_seen" not in inspect(engine).get_table_names()
        with pytest.raises(IntegrityError), engine.begin() as conn:  # all of them or none
            conn.execute(insert(t), [{**priced_row("S4", False), "items": ITEMS}])

        migrate(db_url, "0006", down=True)
        with engine.connect() as conn:
            back = [r._asdict() for r in conn.execute(select(OLD_SEEN))]
            columns = {c["name"] for c in inspect(conn).get_columns("stream_priced")}
        for row in back:
            row["items"] = bytes(row["items"])
            for day in ("admitted_on", "discharged"):
                if isinstance(row[day], str):  # SQLite reads an untyped date back as text
                    row[day] = date.fromisoformat(row[day])
        assert back == [SEEN_ROW]
        assert not columns & set(schema.MONITOR_COLUMNS)
    finally:
        engine.dispose()
