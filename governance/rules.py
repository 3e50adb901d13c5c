"""The governance state machine: `Governance(genesis)` is the transition `apply(state, block)`.

Pure and deterministic: no I/O, no clock but the block's time, no iteration whose order depends
on hashing. Everything it keeps lives in the ledger state under `gov/` (so the state root commits
to every balance, delegation, power checkpoint, proposal, tally, outcome and refused record):

    gov/member/<key>        {name, balance, delegate?, frozen, live}
    gov/delegators/<key>    [keys that delegate to <key>], sorted
    gov/power/<key>         [[time, power], ...]  voting-power checkpoints
    gov/supply              [[time, supply], ...] eligible supply (frozen balances excluded)
    gov/proposal/<id>       the proposal with its fixed parameters, tallies, state
    gov/open                [[id, due], ...] proposals not yet final, by id; due = the first
                            block time at which the proposal can change state
    gov/vote/<id><key>      support (0 against, 1 for, 2 abstain)
    gov/contribution/<id>   {author, endorsements}
    gov/endorsed/<id><key>  1
    gov/rewarded/<id>       the id of the proposal that rewarded the contribution
    gov/rejected/<id>       why the rules refused the record
    gov/bounds/<name>       [min, max] of a parameter, from the genesis

`apply` first advances every open proposal to the block's time (close, queue, execute — in id
order), then applies the block's records in order. A record the rules refuse is recorded with its
reason; it never makes a block invalid. Times are block times in ms; parameters are seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from governance.params import GOVERNANCE_PARAMS, PARAM_BOUNDS, bounds, param
from ledger.block import Block
from ledger.genesis import Genesis
from ledger.kinds_governance import (
    Cancel,
    ChangeValidators,
    Delegation,
    Freeze,
    Proposal,
    Reinstate,
    Reward,
    SetParam,
    Transfer,
    Vote,
    action_from_wire,
    action_to_wire,
)
from ledger.records import Contribution, Endorsement, Identity, Record
from ledger.state import PARAM, LedgerState
from ledger.validators import MAX_TOTAL_POWER, MAX_VALIDATORS, ValidatorSet

READY = b"gov/ready"
MEMBER = b"gov/member/"
DELEGATORS = b"gov/delegators/"
POWER = b"gov/power/"
SUPPLY = b"gov/supply"
PROPOSAL = b"gov/proposal/"
OPEN = b"gov/open"
VOTE = b"gov/vote/"
CONTRIBUTION = b"gov/contribution/"
ENDORSED = b"gov/endorsed/"
REWARDED = b"gov/rewarded/"
REJECTED = b"gov/rejected/"

PENDING, ACTIVE, CANCELED = "Pending", "Active", "Canceled"
DEFEATED, SUCCEEDED, QUEUED = "Defeated", "Succeeded", "Queued"
EXECUTED, FAILED = "Executed", "Failed"
SECOND = 1000


class Refused(Exception):  # noqa: N818 - a rule's verdict, not a fault
    """A rule refused a record or an action; the message is the reason kept in the state."""


@dataclass(frozen=True, slots=True)
class Event:
    """Something the rules did, for timelines: (what, subject id, detail)."""

    what: str
    subject: bytes
    detail: str


class Governance:
    """The transition. `events` lists what the last `apply` did, for people watching: the last
    block executed, which for a block judged before it is appended (ledger/chain.py) is the
    judging, as `append` replays its changes without executing it again."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.events: list[Event] = []

    def __call__(self, state: LedgerState, block: Any) -> LedgerState:
        return self.apply(state, block)

    def apply(self, state: LedgerState, block: Block) -> LedgerState:
        self.events = []
        if state.get_raw(READY) is None:
            self.start(state)
        now = block.header.time
        for pid, due in state.get(OPEN, ()):
            if due <= now:
                self._advance(state, pid, now)
        for record in block.records:
            try:
                self._record(state, record, now)
            except Refused as e:
                state.put(REJECTED + record.id, str(e))
                self.events.append(Event("rejected", record.id, str(e)))
        return state

    # genesis

    def start(self, state: LedgerState) -> None:
        """Write what the genesis gives governance (PROTOCOL §15.2 step 1): the first block does."""
        genesis = self.genesis
        state.put_raw(READY, b"\x01")
        for name, p in genesis.params.items():
            state.put(PARAM_BOUNDS + name.encode(), (p.min, p.max))
        for name, p in GOVERNANCE_PARAMS.items():
            if name not in genesis.params:
                state.put(PARAM + name.encode(), p.value)
        supply = 0
        for member in genesis.members:
            state.put(
                MEMBER + member.key,
                {"name": member.name, "balance": member.tokens, "frozen": False, "live": 0},
            )
            if member.tokens:
                state.put(POWER + member.key, ((genesis.time, member.tokens),))
            supply += member.tokens
        state.put(SUPPLY, ((genesis.time, supply),))

    # proposals over time

    def _advance(self, state: LedgerState, pid: bytes, now: int) -> None:
        p = state.get(PROPOSAL + pid)
        before = p["state"]
        if p["state"] == PENDING and now > p["snapshot"]:
            p["state"] = ACTIVE
        if p["state"] == ACTIVE and now > p["deadline"]:
            self._leave_live(state, p["proposer"])
            if not _quorum(state, p):
                p["state"], p["reason"] = DEFEATED, "quorum not reached"
            elif p["for"] <= p["against"]:
                p["state"], p["reason"] = DEFEATED, "For did not exceed Against"
            else:
                p["state"], p["eta"] = QUEUED, p["deadline"] + p["timelock"] * SECOND
                self.events.append(Event("state", pid, SUCCEEDED))
        if p["state"] == QUEUED and now >= p["eta"]:
            try:
                self._execute(state, pid, [action_from_wire(a) for a in p["actions"]], now)
                p["state"] = EXECUTED
            except Refused as e:
                p["state"], p["reason"] = FAILED, str(e)
        if p["state"] != before:
            state.put(PROPOSAL + pid, p)
            _set_due(state, pid, p)
            detail = p["state"] + (f" ({p['reason']})" if p.get("reason") else "")
            self.events.append(Event("state", pid, detail))

    def _leave_live(self, state: LedgerState, proposer: bytes) -> None:
        member = state.get(MEMBER + proposer)
        member["live"] -= 1
        state.put(MEMBER + proposer, member)

    # records

    def _record(self, state: LedgerState, record: Record, now: int) -> None:
        body = record.body
        author = record.author
        if isinstance(body, Identity):
            member = state.get(MEMBER + author)
            if member is None:
                member = {"name": body.name, "balance": 0, "frozen": False, "live": 0}
            member["name"] = body.name
            state.put(MEMBER + author, member)
        elif isinstance(body, Contribution):
            state.put(CONTRIBUTION + record.id, {"author": author, "endorsements": 0})
        elif isinstance(body, Endorsement):
            self._endorse(state, author, body)
        elif isinstance(body, Proposal):
            self._propose(state, record, body, now)
        elif isinstance(body, Vote):
            self._vote(state, author, body, now)
        elif isinstance(body, Delegation):
            self._delegate(state, author, body.to, now)
        elif isinstance(body, Transfer):
            self._transfer(state, author, body, now)
        elif isinstance(body, Cancel):
            self._cancel(state, author, body.proposal)

    def _endorse(self, state: LedgerState, author: bytes, body: Endorsement) -> None:
        _active_member(state, author)
        contribution = state.get(CONTRIBUTION + body.contribution)
        if contribution is None:
            raise Refused(f"no contribution {body.contribution.hex()[:16]} to endorse")
        if contribution["author"] == author:
            raise Refused("members cannot endorse their own contribution")
        key = ENDORSED + body.contribution + author
        if state.get_raw(key) is not None:
            raise Refused("this member already endorsed that contribution")
        state.put(key, 1)
        contribution["endorsements"] += 1
        state.put(CONTRIBUTION + body.contribution, contribution)

    def _propose(self, state: LedgerState, record: Record, body: Proposal, now: int) -> None:
        member = _active_member(state, record.author)
        threshold = param(state, "proposal_threshold")
        power = power_now(state, record.author)
        if power < threshold:
            raise Refused(f"proposing needs voting power {threshold}, the proposer has {power}")
        most = param(state, "max_live_proposals")
        if member["live"] >= most:
            raise Refused(f"the proposer already has {most} live proposals")
        self._check_actions(state, body.actions, at_creation=True)
        snapshot = now + param(state, "voting_delay") * SECOND
        proposal = {
            "proposer": record.author,
            "created": now,
            "snapshot": snapshot,
            "deadline": snapshot + param(state, "voting_period") * SECOND,
            "extended": False,
            "extension": param(state, "late_quorum_extension"),
            "quorum_bps": param(state, "quorum_bps"),
            "timelock": param(state, "timelock"),
            "for": 0,
            "against": 0,
            "abstain": 0,
            "state": PENDING,
            "eta": 0,
            "reason": "",
            "actions": tuple(action_to_wire(a) for a in body.actions),
        }
        state.put(PROPOSAL + record.id, proposal)
        _set_due(state, record.id, proposal)
        member["live"] += 1
        state.put(MEMBER + record.author, member)
        self.events.append(Event("state", record.id, PENDING))

    def _vote(self, state: LedgerState, author: bytes, body: Vote, now: int) -> None:
        _active_member(state, author)
        p = state.get(PROPOSAL + body.proposal)
        if p is None:
            raise Refused(f"no proposal {body.proposal.hex()[:16]}")
        if p["state"] == PENDING:
            raise Refused(f"voting opens after the snapshot at {p['snapshot'] // SECOND}s")
        if p["state"] != ACTIVE:
            raise Refused(f"voting has closed (the proposal is {p['state']})")
        key = VOTE + body.proposal + author
        if state.get_raw(key) is not None:
            raise Refused("this member already voted on that proposal")
        weight = power_at(state, author, p["snapshot"])
        if weight == 0:
            raise Refused("the voter had no voting power at the snapshot")
        state.put(key, body.support)
        had_quorum = _quorum(state, p)
        p[("against", "for", "abstain")[body.support]] += weight
        if not had_quorum and _quorum(state, p) and not p["extended"]:
            p["extended"] = True
            p["deadline"] = max(p["deadline"], now + p["extension"] * SECOND)
            _set_due(state, body.proposal, p)
        state.put(PROPOSAL + body.proposal, p)

    def _delegate(self, state: LedgerState, author: bytes, to: bytes, now: int) -> None:
        member = _active_member(state, author)
        if to != author:
            _active_member(state, to)
        old = member.get("delegate", author)
        if old == to:
            return
        _set_delegate(state, author, member, None if to == author else to)
        _checkpoint(state, (author, old, to), now, 0)

    def _transfer(self, state: LedgerState, author: bytes, body: Transfer, now: int) -> None:
        if param(state, "transferable") != 1:
            raise Refused("tokens are not transferable")
        sender = _active_member(state, author)
        receiver = _active_member(state, body.to)
        if body.to == author:
            raise Refused("a transfer needs another member")
        if sender["balance"] < body.amount:
            raise Refused(f"balance {sender['balance']} is less than {body.amount}")
        sender["balance"] -= body.amount
        receiver["balance"] += body.amount
        state.put(MEMBER + author, sender)
        state.put(MEMBER + body.to, receiver)
        _checkpoint(state, (author, body.to), now, 0)

    def _cancel(self, state: LedgerState, author: bytes, pid: bytes) -> None:
        _active_member(state, author)
        p = state.get(PROPOSAL + pid)
        if p is None:
            raise Refused(f"no proposal {pid.hex()[:16]}")
        if p["proposer"] != author:
            raise Refused("only the proposer may cancel a proposal")
        if p["state"] != PENDING:
            raise Refused(f"only a Pending proposal can be canceled; it is {p['state']}")
        p["state"] = CANCELED
        state.put(PROPOSAL + pid, p)
        _set_due(state, pid, p)
        self._leave_live(state, author)
        self.events.append(Event("state", pid, CANCELED))

    # actions

    def _check_actions(
        self, state: LedgerState, actions: Iterable[Any], *, at_creation: bool
    ) -> ValidatorSet | None:
        """Raise Refused unless the actions, applied in order, can all apply; return the validator
        set they lead to, if they change it. Each action is judged on the state as the earlier
        actions of the proposal leave it (a member frozen by action 1 cannot be rewarded by
        action 2). At creation, what may change before execution (frozen members, the supply)
        is left for execution to judge."""
        minted = 0
        cited: set[bytes] = set()
        frozen: dict[bytes, bool] = {}  # members whose frozen state the actions change
        validators: ValidatorSet | None = None
        base = state.validator_change or state.validators("after")
        for action in actions:
            if isinstance(action, Reward):
                recipient = state.get(MEMBER + action.to)
                if recipient is None:
                    raise Refused(f"reward to {action.to.hex()[:16]}, who is not a member")
                if not at_creation and frozen.get(action.to, recipient["frozen"]):
                    raise Refused(f"reward to {recipient['name']}, who is frozen")
                if action.contribution is not None:
                    _check_rewardable(state, action, cited)
                minted += action.amount
            elif isinstance(action, SetParam):
                if action.name not in GOVERNANCE_PARAMS:
                    # Ledger parameters (block validity) stay as the genesis fixed them.
                    raise Refused(f"no governance parameter {action.name}")
                low, high = bounds(state, action.name)
                if not low <= action.value <= high:
                    raise Refused(
                        f"{action.name} = {action.value} is outside its bounds {low}..{high}"
                    )
            elif isinstance(action, Freeze | Reinstate):
                target = state.get(MEMBER + action.member)
                if target is None:
                    raise Refused(f"{action.member.hex()[:16]} is not a member")
                is_frozen = frozen.get(action.member, target["frozen"])
                if not at_creation and is_frozen == isinstance(action, Freeze):
                    raise Refused(
                        f"{target['name']} is already {'frozen' if is_frozen else 'active'}"
                    )
                frozen[action.member] = isinstance(action, Freeze)
            elif isinstance(action, ChangeValidators):
                validators = _changed_validators(validators or base, action, base)
        if not at_creation:
            supply = _supply_now(state)
            limit = supply * param(state, "max_mint_bps") // 10_000
            if minted > limit:
                raise Refused(f"the proposal mints {minted}, more than the limit {limit}")
        return validators

    def _execute(self, state: LedgerState, pid: bytes, actions: list[Any], now: int) -> None:
        """Apply every action, or raise Refused having applied none: every check is made, in
        order, before anything changes."""
        validators = self._check_actions(state, actions, at_creation=False)
        touched: list[bytes] = []
        supply_change = 0
        for action in actions:
            if isinstance(action, Reward):
                member = state.get(MEMBER + action.to)
                member["balance"] += action.amount
                supply_change += action.amount
                state.put(MEMBER + action.to, member)
                if action.contribution is not None:
                    state.put(REWARDED + action.contribution, pid)
                touched.append(action.to)
            elif isinstance(action, SetParam):
                state.put(PARAM + action.name.encode(), action.value)
            elif isinstance(action, Freeze):
                supply_change -= state.get(MEMBER + action.member)["balance"]
                touched.extend(_freeze(state, action.member))
            elif isinstance(action, Reinstate):
                member = state.get(MEMBER + action.member)
                supply_change += member["balance"]
                member["frozen"] = False
                state.put(MEMBER + action.member, member)
                touched.append(action.member)
        if validators is not None and validators != (
            state.validator_change or state.validators("after")
        ):
            state.validator_change = validators
        _checkpoint(state, touched, now, supply_change)


