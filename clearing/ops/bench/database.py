"""A throw-away ledger database for one benchmark run: a SQLite file in the run's scratch
directory, or a fresh database created beside a given PostgreSQL one and dropped afterwards
(a rerun on the same database would find the generated ids already taken)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from clearing.store.db import normalize_url


@contextlib.contextmanager
def scratch_database(server: str | None, scratch: Path) -> Iterator[str]:
    """The URL of an empty ledger database (None: SQLite under `scratch`)."""
    if not server:
        yield f"sqlite:///{scratch / 'ledger.sqlite'}"
        return
    url = make_url(normalize_url(server))
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"--db must be a PostgreSQL URL, not {url.get_backend_name()}")
    name = f"clearing_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def rss_bytes(pid: int) -> int | None:
    """The resident set size of a process (Linux /proc), else None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
