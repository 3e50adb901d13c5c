"""Blocks, commit certificates, BFT time and every block validity rule of `Chain.append`.

DESIGN.md "Blocks" and PROTOCOL.md §9-11: a certificate needs MORE than 2/3 of the height's voting
power, time(H) is the power-weighted median of H-1's precommits (each after time(H-1)), a block
is checked header first, then each record (signature, feed, evidence), then its roots; a refused
block leaves the chain exactly as it was; a validator change at H takes effect at H+2. The state
root is the same for any two chains (and processes) that apply the same blocks.

Real keys and signatures throughout; chains are built with several validators of unequal power
(1, 1, 1, 3) through `Chain.propose` and `certify`.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ledger_factory import (
    FOUR,
    GENESIS_TIME,
    STEP_MS,
    Author,
    Builder,
    build_standard,
    genesis_of,
    keypair,
    precommits,
    replace_header,
    replace_records,
    standard_chain,
    standard_chain_root,
    state_root_script,
    validator_set,
)

from ledger import codec
from ledger.block import (
    Block,
    BlockError,
    CertificateError,
    Commit,
    decode_block,
    decode_commit,
    encode_commit,
)
from ledger.chain import Chain, certify
from ledger.crypto import Keypair, Tag, sha256
from ledger.errors import InvalidData, SchemaError
from ledger.genesis import LEDGER_PARAMS, Param
from ledger.merkle import root_of
from ledger.records import Contribution, Equivocation, Identity, Record
from ledger.state import LedgerState
from ledger.store import Store
from node.rules import commons_rules

ROOT = Path(__file__).resolve().parent.parent
MAX_SKEW = LEDGER_PARAMS["max_skew_ms"].value
VALIDATORS = [(keypair(f"validator/{name}"), power) for name, power in FOUR]
V1, V2, V3, V4 = (key for key, _ in VALIDATORS)
OUTSIDER = keypair("validator/outsider")


# a chain at height 2 and a good candidate for height 3


@dataclass
class Tip2:
    """Four validators (1, 1, 1, 3); three authors; blocks 1-2 appended; `good` proposes 3."""

    builder: Builder
    authors: dict[str, Author]
    fork: Record  # grace's second, unfinalized record at seq 2

    @property
    def chain(self) -> Chain:
        return self.builder.chain

    @property
    def network_id(self) -> bytes:
        return self.builder.network_id

    @property
    def time(self) -> int:
        """The time of the next block."""
        return self.builder.next_time

    def next(self, name: str, body: Any, *, at: int | None = None, skip: int = 0) -> Record:
        """`name`'s next record on the chain's feed head (`skip` seqs further)."""
        head = self.chain.state.feed_head(self.authors[name].public_key)
        return self.authors[name].sign(
            seq=head.seq + 1 + skip, prev=head.id, at=self.time if at is None else at, body=body
        )

    def good_records(self) -> list[Record]:
        return [
            self.next("ada", Contribution(title="Exporter", kind="code")),
            self.next("linus", Contribution(title="Guide", kind="docs")),
        ]

    def good(self) -> Block:
        return self.builder.propose(self.good_records())


def tip2(params: dict[str, Param] | None = None) -> Tip2:
    names = ("ada", "grace", "linus")
    members = [(n, keypair(f"member/{n}")) for n in names]
    genesis = genesis_of(VALIDATORS, members, params=params)
    authors = {n: Author(n, k, genesis.network_id) for n, k in members}
    builder = Builder(genesis, [V1, V2, V3, V4])
    builder.add([a.write(Identity(name=a.name), builder.next_time) for a in authors.values()])
    now = builder.next_time
    ada, grace = authors["ada"], authors["grace"]
    grace_2 = grace.write(Contribution(title="Fuzzing", kind="code"), now)
    fork = grace.sign(
        seq=2, prev=grace_2.prev, at=now, body=Contribution(title="Fuzzing (fork)", kind="code")
    )
    builder.add([ada.write(Contribution(title="Parser", kind="code"), now), grace_2])
    return Tip2(builder=builder, authors=authors, fork=fork)


@pytest.fixture
def at2() -> Tip2:
    return tip2()


def snapshot(chain: Chain) -> tuple[Any, ...]:
    return (
        chain.tip,
        chain.state.root(),
        tuple(chain.state.items()),
        chain.log.size,
        chain.log.root(),
        chain.log.frontier(),
    )


def assert_refused(t: Tip2, block: Block, message: str) -> None:
    """`block` is refused with `message`, the chain is unchanged, and still takes the good one."""
    before = snapshot(t.chain)
    with pytest.raises(BlockError, match=message):
        t.chain.append(block)
    assert snapshot(t.chain) == before
    good = t.good()
    t.builder.accept(good, t.builder.certify(good))
    assert t.chain.tip.height == 3
    assert t.chain.tip.block_id == good.id


# certificates: more than 2/3 of the height's voting power


def certificate_for(t: Tip2, signers: list[Keypair]) -> tuple[Commit, Block]:
    block = t.builder.blocks[-1]
    return certify(block, t.network_id, signers, timestamp=block.header.time + STEP_MS), block


@pytest.mark.parametrize(
    ("signers", "power", "certifies"),
    [
        pytest.param([V1, V2, V3, V4], 6, True, id="all-6-of-6"),
        pytest.param([V1, V2, V4], 5, True, id="just-above-2/3-5-of-6"),
        pytest.param([V1, V4], 4, False, id="exactly-2/3-4-of-6"),
        pytest.param([V1, V2, V3], 3, False, id="three-small-3-of-6"),
        pytest.param([V4], 3, False, id="heaviest-alone-3-of-6"),
    ],
)
def test_certificate_needs_more_than_two_thirds_of_power(
    at2: Tip2, signers: list[Keypair], power: int, certifies: bool
) -> None:
    commit, block = certificate_for(at2, signers)
    validators = at2.chain.state.validators("current")
    assert validators.total == 6
    if certifies:
        commit.verify(at2.network_id, validators, height=2, block_id=block.id)
        at2.chain.verify_commit(commit)
    else:
        with pytest.raises(
            CertificateError, match=f"carries power {power} of 6: not more than 2/3"
        ):
            at2.chain.verify_commit(commit)


def test_certificate_threshold_with_equal_powers() -> None:
    """Three validators of power 1: 2 of 3 is exactly 2/3 and fails, 3 of 3 passes."""
    keys = [keypair(f"validator/eq{i}") for i in range(3)]
    genesis = genesis_of([(k, 1) for k in keys])
    builder = Builder(genesis, keys)
    block = builder.add([])
    validators = builder.chain.state.validators("current")
    exact = certify(block, genesis.network_id, keys[:2], timestamp=GENESIS_TIME + 1)
    with pytest.raises(CertificateError, match="carries power 2 of 3"):
        exact.verify(genesis.network_id, validators, height=1, block_id=block.id)
    full = certify(block, genesis.network_id, keys, timestamp=GENESIS_TIME + 1)
    full.verify(genesis.network_id, validators, height=1, block_id=block.id)


def test_certificate_of_wrong_height_block_or_network_is_refused(at2: Tip2) -> None:
    commit, block = certificate_for(at2, [V1, V2, V3, V4])
    validators = at2.chain.state.validators("current")
    with pytest.raises(CertificateError, match="certificate is for height 2, expected 3"):
        commit.verify(at2.network_id, validators, height=3, block_id=block.id)
    with pytest.raises(CertificateError, match="certificate at height 2 is for block"):
        commit.verify(at2.network_id, validators, height=2, block_id=at2.builder.blocks[0].id)
    other_network = sha256(b"another community")
    foreign = certify(block, other_network, [V1, V2, V3, V4], timestamp=block.header.time + 1)
    with pytest.raises(CertificateError, match="bad signature"):
        foreign.verify(at2.network_id, validators, height=2, block_id=block.id)


def test_certificate_with_unknown_validator_is_refused_even_beside_a_quorum(at2: Tip2) -> None:
    commit, _ = certificate_for(at2, [V1, V2, V3, V4, OUTSIDER])
    with pytest.raises(
        CertificateError, match=f"{OUTSIDER.public_key.hex()[:16]}, not a validator"
    ):
        at2.chain.verify_commit(commit)


def test_certificate_vote_with_altered_timestamp_or_round_is_refused(at2: Tip2) -> None:
    commit, _ = certificate_for(at2, [V1, V2, V3, V4])
    key, at, sig = commit.votes[0]
    moved = dataclasses.replace(commit, votes=((key, at + 1, sig), *commit.votes[1:]))
    with pytest.raises(CertificateError, match="bad signature"):
        at2.chain.verify_commit(moved)
    with pytest.raises(CertificateError, match="bad signature"):
        at2.chain.verify_commit(dataclasses.replace(commit, round=1))


def test_empty_and_duplicate_certificates_cannot_exist(at2: Tip2) -> None:
    commit, block = certificate_for(at2, [V1, V2, V3, V4])
    with pytest.raises(SchemaError, match="at least one precommit"):
        dataclasses.replace(commit, votes=())
    doubled = (commit.votes[3], commit.votes[3])  # V4's power counted twice would be 6 of 6
    with pytest.raises(SchemaError, match="sorted by validator and distinct"):
        dataclasses.replace(commit, votes=doubled)
    wire = {"block": block.id, "height": 2, "round": 0, "votes": doubled}
    with pytest.raises(SchemaError, match="distinct"):
        decode_commit(codec.encode(wire))
    with pytest.raises(SchemaError, match="at least one precommit"):
        decode_commit(codec.encode({**wire, "votes": ()}))
    assert decode_commit(encode_commit(commit)) == commit


def test_block_built_with_several_validator_keys_verifies() -> None:
    chain, blocks = standard_chain()
    assert chain.tip.height == len(blocks) == 4
    replay = Chain(chain.genesis)
    for block in blocks:
        replay.append(block)
        if block.header.last_commit is not None:
            assert len(block.header.last_commit.votes) == 4
    assert replay.tip == chain.tip


# BFT time


T = 10_000  # offsets below are added to time(2)


@pytest.mark.parametrize(
    ("votes", "median"),
    [
        pytest.param({V1: 10, V2: 20, V3: 30, V4: 40}, 40, id="heavy-last-decides"),
        pytest.param({V4: 5, V1: 10, V2: 20, V3: 30}, 10, id="heavy-first-needs-one-more"),
        pytest.param({V1: 10, V4: 20, V2: 30, V3: 40}, 20, id="heavy-second"),
        pytest.param({V1: 10, V2: 20, V4: 30}, 30, id="power-of-signers-only-5"),
        pytest.param({V1: 1, V2: 2, V4: 3, V3: 10**9}, 3, id="outlier-cannot-move-time"),
        pytest.param({V1: 7, V2: 7, V3: 7, V4: 7}, 7, id="all-equal"),
    ],
)
def test_bft_time_is_power_weighted_median_of_last_commit(
    at2: Tip2, votes: dict[Keypair, int], median: int
) -> None:
    block2 = at2.builder.blocks[-1]
    base = block2.header.time
    commit = precommits(block2, at2.network_id, [(k, base + at) for k, at in votes.items()])
    at2.builder.last_commit = commit
    block3 = at2.builder.propose([])
    assert block3.header.time == base + median
    for wrong in (base + median - 1, base + median + 1):
        with pytest.raises(BlockError, match=f"time {wrong} is not the BFT time {base + median}"):
            at2.chain.append(replace_header(block3, time=wrong))
    at2.chain.append(block3)
    assert at2.chain.tip.time == base + median


@pytest.mark.parametrize("offset", [0, -1], ids=["at-previous-time", "before-previous-time"])
def test_precommit_at_or_before_previous_block_time_is_invalid(at2: Tip2, offset: int) -> None:
    block2 = at2.builder.blocks[-1]
    base = block2.header.time
    late = [(V1, base + 100), (V2, base + 100), (V3, base + offset), (V4, base + 100)]
    at2.builder.last_commit = precommits(block2, at2.network_id, late)
    candidate = at2.builder.propose([])
    before = snapshot(at2.chain)
    with pytest.raises(
        BlockError,
        match=f"block 3: precommit by {V3.public_key.hex()[:16]} has timestamp {base + offset}, "
        f"not after block 2's time {base}",
    ):
        at2.chain.append(candidate)
    assert snapshot(at2.chain) == before


def test_time_strictly_increases_along_a_chain() -> None:
    _, blocks = standard_chain()
    times = [b.header.time for b in blocks]
    assert times[0] == GENESIS_TIME
    assert all(a < b for a, b in itertools.pairwise(times))


def test_tip_certificate_signed_at_or_before_its_block_time_is_refused(tmp_path: Path) -> None:
    """Regression: `Chain.verify_commit` (so `Store.append`, import and audit) accepts a tip
    certificate whose precommits are not after the tip block's time. Such precommits are invalid
    (DESIGN.md "Blocks"), and the next block, which must carry that certificate as last_commit, is
    then refused forever: the store holds a certificate that can never be used."""
    ledger = build_standard(tmp_path / "home", validators="four")
    with Store.open(ledger.path, rules=commons_rules) as store:
        builder = Builder(ledger.genesis, ledger.keys, store=store)
        builder.last_commit = ledger.commits[-1]
        block = builder.propose([])
        stale = builder.certify(block, timestamp=block.header.time)
        with pytest.raises(InvalidData, match="time"):
            store.append(block, stale)
        assert store.tip.height == ledger.tip


# block validity rules, one by one, with the message each names


def _forged(t: Tip2) -> Block:
    """ada's record with a signature by grace's key over the same bytes."""
    good = t.good()
    record = good.records[0]
    signature = t.authors["grace"].key.sign(Tag.RECORD, t.network_id, record.signed_body())
    return replace_records(
        good, [dataclasses.replace(record, signature=signature), good.records[1]]
    )


def _other_network(t: Tip2) -> Block:
    good = t.good()
    ada = t.authors["ada"]
    wrong = ada.sign(
        seq=3,
        prev=good.records[0].prev,
        at=t.time,
        body=Contribution(title="Exporter", kind="code"),
        network_id=sha256(b"elsewhere"),
    )
    return replace_records(good, [wrong, good.records[1]])


def _only(make: Callable[[Tip2], Record]) -> Callable[[Tip2], Block]:
    return lambda t: replace_records(t.good(), [make(t)])


def _ada_head(t: Tip2) -> Any:
    return t.chain.state.feed_head(t.authors["ada"].public_key)


_seq_gap = _only(lambda t: t.next("ada", Identity(name="ada"), skip=1))
_wrong_prev = _only(
    lambda t: t.authors["ada"].sign(seq=3, prev=sha256(b"x"), at=t.time, body=Identity(name="a"))
)
_backwards = _only(lambda t: t.next("ada", Identity(name="a"), at=_ada_head(t).timestamp - 1))
_beyond_skew = _only(lambda t: t.next("ada", Identity(name="a"), at=t.time + MAX_SKEW + 1))


def _same_seq_twice(t: Tip2) -> Block:
    good = t.good()
    twin = t.next("ada", Contribution(title="Twin", kind="code"))
    return replace_records(good, [good.records[0], twin])


def _grace_2(t: Tip2) -> Record:
    return t.builder.blocks[1].records[1]


def _evidence(t: Tip2, second: Record, by: str = "linus") -> Record:
    return t.next(by, Equivocation.of(_grace_2(t), second))


def _bad_evidence(t: Tip2) -> Block:
    foreign = t.authors["grace"].sign(
        seq=2,
        prev=t.fork.prev,
        at=t.time,
        body=Contribution(title="Elsewhere", kind="code"),
        network_id=sha256(b"elsewhere"),
    )
    return replace_records(t.good(), [_evidence(t, foreign)])


def _third(t: Tip2) -> Record:
    return t.authors["grace"].sign(
        seq=2, prev=t.fork.prev, at=t.time, body=Contribution(title="Third", kind="code")
    )


def _evidence_twice(t: Tip2) -> Block:
    return replace_records(t.good(), [_evidence(t, t.fork), _evidence(t, _third(t), by="ada")])


def _swapped_records(t: Tip2) -> Block:
    good = t.good()
    return replace_records(good, list(reversed(good.records)))


def _header(**changes: Any) -> Callable[[Tip2], Block]:
    def make(t: Tip2) -> Block:
        good = t.good()
        values = {k: v(good) if callable(v) else v for k, v in changes.items()}
        return replace_header(good, **values)

    return make


def _last_commit(make: Callable[[Tip2, Block], Commit]) -> Callable[[Tip2], Block]:
    def build(t: Tip2) -> Block:
        return replace_header(t.good(), last_commit=make(t, t.builder.blocks[-1]))

    return build


RULES = [
    ("height-skips-ahead", _header(height=4), "expected block 3, got block 4"),
    ("height-repeats", _header(height=2), "expected block 3, got block 2"),
    ("prev-does-not-link", _header(prev=bytes(32)), "block 3: prev does not link to block 2"),
    (
        "validators-hash",
        _header(validators_hash=sha256(b"x")),
        "block 3: validators_hash is not the hash of the height's set",
    ),
    (
        "next-validators-hash",
        _header(next_validators_hash=sha256(b"x")),
        "block 3: next_validators_hash is not the next height's set",
    ),
    (
        "proposer-not-a-validator",
        _header(proposer=OUTSIDER.public_key),
        f"block 3: proposer {OUTSIDER.public_key.hex()[:16]} is not a validator",
    ),
    (
        "last-commit-of-another-block",
        _last_commit(lambda t, b: t.builder.commits[0]),
        "block 3: last_commit: certificate is for height 1, expected 2",
    ),
    (
        "last-commit-below-quorum",
        _last_commit(lambda t, b: certify(b, t.network_id, [V1, V4], timestamp=b.header.time + 1)),
        "block 3: last_commit: certificate at height 2 carries power 4 of 6",
    ),
    (
        "last-commit-by-outsider",
        _last_commit(
            lambda t, b: certify(
                b, t.network_id, [V1, V2, OUTSIDER, V4], timestamp=b.header.time + 1
            )
        ),
        "block 3: last_commit: precommit at height 2 by .*, not a validator of that height",
    ),
    (
        "last-commit-other-network",
        _last_commit(
            lambda t, b: certify(b, sha256(b"other"), [V1, V2, V3, V4], timestamp=b.header.time + 1)
        ),
        "block 3: last_commit: precommit at height 2 by .*: bad signature",
    ),
    ("time-not-bft-time", _header(time=lambda g: g.header.time + 1), "is not the BFT time"),
    ("record-forged-signature", _forged, "block 3 record [0-9a-f]{64}: bad signature by "),
    ("record-signed-for-other-network", _other_network, "block 3 record .*: bad signature"),
    ("record-seq-gap", _seq_gap, "block 3 record .*: feed .*: expected seq 3, got 4"),
    (
        "record-wrong-prev",
        _wrong_prev,
        "block 3 record .*seq 3: prev [0-9a-f]+ is not the id of seq 2",
    ),
    ("record-timestamp-backwards", _backwards, "is before the previous record's"),
    ("record-timestamp-beyond-skew", _beyond_skew, f"more than {MAX_SKEW} ms after the reference"),
    ("record-same-seq-twice-in-block", _same_seq_twice, "expected seq 4, got 3"),
    ("evidence-does-not-verify", _bad_evidence, "equivocation.(first|second) does not verify"),
    ("evidence-twice-in-one-block", _evidence_twice, "seq 2 is already recorded"),
    ("records-root", _swapped_records, "block 3: records_root does not match its records"),
    (
        "log-size",
        _header(log_size=lambda g: g.header.log_size + 1),
        "block 3: log_size 8, expected 7",
    ),
    ("log-root", _header(log_root=sha256(b"x")), "block 3: log_root does not match"),
    ("state-root", _header(state_root=sha256(b"x")), "block 3: state_root does not match"),
    (
        "new-validators-not-set-by-transition",
        _header(new_validators=validator_set([(OUTSIDER, 1)])),
        "block 3: new_validators differs from the state transition's",
    ),
]


@pytest.mark.parametrize(
    ("make", "message"), [pytest.param(m, msg, id=name) for name, m, msg in RULES]
)
def test_block_rule_refuses_and_leaves_chain_unchanged(
    at2: Tip2, make: Callable[[Tip2], Block], message: str
) -> None:
    assert_refused(at2, make(at2), message)


def test_record_count_over_max_block_records_is_refused() -> None:
    limit = dict(LEDGER_PARAMS)["max_block_records"]
    t = tip2({"max_block_records": dataclasses.replace(limit, value=3)})
    records = [*t.good_records(), t.next("grace", Contribution(title="Third", kind="code"))]
    ada_4 = t.authors["ada"].sign(
        seq=4, prev=records[0].id, at=t.time, body=Contribution(title="Fourth", kind="code")
    )
    assert_refused(t, t.builder.propose([*records, ada_4]), "block 3: 4 records exceed the limit 3")


def test_record_count_must_match_the_body() -> None:
    t = tip2()
    good = t.good()
    wire = {"header": good.header.to_wire(), "records": (good.records[0].raw,)}
    with pytest.raises(BlockError, match="block 3 says 2 records, carries 1"):
        decode_block(codec.encode(wire))


def test_record_timestamp_boundaries_are_accepted(at2: Tip2) -> None:
    """Equal to the previous record's, and exactly max_skew ahead of the block time, both pass."""
    same = at2.next("ada", Contribution(title="Same ms", kind="code"), at=_ada_head(at2).timestamp)
    ahead = at2.next("linus", Contribution(title="Ahead", kind="code"), at=at2.time + MAX_SKEW)
    block = at2.builder.propose([same, ahead])
    at2.builder.accept(block, at2.builder.certify(block))
    assert at2.chain.tip.height == 3


