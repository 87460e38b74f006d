"""The ledger's commands: `db`, `period`, `statement`, `reconcile`, `prepayment`, `ledger-load`.

Every command takes `--db URL` (default: CLEARING_DB_URL, else ${CLEARING_HOME}/ledger.sqlite)
and opens the ledger, which first migrates its schema to the newest revision. `period close` and
`period issue` go through `clearing.ledger.cycle`, as the dashboard and `clearing run` do; `period
issue` publishes a newly issued statement when a broker is configured (`--bootstrap`, else
KAFKA_BOOTSTRAP) and says on stderr that it did not when none is.

Exit status: 0 done, including no-ops such as closing a closed period; 1 refused by the ledger
(a period's state, a conflicting result, totals that disagree, an unreachable database); 2 bad
arguments or input.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from datetime import date
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from clearing.core.jsonish import JSONMapping, JSONObject
from clearing.core.money import yuan
from clearing.core.netting import Statement
from clearing.ledger import cycle, prepayment, reconcile
from clearing.ledger.errors import LedgerError, LedgerInputError
from clearing.ledger.periods import PeriodInfo
from clearing.ledger.store import Ledger
from clearing.ops.offline import open_input, period_arg, read_results
from clearing.store import db
from clearing.topics import Topics

Handler = Callable[[argparse.Namespace], int]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        metavar="URL",
        help="ledger database (default: CLEARING_DB_URL, else $CLEARING_HOME/ledger.sqlite)",
    )

    dbs = _group(subparsers, "db", "the ledger's database schema")
    cmd = dbs.add_parser("upgrade", parents=[common], help="run the migrations (default: head)")
    cmd.add_argument("--revision", default="head")
    cmd.set_defaults(func=_run_db_upgrade)
    cmd = dbs.add_parser("current", parents=[common], help="print the schema revision")
    cmd.set_defaults(func=_run_db_current)

    per = _group(subparsers, "period", "clearing periods: open -> closed -> issued")
    cmd = per.add_parser("close", parents=[common], help="close a period (no-op when closed)")
    cmd.add_argument("period", type=period_arg, metavar="YYYY-MM")
    cmd.add_argument("--force", action="store_true", help="close before the month has ended")
    cmd.set_defaults(func=_run_close)
    cmd = per.add_parser(
        "issue", parents=[common], help="issue a closed period's statement and publish it"
    )
    cmd.add_argument("period", type=period_arg, metavar="YYYY-MM")
    cmd.add_argument("--bootstrap", help="broker to publish to (default: KAFKA_BOOTSTRAP)")
    cmd.add_argument("--prefix", help="topic prefix (default: CLEARING_TOPIC_PREFIX)")
    cmd.add_argument(
        "--republish", action="store_true", help="publish a statement issued before again"
    )
    cmd.set_defaults(func=_run_issue)
    cmd = per.add_parser("status", parents=[common], help="list periods")
    cmd.add_argument("period", type=period_arg, metavar="YYYY-MM", nargs="?")
    _format(cmd, "table")
    cmd.set_defaults(func=_run_status)

    cmd = subparsers.add_parser(
        "statement", parents=[common], help="print a period's issued statement"
    )
    cmd.add_argument("--period", type=period_arg, required=True, metavar="YYYY-MM")
    _format(cmd, "json")
    cmd.set_defaults(func=_run_statement)

    rec = _group(subparsers, "reconcile", "confirm or dispute statements; daily hospital totals")
    cmd = rec.add_parser("confirm", parents=[common], help="a province confirms a statement")
    cmd.add_argument("--period", type=period_arg, required=True, metavar="YYYY-MM")
    cmd.add_argument("--province", required=True)
    cmd.set_defaults(func=_run_confirm)
    cmd = rec.add_parser("dispute", parents=[common], help="a province disputes an obligation")
    cmd.add_argument("--period", type=period_arg, required=True, metavar="YYYY-MM")
    cmd.add_argument("--province", required=True, help="the disputing province")
    cmd.add_argument("--payer", required=True)
    cmd.add_argument("--payee", required=True)
    cmd.add_argument("--digest", required=True, help="the province's digest of the obligation")
    amount = cmd.add_mutually_exclusive_group(required=True)
    amount.add_argument(
        "--due-fen", type=int, help="the province's total due (fund + serious illness + assistance)"
    )
    amount.add_argument(
        "--fund-pay-fen", type=int, help="the same, by its name before the tiers (older scripts)"
    )
    cmd.add_argument("--lines", metavar="FILE", help="the province's digest lines, one per row")
    cmd.set_defaults(func=_run_dispute)
    cmd = rec.add_parser("hospitals", parents=[common], help="per-hospital day totals")
    cmd.add_argument("--day", type=date.fromisoformat, required=True, metavar="YYYY-MM-DD")
    cmd.add_argument("--province", help="only hospitals of this province")
    _format(cmd, "json")
    cmd.set_defaults(func=_run_hospitals)

    pre = _group(subparsers, "prepayment", "provinces' prepayments (预付金) and their alerts")
    cmd = pre.add_parser("deposit", parents=[common], help="record a deposit")
    cmd.add_argument("--province", required=True)
    cmd.add_argument("--amount-fen", type=int, required=True)
    cmd.add_argument("--note")
    cmd.set_defaults(func=_run_deposit)
    cmd = pre.add_parser("show", parents=[common], help="balances and usage")
    _format(cmd, "table")
    cmd.set_defaults(func=_run_show)
    cmd = pre.add_parser("alert-share", parents=[common], help="show or set the alert share")
    cmd.add_argument("--bp", type=int, help="new share in basis points (7000 = 70 %%)")
    cmd.set_defaults(func=_run_alert_share)
    cmd = pre.add_parser("alerts", parents=[common], help="the latest alerts, newest first")
    cmd.add_argument("--limit", type=int, default=50)
    cmd.set_defaults(func=_run_alerts)

    cmd = subparsers.add_parser(
        "ledger-load",
        aliases=["import-results"],
        parents=[common],
        help="record a results file (output of `clearing price`) in the ledger",
    )
    cmd.add_argument("--results", required=True, metavar="FILE", help="JSON Lines; - for stdin")
    cmd.add_argument("--batch-size", type=int, default=1000)
    cmd.set_defaults(func=_run_load)


def _format(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--format", choices=("json", "table"), default=default)


def _group(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    parser = subparsers.add_parser(name, help=help_)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")


def _command(func: Callable[[argparse.Namespace, Ledger], int]) -> Handler:
    """Opens the ledger for one command and turns refusals into messages and exit statuses."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        name = f"clearing {args.command}"
        try:
            with Ledger(args.db) as ledger:
                return func(args, ledger)
        except LedgerInputError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 2
        except LedgerError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 1
        except OperationalError as exc:
            url = db.safe_url(db.normalize_url(args.db or db.default_url()))
            print(f"{name}: the ledger database at {url} failed: {exc.orig}", file=sys.stderr)
            return 1
        except (OSError, ValueError) as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 2

    return run


