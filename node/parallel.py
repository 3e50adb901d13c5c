"""Record checks spread over every core, for audits, imports and a node catching up on a long
history: the worker pool the CLI and the node share."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from ledger.checking import InlineChecker, RecordChecker, first_bad_record

PARALLEL_FROM_RECORDS = 20_000
"""Below this many records, starting worker processes costs more than it saves."""
BUNDLE_BYTES_PER_RECORD = 160
"""Fewer bytes than any record with its framing takes in a bundle: a bundle's size over this is
more than the records it can hold."""


class PoolChecker:
    """A `RecordChecker` that splits each batch across worker processes."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool = ProcessPoolExecutor(max_workers=self.workers)

    def submit(self, network_id: bytes, raws: Sequence[bytes]) -> Callable[[], int | None]:
        step = max(1, -(-len(raws) // self.workers))
        parts: list[tuple[int, Future[int | None]]] = [
            (
                start,
                self._pool.submit(first_bad_record, network_id, list(raws[start : start + step])),
            )
            for start in range(0, len(raws), step)
        ]

        def result() -> int | None:
            for start, future in parts:
                bad = future.result()
                if bad is not None:
                    return start + bad
            return None

        return result

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


@contextmanager
def record_checker(records: int | None) -> Iterator[RecordChecker]:
    """A checker for about `records` records (None: unknown, assume many): worker processes on
    every core for a large ledger, this process for a small one."""
    if records is not None and records < PARALLEL_FROM_RECORDS:
        yield InlineChecker()
        return
    pool = PoolChecker()
    try:
        yield pool
    finally:
        pool.close()


def bundle_records(bundle: Path) -> int:
    """An upper bound on the records `bundle` holds, from its size."""
    return bundle.stat().st_size // BUNDLE_BYTES_PER_RECORD
