"""The forwarding policy (node/policy/gossip.py): flood new consensus messages to every other peer,
push own records whole and announce relayed ones by id, ask for an announced record one announcer
at a time, never forward one twice, forget seen ids by count and by age, and when the height is
stuck re-send status, own messages and own records to everyone and relay what peers are not known
to have."""

from __future__ import annotations

import pytest
from ledger_factory import GENESIS_TIME, Author, genesis_of, keypair

from ledger.crypto import sha256
from ledger.records import Identity
from ledger.vote_evidence import NIL, PREVOTE, Vote
from node.consensus.messages import Status
from node.policy.gossip import (
    ASKS_PER_ANNOUNCER,
    Forwarding,
    Gossip,
    Kind,
    Received,
    SeenCache,
    Send,
)

VALIDATOR = keypair("validator/gossip")
GENESIS = genesis_of([(VALIDATOR, 1)])
STUCK = 200
WANT_MS = 2_000
A, B, C = "a", "b", "c"


def vote(round_: int, height: int = 1) -> bytes:
    return Vote.sign(
        VALIDATOR, GENESIS.network_id, type_=PREVOTE, height=height, round_=round_, block_id=NIL
    ).raw


RECORD = Author("ada", keypair("member/ada"), GENESIS.network_id).write(
    Identity(name="ada"), GENESIS_TIME
)


def gossip(
    *peers: str, relay_again_ticks: int = 5, seen: SeenCache | None = None, max_announced: int = 100
) -> Gossip[str]:
    policy: Gossip[str] = Gossip(stuck_after_ms=STUCK, relay_again_ticks=relay_again_ticks,
                                 want_timeout_ms=WANT_MS, max_announced=max_announced,
                                 seen=seen)  # fmt: skip
    for peer in peers:
        policy.peer_joined(peer)
    return policy


def sends(*pairs: tuple[str, bytes], kind: Kind = Kind.CONSENSUS) -> list[Send[str]]:
    return [Send(peer=peer, kind=kind, data=data) for peer, data in pairs]


def test_a_new_message_goes_to_every_peer_but_its_sender_in_join_order() -> None:
    policy: Forwarding[str] = gossip(C, A, B)
    got = policy.received(A, vote(0), kind=Kind.CONSENSUS, now=0)
    assert got == Received(new=True, sends=tuple(sends((C, vote(0)), (B, vote(0)))))
    record = policy.received(B, RECORD.raw, kind=Kind.RECORD, now=0)
    assert record.sends == tuple(sends((C, RECORD.id), (A, RECORD.id), kind=Kind.HAVE))
    own = RECORD.raw + b"own"
    assert policy.originated(own, kind=Kind.RECORD, now=1) == sends(
        (C, own), (A, own), (B, own), kind=Kind.RECORD
    )


def ticked(policy: Gossip[str], now: int) -> list[Send[str]]:
    """The gossip interval of a node whose height moves every time (never stuck)."""
    return policy.ask_again(now) + policy.tick(now, height=now, status=b"s", own=(), known=())


def test_an_announced_record_is_asked_of_its_first_announcer_then_of_the_next_in_turn() -> None:
    policy = gossip(A, B, C)
    ticked(policy, 0)
    rid = RECORD.id
    assert policy.announced(B, [rid], now=10) == sends((B, rid), kind=Kind.WANT)
    assert policy.announced(A, [rid], now=11) == []  # asked of B already
    assert policy.announced(B, [rid], now=12) == []
    assert policy.wanted == 1
    assert ticked(policy, 10 + WANT_MS - 1) == []
    asked = [ticked(policy, 10 + k * WANT_MS) for k in range(1, 2 * ASKS_PER_ANNOUNCER + 1)]
    assert asked == [sends((p, rid), kind=Kind.WANT) for p in [A, B, A, B, A]] + [[]]
    assert policy.wanted == 0  # each announcer asked its share in vain: forgotten
    assert policy.announced(C, [rid], now=10**6) == sends((C, rid), kind=Kind.WANT)


