"""Reading topics back: every result of one run, a province's feed, the dead letters."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

from clearing.core.errors import UnavailableError
from clearing.core.jsonish import JSONObject
from clearing.kafka_clients import consumer

if TYPE_CHECKING:  # kafka-python has no type information: `Any` to mypy
    from kafka.consumer.fetcher import ConsumerRecord


def read_all(
    bootstrap: str, topics: str | list[str], idle: float = 2.0, timeout: float = 60.0
) -> list[ConsumerRecord]:
    """Every record on the topics now (stops after `idle` seconds without a new one)."""
    reader = consumer(bootstrap, topics)
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() - last < idle and time.monotonic() < deadline:
            for batch in reader.poll(timeout_ms=200).values():
                records.extend(batch)
                last = time.monotonic()
    finally:
        reader.close()
    return records


class Stalled(UnavailableError):
    """No new result for too long, or no worker left alive."""


@dataclass
class RunResults:
    """The results of one run, one per input line; replays of a line are dropped."""

    run_id: str
    expected: int
    by_line: dict[int, bytes] = field(default_factory=dict)
    replays: int = 0

    def add(self, value: bytes) -> None:
        try:
            result = orjson.loads(value)
        except orjson.JSONDecodeError:
            return
        if not isinstance(result, dict) or result.get("run") != self.run_id:
            return
        line = result.get("line")
        if not isinstance(line, int):
            return
        if line in self.by_line:
            self.replays += 1
        else:
            self.by_line[line] = value

    @property
    def complete(self) -> bool:
        return len(self.by_line) >= self.expected

    def results(self) -> list[JSONObject]:
        return [orjson.loads(self.by_line[n]) for n in sorted(self.by_line)]


def collect(
    bootstrap: str,
    topic: str,
    run: RunResults,
    stall_timeout: float = 120.0,
    alive: Callable[[], bool] = lambda: True,
    progress: Callable[[int], object] | None = None,
    check: Callable[[], None] = lambda: None,
) -> RunResults:
    """Consumes `topic` until the run has a result for every line. `check` is called at every
    turn and may raise to end it (a stop the client swallowed)."""
    reader = consumer(bootstrap, topic)
    try:
        last = time.monotonic()
        while not run.complete:
            check()
            before = len(run.by_line)
            for batch in reader.poll(timeout_ms=200).values():
                for record in batch:
                    run.add(record.value)
            if len(run.by_line) > before:
                last = time.monotonic()
                if progress is not None:
                    progress(len(run.by_line) - before)
            elif time.monotonic() - last > stall_timeout:
                raise Stalled(f"no new result for {stall_timeout:.0f}s")
            elif not alive():
                raise Stalled("every worker has exited")
    finally:
        reader.close()
    return run
