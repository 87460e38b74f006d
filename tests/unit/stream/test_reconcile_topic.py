"""Confirmations and disputes as province nodes send them on `<prefix>.reconcile`."""

from __future__ import annotations

import orjson
import pytest
from support.ledger import sample_results

from clearing.core.netting import digest, obligation_lines
from clearing.stream.reconcile import Confirm, Dispute, answer, answer_messages, parse_request
from clearing.topics import Topics


@pytest.fixture
def issued(ledger):
    sample = sample_results()
    ledger.record_results(sample)
    ledger.close_period("2026-01")
    ledger.issue_period("2026-01")
    return obligation_lines([r for r in sample if r.get("period") == "2026-01"])


def request(**fields) -> bytes:
    return orjson.dumps({"schema_version": 1, "period": "2026-01", **fields})


def test_a_confirmation_is_answered_with_the_statement_it_confirms(ledger, issued):
    parsed = parse_request(request(type="confirm", province="110000"))
    assert isinstance(parsed, Confirm)
    reply = answer(ledger, parsed)
    assert reply["action"] == "confirm"
    assert reply["statement_sha256"] == ledger.statement("2026-01").sha256
    assert reply["net_position_fen"] == ledger.statement("2026-01").statement["net_positions"][
        "110000"
    ]


def test_a_dispute_finds_the_planted_difference(ledger, issued):
    (payer, payee), lines = next((pair, ls) for pair, ls in sorted(issued.items()) if len(ls) > 1)
    theirs = sorted(lines)
    kind, ident, fen = theirs[0].split("|")
    theirs[0] = f"{kind}|{ident}|{int(fen) + 100}"
    theirs.append("S|NOT-OURS-1|500")
    parsed = parse_request(
        request(
            type="dispute",
            province=payer,
            payer=payer,
            payee=payee,
            digest=digest(theirs),
            fund_pay_fen=sum(int(line.split("|")[2]) for line in theirs),
            lines=theirs,
        )
    )
    assert isinstance(parsed, Dispute)
    reply = answer(ledger, parsed)
    assert reply["digest_matches"] is False
    assert reply["differing_ids"] == sorted([f"{kind}|{ident}", "S|NOT-OURS-1"])
    assert reply["missing_here"] == ["S|NOT-OURS-1"]


def test_refusals_are_answers_not_crashes(ledger, issued):
    unissued = answer(ledger, parse_request(request(type="confirm", province="110000",
                                                    period="2026-03")))
    assert "error" in unissued and "2026-03" in unissued["error"]
    other = parse_request(
        request(type="dispute", province="110000", payer="410000", payee="310000",
                digest="0" * 64, fund_pay_fen=0)
    )
    assert "own obligations" in answer(ledger, other)["error"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{", "not JSON"),
        (b"[]", "object"),
        (request(type="approve", province="110000"), "type"),
        (request(type="confirm", province="110100"), "province"),
        (request(type="confirm", province="110000", period="2026-13"), "period"),
        (request(type="confirm", province="110000", extra=1), "extra"),
        (request(type="dispute", province="110000", payer="110000", payee="310000",
                 digest="abc", fund_pay_fen=0), "digest"),
        (request(type="dispute", province="110000", payer="110000", payee="310000",
                 digest="0" * 64, fund_pay_fen="1"), "fund_pay_fen"),
        (request(type="dispute", province="110000", payer="110000", payee="310000",
                 digest="0" * 64, fund_pay_fen=1, lines=["X|1|2"]), "lines.0"),
        (request(type="dispute", province="110000", payer="110000", payee="310000",
                 digest="0" * 64), "due_fen"),
        (request(type="dispute", province="110000", payer="110000", payee="310000",
                 digest="0" * 64, due_fen=2, fund_pay_fen=1), "due_fen"),
    ],
)
def test_invalid_requests_name_the_field(raw, field):
    reason = parse_request(raw)
    assert isinstance(reason, str) and field in reason


def test_a_dispute_names_its_due_or_by_its_old_name_the_fund_pay():
    common = dict(type="dispute", province="110000", payer="110000", payee="310000",
                  digest="0" * 64)  # fmt: skip
    assert parse_request(request(**common, due_fen=7)).due == 7
    assert parse_request(request(**common, fund_pay_fen=7)).due == 7
    assert parse_request(request(**common, due_fen=7, fund_pay_fen=7)).due == 7


def test_answers_go_to_the_province_and_the_clearing_topic_only():
    topics = Topics("p")
    messages = answer_messages(topics, {"period": "2026-01", "province": "110000", "x": 1})
    assert [topic for topic, _, _ in messages] == ["p.feed.110000", "p.clearing"]
    assert orjson.loads(messages[0][2])["type"] == "reconciliation"

