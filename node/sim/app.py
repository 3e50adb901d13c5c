"""The application each simulated validator runs: a real `ledger.chain.Chain` behind the engine's
`Application` interface, plus the decided blocks and certificates (a node's block store).

Judging a block is deterministic in (the chain's tip, the block): every node whose tip has the
same id holds the same state, so the simulator shares one verdict cache among its nodes. That is
a saving of the simulation only; each node still appends every block to its own chain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ledger.block import Block, Commit
from ledger.chain import Chain
from ledger.crypto import Keypair
from ledger.errors import InvalidData
from ledger.genesis import Genesis
from ledger.records import Record
from ledger.state import Apply, no_transition
from ledger.validators import ValidatorSet

Verdicts = dict[tuple[bytes, bytes], InvalidData | None]
"""(tip block id, block id) -> None when the block is valid there, else the error."""


class ChainApp:
    def __init__(
        self,
        genesis: Genesis,
        key: Keypair,
        *,
        apply: Apply = no_transition,
        verdicts: Verdicts | None = None,
    ) -> None:
        self.chain = Chain(genesis, apply=apply)
        self.key = key
        self.take: Callable[[int], Sequence[Record]] = lambda time: ()
        """What a proposal carries, for a block of this time (ms): the node's mempool."""
        self.decided: list[tuple[Block, Commit]] = []
        """(block, certificate) of heights 1, 2, ... as this node decided them."""
        self.validator_sets: list[ValidatorSet] = []
        """vals(h) of each decided height h (index h - 1)."""
        self._verdicts: Verdicts = verdicts if verdicts is not None else {}

    # the engine's Application

    def next_height(self) -> int:
        return self.chain.tip.height + 1

    def last_commit(self) -> Commit | None:
        return self.decided[-1][1] if self.decided else None

    def validators(self) -> ValidatorSet:
        return self.chain.state.validators("next")

    def validators_after(self) -> ValidatorSet:
        return self.chain.state.validators("after")

    def propose_block(
        self,
        height: int,
        round_: int,
        last_commit: Commit | None,
        records: Sequence[Record] | None = None,
    ) -> Block:
        if records is None:  # what the mempool gives, for the time the block will have
            records = self.take(self.chain.next_time(last_commit))
        return self.chain.propose(records, proposer=self.key.public_key, last_commit=last_commit)

    def validate_block(self, block: Block) -> None:
        key = (self.chain.tip.block_id, block.id)
        if key not in self._verdicts:
            try:
                self.chain.validate(block)
                self._verdicts[key] = None
            except InvalidData as e:
                self._verdicts[key] = e
        error = self._verdicts[key]
        if error is not None:
            raise error

    def commit(self, block: Block, commit: Commit) -> None:
        vals = self.validators()
        # the engine decides only blocks it judged valid on this tip: signatures are checked
        self.chain.append(block, signatures_checked=True)
        self.decided.append((block, commit))
        self.validator_sets.append(vals)

    @property
    def height(self) -> int:
        return self.chain.tip.height
