"""The ledger's state: a key-value map under a canonical, incremental state root.

The ledger keeps the minimum it needs to judge the next block (feed heads, evidence already seen,
the validator sets of the coming heights, parameters); governance adds its own keys under its
own prefixes through `get`/`put`. Every value is canonical MessagePack, so the root is the same
on every machine. `begin`/`commit`/`rollback` let a caller try a block and undo it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ledger import codec
from ledger.errors import SchemaError
from ledger.feed import EMPTY_HEAD, FeedHead
from ledger.genesis import Genesis
from ledger.records import Equivocation
from ledger.statetree import StateTree
from ledger.validators import ValidatorSet
from ledger.vote_evidence import DoubleVote

FEED = b"feed/"
EVIDENCE = b"evidence/"
DOUBLE_VOTE = b"vote-evidence/"
PARAM = b"param/"
VALIDATORS = {
    "current": b"validators/current",  # certified the latest block
    "next": b"validators/next",  # certifies the next block
    "after": b"validators/after",  # certifies the block after that
}


class LedgerState:
    """Mutable state with an undo journal. Pure: no I/O.

    Decoded values are cached and writes are encoded lazily (once per key when the bytes are next
    needed: the root, the raw value, the end of a transaction), so a block that updates one
    proposal's tally a thousand times encodes it once. `get` hands out a copy of a map, so a
    caller's changes reach the state only through `put`.
    """

    __slots__ = ("_cache", "_journal", "_pending", "tree", "validator_change")

    def __init__(self, tree: StateTree | None = None) -> None:
        self.tree = tree if tree is not None else StateTree()
        self._journal: dict[bytes, bytes | None] | None = None  # key -> bytes before the txn
        self._pending: dict[bytes, Any] = {}  # key -> value not yet encoded (None: delete)
        self._cache: dict[bytes, Any] = {}  # key -> decoded value
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

    # access

    def get_raw(self, key: bytes) -> bytes | None:
        if key in self._pending:
            self._encode(key)
        return self.tree.get(key)

    def put_raw(self, key: bytes, value: bytes | None) -> None:
        self._touch(key)
        self._pending.pop(key, None)
        self._cache.pop(key, None)
        self.tree.set(key, value)

    def get(self, key: bytes, default: Any = None) -> Any:
        if key in self._cache:
            value = self._cache[key]
        else:
            raw = self.tree.get(key)
            if raw is None:
                return default
            value = self._cache[key] = codec.decode_own(raw)
        if value is None:
            return default
        return dict(value) if type(value) is dict else value

    def put(self, key: bytes, value: Any) -> None:
        self._touch(key)
        self._pending[key] = value
        self._cache[key] = dict(value) if type(value) is dict else value

    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Every (key, raw value) whose key starts with `prefix`, in key order."""
        self._flush()
        return self.tree.items(prefix)

    def first_difference(self, other: dict[bytes, bytes]) -> bytes | None:
        """The least key whose raw value differs between this state and `other`, else None."""
        self._flush()
        return self.tree.first_difference(other)

    def root(self) -> bytes:
        self._flush()
        return self.tree.root()

    def _touch(self, key: bytes) -> None:
        if self._journal is not None and key not in self._journal:
            if key in self._pending:
                self._encode(key)
            self._journal[key] = self.tree.get(key)

    def _encode(self, key: bytes) -> None:
        value = self._pending.pop(key)
        self.tree.set(key, None if value is None else codec.encode_own(value))

    def _flush(self) -> None:
        for key in list(self._pending):
            self._encode(key)

    # journal

    def begin(self) -> None:
        if self._journal is not None:
            raise RuntimeError("a state transaction is already open")
        self._flush()
        self._journal = {}
        self.validator_change = None

    def commit(self) -> list[bytes]:
        """Close the transaction; return the keys it changed, in the order first touched."""
        self._flush()
        journal, self._journal = self._journal or {}, None
        self._cache.clear()
        return list(journal)

    def changes(self) -> tuple[tuple[bytes, bytes | None], ...]:
        """The open transaction's changes: each key it touched, in the order first touched,
        with its raw value now (None: deleted)."""
        self._flush()
        return tuple((key, self.tree.get(key)) for key in self._journal or ())

    def replay(self, changes: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Make `changes` (as `changes()` gave them) in the open transaction."""
        for key, value in changes:
            self.put_raw(key, value)

    def rollback(self) -> None:
        journal, self._journal = self._journal or {}, None
        self._pending.clear()
        self._cache.clear()
        for key, old in journal.items():
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
        return FeedHead.trusted(seq, id_, at)  # as `set_feed_head` wrote it

    def set_feed_head(self, author: bytes, head: FeedHead) -> None:
        self.put(FEED + author, (head.seq, head.id, head.timestamp))

    def has_evidence(self, author: bytes, seq: int) -> bool:
        return self.get_raw(_equivocation_key(author, seq)) is not None

    def mark_evidence(self, author: bytes, seq: int, evidence_id: bytes) -> None:
        self.put(_equivocation_key(author, seq), evidence_id)

    def validators(self, slot: str) -> ValidatorSet:
        raw = self.get_raw(VALIDATORS[slot])
        if raw is None:
            raise SchemaError(f"the state holds no {slot} validator set")
        return _validator_set(raw)

    def set_validators(self, slot: str, validators: ValidatorSet) -> None:
        self.put(VALIDATORS[slot], validators.to_wire())


@functools.lru_cache(maxsize=16)
def _validator_set(raw: bytes) -> ValidatorSet:
    """The (immutable) validator set a state value encodes: the same few sets are asked for at
    every vote and block, so each is decoded and hashed once."""
    return ValidatorSet.from_wire(codec.decode_own(raw))


def evidence_key(body: object) -> bytes | None:
    """The state key under which a block records the offence a record's evidence `body` proves
    (one record per offence), or None when the body is not evidence."""
    if isinstance(body, Equivocation):
        return _equivocation_key(body.author, body.seq)
    if isinstance(body, DoubleVote):
        return double_vote_key(body)
    return None


def double_vote_key(evidence: DoubleVote) -> bytes:
    return (
        DOUBLE_VOTE
        + evidence.validator
        + evidence.height.to_bytes(8, "big")
        + evidence.round.to_bytes(4, "big")
        + evidence.vote_type.encode()
    )


def _equivocation_key(author: bytes, seq: int) -> bytes:
    return EVIDENCE + author + seq.to_bytes(8, "big")


Apply = Callable[[LedgerState, Any], LedgerState]
"""A state transition `apply(state, block) -> state`, run after the ledger's own updates.
It may set `state.validator_change`; it never makes a block invalid by refusing a record."""


def no_transition(state: LedgerState, block: Any) -> LedgerState:
    """The ledger alone: no governance."""
    return state
