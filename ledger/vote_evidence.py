"""Consensus votes as the ledger sees them, and the evidence record of a validator's double vote.

A validator signs two kinds of vote (docs/PROTOCOL.md §9, §14): a **prevote** signs
`{block, height, round}` under `commons/prevote/v1`, a **precommit** signs
`{at, block, height, round}` under `commons/precommit/v1` (the same bytes as
`ledger.block.Precommit`). A nil vote names 32 zero bytes. `Vote` is either, with the wire form
consensus gossips; evidence carries those exact bytes.

A **double vote** is two different votes by one validator for one (height, round, type) naming
different blocks. The `double-vote` record kind carries the pair and verifies on its own: both
parse, same validator, height, round and type, different block ids, both signatures valid under
the network id. This module imports only from the ledger and registers its kind when imported
(`ledger.records` imports it at its end).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from ledger import codec, schema
from ledger.crypto import HASH_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, Keypair, Tag, verify_tagged
from ledger.errors import EvidenceError, InvalidData, SchemaError
from ledger.records import MAX_RECORD_BYTES, register_kind

PREVOTE = "prevote"
PRECOMMIT = "precommit"
VOTE_TYPES = (PREVOTE, PRECOMMIT)
NIL = bytes(HASH_BYTES)
"""The block id of a vote for no block."""
MAX_ROUND = 2**31
"""Same bound as `ledger.block.MAX_ROUND` (a test pins it)."""
MAX_VOTE_BYTES = 256
"""Largest encoded vote; the bound checked before decoding one."""

_TAGS = {PREVOTE: Tag.PREVOTE, PRECOMMIT: Tag.PRECOMMIT}
_KEYS = {
    PREVOTE: frozenset({"type", "height", "round", "block", "validator", "sig"}),
    PRECOMMIT: frozenset({"type", "height", "round", "block", "at", "validator", "sig"}),
}


def vote_body(
    type_: str, height: int, round_: int, block_id: bytes, timestamp: int | None
) -> bytes:
    """The signed body of a vote: §9 for precommits (equal to `Precommit.signed_body`), §14 for
    prevotes."""
    m: dict[str, Any] = {"block": block_id, "height": height, "round": round_}
    if type_ == PRECOMMIT:
        m["at"] = timestamp
    return codec.encode(m)


@dataclass(frozen=True, slots=True, kw_only=True)
class Vote:
    """One validator's signed prevote or precommit. `timestamp` is set exactly for precommits.
    `raw` is the canonical wire encoding (what gossip sends and evidence carries)."""

    type: str
    height: int
    round: int
    block_id: bytes
    timestamp: int | None
    validator: bytes
    signature: bytes
    raw: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.type not in _TAGS:
            raise SchemaError(f"vote.type must be prevote or precommit, got {self.type!r}")
        schema.integer(self.height, "vote.height", 1, schema.MAX_INT)
        schema.integer(self.round, "vote.round", 0, MAX_ROUND)
        schema.fixed_bytes(self.block_id, "vote.block", HASH_BYTES)
        if self.type == PRECOMMIT:
            schema.integer(self.timestamp, "vote.at", 0, schema.MAX_INT)
        elif self.timestamp is not None:
            raise SchemaError("a prevote carries no timestamp")
        schema.fixed_bytes(self.validator, "vote.validator", PUBLIC_KEY_BYTES)
        schema.fixed_bytes(self.signature, "vote.sig", SIGNATURE_BYTES)
        object.__setattr__(self, "raw", codec.encode(self.to_wire()))

    @property
    def tag(self) -> Tag:
        return _TAGS[self.type]

    @property
    def is_nil(self) -> bool:
        return self.block_id == NIL

    def signed_body(self) -> bytes:
        return vote_body(self.type, self.height, self.round, self.block_id, self.timestamp)

    @classmethod
    def sign(
        cls,
        key: Keypair,
        network_id: bytes,
        *,
        type_: str,
        height: int,
        round_: int,
        block_id: bytes,
        timestamp: int | None = None,
    ) -> Vote:
        body = vote_body(type_, height, round_, block_id, timestamp)
        return cls(
            type=type_,
            height=height,
            round=round_,
            block_id=block_id,
            timestamp=timestamp,
            validator=key.public_key,
            signature=key.sign(_TAGS[type_], network_id, body),
        )

    def verify(self, network_id: bytes) -> None:
        """Raise SignatureError unless the validator signed this vote for this network."""
        verify_tagged(self.validator, self.tag, network_id, self.signed_body(), self.signature)

    def to_wire(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "type": self.type,
            "height": self.height,
            "round": self.round,
            "block": self.block_id,
            "validator": self.validator,
            "sig": self.signature,
        }
        if self.timestamp is not None:
            m["at"] = self.timestamp
        return m

    @classmethod
    def from_wire(cls, m: Any) -> Vote:
        if not isinstance(m, Mapping) or m.get("type") not in _KEYS:
            raise SchemaError("vote must be a map with type prevote or precommit")
        type_ = m["type"]
        schema.exact_keys(m, type_, _KEYS[type_], frozenset())
        return cls(
            type=type_,
            height=m["height"],
            round=m["round"],
            block_id=m["block"],
            timestamp=m.get("at"),
            validator=m["validator"],
            signature=m["sig"],
        )


def decode_vote(data: bytes) -> Vote:
    """Parse and schema-check one vote; does NOT check its signature (see `Vote.verify`)."""
    return Vote.from_wire(codec.decode(data, max_size=MAX_VOTE_BYTES))


@register_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class DoubleVote:
    """Proof that a validator signed two votes naming different blocks at one (height, round,
    type). `first` and `second` are the votes' exact bytes with `first < second`, so a pair has
    one encoding. Construction checks the structure; `verify` checks both signatures."""

    KIND: ClassVar[str] = "double-vote"
    MAX_BYTES: ClassVar[int] = MAX_RECORD_BYTES
    first: bytes
    second: bytes
    votes: tuple[Vote, Vote] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        a = _vote_part(self.first, "double-vote.first")
        b = _vote_part(self.second, "double-vote.second")
        if self.first >= self.second:
            raise EvidenceError("double-vote.first must sort strictly before double-vote.second")
        for what in ("validator", "type", "height", "round"):
            if getattr(a, what) != getattr(b, what):
                raise EvidenceError(f"the two votes differ in {what}: not one vote signed twice")
        if a.block_id == b.block_id:
            raise EvidenceError("the two votes name the same block: not a double vote")
        object.__setattr__(self, "votes", (a, b))

    @classmethod
    def of(cls, one: Vote, other: Vote) -> DoubleVote:
        first, second = sorted((one.raw, other.raw))
        return cls(first=first, second=second)

    @property
    def validator(self) -> bytes:
        return self.votes[0].validator

    @property
    def height(self) -> int:
        return self.votes[0].height

    @property
    def round(self) -> int:
        return self.votes[0].round

    @property
    def vote_type(self) -> str:
        return self.votes[0].type

    def verify(self, network_id: bytes) -> None:
        """Raise EvidenceError unless both votes carry valid signatures for this network."""
        for name, vote in zip(("first", "second"), self.votes, strict=True):
            try:
                vote.verify(network_id)
            except InvalidData as e:
                raise EvidenceError(f"double-vote.{name} does not verify: {e}") from e

    def to_wire(self) -> dict[str, Any]:
        return {"first": self.first, "second": self.second}

    @classmethod
    def from_wire(cls, m: Mapping[str, Any]) -> Self:
        schema.exact_keys(m, "double-vote", frozenset({"first", "second"}), frozenset())
        return cls(first=m["first"], second=m["second"])


def _vote_part(data: Any, what: str) -> Vote:
    schema.bounded_bytes(data, what, 1, MAX_VOTE_BYTES)
    try:
        return decode_vote(data)
    except InvalidData as e:
        raise EvidenceError(f"{what} is not a valid vote: {e}") from e
