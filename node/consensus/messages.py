"""Consensus messages and their one wire decoder (docs/PROTOCOL.md §14).

Four messages travel between validators, each a canonical MessagePack map with a `type`:

- `proposal`: `{block: block bytes, height, pol_round, proposer, round, sig, type}`; the proposer
  of (height, round) signs `{block: block id, height, pol_round, round}` under
  `commons/proposal/v1`. `pol_round` is -1, or the earlier round whose prevotes made the block
  valid (Algorithm 1's `validRound`).
- `prevote` / `precommit`: `ledger.vote_evidence.Vote`, the bytes a double-vote evidence carries.
- `decision`: `{block: block bytes, commit: certificate, type}`: a decided block and a certificate
  for it, sent to a peer that is behind. It needs no signature of its own: the certificate is
  the proof.
- `status`: `{height, round, type}`: where the sender stands, so a peer ahead of it can send it
  decisions. Unsigned and only advisory: a node answers it, the engine never sees it.

`decode_message` bounds the size before parsing, parses canonically, checks the schema and the
per-type size limit, and raises the ledger's `InvalidData` family for anything else. It checks no
signature: the engine does, against the validator set of the message's height.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger import codec, schema
from ledger.block import (
    MAX_BLOCK_BYTES,
    MAX_ROUND,
    Block,
    Commit,
    Known,
    Precommit,
    decode_block,
)
from ledger.crypto import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, Keypair, Tag
from ledger.errors import InvalidData, SchemaError
from ledger.validators import MAX_VALIDATORS
from ledger.vote_evidence import MAX_VOTE_BYTES, PRECOMMIT, PREVOTE, Vote

MAX_COMMIT_BYTES = MAX_VALIDATORS * 200 + 256
MAX_MESSAGE_BYTES = MAX_BLOCK_BYTES + MAX_COMMIT_BYTES + 1024
"""Bound on any consensus message, checked before parsing; votes are then held to 256 bytes."""

_PROPOSAL_KEYS = frozenset({"type", "block", "height", "pol_round", "proposer", "round", "sig"})
_DECISION_KEYS = frozenset({"type", "block", "commit"})
_STATUS_KEYS = frozenset({"type", "height", "round"})


def proposal_body(height: int, round_: int, pol_round: int, block_id: bytes) -> bytes:
    """What a proposer signs under `commons/proposal/v1`."""
    return codec.encode(
        {"block": block_id, "height": height, "pol_round": pol_round, "round": round_}
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """The proposer of (height, round) offers `block`; `pol_round` as in Algorithm 1."""

    height: int
    round: int
    pol_round: int
    block: Block
    proposer: bytes
    signature: bytes
    raw: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        schema.integer(self.height, "proposal.height", 1, schema.MAX_INT)
        schema.integer(self.round, "proposal.round", 0, MAX_ROUND)
        schema.integer(self.pol_round, "proposal.pol_round", -1, self.round - 1)
        if self.block.height != self.height:
            raise SchemaError(
                f"proposal for height {self.height} carries block {self.block.height}"
            )
        schema.fixed_bytes(self.proposer, "proposal.proposer", PUBLIC_KEY_BYTES)
        schema.fixed_bytes(self.signature, "proposal.sig", SIGNATURE_BYTES)
        raw = codec.encode(
            {
                "type": "proposal",
                "block": self.block.encode(),
                "height": self.height,
                "pol_round": self.pol_round,
                "proposer": self.proposer,
                "round": self.round,
                "sig": self.signature,
            }
        )
        object.__setattr__(self, "raw", raw)

    @property
    def block_id(self) -> bytes:
        return self.block.id

    def signed_body(self) -> bytes:
        return proposal_body(self.height, self.round, self.pol_round, self.block.id)

    @classmethod
    def sign(
        cls, key: Keypair, network_id: bytes, *, round_: int, pol_round: int, block: Block
    ) -> Proposal:
        body = proposal_body(block.height, round_, pol_round, block.id)
        return cls(
            height=block.height,
            round=round_,
            pol_round=pol_round,
            block=block,
            proposer=key.public_key,
            signature=key.sign(Tag.PROPOSAL, network_id, body),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """A decided block with a certificate for it (catch-up for a peer that is behind)."""

    block: Block
    commit: Commit
    raw: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.commit.height != self.block.height or self.commit.block_id != self.block.id:
            raise SchemaError(
                f"decision for block {self.block.height} carries a certificate for height "
                f"{self.commit.height} block {self.commit.block_id.hex()[:16]}"
            )
        raw = codec.encode(
            {"type": "decision", "block": self.block.encode(), "commit": self.commit.to_wire()}
        )
        object.__setattr__(self, "raw", raw)

    @property
    def height(self) -> int:
        return self.block.height


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """Where a node stands (gossip: lets peers ahead of it send decisions)."""

    height: int
    round: int
    raw: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        schema.integer(self.height, "status.height", 1, schema.MAX_INT)
        schema.integer(self.round, "status.round", 0, MAX_ROUND)
        raw = codec.encode({"type": "status", "height": self.height, "round": self.round})
        object.__setattr__(self, "raw", raw)


Message = Proposal | Vote | Decision
"""What the engine consumes."""
WireMessage = Message | Status


def encode_message(message: WireMessage) -> bytes:
    return message.raw


def decode_message(data: bytes, known: Known | None = None) -> WireMessage:
    """The one decoder of consensus messages. Raises InvalidData (DecodeError, SchemaError).
    `known(id)` may give records parsed before, which a block's records then reuse."""
    m = codec.decode(data, max_size=MAX_MESSAGE_BYTES)
    if not isinstance(m, dict):
        raise SchemaError("a consensus message must be a map")
    kind = m.get("type")
    try:
        if kind in (PREVOTE, PRECOMMIT):
            if len(data) > MAX_VOTE_BYTES:
                raise SchemaError(f"{kind} of {len(data)} bytes exceeds {MAX_VOTE_BYTES}")
            return Vote.from_wire(m)
        if kind == "proposal":
            schema.exact_keys(m, "proposal", _PROPOSAL_KEYS, frozenset())
            return Proposal(
                height=m["height"],
                round=m["round"],
                pol_round=m["pol_round"],
                block=decode_block(
                    schema.bounded_bytes(m["block"], "block", 1, MAX_BLOCK_BYTES), known
                ),
                proposer=m["proposer"],
                signature=m["sig"],
            )
        if kind == "status":
            if len(data) > MAX_VOTE_BYTES:
                raise SchemaError(f"status of {len(data)} bytes exceeds {MAX_VOTE_BYTES}")
            schema.exact_keys(m, "status", _STATUS_KEYS, frozenset())
            return Status(height=m["height"], round=m["round"])
        if kind == "decision":
            schema.exact_keys(m, "decision", _DECISION_KEYS, frozenset())
            return Decision(
                block=decode_block(
                    schema.bounded_bytes(m["block"], "block", 1, MAX_BLOCK_BYTES), known
                ),
                commit=Commit.from_wire(m["commit"]),
            )
    except InvalidData:
        raise
    except (TypeError, ValueError, KeyError) as e:  # a field of the wrong shape
        raise SchemaError(f"malformed {kind} message: {e!r}") from e
    raise SchemaError(f"unknown consensus message type {kind!r}")


def precommit_of(vote: Vote) -> Precommit:
    """A precommit vote as the ledger's certificates hold it (same signed bytes)."""
    if vote.type != PRECOMMIT or vote.timestamp is None:
        raise ValueError("only a precommit vote belongs in a certificate")
    return Precommit(
        height=vote.height,
        round=vote.round,
        block_id=vote.block_id,
        timestamp=vote.timestamp,
        validator=vote.validator,
        signature=vote.signature,
    )