def _print_json(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1) -> str:
    """Plain text table; the first `left` columns align left, the others right."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in cells
    ]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


@_command
def _run_db_upgrade(args: argparse.Namespace, ledger: Ledger) -> int:
    reached = db.upgrade(ledger.engine, args.revision)
    print(f"{db.safe_url(ledger.url)}: schema at revision {reached}")
    return 0


def _run_db_current(args: argparse.Namespace) -> int:
    url = db.normalize_url(args.db or db.default_url())
    engine = db.make_engine(url)
    try:
        current = db.current_revision(engine)
    except OperationalError as exc:
        print(f"clearing db: {db.safe_url(url)} failed: {exc.orig}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    head = db.head_revision()
    note = "up to date" if current == head else f"head is {head}: run `clearing db upgrade`"
    print(f"{db.safe_url(url)}: schema at revision {current or 'none'} ({note})")
    return 0


@_command
def _run_close(args: argparse.Namespace, ledger: Ledger) -> int:
    print(cycle.close(ledger, args.period, force=args.force).message)
    return 0


@_command
def _run_issue(args: argparse.Namespace, ledger: Ledger) -> int:
    bootstrap = args.bootstrap or os.environ.get("KAFKA_BOOTSTRAP")
    with ExitStack() as stack:
        publisher = None
        if bootstrap:
            topics = Topics(args.prefix) if args.prefix else Topics.from_env()
            try:
                publisher = stack.enter_context(cycle.kafka_publisher(bootstrap, topics))
            except Exception as exc:  # the broker's many errors: nothing was issued yet
                print(
                    f"clearing period: the broker at {bootstrap} failed ({type(exc).__name__}: "
                    f"{exc}); nothing was issued",
                    file=sys.stderr,
                )
                return 1
        step = cycle.issue(ledger, args.period, publisher, republish=args.republish)
    notes = [step.message]
    if publisher is None:
        notes.append("not published: no broker configured (KAFKA_BOOTSTRAP or --bootstrap)")
    elif step.published is None:
        notes.append("not published again (--republish publishes it again)")
    print("\n".join(notes), file=sys.stderr)
    _print_json(step.statement)
    return 0


def _when(moment: Any) -> str:
    return moment.isoformat(sep=" ", timespec="seconds") if moment else ""


@_command
def _run_status(args: argparse.Namespace, ledger: Ledger) -> int:
    infos: list[PeriodInfo] = ledger.period_status(args.period)
    if args.format == "json":
        _print_json(
            [
                {
                    "period": i.period,
                    "state": i.state,
                    "results": i.results,
                    "late_results": i.late_results,
                    "closed_at": _when(i.closed_at) or None,
                    "issued_at": _when(i.issued_at) or None,
                    "statement_sha256": i.statement_sha256,
                }
                for i in infos
            ]
        )
        return 0
    if not infos:
        print("no periods yet")
        return 0
    print(
        table(
            ("period", "state", "results", "late", "closed at", "issued at", "statement sha256"),
            (
                (
                    i.period,
                    i.state,
                    i.results,
                    i.late_results,
                    _when(i.closed_at),
                    _when(i.issued_at),
                    i.statement_sha256 or "",
                )
                for i in infos
            ),
            left=2,
        )
    )
    return 0


@_command
def _run_statement(args: argparse.Namespace, ledger: Ledger) -> int:
    issued = ledger.statement(args.period)
    if args.format == "json":
        _print_json(issued.statement)
    else:
        print(statement_table(issued.statement, issued.sha256))
    return 0


PAYER_COLUMNS = ("basic fund", "serious illness", "medical assistance", "total due")


def payer_sums(ob: JSONMapping) -> tuple[int, int, int, int]:
    """An obligation's (basic fund, serious-illness insurance, medical assistance, due) in fen;
    without tier fields (a statement of before the tiers) the due is the fund pay."""
    fund = int(ob["fund_pay_fen"])
    critical = int(ob.get("critical_pay_fen", 0))
    assistance = int(ob.get("assistance_pay_fen", 0))
    return fund, critical, assistance, int(ob.get("due_fen", fund + critical + assistance))


def payer_split(
    obligations: Sequence[JSONMapping],
) -> list[tuple[str, str, str, tuple[int, int, int, int]]]:
    """The split by payer of a statement's obligations: national, per pair, per payer province."""

    def total(obs: Iterable[JSONMapping]) -> tuple[int, int, int, int]:
        sums = [0, 0, 0, 0]
        for ob in obs:
            for i, fen in enumerate(payer_sums(ob)):
                sums[i] += fen
        return sums[0], sums[1], sums[2], sums[3]

    rows: list[tuple[str, str, str, tuple[int, int, int, int]]] = [
        ("national", "", "", total(obligations))
    ]
    pairs = sorted(obligations, key=lambda ob: (ob["payer"], ob["payee"]))
    rows += [("pair", ob["payer"], ob["payee"], payer_sums(ob)) for ob in pairs]
    for payer in sorted({ob["payer"] for ob in obligations}):
        own = [ob for ob in obligations if ob["payer"] == payer]
        rows.append(("province", payer, "", total(own)))
    return rows


