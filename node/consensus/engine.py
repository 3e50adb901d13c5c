"""The Tendermint engine: Algorithm 1 of Buchman, Kwon, Milosevic (2018) as a pure state machine.

Inputs are `start`, `receive(message)` and `on_timeout(timeout)`, each with the shell's current
time in ms (used only to timestamp precommits); each returns the effects of `effects.py`. The
rules, by their line numbers in the paper:

- 11 StartRound: the proposer of (h, r) proposes its valid value, or a new block from the app;
  everyone schedules the propose timeout.
- 22 / 28: on the round's proposal, prevote it if it is valid and the lock allows (unlocked,
  locked on it, or — with a proof-of-lock round vr ≥ the lock's round and 2f+1 prevotes for it
  at vr — unlocking on a higher valid round); else prevote nil.
- 34 / 47: 2f+1 prevotes (precommits) of any kind schedule the prevote (precommit) timeout.
- 36: a valid proposal with 2f+1 prevotes locks it and precommits it (in the prevote step), and
  always makes it the valid value.
- 44: 2f+1 nil prevotes precommit nil.
- 49: a block with 2f+1 precommits at some round is decided; its certificate is exactly those
  precommits (`ledger.block.Commit`), keeping only timestamps after the block's time.
- 55: f+1 of the power sending messages of a higher round moves to that round.
- 57 / 61 / 65: timeouts prevote nil, precommit nil, and start the next round.

"2f+1" means more than 2/3 of the height's voting power and "f+1" more than 1/3, so unequal
powers work. Messages are checked against the validator set of their height, which the app
supplies; messages of the next height wait in a bounded buffer, and a `Decision` (a block and
its certificate) lets a node that fell behind catch up. Two different votes of one validator at
one (height, round, type) become `DoubleVote` evidence. After deciding, the next height starts
its first round after `Timeouts.commit_ms` (a timer, so the shell keeps control).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

from ledger.block import Block, Commit, Precommit
from ledger.crypto import Keypair, Tag
from ledger.errors import InvalidData
from ledger.validators import ValidatorSet
from ledger.vote_evidence import NIL, PRECOMMIT, PREVOTE, DoubleVote, Vote
from node.consensus.effects import (
    Broadcast,
    Decide,
    Effect,
    Evidence,
    Persist,
    PersistedState,
    ScheduleTimeout,
    Step,
    Timeout,
)
from node.consensus.errors import ConsensusError
from node.consensus.messages import Decision, Message, Proposal, precommit_of
from node.consensus.proposer import ProposerSchedule
from node.consensus.verify import SignatureCache

NEW_HEIGHT = -1
"""`Timeout.round` of the timer that starts round 0 of a new height (its step is PROPOSE)."""


class Application(Protocol):
    """The ledger as consensus sees it (a `Chain` in the simulator, a store in a node)."""

    def next_height(self) -> int:
        """The height being decided: the committed tip's height + 1."""
        ...

    def last_commit(self) -> Commit | None:
        """The certificate of the committed tip (None at height 1)."""
        ...

    def validators(self) -> ValidatorSet:
        """vals(next_height()): who votes at the height being decided."""
        ...

    def validators_after(self) -> ValidatorSet:
        """vals(next_height() + 1): who votes at the height after (known a height ahead)."""
        ...

    def propose_block(self, height: int, round_: int, last_commit: Commit | None) -> Block: ...

    def validate_block(self, block: Block) -> None:
        """Raise InvalidData unless `block` validly extends the committed tip."""
        ...

    def commit(self, block: Block, commit: Commit) -> None:
        """Make the decided block and its certificate durable."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Timeouts grow linearly with the round, so after GST some round is long enough."""

    propose_ms: int = 1000
    propose_delta_ms: int = 500
    prevote_ms: int = 500
    prevote_delta_ms: int = 250
    precommit_ms: int = 500
    precommit_delta_ms: int = 250
    commit_ms: int = 0

    def delay(self, step: Step, round_: int) -> int:
        if step is Step.PROPOSE:
            return self.propose_ms + self.propose_delta_ms * round_
        if step is Step.PREVOTE:
            return self.prevote_ms + self.prevote_delta_ms * round_
        return self.precommit_ms + self.precommit_delta_ms * round_


