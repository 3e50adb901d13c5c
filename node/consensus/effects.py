"""What the engine asks its shell to do, and the state it asks it to keep.

Every call into the engine returns a list of effects, to be performed in order:

- `Persist(state)`: make `state` durable *before performing any later effect of the same list*.
  The engine puts it first whenever the list carries a message it signed, so a validator that
  crashes and restarts from its last persisted state never signs a second, different vote.
- `Broadcast(message)`: send to every peer.
- `ScheduleTimeout(timeout, delay_ms)`: call `Engine.on_timeout(timeout)` after `delay_ms`.
- `Decide(block, commit)`: the block is final (the application already committed it).
- `Evidence(double_vote)`: a validator double-signed; the shell may submit the record.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from ledger import codec, schema
from ledger.block import MAX_ROUND, Block, Commit, decode_block
from ledger.crypto import HASH_BYTES
from ledger.errors import SchemaError
from ledger.vote_evidence import DoubleVote, Vote
from node.consensus.messages import MAX_MESSAGE_BYTES, Message, Proposal, decode_message
from node.consensus.proposer import ProposerSchedule


class Step(enum.IntEnum):
    PROPOSE = 0
    PREVOTE = 1
    PRECOMMIT = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeout:
    height: int
    round: int
    step: Step


@dataclass(frozen=True, slots=True, kw_only=True)
class PersistedState:
    """What a validator must remember across a crash: where it is, its lock and valid value,
    the height's proposer priorities, and the messages it signed at this height (to re-send,
    never to re-sign)."""

    height: int
    round: int
    step: Step
    locked_round: int
    locked_block: Block | None
    valid_round: int
    valid_block: Block | None
    schedule: ProposerSchedule
    signed: tuple[Message, ...]

    def __post_init__(self) -> None:
        schema.integer(self.height, "persisted.height", 1, schema.MAX_INT)
        schema.integer(self.round, "persisted.round", 0, MAX_ROUND)
        for name in ("locked", "valid"):
            round_, block = getattr(self, f"{name}_round"), getattr(self, f"{name}_block")
            schema.integer(round_, f"persisted.{name}_round", -1, self.round)
            if (round_ == -1) != (block is None):
                raise SchemaError(f"persisted {name} round and block must be set together")

    @property
    def locked(self) -> tuple[int, bytes]:
        """(round, block id) of the lock; (-1, 32 zero bytes) when unlocked."""
        return self.locked_round, self.locked_block.id if self.locked_block else bytes(HASH_BYTES)

    @property
    def valid(self) -> tuple[int, bytes]:
        return self.valid_round, self.valid_block.id if self.valid_block else bytes(HASH_BYTES)

    def encode(self) -> bytes:
        """Canonical bytes for a shell to write to disk."""
        m: dict[str, Any] = {
            "height": self.height,
            "round": self.round,
            "step": int(self.step),
            "locked_round": self.locked_round,
            "valid_round": self.valid_round,
            "schedule": self.schedule.to_wire(),
            "signed": tuple(message.raw for message in self.signed),
        }
        if self.locked_block is not None:
            m["locked_block"] = self.locked_block.encode()
        if self.valid_block is not None and self.valid_block.id != self.locked[1]:
            m["valid_block"] = self.valid_block.encode()  # left out when it is the locked one
        return codec.encode(m)

    @classmethod
    def decode(cls, data: bytes) -> PersistedState:
        limit = 3 * MAX_MESSAGE_BYTES
        m = codec.decode(data, max_size=limit)
        schema.exact_keys(
            m,
            "persisted state",
            frozenset(
                {"height", "round", "step", "locked_round", "valid_round", "schedule", "signed"}
            ),
            frozenset({"locked_block", "valid_block"}),
        )
        try:
            step = Step(m["step"])
            signed = tuple(decode_message(raw) for raw in m["signed"])
        except (ValueError, TypeError) as e:
            raise SchemaError(f"malformed persisted state: {e}") from e
        locked = decode_block(m["locked_block"]) if "locked_block" in m else None
        # a valid block left out is the locked one
        valid = locked if m["valid_round"] != -1 else None
        own: list[Proposal | Vote] = []
        for message in signed:
            if not isinstance(message, Proposal | Vote):
                raise SchemaError("a persisted state holds only proposals and votes")
            own.append(message)
        return cls(
            height=m["height"],
            round=m["round"],
            step=step,
            locked_round=m["locked_round"],
            locked_block=locked,
            valid_round=m["valid_round"],
            valid_block=decode_block(m["valid_block"]) if "valid_block" in m else valid,
            schedule=ProposerSchedule.from_wire(m["schedule"]),
            signed=tuple(own),
        )


@dataclass(frozen=True, slots=True)
class Persist:
    state: PersistedState


@dataclass(frozen=True, slots=True)
class Broadcast:
    message: Message


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    timeout: Timeout
    delay_ms: int


@dataclass(frozen=True, slots=True)
class Decide:
    block: Block
    commit: Commit


@dataclass(frozen=True, slots=True)
class Evidence:
    double_vote: DoubleVote


Effect = Persist | Broadcast | ScheduleTimeout | Decide | Evidence

__all__ = [
    "Broadcast",
    "Decide",
    "Effect",
    "Evidence",
    "Persist",
    "PersistedState",
    "ScheduleTimeout",
    "Step",
    "Timeout",
]