# members and power


def _due(p: dict[str, Any]) -> int | None:
    """The first block time at which proposal `p` can change state by itself; None when final."""
    return {
        PENDING: p["snapshot"] + 1,
        ACTIVE: p["deadline"] + 1,
        QUEUED: p["eta"],
    }.get(p["state"])


def _set_due(state: LedgerState, pid: bytes, p: dict[str, Any]) -> None:
    entries = [entry for entry in state.get(OPEN, ()) if entry[0] != pid]
    due = _due(p)
    if due is not None:
        entries.append((pid, due))
    state.put(OPEN, tuple(sorted(entries)))


def _active_member(state: LedgerState, key: bytes) -> dict[str, Any]:
    member = state.get(MEMBER + key)
    if member is None:
        raise Refused(f"{key.hex()[:16]} is not a member: register an identity first")
    if member["frozen"]:
        raise Refused(f"{member['name']} is frozen")
    return dict(member)


def _set_delegate(state: LedgerState, key: bytes, member: dict[str, Any], to: bytes | None) -> None:
    old = member.pop("delegate", None)
    if old is not None:
        state.put(
            DELEGATORS + old, tuple(k for k in state.get(DELEGATORS + old, ()) if k != key) or None
        )
    if to is not None:
        member["delegate"] = to
        state.put(DELEGATORS + to, tuple(sorted((*state.get(DELEGATORS + to, ()), key))))
    state.put(MEMBER + key, member)


