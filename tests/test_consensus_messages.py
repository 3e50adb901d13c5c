"""Consensus wire formats (PROTOCOL.md §14) and the double-vote evidence record.

Every message has one canonical encoding and one decoder that bounds sizes first and refuses
anything else; a vote's signature binds its type, height, round, block, timestamp and network;
a double vote is evidence that verifies on its own, inside an ordinary record.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_factory import GENESIS_TIME, keypair

from ledger import codec
from ledger.block import MAX_ROUND, Block, Commit, Precommit
from ledger.crypto import Keypair, sha256
from ledger.errors import DecodeError, EvidenceError, InvalidData, SchemaError, SignatureError
from ledger.genesis import make_genesis
from ledger.records import KINDS, ZERO_HASH, decode_record, sign_record
from ledger.vote_evidence import (
    MAX_ROUND as VOTE_MAX_ROUND,
)
from ledger.vote_evidence import (
    NIL,
    PRECOMMIT,
    PREVOTE,
    DoubleVote,
    Vote,
    decode_vote,
    vote_body,
)
from node.consensus.messages import (
    Decision,
    Proposal,
    Status,
    decode_message,
    precommit_of,
)
from node.sim.app import ChainApp

KEY = keypair("validator-a")
OTHER = keypair("validator-b")
GENESIS = make_genesis(
    name="wire-tests",
    time=GENESIS_TIME,
    members={},
    validators={KEY.public_key: 1, OTHER.public_key: 1},
)
NET = GENESIS.network_id
BLOCK_A = sha256(b"block a")
BLOCK_B = sha256(b"block b")


def prevote(
    block: bytes = BLOCK_A, *, key: Keypair = KEY, height: int = 3, round_: int = 1
) -> Vote:
    return Vote.sign(key, NET, type_=PREVOTE, height=height, round_=round_, block_id=block)


def precommit(block: bytes = BLOCK_A, *, at: int = GENESIS_TIME + 1, key: Keypair = KEY) -> Vote:
    return Vote.sign(key, NET, type_=PRECOMMIT, height=3, round_=1, block_id=block, timestamp=at)


def test_votes_round_trip_and_verify() -> None:
    for vote in (prevote(), prevote(NIL), precommit(), precommit(NIL)):
        again = decode_message(vote.raw)
        assert again == vote
        assert again.raw == vote.raw == codec.encode(vote.to_wire())
        assert decode_vote(vote.raw) == vote
        vote.verify(NET)
    assert prevote(NIL).is_nil


def test_precommit_signs_exactly_what_certificates_check() -> None:
    vote = precommit()
    assert vote.signed_body() == Precommit.signed_body(3, 1, BLOCK_A, GENESIS_TIME + 1)
    assert vote_body(PRECOMMIT, 3, 1, BLOCK_A, 5) == Precommit.signed_body(3, 1, BLOCK_A, 5)
    assert VOTE_MAX_ROUND == MAX_ROUND
    certificate = Commit.of([precommit_of(vote)])
    certificate.precommits()[0].verify(NET)
    with pytest.raises(ValueError, match="precommit"):
        precommit_of(prevote())


def test_a_signature_binds_type_fields_and_network() -> None:
    vote = prevote()
    as_precommit = dataclasses.replace(vote, type=PRECOMMIT, timestamp=GENESIS_TIME + 1)
    for forged in (
        as_precommit,
        dataclasses.replace(vote, round=2),
        dataclasses.replace(vote, height=4),
        dataclasses.replace(vote, block_id=BLOCK_B),
        dataclasses.replace(vote, validator=OTHER.public_key),
    ):
        with pytest.raises(SignatureError):
            forged.verify(NET)
    with pytest.raises(SignatureError):
        vote.verify(sha256(b"another network"))
    with pytest.raises(SignatureError):
        dataclasses.replace(precommit(), timestamp=GENESIS_TIME + 2).verify(NET)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"type": "vote"}, SchemaError),
        ({"round": -1}, SchemaError),
        ({"height": 0}, SchemaError),
        ({"block": b"short"}, SchemaError),
        ({"extra": 1}, SchemaError),
        ({"at": 5}, SchemaError),  # a prevote has no timestamp
        ({"sig": b"x" * 63}, SchemaError),
    ],
)
def test_malformed_votes_are_refused(change: dict[str, object], error: type[Exception]) -> None:
    wire = {**prevote().to_wire(), **change}
    with pytest.raises(error):
        decode_message(codec.encode(wire))


def test_the_decoder_bounds_and_canonicalises() -> None:
    raw = prevote().raw
    with pytest.raises(DecodeError):
        decode_message(raw + b"\x00")
    with pytest.raises(DecodeError):
        decode_message(raw[:-1])
    bloated = codec.encode({**prevote().to_wire(), "block": b"x" * 300})
    with pytest.raises(SchemaError, match="exceeds 256"):
        decode_message(bloated)
    with pytest.raises(SchemaError, match="unknown consensus message type"):
        decode_message(codec.encode({"type": "gossip"}))
    with pytest.raises(SchemaError):
        decode_message(codec.encode((1, 2)))


def _block() -> Block:
    return ChainApp(GENESIS, KEY).propose_block(1, 0, None)


def test_proposals_decisions_and_status_round_trip() -> None:
    block = _block()
    proposal = Proposal.sign(KEY, NET, round_=2, pol_round=1, block=block)
    again = decode_message(proposal.raw)
    assert again == proposal
    assert isinstance(again, Proposal)
    assert again.block_id == block.id
    votes = [
        precommit_of(
            Vote.sign(
                k, NET, type_=PRECOMMIT, height=1, round_=0, block_id=block.id,
                timestamp=GENESIS_TIME + 10,
            )
        )
        for k in (KEY, OTHER)
    ]  # fmt: skip
    decision = Decision(block=block, commit=Commit.of(votes))
    assert decode_message(decision.raw) == decision
    status = Status(height=7, round=2)
    assert decode_message(status.raw) == status
    with pytest.raises(SchemaError):
        Decision(block=block, commit=dataclasses.replace(Commit.of(votes), height=2))
    with pytest.raises(SchemaError, match="pol_round"):
        Proposal.sign(KEY, NET, round_=1, pol_round=1, block=block)
    wire = codec.decode(proposal.raw, max_size=10**6)
    with pytest.raises(InvalidData):
        decode_message(codec.encode({**wire, "block": b"not a block"}))


def test_double_vote_is_evidence_on_its_own() -> None:
    a, b = prevote(BLOCK_A), prevote(BLOCK_B)
    evidence = DoubleVote.of(b, a)
    assert evidence == DoubleVote.of(a, b), "one encoding per pair"
    assert evidence.first < evidence.second
    evidence.verify(NET)
    assert evidence.validator == KEY.public_key
    assert (evidence.height, evidence.round, evidence.vote_type) == (3, 1, PREVOTE)
    assert DoubleVote.of(precommit(BLOCK_A), precommit(NIL)).vote_type == PRECOMMIT
    with pytest.raises(EvidenceError):
        evidence.verify(sha256(b"another network"))
    # inside an ordinary record, by any member, for anyone to check
    assert KINDS["double-vote"] is DoubleVote
    reporter = keypair("reporter")
    record = sign_record(
        reporter, NET, seq=1, prev=ZERO_HASH, timestamp=GENESIS_TIME, body=evidence
    )
    again = decode_record(record.raw)
    assert again == record
    again.verify(NET)
    assert isinstance(again.body, DoubleVote)
    again.body.verify(NET)


@pytest.mark.parametrize(
    ("one", "other", "why"),
    [
        (prevote(BLOCK_A), prevote(BLOCK_A), "same"),
        (prevote(BLOCK_A), prevote(BLOCK_B, key=OTHER), "validator"),
        (prevote(BLOCK_A), prevote(BLOCK_B, height=4), "height"),
        (prevote(BLOCK_A), prevote(BLOCK_B, round_=2), "round"),
        (prevote(BLOCK_A), precommit(BLOCK_B), "type"),
        (precommit(BLOCK_A), precommit(BLOCK_A, at=GENESIS_TIME + 9), "same block"),
    ],
)
def test_what_is_not_a_double_vote(one: Vote, other: Vote, why: str) -> None:
    with pytest.raises(EvidenceError):
        DoubleVote.of(one, other)


def test_evidence_with_a_forged_vote_does_not_verify() -> None:
    forged = dataclasses.replace(prevote(BLOCK_B), signature=bytes(64))
    evidence = DoubleVote.of(prevote(BLOCK_A), forged)
    with pytest.raises(EvidenceError, match="does not verify"):
        evidence.verify(NET)
    a, b = sorted((prevote(BLOCK_A).raw, prevote(BLOCK_B).raw))
    with pytest.raises(EvidenceError, match="sort"):
        DoubleVote(first=b, second=a)
    with pytest.raises(EvidenceError, match="not a valid vote"):
        DoubleVote(first=a, second=b"\x80" + b)


@settings(max_examples=60, deadline=None)
@given(
    type_=st.sampled_from([PREVOTE, PRECOMMIT]),
    height=st.integers(1, 2**53 - 1),
    round_=st.integers(0, MAX_ROUND),
    block=st.binary(min_size=32, max_size=32),
    at=st.integers(0, 2**53 - 1),
    flip=st.integers(0, 10_000),
)
def test_any_vote_round_trips_and_any_flipped_byte_fails(
    type_: str, height: int, round_: int, block: bytes, at: int, flip: int
) -> None:
    vote = Vote.sign(
        KEY, NET, type_=type_, height=height, round_=round_, block_id=block,
        timestamp=at if type_ == PRECOMMIT else None,
    )  # fmt: skip
    assert decode_message(vote.raw) == vote
    raw = bytearray(vote.raw)
    raw[flip % len(raw)] ^= 0x01
    try:
        mutated = decode_message(bytes(raw))
    except InvalidData:
        return
    assert isinstance(mutated, Vote)
    with pytest.raises(SignatureError):
        mutated.verify(NET)