def statement_table(statement: Statement, sha256: str) -> str:
    """The statement for people: amounts in yuan."""
    obligations = statement["obligations"]
    parts = [
        f"Statement {statement['period']} (sha256 {sha256})",
        "",
        f"Obligations: {len(obligations)}",
        table(
            ("payer", "payee", "settlements", "reversals", "total", "fund pay", "personal pay"),
            (
                (
                    ob["payer"],
                    ob["payee"],
                    ob["settlements"],
                    ob["reversals"],
                    yuan(ob["total_fen"]),
                    yuan(ob["fund_pay_fen"]),
                    yuan(ob["personal_pay_fen"]),
                )
                for ob in obligations
            ),
            left=2,
        ),
        "",
        "Due by home-side payer, yuan (payer side)",
        table(
            ("", "payer", "payee", *PAYER_COLUMNS),
            (
                (scope, payer, payee, *(yuan(fen) for fen in sums))
                for scope, payer, payee, sums in payer_split(obligations)
            ),
            left=3,
        ),
        "",
        "Net positions (+ receives, - pays), yuan",
        table(
            ("province", "position"), ((p, yuan(v)) for p, v in statement["net_positions"].items())
        ),
        "",
        f"Transfers: {len(statement['transfers'])}",
        table(
            ("from", "to", "amount"),
            ((t["from"], t["to"], yuan(t["amount_fen"])) for t in statement["transfers"]),
            left=2,
        ),
    ]
    return "\n".join(parts)


@_command
def _run_confirm(args: argparse.Namespace, ledger: Ledger) -> int:
    _print_json(ledger.run(lambda conn: reconcile.confirm(conn, args.period, args.province)))
    return 0