class _VoteSet:
    """Votes of one type at one (height, round). A validator counts once towards "2f+1 of any
    kind" (its first vote) and once towards each block it voted for: a double-voting validator
    is counted for both blocks, as CometBFT counts conflicting votes for a block peers claim
    +2/3 for. That keeps one quorum per round while f or fewer double-vote (two quorums of one
    round share more than f validators), and lets every honest node count the very votes that
    made another honest node lock, once gossip brings them."""

    __slots__ = ("by_block", "first", "power", "total")

    def __init__(self) -> None:
        self.first: dict[bytes, Vote] = {}
        self.by_block: dict[bytes, dict[bytes, Vote]] = {}
        self.power: dict[bytes, int] = {}
        self.total = 0

    def has(self, vote: Vote) -> bool:
        return vote.validator in self.by_block.get(vote.block_id, {})

    def blocks_of(self, validator: bytes) -> int:
        return sum(validator in votes for votes in self.by_block.values())

    def add(self, vote: Vote, power: int) -> Vote | None:
        """Count `vote`; return the validator's earlier vote for another block, if any."""
        self.by_block.setdefault(vote.block_id, {})[vote.validator] = vote
        self.power[vote.block_id] = self.power.get(vote.block_id, 0) + power
        first = self.first.get(vote.validator)
        if first is None:
            self.first[vote.validator] = vote
            self.total += power
            return None
        return first

    def all_votes(self) -> list[Vote]:
        return [vote for votes in self.by_block.values() for vote in votes.values()]


_NO_VOTES = _VoteSet()