def _freeze(state: LedgerState, key: bytes) -> list[bytes]:
    """Freeze a member: its balance leaves the supply and delegations to it revert. Returns the
    members whose power changed."""
    member = state.get(MEMBER + key)
    member["frozen"] = True
    state.put(MEMBER + key, member)
    touched = [key]
    if "delegate" in member:
        touched.append(member["delegate"])
    for delegator in state.get(DELEGATORS + key, ()):
        _set_delegate(state, delegator, state.get(MEMBER + delegator), None)
        touched.append(delegator)
    return touched


def power_now(state: LedgerState, key: bytes) -> int:
    """Own balance unless delegated away, plus balances delegated directly to `key`."""
    member = state.get(MEMBER + key)
    if member is None or member["frozen"]:
        return 0
    power = 0 if "delegate" in member else member["balance"]
    for delegator in state.get(DELEGATORS + key, ()):
        other = state.get(MEMBER + delegator)
        if not other["frozen"]:
            power += other["balance"]
    return power


def power_at(state: LedgerState, key: bytes, time: int) -> int:
    """Voting power after the last block whose time is at or before `time`."""
    return _at(state.get(POWER + key, ()), time)


def supply_at(state: LedgerState, time: int) -> int:
    return _at(state.get(SUPPLY, ()), time)


