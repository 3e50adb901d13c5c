"""The node's logic without sockets: a real store, real keys and signatures, frames in, actions
out. What a peer may and may not make this node do before the shell is involved."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ledger.codec import encode
from ledger.crypto import Keypair
from ledger.records import Contribution, Record, sign_record
from ledger.store import Store
from ledger.vote_evidence import PREVOTE, DoubleVote, Vote
from node.consensus.engine import Timeouts
from node.consensus.messages import Status
from node.core import GOSSIP_MS, Disconnect, NodeCore, Send, Submitted, _framed
from node.outbox import OUTBOX
from node.policy.gossip import WANT_TIMEOUT_MS, Kind
from node.policy.gossip import Send as Forward
from node.policy.mempool import Refused
from node.policy.signing import SigningGuard
from node.rules import commons_genesis, commons_rules
from node.wire import FRAME_FILL_BYTES, Push, decode_push, encode_push

ME, OTHER, THIRD = (Keypair.from_seed(bytes([i]) * 32) for i in (1, 2, 3))
A, B, C = b"A" * 32, b"B" * 32, b"C" * 32  # peers, named by their node keys
NODE_KEY = Keypair.from_seed(b"n" * 32)


def make_core(tmp_path: Path, *validators: Keypair) -> NodeCore:
    genesis = commons_genesis(
        name="core test",
        time=1_700_000_000_000,
        members={k.public_key: (f"m{i}", 100) for i, k in enumerate(validators)},
        validators={k.public_key: 1 for k in validators},
    )
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = Store.create(tmp_path / "ledger.sqlite", genesis, rules=commons_rules)
    return NodeCore(store, ME, timeouts=Timeouts(), now=0, reporter=NODE_KEY)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[NodeCore]:
    made = make_core(tmp_path, ME, OTHER, THIRD)
    yield made
    made.store.close()


def prevote(key: Keypair, core: NodeCore, block_id: bytes | None = None) -> Vote:
    return Vote.sign(
        key,
        core.network_id,
        type_=PREVOTE,
        height=1,
        round_=0,
        block_id=block_id or os.urandom(32),
    )


def frame(vote: Vote) -> bytes:
    return encode_push(Push.CONSENSUS, [vote.raw])


def joined(core: NodeCore, *peers: bytes) -> NodeCore:
    """`core` with `peers` connected, each heard at height 1: on a network that has decided
    nothing yet, that is caught up, and the node signs."""
    for peer in peers:
        core.peer_joined(peer, 0)
        core.on_frame(peer, encode_push(Push.CONSENSUS, [Status(height=1, round=0).raw]), 0)
    core.tick(1)
    return core


def relayed_to(actions: list[object], peer: bytes, raw: bytes) -> bool:
    return any(
        isinstance(a, Send) and a.peer == peer and raw in decode_push(a.frame)[1] for a in actions
    )


def pushed(actions: list[object], peer: bytes, kind: Push) -> list[bytes]:
    """The payloads of every `kind` frame sent to `peer`, in order."""
    return [
        payload
        for a in actions
        if isinstance(a, Send) and a.peer == peer
        for k, payloads in [decode_push(a.frame)]
        if k is kind
        for payload in payloads
    ]


def announced_to(actions: list[object], peer: bytes, record_id: bytes) -> bool:
    return record_id in pushed(actions, peer, Push.HAVE)


def test_a_node_signs_at_once_only_as_the_networks_only_validator(tmp_path: Path) -> None:
    alone = make_core(tmp_path / "alone", ME)
    assert alone.joined
    assert alone.engine.key is ME
    alone.store.close()
    many = make_core(tmp_path / "many", ME, OTHER)
    assert not many.joined
    assert many.engine.key is None
    many.tick(10_000)
    assert not many.joined  # nobody heard: it may be a restored node far behind
    assert joined(many, A).joined
    many.store.close()


def test_a_vote_with_a_bad_signature_disconnects_its_sender_and_goes_nowhere(
    core: NodeCore,
) -> None:
    joined(core, A, B)
    vote = prevote(OTHER, core)
    forged = replace(vote, signature=bytes([vote.signature[0] ^ 1]) + vote.signature[1:])
    actions = core.on_frame(A, frame(forged), 5)
    assert [a for a in actions if isinstance(a, Disconnect)] == [
        Disconnect(
            peer=A, reason=f"bad commons/prevote/v1 signature by {OTHER.public_key.hex()[:16]}"
        )
    ]
    assert not relayed_to(actions, B, forged.raw)


def test_a_valid_vote_is_relayed_once_and_one_by_a_stranger_not_at_all(core: NodeCore) -> None:
    joined(core, A, B)
    vote = prevote(OTHER, core)
    assert relayed_to(core.on_frame(A, frame(vote), 5), B, vote.raw)
    assert core.on_frame(A, frame(vote), 6) == []  # replayed: not forwarded again
    stranger = prevote(Keypair.from_seed(b"s" * 32), core)
    assert core.on_frame(A, frame(stranger), 7) == []  # no power at height 1: nobody counts it


def test_a_message_signed_with_this_nodes_key_elsewhere_stops_it_signing(
    core: NodeCore, caplog: pytest.LogCaptureFixture
) -> None:
    joined(core, A)
    assert core.joined
    assert core.engine.key is ME
    own = {m.raw for m in core.engine.own_messages()}
    for raw in own:  # its own messages coming back are no alarm
        core.on_frame(A, encode_push(Push.CONSENSUS, [raw]), 5)
    assert core.joined
    with caplog.at_level(logging.ERROR, logger="commons.node"):
        core.on_frame(A, frame(prevote(ME, core)), 6)
    assert not core.joined
    assert core.engine.key is None
    assert "another node runs this key" in caplog.text
    core.tick(2_000)
    assert not core.joined  # not even on a network that has decided nothing: it must watch


def test_two_votes_by_one_validator_for_different_blocks_go_on_the_chain_as_evidence(
    core: NodeCore,
) -> None:
    joined(core, A, B)
    first, second = prevote(OTHER, core), prevote(OTHER, core)
    core.on_frame(A, frame(first), 5)
    actions = core.on_frame(A, frame(second), 6)
    (evidence,) = core.mempool.pending_of(NODE_KEY.public_key)
    assert isinstance(evidence.body, DoubleVote)
    assert {evidence.body.first, evidence.body.second} == {first.raw, second.raw}
    assert relayed_to(actions, A, evidence.raw)  # to every peer: it is this node's own record
    assert relayed_to(actions, B, evidence.raw)
    third = prevote(OTHER, core)
    core.on_frame(A, frame(third), 7)  # the same offence again: proved once is enough
    assert core.mempool.pending_of(NODE_KEY.public_key) == (evidence,)


def test_the_signing_guard() -> None:
    guard = SigningGuard(watch_heights=2)
    assert not guard.may_sign(caught_up=False, covered=True, network_started=False)
    assert guard.may_sign(caught_up=True, covered=True, network_started=True)  # a restart
    assert guard.may_sign(caught_up=True, covered=False, network_started=False)  # a launch
    assert not guard.may_sign(caught_up=True, covered=False, network_started=True)  # a restore
    guard.decided(caught_up=False)  # fetched while behind: proves nothing
    guard.decided(caught_up=True)
    assert not guard.may_sign(caught_up=True, covered=False, network_started=True)
    guard.decided(caught_up=True)
    assert guard.may_sign(caught_up=True, covered=False, network_started=True)
    guard.signed_elsewhere()
    assert not guard.may_sign(caught_up=True, covered=True, network_started=False)
    guard.decided(caught_up=True)
    guard.decided(caught_up=True)
    assert guard.may_sign(caught_up=True, covered=False, network_started=True)


def test_records_relayed_are_announced_by_id_and_sent_whole_packed_in_order_when_asked(
    core: NodeCore,
) -> None:
    joined(core, A, B)
    author = Keypair.from_seed(b"a" * 32)
    records, prev = [], bytes(32)
    for seq in range(1, 301):  # about 4.3 KB each: more than one frame's fill
        body = Contribution(title=f"part {seq}", kind="code", description="x" * 4000)
        record = sign_record(author, core.network_id, seq=seq, prev=prev, timestamp=1, body=body)
        records.append(record)
        prev = record.id
    raws = [r.raw for r in records]
    frames = [encode_push(Push.RECORDS, raws[i : i + 100]) for i in (0, 100, 200)]
    actions = core.on_frames([(A, f) for f in frames], 5)
    assert pushed(actions, B, Push.HAVE) == [r.id for r in records]  # ids only, in order
    assert pushed(actions, B, Push.RECORDS) == []
    assert [a for a in actions if isinstance(a, Send) and a.peer == A] == []  # A sent them
    answer = core.on_frame(B, encode_push(Push.WANT, [r.id for r in records]), 6)
    to_b = [decode_push(a.frame) for a in answer if isinstance(a, Send) and a.peer == B]
    record_frames = [payloads for kind, payloads in to_b if kind is Push.RECORDS]
    assert [raw for payloads in record_frames for raw in payloads] == raws
    assert len(record_frames) == 2  # 1.3 MB of records: two frames of at most 1 MiB each
    assert all(sum(map(len, payloads)) <= FRAME_FILL_BYTES for payloads in record_frames)


def test_a_record_announced_is_asked_of_one_announcer_at_a_time_and_announced_on_once_come(
    core: NodeCore,
) -> None:
    """Asked of the first peer that announced it; of the next once that one has not answered
    within the want timeout; announced on, once it came, only to peers that did not announce
    it. An id unknown to this node is not answered."""
    joined(core, A, B, C)
    record = sign_record(Keypair.from_seed(b"w" * 32), core.network_id, seq=1, prev=bytes(32),
                         timestamp=1, body=Contribution(title="wanted", kind="code"))  # fmt: skip
    have = encode_push(Push.HAVE, [record.id])
    assert pushed(core.on_frame(A, have, 5), A, Push.WANT) == [record.id]
    assert core.on_frame(B, have, 6) == []  # asked of A already
    assert pushed(core.tick(5 + WANT_TIMEOUT_MS - 1), B, Push.WANT) == []  # a gossip interval
    assert pushed(core.tick(5 + WANT_TIMEOUT_MS + GOSSIP_MS), B, Push.WANT) == [record.id]
    came = core.on_frame(B, encode_push(Push.RECORDS, [record.raw]), 4_000)
    assert record.id in core.mempool
    assert announced_to(came, C, record.id)
    assert not announced_to(came, A, record.id)
    assert not announced_to(came, B, record.id)
    assert pushed(core.tick(10_000), A, Push.WANT) == []  # not asked for any more
    assert core.on_frame(C, encode_push(Push.WANT, [bytes(32)]), 10_001) == []
    answer = core.on_frame(C, encode_push(Push.WANT, [record.id]), 10_002)
    assert pushed(answer, C, Push.RECORDS) == [record.raw]


def feed(core: NodeCore, count: int, seed: bytes = b"f") -> list[Record]:
    """`count` records of one new author, seq 1 upwards."""
    author, records = Keypair.from_seed(seed * 32), []
    for seq in range(1, count + 1):
        prev = records[-1].id if records else bytes(32)
        body = Contribution(title=f"r{seq}", kind="code")
        records.append(sign_record(author, core.network_id, seq=seq, prev=prev, timestamp=1,
                                   body=body))  # fmt: skip
    return records


def gossip_ticks(core: NodeCore, start: int, end: int) -> list[object]:
    return [a for now in range(start, end, GOSSIP_MS) for a in core.tick(now)]


def test_records_that_overtake_the_one_before_them_are_asked_for_again_not_lost(
    core: NodeCore,
) -> None:
    """Record 1 is asked of A while A pushes records 2 to 6 whole (submitted there): 6 is too far
    ahead to keep yet, and is asked of A again once 1 has come. The same when 2 to 6 come from
    another announcer first."""
    joined(core, A, B)
    r = feed(core, 6)
    assert pushed(core.on_frame(A, encode_push(Push.HAVE, [r[0].id]), 5), A, Push.WANT) == [r[0].id]
    core.on_frame(A, encode_push(Push.RECORDS, [x.raw for x in r[1:]]), 6)
    assert r[5].id not in core.mempool  # more than 4 past the next one
    core.on_frame(A, encode_push(Push.RECORDS, [r[0].raw]), 7)
    assert pushed(gossip_ticks(core, 1_500, 4_000), A, Push.WANT) == [r[5].id]
    core.on_frame(A, encode_push(Push.RECORDS, [r[5].raw]), 4_000)
    assert all(x.id in core.mempool for x in r)
    s = feed(core, 6, seed=b"s")
    core.on_frame(A, encode_push(Push.HAVE, [s[0].id]), 5_000)
    core.on_frame(B, encode_push(Push.HAVE, [x.id for x in s]), 5_001)
    core.on_frame(B, encode_push(Push.RECORDS, [x.raw for x in s[1:]]), 5_002)
    core.on_frame(A, encode_push(Push.RECORDS, [s[0].raw]), 5_003)
    assert pushed(gossip_ticks(core, 6_000, 9_000), B, Push.WANT) == [s[5].id]


def test_want_retries_go_on_while_the_pacer_holds_the_height(tmp_path: Path) -> None:
    alone = make_core(tmp_path, ME)  # the only validator: holds the next height while idle
    try:
        alone.start(0)
        assert alone.pacer.held is not None
        for peer in (A, B):
            alone.peer_joined(peer, 0)
        (record,) = feed(alone, 1)
        have = encode_push(Push.HAVE, [record.id])
        assert pushed(alone.on_frame(A, have, 10), A, Push.WANT) == [record.id]  # never answered
        alone.on_frame(B, have, 11)
        assert pushed(gossip_ticks(alone, 1_000, 4_000), B, Push.WANT) == [record.id]
    finally:
        alone.store.close()


def test_a_want_is_answered_once_per_record_and_a_pending_record_is_not_fetched_again(
    core: NodeCore,
) -> None:
    """A frame naming one record 4,096 times gets it once. A record pending here whose id the
    seen-cache forgot is neither asked for nor announced again."""
    joined(core, A, B, C)
    (record,) = feed(core, 1)
    core.on_frame(A, encode_push(Push.RECORDS, [record.raw]), 5)
    answer = core.on_frame(B, encode_push(Push.WANT, [record.id] * 4096), 6)
    assert pushed(answer, B, Push.RECORDS) == [record.raw]
    late = 5 + 200_000  # past the seen-cache's age
    (other,) = feed(core, 1, seed=b"o")
    core.on_frame(A, encode_push(Push.RECORDS, [other.raw]), late)  # the cache forgets
    assert core.on_frame(B, encode_push(Push.HAVE, [record.id]), late) == []
    again = core.on_frame(B, encode_push(Push.RECORDS, [record.raw]), late + 1)
    assert pushed(again, C, Push.HAVE) == []


def test_a_peer_gets_what_is_sent_to_it_in_order_whatever_the_packing() -> None:
    """Forwards to one peer keep their order across kinds: a proposal never overtakes the
    records before it (it names them by id)."""
    sends = [
        Forward(peer=A, kind=Kind.RECORD, data=b"r1"),
        Forward(peer=B, kind=Kind.RECORD, data=b"r1"),
        Forward(peer=A, kind=Kind.RECORD, data=b"r2"),
        Forward(peer=A, kind=Kind.CONSENSUS, data=b"proposal"),
        Forward(peer=A, kind=Kind.RECORD, data=b"r3"),
        Disconnect(peer=B, reason="bye"),
        Forward(peer=A, kind=Kind.CONSENSUS, data=b"vote"),
    ]
    actions = _framed(sends)
    assert [(a.peer, decode_push(a.frame)) for a in actions if isinstance(a, Send)] == [
        (A, (Push.RECORDS, (b"r1", b"r2"))),
        (A, (Push.CONSENSUS, (b"proposal",))),
        (A, (Push.RECORDS, (b"r3",))),
        (A, (Push.CONSENSUS, (b"vote",))),
        (B, (Push.RECORDS, (b"r1",))),
    ]
    assert actions[-1] == Disconnect(peer=B, reason="bye")


def test_frames_a_peer_sent_after_bytes_it_is_dropped_for_are_not_read(core: NodeCore) -> None:
    joined(core, A, B)
    first, second = prevote(OTHER, core), prevote(THIRD, core)
    actions = core.on_frames([(A, b"\xc1"), (A, frame(first)), (B, frame(second))], 5)
    assert [a.peer for a in actions if isinstance(a, Disconnect)] == [A]
    assert not relayed_to(actions, B, first.raw)  # A's later frame was not taken
    assert relayed_to(actions, A, second.raw)  # B's was


def test_a_stale_record_costs_no_signature_check_and_a_fresh_forged_one_drops_its_sender(
    core: NodeCore,
) -> None:
    """A forged copy of a pending record's seq is refused as a conflict before its signature is
    looked at (a peer replaying old records makes this node verify nothing); a forged record
    the mempool would take is checked, and its sender dropped."""
    joined(core, A, B)
    author = Keypair.from_seed(b"a" * 32)
    first = sign_record(author, core.network_id, seq=1, prev=bytes(32), timestamp=1,
                        body=Contribution(title="first", kind="code"))  # fmt: skip
    second = sign_record(author, core.network_id, seq=2, prev=first.id, timestamp=1,
                         body=Contribution(title="second", kind="code"))  # fmt: skip

    def forged(raw: bytes) -> bytes:
        return raw[:-1] + bytes([raw[-1] ^ 1])  # the signature's last byte

    assert announced_to(core.on_frame(A, encode_push(Push.RECORDS, [first.raw]), 5), B, first.id)
    stale = core.on_frame(B, encode_push(Push.RECORDS, [forged(first.raw)]), 6)
    assert stale == []  # neither relayed nor the sender's fault: it was never verified
    assert len(core.verified._ids) == 1
    fresh = core.on_frame(B, encode_push(Push.RECORDS, [forged(second.raw)]), 7)
    assert [a.peer for a in fresh if isinstance(a, Disconnect)] == [B]
    assert second.id not in core.mempool


def test_own_records_taken_at_once_share_an_outbox_row_kept_until_all_are_final(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One row for a batch of own records; a restart brings back only those not final yet, and
    the row goes once the last of them is final. A row of one record, as written before rows
    held batches, is read too."""
    core = make_core(tmp_path, ME)  # the only validator: a block is decided at once
    t0 = core.store.genesis.time
    core.start(t0 + 100)

    def contribution(seed: bytes, seq: int, prev: bytes) -> Record:
        body = Contribution(title=f"{seed!r} {seq}", kind="code")
        key = Keypair.from_seed(seed * 32)
        return sign_record(key, core.network_id, seq=seq, prev=prev, timestamp=t0, body=body)

    alone = contribution(b"a", 1, bytes(32))
    y1 = contribution(b"y", 1, bytes(32))
    y2 = contribution(b"y", 2, y1.id)  # held: its seq 1 is not there yet
    old = contribution(b"o", 2, contribution(b"o", 1, bytes(32)).id)
    core.submit([alone.raw, y2.raw], t0 + 1_000)
    assert core.store.record(alone.id) is not None
    assert core.store.record(y2.id) is None
    assert list(core.store.node_values(OUTBOX)) == [f"{OUTBOX}000000000001"]
    twice = contribution(b"w", 1, bytes(32))
    core.store.set_node_values(
        {OUTBOX + old.id.hex(): old.raw, f"{OUTBOX}000000000005": encode((twice.raw, twice.raw))}
    )
    core.store.close()

    store = Store.open(tmp_path / "ledger.sqlite", rules=commons_rules)
    again = NodeCore(store, ME, timeouts=Timeouts(), now=t0 + 2_000, reporter=NODE_KEY)
    assert alone.id not in again.mempool  # final: not sent again
    assert y2.id in again.mempool
    assert old.id in again.mempool
    assert twice.id in again.mempool
    assert store.node_values(OUTBOX)[f"{OUTBOX}000000000001"] == encode((y2.raw,))  # alone now
    assert store.node_values(OUTBOX)[f"{OUTBOX}000000000005"] == encode((twice.raw,))
    again.start(t0 + 2_001)
    again.submit([y1.raw], t0 + 3_000)  # y2 follows it into the block
    assert store.record(y2.id) is not None
    assert list(store.node_values(OUTBOX)) == [OUTBOX + old.id.hex()]
    again.submit([contribution(b"o", 1, bytes(32)).raw], t0 + 4_000)
    assert store.record(old.id) is not None
    assert store.node_values(OUTBOX) == {}
    garbage = {f"{OUTBOX}000000000007": b"\xc1", f"{OUTBOX}000000000008": encode(()),
               f"{OUTBOX}000000000009": encode((1, b"not a record"))}  # fmt: skip
    store.set_node_values(garbage)
    store.close()
    store = Store.open(tmp_path / "ledger.sqlite", rules=commons_rules)
    with caplog.at_level(logging.WARNING, logger="commons.node"):
        NodeCore(store, ME, timeouts=Timeouts(), now=t0 + 6_000, reporter=NODE_KEY)
    assert store.node_values(OUTBOX) == {}  # unreadable rows are dropped, with a warning
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 3  # the row that is not MessagePack, the entry 1, the bad record
    store.close()


