"""The catch-up policy (node/policy/sync.py): when a node is behind, which range it fetches from
whom, retries at another peer after a timeout or a useless answer, never asks a peer that served
invalid blocks again; and which decisions a node sends a peer that is behind, how often."""

from __future__ import annotations

import pytest

from node.policy.sync import MAX_BANNED, CatchUp, Fetch, Progress, Report

STALL, TIMEOUT, RESEND = 1_000, 3_000, 200
A, B, C = "a", "b", "c"


def policy(*peers: str, max_range: int = 10) -> CatchUp[str]:
    sync: CatchUp[str] = CatchUp(
        stall_ms=STALL, timeout_ms=TIMEOUT, resend_ms=RESEND, max_range=max_range, serve_batch=4
    )
    for peer in peers:
        sync.peer_joined(peer)
    return sync


def fetch(peer: str, first: int, last: int) -> Fetch[str]:
    return Fetch(peer=peer, first=first, last=last)


def test_with_no_peer_ahead_nothing_is_fetched_and_caught_up_needs_a_peer_heard() -> None:
    sync = policy(A, B)
    assert sync.poll(tip=5, now=0) == []
    assert not sync.caught_up(5)  # nobody heard from yet
    sync.peer_at(A, 6)  # deciding 6: it has decided 5, as this node has
    assert sync.poll(tip=5, now=10 * STALL) == []
    assert sync.caught_up(5)
    assert sync.progress() == Progress(ours=5, best=5, syncing=False)


def test_two_heights_behind_it_fetches_at_once_from_the_peer_that_has_most() -> None:
    sync = policy(A, B, C)
    sync.peer_at(A, 8)
    sync.peer_at(B, 30)
    sync.peer_at(C, 30)
    assert not sync.caught_up(5)
    assert sync.poll(tip=5, now=0) == [fetch(B, 6, 15)]  # max_range 10; B joined before C
    assert sync.in_flight == fetch(B, 6, 15)
    assert sync.progress() == Progress(ours=5, best=29, syncing=True)


def test_a_range_ends_where_the_peer_has_decided() -> None:
    sync = policy(A)
    sync.peer_at(A, 9)
    assert sync.poll(tip=5, now=0) == [fetch(A, 6, 8)]


def test_one_height_behind_it_waits_for_its_own_decision_then_fetches() -> None:
    sync = policy(A)
    sync.poll(tip=5, now=0)
    sync.peer_at(A, 7)  # A decided 6
    assert sync.poll(tip=5, now=STALL - 1) == []
    assert sync.poll(tip=5, now=STALL) == [fetch(A, 6, 6)]


def test_a_moving_tip_restarts_the_stall_clock() -> None:
    sync = policy(A)
    sync.poll(tip=4, now=0)
    sync.peer_at(A, 7)
    assert sync.poll(tip=5, now=STALL - 1) == []  # moved: 5 is being decided here too
    assert sync.poll(tip=5, now=2 * STALL - 2) == []
    assert sync.poll(tip=5, now=2 * STALL - 1) == [fetch(A, 6, 6)]


def test_one_request_at_a_time_and_the_next_range_when_the_tip_reaches_it() -> None:
    sync = policy(A, B, max_range=3)
    sync.peer_at(A, 20)
    assert sync.poll(tip=0, now=0) == [fetch(A, 1, 3)]
    assert sync.poll(tip=2, now=100) == []  # in flight, making progress
    assert sync.poll(tip=3, now=200) == [fetch(A, 4, 6)]
    assert sync.fetched(A, tip=6, now=300) == [fetch(A, 7, 9)]


def test_a_request_without_progress_times_out_and_goes_to_another_peer() -> None:
    sync = policy(A, B)
    sync.peer_at(A, 30)
    sync.peer_at(B, 20)
    assert sync.poll(tip=0, now=0) == [fetch(A, 1, 10)]
    assert sync.poll(tip=4, now=TIMEOUT - 1) == []  # progress at TIMEOUT - 1 ...
    assert sync.poll(tip=4, now=2 * TIMEOUT - 2) == []  # ... restarts the timeout
    assert sync.poll(tip=4, now=2 * TIMEOUT - 1) == [fetch(B, 5, 14)]


