"""Closing a period, issuing its statement and publishing it: the one way, for every caller.

`clearing period close|issue` (clearing/ops/ledger_cli.py), the dashboard's Close and Issue
(clearing/dashboard/service.py) and `clearing run` (clearing/ops/run.py) all call `close` and
`issue` here, so they answer with the same states and messages and publish the same way:

- `close(ledger, period, force=...)`: see `periods.close_period`; closing a closed or issued
  period changes nothing and says so.
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

from clearing.core.statements import StatementTopics, statement_messages
from clearing.ledger.errors import LedgerError
from clearing.ledger.store import Ledger

Message = tuple[str, bytes, bytes]


@dataclass
class Publisher:
    """Sends messages `(topic, key, value)` and returns once the broker acknowledged them all."""

    topics: StatementTopics
    send: Callable[[Sequence[Message]], None]

    def publish(self, statement: dict[str, Any]) -> int:
        messages = statement_messages(self.topics, [statement])
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
    statement: dict[str, Any] | None = None
    # Messages published; None when the statement was not published.
    published: int | None = None

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
    """The statement is issued (that is committed) but the broker did not take it."""

    def __init__(self, step: Step, cause: BaseException) -> None:
        super().__init__(
            f"{step.message}, but not published: {type(cause).__name__}: {cause}; "
            "publish it again with `clearing period issue --republish`"
        )
        self.step = step


def close(ledger: Ledger, period: str, *, force: bool = False) -> Step:
    info, changed = ledger.close_period(period, force=force)
    if changed:
        message = f"closed {info.period}: {info.results} results ({info.late_results} late)"
    else:
        message = f"{info.period} is already {info.state}; nothing changed"
    return Step("close", info.period, info.state, changed, message)


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
    return close(ledger, period, force=force), issue(ledger, period, publisher, republish=republish)


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
