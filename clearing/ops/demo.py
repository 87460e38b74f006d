"""`python -m clearing.ops.demo` (`make demo`): one generated national month through the broker.

Generates a bundle with `clearing.ops.simulate`, runs it end to end with `clearing run` (publish,
workers, ledger, period close and issue) and prints what the month's statement says, and the
fund-safety monitoring flags of the bundle by rule, worked out offline (`clearing flags`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from clearing import auth
from clearing.config import private_state
from clearing.core.errors import ClearingError
from clearing.core.models.flags import (
    DuplicateBilling,
    HighReversalRate,
    OutpatientDuringStay,
    OverlappingStays,
    QuickReadmission,
)
from clearing.core.money import yuan
from clearing.core.monitoring import Monitor
from clearing.core.netting import due_of
from clearing.core.pricer import Pricer
from clearing.core.provinces import english as name
from clearing.ops.bundle import event_lines, load_refdata
from clearing.ops.flags import flag_lines
from clearing.ops.run import RunConfig, RunSummary, run
from clearing.ops.workers import Stopped, stop_workers, stopping_on_signals
from clearing.store.db import open_engine

DASHBOARD = "http://127.0.0.1:{port}/"
VIEWER = "demo"  # the viewer whose token signs in to the served dashboard and reads /metrics

Obligation = Mapping[str, Any]  # one obligation of a statement, as its JSON reads


@dataclass(frozen=True, slots=True)
class PayerSplit:
    """What the home provinces owe, by payer, in fen: the basic fund, serious-illness
    insurance, medical assistance, and the total due (their sum)."""

    fund_pay_fen: int
    critical_pay_fen: int
    assistance_pay_fen: int
    due_fen: int

    @classmethod
    def of(cls, obligations: Iterable[Obligation]) -> PayerSplit:
        """Summed over the obligations; without tiers (`tiers.md`) a statement has no tier
        fields: the two tiers are 0 and the due is the fund pay."""
        fund = critical = assistance = due = 0
        for o in obligations:
            fund += int(o["fund_pay_fen"])
            critical += int(o.get("critical_pay_fen", 0))
            assistance += int(o.get("assistance_pay_fen", 0))
            due += int(due_of(o))
        return cls(fund, critical, assistance, due)


def amount_row(label: str, fen: int, indent: int = 2) -> str:
    """`label` and the amount in yuan, the amounts of all rows aligned."""
    return f"{' ' * indent}{label:<{30 - indent}}{yuan(fen):>22} yuan"


def describe_split(split: PayerSplit) -> list[str]:
    """The national totals by payer, in yuan."""
    return [
        "  owed by the home provinces, by payer:",
        amount_row("basic fund", split.fund_pay_fen, 4),
        amount_row("serious-illness insurance", split.critical_pay_fen, 4),
        amount_row("medical assistance", split.assistance_pay_fen, 4),
        amount_row("total due", split.due_fen, 4),
    ]


def describe(statement: Mapping[str, Any], top: int = 10) -> list[str]:
    """A readable summary of one statement."""
    obligations: list[Obligation] = statement["obligations"]
    settlements = sum(o["settlements"] for o in obligations)
    reversals = sum(o["reversals"] for o in obligations)
    total = sum(o["total_fen"] for o in obligations)
    personal = sum(o["personal_pay_fen"] for o in obligations)
    lines = [
        f"Statement {statement['period']}: {settlements:,} settlements, {reversals:,} reversals, "
        f"{len(obligations):,} province pairs",
        amount_row("medical costs", total),
        amount_row("paid by the patients", personal),
        *describe_split(PayerSplit.of(obligations)),
        "",
        f"Top {top} province pairs by amount due (home province owes treating province):",
    ]
    ranked = sorted(obligations, key=lambda o: (-due_of(o), o["payer"], o["payee"]))
    for o in ranked[:top]:
        lines.append(
            f"  {name(o['payer']):>26} -> {name(o['payee']):<26} {yuan(due_of(o)):>18} yuan"
            f"  ({o['settlements']:,} settlements)"
        )
    positions = sorted(statement["net_positions"].items(), key=lambda kv: (-kv[1], kv[0]))
    lines += ["", "Net positions (positive: receives; negative: pays):"]
    for province, amount in positions:
        lines.append(f"  {name(province):>26} {yuan(amount):>20} yuan")
    gross = sum(due_of(o) for o in obligations if due_of(o) > 0)
    moved = sum(t["amount_fen"] for t in statement["transfers"])
    lines += [
        "",
        f"Settled by {len(statement['transfers'])} transfers moving {yuan(moved)} yuan "
        f"instead of {len(obligations):,} gross payments of {yuan(gross)} yuan.",
    ]
    return lines


# The rules in the order of the monitoring module's docstring.
RULES: tuple[str, ...] = tuple(
    str(model.model_fields["rule"].default)
    for model in (
        OverlappingStays,
        OutpatientDuringStay,
        QuickReadmission,
        DuplicateBilling,
        HighReversalRate,
    )
)


def flag_counts(refdata: Path, events: Path) -> Counter[str]:
    """The bundle's monitoring flags by rule, as `clearing flags` raises them: every event
    priced and shown to the monitor in order, then every period closed."""
    lines = flag_lines(Pricer(load_refdata(refdata)), Monitor(), event_lines(events))
    return Counter(str(orjson.loads(line)["rule"]) for line in lines)


def describe_flags(counts: Mapping[str, int]) -> list[str]:
    """The flags by rule, every rule listed (0 when none), the counts aligned."""
    total = sum(counts.values())
    rules = [*RULES, *sorted(set(counts) - set(RULES))]
    lines = [f"Fund-safety monitoring: {total:,} flags (offline, `clearing flags`)"]
    lines += [f"  {rule:<28}{counts.get(rule, 0):>10,}" for rule in rules]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clearing.ops.demo", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="events to generate")
    parser.add_argument("--seed", type=int, default=2026, help="the bundle's seed")
    parser.add_argument("--period", default="2026-01", help="the month (YYYY-MM)")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    parser.add_argument("--workers", type=int, default=1, help="stream worker processes")
    parser.add_argument("--web-port", type=int, default=6066, help="first worker's web port")
    parser.add_argument(
        "--serve",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the workers and the dashboard up until Ctrl-C "
        "(default: when run from a terminal)",
    )
    args = parser.parse_args(argv)
    private_state()
    if args.serve is None:
        args.serve = sys.stdin.isatty() and sys.stdout.isatty()

    from clearing.ops.simulate.bundle import generate_bundle

    bundle = args.out / "bundle"
    print(f"demo: generating {args.events:,} events for {args.period} (seed {args.seed})")
    generate_bundle(bundle, events=args.events, seed=args.seed, period=args.period)
    config = RunConfig(
        refdata=bundle / "refdata",
        events=bundle / "events.jsonl",
        out=args.out,
        workers=args.workers,
        web_port=args.web_port,
        keep_workers=args.serve,
    )
    try:
        with stopping_on_signals():
            summary = run(config)
            try:
                report(args, bundle, summary)
            finally:
                stop_workers(summary.workers)
    except (ClearingError, OSError) as exc:
        print(f"demo: failed: {exc}", file=sys.stderr)
        return 1
    except (Stopped, KeyboardInterrupt) as exc:
        print(f"demo: {exc or 'interrupted'}; every worker stopped", file=sys.stderr)
        return exc.exit_status if isinstance(exc, Stopped) else 130
    return 0


def viewer_token_file(db_url: str, folder: Path) -> Path:
    """A new viewer token in the run's ledger, written to a file of the user's only (umask 077)
    rather than printed: the dashboard's figures and `/metrics` need one."""
    engine = open_engine(db_url)
    try:
        token = auth.add(engine, "viewer", VIEWER, replace=True)
    finally:
        engine.dispose()
    path = folder / "viewer.token"
    path.unlink(missing_ok=True)  # made anew, so with this process's private mode
    path.write_text(token + "\n", encoding="ascii")
    return path


