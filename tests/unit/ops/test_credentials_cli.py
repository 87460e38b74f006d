"""`clearing credentials add|revoke|list`: one token per hospital, operator or viewer, shown
once, only its hash kept; the API and the dashboard each accept only their kinds."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from clearing import auth
from clearing.cli import main
from clearing.store.db import make_engine
from clearing.store.schema import credentials as table


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(["credentials", *argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


@pytest.mark.parametrize("kind", ["hospital", "operator", "viewer"])
def test_add_prints_a_token_once_and_stores_only_its_hash(db, capsys, kind) -> None:
    status, out, err = run(capsys, "add", "--kind", kind, "H123", "--db", db)
    assert status == 0 and f"{kind} H123" in err
    token = out.strip()
    assert len(token) >= 40
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(table)).mappings().all()
        assert [(r["kind"], r["id"]) for r in rows] == [(kind, "H123")]
        assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
        assert token not in str(dict(rows[0]))
        assert auth.authenticate(engine, token) == auth.Principal(kind, "H123")
        assert auth.authenticate(engine, token, (kind,)) == auth.Principal(kind, "H123")
        others = tuple(k for k in auth.KINDS if k != kind)
        assert auth.authenticate(engine, token, others) is None
        assert auth.authenticate(engine, token + "x") is None
    finally:
        engine.dispose()


def test_add_twice_fails_unless_replacing(db, capsys) -> None:
    first = run(capsys, "add", "--kind", "hospital", "H1", "--db", db)[1].strip()
    status, _, err = run(capsys, "add", "--kind", "hospital", "H1", "--db", db)
    assert status == 1 and "already has a token" in err
    second = run(capsys, "add", "--kind", "hospital", "--replace", "H1", "--db", db)[1].strip()
    # The same id of another kind is another principal.
    assert run(capsys, "add", "--kind", "operator", "H1", "--db", db)[0] == 0
    engine = make_engine(db)
    try:
        assert auth.authenticate(engine, first) is None
        assert auth.authenticate(engine, second) == auth.Principal("hospital", "H1")
    finally:
        engine.dispose()


def test_revoke_and_list(db, capsys) -> None:
    token = run(capsys, "add", "--kind", "hospital", "H1", "--db", db)[1].strip()
    run(capsys, "add", "--kind", "hospital", "H2", "--db", db)
    run(capsys, "add", "--kind", "viewer", "vera", "--db", db)
    assert run(capsys, "revoke", "--kind", "operator", "H1", "--db", db)[0] == 1
    assert run(capsys, "revoke", "--kind", "hospital", "H1", "--db", db)[0] == 0
    status, _, err = run(capsys, "revoke", "--kind", "hospital", "H1", "--db", db)
    assert status == 1 and "has no token" in err
    listed = run(capsys, "list", "--db", db)[1]
    assert [line.split("\t")[:2] for line in listed.splitlines()] == [
        ["hospital", "H2"],
        ["viewer", "vera"],
    ]
    listed = run(capsys, "list", "--kind", "viewer", "--db", db)[1]
    assert [line.split("\t")[1] for line in listed.splitlines()] == ["vera"]
    engine = make_engine(db)
    try:
        assert auth.authenticate(engine, token) is None
    finally:
        engine.dispose()


def test_ids_follow_the_id_syntax_and_kinds_are_known(db, capsys) -> None:
    status, _, err = run(capsys, "add", "--kind", "hospital", "H 1", "--db", db)
    assert status == 1 and "must match" in err
    with pytest.raises(SystemExit):
        main(["credentials", "add", "--kind", "admin", "root", "--db", db])
    with pytest.raises(auth.CredentialError):
        auth.add(make_engine(db), "admin", "root")


def test_a_hospital_is_registered_with_its_province(db, capsys) -> None:
    token = run(capsys, "add", "--kind", "hospital", "H9", "--province", "120000", "--db", db)
    assert token[0] == 0
    for refused in (
        ["--kind", "hospital", "H8", "--province", "120101"],  # a region, not a province
        ["--kind", "operator", "alice", "--province", "120000"],  # only hospitals have one
    ):
        status, _, err = run(capsys, "add", *refused, "--db", db)
        assert status == 1 and "province" in err
    engine = make_engine(db)
    try:
        found = auth.authenticate(engine, token[1].strip(), ("hospital",))
        assert found == auth.Principal("hospital", "H9", "120000")
    finally:
        engine.dispose()


def test_a_token_file_registers_its_token_and_prints_nothing_of_it(db, capsys, tmp_path) -> None:
    """The compose deployment's scraper token: made by secrets.sh, registered as a viewer's."""
    token_file = tmp_path / "metrics.token"
    token = "A" * 10 + "b-_" * 11
    token_file.write_text(token + "\n")
    argv = ("add", "--kind", "viewer", "prometheus", "--token-file", str(token_file), "--db", db)
    for again in ((), ("--replace",)):  # run again (compose restarts it): the same token stays
        status, out, err = run(capsys, *argv, *again)
        assert status == 0, err
        assert token not in out + err
    engine = make_engine(db)
    try:
        assert auth.authenticate(engine, token) == auth.Principal("viewer", "prometheus")
    finally:
        engine.dispose()
    for weak in ("short", "x" * 42, "é" * 50, "has space " * 5, ""):
        token_file.write_text(weak)
        status, out, err = run(capsys, *argv, "--replace")
        assert status == 1 and ("43 to 256" in err or "cannot read" in err), err
        assert out == ""
    status, _out, err = run(capsys, *argv[:-3], str(tmp_path / "missing"), "--db", db)
    assert status == 1 and "cannot read" in err
