"""`clearing hospital add|revoke|list`: a token shown once, only its hash kept."""

from __future__ import annotations

import argparse
import hashlib

import pytest
from sqlalchemy import select

from clearing.api import cli, credentials
from clearing.api.tables import credentials as table
from clearing.api.tables import make_engine


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="clearing")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


def test_add_prints_a_token_once_and_stores_only_its_hash(db_url, capsys) -> None:
    assert run(["hospital", "--db-url", db_url, "add", "H123"]) == 0
    token = capsys.readouterr().out.strip()
    assert len(token) >= 40
    engine = make_engine(db_url)
    try:
        rows = engine.connect().execute(select(table)).mappings().all()
        assert [r["hospital_id"] for r in rows] == ["H123"]
        assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
        assert token not in str(dict(rows[0]))
        assert credentials.authenticate(engine, token) == "H123"
        assert credentials.authenticate(engine, token + "x") is None
    finally:
        engine.dispose()


def test_add_twice_fails_unless_replacing(db_url, capsys) -> None:
    assert run(["hospital", "--db-url", db_url, "add", "H1"]) == 0
    first = capsys.readouterr().out.strip()
    assert run(["hospital", "--db-url", db_url, "add", "H1"]) == 1
    assert "already has a token" in capsys.readouterr().err
    assert run(["hospital", "--db-url", db_url, "add", "--replace", "H1"]) == 0
    second = capsys.readouterr().out.strip()
    engine = make_engine(db_url)
    try:
        assert credentials.authenticate(engine, first) is None
        assert credentials.authenticate(engine, second) == "H1"
    finally:
        engine.dispose()


def test_revoke_and_list(db_url, capsys) -> None:
    run(["hospital", "--db-url", db_url, "add", "H1"])
    run(["hospital", "--db-url", db_url, "add", "H2"])
    token = capsys.readouterr().out.split()[0]
    assert run(["hospital", "--db-url", db_url, "revoke", "H1"]) == 0
    assert run(["hospital", "--db-url", db_url, "revoke", "H1"]) == 1
    capsys.readouterr()
    assert run(["hospital", "--db-url", db_url, "list"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["H2"]
    engine = make_engine(db_url)
    try:
        assert credentials.authenticate(engine, token) is None
    finally:
        engine.dispose()


def test_hospital_ids_follow_the_id_syntax(db_url, capsys) -> None:
    assert run(["hospital", "--db-url", db_url, "add", "H 1"]) == 1
    assert "must match" in capsys.readouterr().err