def test_an_announcer_that_left_is_skipped() -> None:
    policy = gossip(A, B, C)
    ticked(policy, 0)
    policy.announced(A, [RECORD.id], now=0)
    policy.announced(B, [RECORD.id], now=0)
    policy.announced(C, [RECORD.id], now=0)
    policy.peer_left(B)
    assert ticked(policy, WANT_MS) == sends((C, RECORD.id), kind=Kind.WANT)


def test_a_record_that_came_is_not_asked_for_and_goes_on_only_to_peers_without_it() -> None:
    policy = gossip(A, B, C)
    ticked(policy, 0)
    policy.announced(A, [RECORD.id], now=0)
    policy.announced(B, [RECORD.id], now=1)
    got = policy.received(A, RECORD.raw, kind=Kind.RECORD, now=2)
    assert got == Received(new=True, sends=tuple(sends((C, RECORD.id), kind=Kind.HAVE)))
    assert policy.wanted == 0
    assert ticked(policy, WANT_MS) == []
    assert policy.announced(C, [RECORD.id], now=3) == []  # seen: not asked for again
    assert not policy.received(B, RECORD.raw, kind=Kind.RECORD, now=4).new


def test_a_record_that_arrived_but_was_not_kept_is_not_asked_for_again_until_announced() -> None:
    policy = gossip(A, B)
    ticked(policy, 0)
    policy.announced(A, [RECORD.id], now=0)
    policy.arrived(RECORD.id)
    assert ticked(policy, WANT_MS) == []
    assert policy.announced(B, [RECORD.id], now=WANT_MS) == sends((B, RECORD.id), kind=Kind.WANT)


def test_a_record_that_came_too_early_is_asked_for_again_of_its_sender() -> None:
    """Out of order, no room, or stamped ahead: the sender has it, and is asked again later (the
    peer it was asked of first, too), its share of times, then it is forgotten."""
    policy = gossip(A, B)
    ticked(policy, 0)
    policy.not_yet(A, RECORD.id, now=0)  # pushed whole, too early
    asked = [ticked(policy, k * WANT_MS) for k in range(1, ASKS_PER_ANNOUNCER + 2)]
    assert asked == [sends((A, RECORD.id), kind=Kind.WANT)] * ASKS_PER_ANNOUNCER + [[]]
    policy.announced(B, [RECORD.id], now=10**6)
    policy.not_yet(A, RECORD.id, now=10**6 + 1)  # asked of B, came from A, too early still
    assert ticked(policy, 10**6 + 1 + WANT_MS) == sends((A, RECORD.id), kind=Kind.WANT)
    assert ticked(policy, 10**6 + 1 + 2 * WANT_MS) == sends((B, RECORD.id), kind=Kind.WANT)


def test_one_peers_junk_announcements_never_crowd_out_anothers_records() -> None:
    policy = gossip(A, B, max_announced=100)
    ticked(policy, 0)
    junk = [i.to_bytes(32, "big") for i in range(1_000)]
    assert len(policy.announced(A, junk, now=0)) == 100  # its share; the rest ignored
    assert policy.announced(B, [RECORD.id], now=1) == sends((B, RECORD.id), kind=Kind.WANT)
    assert policy.announced(A, [RECORD.id], now=2) == []  # A's share is used up
    policy.received(B, RECORD.raw, kind=Kind.RECORD, now=3)
    for k in range(1, ASKS_PER_ANNOUNCER + 1):
        ticked(policy, k * WANT_MS)  # A's junk asked for in vain, then forgotten
    assert policy.wanted == 0
    assert len(policy.announced(A, junk[:5], now=10**6)) == 5  # its share is back


def ids(count: int, first: int = 0) -> list[bytes]:
    return [i.to_bytes(32, "big") for i in range(first, first + count)]