def report(args: argparse.Namespace, bundle: Path, summary: RunSummary) -> None:
    """Prints the run's statements and flags; with --serve, waits while the workers run (the
    caller stops them, whichever way this ends)."""
    statuses = ", ".join(f"{k} {v:,}" for k, v in summary.statuses.items())
    print(
        f"demo: {summary.events:,} events through the broker in {summary.seconds:.1f}s "
        f"({summary.rate:,.0f} events/s): {statuses}"
    )
    print(f"demo: results and statements in {args.out}/ (topics {summary.prefix}.*)")
    print()
    for period in summary.periods:
        path = args.out / f"statement-{period}.json"
        print("\n".join(describe(orjson.loads(path.read_bytes()))))
        print()
    counts = flag_counts(bundle / "refdata", bundle / "events.jsonl")
    print("\n".join(describe_flags(counts)))
    print()
    dashboard = DASHBOARD.format(port=summary.web_port or args.web_port)
    if args.serve:
        token_file = viewer_token_file(summary.db_url, args.out)
        print(
            f"demo: a viewer's token for the dashboard and /metrics is in {token_file} "
            f'(curl -H "Authorization: Bearer $(cat {token_file})" {dashboard}metrics)'
        )
        print(
            f"demo: dashboard at {dashboard} (metrics at {dashboard}metrics); "
            "Ctrl-C (or SIGTERM) stops",
            flush=True,
        )
        while any(w.alive() for w in summary.workers):
            time.sleep(1)
    else:
        print(
            "demo: workers stopped; `python -m clearing.ops.demo --serve` keeps the dashboard "
            f"up at {dashboard}"
        )


if __name__ == "__main__":
    sys.exit(main())
