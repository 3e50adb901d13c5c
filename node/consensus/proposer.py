"""Proposer selection: weighted round robin with priorities, as CometBFT does it (§14).

Each validator of vals(h) holds an integer priority. One *step* adds every validator's power to
its priority, selects the highest priority (ties: the smallest key) and subtracts the total power
from the selected one. The proposer of (h, r) is the validator selected by step r + 1 from the
height's *base* priorities; over any `total power` consecutive steps a validator is selected
about `power` times, never starving anyone.

base(1) is all zeros over vals(1). base(h+1) is base(h) after one step, carried over to vals(h+1):
validators that stay keep their priority, removed ones are dropped, new ones start at
-(T + T // 8) for T = total(vals(h+1)) (so a newcomer cannot propose at once); then, if the
spread max - min exceeds 2T, every priority is floor-divided by ceil(spread / 2T); finally the
floor of the mean is subtracted from each, so priorities stay small and centred on zero.
Everything is integer arithmetic in key order: every node computes the same schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.errors import SchemaError
from ledger.validators import ValidatorSet


@dataclass(frozen=True, slots=True)
class ProposerSchedule:
    """The base priorities of one height's validator set (aligned with `validators.members`)."""

    validators: ValidatorSet
    priorities: tuple[int, ...]
    _proposers: list[bytes] = field(default_factory=list, repr=False, compare=False)
    _state: list[list[int]] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.priorities) != len(self.validators.members):
            raise SchemaError(
                f"{len(self.priorities)} priorities for {len(self.validators.members)} validators"
            )

    @classmethod
    def genesis(cls, validators: ValidatorSet) -> ProposerSchedule:
        return cls(validators, (0,) * len(validators.members))

    def proposer(self, round_: int) -> bytes:
        """The key of the proposer of round `round_` at this height."""
        if round_ < 0:
            raise ValueError(f"round must be >= 0, got {round_}")
        if not self._state:
            self._state.append(list(self.priorities))
        state = self._state[0]
        members = self.validators.members
        total = self.validators.total
        while len(self._proposers) <= round_:
            chosen = _step(state, [m.power for m in members], total)
            self._proposers.append(members[chosen].key)
        return self._proposers[round_]

    def next(self, validators: ValidatorSet) -> ProposerSchedule:
        """base(h+1) from this base(h) and vals(h+1)."""
        state = list(self.priorities)
        _step(state, [v.power for v in self.validators.members], self.validators.total)
        carried = {v.key: p for v, p in zip(self.validators.members, state, strict=True)}
        total = validators.total
        newcomer = -(total + total // 8)
        priorities = [carried.get(v.key, newcomer) for v in validators.members]
        spread = max(priorities) - min(priorities)
        if spread > 2 * total:
            ratio = -(-spread // (2 * total))
            priorities = [p // ratio for p in priorities]
        mean = sum(priorities) // len(priorities)
        return ProposerSchedule(validators, tuple(p - mean for p in priorities))

    def to_wire(self) -> tuple[tuple[bytes, int, int], ...]:
        """(key, power, priority) per validator: enough to restore the schedule."""
        return tuple(
            (v.key, v.power, p)
            for v, p in zip(self.validators.members, self.priorities, strict=True)
        )

    @classmethod
    def from_wire(cls, value: object) -> ProposerSchedule:
        if type(value) is not tuple or not value:
            raise SchemaError("proposer schedule must be a non-empty list")
        pairs = []
        priorities = []
        for item in value:
            if type(item) is not tuple or len(item) != 3 or type(item[2]) is not int:
                raise SchemaError("proposer schedule entries are [key, power, priority]")
            pairs.append((item[0], item[1]))
            priorities.append(item[2])
        return cls(ValidatorSet.from_wire(tuple(pairs)), tuple(priorities))


def _step(state: list[int], powers: list[int], total: int) -> int:
    """One round-robin step on `state` in place; return the index selected."""
    best = 0
    for i, power in enumerate(powers):
        state[i] += power
        if state[i] > state[best]:  # strictly greater: ties go to the smaller key (lower index)
            best = i
    state[best] -= total
    return best
