"""`clearing period issue` with a broker configured: the statement goes to the clearing topic
and the provinces' feeds, once unless asked again."""

from __future__ import annotations

import json

import pytest
from fixtures.stream import stream_prefix_name, stream_topics_cleanup
from support.paths import CASES

from clearing.cli import main


def run(capsys, command: str, *more: str) -> tuple[int, str, str]:
    """Runs `clearing COMMAND MORE...` in-process: (exit status, stdout, stderr)."""
    status = main([*command.split(), *more])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.kafka
def test_issue_publishes_the_statement_when_a_broker_is_configured(
    kafka_bootstrap, capsys, tmp_path
):
    """As the dashboard's Issue and `clearing run` do (one `clearing.ledger.cycle`): the whole
    statement on the clearing topic, each province's part on its feed; once, unless asked."""
    from clearing.core.statements import province_view
    from clearing.ops.collect import read_all
    from clearing.topics import Topics

    db = ("--db", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    prefix = stream_prefix_name()
    broker = ("--bootstrap", kafka_bootstrap, "--prefix", prefix)
    topics = Topics(prefix)
    try:
        assert run(capsys, "ledger-load --results", str(CASES / "priced.jsonl"), *db)[0] == 0
        assert run(capsys, "period close 2026-01 --force", *db)[0] == 0
        status, out, err = run(capsys, "period issue 2026-01", *db, *broker)
        assert status == 0 and "issued sha256" in err and "published (" in err
        statement = json.loads(out)
        clearing = read_all(kafka_bootstrap, topics.clearing)
        assert [json.loads(r.value) for r in clearing] == [{"type": "statement", **statement}]
        assert clearing[0].key == b"statement:2026-01"
        feed = read_all(kafka_bootstrap, topics.feed("410000"))
        assert [json.loads(r.value) for r in feed] == [province_view(statement, "410000")]

        status, _, err = run(capsys, "period issue 2026-01", *db, *broker)
        assert status == 0 and "not published again" in err
        assert len(read_all(kafka_bootstrap, topics.clearing)) == 1
        status, _, err = run(capsys, "period issue 2026-01 --republish", *db, *broker)
        assert status == 0 and "published (" in err
        assert len(read_all(kafka_bootstrap, topics.clearing)) == 2
    finally:
        stream_topics_cleanup(kafka_bootstrap, prefix)