def test_evidence_at_most_once_per_author_and_seq_across_blocks(at2: Tip2) -> None:
    block = at2.builder.propose([_evidence(at2, at2.fork)])
    at2.builder.accept(block, at2.builder.certify(block))
    grace = at2.authors["grace"].public_key
    assert at2.chain.state.has_evidence(grace, 2)
    candidate = replace_records(at2.builder.propose([]), [_evidence(at2, _third(at2), by="ada")])
    before = snapshot(at2.chain)
    with pytest.raises(
        BlockError, match=f"evidence for author {grace.hex()[:16]} seq 2 is already recorded"
    ):
        at2.chain.append(candidate)
    assert snapshot(at2.chain) == before


def test_refused_block_leaves_the_store_unchanged(tmp_path: Path) -> None:
    ledger = build_standard(tmp_path / "home", validators="four")
    with Store.open(ledger.path, rules=commons_rules) as store:
        before = snapshot(store.chain)
        builder = Builder(ledger.genesis, ledger.keys, store=store)
        builder.last_commit = ledger.commits[-1]
        good = builder.propose([])
        with pytest.raises(BlockError, match="state_root"):
            store.append(replace_header(good, state_root=bytes(32)), builder.certify(good))
        assert snapshot(store.chain) == before
        # a good block with a certificate that does not certify it: refused, nothing stored
        with pytest.raises(CertificateError, match="not more than 2/3"):
            store.append(good, builder.certify(good, [V4]))
        assert snapshot(store.chain) == before
    with Store.open(ledger.path, rules=commons_rules) as reopened:
        assert snapshot(reopened.chain) == before
        assert reopened.block(ledger.tip + 1) is None


