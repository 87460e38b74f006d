"""Writing a bundle: the refdata, `events.jsonl` and, when asked, `intents.jsonl`."""

from __future__ import annotations

import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from clearing.core.periods import parse_period
from clearing.ops.simulate.clock import make_span
from clearing.ops.simulate.jsonline import dump
from clearing.ops.simulate.outcomes import Intent
from clearing.ops.simulate.refdata import make_refdata, ref_index, write_refdata
from clearing.ops.simulate.stream import Mix, Simulator


@dataclass
class BundleSummary:
    """What a bundle holds, by intended outcome: lines by status, rejected lines by their
    reasons (joined with `+`), invalid lines by fault, priced settlements by kind."""

    out_dir: Path
    events: int
    seed: int
    period: str | None
    year: int
    policies: int
    catalogs: int
    persons: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    rejections: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    priced_kinds: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def line(self) -> str:
        statuses = " ".join(f"{k}={v}" for k, v in sorted(self.statuses.items()))
        rate = self.events / self.seconds if self.seconds else 0.0
        span = self.period or str(self.year)
        return (
            f"simulate: {self.events} events ({statuses}) over {span}, {self.persons} persons, "
            f"{self.policies} policies, {self.catalogs} catalogs in {self.out_dir} "
            f"[{self.seconds:.1f}s, {rate:,.0f} events/s]"
        )


@dataclass
class Tally:
    """The counts of a `BundleSummary`, kept as the lines are written."""

    statuses: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)
    priced_kinds: Counter[str] = field(default_factory=Counter)

    def count(self, intent: Intent) -> None:
        self.statuses[intent.status] += 1
        if intent.reasons:
            self.rejections["+".join(intent.reasons)] += 1
        if intent.invalid:
            self.invalid[intent.invalid] += 1
        if intent.kind and intent.status == "priced":
            self.priced_kinds[intent.kind] += 1

    def fill(self, summary: BundleSummary) -> None:
        summary.statuses = dict(sorted(self.statuses.items()))
        summary.rejections = dict(sorted(self.rejections.items()))
        summary.invalid = dict(sorted(self.invalid.items()))
        summary.priced_kinds = dict(sorted(self.priced_kinds.items()))


def generate_bundle(
    out_dir: Path,
    events: int,
    seed: int,
    period: str | None = None,
    year: int = 2026,
    intents: bool = False,
    mix: Mix | None = None,
) -> BundleSummary:
    """Write a bundle (refdata and `events.jsonl`, plus `intents.jsonl` when asked) to `out_dir`.

    With `period` (YYYY-MM) every settled_at falls in that China-time month and the refdata is
    for its year; otherwise events spread over `year`, with a few late submissions from the
    December before it.
    """
    started = time.perf_counter()
    if period is not None:
        year = parse_period(period)[0]
    out_dir = Path(out_dir)
    policies, catalogs, pool = make_refdata(seed, year)
    write_refdata(out_dir, policies, catalogs)
    simulator = Simulator(
        seed,
        events,
        make_span(period, year),
        ref_index(policies, catalogs),
        pool,
        mix or Mix(),
        include_last_year=period is None,
    )
    summary = BundleSummary(out_dir, events, seed, period, year, len(policies), len(catalogs))
    tally = Tally()
    intents_path = out_dir / "intents.jsonl"
    with (
        open_text(out_dir / "events.jsonl") as out,
        open_text(intents_path) if intents else nullcontext() as intent_out,
    ):
        for number, (line, intent) in enumerate(simulator.lines(), start=1):
            out.write(line + "\n")
            tally.count(intent)
            if intent_out is not None:
                intent_out.write(dump(intent.record(number)) + "\n")
    if not intents and intents_path.exists():
        intents_path.unlink()
    summary.persons = simulator.persons_made
    tally.fill(summary)
    summary.seconds = time.perf_counter() - started
    return summary


def open_text(path: Path) -> TextIO:
    """A UTF-8 file written with `\n` line ends only, in large blocks."""
    return open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20)
