"""Closing a period, issuing its statement and publishing it: the one way, for every caller.

`clearing period close|issue` (clearing/ops/ledger_cli.py), the dashboard's Close and Issue
(clearing/dashboard/service.py) and `clearing run` (clearing/ops/run.py) all call `close` and
`issue` here, so they answer with the same states and messages and publish the same way:

- `close(ledger, period, force=..., publisher=...)`: see `periods.close_period`; closing a
  closed or issued period changes nothing and says so. In the same transaction the period's
  fund-safety flags (HIGH_REVERSAL_RATE, from the stream's counts) are raised and stored once
  (`clearing.store.monitor.raise_period_flags`); when this call closed the period they are
  published like statements: on the flags topic and each province's feed.
- `issue(ledger, period, publisher)`: issues a closed period's statement once (see
  `periods.issue_period`), then publishes it through `publisher` (the whole statement on the
  clearing topic, each province's part on its feed; `clearing.core.statements`). A statement
  issued before is published again only when asked (`republish`): the statement never changes,
  and its messages are keyed `statement:<period>`, so a consumer keeps the last copy.

Publishing happens after the issue is committed: when the broker fails then, `NotPublished`
says the statement is issued and unpublished (publish it again with `republish`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from sqlalchemy import Connection

from clearing.config import settings
from clearing.core.netting import Statement
from clearing.core.statements import StatementTopics, statement_messages
from clearing.ledger import periods
from clearing.ledger.errors import LedgerError
from clearing.ledger.periods import PeriodInfo
from clearing.ledger.store import Ledger
from clearing.store.monitor import flag_provinces, raise_period_flags

Message = tuple[str, bytes, bytes]


@dataclass
class Publisher:
    """Sends messages `(topic, key, value)` and returns once the broker acknowledged them all."""

    topics: StatementTopics
    send: Callable[[Sequence[Message]], None]

    def publish(self, statement: Statement) -> int:
        messages = statement_messages(self.topics, [statement])
        self.send(messages)
        return len(messages)

    def publish_flags(self, flags: Sequence[bytes]) -> int:
        """Each flag on the flags topic and on the feed of every province it involves."""
        topic = getattr(self.topics, "flags", None)
        messages: list[Message] = []
        for body in flags:
            flag = orjson.loads(body)
            key = str(flag["flag_id"]).encode()
            if isinstance(topic, str):
                messages.append((topic, key, body))
            messages.extend((self.topics.feed(p), key, body) for p in flag_provinces(flag))
        if messages:
            self.send(messages)
        return len(messages)


@dataclass(frozen=True)
class Step:
    """What one close or issue did."""

    action: Literal["close", "issue"]
    period: str
    state: str
    changed: bool
    message: str
    sha256: str | None = None
    statement: Statement | None = None
    # Messages published; None when the statement was not published.
    published: int | None = None
    # The period's fund-safety flags raised at its close (JSON), when closing.
    flags: tuple[bytes, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The step as JSON (without the statement itself)."""
        out: dict[str, Any] = {
            "period": self.period,
            "state": self.state,
            "changed": self.changed,
            "message": self.message,
        }
        if self.sha256 is not None:
            out["sha256"] = self.sha256
        if self.published is not None:
            out["published"] = self.published
        return out


class NotPublished(LedgerError):
    """The statement is issued, or the period closed with flags (that is committed), but the
    broker did not take the messages."""

    def __init__(self, step: Step, cause: BaseException) -> None:
        hint = (
            "publish it again with `clearing period issue --republish`"
            if step.action == "issue"
            else "its flags are stored: the dashboard's review queue lists them"
        )
        super().__init__(
            f"{step.message}, but not published: {type(cause).__name__}: {cause}; {hint}"
        )
        self.step = step


def close(
    ledger: Ledger,
    period: str,
    *,
    force: bool = False,
    publisher: Publisher | None = None,
    monitor: bool | None = None,
) -> Step:
    """Closes the period and raises its flags in one transaction; publishes the flags when
    this call closed it (`monitor`: CLEARING_MONITOR unless given)."""
    watch = settings().monitor if monitor is None else monitor

    def closing(conn: Connection) -> tuple[PeriodInfo, bool, list[bytes]]:
        info, changed = periods.close_period(conn, period, force=force)
        raised = raise_period_flags(conn, info.period) if watch and info.state != "open" else []
        return info, changed, raised

    info, changed, raised = ledger.run(closing)
    if changed:
        message = f"closed {info.period}: {info.results} results ({info.late_results} late)"
        if raised:
            message += f"; {len(raised)} flags"
    else:
        message = f"{info.period} is already {info.state}; nothing changed"
    step = Step("close", info.period, info.state, changed, message, flags=tuple(raised))
    if publisher is None or not (changed and raised):
        return step
    try:
        published = publisher.publish_flags(raised)
    except Exception as exc:  # the broker's many errors all mean "not acknowledged"
        raise NotPublished(step, exc) from exc
    return Step(
        "close", step.period, step.state, step.changed, f"{message}; published",
        published=published, flags=step.flags,
    )  # fmt: skip


def issue(
    ledger: Ledger,
    period: str,
    publisher: Publisher | None = None,
    *,
    republish: bool = False,
) -> Step:
    issued = ledger.issue_period(period)
    if issued.newly_issued:
        message = f"{issued.period} issued sha256 {issued.sha256}"
    else:
        message = f"{issued.period} was already issued, unchanged: sha256 {issued.sha256}"
    step = Step(
        "issue", issued.period, "issued", issued.newly_issued, message, issued.sha256,
        issued.statement,
    )  # fmt: skip
    if publisher is None or not (issued.newly_issued or republish):
        return step
    try:
        published = publisher.publish(issued.statement)
    except Exception as exc:  # the broker's many errors all mean "not acknowledged"
        raise NotPublished(step, exc) from exc
    return Step(
        "issue", step.period, step.state, step.changed,
        f"{message}; published ({published} messages)", step.sha256, step.statement, published,
    )  # fmt: skip


def close_and_issue(
    ledger: Ledger,
    period: str,
    publisher: Publisher | None = None,
    *,
    force: bool = False,
    republish: bool = False,
) -> tuple[Step, Step]:
    closed = close(ledger, period, force=force, publisher=publisher)
    return closed, issue(ledger, period, publisher, republish=republish)


@contextmanager
def kafka_publisher(bootstrap: str, topics: Any) -> Iterator[Publisher]:
    """A Publisher on the broker (`topics`: `clearing.topics.Topics`, whose topics it creates
    when missing); one producer, closed on exit."""
    from clearing.kafka_clients import producer
    from clearing.topics import ensure_topics

    ensure_topics(bootstrap, topics.prefix)
    kafka = producer(bootstrap)

    def send(messages: Sequence[Message]) -> None:
        futures = [kafka.send(topic, key=key, value=value) for topic, key, value in messages]
        kafka.flush()
        for future in futures:
            future.get(timeout=30)

    try:
        yield Publisher(topics, send)
    finally:
        kafka.close()