def test_a_peer_that_leaves_and_comes_back_keeps_the_share_its_open_asks_use() -> None:
    policy = gossip(A, B, max_announced=10)
    ticked(policy, 0)
    for turn in range(5):  # reconnecting does not buy a fresh share
        policy.announced(A, ids(10, 10 * turn), now=turn)
        policy.peer_left(A)
        policy.peer_joined(A)
    assert policy.wanted == 10
    for record_id in ids(50):
        policy.arrived(record_id)
    assert policy.wanted == 0
    assert len(policy.announced(A, ids(30, 1_000), now=10)) == 10  # its whole share, no more
    policy.peer_left(A)
    for record_id in ids(30, 1_000):
        policy.arrived(record_id)
    policy.peer_joined(A)
    assert len(policy.announced(A, ids(30, 2_000), now=11)) == 10


def test_an_honest_announcer_behind_many_silent_ones_is_asked_in_turn() -> None:
    silent = [f"s{i}" for i in range(10)]
    policy = gossip(*silent, B)
    ticked(policy, 0)
    for peer in silent:
        policy.announced(peer, [RECORD.id], now=0)
    policy.announced(B, [RECORD.id], now=1)
    asked = [s.peer for k in range(1, 12) for s in ticked(policy, k * WANT_MS)]
    assert asked == [*silent[1:], B, silent[0]]


def test_a_message_seen_before_is_not_new_and_not_forwarded_again() -> None:
    policy = gossip(A, B, C)
    policy.received(A, vote(0), kind=Kind.CONSENSUS, now=0)
    assert policy.received(B, vote(0), kind=Kind.CONSENSUS, now=1) == Received(new=False, sends=())
    assert policy.originated(vote(1), kind=Kind.CONSENSUS, now=2) == sends(
        (A, vote(1)), (B, vote(1)), (C, vote(1))
    )
    assert not policy.received(C, vote(1), kind=Kind.CONSENSUS, now=3).new


def test_a_message_for_this_node_only_is_new_but_not_forwarded() -> None:
    policy = gossip(A, B)
    assert policy.received(A, vote(0), kind=Kind.CONSENSUS, now=0, relay=False) == Received(
        new=True, sends=()
    )
    assert not policy.received(B, vote(0), kind=Kind.CONSENSUS, now=0).new


def test_a_peer_that_left_gets_nothing() -> None:
    policy = gossip(A, B, C)
    policy.peer_left(B)
    assert list(policy.peers) == [A, C]
    assert policy.originated(vote(0), kind=Kind.CONSENSUS, now=0) == sends(
        (A, vote(0)), (C, vote(0))
    )
    policy.peer_left(B)  # twice: no error
    policy.peer_joined(B)
    assert list(policy.peers) == [A, C, B]


def test_the_seen_cache_forgets_the_oldest_beyond_its_count() -> None:
    seen = SeenCache(max_count=2, max_age_ms=10_000)
    ids = [sha256(bytes([i])) for i in range(3)]
    assert all(seen.first_time(i, 0) for i in ids)
    assert len(seen) == 2
    assert ids[0] not in seen
    assert ids[2] in seen
    assert seen.first_time(ids[0], 1)  # new again
    assert not seen.first_time(ids[2], 1)


def test_the_seen_cache_forgets_ids_older_than_its_age() -> None:
    policy = gossip(A, B, seen=SeenCache(max_count=100, max_age_ms=1_000))
    policy.received(A, vote(0), kind=Kind.CONSENSUS, now=0)
    assert not policy.received(A, vote(0), kind=Kind.CONSENSUS, now=999).new
    again = policy.received(A, vote(0), kind=Kind.CONSENSUS, now=1_000)
    assert again.new
    assert again.sends == tuple(sends((B, vote(0))))
    assert len(policy.seen) == 1


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="seen-cache bounds must be positive"):
        SeenCache(max_count=0)
    with pytest.raises(ValueError, match="stuck_after_ms 0"):
        Gossip(stuck_after_ms=0)
    with pytest.raises(ValueError, match="positive"):
        Gossip(stuck_after_ms=1, want_timeout_ms=0)
    with pytest.raises(ValueError, match="positive"):
        Gossip(stuck_after_ms=1, max_announced=0)