def _at(checkpoints: tuple[tuple[int, int], ...], time: int) -> int:
    value = 0
    for at, amount in checkpoints:
        if at > time:
            break
        value = amount
    return value


def _supply_now(state: LedgerState) -> int:
    """The eligible supply now: the latest checkpoint, kept current by every change to it."""
    checkpoints = state.get(SUPPLY, ())
    return checkpoints[-1][1] if checkpoints else 0


def members(state: LedgerState) -> list[tuple[bytes, dict[str, Any]]]:
    """Every member, in key order."""
    return [(key[len(MEMBER) :], state.get(key)) for key, _ in state.items(MEMBER)]


def _checkpoint(state: LedgerState, keys: Iterable[bytes], now: int, supply_change: int) -> None:
    """Record the current power of `keys` (and their delegates) at block time, and the supply
    moved by `supply_change`."""
    affected: set[bytes] = set()
    for key in keys:
        affected.add(key)
        member = state.get(MEMBER + key)
        if member is not None and "delegate" in member:
            affected.add(member["delegate"])
    for key in sorted(affected):
        _write_checkpoint(state, POWER + key, now, power_now(state, key))
    if supply_change:
        _write_checkpoint(state, SUPPLY, now, _supply_now(state) + supply_change)


def _write_checkpoint(state: LedgerState, key: bytes, now: int, value: int) -> None:
    checkpoints = list(state.get(key, ()))
    if checkpoints and checkpoints[-1][1] == value:
        return
    if checkpoints and checkpoints[-1][0] == now:
        checkpoints[-1] = (now, value)
    else:
        checkpoints.append((now, value))
    state.put(key, tuple(tuple(c) for c in checkpoints))


