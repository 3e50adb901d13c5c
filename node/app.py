"""The ledger as a node's consensus engine sees it: a `Store` behind the engine's `Application`.

Blocks are proposed from what the proposer takes out of the mempool, judged by the store's chain,
and committed to the store with their certificate in one transaction. Each record's signature is
checked once per node: a record verified when it arrived (its id is in `verified`) is not checked
again when a block carries it; a block's other records are checked here, strictly, before the
chain judges the block with `signatures_checked`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ledger.block import Block, Commit
from ledger.crypto import Keypair
from ledger.records import Record
from ledger.store import Store, StoreError
from ledger.validators import ValidatorSet
from node.consensus.proposer import ProposerSchedule

Take = Callable[[int], Sequence[Record]]
"""What a proposer puts in a block whose time will be the argument (ms)."""


class Verified:
    """Ids of records whose signature this node has checked, bounded (oldest forgotten first)."""

    def __init__(self, most: int = 200_000) -> None:
        self.most = most
        self._ids: dict[bytes, None] = {}

    def add(self, record_id: bytes) -> None:
        self._ids[record_id] = None
        if len(self._ids) > self.most:
            del self._ids[next(iter(self._ids))]

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._ids

    def discard(self, record_id: bytes) -> None:
        self._ids.pop(record_id, None)


class StoreApp:
    """The engine's `Application` over a store (node/consensus/engine.py)."""

    def __init__(
        self, store: Store, key: Keypair | None, take: Take, verified: Verified | None = None
    ) -> None:
        self.store = store
        self.key = key
        self.take = take
        self.verified = verified if verified is not None else Verified()

    def next_height(self) -> int:
        return self.store.tip.height + 1

    def last_commit(self) -> Commit | None:
        tip = self.store.tip.height
        return self.store.commit(tip) if tip else None

    def validators(self) -> ValidatorSet:
        return self.store.chain.state.validators("next")

    def validators_after(self) -> ValidatorSet:
        return self.store.chain.state.validators("after")

    def propose_block(self, height: int, round_: int, last_commit: Commit | None) -> Block:
        chain = self.store.chain
        proposer = self.key.public_key if self.key is not None else bytes(32)
        records = self.take(chain.next_time(last_commit))  # each verified in the mempool
        return chain.propose(
            records, proposer=proposer, last_commit=last_commit, signatures_checked=True
        )

    def validate_block(self, block: Block) -> None:
        self._check_signatures(block.records)
        self.store.chain.validate(block, signatures_checked=True)

    def commit(self, block: Block, commit: Commit) -> None:
        self._check_signatures(block.records)
        self.store.append(block, commit, signatures_checked=True)

    def _check_signatures(self, records: Sequence[Record]) -> None:
        network = self.store.genesis.network_id
        for record in records:
            if record.id not in self.verified:
                record.verify(network)
                self.verified.add(record.id)


class ScheduleReplay:
    """base(h) of a store's next height h (PROTOCOL §14, "Proposer"), replayed from the genesis
    over the validator changes its headers carry: what an engine needs to start fresh at a height
    it did not follow, after a catch-up or a restart without a usable persisted state. It
    remembers where it stopped, so each call replays only the blocks stored since the last."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._height = 0
        self._vals = store.genesis.validators
        self._schedule = ProposerSchedule.genesis(self._vals)
        self._changes: dict[int, ValidatorSet] = {}
        """Validator sets announced by a header, by the height from which they sign."""

    def at_next_height(self) -> ProposerSchedule:
        tip = self.store.tip.height
        if tip < self._height:
            raise StoreError(f"{self.store.path} went back from height {self._height} to {tip}")
        for height in range(self._height + 1, tip + 1):
            header = self.store.header(height)
            if header is None:
                raise StoreError(f"block {height} is missing from {self.store.path}")
            if header.new_validators is not None:
                self._changes[height + 2] = header.new_validators
            self._vals = self._changes.pop(height + 1, self._vals)
            self._schedule = self._schedule.next(self._vals)
        self._height = tip
        return self._schedule