def tick(
    policy: Gossip[str], now: int, *, height: int = 1, known: tuple[bytes, ...] = ()
) -> list[Send[str]]:
    return policy.tick(
        now,
        height=height,
        status=Status(height=height, round=0).raw,
        own=[vote(0, height)],
        known=known,
        own_records=[RECORD.raw],
    )


def test_a_node_whose_height_moves_announces_only_its_own_records_every_few_ticks() -> None:
    """Nothing of consensus (it is not stuck); the ids of its records not final yet every
    `relay_again_ticks` ticks, in case one was lost."""
    policy = gossip(A, B, relay_again_ticks=3)
    sent = [
        tick(policy, now, height=height) for height, now in enumerate(range(0, 1_400, STUCK), 1)
    ]
    again = sends((A, RECORD.id), (B, RECORD.id), kind=Kind.HAVE)
    assert sent == [[], [], again, [], [], again, []]
    assert tick(policy, 1_200 + STUCK - 1, height=7) == []  # not stuck a whole interval yet
    assert tick(policy, 1_200 + STUCK, height=7)[:2] == sends(
        (A, Status(height=7, round=0).raw), (B, Status(height=7, round=0).raw)
    )


def test_stuck_it_resends_status_own_messages_and_records_and_relays_what_peers_lack() -> None:
    policy = gossip(A, B)
    status = Status(height=1, round=0).raw
    own = vote(0)
    heard = vote(2)  # from A, so A has it
    lost = vote(3)  # B sent it and A never got it
    policy.received(A, heard, kind=Kind.CONSENSUS, now=0, relay=False)
    policy.received(B, lost, kind=Kind.CONSENSUS, now=0, relay=False)
    assert tick(policy, 0, known=(own, heard, lost)) == []
    assert tick(policy, STUCK, known=(own, heard, lost)) == [
        *sends((A, status), (B, status), (A, own), (B, own)),
        *sends((A, RECORD.raw), (B, RECORD.raw), kind=Kind.RECORD),
        *sends((B, heard), (A, lost)),
    ]
    # the next stuck tick re-sends what is its own, and relays nothing already relayed
    second = tick(policy, 2 * STUCK, known=(own, heard, lost))
    assert second == [
        *sends((A, status), (B, status), (A, own), (B, own)),
        *sends((A, RECORD.raw), (B, RECORD.raw), kind=Kind.RECORD),
    ]


def test_every_few_stuck_ticks_everything_is_relayed_again() -> None:
    policy = gossip(A, B, relay_again_ticks=3)
    heard = vote(2)
    policy.received(A, heard, kind=Kind.CONSENSUS, now=0, relay=False)
    relayed = []
    for n in range(8):
        out = tick(policy, n * STUCK, known=(heard,))
        relayed.append([s.peer for s in out if s.data == heard])
    # stuck ticks 1..7: relay to B at the first, then to both at the 3rd and 6th
    assert relayed == [[], [B], [], [A, B], [], [], [A, B], []]


def test_a_new_height_forgets_who_has_what() -> None:
    policy = gossip(A, B)
    old = vote(2)
    policy.received(A, old, kind=Kind.CONSENSUS, now=0, relay=False)
    tick(policy, 0)
    tick(policy, STUCK, known=(old,))  # relayed to B; A had it
    assert tick(policy, 2 * STUCK, height=2) == []
    out = tick(policy, 3 * STUCK, height=2, known=(old,))
    assert [s.peer for s in out if s.data == old] == [A, B]