def _quorum(state: LedgerState, p: dict[str, Any]) -> bool:
    """For + Abstain reach quorum_bps of the supply at the snapshot; zero supply never does."""
    supply = supply_at(state, p["snapshot"])
    return supply > 0 and (p["for"] + p["abstain"]) * 10_000 >= p["quorum_bps"] * supply


def _check_rewardable(state: LedgerState, action: Reward, cited: set[bytes]) -> None:
    assert action.contribution is not None  # noqa: S101 - the caller checked
    contribution = state.get(CONTRIBUTION + action.contribution)
    if contribution is None:
        raise Refused(f"no contribution {action.contribution.hex()[:16]} to reward")
    if contribution["author"] != action.to:
        raise Refused("a reward for a contribution must go to its author")
    if action.contribution in cited:
        raise Refused(f"the proposal cites contribution {action.contribution.hex()[:16]} twice")
    if state.get_raw(REWARDED + action.contribution) is not None:
        raise Refused(f"contribution {action.contribution.hex()[:16]} was already rewarded")
    cited.add(action.contribution)


def _changed_validators(
    current: ValidatorSet, action: ChangeValidators, base: ValidatorSet
) -> ValidatorSet:
    """`current` (the set after the proposal's earlier actions) changed by `action`, or Refused:
    never empty, and at most a third of `base`'s voting power (the set scheduled before the
    proposal) changed by the whole proposal."""
    powers = {v.key: v.power for v in current.members}
    for key, power in action.changes:
        if power:
            powers[key] = power
        else:
            powers.pop(key, None)
    if not powers:
        raise Refused("the validator set would be empty")
    if len(powers) > MAX_VALIDATORS:
        raise Refused(f"the validator set would have {len(powers)} members, over {MAX_VALIDATORS}")
    if sum(powers.values()) > MAX_TOTAL_POWER:
        raise Refused(f"the validator set's total power would exceed {MAX_TOTAL_POWER}")
    before = {v.key: v.power for v in base.members}
    changed = sum(abs(powers.get(k, 0) - before.get(k, 0)) for k in {*powers, *before})
    if 3 * changed > base.total:
        raise Refused(
            f"the proposal moves {changed} of {base.total} voting power: more than a third"
        )
    return ValidatorSet.of(powers)