class Engine:
    ROUNDS_AHEAD = 64
    """Messages of rounds further ahead than this are ignored (memory bound)."""
    FUTURE_LIMIT = 4096
    """Messages of the next height kept until this node gets there."""
    DECISIONS_AHEAD = 64
    DECISION_BYTES = 64 * 1024 * 1024  # unverified decisions held for later heights, at most
    PROPOSALS_PER_ROUND = 4
    VOTES_PER_VALIDATOR = 4
    """Different votes counted from one validator at one (round, type) (memory bound)."""
    OWN_KEPT = 48

    def __init__(
        self,
        app: Application,
        *,
        network_id: bytes,
        key: Keypair | None,
        timeouts: Timeouts | None = None,
        restored: PersistedState | None = None,
        schedule: ProposerSchedule | None = None,
        signatures: SignatureCache | None = None,
    ) -> None:
        """A fresh engine at height 1, or one `restored` from what it last persisted. `schedule`
        (base priorities of the app's next height) is needed only to start elsewhere fresh."""
        self.app = app
        self.network_id = network_id
        self.key = key
        self.timeouts = timeouts or Timeouts()
        self.signatures = signatures or SignatureCache(network_id)
        self.rejected = 0
        """Messages dropped for a bad signature or an invalid certificate."""
        self._now = 0
        self._out: list[Effect] = []
        self._inbox: deque[Message] = deque()
        self._future: list[Message] = []
        self._future_raw: set[bytes] = set()
        self._future_decisions: dict[int, list[Decision]] = {}
        self._signed = False
        self._persisted_key: tuple[object, ...] | None = None
        self._resume = False
        height = app.next_height()
        vals = app.validators()
        if restored is not None and restored.height == height:
            schedule = restored.schedule
            self._resume = True
        elif restored is not None and restored.height == height - 1:
            schedule = restored.schedule.next(vals)
        elif restored is not None:
            raise ConsensusError(
                f"persisted consensus state is at height {restored.height}, but the store's "
                f"next height is {height}: refusing to sign"
            )
        elif schedule is None:
            if height != 1:
                raise ConsensusError(
                    f"starting at height {height} needs the proposer schedule of that height"
                )
            schedule = ProposerSchedule.genesis(vals)
        if schedule.validators.hash != vals.hash:
            raise ConsensusError(f"proposer schedule is not over vals({height})")
        self._enter_height(height, schedule, app.last_commit())
        if restored is not None and self._resume:
            self.round, self.step = restored.round, restored.step
            self.locked_round, self.locked_block = restored.locked_round, restored.locked_block
            self.valid_round, self.valid_block = restored.valid_round, restored.valid_block
            self._started = True
            for message in restored.signed:
                self._own.append(message)
                if isinstance(message, Proposal):
                    self._store_proposal(message)
                elif isinstance(message, Vote):
                    self._store_vote(message, self.vals.power(message.validator))
            self._persisted_key = self._state_key()

    # inputs

    def start(self, now: int) -> list[Effect]:
        """Begin (or resume after a restart): re-send what was signed, set the step's timer."""
        self._now = now
        if not self._resume:
            self._start_round(0)
        else:
            self._out.extend(Broadcast(m) for m in self._own)
            if self.step is Step.PROPOSE:
                if self._own_proposal(self.round) is None and self._proposer(self.round):
                    self._propose(self.round)
                self._schedule(Step.PROPOSE)
        self._progress(self.round)
        self._drain()
        return self._flush()

    def receive(self, message: Message, now: int) -> list[Effect]:
        self._now = now
        self._inbox.append(message)
        self._drain()
        return self._flush()

    def on_timeout(self, timeout: Timeout, now: int) -> list[Effect]:
        self._now = now
        if timeout.height == self.height:
            if timeout.round == NEW_HEIGHT:
                if not self._started:
                    self._start_round(0)
            elif timeout.round == self.round:
                if timeout.step is Step.PROPOSE and self.step is Step.PROPOSE:
                    self._prevote(NIL)  # line 57
                elif timeout.step is Step.PREVOTE and self.step is Step.PREVOTE:
                    self._precommit(None)  # line 61
                elif timeout.step is Step.PRECOMMIT:
                    self._start_round(self.round + 1)  # line 65
            self._progress(self.round)
            self._drain()
        return self._flush()

    # what a shell may read

    @property
    def is_validator(self) -> bool:
        return self._is_validator

    def proposer(self, round_: int) -> bytes:
        return self.schedule.proposer(round_)

    def own_messages(self) -> tuple[Message, ...]:
        """What this node signed at the current height (re-sent by gossip when stuck)."""
        return tuple(self._own)

    def known_messages(self) -> list[Message]:
        """Every valid message of the current height this node holds (relayed by gossip)."""
        out: list[Message] = []
        for round_ in sorted(set(self._proposals) | set(self._prevotes) | set(self._precommits)):
            out.extend(self._proposals.get(round_, {}).values())
            for sets in (self._prevotes, self._precommits):
                if round_ in sets:
                    out.extend(sets[round_].all_votes())
        return out

    def future_messages(self) -> list[Message]:
        """Messages of the next height held until this engine gets there."""
        return list(self._future)

    def persisted_state(self) -> PersistedState:
        return PersistedState(
            height=self.height,
            round=self.round,
            step=self.step,
            locked_round=self.locked_round,
            locked_block=self.locked_block,
            valid_round=self.valid_round,
            valid_block=self.valid_block,
            schedule=self.schedule,
            signed=tuple(self._own),
        )

    # message handling

    def _drain(self) -> None:
        while self._inbox:
            message = self._inbox.popleft()
            if isinstance(message, Vote):
                self._on_vote(message)
            elif isinstance(message, Proposal):
                self._on_proposal(message)
            else:
                self._on_decision(message)

    def _on_vote(self, vote: Vote) -> None:
        if vote.height != self.height:
            self._buffer(vote)
            return
        power = self.vals.power(vote.validator)
        if power == 0 or vote.round > self.round + self.ROUNDS_AHEAD:
            return
        sets = self._prevotes if vote.type == PREVOTE else self._precommits
        votes = sets.get(vote.round)
        if votes is not None and (
            votes.has(vote) or votes.blocks_of(vote.validator) >= self.VOTES_PER_VALIDATOR
        ):
            return
        if not self._signature_ok(vote.validator, vote.tag, vote.signed_body(), vote.signature):
            return
        self._store_vote(vote, power)
        self._progress(vote.round)

    def _on_proposal(self, proposal: Proposal) -> None:
        if proposal.height != self.height:
            self._buffer(proposal)
            return
        round_ = proposal.round
        if round_ > self.round + self.ROUNDS_AHEAD or proposal.proposer != self.proposer(round_):
            return
        known = self._proposals.get(round_, {})
        if proposal.block_id in known or len(known) >= self.PROPOSALS_PER_ROUND:
            return
        if not self._signature_ok(
            proposal.proposer, Tag.PROPOSAL, proposal.signed_body(), proposal.signature
        ):
            return
        self._store_proposal(proposal)
        self._progress(round_)

    def _on_decision(self, decision: Decision) -> None:
        if decision.height != self.height:
            self._buffer(decision)
            return
        if not self._certifies(decision.commit, decision.block) or not self._valid(decision.block):
            self.rejected += 1
            return
        self._decide(decision.block, decision.commit)

    def _buffer(self, message: Message) -> None:
        """Keep a message of a later height for when this node gets there (bounded)."""
        height = message.height
        if height <= self.height:
            return
        if isinstance(message, Decision):
            if height > self.height + self.DECISIONS_AHEAD:
                return
            slot = self._future_decisions.setdefault(height, [])
            held = sum(len(d.raw) for ds in self._future_decisions.values() for d in ds)
            if (
                len(slot) < 2
                and all(d.raw != message.raw for d in slot)
                and held + len(message.raw) <= self.DECISION_BYTES
            ):
                slot.append(message)
        elif (
            height == self.height + 1
            and len(self._future) < self.FUTURE_LIMIT
            and message.raw not in self._future_raw
            # Only a signed message of a next height's validator is worth keeping: anyone else
            # could fill the buffer and push the genuine ones out.
            and self._from_next_validator(message)
        ):
            self._future_raw.add(message.raw)
            self._future.append(message)

    def _from_next_validator(self, message: Message) -> bool:
        validators = self.app.validators_after()
        if isinstance(message, Proposal):
            key, tag = message.proposer, Tag.PROPOSAL
        elif isinstance(message, Vote):
            key, tag = message.validator, message.tag
        else:
            return False
        if validators.power(key) == 0:
            return False
        return self._signature_ok(key, tag, message.signed_body(), message.signature)

    def _signature_ok(self, key: bytes, tag: Tag, body: bytes, signature: bytes) -> bool:
        try:
            self.signatures.verify(key, tag, body, signature)
        except InvalidData:
            self.rejected += 1
            return False
        return True

    def _certifies(self, commit: Commit, block: Block) -> bool:
        """`Commit.verify` under vals(h) (signatures through the cache) plus the BFT-time rule
        that every precommit is after the block's own time."""
        if commit.height != self.height or commit.block_id != block.id:
            return False
        power = 0
        for precommit in commit.precommits():
            weight = self.vals.power(precommit.validator)
            if weight == 0 or precommit.timestamp <= block.header.time:
                return False
            body = Precommit.signed_body(
                precommit.height, precommit.round, block.id, precommit.timestamp
            )
            if not self._signature_ok(
                precommit.validator, Tag.PRECOMMIT, body, precommit.signature
            ):
                return False
            power += weight
        return self.vals.has_quorum(power)

    def _store_vote(self, vote: Vote, power: int) -> None:
        sets = self._prevotes if vote.type == PREVOTE else self._precommits
        votes = sets.get(vote.round)
        if votes is None:
            votes = sets[vote.round] = _VoteSet()
        if votes.has(vote):
            return
        earlier = votes.add(vote, power)
        if earlier is not None:
            self._double_vote(earlier, vote)
        self._note_sender(vote.round, vote.validator, power)

    def _store_proposal(self, proposal: Proposal) -> None:
        self._proposals.setdefault(proposal.round, {})[proposal.block_id] = proposal
        self._blocks.setdefault(proposal.block_id, proposal.block)
        self._note_sender(proposal.round, proposal.proposer, self.vals.power(proposal.proposer))

    def _note_sender(self, round_: int, validator: bytes, power: int) -> None:
        senders = self._senders.setdefault(round_, set())
        if validator not in senders:
            senders.add(validator)
            self._sender_power[round_] = self._sender_power.get(round_, 0) + power

    def _double_vote(self, first: Vote, second: Vote) -> None:
        key = (first.type, first.round, first.validator)
        if key in self._evidenced:
            return
        self._evidenced.add(key)
        self._out.append(Evidence(DoubleVote.of(first, second)))

    # the rules

    def _progress(self, hint: int) -> None:
        """Apply every rule enabled at the current height until none is."""
        while True:
            if self._try_decide(hint) or (hint != self.round and self._try_decide(self.round)):
                return
            if hint > self.round and self._skip_quorum(hint):  # line 55
                self._start_round(hint)
                continue
            if not self._current_round_rule():
                return

    def _current_round_rule(self) -> bool:
        """Apply one enabled rule of the current round; say whether anything changed."""
        r = self.round
        proposals = self._proposals.get(r, {})
        prevotes = self._prevotes.get(r) or _NO_VOTES
        if self.step is Step.PROPOSE and self._started:
            for proposal in proposals.values():
                if self._on_round_proposal(proposal):
                    return True
        prevoting = self.step is Step.PREVOTE
        if prevoting and r not in self._prevote_timer and self._quorum(prevotes.total):  # l. 34
            self._prevote_timer.add(r)
            self._schedule(Step.PREVOTE)
            return True
        if self.step >= Step.PREVOTE and r not in self._locked_rounds:
            for block_id, proposal in proposals.items():  # line 36
                if self._quorum(prevotes.power.get(block_id, 0)) and self._valid(proposal.block):
                    self._locked_rounds.add(r)
                    if self.step is Step.PREVOTE:
                        self.locked_round, self.locked_block = r, proposal.block
                        self._precommit(proposal.block)
                    self.valid_round, self.valid_block = r, proposal.block
                    return True
        if prevoting and self._quorum(prevotes.power.get(NIL, 0)):  # line 44
            self._precommit(None)
            return True
        precommits = self._precommits.get(r)
        if (
            precommits is not None
            and r not in self._precommit_timer
            and self._quorum(precommits.total)  # line 47
        ):
            self._precommit_timer.add(r)
            self._schedule(Step.PRECOMMIT)
            return True
        return False

    def _on_round_proposal(self, proposal: Proposal) -> bool:
        """Lines 22 and 28: prevote the round's proposal, or nil."""
        block = proposal.block
        vr = proposal.pol_round
        if vr == -1:
            ok = self.locked_round == -1 or self._locked_on(block)
        else:
            pol = self._prevotes.get(vr)
            if pol is None or not self._quorum(pol.power.get(block.id, 0)):
                return False  # wait for the proof of lock (or the propose timeout)
            ok = self.locked_round <= vr or self._locked_on(block)
        self._prevote(block.id if ok and self._valid(block) else NIL)
        return True

    def _try_decide(self, round_: int) -> bool:
        """Line 49: a known, valid block with 2f+1 precommits (timestamps after its time)."""
        precommits = self._precommits.get(round_)
        if precommits is None:
            return False
        for block_id, power in precommits.power.items():
            if block_id == NIL or not self._quorum(power):
                continue
            block = self._blocks.get(block_id)
            if block is None:
                continue
            votes = [
                v
                for v in precommits.by_block[block_id].values()
                if v.timestamp is not None and v.timestamp > block.header.time
            ]
            if not self._quorum(sum(self.vals.power(v.validator) for v in votes)):
                continue
            if not self._valid(block):
                continue
            self._decide(block, Commit.of([precommit_of(v) for v in votes]))
            return True
        return False

    def _skip_quorum(self, round_: int) -> bool:
        return 3 * self._sender_power.get(round_, 0) > self.vals.total

    def _decide(self, block: Block, commit: Commit) -> None:
        try:
            self.app.commit(block, commit)
        except InvalidData as e:
            raise ConsensusError(
                f"the application refused decided block {block.height}: {e}"
            ) from e
        self._out.append(Decide(block, commit))
        schedule = self.schedule.next(self.app.validators())
        self._enter_height(self.height + 1, schedule, commit)
        self._out.append(
            ScheduleTimeout(
                Timeout(height=self.height, round=NEW_HEIGHT, step=Step.PROPOSE),
                self.timeouts.commit_ms,
            )
        )

    # actions

    def _start_round(self, round_: int) -> None:
        """Line 11."""
        self.round, self.step, self._started = round_, Step.PROPOSE, True
        if self._proposer(round_) and self._own_proposal(round_) is None:
            self._propose(round_)
        self._schedule(Step.PROPOSE)

    def _propose(self, round_: int) -> None:
        assert self.key is not None  # noqa: S101 - _proposer() checked it
        if self.valid_block is not None:
            block, pol_round = self.valid_block, self.valid_round
        else:
            try:
                block = self.app.propose_block(self.height, round_, self.last_commit)
            except InvalidData:
                # The application could not build a block (bad data it was given): propose
                # nothing; the propose timeout moves every validator on.
                self.rejected += 1
                return
            pol_round = -1
        proposal = Proposal.sign(
            self.key, self.network_id, round_=round_, pol_round=pol_round, block=block
        )
        self._send(proposal)
        self._store_proposal(proposal)

    def _prevote(self, block_id: bytes) -> None:
        self.step = Step.PREVOTE
        if self._is_validator:
            self._vote(PREVOTE, block_id, None)

    def _precommit(self, block: Block | None) -> None:
        self.step = Step.PRECOMMIT
        if self._is_validator:
            at = self._now if block is None else max(self._now, block.header.time + 1)
            self._vote(PRECOMMIT, NIL if block is None else block.id, max(at, 0))

    def _vote(self, type_: str, block_id: bytes, timestamp: int | None) -> None:
        assert self.key is not None  # noqa: S101 - only validators vote
        vote = Vote.sign(
            self.key,
            self.network_id,
            type_=type_,
            height=self.height,
            round_=self.round,
            block_id=block_id,
            timestamp=timestamp,
        )
        self._send(vote)
        self._store_vote(vote, self.vals.power(vote.validator))

    def _send(self, message: Message) -> None:
        self._own.append(message)
        if len(self._own) > self.OWN_KEPT:
            del self._own[0]
        self._out.append(Broadcast(message))
        self._signed = True

    def _schedule(self, step: Step) -> None:
        timeout = Timeout(height=self.height, round=self.round, step=step)
        self._out.append(ScheduleTimeout(timeout, self.timeouts.delay(step, self.round)))

    def _flush(self) -> list[Effect]:
        """The effects so far, with a Persist first when the state changed or anything was
        signed: the shell makes it durable before any message leaves."""
        effects, self._out = self._out, []
        key = self._state_key()
        if self._signed or key != self._persisted_key:
            effects.insert(0, Persist(self.persisted_state()))
            self._persisted_key, self._signed = key, False
        return effects

    # helpers

    def _enter_height(self, height: int, schedule: ProposerSchedule, last: Commit | None) -> None:
        self.height = height
        self.round = 0
        self.step = Step.PROPOSE
        self._started = False
        self.schedule = schedule
        self.vals = schedule.validators
        self.last_commit = last
        self._is_validator = self.key is not None and self.vals.power(self.key.public_key) > 0
        self.locked_round, self.locked_block = -1, None
        self.valid_round, self.valid_block = -1, None
        self._proposals: dict[int, dict[bytes, Proposal]] = {}
        self._blocks: dict[bytes, Block] = {}
        self._prevotes: dict[int, _VoteSet] = {}
        self._precommits: dict[int, _VoteSet] = {}
        self._senders: dict[int, set[bytes]] = {}
        self._sender_power: dict[int, int] = {}
        self._validity: dict[bytes, bool] = {}
        self._prevote_timer: set[int] = set()
        self._precommit_timer: set[int] = set()
        self._locked_rounds: set[int] = set()
        self._evidenced: set[tuple[str, int, bytes]] = set()
        self._own: list[Message] = []
        future, self._future = self._future, []
        self._future_raw = set()
        self._inbox.extend(m for m in future if m.height == height)
        self._inbox.extend(self._future_decisions.pop(height, []))
        for stale in [h for h in self._future_decisions if h < height]:
            del self._future_decisions[stale]

    def _state_key(self) -> tuple[object, ...]:
        return (
            self.height,
            self.round,
            self.step,
            self.locked_round,
            self.valid_round,
            self.locked_block.id if self.locked_block else None,
            self.valid_block.id if self.valid_block else None,
        )

    def _proposer(self, round_: int) -> bool:
        return (
            self._is_validator
            and self.key is not None
            and self.proposer(round_) == self.key.public_key
        )

    def _own_proposal(self, round_: int) -> Proposal | None:
        for message in self._own:
            if isinstance(message, Proposal) and message.round == round_:
                return message
        return None

    def _locked_on(self, block: Block) -> bool:
        return self.locked_block is not None and self.locked_block.id == block.id

    def _valid(self, block: Block) -> bool:
        ok = self._validity.get(block.id)
        if ok is None:
            try:
                self.app.validate_block(block)
                ok = True
            except InvalidData:
                ok = False
            self._validity[block.id] = ok
        return ok

    def _quorum(self, power: int) -> bool:
        return 3 * power > 2 * self.vals.total
