"""One tree of errors, so every caller can tell what went wrong by kind, not by module.

- `InputError`: what was given cannot be used (a document, a request, a credential, a setting);
  the message names the field.
- `ConflictError`: it contradicts what is already recorded (an id taken by other content).
- `StateError`: it is not allowed in the current state (a period that is no longer open).
- `UnavailableError`: something it needs does not answer (the broker, the database), or the
  work stalled; trying again later may succeed.
"""

from __future__ import annotations


class ClearingError(Exception):
    """Every error the clearinghouse raises on purpose."""


class InputError(ClearingError, ValueError):
    """Input that cannot be used; the message names the field."""


class ConflictError(ClearingError):
    """Contradicts what is already recorded."""


class StateError(ClearingError):
    """Not allowed in the current state."""


class UnavailableError(ClearingError):
    """A service it needs does not answer, or the work stalled."""
