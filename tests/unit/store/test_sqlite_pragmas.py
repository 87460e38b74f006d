"""A new SQLite connection switches the database to WAL even when SQLite first answers
"database is locked" without waiting (another process creating the same ledger)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from clearing.store.db import make_engine, sqlite_pragmas


class Busy:
    """A DB-API connection whose WAL switch is refused `refusals` times, as SQLite does while
    another process holds a fresh file; every statement is kept."""

    def __init__(self, real: sqlite3.Connection, refusals: int) -> None:
        self.real = real
        self.refusals = refusals
        self.statements: list[str] = []

    def cursor(self) -> Busy:
        return self

    def execute(self, sql: str) -> None:
        self.statements.append(sql)
        if sql == "PRAGMA journal_mode=WAL" and self.refusals:
            self.refusals -= 1
            raise sqlite3.OperationalError("database is locked")
        self.real.execute(sql)

    def close(self) -> None:
        pass


def test_the_wal_switch_is_retried_while_the_database_is_locked(tmp_path: Path) -> None:
    real = sqlite3.connect(tmp_path / "ledger.sqlite")
    busy = Busy(real, refusals=3)
    sqlite_pragmas(busy, "ON")
    assert busy.statements.count("PRAGMA journal_mode=WAL") == 4
    assert real.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert busy.statements[-2:] == ["PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"]


def test_a_lock_that_outlasts_the_patience_is_raised(tmp_path: Path) -> None:
    busy = Busy(sqlite3.connect(tmp_path / "ledger.sqlite"), refusals=10_000)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        sqlite_pragmas(busy, "ON", patience=0.2)


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    class Broken(Busy):
        def execute(self, sql: str) -> None:
            self.statements.append(sql)
            if sql == "PRAGMA journal_mode=WAL":
                raise sqlite3.OperationalError("disk I/O error")

    broken = Broken(sqlite3.connect(tmp_path / "ledger.sqlite"), refusals=0)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        sqlite_pragmas(broken, "ON")
    assert broken.statements.count("PRAGMA journal_mode=WAL") == 1


def test_engines_connect_through_it(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
