"""`clearing publish`: reference data and raw event lines onto the broker.

Each event line goes out unchanged (the worker must judge the same bytes `clearing price`
judges), keyed by its person_id so one person's events stay in order, with headers `line`
(1-based input line) and `run`, so every result can be matched to its input line.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from kafka.errors import KafkaError

from clearing.core.errors import UnavailableError
from clearing.core.keys import person_key
from clearing.kafka_clients import producer
from clearing.ops.bundle import event_lines, read_documents
from clearing.topics import Topics, refdata_key

# How long a producer closed while unwinding may take to send what is still buffered.
UNWIND_CLOSE_SECONDS = 5.0
# How many events are published between two calls of `check`.
CHECK_EVERY = 1000


def new_run_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:8]


def event_key(raw: bytes, line: int) -> bytes:
    """The person_id when the line is a JSON object with a string person_id, else `line:<n>`
    (the gate keys a province's events the same way, `clearing.core.keys.person_key`)."""
    return person_key(raw) or f"line:{line}".encode()


def refdata_documents(directory: Path) -> Iterator[tuple[str, bytes]]:
    """(key, raw bytes) of every policy and catalog in a bundle's refdata folder."""
    for _, raw, doc in read_documents(directory):
        yield refdata_key(doc), raw


@dataclass
class Published:
    run_id: str
    refdata: int
    events: int
    seconds: float


class _Failures:
    def __init__(self) -> None:
        self.count = 0
        self.first: BaseException | None = None

    def __call__(self, exc: BaseException) -> None:
        self.count += 1
        self.first = self.first or exc


def publish(
    bootstrap: str,
    topics: Topics,
    refdata_dir: Path | None,
    events_path: Path | None,
    run_id: str | None = None,
    progress: bool | None = None,
    check: Callable[[], None] = lambda: None,
) -> Published:
    """Publishes refdata (flushed first, so workers see it before any event) then the events.
    `check` is called every `CHECK_EVERY` events and may raise to end it (a stop the client
    swallowed)."""
    run_id = run_id or new_run_id()
    started = time.perf_counter()
    failures = _Failures()
    kafka = producer(bootstrap)
    refdata = events = 0
    try:
        if refdata_dir is not None:
            for key, raw in refdata_documents(Path(refdata_dir)):
                kafka.send(topics.refdata, key=key.encode(), value=raw).add_errback(failures)
                refdata += 1
            kafka.flush()
        if events_path is not None:
            run_header = ("run", run_id.encode())
            lines: Iterable[bytes] = event_lines(Path(events_path))
            if progress is None:
                progress = sys.stderr.isatty()
            if progress:
                from tqdm import tqdm

                lines = tqdm(lines, desc="publishing", unit=" events", unit_scale=True)
            for number, raw in enumerate(lines, start=1):
                if number % CHECK_EVERY == 0:
                    check()
                kafka.send(
                    topics.events,
                    key=event_key(raw, number),
                    value=raw,
                    headers=[("line", str(number).encode()), run_header],
                ).add_errback(failures)
                events = number
            kafka.flush()
    except BaseException:
        # Unwinding (a signal, an error): what is still buffered is not waited for. A send cut
        # short half-way can leave a batch that never completes, and close() would wait for it
        # for ever; the sender thread is a daemon, so nothing is kept waiting on it.
        with suppress(KafkaError):
            kafka.close(timeout=UNWIND_CLOSE_SECONDS)
        raise
    kafka.close()
    if failures.count:
        raise UnavailableError(f"{failures.count} messages not acknowledged: {failures.first!r}")
    return Published(run_id, refdata, events, time.perf_counter() - started)
