"""The dashboard's state in one worker: cached ledger and Kafka figures, the live history, and
the operator actions. Everything blocking runs on a small thread pool of its own, never on the
event loop and never on the stream's database thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, select

from clearing import auth
from clearing.core import provinces
from clearing.core.errors import ClearingError
from clearing.core.models.types import CHINA_TZ
from clearing.dashboard import actions, queries
from clearing.dashboard import flags as flag_reviews
from clearing.dashboard.cache import Cached
from clearing.dashboard.config import DashboardConfig
from clearing.dashboard.history import History, take
from clearing.dashboard.lag import LagReader, PartitionLag, as_json
from clearing.ledger import cycle
from clearing.ledger.errors import LedgerError, LedgerInputError
from clearing.ledger.store import shared_ledger
from clearing.store import db
from clearing.store.schema import periods as periods_table

log = logging.getLogger(__name__)

# (topic, key, value) -> awaited until the broker has it.
Publish = Callable[[str, bytes, bytes], Awaitable[Any]]
MAX_PERIOD_VIEWS = 36


class ActionError(ClearingError):
    """An operator action the ledger refused; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Dashboard:
    def __init__(
        self,
        config: DashboardConfig,
        publish: Publish | None = None,
        lag_reader: LagReader | None = None,
    ) -> None:
        self.config = config
        self.publish = publish
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="clearing-dashboard")
        self._engine: Engine | None = None
        ttl = config.ttl
        self.ledger = Cached("ledger", self._load_ledger, ttl, self.executor)
        self.rejections = Cached("rejections", self._load_rejections, ttl * 6, self.executor)
        self.lag_reader = lag_reader or LagReader(
            config.bootstrap,
            config.group,
            [config.topics.events, config.topics.results],
            config.auth,
        )
        self.lag: Cached[list[PartitionLag]] = Cached(
            "kafka", self.lag_reader.read, ttl, self.executor
        )
        self.views: dict[str, Cached[dict[str, Any]]] = {}
        self.history = History()
        self._sampler: asyncio.Task[None] | None = None
        self._stopped = False

    # ---------------------------------------------------------------- lifecycle

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            # Autocommit on SQLite: a read never waits behind a worker's batch transaction.
            self._engine = db.make_engine(self.config.db_url, begin_immediate=False)
        return self._engine

    async def start(self, *_args: object) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.executor, db.migrate, self.engine)
        except Exception as exc:  # the page still shows what it can; actions will say why
            log.warning("dashboard: cannot migrate the database: %s", exc)
        self._sampler = asyncio.ensure_future(self._sample_forever())

    async def stop(self, *_args: object) -> None:
        # faust's web server runs its app's cleanup twice on the way down (runner, then app).
        if self._stopped:
            return
        self._stopped = True
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        await asyncio.get_running_loop().run_in_executor(self.executor, self._close_clients)
        self.executor.shutdown(wait=False)

    def _close_clients(self) -> None:
        self.lag_reader.close()
        if self._engine is not None:
            self._engine.dispose()

    async def _sample_forever(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception:  # a chart gap, never a dead sampler
                log.exception("dashboard: sampling failed")
            await asyncio.sleep(self.config.sample_every)

    async def sample(self) -> None:
        offsets = await self.lag.get(timeout=3)
        age = self.lag.age()
        offsets_at = None if age is None else time.time() - age
        self.history.add(take(offsets, offsets_at, self.config.topics.events))

    async def refresh_for_scrape(self) -> None:
        """Brings the collectors' figures up to date before `/metrics` is rendered."""
        await asyncio.gather(self.ledger.get(timeout=3), self.lag.get(timeout=3))

    # ---------------------------------------------------------------- loaders (threads)

    def _load_ledger(self) -> dict[str, Any]:
        now = datetime.now(UTC)
        with self.engine.connect() as conn:
            rows = queries.period_rows(conn)
            open_views = {
                r["period"]: queries.period_view(conn, r["period"])
                for r in rows
                if r["state"] == "open"
            }
            return {
                "periods": rows,
                "open": open_views,
                "today": queries.today_totals(conn, now),
                "prepayments": queries.prepayments(conn),
                "alerts": queries.alerts(conn),
                "notices": queries.notices(conn),
                "actions": actions.recent_actions(self.engine),
                "loaded_at": now.astimezone(CHINA_TZ).isoformat(timespec="seconds"),
            }

    def _load_rejections(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return queries.rejection_reasons(conn)

    def _load_period(self, period: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            view = queries.period_view(conn, period)
            row = conn.execute(
                select(periods_table.c.statement).where(periods_table.c.period == period)
            ).first()
        if row is not None and row.statement:
            view["transfers"] = orjson.loads(row.statement)["transfers"]
        return view

    # ---------------------------------------------------------------- reads (event loop)

    async def period_view(self, period: str, state: str) -> dict[str, Any] | None:
        """An issued period never changes, so its view is cached for good."""
        cached = self.views.get(period)
        ttl = math.inf if state == "issued" else self.config.ttl
        if cached is None or cached.ttl != ttl:
            if len(self.views) >= MAX_PERIOD_VIEWS:
                self.views.pop(next(iter(self.views)))
            cached = self.views[period] = Cached(
                f"period {period}", lambda: self._load_period(period), ttl, self.executor
            )
        return await cached.get(timeout=10)

    async def overview(self, period: str | None = None) -> dict[str, Any]:
        ledger, rejections, lag = await asyncio.gather(
            self.ledger.get(timeout=10), self.rejections.get(timeout=10), self.lag.get(timeout=3)
        )
        ledger = ledger or {"periods": [], "open": {}}
        states = {r["period"]: r["state"] for r in ledger["periods"]}
        selected = period if period in states else default_period(ledger["periods"])
        view = None
        if selected is not None:
            state = states[selected]
            view = ledger["open"].get(selected) if state == "open" else None
            if view is None:
                view = await self.period_view(selected, state)
            if view is not None:
                view = {**view, "state": state}
        return {
            "generated_at": datetime.now(CHINA_TZ).isoformat(timespec="seconds"),
            "timezone": "UTC+08:00",
            "group": self.config.group,
            "provinces": provinces.as_json(),
            "periods": ledger.get("periods", []),
            "selected": selected,
            "period": view,
            "today": ledger.get("today"),
            "prepayments": ledger.get("prepayments"),
            "alerts": ledger.get("alerts", []),
            "notices": ledger.get("notices", []),
            "actions": ledger.get("actions", []),
            "rejections": rejections or {},
            "lag": as_json(lag or []),
            "sources": [c.status() for c in (self.ledger, self.rejections, self.lag)],
        }

    def live(self) -> dict[str, Any]:
        return {"interval_s": self.config.sample_every, "points": self.history.series()}

    # ---------------------------------------------------------------- operator actions

    async def authenticate(self, token: str) -> auth.Principal | None:
        """Whoever a bearer token belongs to (of any kind: the web layer says who may do
        what, and answers a hospital's token 403 rather than 401), or None."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, auth.authenticate, self.engine, token, auth.KINDS
        )

    async def act(self, operator: str, action: str, period: str, force: bool) -> dict[str, Any]:
        """Closes or issues `period` through `clearing.ledger.cycle` (as `clearing period` and
        `clearing run` do), publishing a newly issued statement; logs who did it and what came
        of it."""
        loop = asyncio.get_running_loop()
        publisher = self._publisher(loop) if self.publish is not None else None
        try:
            step = await loop.run_in_executor(
                self.executor, self._act, action, period, force, publisher
            )
        except LedgerError as exc:
            message = str(exc)
            if isinstance(exc, cycle.NotPublished):
                outcome, status = message, 502
            else:
                outcome = f"refused: {message}"
                status = 400 if isinstance(exc, LedgerInputError) else 409
            await loop.run_in_executor(
                self.executor, self._log, operator, action, period, outcome
            )
            self.invalidate()
            raise ActionError(status, message) from exc
        await loop.run_in_executor(self.executor, self._log, operator, action, period, step.message)
        self.invalidate()
        return step.as_dict()

    def _act(
        self, action: str, period: str, force: bool, publisher: cycle.Publisher | None
    ) -> cycle.Step:
        ledger = shared_ledger(self.config.db_url)
        if action == "close":
            return cycle.close(ledger, period, force=force, publisher=publisher)
        return cycle.issue(ledger, period, publisher)

    def _publisher(self, loop: asyncio.AbstractEventLoop) -> cycle.Publisher:
        """Publishes through the worker's producer (on the event loop) from the action's
        thread, and waits there for the broker's acknowledgements."""
        publish = self.publish
        assert publish is not None

        def send(messages: Sequence[cycle.Message]) -> None:
            async def send_all() -> None:
                for topic, key, value in messages:
                    await publish(topic, key, value)

            asyncio.run_coroutine_threadsafe(send_all(), loop).result(timeout=60)

        return cycle.Publisher(self.config.topics, send)

    def _log(self, operator: str, action: str, period: str, outcome: str) -> None:
        try:
            actions.log_action(self.engine, operator, action, period, outcome)
        except Exception:
            log.exception("dashboard: cannot log %s %s by %s", action, period, operator)
        log.warning("dashboard: %s %s by operator %s: %s", action, period, operator, outcome)

    # ---------------------------------------------------------------- fund-safety flags

    async def flags(self, rule: str | None, province: str | None) -> dict[str, Any]:
        """The review queue (newest first), filtered, with counts by rule and province."""

        def load() -> dict[str, Any]:
            with self.engine.connect() as conn:
                return flag_reviews.flag_queue(conn, rule, province)

        return await asyncio.get_running_loop().run_in_executor(self.executor, load)

    async def review(self, operator: str, flag_id: str, status: str, note: str) -> dict[str, Any]:
        """Records a review (who and when); UnknownFlag or ValueError when refused."""
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, flag_reviews.review, self.engine, flag_id, status, note, operator
        )

    def invalidate(self) -> None:
        """The next read asks the ledger again (after an action changed it)."""
        for cached in (self.ledger, *self.views.values()):
            cached.invalidate()


def default_period(rows: list[dict[str, Any]]) -> str | None:
    """The latest open period, else the latest period of all."""
    opened: list[str] = [r["period"] for r in rows if r["state"] == "open"]
    if opened:
        return opened[-1]
    latest: str | None = rows[-1]["period"] if rows else None
    return latest
