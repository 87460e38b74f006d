"""What later lines may refer back to, in bounded rings: settlements to reverse (priced, by
month), settlements already reversed or rejected, and recent lines to send again."""

from __future__ import annotations

from collections import deque
from random import Random

# A settlement as a reversal names it: (settlement_id, person_id).
SettlementRef = tuple[str, str]

BUCKET_SIZE = 256


class History:
    """A bounded memory of the stream: whatever its length, it keeps a few hundred entries a
    month at most."""

    def __init__(self, rng: Random) -> None:
        self.rng = rng
        self.priced_by_month: dict[str, list[SettlementRef]] = {}
        self.reversed: deque[SettlementRef] = deque(maxlen=64)
        self.rejected: deque[SettlementRef] = deque(maxlen=64)
        self.recent_lines: deque[tuple[str, str]] = deque(maxlen=256)
        self.recent_priced: deque[str] = deque(maxlen=256)

    def note_line(self, event_type: str, line: str) -> None:
        """A line that may be retransmitted later."""
        self.recent_lines.append((event_type, line))

    def note_rejected(self, settlement: SettlementRef) -> None:
        self.rejected.append(settlement)

    def note_priced(self, month: str, settlement: SettlementRef, line: str) -> None:
        """A settlement that may be reversed later (a random one of the month's bucket is
        forgotten when it is full) and whose line may be resubmitted changed."""
        bucket = self.priced_by_month.setdefault(month, [])
        if len(bucket) < BUCKET_SIZE:
            bucket.append(settlement)
        else:
            bucket[self.rng.randrange(BUCKET_SIZE)] = settlement
        self.recent_priced.append(line)

    def note_reversed(self, settlement: SettlementRef) -> None:
        self.reversed.append(settlement)

    def choose_priced(self) -> tuple[list[SettlementRef], int] | None:
        """Where a priced, unreversed settlement is kept: mostly this month's bucket, sometimes
        an earlier month's, so that some reversals cross into a later period."""
        months = list(self.priced_by_month)
        if not months:
            return None
        month = months[-1] if self.rng.random() < 0.7 else self.rng.choice(months)
        bucket = self.priced_by_month[month] or self.priced_by_month[months[-1]]
        if not bucket:
            return None
        return bucket, self.rng.randrange(len(bucket))

    def take_priced(self) -> SettlementRef | None:
        """A priced, unreversed settlement, no longer offered for reversal."""
        chosen = self.choose_priced()
        if chosen is None:
            return None
        bucket, index = chosen
        target = bucket[index]
        bucket[index] = bucket[-1]
        bucket.pop()
        return target
