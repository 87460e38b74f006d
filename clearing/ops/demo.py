"""`python -m clearing.ops.demo` (`make demo`): one generated national month through the broker.

Generates a bundle with `clearing.ops.simulate`, runs it end to end with `clearing run` (publish,
workers, ledger, period close and issue) and prints what the month's statement says.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

from clearing.core.errors import ClearingError
from clearing.core.money import yuan
from clearing.core.provinces import english as name

DASHBOARD = "http://127.0.0.1:{port}/"


def describe(statement: dict, top: int = 10) -> list[str]:
    """A readable summary of one statement."""
    obligations = statement["obligations"]
    settlements = sum(o["settlements"] for o in obligations)
    reversals = sum(o["reversals"] for o in obligations)
    total = sum(o["total_fen"] for o in obligations)
    fund = sum(o["fund_pay_fen"] for o in obligations)
    personal = sum(o["personal_pay_fen"] for o in obligations)
    lines = [
        f"Statement {statement['period']}: {settlements:,} settlements, {reversals:,} reversals, "
        f"{len(obligations):,} province pairs",
        f"  medical costs        {yuan(total):>22} yuan",
        f"  paid by the funds    {yuan(fund):>22} yuan",
        f"  paid by the patients {yuan(personal):>22} yuan",
        "",
        f"Top {top} province pairs by fund payment (home province owes treating province):",
    ]
    ranked = sorted(obligations, key=lambda o: (-o["fund_pay_fen"], o["payer"], o["payee"]))
    for o in ranked[:top]:
        lines.append(
            f"  {name(o['payer']):>26} -> {name(o['payee']):<26} {yuan(o['fund_pay_fen']):>18} yuan"
            f"  ({o['settlements']:,} settlements)"
        )
    positions = sorted(statement["net_positions"].items(), key=lambda kv: (-kv[1], kv[0]))
    lines += ["", "Net positions (positive: receives; negative: pays):"]
    for province, amount in positions:
        lines.append(f"  {name(province):>26} {yuan(amount):>20} yuan")
    gross = sum(o["fund_pay_fen"] for o in obligations if o["fund_pay_fen"] > 0)
    moved = sum(t["amount_fen"] for t in statement["transfers"])
    lines += [
        "",
        f"Settled by {len(statement['transfers'])} transfers moving {yuan(moved)} yuan "
        f"instead of {len(obligations):,} gross payments of {yuan(gross)} yuan.",
    ]
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
    if args.serve is None:
        args.serve = sys.stdin.isatty() and sys.stdout.isatty()

    from clearing.ops.run import RunConfig, run
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
        summary = run(config)
    except (ClearingError, OSError) as exc:
        print(f"demo: failed: {exc}", file=sys.stderr)
        return 1
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
    dashboard = DASHBOARD.format(port=summary.web_port or args.web_port)
    if args.serve:
        print(f"demo: dashboard at {dashboard} (metrics at {dashboard}metrics); Ctrl-C stops")
        try:
            while any(w.alive() for w in summary.workers):
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            for worker in summary.workers:
                worker.stop()
    else:
        print(
            "demo: workers stopped; `python -m clearing.ops.demo --serve` keeps the dashboard "
            f"up at {dashboard}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