# validator-set changes take effect two heights later


A_SET = [(keypair(f"validator/a{i}"), 1) for i in range(3)]
B_SET = [(keypair(f"validator/b{i}"), p) for i, p in enumerate((1, 1, 1, 3))]
A_KEYS = [k for k, _ in A_SET]
B_KEYS = [k for k, _ in B_SET]
CHANGE_AT = 3


def change_apply(state: LedgerState, block: Any) -> LedgerState:
    if block.height == CHANGE_AT:
        state.validator_change = validator_set(B_SET)
    return state


def test_validator_change_takes_effect_two_heights_later() -> None:
    genesis = genesis_of(A_SET)
    b = Builder(genesis, A_KEYS, apply=change_apply)
    chain = b.chain
    old, new = validator_set(A_SET), validator_set(B_SET)
    b.add([])
    b.add([])
    change = b.propose([])
    assert change.header.new_validators == new
    with pytest.raises(BlockError, match="block 3: new_validators differs"):
        chain.append(replace_header(change, new_validators=None))
    b.accept(change, b.certify(change))
    assert (change.header.validators_hash, change.header.next_validators_hash) == (old.hash,) * 2

    # H+1 = 4: still the old set's block; a certificate by the new set is refused
    block4 = b.propose([])
    assert (block4.header.validators_hash, block4.header.next_validators_hash) == (
        old.hash,
        new.hash,
    )
    with pytest.raises(BlockError, match=r"block 4: proposer \w+ is not a validator"):
        chain.append(replace_header(block4, proposer=B_KEYS[0].public_key))
    chain.append(block4)
    by_new = b.certify(block4, B_KEYS)
    with pytest.raises(CertificateError, match="not a validator of that height"):
        chain.verify_commit(by_new)
    by_old = b.certify(block4, A_KEYS)
    chain.verify_commit(by_old)
    b.blocks.append(block4)
    b.last_commit = by_old
    block5 = b.propose([], proposer=B_KEYS[3])
    with pytest.raises(BlockError, match="block 5: last_commit: precommit at height 4 by"):
        chain.append(replace_header(block5, last_commit=by_new))

    # H+2 = 5: the new set's block; the old set can neither propose nor certify it
    with pytest.raises(BlockError, match=r"block 5: proposer \w+ is not a validator"):
        chain.append(replace_header(block5, proposer=A_KEYS[0].public_key))
    assert block5.header.validators_hash == new.hash
    chain.append(block5)
    with pytest.raises(CertificateError, match="not a validator of that height"):
        chain.verify_commit(b.certify(block5, A_KEYS))
    with pytest.raises(CertificateError, match="carries power 4 of 6"):
        chain.verify_commit(b.certify(block5, [B_KEYS[0], B_KEYS[3]]))
    by_new5 = b.certify(block5, B_KEYS)
    chain.verify_commit(by_new5)

    # block 6 must carry the new set's certificate of 5, not the old set's
    b.last_commit = by_new5
    block6 = b.propose([], proposer=B_KEYS[3])
    with pytest.raises(BlockError, match="block 6: last_commit: precommit at height 5 by"):
        chain.append(replace_header(block6, last_commit=b.certify(block5, A_KEYS)))
    chain.append(block6)
    assert chain.tip.height == 6


