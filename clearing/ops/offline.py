"""`clearing price` and `clearing clear`: the offline commands of `contract.md`.

They share the stream's parser, pricing and netting, so a bureau can recompute any month from
the raw event log and compare it with what the stream produced.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import orjson

from clearing.core.jsonish import JSONObject
from clearing.core.models.results import result_json
from clearing.core.netting import build_statement
from clearing.core.periods import is_period
from clearing.core.pricer import Pricer
from clearing.core.refdata import RefDataError
from clearing.ops.bundle import load_refdata


@contextmanager
def open_input(path: str | None) -> Iterator[BinaryIO]:
    if path is None or path == "-":
        yield sys.stdin.buffer
    else:
        with open(path, "rb") as handle:
            yield handle


def lines_of(handle: BinaryIO, label: str) -> Iterator[bytes]:
    """The input's lines without their newline, streamed; a progress bar when on a terminal."""
    lines: Iterable[bytes] = handle
    if sys.stderr.isatty():
        from tqdm import tqdm

        lines = tqdm(handle, desc=label, unit=" lines", unit_scale=True, file=sys.stderr)
    for line in lines:
        yield line[:-1] if line.endswith(b"\n") else line


def price_lines(pricer: Pricer, lines: Iterable[bytes]) -> Iterator[bytes]:
    """One JSON line out per line in, in input order, each carrying its 1-based `line`."""
    process = pricer.process
    dumps = orjson.dumps
    newline = orjson.OPT_APPEND_NEWLINE
    for number, raw in enumerate(lines, start=1):
        result = result_json(process(raw))
        result["line"] = number
        yield dumps(result, option=newline)


WRITE_LINES = 2048


def write_lines(out: BinaryIO, chunks: Iterable[bytes]) -> None:
    """The chunks written a few thousand at a time: one write per block, not per line."""
    block: list[bytes] = []
    for chunk in chunks:
        block.append(chunk)
        if len(block) == WRITE_LINES:
            out.write(b"".join(block))
            block.clear()
    if block:
        out.write(b"".join(block))


def run_price(args: argparse.Namespace) -> int:
    try:
        refdata = load_refdata(args.refdata)
    except (RefDataError, OSError) as exc:
        print(f"clearing price: {exc}", file=sys.stderr)
        return 2
    pricer = Pricer(refdata)
    out = sys.stdout.buffer
    try:
        with open_input(args.events) as handle:
            write_lines(out, price_lines(pricer, lines_of(handle, "pricing")))
    except OSError as exc:
        print(f"clearing price: {exc}", file=sys.stderr)
        return 2
    out.flush()
    return 0


def read_results(handle: BinaryIO) -> Iterator[JSONObject]:
    for number, raw in enumerate(lines_of(handle, "clearing"), start=1):
        if not raw.strip():
            continue
        try:
            result = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"line {number}: not JSON: {exc}") from None
        if not isinstance(result, dict) or "status" not in result:
            raise ValueError(f"line {number}: not a result object")
        yield result


def run_clear(args: argparse.Namespace) -> int:
    try:
        with open_input(args.priced) as handle:
            results = (r for r in read_results(handle) if r.get("period") == args.period)
            statement = build_statement(args.period, results)  # one pass, bounded memory
    except (OSError, ValueError, KeyError) as exc:
        print(f"clearing clear: {exc}", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(orjson.dumps(statement, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


def period_arg(value: str) -> str:
    if not is_period(value):
        raise argparse.ArgumentTypeError(f"period must be YYYY-MM, not {value!r}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    price = subparsers.add_parser("price", help="price JSON Lines events (stdin when no file)")
    price.add_argument("--refdata", required=True, type=Path, help="reference-data folder")
    price.add_argument("events", nargs="?", help="events file (JSON Lines)")
    price.set_defaults(func=run_price)

    clear = subparsers.add_parser("clear", help="net a period's priced results into a statement")
    clear.add_argument("--period", required=True, type=period_arg, help="YYYY-MM")
    clear.add_argument("priced", nargs="?", help="output of `clearing price` (stdin when none)")
    clear.set_defaults(func=run_clear)
