"""A node's own records not final yet (docs/PROTOCOL.md §16, "Persistence"): the records it took
through its local API, kept in rows of its SQLite file until final, so that a restart puts them
back in the mempool and sends them again, and never lets a member's feed fork at their seqs.

The rows are the node's, not the ledger's: no block, certificate or root covers them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from ledger.codec import decode, encode
from ledger.errors import DecodeError, LedgerError
from ledger.records import MAX_EVIDENCE_BYTES, Record, decode_record
from ledger.store import Store
from node.policy.mempool import TRY_AGAIN, Mempool, Refusal, Refused

log = logging.getLogger("commons.node")

OUTBOX = "outbox/"
"""Node values in the store (`Store.node_value`) holding this node's own records not final yet,
in rows of records taken at once (`outbox/<n>`, n counting up from 1 in 12 decimal digits, a
MessagePack array of the records' bytes), each row kept until all of its records are final."""
OUTBOX_ROW_RECORDS = 1024
"""Most records in one outbox row."""


class Outbox:
    """Own records until final. `verify` checks a record's signature (once per node)."""

    def __init__(
        self, store: Store, mempool: Mempool, verify: Callable[[Record], None], *, now: int
    ) -> None:
        self.store = store
        self.mempool = mempool
        self.verify = verify
        self._row_of: dict[bytes, str] = {}
        """Own records not final yet, by id: the row holding each."""
        self._rows: dict[str, int] = {}
        """Rows, by name: how many of their records are not final yet."""
        self._next = 1
        self.waiting: dict[bytes, Record] = {}
        """Own records kept from before a restart that the mempool could not take yet
        (`TRY_AGAIN`), by id: offered again at every `retry`."""
        self._restore(now)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._row_of

    def keep(self, records: Sequence[Record]) -> None:
        """Records this node took, in its mempool now: kept until final, safe from a crash of
        this process at once and from a power cut with the next block."""
        rows: dict[str, bytes | None] = {}
        for at in range(0, len(records), OUTBOX_ROW_RECORDS):
            row = records[at : at + OUTBOX_ROW_RECORDS]
            name = f"{OUTBOX}{self._next:012d}"
            self._next += 1
            rows[name] = encode(tuple(r.raw for r in row))
            self._rows[name] = len(row)
            self._row_of.update((r.id, name) for r in row)
        if rows:
            self.store.set_node_values(rows, fsync=False)

    def forget(self, record_ids: Iterable[bytes]) -> None:
        """Own records that are final now, or dropped: no longer sent again after a restart. A
        row goes once none of its records is left (until then a restart skips its final ones)."""
        done: dict[str, None] = {}
        for record_id in record_ids:
            self.waiting.pop(record_id, None)
            name = self._row_of.pop(record_id, None)
            if name is not None:
                self._rows[name] -= 1
                if not self._rows[name]:
                    del self._rows[name]
                    done[name] = None
        if done:
            self.store.set_node_values(dict.fromkeys(done), fsync=False)

    def retry(self, now: int) -> list[Record]:
        """Offer the waiting records to the mempool again (oldest first): the ones it took now
        (to go out to the peers); those that broke a lasting rule meanwhile are dropped."""
        taken: list[Record] = []
        gone: list[bytes] = []
        for record in list(self.waiting.values()):
            offered = self._offer(record, now)
            if offered is None:
                gone.append(record.id)
            elif offered:
                del self.waiting[record.id]
                taken.append(record)
        self.forget(gone)
        return taken

    def refuse_beside_waiting(self, record: Record) -> None:
        """A member's record at the seq of an own record waiting to be offered again would fork
        the member's feed: Refused (CONFLICT)."""
        for waiting in self.waiting.values():
            if waiting.author == record.author and waiting.seq == record.seq:
                raise Refused(
                    Refusal.CONFLICT,
                    f"author {record.author.hex()[:16]} has record {waiting.id.hex()[:16]} at seq "
                    f"{record.seq} waiting in this node's outbox",
                )

    def _restore(self, now: int) -> None:
        """The records not final when the node stopped: back into the mempool, and each row
        rewritten with those alone."""
        rewritten: dict[str, bytes | None] = {}
        for name, data in self.store.node_values(OUTBOX).items():
            number = name[len(OUTBOX) :]
            if number.isascii() and number.isdecimal():
                self._next = max(self._next, int(number) + 1)
            try:
                decoded = decode(data, max_size=OUTBOX_ROW_RECORDS * (MAX_EVIDENCE_BYTES + 8))
            except LedgerError as e:
                log.warning("an outbox row kept from before the restart is dropped: %s", e)
                decoded = ()
            kept = decoded if type(decoded) is tuple else (data,)  # (a row of one record, before)
            pending = []
            for raw in kept:
                record_id = self._restore_one(raw, now)
                if record_id is not None and record_id not in self._row_of:  # (once if twice)
                    self._row_of[record_id] = name
                    pending.append(raw)
            if pending:
                self._rows[name] = len(pending)
            if not pending or len(pending) < len(kept):  # what is final or invalid now goes
                rewritten[name] = encode(tuple(pending)) if pending else None
        if rewritten:
            self.store.set_node_values(rewritten)

    def _restore_one(self, raw: object, now: int) -> bytes | None:
        """A record kept from before a restart, back in the mempool: its id, or None if it is
        final or no longer valid. One the mempool cannot take yet (`TRY_AGAIN`) waits;
        meanwhile no other record is taken at its seq."""
        try:
            if type(raw) is not bytes:
                raise DecodeError(f"an outbox entry is {type(raw).__name__}, not bytes")
            record = decode_record(raw)
            self.verify(record)
        except LedgerError as e:
            log.warning("an own record kept from before the restart is dropped: %s", e)
            return None
        taken = self._offer(record, now)
        if taken is None:
            return None
        if not taken:
            log.warning(
                "own record %s kept from before the restart waits: the mempool cannot take it yet",
                record.id.hex()[:16],
            )
            self.waiting[record.id] = record
        return record.id

    def _offer(self, record: Record, now: int) -> bool | None:
        """Offer a kept record to the mempool: True if it took it, False if it cannot yet
        (`TRY_AGAIN`), None if the record is final or no longer valid."""
        if self.store.record(record.id) is not None:
            return None
        try:
            self.mempool.add(record, now=now, local=True)
        except Refused as e:
            if e.reason in TRY_AGAIN:
                log.debug("own record %s not taken yet: %s", record.id.hex()[:16], e)
                return False
            log.warning("an own record kept from before the restart is dropped: %s", e)
            return None
        return True