# state root


def test_state_root_is_identical_for_two_chains_applying_the_same_blocks() -> None:
    chain, blocks = standard_chain()
    replay = Chain(chain.genesis)
    for block in blocks:
        replay.append(block)
        assert replay.state.root() == block.header.state_root
    assert replay.state.root() == chain.state.root()
    assert list(replay.state.items()) == list(chain.state.items())
    other, _ = standard_chain()
    assert other.state.root() == chain.state.root()


def test_state_root_commits_to_the_transition_state() -> None:
    """A transition that writes one more key gives another root, and a chain without that
    transition refuses those blocks at the first one."""
    plain, _ = standard_chain()
    governed, blocks = standard_chain(extra_param=1)
    assert governed.state.root() != plain.state.root()
    with pytest.raises(BlockError, match="block 1: state_root does not match"):
        Chain(governed.genesis).append(blocks[0])


def test_stores_built_from_the_same_inputs_are_identical(tmp_path: Path) -> None:
    one = build_standard(tmp_path / "one", validators="four")
    two = build_standard(tmp_path / "two", validators="four")
    assert [b.id for b in one.blocks] == [b.id for b in two.blocks]
    with (
        Store.open(one.path, rules=commons_rules) as a,
        Store.open(two.path, rules=commons_rules) as b,
    ):
        assert a.chain.state.root() == b.chain.state.root() == one.blocks[-1].header.state_root


