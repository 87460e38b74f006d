"""Values that are expensive to compute, refreshed off the event loop and at most every `ttl`.

The faust worker prices events on the same event loop that serves the page and `/metrics`, so
a database or Kafka query must never run on it: `Cached.get()` runs the loader in a thread and
awaits it; concurrent callers share one refresh; a failed refresh keeps the last good value and
records the error, so a scrape or a page load never fails because the ledger or the broker is
briefly away. Prometheus collectors, which are synchronous, read `peek()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Cached(Generic[T]):
    def __init__(self, name: str, load: Callable[[], T], ttl: float, executor: Executor) -> None:
        self.name = name
        self.load = load
        self.ttl = ttl
        self.executor = executor
        self.value: T | None = None
        self.loaded_at: float | None = None  # time.monotonic() of the last good load
        self.error: str | None = None
        self._tried_at: float | None = None
        self._inflight: asyncio.Future[None] | None = None

    def fresh(self) -> bool:
        return self._tried_at is not None and time.monotonic() - self._tried_at < self.ttl

    def peek(self) -> T | None:
        return self.value

    def age(self) -> float | None:
        return None if self.loaded_at is None else time.monotonic() - self.loaded_at

    async def get(self, timeout: float | None = None) -> T | None:
        """The value, refreshed first when older than `ttl` (waiting at most `timeout`)."""
        if not self.fresh():
            if self._inflight is None or self._inflight.done():
                self._inflight = asyncio.ensure_future(self._refresh())
            # On a timeout the previous value is served; the refresh goes on.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._inflight), timeout)
        return self.value

    async def _refresh(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            value = await loop.run_in_executor(self.executor, self.load)
        except Exception as exc:  # reported on the page and as source_up=0, never raised
            self.error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("dashboard: refreshing %s failed: %s", self.name, self.error)
        else:
            self.value, self.error = value, None
            self.loaded_at = time.monotonic()
        finally:
            self._tried_at = time.monotonic()

    def invalidate(self) -> None:
        """The next `get()` loads again (after something changed the source)."""
        self._tried_at = None

    def status(self) -> dict[str, object]:
        age = self.age()
        return {
            "source": self.name,
            "up": self.error is None and self.loaded_at is not None,
            "age_seconds": None if age is None else round(age, 1),
            "error": self.error,
        }