def test_a_record_nested_too_deep_disconnects_its_sender_and_the_node_goes_on(
    core: NodeCore,
) -> None:
    joined(core, A, B)
    author = Keypair.from_seed(b"d" * 32)
    record = sign_record(author, core.network_id, seq=1, prev=bytes(32), timestamp=1,
                         body=Contribution(title="fine", kind="code"))  # fmt: skip
    deep = record.raw.replace(b"\xa4refs\x90", b"\xa4refs" + b"\x91" * 5_000 + b"\x01")
    out = core.on_frame(A, encode_push(Push.RECORDS, [deep]), 5)
    assert [a.peer for a in out if isinstance(a, Disconnect)] == [A]
    assert announced_to(core.on_frame(B, encode_push(Push.RECORDS, [record.raw]), 6), A, record.id)


def test_own_records_the_mempool_cannot_take_after_a_restart_wait_and_are_offered_again(
    tmp_path: Path,
) -> None:
    """A clock behind their timestamps, or no room: they wait in the outbox (not lost), are
    offered again every gossip interval, and meanwhile no other record takes their seq."""
    core = joined(make_core(tmp_path, ME, OTHER, THIRD), A, B)  # nothing is decided here
    author = Keypair.from_seed(b"y" * 32)
    at = 2_000_000

    def signed(seq: int, prev: bytes, title: str) -> Record:
        body = Contribution(title=title, kind="code")
        return sign_record(author, core.network_id, seq=seq, prev=prev, timestamp=at, body=body)

    first = signed(1, bytes(32), "1")
    second = signed(2, first.id, "2")
    core.submit([first.raw, second.raw], at)
    row = core.store.node_values(OUTBOX)
    core.store.close()
    for now, room, back in ((at - 700_000, 10, []), (at, 1, [first]), (at, 10, [first, second])):
        store = Store.open(tmp_path / "ledger.sqlite", rules=commons_rules)
        again = NodeCore(store, ME, timeouts=Timeouts(), now=now, reporter=NODE_KEY,
                         mempool_records=room)  # fmt: skip
        assert [r for r in (first, second) if r.id in again.mempool] == back
        assert store.node_values(OUTBOX) == row
        if now < at:  # the clock behind
            other = signed(1, bytes(32), "another seq 1")
            results, _ = joined(again, A, B).submit([other.raw, first.raw], now)
            assert isinstance(results[0], Refused)
            assert "waiting" in str(results[0])
            assert isinstance(results[1], Submitted)
            assert results[1].status == "known"
            sent = again.tick(at - 500_000)  # the clock has caught up
            assert first.id in again.mempool
            assert second.id in again.mempool
            assert relayed_to(sent, A, first.raw)
            assert relayed_to(sent, B, second.raw)
        store.close()


