"""The ledger's state: a key-value map under a canonical, incremental state root.

The ledger keeps the minimum it needs to judge the next block (feed heads, evidence already seen,
the validator sets of the coming heights, parameters); governance adds its own keys under its
own prefixes through `get`/`put`. Every value is canonical MessagePack, so the root is the same
on every machine. `begin`/`commit`/`rollback` let a caller try a block and undo it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ledger import codec
from ledger.feed import EMPTY_HEAD, FeedHead
from ledger.genesis import Genesis
from ledger.statetree import StateTree
from ledger.validators import ValidatorSet

MAX_STATE_VALUE = 1024 * 1024

FEED = b"feed/"
EVIDENCE = b"evidence/"
PARAM = b"param/"
VALIDATORS = {
    "current": b"validators/current",  # certified the latest block
    "next": b"validators/next",  # certifies the next block
    "after": b"validators/after",  # certifies the block after that
}


class LedgerState:
    """Mutable state with an undo journal. Pure: no I/O."""

    __slots__ = ("_journal", "tree", "validator_change")

    def __init__(self, tree: StateTree | None = None) -> None:
        self.tree = tree if tree is not None else StateTree()
        self._journal: list[tuple[bytes, bytes | None]] | None = None
        self.validator_change: ValidatorSet | None = None
        """Set by a state transition that changes the validator set of two heights later."""

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> LedgerState:
        state = cls()
        for name, param in genesis.params.items():
            state.put(PARAM + name.encode(), param.value)
        for slot in VALIDATORS:
            state.set_validators(slot, genesis.validators)
        return state

    # raw access

    def get_raw(self, key: bytes) -> bytes | None:
        return self.tree.get(key)

    def put_raw(self, key: bytes, value: bytes | None) -> None:
        if self._journal is not None:
            self._journal.append((key, self.tree.get(key)))
        self.tree.set(key, value)

    def get(self, key: bytes, default: Any = None) -> Any:
        raw = self.tree.get(key)
        return default if raw is None else codec.decode(raw, max_size=MAX_STATE_VALUE)

    def put(self, key: bytes, value: Any) -> None:
        self.put_raw(key, None if value is None else codec.encode(value))

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return self.tree.items()

    def root(self) -> bytes:
        return self.tree.root()

    # journal

    def begin(self) -> None:
        if self._journal is not None:
            raise RuntimeError("a state transaction is already open")
        self._journal = []
        self.validator_change = None

    def commit(self) -> list[bytes]:
        """Close the transaction; return the keys it changed, in the order first touched."""
        journal, self._journal = self._journal or [], None
        return list(dict.fromkeys(key for key, _ in journal))

    def rollback(self) -> None:
        journal, self._journal = self._journal or [], None
        for key, old in reversed(journal):
            self.tree.set(key, old)
        self.validator_change = None

    # typed views

    def param(self, name: str) -> int:
        value = self.get(PARAM + name.encode())
        if type(value) is not int:
            raise KeyError(f"no parameter {name!r} in state")
        return value

    def feed_head(self, author: bytes) -> FeedHead:
        value = self.get(FEED + author)
        if value is None:
            return EMPTY_HEAD
        seq, id_, at = value
        return FeedHead(seq=seq, id=id_, timestamp=at)

    def set_feed_head(self, author: bytes, head: FeedHead) -> None:
        self.put(FEED + author, (head.seq, head.id, head.timestamp))

    def has_evidence(self, author: bytes, seq: int) -> bool:
        return self.get_raw(EVIDENCE + author + seq.to_bytes(8, "big")) is not None

    def mark_evidence(self, author: bytes, seq: int, evidence_id: bytes) -> None:
        self.put(EVIDENCE + author + seq.to_bytes(8, "big"), evidence_id)

    def validators(self, slot: str) -> ValidatorSet:
        return ValidatorSet.from_wire(self.get(VALIDATORS[slot]))

    def set_validators(self, slot: str, validators: ValidatorSet) -> None:
        self.put(VALIDATORS[slot], validators.to_wire())


Apply = Callable[[LedgerState, Any], LedgerState]
"""A state transition `apply(state, block) -> state`, run after the ledger's own updates.
It may set `state.validator_change`; it never makes a block invalid by refusing a record."""


def no_transition(state: LedgerState, block: Any) -> LedgerState:
    """The ledger alone: no governance."""
    return state
