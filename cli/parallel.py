"""Signature checks spread over every core, for audits of large ledgers."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from ledger.audit import first_bad_signature


class PoolChecker:
    """A `SignatureChecker` that splits each batch across worker processes."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool = ProcessPoolExecutor(max_workers=self.workers)

    def submit(self, network_id: bytes, raws: Sequence[bytes]) -> Callable[[], int | None]:
        step = max(1, -(-len(raws) // self.workers))
        parts: list[tuple[int, Future[int | None]]] = [
            (
                start,
                self._pool.submit(
                    first_bad_signature, network_id, list(raws[start : start + step])
                ),
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
