"""Validator sets: who certifies blocks at a height, with what voting power, and the 2/3 rule."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger import codec, schema
from ledger.crypto import PUBLIC_KEY_BYTES, sha256
from ledger.errors import SchemaError

MAX_VALIDATORS = 256
MAX_TOTAL_POWER = 2**53 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Validator:
    key: bytes
    power: int

    def __post_init__(self) -> None:
        schema.fixed_bytes(self.key, "validator.key", PUBLIC_KEY_BYTES)
        schema.integer(self.power, "validator.power", 1, MAX_TOTAL_POWER)


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    """A non-empty set of validators, sorted by key, keys distinct."""

    members: tuple[Validator, ...]
    total: int = field(init=False)
    hash: bytes = field(init=False, repr=False)
    _power: dict[bytes, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.members:
            raise SchemaError("a validator set cannot be empty")
        if len(self.members) > MAX_VALIDATORS:
            raise SchemaError(f"at most {MAX_VALIDATORS} validators, got {len(self.members)}")
        keys = [v.key for v in self.members]
        if keys != sorted(set(keys)):
            raise SchemaError("validators must be sorted by key and distinct")
        total = sum(v.power for v in self.members)
        if total > MAX_TOTAL_POWER:
            raise SchemaError(f"total voting power {total} exceeds {MAX_TOTAL_POWER}")
        object.__setattr__(self, "total", total)
        object.__setattr__(self, "hash", sha256(codec.encode(self.to_wire())))
        object.__setattr__(self, "_power", {v.key: v.power for v in self.members})

    @classmethod
    def of(cls, powers: Mapping[bytes, int] | Iterable[tuple[bytes, int]]) -> ValidatorSet:
        pairs = powers.items() if isinstance(powers, Mapping) else powers
        return cls(tuple(Validator(key=k, power=p) for k, p in sorted(pairs)))

    def power(self, key: bytes) -> int:
        """The voting power of `key`; 0 if it is not in the set."""
        return self._power.get(key, 0)

    def has_quorum(self, power: int) -> bool:
        """More than two thirds of the total voting power."""
        return 3 * power > 2 * self.total

    def to_wire(self) -> tuple[tuple[bytes, int], ...]:
        return tuple((v.key, v.power) for v in self.members)

    @classmethod
    def from_wire(cls, value: Any) -> ValidatorSet:
        if type(value) is not tuple:
            raise SchemaError("validator set must be a list")
        members = []
        for item in value:
            if type(item) is not tuple or len(item) != 2:
                raise SchemaError("validator entry must be [key, power]")
            members.append(Validator(key=item[0], power=item[1]))
        return cls(tuple(members))
