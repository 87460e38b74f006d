"""What the ledger refuses, by kind, so callers can tell a retry from a permanent refusal."""

from __future__ import annotations

from clearing.core.errors import ClearingError, ConflictError, InputError, StateError


class LedgerError(ClearingError):
    """Base of every refusal by the ledger."""


class LedgerConflict(LedgerError, ConflictError):
    """A business key already recorded with other content: TigerBeetle's "exists with different
    fields". Permanent: retrying the same batch fails the same way."""

    def __init__(self, message: str, keys: list[str]) -> None:
        super().__init__(message)
        self.keys = keys


class LedgerInputError(LedgerError, InputError):
    """A result, period or argument that is malformed. Permanent."""


class PeriodStateError(LedgerError, StateError):
    """An operation the period's state does not allow (e.g. issuing an open period)."""


class LedgerInvariantError(LedgerError, StateError):
    """Postings, balances and results disagree: the ledger is damaged; nothing was changed."""
