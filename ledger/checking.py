"""Checking records ahead of the chain: the per-record work on other cores, the rules here.

Most of the cost of accepting a block is per record and independent of every other record:
parsing it, its schema, its signature. A `RecordChecker` does that work for a batch of raw records,
perhaps in other processes; `checked` feeds blocks to the chain in order while the checker works
a batch or two ahead, and parses the records it vouched for without checking them twice. A block
holding a record the checker refused is parsed and applied with every check in order, so the
error names the first record to break any rule, exactly as a node applying it alone would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol, TypeVar

from ledger.block import Block, RawBlock
from ledger.errors import InvalidData, LedgerError
from ledger.records import decode_checked, decode_record

BATCH_RECORDS = 2048
BATCH_BLOCKS = 256
"""A batch also closes at this many blocks, so a run of empty blocks is not all read at once."""
T = TypeVar("T")


class RecordChecker(Protocol):
    """Checks raw records, perhaps elsewhere: `submit` starts a batch and returns a function that
    waits for it and gives the index of its first record that fails to decode, breaks the schema
    or carries a bad signature; None when all pass."""

    def submit(self, network_id: bytes, raws: Sequence[bytes]) -> Callable[[], int | None]: ...


def first_bad_record(network_id: bytes, raws: Sequence[bytes]) -> int | None:
    """The index of the first record in `raws` that `decode_record` or its signature refuses."""
    for index, raw in enumerate(raws):
        try:
            decode_record(raw).verify(network_id)
        except InvalidData:
            return index
    return None


class InlineChecker:
    """Checks records in this process, when the batch's result is asked for."""

    def submit(self, network_id: bytes, raws: Sequence[bytes]) -> Callable[[], int | None]:
        return lambda: first_bad_record(network_id, raws)


def checked(
    items: Iterable[tuple[RawBlock, T]], checker: RecordChecker, network_id: bytes
) -> Iterator[tuple[Block, bool, T]]:
    """(block, records_checked, item) for each (raw block, item) in order. Batches of about
    BATCH_RECORDS records (or BATCH_BLOCKS blocks) go to `checker` up to two batches ahead of the
    one being handed out.
    `records_checked` is False for the block holding the first record the checker refused, and
    for the rest of its batch: apply those with every check.
    An item that cannot be read (the iterable raises) is raised after the items before it."""
    for batch, pending in _batches(items, checker, network_id):
        bad = pending()
        done = 0
        for raw, item in batch:
            n = len(raw.raws)
            clean = bad is None or done + n <= bad
            done += n
            yield _parse(raw) if clean else raw.parse(), clean, item


def _batches(
    items: Iterable[tuple[RawBlock, T]], checker: RecordChecker, network_id: bytes
) -> Iterator[tuple[list[tuple[RawBlock, T]], Callable[[], int | None]]]:
    queued: list[tuple[list[tuple[RawBlock, T]], Callable[[], int | None]]] = []
    batch: list[tuple[RawBlock, T]] = []
    size = 0
    unreadable: LedgerError | None = None
    try:
        for item in items:
            batch.append(item)
            size += len(item[0].raws)
            if size >= BATCH_RECORDS or len(batch) >= BATCH_BLOCKS:
                queued.append((batch, checker.submit(network_id, _raws(batch))))
                batch, size = [], 0
                if len(queued) > 2:
                    yield queued.pop(0)
    except LedgerError as e:
        unreadable = e  # the blocks read before it are handed out first: they may fail earlier
    if batch:
        queued.append((batch, checker.submit(network_id, _raws(batch))))
    yield from queued
    if unreadable is not None:
        raise unreadable


def _parse(raw: RawBlock) -> Block:
    """The block of records a checker vouched for: parsed without checking them twice. Only
    `checked` may call it, and only for such records."""
    return Block(header=raw.header, records=tuple(map(decode_checked, raw.raws)))


def _raws(batch: list[tuple[RawBlock, T]]) -> list[bytes]:
    return [raw for block, _ in batch for raw in block.raws]
