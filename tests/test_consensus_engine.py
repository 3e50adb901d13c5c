"""The Tendermint engine, rule by rule (Buchman, Kwon, Milosevic 2018, Algorithm 1).

One engine at a time is driven by hand: real keys sign the other validators' messages, a real
`Chain` (through the simulator's `ChainApp`) makes and judges blocks, and every assertion reads
the effects a shell would perform. Lines of the paper are named in the test names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest
from ledger_factory import GENESIS_TIME, keypair

from ledger import codec
from ledger.block import Block, Commit, Precommit
from ledger.crypto import Keypair
from ledger.genesis import Genesis, make_genesis
from ledger.validators import ValidatorSet
from ledger.vote_evidence import NIL, PRECOMMIT, PREVOTE, DoubleVote, Vote
from node.consensus import (
    Broadcast,
    ConsensusError,
    Decide,
    Decision,
    Effect,
    Engine,
    Evidence,
    Message,
    Persist,
    PersistedState,
    Proposal,
    ProposerSchedule,
    ScheduleTimeout,
    Step,
    Timeout,
    Timeouts,
)
from node.consensus.engine import NEW_HEIGHT
from node.consensus.messages import precommit_of
from node.sim.app import ChainApp

TIMEOUTS = Timeouts(
    propose_ms=1000,
    propose_delta_ms=500,
    prevote_ms=400,
    prevote_delta_ms=200,
    precommit_ms=300,
    precommit_delta_ms=100,
    commit_ms=0,
)
NOW = GENESIS_TIME + 5_000


class Net:
    """Four validators (or any powers), a genesis, and helpers to sign their messages."""

    def __init__(self, powers: Sequence[int] = (1, 1, 1, 1)) -> None:
        self.keys = sorted(
            (keypair(f"consensus-{i}") for i in range(len(powers))), key=lambda k: k.public_key
        )
        self.power = {k.public_key: p for k, p in zip(self.keys, powers, strict=True)}
        self.genesis: Genesis = make_genesis(
            name="consensus-tests", time=GENESIS_TIME, members={}, validators=self.power
        )
        self.network_id = self.genesis.network_id
        self.schedule = ProposerSchedule.genesis(self.genesis.validators)

    def key_of(self, public_key: bytes) -> Keypair:
        return next(k for k in self.keys if k.public_key == public_key)

    def proposer(self, round_: int) -> Keypair:
        return self.key_of(self.schedule.proposer(round_))

    def not_proposer(self, *rounds: int) -> Keypair:
        busy = {self.schedule.proposer(r) for r in rounds}
        return next(k for k in self.keys if k.public_key not in busy)

    def engine(self, key: Keypair | None, **kwargs: object) -> Engine:
        app = ChainApp(self.genesis, key or self.keys[0])
        return Engine(
            app,
            network_id=self.network_id,
            key=key,
            timeouts=TIMEOUTS,
            **kwargs,  # type: ignore[arg-type]
        )

    def block(self, proposer: Keypair) -> Block:
        return ChainApp(self.genesis, proposer).propose_block(1, 0, None)

    def other_block(self, proposer: Keypair) -> Block:
        """A second valid block for height 1 (another proposer field, so another id)."""
        return ChainApp(self.genesis, proposer).propose_block(1, 0, None)

    def proposal(self, block: Block, round_: int, pol_round: int = -1) -> Proposal:
        return Proposal.sign(
            self.proposer(round_), self.network_id, round_=round_, pol_round=pol_round, block=block
        )

    def vote(
        self,
        key: Keypair,
        type_: str,
        round_: int,
        block_id: bytes,
        *,
        height: int = 1,
        at: int = NOW,
    ) -> Vote:
        return Vote.sign(
            key,
            self.network_id,
            type_=type_,
            height=height,
            round_=round_,
            block_id=block_id,
            timestamp=at if type_ == PRECOMMIT else None,
        )


def sent(effects: Sequence[Effect]) -> list[Message]:
    return [e.message for e in effects if isinstance(e, Broadcast)]


def votes(effects: Sequence[Effect], type_: str) -> list[Vote]:
    return [m for m in sent(effects) if isinstance(m, Vote) and m.type == type_]


def timers(effects: Sequence[Effect]) -> list[ScheduleTimeout]:
    return [e for e in effects if isinstance(e, ScheduleTimeout)]


def feed(engine: Engine, messages: Sequence[Message]) -> list[Effect]:
    out: list[Effect] = []
    for message in messages:
        out += engine.receive(message, NOW)
    return out


@pytest.fixture
def net() -> Net:
    return Net()


def test_start_round_line_11_proposer_proposes_and_prevotes_its_block(net: Net) -> None:
    proposer = net.proposer(0)
    engine = net.engine(proposer)
    effects = engine.start(NOW)
    proposals = [m for m in sent(effects) if isinstance(m, Proposal)]
    assert len(proposals) == 1
    assert proposals[0].round == 0
    assert proposals[0].pol_round == -1
    assert proposals[0].proposer == proposer.public_key
    (prevote,) = votes(effects, PREVOTE)
    assert prevote.block_id == proposals[0].block_id
    assert isinstance(effects[0], Persist), "the state is made durable before anything is sent"
    assert effects[0].state.step is Step.PREVOTE
    assert engine.step is Step.PREVOTE


def test_start_round_line_11_others_wait_with_a_propose_timeout(net: Net) -> None:
    engine = net.engine(net.not_proposer(0))
    effects = engine.start(NOW)
    assert sent(effects) == []
    (timer,) = timers(effects)
    assert timer.timeout == Timeout(height=1, round=0, step=Step.PROPOSE)
    assert timer.delay_ms == TIMEOUTS.propose_ms


def test_line_22_a_valid_proposal_is_prevoted(net: Net) -> None:
    engine = net.engine(net.not_proposer(0))
    engine.start(NOW)
    block = net.block(net.proposer(0))
    effects = engine.receive(net.proposal(block, 0), NOW)
    (prevote,) = votes(effects, PREVOTE)
    assert prevote.block_id == block.id
    assert prevote.round == 0
    assert isinstance(effects[0], Persist)


def test_line_22_an_invalid_block_is_prevoted_nil(net: Net) -> None:
    engine = net.engine(net.not_proposer(0))
    engine.start(NOW)
    block = net.block(net.proposer(0))
    bad = Block(header=dataclasses.replace(block.header, time=block.header.time + 1), records=())
    (prevote,) = votes(engine.receive(net.proposal(bad, 0), NOW), PREVOTE)
    assert prevote.block_id == NIL


def test_line_57_propose_timeout_prevotes_nil_and_grows_with_the_round(net: Net) -> None:
    engine = net.engine(net.not_proposer(0, 1))
    engine.start(NOW)
    effects = engine.on_timeout(Timeout(height=1, round=0, step=Step.PROPOSE), NOW)
    (prevote,) = votes(effects, PREVOTE)
    assert prevote.block_id == NIL
    assert engine.on_timeout(Timeout(height=1, round=0, step=Step.PROPOSE), NOW) == []
    assert TIMEOUTS.delay(Step.PROPOSE, 3) == 1000 + 3 * 500
    assert TIMEOUTS.delay(Step.PREVOTE, 2) == 400 + 2 * 200
    assert TIMEOUTS.delay(Step.PRECOMMIT, 1) == 300 + 100


def test_line_34_and_61_any_two_thirds_of_prevotes_start_the_prevote_timeout(net: Net) -> None:
    me = net.not_proposer(0)
    engine = net.engine(me)
    engine.start(NOW)
    block = net.block(net.proposer(0))
    engine.receive(net.proposal(block, 0), NOW)  # prevotes the block
    others = [k for k in net.keys if k != me]
    effects = feed(engine, [net.vote(others[0], PREVOTE, 0, NIL)])
    assert timers(effects) == [], "2 of 4 is not more than 2/3"
    effects = feed(engine, [net.vote(others[1], PREVOTE, 0, block.id)])
    assert [t.timeout.step for t in timers(effects)] == [Step.PREVOTE]
    assert votes(effects, PRECOMMIT) == [], "block has 2 of 4, nil 1 of 4: no quorum for either"
    effects = engine.on_timeout(Timeout(height=1, round=0, step=Step.PREVOTE), NOW)
    (precommit,) = votes(effects, PRECOMMIT)
    assert precommit.block_id == NIL


def test_line_36_two_thirds_of_prevotes_lock_and_precommit(net: Net) -> None:
    me = net.not_proposer(0)
    engine = net.engine(me)
    engine.start(NOW)
    block = net.block(net.proposer(0))
    engine.receive(net.proposal(block, 0), NOW)
    others = [k for k in net.keys if k != me]
    effects = feed(engine, [net.vote(k, PREVOTE, 0, block.id) for k in others[:2]])
    (precommit,) = votes(effects, PRECOMMIT)
    assert precommit.block_id == block.id
    assert precommit.timestamp == max(NOW, block.header.time + 1)
    assert (engine.locked_round, engine.locked_block) == (0, block)
    assert (engine.valid_round, engine.valid_block) == (0, block)
    persist = effects[0]
    assert isinstance(persist, Persist)
    assert persist.state.locked == (0, block.id)
    assert persist.state.valid == (0, block.id)


def test_line_36_in_the_precommit_step_only_the_valid_value_moves(net: Net) -> None:
    me = net.not_proposer(0)
    engine = net.engine(me)
    engine.start(NOW)
    block = net.block(net.proposer(0))
    engine.receive(net.proposal(block, 0), NOW)  # prevotes the block
    others = [k for k in net.keys if k != me]
    feed(engine, [net.vote(others[0], PREVOTE, 0, NIL), net.vote(others[1], PREVOTE, 0, block.id)])
    effects = engine.on_timeout(Timeout(height=1, round=0, step=Step.PREVOTE), NOW)
    assert [v.block_id for v in votes(effects, PRECOMMIT)] == [NIL]
    # a late prevote makes 3 of 4 for the block: valid, but no lock and no second precommit
    effects = feed(engine, [net.vote(others[2], PREVOTE, 0, block.id)])
    assert votes(effects, PRECOMMIT) == []
    assert engine.locked_round == -1
    assert (engine.valid_round, engine.valid_block) == (0, block)


def test_line_44_two_thirds_of_nil_prevotes_precommit_nil(net: Net) -> None:
    me = net.not_proposer(0)
    engine = net.engine(me)
    engine.start(NOW)
    engine.on_timeout(Timeout(height=1, round=0, step=Step.PROPOSE), NOW)
    others = [k for k in net.keys if k != me]
    effects = feed(engine, [net.vote(k, PREVOTE, 0, NIL) for k in others[:2]])
    assert [v.block_id for v in votes(effects, PRECOMMIT)] == [NIL]


def test_line_47_and_65_precommit_timeout_starts_the_next_round(net: Net) -> None:
    me = net.not_proposer(0, 1)
    engine = net.engine(me)
    engine.start(NOW)
    others = [k for k in net.keys if k != me]
    effects = feed(engine, [net.vote(k, PRECOMMIT, 0, NIL) for k in others])
    (timer,) = [t for t in timers(effects) if t.timeout.step is Step.PRECOMMIT]
    assert timer.delay_ms == TIMEOUTS.precommit_ms
    effects = engine.on_timeout(timer.timeout, NOW)
    assert (engine.round, engine.step) == (1, Step.PROPOSE)
    (propose,) = timers(effects)
    assert propose.timeout == Timeout(height=1, round=1, step=Step.PROPOSE)
    assert propose.delay_ms == TIMEOUTS.propose_ms + TIMEOUTS.propose_delta_ms


def _locked_at_round_0(net: Net, me: Keypair) -> tuple[Engine, Block]:
    engine = net.engine(me)
    engine.start(NOW)
    block = net.block(net.proposer(0))
    engine.receive(net.proposal(block, 0), NOW)
    others = [k for k in net.keys if k != me]
    feed(engine, [net.vote(k, PREVOTE, 0, block.id) for k in others[:2]])
    assert engine.locked_round == 0
    feed(engine, [net.vote(k, PRECOMMIT, 0, NIL) for k in others])
    engine.on_timeout(Timeout(height=1, round=0, step=Step.PRECOMMIT), NOW)
    assert engine.round == 1
    return engine, block


def test_line_22_a_locked_validator_prevotes_nil_for_another_block(net: Net) -> None:
    me = net.not_proposer(0, 1)
    engine, locked = _locked_at_round_0(net, me)
    other = net.other_block(net.proposer(1))
    assert other.id != locked.id
    (prevote,) = votes(engine.receive(net.proposal(other, 1), NOW), PREVOTE)
    assert prevote.block_id == NIL
    assert engine.locked_block == locked


def test_line_22_a_locked_validator_prevotes_its_locked_block_again(net: Net) -> None:
    me = net.not_proposer(0, 1)
    engine, locked = _locked_at_round_0(net, me)
    (prevote,) = votes(engine.receive(net.proposal(locked, 1, pol_round=0), NOW), PREVOTE)
    assert prevote.block_id == locked.id


def test_line_36_prevoting_nil_still_locks_on_a_new_quorum(net: Net) -> None:
    me = net.not_proposer(0, 1)
    engine, _locked = _locked_at_round_0(net, me)
    others = [k for k in net.keys if k != me]
    other = net.other_block(net.proposer(1))
    (prevote,) = votes(engine.receive(net.proposal(other, 1), NOW), PREVOTE)
    assert prevote.block_id == NIL
    effects = feed(engine, [net.vote(k, PREVOTE, 1, other.id) for k in others])
    assert [v.block_id for v in votes(effects, PRECOMMIT)] == [other.id]
    assert (engine.locked_round, engine.locked_block) == (1, other)


def test_line_28_unlocks_on_a_higher_valid_round(net: Net) -> None:
    me = net.not_proposer(0, 1, 2)
    engine, _locked = _locked_at_round_0(net, me)
    others = [k for k in net.keys if k != me]
    engine.on_timeout(Timeout(height=1, round=1, step=Step.PROPOSE), NOW)
    feed(engine, [net.vote(k, PRECOMMIT, 1, NIL) for k in others])
    engine.on_timeout(Timeout(height=1, round=1, step=Step.PRECOMMIT), NOW)
    assert engine.round == 2
    assert engine.locked_round == 0
    other = net.other_block(net.proposer(1))
    # the others had prevoted `other` in round 1; their prevotes reach us late (no lock here)
    feed(engine, [net.vote(k, PREVOTE, 1, other.id) for k in others])
    assert engine.locked_round == 0
    (prevote,) = votes(engine.receive(net.proposal(other, 2, pol_round=1), NOW), PREVOTE)
    assert prevote.block_id == other.id, "pol_round 1 >= locked round 0 unlocks"


def test_line_28_a_lower_proof_of_lock_round_does_not_unlock(net: Net) -> None:
    me = net.not_proposer(0, 1, 2)
    engine, locked = _locked_at_round_0(net, me)
    others = [k for k in net.keys if k != me]
    other = net.other_block(net.proposer(1))
    # move to round 2 locked at round 0, but now relock at round 1 on `locked` itself
    engine.receive(net.proposal(locked, 1, pol_round=0), NOW)
    feed(engine, [net.vote(k, PREVOTE, 1, locked.id) for k in others])
    assert engine.locked_round == 1
    feed(engine, [net.vote(k, PRECOMMIT, 1, NIL) for k in others])
    engine.on_timeout(Timeout(height=1, round=1, step=Step.PRECOMMIT), NOW)
    # `other` had a proof of lock at round 0 only (from three validators)
    feed(engine, [net.vote(k, PREVOTE, 0, other.id) for k in others])
    (prevote,) = votes(engine.receive(net.proposal(other, 2, pol_round=0), NOW), PREVOTE)
    assert prevote.block_id == NIL, "pol_round 0 < locked round 1"


def test_line_28_waits_for_the_proof_of_lock(net: Net) -> None:
    me = net.not_proposer(0, 1)
    engine = net.engine(me)
    engine.start(NOW)
    others = [k for k in net.keys if k != me]
    feed(engine, [net.vote(k, PRECOMMIT, 0, NIL) for k in others])
    engine.on_timeout(Timeout(height=1, round=0, step=Step.PRECOMMIT), NOW)
    block = net.block(net.proposer(0))
    assert votes(engine.receive(net.proposal(block, 1, pol_round=0), NOW), PREVOTE) == []
    effects = feed(engine, [net.vote(k, PREVOTE, 0, block.id) for k in others])
    assert [v.block_id for v in votes(effects, PREVOTE)] == [block.id]


def test_line_49_decides_with_a_certificate_the_ledger_accepts(net: Net) -> None:
    me = net.not_proposer(0)
    engine = net.engine(me)
    engine.start(NOW)
    block = net.block(net.proposer(0))
    engine.receive(net.proposal(block, 0), NOW)
    others = [k for k in net.keys if k != me]
    feed(engine, [net.vote(k, PREVOTE, 0, block.id) for k in others])
    effects = feed(engine, [net.vote(k, PRECOMMIT, 0, block.id, at=NOW + i) for i, k in
                            enumerate(others)])  # fmt: skip
    (decide,) = [e for e in effects if isinstance(e, Decide)]
    assert decide.block == block
    decide.commit.verify(net.network_id, net.genesis.validators, height=1, block_id=block.id)
    assert len(decide.commit.votes) >= 3
    assert engine.app.next_height() == 2
    assert engine.height == 2
    (start,) = [t for t in timers(effects) if t.timeout.height == 2]
    assert start.timeout.round == NEW_HEIGHT
    assert start.delay_ms == TIMEOUTS.commit_ms
    # the next block carries the certificate and its BFT time
    app: ChainApp = engine.app  # type: ignore[assignment]
    assert app.last_commit() == decide.commit
    nxt = app.propose_block(2, 0, decide.commit)
    assert nxt.header.last_commit == decide.commit
    assert nxt.header.time == decide.commit.median_time(net.genesis.validators)
    app.validate_block(nxt)


def test_line_49_precommits_not_after_the_block_time_do_not_count(net: Net) -> None:
    me = net.not_proposer(0)
    engine = net.engine(me)
    engine.start(NOW)
    block = net.block(net.proposer(0))
    engine.receive(net.proposal(block, 0), NOW)
    others = [k for k in net.keys if k != me]
    feed(engine, [net.vote(k, PREVOTE, 0, block.id) for k in others])
    stale = block.header.time  # equal to the block's time: invalid in a certificate
    effects = feed(engine, [net.vote(others[0], PRECOMMIT, 0, block.id, at=stale)])
    effects += feed(engine, [net.vote(others[1], PRECOMMIT, 0, block.id)])
    assert not any(isinstance(e, Decide) for e in effects), "3 precommits, 2 of them valid"
    effects = feed(engine, [net.vote(others[2], PRECOMMIT, 0, block.id)])
    (decide,) = [e for e in effects if isinstance(e, Decide)]
    assert others[0].public_key not in {key for key, _, _ in decide.commit.votes}
    assert all(at > block.header.time for _, at, _ in decide.commit.votes)


def test_line_55_f_plus_one_of_a_higher_round_moves_there(net: Net) -> None:
    me = net.not_proposer(0, 5)
    engine = net.engine(me)
    engine.start(NOW)
    others = [k for k in net.keys if k != me]
    feed(engine, [net.vote(others[0], PREVOTE, 5, NIL)])
    assert engine.round == 0, "1 of 4 is not more than 1/3"
    feed(engine, [net.vote(others[1], PRECOMMIT, 5, NIL)])
    assert engine.round == 5


def test_unequal_powers_count_power_not_heads() -> None:
    net = Net(powers=(5, 1, 1, 1))
    heavy = max(net.keys, key=lambda k: net.power[k.public_key])
    me = next(k for k in net.keys if k != heavy and k != net.proposer(0))
    engine = net.engine(me)
    engine.start(NOW)
    block = net.block(net.proposer(0))
    engine.receive(net.proposal(block, 0), NOW)
    lights = [k for k in net.keys if k not in (heavy, me)]
    effects = feed(engine, [net.vote(k, PREVOTE, 0, block.id) for k in lights])
    assert votes(effects, PRECOMMIT) == [], "3 of 8 power"
    effects = feed(engine, [net.vote(heavy, PREVOTE, 0, block.id)])
    assert [v.block_id for v in votes(effects, PRECOMMIT)] == [block.id], "6 of 8 power"
    # f+1 by power: the heavy validator alone (5 of 8) pulls us to a higher round
    feed(engine, [net.vote(heavy, PREVOTE, 3, NIL)])
    assert engine.round == 3


def test_double_vote_becomes_evidence_and_counts_for_both_blocks(net: Net) -> None:
    me = net.not_proposer(0)
    engine = net.engine(me)
    engine.start(NOW)
    block = net.block(net.proposer(0))
    engine.receive(net.proposal(block, 0), NOW)
    liar, *honest = [k for k in net.keys if k != me]
    first = net.vote(liar, PREVOTE, 0, NIL)
    second = net.vote(liar, PREVOTE, 0, block.id)
    effects = feed(engine, [first, second, second])
    (evidence,) = [e for e in effects if isinstance(e, Evidence)]
    evidence.double_vote.verify(net.network_id)
    assert evidence.double_vote == DoubleVote.of(first, second)
    assert evidence.double_vote.validator == liar.public_key
    effects = feed(engine, [net.vote(honest[0], PREVOTE, 0, block.id)])
    assert [v.block_id for v in votes(effects, PRECOMMIT)] == [block.id], (
        "me + honest + the liar's vote for the block make 3 of 4"
    )


def test_messages_that_do_not_check_out_are_ignored(net: Net) -> None:
    me = net.not_proposer(0)
    engine = net.engine(me)
    engine.start(NOW)
    block = net.block(net.proposer(0))
    wrong_proposer = Proposal.sign(
        net.not_proposer(0), net.network_id, round_=0, pol_round=-1, block=block
    )
    assert engine.receive(wrong_proposer, NOW) == []
    good = net.proposal(block, 0)
    forged = dataclasses.replace(good, signature=bytes(64))
    assert engine.receive(forged, NOW) == []
    outsider = keypair("not-a-validator")
    others = [k for k in net.keys if k != me]
    feed(engine, [net.vote(outsider, PREVOTE, 3, NIL), net.vote(outsider, PREVOTE, 3, NIL)])
    forged_votes = [
        dataclasses.replace(net.vote(k, PREVOTE, 3, NIL), signature=bytes(64)) for k in others
    ]
    feed(engine, forged_votes)
    assert engine.round == 0
    assert engine.rejected >= 4
    other_network = Net()
    other_network.network_id = bytes(32)
    feed(engine, [other_network.vote(k, PREVOTE, 3, NIL) for k in others])
    assert engine.round == 0, "signatures bind the network id"


def test_votes_of_the_next_height_wait_for_it(net: Net) -> None:
    me = net.not_proposer(0)
    engine = net.engine(me)
    engine.start(NOW)
    others = [k for k in net.keys if k != me]
    early = [net.vote(k, PRECOMMIT, 0, NIL, height=2) for k in others]
    feed(engine, early)
    block = net.block(net.proposer(0))
    engine.receive(net.proposal(block, 0), NOW)
    feed(engine, [net.vote(k, PREVOTE, 0, block.id) for k in others])
    effects = feed(engine, [net.vote(k, PRECOMMIT, 0, block.id) for k in others])
    assert engine.height == 2
    # the buffered height-2 precommits were replayed: 2/3 of any precommits -> a timer
    assert any(
        t.timeout == Timeout(height=2, round=0, step=Step.PRECOMMIT) for t in timers(effects)
    )


def test_a_decision_lets_a_node_catch_up(net: Net) -> None:
    block = net.block(net.proposer(0))
    engine = net.engine(None)  # an observer: follows, never signs
    engine.start(NOW)
    assert not engine.is_validator
    half = Commit.of([_precommit(net, k, block) for k in net.keys[:2]])
    effects = engine.receive(Decision(block=block, commit=half), NOW)
    assert engine.height == 1, "2 of 4 precommits certify nothing"
    assert not any(isinstance(e, Decide) for e in effects)
    assert engine.rejected == 1
    full = Commit.of([_precommit(net, k, block) for k in net.keys])
    effects = engine.receive(Decision(block=block, commit=full), NOW)
    assert [e.commit for e in effects if isinstance(e, Decide)] == [full]
    assert engine.height == 2
    assert sent(effects) == []


def _precommit(net: Net, key: Keypair, block: Block) -> Precommit:
    return precommit_of(net.vote(key, PRECOMMIT, 0, block.id))


def test_restart_from_persisted_state_never_signs_twice(net: Net) -> None:
    me = net.not_proposer(0)
    engine = net.engine(me)
    engine.start(NOW)
    block = net.block(net.proposer(0))
    effects = engine.receive(net.proposal(block, 0), NOW)
    persist = effects[0]
    assert isinstance(persist, Persist)
    (prevote,) = votes(effects, PREVOTE)
    # crash after the persist, before the prevote left; the state survives as bytes
    stored = PersistedState.decode(persist.state.encode())
    assert stored == persist.state
    restarted = Engine(
        engine.app, network_id=net.network_id, key=me, timeouts=TIMEOUTS, restored=stored
    )
    effects = restarted.start(NOW)
    assert [m.raw for m in sent(effects)] == [prevote.raw], "re-sends, never re-signs"
    effects = restarted.receive(net.proposal(block, 0), NOW)
    assert votes(effects, PREVOTE) == []
    effects = restarted.on_timeout(Timeout(height=1, round=0, step=Step.PROPOSE), NOW)
    assert votes(effects, PREVOTE) == [], "no nil prevote after a block prevote"


def test_restart_keeps_the_lock(net: Net) -> None:
    me = net.not_proposer(0, 1)
    engine, locked = _locked_at_round_0(net, me)
    state = engine.persisted_state()
    restarted = Engine(
        engine.app, network_id=net.network_id, key=me, timeouts=TIMEOUTS, restored=state
    )
    restarted.start(NOW)
    assert (restarted.locked_round, restarted.locked_block) == (0, locked)
    other = net.other_block(net.proposer(1))
    (prevote,) = votes(restarted.receive(net.proposal(other, 1), NOW), PREVOTE)
    assert prevote.block_id == NIL


def test_restore_refuses_a_state_that_does_not_fit_the_store(net: Net) -> None:
    me = net.keys[0]
    engine = net.engine(me)
    state = engine.persisted_state()
    ahead = dataclasses.replace(state, height=5)
    with pytest.raises(ConsensusError):
        Engine(engine.app, network_id=net.network_id, key=me, restored=ahead)


def test_persisted_state_encoding_round_trips_with_locks(net: Net) -> None:
    me = net.not_proposer(0, 1)
    engine, locked = _locked_at_round_0(net, me)
    state = engine.persisted_state()
    assert state.locked_block == locked
    again = PersistedState.decode(state.encode())
    assert again == state
    assert again.encode() == state.encode()
    # locked and valid are one block: written once (as the locked one), read back as both
    assert state.valid_block == locked
    assert state.encode().count(locked.encode()) == 1
    assert again.valid_block == again.locked_block == locked
    # a state written with both, as before, reads the same
    both = codec.decode(state.encode(), max_size=len(state.encode()))
    both = codec.encode({**both, "valid_block": locked.encode()})
    assert PersistedState.decode(both) == state
    # a valid block unlike the locked one is written too
    other = net.other_block(net.proposer(1))
    moved = dataclasses.replace(state, round=1, valid_round=1, valid_block=other)
    assert PersistedState.decode(moved.encode()) == moved
    assert moved.encode().count(other.encode()) == 1


def test_proposer_schedule_weighted_round_robin() -> None:
    keys = sorted(keypair(f"prio-{i}").public_key for i in range(3))
    equal = ProposerSchedule.genesis(ValidatorSet.of(dict.fromkeys(keys, 1)))
    assert [equal.proposer(r) for r in range(6)] == keys + keys
    powers = {keys[0]: 1, keys[1]: 3, keys[2]: 6}
    schedule = ProposerSchedule.genesis(ValidatorSet.of(powers))
    picks = [schedule.proposer(r) for r in range(10)]
    assert {k: picks.count(k) for k in keys} == powers, "each proposes `power` times per cycle"
    assert picks[0] == keys[2], "the heaviest first"
    # the base moves by one step per height, and newcomers start at the back
    newcomer = keypair("prio-new").public_key
    grown = ValidatorSet.of({**powers, newcomer: 10})
    nxt = schedule.next(grown)
    assert nxt.validators == grown
    assert nxt.proposer(0) != newcomer
    same = schedule.next(schedule.validators)
    assert same.proposer(0) == schedule.proposer(1)
    assert ProposerSchedule.from_wire(nxt.to_wire()) == nxt


def test_proposer_schedule_is_the_same_for_every_node(net: Net) -> None:
    a = net.engine(net.keys[0])
    b = net.engine(net.keys[1])
    assert [a.proposer(r) for r in range(8)] == [b.proposer(r) for r in range(8)]


def test_an_engine_past_height_1_needs_its_schedule(net: Net) -> None:
    app = ChainApp(net.genesis, net.keys[0])
    block = app.propose_block(1, 0, None)
    commit = Commit.of([_precommit(net, k, block) for k in net.keys])
    app.commit(block, commit)
    with pytest.raises(ConsensusError):
        Engine(app, network_id=net.network_id, key=net.keys[0])
    engine = Engine(
        app,
        network_id=net.network_id,
        key=net.keys[0],
        schedule=net.schedule.next(net.genesis.validators),
    )
    assert engine.height == 2
    assert engine.last_commit == commit


def test_single_validator_network_decides_alone() -> None:
    net = Net(powers=(1,))
    engine = net.engine(net.keys[0])
    effects = engine.start(NOW)
    for _ in range(3):
        start = [t for t in timers(effects) if t.timeout.round == NEW_HEIGHT]
        if start:
            effects = engine.on_timeout(start[0].timeout, NOW)
    assert engine.app.next_height() >= 3
    assert isinstance(engine.persisted_state(), PersistedState)


def test_next_height_buffer_keeps_only_signed_messages_of_its_validators(net: Net) -> None:
    """A stranger's flood of next-height messages is not kept (it would push genuine ones out);
    a next-height validator's signed vote is, once."""
    engine = net.engine(net.keys[0])
    engine.start(NOW)
    stranger = keypair("consensus-stranger")
    flood = net.vote(stranger, PREVOTE, 0, b"\x07" * 32, height=2)
    for _ in range(100):
        engine.receive(flood, NOW)
    genuine = net.vote(net.keys[1], PREVOTE, 0, b"\x07" * 32, height=2)
    forged = Vote(
        type=PREVOTE,
        height=2,
        round=0,
        block_id=b"\x08" * 32,
        timestamp=None,
        validator=net.keys[2].public_key,
        signature=genuine.signature,
    )
    for message in (genuine, genuine, forged):
        engine.receive(message, NOW)
    assert engine._future == [genuine]
