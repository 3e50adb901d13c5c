"""Block makers for validators whose keys this process holds (one validator is a valid Commons
network; the governance dry runs hold every validator's key).

`LocalValidators` takes records, proposes the next block on its store's tip from the most
powerful held validator of the height, certifies it with the precommits of every held validator
of the height, and stores block and certificate together; `Store.append` refuses a certificate
without more than 2/3 of the power. It is what `commons demo`, the benchmarks and the governance
dry runs use, and the seam where the BFT engine's networked driver takes over. Time is an
argument: the caller says when the precommits are signed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ledger.block import Block, Commit
from ledger.chain import certify
from ledger.crypto import Keypair
from ledger.records import Record
from ledger.store import Store


class LocalValidators:
    def __init__(self, store: Store, keys: Iterable[Keypair]) -> None:
        self.store = store
        self.keys: dict[bytes, Keypair] = {}
        for key in keys:
            self.add(key)
        self.last_commit: Commit | None = (
            store.commit(store.tip.height) if store.tip.height else None
        )

    def add(self, key: Keypair) -> None:
        """Hold one more validator key (one that a validator change may bring in)."""
        self.keys[key.public_key] = key

    def make_block(self, records: Sequence[Record], *, commit_time: int) -> Block:
        """Propose, certify at `commit_time` (ms, after the block's own time), and store a block."""
        validators = self.store.chain.state.validators("next")
        held = [v for v in validators.members if v.key in self.keys]
        if not held:
            raise ValueError("none of the held keys is a validator of the next height")
        proposer = max(held, key=lambda v: (v.power, v.key)).key
        block = self.store.chain.propose(records, proposer=proposer, last_commit=self.last_commit)
        signers = [self.keys[v.key] for v in held]
        commit = certify(block, self.store.genesis.network_id, signers, timestamp=commit_time)
        self.store.append(block, commit, signatures_checked=False)
        self.last_commit = commit
        return block


class SoloValidator(LocalValidators):
    """One validator that holds more than 2/3 of the voting power on its own."""

    def __init__(self, store: Store, key: Keypair) -> None:
        validators = store.chain.state.validators("next")
        if not validators.has_quorum(validators.power(key.public_key)):
            raise ValueError("a solo validator must hold more than 2/3 of the voting power")
        super().__init__(store, [key])
