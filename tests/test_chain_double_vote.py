"""A validator's double vote enters the ledger as evidence that verifies on its own, once."""

from __future__ import annotations

import pytest

from ledger.block import BlockError
from ledger.chain import Chain, certify
from ledger.crypto import Keypair
from ledger.records import ZERO_HASH, Record, sign_record
from ledger.vote_evidence import PRECOMMIT, PREVOTE, DoubleVote, Vote
from node.rules import commons_genesis, commons_rules

VALIDATOR = Keypair.from_seed(b"\x11" * 32)
WITNESS = Keypair.from_seed(b"\x22" * 32)
GENESIS = commons_genesis(
    name="double-vote",
    time=1_000_000,
    members={WITNESS.public_key: ("witness", 10)},
    validators={VALIDATOR.public_key: 1},
)
NET = GENESIS.network_id


def _vote(type_: str, block: bytes, *, key: Keypair = VALIDATOR, net: bytes = NET) -> Vote:
    at = 2_000_000 if type_ == PRECOMMIT else None
    return Vote.sign(key, net, type_=type_, height=3, round_=1, block_id=block, timestamp=at)


class Ledger:
    def __init__(self) -> None:
        self.chain = Chain(GENESIS, apply=commons_rules(GENESIS))
        self.commit = None
        self.seq, self.prev = 0, ZERO_HASH
        self.time = GENESIS.time

    def evidence(self, body: DoubleVote) -> Record:
        self.seq += 1
        record = sign_record(
            WITNESS, NET, seq=self.seq, prev=self.prev, timestamp=self.time, body=body
        )
        self.prev = record.id
        return record

    def block(self, records: list[Record]) -> None:
        block = self.chain.propose(records, proposer=VALIDATOR.public_key, last_commit=self.commit)
        self.chain.append(block)
        self.time += 1000
        self.commit = certify(block, NET, [VALIDATOR], timestamp=self.time)


@pytest.mark.parametrize("type_", [PREVOTE, PRECOMMIT])
def test_double_vote_is_recorded_once(type_: str) -> None:
    ledger = Ledger()
    evidence = DoubleVote.of(_vote(type_, b"\x01" * 32), _vote(type_, b"\x02" * 32))
    ledger.block([ledger.evidence(evidence)])
    assert ledger.chain.tip.height == 1
    before = ledger.chain.state.root()
    again = ledger.evidence(evidence)
    with pytest.raises(BlockError, match="already recorded"):
        ledger.block([again])
    assert ledger.chain.state.root() == before


def test_forged_double_vote_makes_the_block_invalid() -> None:
    ledger = Ledger()
    other = Keypair.from_seed(b"\x33" * 32)
    genuine = _vote(PREVOTE, b"\x01" * 32)
    # the same validator named, but signed by another key: only verify() can tell
    forged = Vote(
        type=PREVOTE,
        height=3,
        round=1,
        block_id=b"\x02" * 32,
        timestamp=None,
        validator=VALIDATOR.public_key,
        signature=_vote(PREVOTE, b"\x02" * 32, key=other).signature,
    )
    with pytest.raises(BlockError, match="does not verify"):
        ledger.block([ledger.evidence(DoubleVote.of(genuine, forged))])
    assert ledger.chain.tip.height == 0


def test_double_vote_from_another_network_is_refused() -> None:
    ledger = Ledger()
    elsewhere = bytes(32)
    evidence = DoubleVote.of(
        _vote(PREVOTE, b"\x01" * 32, net=elsewhere), _vote(PREVOTE, b"\x02" * 32, net=elsewhere)
    )
    with pytest.raises(BlockError, match="does not verify"):
        ledger.block([ledger.evidence(evidence)])
