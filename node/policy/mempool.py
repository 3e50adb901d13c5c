"""The mempool: records waiting for a block, as a pure state machine (DESIGN.md "Records").

The caller has decoded each record, and checked its signature already or gives `add` the check
(`verify`), which runs only once the record's seq and time pass: a stale or conflicting record
then costs no signature check. The mempool judges it against the finalized state (`LedgerView`,
e.g. the chain's `LedgerState`, read after each block is applied) and the records already
pending, with the chain's own rules. The rules:

- **Ready records extend their author's feed.** A record is *ready* when it extends the author's
  pending tail (the finalized head, then each pending record of that author) by the feed rule of
  `ledger.feed.extend`: seq + 1, prev, timestamps never going back. Every author's ready records
  are one contiguous run after the finalized head, so a block may take any prefix of it.
- **A few future seqs are held.** A record at most `max_future` seqs past the author's next one
  is *held*, unchecked against a tail it does not have yet; when the gap closes it is checked
  and becomes ready (arriving then, for the proposer's order), or is dropped. Further ahead, it
  is refused (`GAP`).
- **Local clocks decide what is kept, never what is valid.** A record stamped more than
  `max_skew_ms` (the network parameter) after this node's clock is refused (`FROM_FUTURE`): a
  block could not take it yet, and it would hold space meanwhile.
- **Evidence is judged as the chain judges it.** An equivocation or double-vote proof must verify
  and its offence must not be recorded in the state yet, nor proved by another pending record
  (the chain records one proof per offence).
- **A duplicate is known, not an error**: `add` answers `KNOWN` for an id pending or held (and a
  local submission marks it local); a different record at a pending seq is a `CONFLICT`, one at a
  finalized seq is `FINAL`.
- **Bounded**: at most `max_records` records and `max_bytes` bytes, ready and held together. A
  ready record that does not fit evicts held ones, newest seq of the oldest held author first
  (never a local one); a ready record is never evicted. What still does not fit is refused
  (`FULL`).
- **The proposer takes ready records in arrival order** (`take`), each author's run a prefix
  of its ready run: an author's run stops at its first record stamped after
  `block_time + max_skew`, or that would pass `max_bytes`.
- **Finality prunes at once** (`on_finalized`, after the block is applied to the view): records
  the block holds leave; an author's pending records that no longer extend the new head
  (another record finalized at their seq, or a broken link), or whose evidence the block
  recorded, leave with the rest of that author's run. They are returned, so the shell can say so.
- **The node's own records** (`local=True`) are listed by `local_records()` until final or
  dropped: the shell persists them and sends them again until they are final.

Pure: no clock (`now` is an argument), no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ledger.block import Block
from ledger.errors import InvalidData
from ledger.feed import FeedHead, extend
from ledger.records import Equivocation, Record
from ledger.state import evidence_key
from ledger.vote_evidence import DoubleVote
from node.errors import NodeError

MAX_FUTURE = 4
"""Seqs past an author's next one that are held, by default."""


class LedgerView(Protocol):
    """What the mempool reads of the finalized state (`ledger.state.LedgerState` provides it)."""

    def feed_head(self, author: bytes) -> FeedHead: ...

    def get_raw(self, key: bytes) -> bytes | None: ...

    def param(self, name: str) -> int: ...


class Admitted(enum.Enum):
    """What `add` did with a record."""

    READY = "ready"
    """Pending: it extends its author's run and may go into the next block."""
    HELD = "held"
    """A future seq, held until the seqs before it arrive."""
    KNOWN = "known"
    """Already pending or held (the same id)."""