@pytest.mark.parametrize("seed", ["0", "4242"])
def test_state_root_is_the_same_in_a_fresh_process_with_another_hash_seed(seed: str) -> None:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    result = subprocess.run(
        [sys.executable, "-c", state_root_script()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == standard_chain_root().hex()


def test_records_root_is_the_rfc9162_root_of_the_body(at2: Tip2) -> None:
    good = at2.good()
    assert good.header.records_root == root_of([r.raw for r in good.records])


# a block judged before it is appended (a node validates a proposal, then stores it decided)


def counting(chain: Chain) -> list[int]:
    """Counts each execution of a block's state transition on `chain`."""
    runs: list[int] = []
    apply = chain.apply

    def counted(state: LedgerState, block: Any) -> LedgerState:
        runs.append(block.header.height)
        return apply(state, block)

    chain.apply = counted
    return runs


def test_a_judged_block_is_executed_once_and_lands_as_if_executed_on_append(at2: Tip2) -> None:
    fresh = Chain(at2.chain.genesis, apply=at2.chain.apply)  # the same blocks, never judged
    for block in at2.builder.blocks:
        fresh.append(block)
    runs = counting(at2.chain)
    block = at2.good()
    at2.chain.validate(block)
    at2.chain.validate(block)
    at2.chain.append(block, commit=at2.builder.certify(block))
    assert runs == [3]  # proposing it executed it; judging and appending it did not again
    fresh.append(block)
    assert snapshot(at2.chain) == snapshot(fresh)


def test_a_judged_header_with_other_records_is_executed_and_refused(at2: Tip2) -> None:
    block = at2.good()
    at2.chain.validate(block)
    swapped = replace_records(block, list(reversed(block.records)))
    assert swapped.id == block.id
    runs = counting(at2.chain)
    assert_refused(at2, swapped, "records_root does not match its records")
    assert runs[0] == 3


def test_signatures_vouched_for_when_judged_are_checked_on_an_append_that_asks(at2: Tip2) -> None:
    forged = _forged(at2)
    made = at2.chain.propose(
        forged.records,
        proposer=forged.header.proposer,
        last_commit=forged.header.last_commit,
        signatures_checked=True,  # the caller vouches, wrongly
    )
    at2.chain.validate(made, signatures_checked=True)
    with pytest.raises(BlockError, match="bad signature"):
        at2.chain.append(made)  # asks for every signature to be checked
    assert at2.chain.tip.height == 2
