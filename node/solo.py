"""A block maker for a validator that holds more than 2/3 of the power on its own (one validator
is a valid Commons network).

`SoloValidator` takes records, proposes the next block on its store's tip, certifies it with its
own precommit and stores block and certificate together. It is what `commons demo`, the
benchmarks and the governance dry runs use, and the seam where the BFT engine's multi-validator
driver takes over. Time is an argument: the caller says when each precommit is signed.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.block import Block, Commit
from ledger.chain import certify
from ledger.crypto import Keypair
from ledger.records import Record
from ledger.store import Store


class SoloValidator:
    def __init__(self, store: Store, key: Keypair) -> None:
        validators = store.chain.state.validators("next")
        if not validators.has_quorum(validators.power(key.public_key)):
            raise ValueError("a solo validator must hold more than 2/3 of the voting power")
        self.store = store
        self.key = key
        self.last_commit: Commit | None = (
            store.commit(store.tip.height) if store.tip.height else None
        )

    def make_block(self, records: Sequence[Record], *, commit_time: int) -> Block:
        """Propose, certify at `commit_time` (ms, after the block's own time), and store a block."""
        block = self.store.chain.propose(
            records, proposer=self.key.public_key, last_commit=self.last_commit
        )
        commit = certify(block, self.store.genesis.network_id, [self.key], timestamp=commit_time)
        self.store.append(block, commit, signatures_checked=False)
        self.last_commit = commit
        return block
