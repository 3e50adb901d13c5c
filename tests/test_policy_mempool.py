"""The mempool's rules (node/policy/mempool.py) on real signed records and a real chain: what
enters, what is held, what is refused and why, what a proposer takes, what finality drops; and a
property test that whatever the mempool holds, it stays in its bounds and what it hands a
proposer is a block the chain accepts."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_factory import GENESIS_TIME, STEP_MS, Author, Builder, genesis_of, keypair

from ledger.block import Block
from ledger.crypto import sha256
from ledger.errors import SignatureError
from ledger.genesis import Param
from ledger.records import Contribution, Equivocation, Identity, Record
from ledger.vote_evidence import NIL, PREVOTE, DoubleVote, Vote
from node.policy.mempool import Admitted, Mempool, Refusal, Refused

SKEW = 5_000
NOW = GENESIS_TIME + 100_000
VALIDATOR = keypair("validator/mempool")
GENESIS = genesis_of(
    [(VALIDATOR, 1)],
    params={"max_skew_ms": Param(value=SKEW, min=0, max=86_400_000)},
)


class World:
    """A one-validator chain, its mempool, and authors writing feeds."""

    def __init__(self, *, max_records: int = 1000, max_bytes: int = 1 << 20, future: int = 4):
        self.builder = Builder(GENESIS, [VALIDATOR])
        self.pool = Mempool(
            lambda: self.builder.chain.state,
            network_id=GENESIS.network_id,
            max_records=max_records,
            max_bytes=max_bytes,
            max_future=future,
        )

    def author(self, name: str) -> Author:
        return Author(name, keypair(f"member/{name}"), GENESIS.network_id)

    def take(self, *, max_records: int = 1000, max_bytes: int = 1 << 20) -> list[Record]:
        return self.pool.take(
            max_records=max_records,
            max_bytes=max_bytes,
            block_time=self.builder.next_time,
            max_skew=SKEW,
        )

    def finalize(self, records: Sequence[Record]) -> tuple[Block, tuple[Record, ...]]:
        block = self.builder.add(records)
        return block, self.pool.on_finalized(block)


def work(author: Author, title: str, at: int = GENESIS_TIME) -> Record:
    return author.write(Contribution(title=title, kind="code"), at)


def refusal(pool: Mempool, record: Record, now: int = NOW) -> Refusal:
    with pytest.raises(Refused) as caught:
        pool.add(record, now=now)
    return caught.value.reason


def test_records_are_taken_in_arrival_order_each_author_in_seq_order() -> None:
    w = World()
    ada, bob = w.author("ada"), w.author("bob")
    a1, b1, a2, b2 = work(ada, "a1"), work(bob, "b1"), work(ada, "a2"), work(bob, "b2")
    for record in (a1, b1, a2, b2):
        assert w.pool.add(record, now=NOW) is Admitted.READY
    assert w.take() == [a1, b1, a2, b2]
    assert w.take(max_records=3) == [a1, b1, a2]
    assert len(w.pool) == w.pool.ready == 4
    assert w.pool.size_bytes == sum(len(r.raw) for r in (a1, b1, a2, b2))


def test_the_same_record_twice_is_known_and_a_local_submission_marks_it_local() -> None:
    w = World()
    record = work(w.author("ada"), "once")
    assert w.pool.add(record, now=NOW) is Admitted.READY
    assert w.pool.local_records() == ()
    assert w.pool.add(record, now=NOW, local=True) is Admitted.KNOWN
    assert w.pool.local_records() == (record,)
    assert record.id in w.pool
    assert w.pool.get(record.id) == record
    assert len(w.pool) == 1


def test_a_second_record_at_a_pending_seq_is_a_conflict() -> None:
    w = World()
    ada = w.author("ada")
    first = work(ada, "first")
    fork = ada.sign(seq=1, prev=first.prev, at=GENESIS_TIME, body=Identity(name="fork"))
    w.pool.add(first, now=NOW)
    assert refusal(w.pool, fork) is Refusal.CONFLICT


def test_a_record_at_a_finalized_seq_is_refused_as_final() -> None:
    w = World()
    ada = w.author("ada")
    first = work(ada, "first")
    w.finalize([first])
    fork = ada.sign(seq=1, prev=first.prev, at=GENESIS_TIME, body=Identity(name="fork"))
    assert refusal(w.pool, first) is Refusal.FINAL
    assert refusal(w.pool, fork) is Refusal.FINAL


def test_a_record_that_does_not_link_or_goes_back_in_time_is_refused() -> None:
    w = World()
    ada = w.author("ada")
    first = work(ada, "first", GENESIS_TIME + 10)
    w.pool.add(first, now=NOW)
    wrong_prev = ada.sign(seq=2, prev=sha256(b"x"), at=GENESIS_TIME + 10, body=Identity(name="x"))
    earlier = ada.sign(seq=2, prev=first.id, at=GENESIS_TIME + 9, body=Identity(name="x"))
    assert refusal(w.pool, wrong_prev) is Refusal.BROKEN_LINK
    with pytest.raises(Refused, match=r"timestamp \d+ is before the previous record's"):
        w.pool.add(earlier, now=NOW)


def test_a_record_stamped_past_the_clock_plus_max_skew_is_refused() -> None:
    w = World()
    record = work(w.author("ada"), "early", NOW + SKEW + 1)
    with pytest.raises(Refused, match=f"more than {SKEW} ms after this node's clock {NOW}"):
        w.pool.add(record, now=NOW)
    assert w.pool.add(record, now=NOW + 1) is Admitted.READY


def test_future_seqs_are_held_until_the_gap_closes_and_then_arrive() -> None:
    w = World(future=2)
    ada, bob = w.author("ada"), w.author("bob")
    a1, a2, a3, a4 = (work(ada, f"a{i}") for i in range(1, 5))
    b1 = work(bob, "b1")
    assert refusal(w.pool, a4) is Refusal.GAP  # 3 past the next seq, 1
    assert w.pool.add(a3, now=NOW) is Admitted.HELD
    assert w.pool.add(a2, now=NOW) is Admitted.HELD
    assert w.pool.add(b1, now=NOW) is Admitted.READY
    assert (len(w.pool), w.pool.ready) == (3, 1)
    assert w.take() == [b1]
    assert w.pool.pending_of(ada.public_key) == ()
    assert w.pool.add(a1, now=NOW) is Admitted.READY
    assert w.take() == [b1, a1, a2, a3]
    assert w.pool.pending_of(ada.public_key) == (a1, a2, a3)
    assert w.pool.add(a4, now=NOW) is Admitted.READY


def test_a_held_record_that_does_not_link_is_dropped_when_its_turn_comes() -> None:
    w = World()
    ada = w.author("ada")
    a1 = work(ada, "a1")
    stray = ada.sign(seq=2, prev=sha256(b"not a1"), at=GENESIS_TIME, body=Identity(name="x"))
    assert w.pool.add(stray, now=NOW) is Admitted.HELD
    assert w.pool.add(a1, now=NOW) is Admitted.READY
    assert stray.id not in w.pool
    assert w.take() == [a1]


def test_a_ready_record_evicts_held_ones_never_ready_ones_then_is_refused() -> None:
    w = World(max_records=3)
    ada, bob, cy, dee = w.author("ada"), w.author("bob"), w.author("cy"), w.author("dee")
    a1, a2, a3 = (work(ada, f"a{i}") for i in range(1, 4))
    b1, c1, d1 = work(bob, "b1"), work(cy, "c1"), work(dee, "d1")
    w.pool.add(b1, now=NOW)
    assert w.pool.add(a2, now=NOW) is Admitted.HELD
    assert w.pool.add(a3, now=NOW) is Admitted.HELD
    assert w.pool.add(c1, now=NOW) is Admitted.READY  # evicts ada's highest held seq, a3
    assert a3.id not in w.pool
    assert a2.id in w.pool
    assert refusal(w.pool, a3) is Refusal.FULL  # a held record evicts nothing
    assert w.pool.add(d1, now=NOW) is Admitted.READY  # evicts a2
    assert len(w.pool) == 3
    assert refusal(w.pool, a1) is Refusal.FULL  # ready records are never evicted
    assert w.take() == [b1, c1, d1]


def test_a_local_held_record_is_not_evicted() -> None:
    w = World(max_records=2)
    ada, bob, cy = w.author("ada"), w.author("bob"), w.author("cy")
    work(ada, "a1")
    a2 = work(ada, "a2")
    assert w.pool.add(a2, now=NOW, local=True) is Admitted.HELD
    w.pool.add(work(bob, "b1"), now=NOW)
    assert refusal(w.pool, work(cy, "c1")) is Refusal.FULL
    assert w.pool.local_records() == (a2,)


def test_the_byte_bound() -> None:
    ada, bob = World().author("ada"), World().author("bob")
    a1, b1 = work(ada, "a1"), work(bob, "b1")
    w = World(max_bytes=len(a1.raw) + len(b1.raw) - 1)
    w.pool.add(a1, now=NOW)
    with pytest.raises(Refused, match=f"no room for {len(b1.raw)} bytes more"):
        w.pool.add(b1, now=NOW)
    assert w.pool.size_bytes == len(a1.raw)


def test_take_stops_an_authors_run_at_a_record_stamped_after_the_block_time_plus_skew() -> None:
    w = World()
    ada, bob = w.author("ada"), w.author("bob")
    late = w.builder.next_time + SKEW + 1
    a1, a2, a3 = work(ada, "a1"), work(ada, "a2", late), work(ada, "a3", late)
    b1 = work(bob, "b1", late - 1)
    for record in (a1, a2, a3, b1):
        w.pool.add(record, now=late)
    assert w.take() == [a1, b1]


def test_take_keeps_runs_contiguous_under_the_byte_bound() -> None:
    w = World()
    ada, bob = w.author("ada"), w.author("bob")
    a1 = work(ada, "a1")
    a2 = ada.write(Contribution(title="a2", kind="code", description="x" * 2000), GENESIS_TIME)
    a3, b1 = work(ada, "a3"), work(bob, "b1")
    for record in (a1, a2, a3, b1):
        w.pool.add(record, now=NOW)
    taken = w.take(max_bytes=len(a1.raw) + len(a3.raw) + len(b1.raw))
    assert taken == [a1, b1]  # a3 fits but must not go without a2


def test_finality_drops_the_block_records_and_keeps_the_others_in_place() -> None:
    w = World()
    ada, bob, cy = w.author("ada"), w.author("bob"), w.author("cy")
    a1, b1, a2, c1 = work(ada, "a1"), work(bob, "b1"), work(ada, "a2"), work(cy, "c1")
    for record in (a1, b1, a2, c1):
        w.pool.add(record, now=NOW)
    _, dropped = w.finalize([b1, a1])
    assert dropped == ()
    assert w.take() == [a2, c1]
    assert len(w.pool) == 2
    _, dropped = w.finalize(w.take())
    assert dropped == ()
    assert len(w.pool) == w.pool.size_bytes == 0


def test_finality_of_another_record_at_a_pending_seq_drops_the_run_built_on_it() -> None:
    w = World()
    ada = w.author("ada")
    mine = work(ada, "mine")
    after = work(ada, "after")
    fork = ada.sign(seq=1, prev=mine.prev, at=GENESIS_TIME, body=Identity(name="fork"))
    w.pool.add(mine, now=NOW, local=True)
    w.pool.add(after, now=NOW, local=True)
    _, dropped = w.finalize([fork])
    assert dropped == (mine, after)
    assert len(w.pool) == 0
    assert w.pool.local_records() == ()


def test_finality_of_earlier_seqs_promotes_held_records() -> None:
    w = World()
    ada = w.author("ada")
    a1, a2, a3 = (work(ada, f"a{i}") for i in range(1, 4))
    w.pool.add(a3, now=NOW)
    _, dropped = w.finalize([a1, a2])
    assert dropped == ()
    assert w.take() == [a3]


def test_a_held_record_finalized_elsewhere_is_not_reported_dropped() -> None:
    w = World()
    ada = w.author("ada")
    a1, a2 = work(ada, "a1"), work(ada, "a2")
    w.pool.add(a2, now=NOW)
    _, dropped = w.finalize([a1, a2])
    assert dropped == ()
    assert len(w.pool) == 0


def equivocation(w: World) -> Equivocation:
    cheat = w.author("cheat")
    one = work(cheat, "one")
    two = cheat.sign(seq=1, prev=one.prev, at=GENESIS_TIME, body=Identity(name="two"))
    return Equivocation.of(one, two)


def test_one_pending_proof_per_offence_and_none_once_recorded() -> None:
    w = World()
    ada, bob = w.author("ada"), w.author("bob")
    proof = equivocation(w)
    by_ada = ada.write(proof, GENESIS_TIME)
    by_bob = bob.write(proof, GENESIS_TIME)
    assert w.pool.add(by_ada, now=NOW) is Admitted.READY
    with pytest.raises(Refused, match="recorded or proved by a pending record"):
        w.pool.add(by_bob, now=NOW)
    w.finalize([by_ada])
    assert refusal(w.pool, by_bob) is Refusal.EVIDENCE


def test_a_pending_proof_is_dropped_with_its_run_when_a_block_records_the_offence() -> None:
    w = World()
    ada, bob = w.author("ada"), w.author("bob")
    proof = equivocation(w)
    by_ada = ada.write(proof, GENESIS_TIME)
    bob1 = work(bob, "b1")
    by_bob = bob.write(proof, GENESIS_TIME)
    bob3 = work(bob, "b3")
    for record in (bob1, by_bob, bob3):
        w.pool.add(record, now=NOW)
    _, dropped = w.finalize([by_ada])
    assert dropped == (by_bob, bob3)
    assert w.take() == [bob1]
    w.finalize(w.take())


def test_evidence_that_does_not_verify_is_refused() -> None:
    w = World()
    cheat = Author("cheat", keypair("member/cheat"), sha256(b"another network"))
    one = work(cheat, "one")
    two = cheat.sign(seq=1, prev=one.prev, at=GENESIS_TIME, body=Identity(name="two"))
    record = w.author("ada").write(Equivocation.of(one, two), GENESIS_TIME)
    with pytest.raises(Refused, match=r"equivocation\.first does not verify"):
        w.pool.add(record, now=NOW)


def test_a_double_vote_proof_is_one_per_offence() -> None:
    w = World()
    voter = keypair("validator/double")

    def vote(block_id: bytes) -> Vote:
        return Vote.sign(
            voter, GENESIS.network_id, type_=PREVOTE, height=1, round_=0, block_id=block_id
        )

    proof = DoubleVote.of(vote(NIL), vote(sha256(b"a block")))
    ada, bob = w.author("ada"), w.author("bob")
    by_ada, by_bob = ada.write(proof, GENESIS_TIME), bob.write(proof, GENESIS_TIME)
    w.pool.add(by_ada, now=NOW)
    assert refusal(w.pool, by_bob) is Refusal.EVIDENCE
    w.finalize(w.take())
    assert refusal(w.pool, by_bob) is Refusal.EVIDENCE


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_records 0"):
        Mempool(lambda: GENESIS_STATE, network_id=GENESIS.network_id, max_records=0, max_bytes=1)


GENESIS_STATE = Builder(GENESIS, [VALIDATOR]).chain.state


# property: bounds hold, and what `take` returns is always a block the chain accepts

AUTHORS = 3
SEQS = 5


def _feeds() -> tuple[list[bytes], dict[tuple[int, int, bool], Record]]:
    """For each author, a feed of SEQS records 4 s apart and of unequal sizes and, at each seq, a
    fork of it."""
    keys, out = [], {}
    for a in range(AUTHORS):
        author = Author(f"prop-{a}", keypair(f"member/prop-{a}"), GENESIS.network_id)
        keys.append(author.public_key)
        for seq in range(1, SEQS + 1):
            at = GENESIS_TIME + seq * 4 * STEP_MS
            out[(a, seq, True)] = author.sign(
                seq=seq, prev=author.prev, at=at, body=Identity(name=f"fork-{seq}")
            )
            body = Contribution(title=f"{a}-{seq}", kind="code", description="x" * (seq * 97 % 300))
            out[(a, seq, False)] = author.write(body, at)
    return keys, out


KEYS, FEEDS = _feeds()
Op = tuple[str, int, int, bool, bool]
author_index = st.integers(0, AUTHORS - 1)
rarely = st.integers(0, 5).map(lambda x: x == 0)
adds = st.tuples(
    st.just("add"), author_index, st.sampled_from((1, 1, 1, 0, 2, 3)), rarely, st.booleans()
)
operations = st.lists(
    st.one_of(
        # a record (rarely a fork) at the author's next seq + n - 1 (0: a pending or final seq)
        adds,
        adds,
        adds,
        # a block of at most n records and m bytes (0: no bound)
        st.tuples(
            st.just("block"),
            st.integers(0, 6),
            st.integers(0, 1200),
            st.just(False),
            st.just(False),
        ),
        # another node's block finalizes the author's next record, or a fork of it
        st.tuples(st.just("foreign"), author_index, st.just(0), st.booleans(), st.just(False)),
    ),
    min_size=5,
    max_size=60,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations, st.integers(2, 8), st.integers(0, 2))
def test_bounds_hold_and_every_take_is_a_valid_block(
    ops: list[Op], max_records: int, future: int
) -> None:
    byte_bound = max_records * 400
    w = World(max_records=max_records, max_bytes=byte_bound, future=future)
    now = GENESIS_TIME + SEQS * 4 * STEP_MS
    state = w.builder.chain.state
    for kind, a, n, fork, local in ops:
        if kind == "add":
            tail = state.feed_head(KEYS[a]).seq + len(w.pool._runs.get(KEYS[a], ()))
            seq = min(max(tail + n, 1), SEQS)
            with contextlib.suppress(Refused):
                w.pool.add(FEEDS[(a, seq, fork)], now=now, local=local)
        elif kind == "block":
            taken = w.take(max_records=a or 1000, max_bytes=n or 1 << 20)
            assert sum(len(r.raw) for r in taken) <= (n or 1 << 20)
            for author in {r.author for r in taken}:
                seqs = [r.seq for r in taken if r.author == author]
                last = state.feed_head(author).seq
                assert seqs == list(range(last + 1, last + 1 + len(seqs)))
            w.builder.chain.validate(w.builder.propose(taken))
            w.finalize(taken)
        else:
            head = state.feed_head(KEYS[a])
            on_main = head.seq == 0 or head.id == FEEDS[(a, head.seq, False)].id
            if on_main and head.seq < SEQS:
                record = FEEDS[(a, head.seq + 1, fork)]
                if record.timestamp <= w.builder.next_time + SKEW:
                    w.finalize([record])
        ids = [*w.pool._ready, *w.pool._held]  # every record held
        assert len(ids) == len(w.pool) <= max_records
        held = [w.pool.get(i) for i in ids]
        assert w.pool.size_bytes == sum(len(r.raw) for r in held if r is not None) <= byte_bound
        assert {r.id for r in w.pool.local_records()} <= set(ids)


def test_the_signature_check_runs_only_for_a_record_whose_seq_and_time_pass() -> None:
    w = World(future=0)
    ada = w.author("ada")
    a1, a2, a3, a4 = (work(ada, f"a{i}") for i in range(1, 5))
    w.finalize([a1])
    checked: list[Record] = []
    fork = ada.sign(seq=2, prev=a1.id, at=GENESIS_TIME, body=Identity(name="fork"))
    assert w.pool.add(a2, now=NOW, verify=checked.append) is Admitted.READY
    for record, reason in ((a1, Refusal.FINAL), (fork, Refusal.CONFLICT), (a4, Refusal.GAP)):
        with pytest.raises(Refused) as caught:
            w.pool.add(record, now=NOW, verify=checked.append)
        assert caught.value.reason is reason
    assert w.pool.add(a2, now=NOW, verify=checked.append) is Admitted.KNOWN
    late = work(w.author("bob"), "late", NOW + SKEW + 1)
    with pytest.raises(Refused) as caught:
        w.pool.add(late, now=NOW, verify=checked.append)
    assert caught.value.reason is Refusal.FROM_FUTURE
    assert checked == [a2]

    def bad(record: Record) -> None:
        raise SignatureError("bad signature")

    with pytest.raises(SignatureError):
        w.pool.add(a3, now=NOW, verify=bad)
    assert a3.id not in w.pool
    assert w.pool.add(a3, now=NOW, verify=checked.append) is Admitted.READY
    assert checked == [a2, a3]
