"""Per-author feeds: the rule that each record extends its author's chain by exactly one.

A feed head is what a ledger remembers of an author: the last finalized seq, that record's id and
its timestamp. `extend` is the deterministic validity rule of DESIGN.md: seq is head + 1, prev is
the head's id, timestamps never decrease, and a record is at most `max_skew` ms ahead of the
reference time the caller passes in (a block's time; `ledger` never reads a clock).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple, Self

from ledger import schema
from ledger.crypto import HASH_BYTES, Keypair
from ledger.errors import FeedError
from ledger.records import ZERO_HASH, Body, Record, sign_record


class _Head(NamedTuple):
    seq: int
    id: bytes
    timestamp: int


class FeedHead(_Head):
    """An author's latest accepted record: seq 0 and the zero id before the first. (A named
    tuple: a node builds several per record it handles, and a tuple is the cheapest to build.)"""

    __slots__ = ()

    def __new__(cls, seq: int = 0, id: bytes = ZERO_HASH, timestamp: int = 0) -> FeedHead:  # noqa: A002
        schema.integer(seq, "head.seq", 0, schema.MAX_INT)
        schema.fixed_bytes(id, "head.id", HASH_BYTES)
        schema.integer(timestamp, "head.timestamp", 0, schema.MAX_INT)
        return tuple.__new__(cls, (seq, id, timestamp))

    @classmethod
    def _make(cls, iterable: Iterable[Any]) -> Self:  # type: ignore[override]
        return cls(*iterable)  # (so that `_replace` checks too)

    @classmethod
    def of(cls, record: Record) -> FeedHead:
        """The head a record makes (its fields passed the record's schema already)."""
        return tuple.__new__(cls, (record.seq, record.id, record.timestamp))

    @classmethod
    def trusted(cls, seq: int, id_: bytes, timestamp: int) -> FeedHead:
        """A head built without the checks of `__new__`: only for values that passed them
        already (a record's fields, or what `LedgerState.set_feed_head` wrote)."""
        return tuple.__new__(cls, (seq, id_, timestamp))


EMPTY_HEAD = FeedHead()


def extend(head: FeedHead, record: Record, *, reference_time: int, max_skew: int) -> FeedHead:
    """The head after `record`, or FeedError naming the rule it breaks."""
    if record.seq != head.seq + 1:
        raise FeedError(f"feed {_who(record)}: expected seq {head.seq + 1}, got {record.seq}")
    if record.prev != head.id:
        raise FeedError(
            f"feed {_who(record)} seq {record.seq}: prev {record.prev.hex()[:16]} is not the id "
            f"of seq {head.seq} ({head.id.hex()[:16]})"
        )
    if record.timestamp < head.timestamp:
        raise FeedError(
            f"feed {_who(record)} seq {record.seq}: timestamp {record.timestamp} is before the "
            f"previous record's {head.timestamp}"
        )
    if record.timestamp > reference_time + max_skew:
        raise FeedError(
            f"feed {_who(record)} seq {record.seq}: timestamp {record.timestamp} is more than "
            f"{max_skew} ms after the reference time {reference_time}"
        )
    return FeedHead.of(record)


def _who(record: Record) -> str:
    """An author as messages name it (built only when a rule is broken)."""
    return record.author.hex()[:16]


class FeedWriter:
    """An author's side of a feed for one network: signs each next record, linked to the last."""

    def __init__(self, key: Keypair, network_id: bytes) -> None:
        self.key = key
        self.network_id = network_id
        self.seq = 0
        self.prev = ZERO_HASH

    @property
    def public_key(self) -> bytes:
        return self.key.public_key

    def write(self, body: Body, at: int) -> Record:
        """The author's next record."""
        record = self.sign(seq=self.seq + 1, prev=self.prev, at=at, body=body)
        self.seq, self.prev = record.seq, record.id
        return record

    def sign(
        self, *, seq: int, prev: bytes, at: int, body: Body, network_id: bytes | None = None
    ) -> Record:
        """Any record by this author (a fork, a gap, another network's), without moving the feed."""
        return sign_record(
            self.key,
            network_id if network_id is not None else self.network_id,
            seq=seq,
            prev=prev,
            timestamp=at,
            body=body,
        )