def test_an_own_record_held_behind_records_from_peers_waits_for_them_after_a_restart(
    tmp_path: Path,
) -> None:
    """Its author's earlier records came from a peer and are not final: after a restart the
    record is too far ahead for the mempool until they come again, then it is offered again."""
    core = joined(make_core(tmp_path, ME, OTHER, THIRD), A, B)
    author = Keypair.from_seed(b"y" * 32)
    feed: list[Record] = []
    for seq in range(1, 7):
        prev = feed[-1].id if feed else bytes(32)
        body = Contribution(title=f"{seq}", kind="code")
        feed.append(
            sign_record(author, core.network_id, seq=seq, prev=prev, timestamp=1, body=body)
        )
    core.on_frame(A, encode_push(Push.RECORDS, [r.raw for r in feed[:5]]), 5)
    (taken,), _ = core.submit([feed[5].raw], 6)
    assert isinstance(taken, Submitted)
    assert taken.status == "accepted"
    core.store.close()
    store = Store.open(tmp_path / "ledger.sqlite", rules=commons_rules)
    again = joined(NodeCore(store, ME, timeouts=Timeouts(), now=7, reporter=NODE_KEY), A, B)
    assert feed[5].id not in again.mempool
    assert store.node_values(OUTBOX) != {}
    again.on_frame(B, encode_push(Push.RECORDS, [r.raw for r in feed[:5]]), 8)
    again.tick(9)
    assert feed[5].id in again.mempool
    store.close()


def test_an_old_decision_is_answered_with_nothing(tmp_path: Path) -> None:
    """A peer that served this node a block it has already thought it behind; that says
    nothing of what the peer lacks. Answering with decisions would have the two serve each
    other the same blocks for ever. A status of an old height is still served."""
    alone = make_core(tmp_path, ME)
    try:
        alone.start(0)
        now = 0
        for _ in range(5):  # empty blocks, one per max_block_interval
            now += 61_000
            alone.tick(now)
        assert alone.store.tip.height >= 4
        alone.peer_joined(A, now)
        decision = alone.decision(2)
        assert decision is not None
        answer = alone.on_frame(A, encode_push(Push.CONSENSUS, [decision.raw]), now + 1)
        assert pushed(answer, A, Push.CONSENSUS) == []
        behind = encode_push(Push.CONSENSUS, [Status(height=2, round=0).raw])
        served = pushed(alone.on_frame(A, behind, now + 2), A, Push.CONSENSUS)
        assert served[:1] == [decision.raw]
    finally:
        alone.store.close()
