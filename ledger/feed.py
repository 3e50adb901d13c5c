"""Per-author feeds: the rule that each record extends its author's chain by exactly one.

A feed head is what a ledger remembers of an author: the last finalized seq, that record's id and
its timestamp. `extend` is the deterministic validity rule of DESIGN.md: seq is head + 1, prev is
the head's id, timestamps never decrease, and a record is at most `max_skew` ms ahead of the
reference time the caller passes in (a block's time; `ledger` never reads a clock).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import schema
from ledger.crypto import HASH_BYTES
from ledger.errors import FeedError
from ledger.records import ZERO_HASH, Record


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedHead:
    """An author's latest accepted record: seq 0 and the zero id before the first."""

    seq: int = 0
    id: bytes = ZERO_HASH
    timestamp: int = 0

    def __post_init__(self) -> None:
        schema.integer(self.seq, "head.seq", 0, schema.MAX_INT)
        schema.fixed_bytes(self.id, "head.id", HASH_BYTES)
        schema.integer(self.timestamp, "head.timestamp", 0, schema.MAX_INT)


EMPTY_HEAD = FeedHead()


def extend(head: FeedHead, record: Record, *, reference_time: int, max_skew: int) -> FeedHead:
    """The head after `record`, or FeedError naming the rule it breaks."""
    who = record.author.hex()[:16]
    if record.seq != head.seq + 1:
        raise FeedError(f"feed {who}: expected seq {head.seq + 1}, got {record.seq}")
    if record.prev != head.id:
        raise FeedError(
            f"feed {who} seq {record.seq}: prev {record.prev.hex()[:16]} is not the id of seq "
            f"{head.seq} ({head.id.hex()[:16]})"
        )
    if record.timestamp < head.timestamp:
        raise FeedError(
            f"feed {who} seq {record.seq}: timestamp {record.timestamp} is before the previous "
            f"record's {head.timestamp}"
        )
    if record.timestamp > reference_time + max_skew:
        raise FeedError(
            f"feed {who} seq {record.seq}: timestamp {record.timestamp} is more than {max_skew} ms "
            f"after the reference time {reference_time}"
        )
    return FeedHead(seq=record.seq, id=record.id, timestamp=record.timestamp)
