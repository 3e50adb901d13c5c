"""Benchmark of governance: replay votes over many proposals, with delegation.

Builds a network of M members (default 1,000), P proposals (default 1,000) and V votes (default
100,000) plus delegations, in blocks of B records, then replays the blocks through a fresh chain
with the Commons rules. Prints blocks applied per second, governance time per record, and
governance time as a share of raw Ed25519 verification time for the same records, measured in
the same run (target < 20%). Usage: python scripts/bench_governance.py [--votes V] [--proposals P]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import nacl.bindings

from governance.rules import PROPOSAL, Governance
from ledger.block import Block
from ledger.chain import Chain, certify
from ledger.crypto import Keypair, Tag, signing_bytes
from ledger.genesis import Param
from ledger.kinds_governance import Delegation, Proposal, Text, Vote
from ledger.records import ZERO_HASH, Body, Record, sign_record
from ledger.state import LedgerState
from node.rules import commons_genesis

SECOND = 1000


class Timed:
    """Wraps the governance transition and adds up the time spent in it."""

    def __init__(self, inner: Governance) -> None:
        self.inner = inner
        self.seconds = 0.0

    def __call__(self, state: LedgerState, block: Any) -> LedgerState:
        start = time.perf_counter()
        try:
            return self.inner(state, block)
        finally:
            self.seconds += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--proposals", type=int, default=1000)
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument("--per-block", type=int, default=2000)
    args = parser.parse_args()

    members = [Keypair.from_seed(i.to_bytes(32, "big")) for i in range(1, args.members + 1)]
    validator = Keypair.from_seed(b"\xff" * 32)
    genesis = commons_genesis(
        name="bench",
        time=0,
        members={k.public_key: (f"m{i}", 100 + i) for i, k in enumerate(members)},
        validators={validator.public_key: 1},
        params={
            "voting_delay": Param(value=0, min=0, max=10**6),
            "voting_period": Param(value=10**6, min=1, max=10**7),
            "max_live_proposals": Param(value=100, min=1, max=100),
        },
    )
    net = genesis.network_id
    heads: dict[bytes, tuple[int, bytes]] = {}
    now = 0

    def write(key: Keypair, body: Body) -> Record:
        seq, prev = heads.get(key.public_key, (0, ZERO_HASH))
        record = sign_record(key, net, seq=seq + 1, prev=prev, timestamp=now, body=body)
        heads[key.public_key] = (seq + 1, record.id)
        return record

    print(f"signing {args.proposals} proposals, {args.votes} votes ...", flush=True)
    batches: list[list[Record]] = []
    proposals = [
        write(members[i % len(members)], Proposal(title=f"proposal {i}", actions=(Text(),)))
        for i in range(args.proposals)
    ]
    delegations = [
        write(members[i], Delegation(to=members[i + 1].public_key))
        for i in range(0, len(members) - 1, 10)
    ]
    batches.append(proposals + delegations)
    voters = [m for i, m in enumerate(members) if i % 10 != 0]  # delegators do not vote
    votes = []
    for n in range(args.votes):
        voter = voters[n % len(voters)]
        proposal = proposals[(n // len(voters)) % len(proposals)]
        votes.append(write(voter, Vote(proposal=proposal.id, support=n % 3)))
    batches += [votes[i : i + args.per_block] for i in range(0, len(votes), args.per_block)]

    print("making blocks ...", flush=True)
    maker = Chain(genesis, apply=Governance(genesis))
    blocks: list[Block] = []
    last_commit = None
    for records in batches:
        block = maker.propose(records, proposer=validator.public_key, last_commit=last_commit)
        maker.append(block, signatures_checked=True)
        last_commit = certify(block, net, [validator], timestamp=block.header.time + SECOND)
        blocks.append(block)

    every = [r for b in blocks for r in b.records]
    signed = [
        (r.signature + signing_bytes(Tag.RECORD, net, r.signed_body()), r.author) for r in every
    ]
    start = time.perf_counter()
    for message, public in signed:
        nacl.bindings.crypto_sign_open(message, public)
    verify_seconds = time.perf_counter() - start

    timed = Timed(Governance(genesis))
    replay = Chain(genesis, apply=timed)
    start = time.perf_counter()
    for block in blocks:
        replay.append(block, signatures_checked=True)
    replay_seconds = time.perf_counter() - start
    assert replay.state.root() == maker.state.root()  # noqa: S101 - the replay is the same ledger

    tallied = sum(
        p["for"] + p["against"] + p["abstain"]
        for key, _ in replay.state.items()
        if key.startswith(PROPOSAL)
        for p in [replay.state.get(key)]
    )
    n = len(every)
    share = timed.seconds / verify_seconds
    rows = [
        ("records", f"{n:,} ({args.votes:,} votes on {args.proposals:,} proposals)"),
        ("blocks", f"{len(blocks)}"),
        ("voting power tallied", f"{tallied:,}"),
        ("raw Ed25519 verification", f"{verify_seconds:.2f} s ({n / verify_seconds:,.0f}/s)"),
        (
            "replay, signatures off",
            f"{replay_seconds:.2f} s ({len(blocks) / replay_seconds:.1f} blocks/s)",
        ),
        (
            "  of which governance",
            f"{timed.seconds:.2f} s ({timed.seconds / n * 1e6:.1f} us/record)",
        ),
        ("governance / verification", f"{share:.1%} (target < 20%)"),
    ]
    for label, value in rows:
        print(f"{label:<28} {value}")


if __name__ == "__main__":
    main()
