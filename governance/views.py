"""What members read of the governance state: members, proposals, parameters and the verdict on
a record, as typed values (docs/API.md, "Governance"). Pure: a `LedgerState` in, values out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from governance.params import GOVERNANCE_PARAMS, bounds, param
from governance.rules import (
    ACTIVE,
    CONTRIBUTION,
    DELEGATORS,
    MEMBER,
    PENDING,
    PROPOSAL,
    QUEUED,
    REJECTED,
    REWARDED,
    SECOND,
    VOTE,
    power_at,
    power_now,
    supply_at,
)
from ledger.state import LedgerState

SUPPORT_NAMES = ("against", "for", "abstain")


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberView:
    key: bytes
    name: str
    balance: int
    power: int
    """Voting power now: own balance unless delegated away, plus what is delegated to it."""
    delegate: bytes | None
    frozen: bool
    delegators: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalView:
    id: bytes
    proposer: bytes
    state: str
    reason: str
    created: int
    snapshot: int
    deadline: int
    eta: int
    """Block times in ms; `eta` is 0 until the proposal is queued."""
    votes: dict[str, int]
    quorum_needed: int
    """For + Abstain power the proposal needs: quorum_bps of the supply at the snapshot."""
    quorum_reached: int
    actions: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamView:
    name: str
    value: int
    min: int
    max: int


def member(state: LedgerState, key: bytes) -> MemberView | None:
    doc = state.get(MEMBER + key)
    if doc is None:
        return None
    return MemberView(
        key=key,
        name=doc["name"],
        balance=doc["balance"],
        power=power_now(state, key),
        delegate=doc.get("delegate"),
        frozen=doc["frozen"],
        delegators=tuple(state.get(DELEGATORS + key, ())),
    )


def members(state: LedgerState) -> list[MemberView]:
    """Every member, in key order."""
    out = []
    for key, _ in state.items(MEMBER):
        view = member(state, key[len(MEMBER) :])
        if view is not None:
            out.append(view)
    return out


def member_named(state: LedgerState, name: str) -> list[MemberView]:
    """Members whose name is `name` (names are not unique: each member picks its own)."""
    return [m for m in members(state) if m.name == name]


def proposal(state: LedgerState, pid: bytes) -> ProposalView | None:
    p = state.get(PROPOSAL + pid)
    if p is None:
        return None
    supply = supply_at(state, p["snapshot"])
    needed = -(-p["quorum_bps"] * supply // 10_000)
    return ProposalView(
        id=pid,
        proposer=p["proposer"],
        state=p["state"],
        reason=p["reason"],
        created=p["created"],
        snapshot=p["snapshot"],
        deadline=p["deadline"],
        eta=p["eta"],
        votes={"for": p["for"], "against": p["against"], "abstain": p["abstain"]},
        quorum_needed=max(needed, 1),
        quorum_reached=p["for"] + p["abstain"],
        actions=tuple(dict(a) for a in p["actions"]),
    )


def proposals(state: LedgerState) -> list[ProposalView]:
    """Every proposal, oldest first."""
    out = []
    for key, _ in state.items(PROPOSAL):
        view = proposal(state, key[len(PROPOSAL) :])
        if view is not None:
            out.append(view)
    return sorted(out, key=lambda p: (p.created, p.id))


def vote_of(state: LedgerState, pid: bytes, key: bytes) -> str | None:
    """How `key` voted on proposal `pid`, if it did."""
    support = state.get(VOTE + pid + key)
    return None if support is None else SUPPORT_NAMES[support]


def power_at_snapshot(state: LedgerState, view: ProposalView, key: bytes) -> int:
    return power_at(state, key, view.snapshot)


def is_open(view: ProposalView) -> bool:
    return view.state in (PENDING, ACTIVE, QUEUED)


def params(state: LedgerState) -> list[ParamView]:
    """The governance parameters now, with the bounds the genesis set (seconds, or bps)."""
    out = []
    for name in sorted(GOVERNANCE_PARAMS):
        low, high = bounds(state, name)
        out.append(ParamView(name=name, value=param(state, name), min=low, max=high))
    return out


def rejection(state: LedgerState, record_id: bytes) -> str | None:
    """Why the rules refused a final record, or None if they accepted it."""
    reason = state.get(REJECTED + record_id)
    return None if reason is None else str(reason)


def contribution(state: LedgerState, record_id: bytes) -> dict[str, Any] | None:
    """A recorded contribution's endorsements and the proposal that rewarded it, if any."""
    doc = state.get(CONTRIBUTION + record_id)
    if doc is None:
        return None
    return {
        "author": doc["author"],
        "endorsements": doc["endorsements"],
        "rewarded_by": state.get(REWARDED + record_id),
    }


def contribution_ids(state: LedgerState) -> list[bytes]:
    return [key[len(CONTRIBUTION) :] for key, _ in state.items(CONTRIBUTION)]


def seconds(ms: int) -> int:
    return ms // SECOND
