"""The record kinds governance interprets: proposal, vote, delegation, transfer, cancel.

Their schemas belong to the ledger, so that block validity (canonical, signed, schema-valid) never
depends on governance; what they *mean* — and whether the rules accept them — is governance's.
Limits are in docs/PROTOCOL.md §4.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from ledger import schema
from ledger.crypto import HASH_BYTES, PUBLIC_KEY_BYTES
from ledger.errors import SchemaError
from ledger.records import MAX_RECORD_BYTES, WireBody, fields_of, register_kind, wire_of

MAX_ACTIONS = 16
MAX_VALIDATOR_CHANGES = 32
SUPPORT = {"against": 0, "for": 1, "abstain": 2}
"""Vote choices, numbered as the Governor model numbers them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reward:
    """Mint `amount` tokens to member `to`, optionally for a recorded contribution of theirs."""

    TYPE: ClassVar[str] = "reward"
    to: bytes
    amount: int
    contribution: bytes | None = None

    def __post_init__(self) -> None:
        schema.fixed_bytes(self.to, "reward.to", PUBLIC_KEY_BYTES)
        schema.integer(self.amount, "reward.amount", 1, schema.MAX_INT)
        if self.contribution is not None:
            schema.fixed_bytes(self.contribution, "reward.contribution", HASH_BYTES)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetParam:
    TYPE: ClassVar[str] = "set_param"
    name: str
    value: int

    def __post_init__(self) -> None:
        schema.text(self.name, "set_param.name", 1, 64)
        schema.integer(self.value, "set_param.value", -schema.MAX_INT, schema.MAX_INT)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeValidators:
    """New powers for some validators (0 removes one); the rest keep theirs."""

    TYPE: ClassVar[str] = "change_validators"
    changes: tuple[tuple[bytes, int], ...]

    def __post_init__(self) -> None:
        if type(self.changes) is not tuple or not 1 <= len(self.changes) <= MAX_VALIDATOR_CHANGES:
            raise SchemaError(f"change_validators.changes must hold 1..{MAX_VALIDATOR_CHANGES}")
        keys = []
        for item in self.changes:
            if type(item) is not tuple or len(item) != 2:
                raise SchemaError("change_validators.changes items must be [key, power]")
            keys.append(schema.fixed_bytes(item[0], "change_validators.key", PUBLIC_KEY_BYTES))
            schema.integer(item[1], "change_validators.power", 0, schema.MAX_INT)
        if keys != sorted(set(keys)):
            raise SchemaError("change_validators.changes must be sorted by key and distinct")


@dataclass(frozen=True, slots=True, kw_only=True)
class Freeze:
    TYPE: ClassVar[str] = "freeze"
    member: bytes

    def __post_init__(self) -> None:
        schema.fixed_bytes(self.member, "freeze.member", PUBLIC_KEY_BYTES)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reinstate:
    TYPE: ClassVar[str] = "reinstate"
    member: bytes

    def __post_init__(self) -> None:
        schema.fixed_bytes(self.member, "reinstate.member", PUBLIC_KEY_BYTES)


@dataclass(frozen=True, slots=True, kw_only=True)
class Text:
    """A signal-only proposal: its text is the proposal's description."""

    TYPE: ClassVar[str] = "text"


Action = Reward | SetParam | ChangeValidators | Freeze | Reinstate | Text
ACTIONS: dict[str, type[Action]] = {
    cls.TYPE: cls for cls in (Reward, SetParam, ChangeValidators, Freeze, Reinstate, Text)
}
_ACTION_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "reward": (("to", "amount"), ("contribution",)),
    "set_param": (("name", "value"), ()),
    "change_validators": (("changes",), ()),
    "freeze": (("member",), ()),
    "reinstate": (("member",), ()),
    "text": ((), ()),
}


def action_to_wire(action: Action) -> dict[str, Any]:
    required, optional = _ACTION_FIELDS[action.TYPE]
    return {"type": action.TYPE, **wire_of(action, required, optional)}


def action_from_wire(m: Any) -> Action:
    if not isinstance(m, Mapping) or m.get("type") not in ACTIONS:
        raise SchemaError(f"unknown action {m.get('type') if isinstance(m, Mapping) else m!r}")
    required, optional = _ACTION_FIELDS[m["type"]]
    fields = fields_of(m, f"action {m['type']}", ("type", *required), optional)
    del fields["type"]
    return ACTIONS[m["type"]](**fields)


@register_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    KIND: ClassVar[str] = "proposal"
    MAX_BYTES: ClassVar[int] = MAX_RECORD_BYTES
    title: str
    description: str = ""
    actions: tuple[Action, ...]

    def __post_init__(self) -> None:
        schema.text(self.title, "proposal.title", 1, 200)
        schema.text(self.description, "proposal.description", 0, 4096, multiline=True)
        if type(self.actions) is not tuple or not 1 <= len(self.actions) <= MAX_ACTIONS:
            raise SchemaError(f"proposal.actions must hold 1..{MAX_ACTIONS} actions")
        for action in self.actions:
            if type(action) not in ACTIONS.values():
                raise SchemaError(f"proposal.actions holds a {type(action).__name__}")

    def to_wire(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "description": self.description,
            "actions": tuple(action_to_wire(a) for a in self.actions),
        }

    @classmethod
    def from_wire(cls, m: Mapping[str, Any]) -> Self:
        fields = fields_of(m, "proposal", ("title", "description", "actions"))
        if type(fields["actions"]) is not tuple:
            raise SchemaError("proposal.actions must be a list")
        fields["actions"] = tuple(action_from_wire(a) for a in fields["actions"])
        return cls(**fields)


@register_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class Vote(WireBody):
    KIND: ClassVar[str] = "vote"
    MAX_BYTES: ClassVar[int] = MAX_RECORD_BYTES
    FIELDS: ClassVar[tuple[str, ...]] = ("proposal", "support", "reason")
    proposal: bytes
    support: int
    reason: str = ""

    def __post_init__(self) -> None:
        schema.fixed_bytes(self.proposal, "vote.proposal", HASH_BYTES)
        schema.integer(self.support, "vote.support", 0, 2)
        schema.text(self.reason, "vote.reason", 0, 1024, multiline=True)


@register_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class Delegation(WireBody):
    """Delegate the author's voting power to `to`; `to` = the author takes it back."""

    KIND: ClassVar[str] = "delegation"
    MAX_BYTES: ClassVar[int] = MAX_RECORD_BYTES
    FIELDS: ClassVar[tuple[str, ...]] = ("to",)
    to: bytes

    def __post_init__(self) -> None:
        schema.fixed_bytes(self.to, "delegation.to", PUBLIC_KEY_BYTES)


@register_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer(WireBody):
    KIND: ClassVar[str] = "transfer"
    MAX_BYTES: ClassVar[int] = MAX_RECORD_BYTES
    FIELDS: ClassVar[tuple[str, ...]] = ("to", "amount")
    to: bytes
    amount: int

    def __post_init__(self) -> None:
        schema.fixed_bytes(self.to, "transfer.to", PUBLIC_KEY_BYTES)
        schema.integer(self.amount, "transfer.amount", 1, schema.MAX_INT)


@register_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel(WireBody):
    """The proposer withdraws a proposal that is still Pending."""

    KIND: ClassVar[str] = "cancel"
    MAX_BYTES: ClassVar[int] = MAX_RECORD_BYTES
    FIELDS: ClassVar[tuple[str, ...]] = ("proposal",)
    proposal: bytes

    def __post_init__(self) -> None:
        schema.fixed_bytes(self.proposal, "cancel.proposal", HASH_BYTES)
