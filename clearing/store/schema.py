"""Every table of the product, in one metadata. The invariants live here, as keys, foreign keys
and CHECK constraints, so that no code path (and no hand-written SQL) can skip them.

The ledger's tables (`ledger_*`), TigerBeetle's model: a posting is one immutable transfer from a
debit to a credit account with `amount_fen > 0` and two different accounts, so every posting sums
to zero by construction, and its idempotency key (result key, leg) is unique. Balances per
(clearing period, account, leg) are kept in the same transaction as the postings, so running
positions cost O(accounts) instead of a scan; closing a period checks balances, postings and
results against each other. The migrations also install triggers (no CHECK can see another
row): results, postings, prepayments, alerts and reconciliations are append-only; results,
postings and balances may only be written while their clearing period is open; a period only
moves open -> closed -> issued.

`ids`: one row per settlement or reversal id (`S:<settlement_id>`, `R:<reversal_id>`, see
`clearing.core.keys`), shared by the submission API, the stream and the ledger. Two parts, each
all there or all absent:

- the stream's take (`content_hash`, `source`): the fingerprint of the event that took the id
  and its position (`topic:partition:offset`, whose result is in `stream_results`). Only a take
  makes an id taken for pricing (duplicate or DUPLICATE_CONFLICT, pricing.md);
- the API's claim (`hospital_id`, `claimed_ms`, `claim_hash`, `claim_source`): the hospital that
  submitted the id, when, the fingerprint of what it submitted, and where the API published it
  (NULL until the broker acknowledged). A claim is made before publishing, so two requests
  racing on one id are accepted once; the stream never reads it.

A row with neither is an id known only from its ledger result (a results file loaded with
`clearing ledger-load`). `ledger_results.result_key` references `ids.key`.

The stream's pricing state (`stream_*`): every consumed event's result by source position, the
filings and assistance records, the per person-year-kind accumulators and the per person-year
tier accumulators (never negative), the priced settlements a reversal may cancel (with the
burden each counted). `credentials`: one bearer token per principal (hospital, operator, viewer),
only its SHA-256 kept. `dashboard_operator_actions`: the log of the dashboard's Close and Issue.

A CHECK passes when its condition is NULL, so every branch names the columns it needs NOT NULL.

This module is the current model; `migrations/versions` builds it, and a test keeps them equal.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")
AMOUNTS = (
    "total_fen",
    "self_pay_fen",
    "pre_self_pay_fen",
    "eligible_fen",
    "deductible_fen",
    "fund_pay_fen",
    "personal_pay_fen",
)
PERIOD_STATES = ("open", "closed", "issued")
# The home-side payers of one-stop settlement (tiers.md), each with an account per province: the
# basic fund, the serious-illness insurer, the medical-assistance fund. A leg per payer moves its
# share to the treating fund; leg `hospital` moves the due on to the hospital.
PAYER_KINDS = ("fund", "critical", "assistance")
ACCOUNT_KINDS = (*PAYER_KINDS, "hospital")
LEGS = (*PAYER_KINDS, "hospital")
# The share each payer pays of a result, by leg.
SHARES = {
    "fund": "fund_pay_fen",
    "critical": "critical_pay_fen",
    "assistance": "assistance_pay_fen",
}
RESULT_STATUSES = (
    "invalid", "filed", "duplicate", "rejected", "priced", "reversed", "registered"
)
ACCUMULATOR_KINDS = ("inpatient", "outpatient", "chronic")
PRINCIPAL_KINDS = ("hospital", "operator", "viewer")
OPERATOR_ACTIONS = ("close", "issue")


def _province(column: str) -> str:
    return f"length({column}) = 6 AND substr({column}, 3) = '0000'"


def _period(column: str) -> str:
    return (
        f"length({column}) = 7 AND substr({column}, 5, 1) = '-' "
        f"AND substr({column}, 6) BETWEEN '01' AND '12'"
    )


def _one_of(column: str, words: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(w) for w in words)})"


def _now() -> Column[datetime]:
    return Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now())


accounts = Table(
    "ledger_accounts",
    metadata,
    Column("account_id", String(80), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("ref", String(64), nullable=False),
    _now(),
    CheckConstraint(_one_of("kind", ACCOUNT_KINDS), name="kind"),
    CheckConstraint("account_id = kind || ':' || ref", name="id_is_kind_ref"),
    # Every payer account is a province's.
    CheckConstraint(f"kind = 'hospital' OR ({_province('ref')})", name="fund_is_province"),
)

periods = Table(
    "ledger_periods",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("state", String(8), nullable=False, server_default="open"),
    Column("opened_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("closed_at", DateTime(timezone=True)),
    Column("issued_at", DateTime(timezone=True)),
    Column("statement", Text),
    Column("statement_sha256", String(64)),
    CheckConstraint(_period("period"), name="period_format"),
    CheckConstraint(
        "(state = 'open' AND closed_at IS NULL AND issued_at IS NULL AND statement IS NULL"
        " AND statement_sha256 IS NULL)"
        " OR (state = 'closed' AND closed_at IS NOT NULL AND issued_at IS NULL"
        " AND statement IS NULL AND statement_sha256 IS NULL)"
        " OR (state = 'issued' AND closed_at IS NOT NULL AND issued_at IS NOT NULL"
        " AND statement IS NOT NULL AND statement_sha256 IS NOT NULL"
        " AND length(statement_sha256) = 64)",
        name="lifecycle",
    ),
)

results = Table(
    "ledger_results",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("result_key", String(70), ForeignKey("ids.key"), nullable=False, unique=True),
    Column("status", String(8), nullable=False),
    Column("settlement_id", String(64), nullable=False),
    Column("reversal_id", String(64)),
    Column("period", String(7), ForeignKey("ledger_periods.period"), nullable=False),
    Column("clearing_period", String(7), ForeignKey("ledger_periods.period"), nullable=False),
    Column("payer", String(6), nullable=False),
    Column("payee", String(6), nullable=False),
    Column("hospital_id", String(64), nullable=False),
    Column("settled_at", String(40)),
    Column("settled_day", Date),
    Column("filed", Boolean),
    Column("cap_reached", Boolean),
    *(Column(name, BigInteger, nullable=False) for name in AMOUNTS),
    _now(),
    # The tier shares (tiers.md); a result without tier fields has zero shares, due = fund_pay.
    Column("critical_pay_fen", BigInteger, nullable=False, server_default="0"),
    Column("assistance_pay_fen", BigInteger, nullable=False, server_default="0"),
    Column("due_fen", BigInteger, nullable=False),
    Column("has_tiers", Boolean, nullable=False, server_default=false()),
    Column("assistance_class", String(1)),
    # A settlement is priced once and reversed at most once.
    UniqueConstraint("settlement_id", "status"),
    CheckConstraint(
        "(status = 'priced' AND result_key = 'S:' || settlement_id AND reversal_id IS NULL"
        " AND filed IS NOT NULL AND cap_reached IS NOT NULL)"
        " OR (status = 'reversed' AND reversal_id IS NOT NULL"
        " AND result_key = 'R:' || reversal_id AND filed IS NULL AND cap_reached IS NULL)",
        name="status_key",
    ),
    CheckConstraint(
        "length(settlement_id) BETWEEN 1 AND 64 AND length(hospital_id) BETWEEN 1 AND 64"
        " AND (reversal_id IS NULL OR length(reversal_id) BETWEEN 1 AND 64)",
        name="id_lengths",
    ),
    CheckConstraint(_period("period"), name="period_format"),
    # Late results move forward, never back.
    CheckConstraint("clearing_period >= period", name="cleared_not_before"),
    CheckConstraint(f"{_province('payer')} AND {_province('payee')}", name="provinces"),
    CheckConstraint("payer <> payee", name="cross_province"),
    CheckConstraint("total_fen = self_pay_fen + pre_self_pay_fen + eligible_fen", name="total"),
    CheckConstraint("personal_pay_fen = total_fen - due_fen", name="personal"),
    CheckConstraint("due_fen = fund_pay_fen + critical_pay_fen + assistance_pay_fen", name="due"),
    CheckConstraint(
        "(has_tiers OR (critical_pay_fen = 0 AND assistance_pay_fen = 0"
        " AND assistance_class IS NULL))"
        " AND (assistance_class IS NULL OR (status = 'priced' AND assistance_class IN ('A', 'B')))",
        name="tiers",
    ),
    CheckConstraint(
        "(status = 'priced' AND self_pay_fen >= 0 AND pre_self_pay_fen >= 0"
        " AND eligible_fen >= 0 AND deductible_fen >= 0 AND fund_pay_fen >= 0"
        " AND critical_pay_fen >= 0 AND assistance_pay_fen >= 0"
        " AND personal_pay_fen >= 0 AND deductible_fen <= eligible_fen"
        " AND fund_pay_fen <= eligible_fen - deductible_fen)"
        " OR (status = 'reversed' AND self_pay_fen <= 0 AND pre_self_pay_fen <= 0"
        " AND eligible_fen <= 0 AND deductible_fen <= 0 AND fund_pay_fen <= 0"
        " AND critical_pay_fen <= 0 AND assistance_pay_fen <= 0"
        " AND personal_pay_fen <= 0 AND deductible_fen >= eligible_fen"
        " AND fund_pay_fen >= eligible_fen - deductible_fen)",
        name="signs",
    ),
    Index(None, "clearing_period", "payer", "payee"),
    Index(None, "settled_day", "hospital_id"),
)

postings = Table(
    "ledger_postings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("result_key", String(70), ForeignKey("ledger_results.result_key"), nullable=False),
    Column("leg", String(16), nullable=False),
    Column("debit_account", String(80), ForeignKey("ledger_accounts.account_id"), nullable=False),
    Column("credit_account", String(80), ForeignKey("ledger_accounts.account_id"), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    _now(),
    # The idempotency key: one posting per result and leg.
    UniqueConstraint("result_key", "leg"),
    CheckConstraint(_one_of("leg", LEGS), name="leg"),
    CheckConstraint("amount_fen > 0", name="amount_positive"),
    CheckConstraint("debit_account <> credit_account", name="two_accounts"),
)

balances = Table(
    "ledger_balances",
    metadata,
    Column("clearing_period", String(7), ForeignKey("ledger_periods.period"), primary_key=True),
    Column("account_id", String(80), ForeignKey("ledger_accounts.account_id"), primary_key=True),
    Column("leg", String(16), primary_key=True),
    Column("debits_fen", BigInteger, nullable=False),
    Column("credits_fen", BigInteger, nullable=False),
    CheckConstraint(_one_of("leg", LEGS), name="leg"),
    CheckConstraint("debits_fen >= 0 AND credits_fen >= 0", name="non_negative"),
)

prepayments = Table(
    "ledger_prepayments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("province", String(6), nullable=False, index=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("note", String(200)),
    _now(),
    CheckConstraint(_province("province"), name="province"),
    CheckConstraint("amount_fen > 0", name="amount_positive"),
)

config = Table(
    "ledger_config",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("alert_share_bp", Integer, nullable=False),
    CheckConstraint("id = 1", name="single_row"),
    CheckConstraint("alert_share_bp BETWEEN 1 AND 10000", name="alert_share"),
)

alerts = Table(
    "ledger_alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("province", String(6), nullable=False),
    Column("result_key", String(70), ForeignKey("ledger_results.result_key"), nullable=False),
    Column("net_debit_fen", BigInteger, nullable=False),
    Column("prepayment_fen", BigInteger, nullable=False),
    Column("alert_share_bp", Integer, nullable=False),
    Column("open_periods", Text, nullable=False),
    _now(),
    # One result raises at most one alert per province, so a replay never repeats one.
    UniqueConstraint("result_key", "province"),
    CheckConstraint(_province("province"), name="province"),
    CheckConstraint("net_debit_fen > 0 AND prepayment_fen >= 0", name="amounts"),
    CheckConstraint("net_debit_fen * 10000 > alert_share_bp * prepayment_fen", name="passes_share"),
)

# "No prepayment on record" (clearing.ledger.prepayment): at most one per province, period and
# kind, the key itself refusing a second.
NOTICE_KINDS = ("no_prepayment",)
notices = Table(
    "ledger_notices",
    metadata,
    Column("province", String(6), primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("result_key", String(70), ForeignKey("ledger_results.result_key"), nullable=False),
    Column("net_debit_fen", BigInteger, nullable=False),
    _now(),
    CheckConstraint(_province("province"), name="province"),
    CheckConstraint(_period("period"), name="period_format"),
    CheckConstraint(_one_of("kind", NOTICE_KINDS), name="kind"),
    CheckConstraint("net_debit_fen > 0", name="net_debit"),
)

reconciliations = Table(
    "ledger_reconciliations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("period", String(7), ForeignKey("ledger_periods.period"), nullable=False),
    Column("province", String(6), nullable=False),
    Column("action", String(8), nullable=False),
    Column("statement_sha256", String(64), nullable=False),
    Column("payer", String(6)),
    Column("payee", String(6)),
    Column("digest", String(64)),
    Column("fund_pay_fen", BigInteger),
    Column("lines_given", Integer),
    Column("answer", Text, nullable=False),
    _now(),
    CheckConstraint(_province("province"), name="province"),
    CheckConstraint(
        "(action = 'confirm' AND payer IS NULL AND payee IS NULL AND digest IS NULL"
        " AND fund_pay_fen IS NULL AND lines_given IS NULL)"
        " OR (action = 'dispute' AND payer IS NOT NULL AND payee IS NOT NULL"
        " AND digest IS NOT NULL AND fund_pay_fen IS NOT NULL"
        " AND (province = payer OR province = payee))",
        name="action",
    ),
    Index(None, "period", "province"),
)


# ---------------------------------------------------------------------------------------------
# One key per settlement or reversal id: the API's claim, the stream's take, the ledger's result

ids = Table(
    "ids",
    metadata,
    Column("key", String(70), primary_key=True),
    Column("content_hash", String(64)),
    Column("source", String(300), ForeignKey("stream_results.source"), unique=True),
    Column("hospital_id", String(64)),
    Column("claimed_ms", BigInteger),
    Column("claim_hash", String(64)),
    Column("claim_source", String(300)),
    CheckConstraint(
        "substr(\"key\", 1, 2) IN ('S:', 'R:') AND length(\"key\") BETWEEN 3 AND 66", name="key"
    ),
    CheckConstraint(
        "(content_hash IS NULL AND source IS NULL)"
        " OR (content_hash IS NOT NULL AND source IS NOT NULL AND length(content_hash) = 64)",
        name="taken",
    ),
    CheckConstraint(
        "(hospital_id IS NULL AND claimed_ms IS NULL AND claim_hash IS NULL"
        " AND claim_source IS NULL)"
        " OR (hospital_id IS NOT NULL AND claimed_ms IS NOT NULL AND claim_hash IS NOT NULL"
        " AND length(claim_hash) = 64)",
        name="claim",
    ),
)

# ---------------------------------------------------------------------------------------------
# The stream's pricing state

stream_results = Table(
    "stream_results",
    metadata,
    Column("source", String(300), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("message", LargeBinary, nullable=False),
    CheckConstraint(_one_of("status", RESULT_STATUSES), name="status"),
)

stream_filings = Table(
    "stream_filings",
    metadata,
    Column("source", String(300), ForeignKey("stream_results.source"), primary_key=True),
    Column("person_id", String(64), nullable=False, index=True),
    Column("filing", LargeBinary, nullable=False),
)

stream_accumulators = Table(
    "stream_accumulators",
    metadata,
    Column("person_id", String(64), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("fund_paid", BigInteger, nullable=False),
    Column("deductible_used", BigInteger, nullable=False),
    CheckConstraint(_one_of("kind", ACCUMULATOR_KINDS), name="kind"),
    CheckConstraint("fund_paid >= 0 AND deductible_used >= 0", name="non_negative"),
)

# What the fund-safety monitor reads of a priced settlement besides its result
# (`monitoring.Seen`): written while monitoring is on, all of them or none. A person's events are
# in one partition, so `source_offset` is their processing order; the rules' history of a person
# is its rows with these set and not `reversed`.
MONITOR_COLUMNS = ("source_offset", "admitted_on", "discharged", "diagnosis", "items")
MONITORED = " OR ".join(
    "(" + " AND ".join(f"{c} IS {test}" for c in MONITOR_COLUMNS) + ")"
    for test in ("NULL", "NOT NULL")
)

stream_priced = Table(
    "stream_priced",
    metadata,
    Column("settlement_id", String(64), primary_key=True),
    Column("person_id", String(64), nullable=False),
    Column("year", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("result", LargeBinary, nullable=False),
    Column("reversed", Boolean, nullable=False),
    # The `isp` the settlement added to its person-year's counted burden (tiers.md).
    Column("counted_fen", BigInteger, nullable=False, server_default="0"),
    Column("source_offset", BigInteger),
    Column("admitted_on", Date),
    Column("discharged", Date),  # the date of settled_at in UTC+08:00
    Column("diagnosis", String(64)),  # the first code
    Column("items", LargeBinary),  # `monitoring.Items.blob`
    CheckConstraint(_one_of("kind", ACCUMULATOR_KINDS), name="kind"),
    CheckConstraint(MONITORED, name="monitored"),
)
# The rules' histories by person: only the rows the monitor remembered are indexed, so the
# stream pays nothing for it while monitoring is off.
Index(
    "ix_stream_priced_person_id",
    stream_priced.c.person_id,
    sqlite_where=stream_priced.c["items"].is_not(None),
    postgresql_where=stream_priced.c["items"].is_not(None),
)

stream_assistance = Table(
    "stream_assistance",
    metadata,
    Column("source", String(300), ForeignKey("stream_results.source"), primary_key=True),
    Column("person_id", String(64), nullable=False, index=True),
    Column("record", LargeBinary, nullable=False),
)

stream_tier_accumulators = Table(
    "stream_tier_accumulators",
    metadata,
    Column("person_id", String(64), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("burden", BigInteger, nullable=False),
    Column("critical_paid", BigInteger, nullable=False),
    Column("assistance_paid", BigInteger, nullable=False),
    CheckConstraint(
        "burden >= 0 AND critical_paid >= 0 AND assistance_paid >= 0", name="non_negative"
    ),
)

# ---------------------------------------------------------------------------------------------
# Who may call: hospitals (the submission API), operators and viewers (the dashboard)

credentials = Table(
    "credentials",
    metadata,
    Column("kind", String(8), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # A hospital's province (authority.md); NULL for every other kind, or a hospital added
    # without one.
    Column("province", String(6)),
    CheckConstraint(_one_of("kind", PRINCIPAL_KINDS), name="kind"),
    CheckConstraint("length(id) BETWEEN 1 AND 64", name="id_length"),
    CheckConstraint("length(token_hash) = 64", name="token_hash"),
)

# ---------------------------------------------------------------------------------------------
# The dashboard's log of operator actions

operator_actions = Table(
    "dashboard_operator_actions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("operator", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("period", String(7), nullable=False),
    Column("outcome", String(500), nullable=False),
    CheckConstraint(_one_of("action", OPERATOR_ACTIONS), name="action"),
    CheckConstraint(_period("period"), name="period_format"),
)

# ---------------------------------------------------------------------------------------------
# Fund-safety monitoring (clearing.core.monitoring): the stream's monitor state and its flags

FLAG_RULES = (
    "OVERLAPPING_STAYS",
    "OUTPATIENT_DURING_STAY",
    "QUICK_READMISSION",
    "DUPLICATE_BILLING",
    "HIGH_REVERSAL_RATE",
)
REVIEW_STATUSES = ("confirmed", "dismissed")

# Priced settlements and reversals per (period, hospital), split by payer and payee so that
# concurrent batches only ever add to a row (rule 5 sums a hospital's rows when its period closes).
monitor_counts = Table(
    "monitor_counts",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("hospital_id", String(64), primary_key=True),
    Column("payer", String(6), primary_key=True),
    Column("payee", String(6), primary_key=True),
    Column("settlements", BigInteger, nullable=False),
    Column("reversals", BigInteger, nullable=False),
    CheckConstraint(_period("period"), name="period_format"),
    CheckConstraint("settlements >= 0 AND reversals >= 0", name="non_negative"),
)

# Every flag raised, once: `source` is the position of the event that raised it (its result is
# in `stream_results`), or `close:<period>` for a period's close; `position` orders a source's
# flags as raised.
flags = Table(
    "flags",
    metadata,
    Column("flag_id", String(200), primary_key=True),
    Column("rule", String(32), nullable=False),
    Column("period", String(7), nullable=False, index=True),
    Column("flag", LargeBinary, nullable=False),
    Column("source", String(300), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    _now(),
    CheckConstraint(_one_of("rule", FLAG_RULES), name="rule"),
    CheckConstraint(_period("period"), name="period_format"),
)

# An operator's review of a flag; the newest is the flag's state.
flag_reviews = Table(
    "flag_reviews",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("flag_id", String(200), ForeignKey("flags.flag_id"), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("note", Text, nullable=False),
    Column("operator", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    CheckConstraint(_one_of("status", REVIEW_STATUSES), name="status"),
)