class Refusal(enum.Enum):
    """Why `add` refused a record."""

    FINAL = "final"
    """Its seq is finalized already (this record or another)."""
    CONFLICT = "conflict"
    """Another record of its author is pending or held at its seq."""
    GAP = "gap"
    """Its seq is too far past the author's next one."""
    BROKEN_LINK = "broken-link"
    """It does not extend the author's pending tail (prev or timestamp)."""
    FROM_FUTURE = "from-future"
    """Stamped more than `max_skew_ms` after this node's clock."""
    EVIDENCE = "evidence"
    """Its evidence does not verify, or its offence is recorded or pending already."""
    FULL = "full"
    """No room within the mempool's bounds."""


TRY_AGAIN = frozenset({Refusal.GAP, Refusal.FULL, Refusal.FROM_FUTURE})
"""Refusals a later try may no longer meet: a node's own record waits to be offered again, a
peer's is asked for again."""


class Refused(NodeError):  # noqa: N818 - an outcome, named for what it says
    """The mempool cannot take a record now; `reason` says why, the message names the values.
    Not a fault of the sender: in an asynchronous network records arrive out of order."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(slots=True)
class _Entry:
    record: Record
    local: bool


def _follows(head: FeedHead, record: Record) -> FeedHead:
    """The chain's feed rule without the block-time bound (`take` applies that one)."""
    return extend(head, record, reference_time=record.timestamp, max_skew=0)


def _who(record: Record) -> str:
    return f"author {record.author.hex()[:16]}"


def _head_of(record: Record) -> FeedHead:
    return FeedHead.of(record)