@_command
def _run_dispute(args: argparse.Namespace, ledger: Ledger) -> int:
    lines = None
    if args.lines:
        with open(args.lines, encoding="utf-8") as handle:
            lines = reconcile.parse_lines(handle.read())
    answer = ledger.run(
        lambda conn: reconcile.dispute(
            conn,
            args.period,
            args.province,
            args.payer,
            args.payee,
            args.digest,
            args.due_fen if args.due_fen is not None else args.fund_pay_fen,
            lines,
        )
    )
    _print_json(answer)
    return 0


@_command
def _run_hospitals(args: argparse.Namespace, ledger: Ledger) -> int:
    rows = ledger.run(lambda conn: reconcile.hospital_totals(conn, args.day, args.province))
    if args.format == "json":
        for row in rows:
            sys.stdout.buffer.write(orjson.dumps(row) + b"\n")
        return 0
    print(
        table(
            ("province", "hospital", "count", "total", "fund pay", "personal pay"),
            (
                (
                    r["province"],
                    r["hospital_id"],
                    r["count"],
                    yuan(r["total_fen"]),
                    yuan(r["fund_pay_fen"]),
                    yuan(r["personal_pay_fen"]),
                )
                for r in rows
            ),
            left=2,
        )
    )
    return 0


@_command
def _run_deposit(args: argparse.Namespace, ledger: Ledger) -> int:
    balance = ledger.run(
        lambda conn: prepayment.deposit(conn, args.province, args.amount_fen, args.note)
    )
    print(f"{args.province}: prepayment {yuan(balance)} yuan ({balance} fen)")
    return 0


def _prepayment_text(row: dict[str, Any]) -> str:
    if not row["prepayment_on_record"]:
        return prepayment.NO_PREPAYMENT
    text = yuan(row["prepayment_fen"])
    return f"{text} (derived)" if row["prepayment_derived"] else text


@_command
def _run_show(args: argparse.Namespace, ledger: Ledger) -> int:
    rows = ledger.run(prepayment.usage)
    if args.format == "json":
        _print_json(rows)
        return 0
    share = ledger.run(prepayment.alert_share)
    print(f"Alert share: {share / 100:.2f} % of the prepayment; positions over open periods")
    print(
        table(
            ("province", "prepayment", "net position", "net debit", "usage", "alert", "top-up"),
            (
                (
                    r["province"],
                    _prepayment_text(r),
                    yuan(r["net_position_fen"]),
                    yuan(r["net_debit_fen"]),
                    "-" if r["usage_bp"] is None else f"{r['usage_bp'] / 100:.2f} %",
                    "ALERT" if r["over"] else "",
                    yuan(r["top_up_fen"]) if r["over"] and r["top_up_fen"] else "",
                )
                for r in rows
            ),
        )
    )
    return 0


@_command
def _run_alert_share(args: argparse.Namespace, ledger: Ledger) -> int:
    if args.bp is not None:
        ledger.run(lambda conn: prepayment.set_alert_share(conn, args.bp))
    share = ledger.run(prepayment.alert_share)
    print(f"alert share: {share} bp ({share / 100:.2f} %)")
    return 0


@_command
def _run_alerts(args: argparse.Namespace, ledger: Ledger) -> int:
    """The latest alerts and "no prepayment on record" notices (`"type": "prepayment_notice"`),
    latest first, at most `--limit` in all."""

    def latest(conn: Connection) -> list[dict[str, Any]]:
        alerts = prepayment.recent_alerts(conn, args.limit)
        notices = [
            {"type": "prepayment_notice", **n} for n in prepayment.recent_notices(conn, args.limit)
        ]
        both = sorted(alerts + notices, key=lambda a: a["raised_at"] or "", reverse=True)
        return both[: args.limit]

    for alert in ledger.run(latest):
        sys.stdout.buffer.write(orjson.dumps(alert) + b"\n")
    return 0


@_command
def _run_load(args: argparse.Namespace, ledger: Ledger) -> int:
    if args.batch_size < 1:
        raise LedgerInputError("--batch-size must be at least 1")
    counts = {"results": 0, "recorded": 0, "replayed": 0, "ignored": 0, "late": 0, "alerts": 0}
    batch: list[JSONObject] = []

    def flush() -> None:
        for outcome in ledger.record_results(batch):
            counts["results"] += 1
            counts[outcome.action] += 1
            counts["late"] += outcome.late and outcome.action == "recorded"
            counts["alerts"] += len(outcome.alerts)
        batch.clear()

    with open_input(args.results) as handle:
        for result in read_results(handle):
            batch.append(result)
            if len(batch) >= args.batch_size:
                flush()
        flush()
    _print_json(counts)
    return 0