def test_a_failed_peer_rests_and_its_claims_are_not_believed_meanwhile() -> None:
    sync = policy(A)
    sync.peer_at(A, 30)
    sync.poll(tip=0, now=0)
    assert sync.fetch_failed(A, tip=0, now=10) == []
    sync.peer_at(A, 30)  # a peer that cannot serve what it claims keeps claiming it
    assert sync.progress() == Progress(ours=0, best=0, syncing=False)  # not behind: may join
    assert sync.poll(tip=0, now=10 + TIMEOUT - 1) == []  # resting
    assert sync.poll(tip=0, now=10 + TIMEOUT) == []  # rested; what it claimed meanwhile is gone
    sync.peer_at(A, 30)
    assert sync.poll(tip=0, now=10 + TIMEOUT + 1) == [fetch(A, 1, 10)]


def test_an_answer_that_moved_nothing_counts_as_a_failure() -> None:
    sync = policy(A, B)
    sync.peer_at(A, 30)
    sync.peer_at(B, 30)
    assert sync.poll(tip=0, now=0) == [fetch(A, 1, 10)]
    assert sync.fetched(A, tip=0, now=5) == [fetch(B, 1, 10)]
    assert sync.fetched(B, tip=7, now=9) == [fetch(B, 8, 17)]  # part of it is progress


def test_a_peer_that_served_invalid_blocks_is_reported_and_never_asked_again() -> None:
    sync = policy(A, B)
    sync.peer_at(A, 30)
    sync.peer_at(B, 12)
    assert sync.poll(tip=0, now=0) == [fetch(A, 1, 10)]
    out = sync.fetch_failed(A, tip=0, now=1, invalid="block 1 does not verify")
    assert out == [Report(peer=A, reason="block 1 does not verify"), fetch(B, 1, 10)]
    sync.peer_at(A, 50)
    assert sync.progress().best == 11
    sync.fetched(B, tip=11, now=2)
    assert sync.poll(tip=11, now=10 * TIMEOUT) == []
    assert sync.caught_up(11)


def test_the_banned_are_remembered_up_to_a_bound_oldest_forgotten_first() -> None:
    sync = policy()
    peers = [f"bad{i}" for i in range(MAX_BANNED + 1)]
    for peer in peers:
        sync.fetch_failed(peer, tip=0, now=0, invalid="forged")
    sync.peer_at(peers[1], 9)  # still banned: not believed
    assert sync.progress().best == 0
    sync.peer_at(peers[0], 9)  # forgotten: believed again, as any new peer
    assert sync.progress().best == 8


def test_a_peer_that_leaves_with_a_request_in_flight_is_replaced() -> None:
    sync = policy(A, B)
    sync.peer_at(A, 30)
    sync.peer_at(B, 30)
    sync.poll(tip=0, now=0)
    sync.peer_left(A)
    assert sync.in_flight is None
    assert sync.poll(tip=0, now=1) == [fetch(B, 1, 10)]


def test_decisions_for_a_peer_behind_are_a_batch_each_sent_once_per_interval() -> None:
    sync = policy(A, B)
    assert sync.decisions_for(A, 3, tip=20, now=0) == [3, 4, 5, 6]
    assert sync.decisions_for(A, 3, tip=20, now=RESEND - 1) == []
    assert sync.decisions_for(B, 3, tip=20, now=RESEND - 1) == [3, 4, 5, 6]
    assert sync.decisions_for(A, 5, tip=20, now=RESEND - 1) == [7, 8]
    assert sync.decisions_for(A, 5, tip=20, now=RESEND) == [5, 6]
    assert sync.decisions_for(A, 7, tip=8, now=RESEND) == []  # 7 and 8 went at RESEND - 1
    assert sync.decisions_for(A, 9, tip=8, now=10 * RESEND) == []  # nothing it lacks


def test_settings_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout_ms 0"):
        CatchUp(stall_ms=1, timeout_ms=0, resend_ms=1)