class Mempool:
    def __init__(
        self,
        view: Callable[[], LedgerView],
        *,
        network_id: bytes,
        max_records: int,
        max_bytes: int,
        max_future: int = MAX_FUTURE,
    ) -> None:
        """`view()` is the finalized state (called at each event: a store may replace it)."""
        if max_records < 1 or max_bytes < 1 or max_future < 0:
            raise ValueError(
                f"mempool bounds must be positive: max_records {max_records}, "
                f"max_bytes {max_bytes}, max_future {max_future}"
            )
        self._view = view
        self.network_id = network_id
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.max_future = max_future
        self._ready: dict[bytes, _Entry] = {}
        """id -> entry, in arrival order (a held record arrives when it becomes ready)."""
        self._runs: dict[bytes, list[Record]] = {}
        """author -> its ready records, seq ascending from the finalized head + 1."""
        self._held: dict[bytes, _Entry] = {}
        """id -> held entry, in arrival order."""
        self._held_at: dict[bytes, dict[int, bytes]] = {}
        """author -> seq -> id of the held record."""
        self._offences: dict[bytes, bytes] = {}
        """evidence state key -> id of the ready record that proves it."""
        self._bytes = 0

    # reading

    def __len__(self) -> int:
        return len(self._ready) + len(self._held)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._ready or record_id in self._held

    @property
    def ready(self) -> int:
        """Records a block could take now (before the time bound)."""
        return len(self._ready)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, record_id: bytes) -> Record | None:
        entry = self._ready.get(record_id) or self._held.get(record_id)
        return None if entry is None else entry.record

    def pending_of(self, author: bytes) -> tuple[Record, ...]:
        """`author`'s ready records, seq ascending from its finalized head + 1."""
        return tuple(self._runs.get(author, ()))

    def local_records(self) -> tuple[Record, ...]:
        """This node's own records not final yet: ready ones in arrival order, then held ones."""
        return tuple(e.record for e in (*self._ready.values(), *self._held.values()) if e.local)

    # events

    def add(
        self,
        record: Record,
        *,
        now: int,
        local: bool = False,
        verify: Callable[[Record], None] | None = None,
    ) -> Admitted:
        """Admit a record, or raise `Refused`. `verify` (the caller's signature check; None for
        a record checked already) runs once the record's seq and time pass (not known, final,
        conflicting, too far ahead or from the future), before the evidence it may carry is
        checked; what it raises propagates and the record is not admitted."""
        entry = self._ready.get(record.id) or self._held.get(record.id)
        if entry is not None:
            entry.local = entry.local or local
            return Admitted.KNOWN
        view = self._view()
        max_skew = view.param("max_skew_ms")
        if record.timestamp > now + max_skew:
            raise Refused(
                Refusal.FROM_FUTURE,
                f"{_who(record)} seq {record.seq}: timestamp {record.timestamp} is more than "
                f"{max_skew} ms after this node's clock {now}",
            )
        final = view.feed_head(record.author)
        run = self._runs.get(record.author, ())
        tail = _head_of(run[-1]) if run else final
        if record.seq <= final.seq:
            raise Refused(
                Refusal.FINAL,
                f"{_who(record)} seq {record.seq} is final already (head {final.seq})",
            )
        if record.seq <= tail.seq or record.seq in self._held_at.get(record.author, {}):
            raise Refused(
                Refusal.CONFLICT, f"{_who(record)} has another record at seq {record.seq}"
            )
        if record.seq > tail.seq + 1 + self.max_future:
            raise Refused(
                Refusal.GAP,
                f"{_who(record)}: seq {record.seq} is more than {self.max_future} past the next "
                f"one, {tail.seq + 1}",
            )
        if verify is not None:
            verify(record)
        self._check_evidence(record, view)
        if record.seq > tail.seq + 1:
            self._make_room(len(record.raw), evict=False)
            self._held[record.id] = _Entry(record=record, local=local)
            self._held_at.setdefault(record.author, {})[record.seq] = record.id
            self._bytes += len(record.raw)
            return Admitted.HELD
        try:
            _follows(tail, record)
        except InvalidData as e:
            raise Refused(Refusal.BROKEN_LINK, str(e)) from e
        self._make_room(len(record.raw), evict=True)
        self._make_ready(_Entry(record=record, local=local))
        self._promote(record.author, view)
        return Admitted.READY

    def take(
        self, *, max_records: int, max_bytes: int, block_time: int, max_skew: int
    ) -> list[Record]:
        """Records for the block a proposer makes at `block_time`, in arrival order, each
        author's a prefix of its run; they stay here until `on_finalized` sees them."""
        out: list[Record] = []
        size = 0
        stopped: set[bytes] = set()
        latest = block_time + max_skew
        for entry in self._ready.values():
            if len(out) >= max_records:
                break
            record = entry.record
            if record.author in stopped:
                continue
            if record.timestamp > latest or size + len(record.raw) > max_bytes:
                stopped.add(record.author)
                continue
            out.append(record)
            size += len(record.raw)
        return out

    def on_finalized(self, block: Block) -> tuple[Record, ...]:
        """`block` is final and applied to the view: drop what it holds, and return the ready
        or held records it made invalid (dropped too)."""
        view = self._view()
        final = {record.id for record in block.records}
        authors: dict[bytes, None] = {}
        for record in block.records:
            authors[record.author] = None
            key = evidence_key(record.body)
            proof = self._offences.get(key) if key is not None else None
            if proof is not None and proof != record.id:
                authors[self._ready[proof].record.author] = None
        dropped: list[Record] = []
        for author in authors:
            dropped += self._recheck(author, view, final)
        return tuple(dropped)

    # the rules

    def _check_evidence(self, record: Record, view: LedgerView) -> None:
        body = record.body
        key = evidence_key(body)
        if key is None or not isinstance(body, Equivocation | DoubleVote):
            return
        what = f"record {record.id.hex()[:16]}"
        if view.get_raw(key) is not None or key in self._offences:
            raise Refused(
                Refusal.EVIDENCE, f"{what}: its offence is recorded or proved by a pending record"
            )
        try:
            body.verify(self.network_id)
        except InvalidData as e:
            raise Refused(Refusal.EVIDENCE, f"{what}: {e}") from e

    def _evidence_ok(self, record: Record, view: LedgerView) -> bool:
        key = evidence_key(record.body)
        if key is None:
            return True
        return view.get_raw(key) is None and self._offences.get(key, record.id) == record.id

    def _make_room(self, size: int, *, evict: bool) -> None:
        while len(self) + 1 > self.max_records or self._bytes + size > self.max_bytes:
            victim = self._victim() if evict else None
            if victim is None:
                raise Refused(
                    Refusal.FULL,
                    f"the mempool holds {len(self)} records and {self._bytes} bytes (bounds "
                    f"{self.max_records} and {self.max_bytes}); no room for {size} bytes more",
                )
            self._unhold(victim)

    def _victim(self) -> bytes | None:
        """The held record to evict: the highest seq of the author held longest (not local)."""
        for entry in self._held.values():
            if not entry.local:
                author = entry.record.author
                seqs = self._held_at[author]
                for seq in sorted(seqs, reverse=True):
                    if not self._held[seqs[seq]].local:
                        return seqs[seq]
        return None

    def _make_ready(self, entry: _Entry) -> None:
        record = entry.record
        self._ready[record.id] = entry
        self._runs.setdefault(record.author, []).append(record)
        self._bytes += len(record.raw)
        key = evidence_key(record.body)
        if key is not None:
            self._offences[key] = record.id

    def _unready(self, record: Record) -> None:
        del self._ready[record.id]
        self._bytes -= len(record.raw)
        key = evidence_key(record.body)
        if key is not None and self._offences.get(key) == record.id:
            del self._offences[key]

    def _unhold(self, record_id: bytes) -> Record:
        record = self._held.pop(record_id).record
        seqs = self._held_at[record.author]
        del seqs[record.seq]
        if not seqs:
            del self._held_at[record.author]
        self._bytes -= len(record.raw)
        return record

    def _promote(
        self, author: bytes, view: LedgerView, final: frozenset[bytes] | set[bytes] = frozenset()
    ) -> list[Record]:
        """Move the held records of `author` that its run now reaches to the run, if they extend
        it; return those dropped instead (at a finalized seq and not in `final`, or not
        extending)."""
        if author not in self._held_at:
            return []
        dropped: list[Record] = []
        run = self._runs.get(author)
        tail = _head_of(run[-1]) if run else view.feed_head(author)
        while seqs := self._held_at.get(author):
            for seq in [s for s in seqs if s <= tail.seq]:
                record = self._unhold(seqs[seq])
                if record.id not in final:
                    dropped.append(record)
            record_id = self._held_at.get(author, {}).get(tail.seq + 1)
            if record_id is None:
                break
            local = self._held[record_id].local
            record = self._unhold(record_id)
            try:
                tail = _follows(tail, record)
            except InvalidData:
                dropped.append(record)
                break
            if not self._evidence_ok(record, view):
                dropped.append(record)
                break
            self._make_ready(_Entry(record=record, local=local))
        return dropped

    def _recheck(self, author: bytes, view: LedgerView, final: set[bytes]) -> list[Record]:
        """Keep the part of `author`'s run that extends its new finalized head, in place; drop
        the rest (returning what was not finalized), then promote held records. Each record of
        a run follows the one before it (checked as it joined), so only the first one left is
        checked against the head; the evidence records carry, against the new state."""
        head = view.feed_head(author)
        run = self._runs.pop(author, [])
        dropped: list[Record] = []
        start = 0
        while start < len(run) and run[start].seq <= head.seq:  # final now, or beside a final seq
            record = run[start]
            self._unready(record)
            if record.id not in final:
                dropped.append(record)
            start += 1
        keep = len(run)
        if start < keep:
            try:
                _follows(head, run[start])
            except InvalidData:
                keep = start
        if self._offences:  # some record waiting carries evidence: a block may record its offence
            keep = next(
                (i for i in range(start, keep) if not self._evidence_ok(run[i], view)), keep
            )
        for record in run[keep:]:
            self._unready(record)
            dropped.append(record)
        if start < keep:
            self._runs[author] = run[start:keep]
        return dropped + self._promote(author, view, final)
