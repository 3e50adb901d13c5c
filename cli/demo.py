"""`commons demo`: the whole product in two parts. First a real network (cli/network_demo.py):
four validator nodes as processes, members governing through the `commons` commands, a node
killed and caught up, every home audited. Then the ledger's own guarantees: a small multi-author
ledger exported, audited, and tampered with in named ways, the audit catching each one."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from cli import network_demo
from cli.home import output
from cli.output import console
from governance.rules import MEMBER, PROPOSAL
from ledger.audit import Failure, audit_bundle
from ledger.block import Block, Commit
from ledger.crypto import Keypair
from ledger.feed import FeedWriter
from ledger.files import open_bundle, write_bundle
from ledger.genesis import Genesis, Param
from ledger.kinds_governance import Proposal, Reward, Vote
from ledger.proof import RecordProof, verify_record_proof
from ledger.records import (
    Contribution,
    Endorsement,
    Equivocation,
    Identity,
    Record,
    sign_record,
)
from ledger.rulebook import Rule
from ledger.store import Store
from node.rules import commons_genesis, commons_rules
from node.solo import SoloValidator

GENESIS_TIME = 1_767_225_600_000  # 2026-01-01T00:00:00Z: the demo is the same on every run

Tamper = Callable[[list[Block], Commit | None], tuple[list[Block], Commit | None]]


@dataclass(frozen=True, slots=True)
class Built:
    genesis: Genesis
    store: Path
    parser: Record
    """A contribution to prove."""
    proposal: Record
    """A proposal rewarding a contribution, executed in the last block."""
    members: dict[str, bytes]


def build(where: Path) -> Built:
    """A ledger of three authors in eight blocks: identities, contributions, an endorsement, an
    equivocation caught as evidence, and a reward voted on and executed."""
    validator = Keypair.from_seed(os.urandom(32))
    names = ("ada", "grace", "linus")
    keys = {name: Keypair.from_seed(os.urandom(32)) for name in names}
    genesis = commons_genesis(
        name="demo-commons",
        time=GENESIS_TIME,
        members={k.public_key: (n, 100) for n, k in keys.items()},
        validators={validator.public_key: 1},
        # a community would vote for days; the demo votes for a minute
        params={
            "voting_delay": Param(value=0, min=0, max=30 * 86_400),
            "voting_period": Param(value=60, min=1, max=90 * 86_400),
            "timelock": Param(value=0, min=0, max=30 * 86_400),
            "late_quorum_extension": Param(value=0, min=0, max=30 * 86_400),
        },
    )
    authors = {n: FeedWriter(keys[n], genesis.network_id) for n in names}
    store = Store.create(where / "ledger.sqlite", genesis, rules=commons_rules)
    solo = SoloValidator(store, validator)
    now = GENESIS_TIME

    def block(records: list[Record], *, then: int = 1_000) -> None:
        """Make a block; the next block's time will be `then` ms later."""
        nonlocal now
        now += then
        solo.make_block(records, commit_time=now)

    ada, grace, linus = (authors[n] for n in names)
    block([a.write(Identity(name=n), GENESIS_TIME) for n, a in authors.items()])
    parser = ada.write(
        Contribution(
            title="Streaming parser for bundle files",
            kind="code",
            refs=("https://example.org/commons/pull/12",),
            description="Reads bundles frame by frame with bounded memory.",
            hours=14,
        ),
        now,
    )
    docs = linus.write(Contribution(title="Protocol walkthrough", kind="docs", hours=5), now)
    block([parser, docs])
    block([grace.write(Endorsement(contribution=parser.id, comment="Reviewed, works."), now)])
    # grace signs two different records at seq 3: the first is finalized, the second is evidence.
    kept = grace.write(Contribution(title="Fuzzing the decoder", kind="code"), now)
    forked = sign_record(
        grace.key,
        genesis.network_id,
        seq=kept.seq,
        prev=kept.prev,
        timestamp=now,
        body=Contribution(title="Fuzzing the decoder (again)", kind="code"),
    )
    block([kept])
    block([ada.write(Equivocation.of(kept, forked), now)])
    reward = Reward(to=linus.key.public_key, amount=5, contribution=docs.id)
    proposal = ada.write(Proposal(title="Reward the protocol walkthrough", actions=(reward,)), now)
    block([proposal])
    block([a.write(Vote(proposal=proposal.id, support=1), now) for a in (ada, grace)], then=61_000)
    block([])  # after the deadline: the proposal closes, is queued and executes
    store.close()
    members = {n: k.public_key for n, k in keys.items()}
    return Built(genesis, where / "ledger.sqlite", parser, proposal, members)


def _flip_signature(
    blocks: list[Block], commit: Commit | None
) -> tuple[list[Block], Commit | None]:
    target = blocks[1]
    record = target.records[0]
    forged = dataclasses.replace(record, signature=bytes(64 - 1) + b"\x01")
    blocks[1] = dataclasses.replace(target, records=(forged, *target.records[1:]))
    return blocks, commit


def _edit_title(blocks: list[Block], commit: Commit | None) -> tuple[list[Block], Commit | None]:
    target = blocks[1]
    record = target.records[1]
    assert isinstance(record.body, Contribution)  # noqa: S101 - the demo built it so
    body = dataclasses.replace(record.body, title="Protocol walkthrough (and the whole parser)")
    edited = dataclasses.replace(record, body=body)
    blocks[1] = dataclasses.replace(target, records=(target.records[0], edited))
    return blocks, commit


def _drop_record(blocks: list[Block], commit: Commit | None) -> tuple[list[Block], Commit | None]:
    target = blocks[0]
    header = dataclasses.replace(target.header, record_count=target.header.record_count - 1)
    blocks[0] = Block(header=header, records=target.records[1:])
    return blocks, commit


def _reorder(blocks: list[Block], commit: Commit | None) -> tuple[list[Block], Commit | None]:
    blocks[2], blocks[3] = blocks[3], blocks[2]
    return blocks, commit


def _swap_certificate(
    blocks: list[Block], commit: Commit | None
) -> tuple[list[Block], Commit | None]:
    earlier = blocks[-1].header.last_commit
    return blocks, earlier


TAMPERINGS: dict[str, tuple[str, Tamper, Rule]] = {
    "forged signature": ("a record's signature replaced", _flip_signature, Rule.SIGNATURE),
    "edited record": ("a contribution's title rewritten", _edit_title, Rule.SIGNATURE),
    "dropped record": ("a record removed from block 1", _drop_record, Rule.RECORDS_ROOT),
    "reordered blocks": ("blocks 3 and 4 swapped", _reorder, Rule.HEIGHT),
    "swapped certificate": (
        "the tip's certificate replaced by the previous block's",
        _swap_certificate,
        Rule.TIP_COMMIT,
    ),
}
"""Each tampering, and the rule an audit must find broken."""


def tamper_bundle(source: Path, out: Path, tamper: Tamper) -> None:
    opened = open_bundle(source)
    blocks = list(opened.blocks())
    blocks, commit = tamper(blocks, opened.commit)
    with output(out, force=False, home=out.parent) as f:
        write_bundle(f, opened.genesis, blocks, commit)


def audit_of(path: Path) -> Failure | None:
    """The failure an audit of `path` finds, or None when the ledger is intact."""
    return audit_bundle(path, rules=commons_rules).failure


@click.command()
@click.option(
    "--dir",
    "where",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where to leave the demo's files (default: a temporary folder, removed at the end).",
)
def demo(where: Path | None) -> int:
    """Run a 4-node network where members contribute, delegate, propose and vote; then tamper
    with a ledger's copies and watch the audit catch each change. Under two minutes."""
    if where is None:
        scratch = Path(tempfile.mkdtemp(prefix="commons-demo-"))
        try:
            return _demo(scratch, kept=False)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    where.mkdir(parents=True, exist_ok=True)
    taken = sorted(p.name for p in where.iterdir() if p.name in _demo_files())
    if taken:
        raise click.UsageError(
            f"{where} already holds demo files ({', '.join(taken)}); pick another --dir"
        )
    return _demo(where, kept=True)


def _demo_files() -> set[str]:
    """The names of the files the demo writes, beside the ledger's own."""
    tampered = {f"tampered-{name.replace(' ', '-')}.bundle" for name in TAMPERINGS}
    return {"network", "ledger.sqlite", "genesis.json", "ledger.bundle", *tampered}


def _demo(where: Path, *, kept: bool) -> int:
    console.rule("[bold]Commons demo, part 1: a network of four nodes")
    started = time.monotonic()
    network_ok = network_demo.run(where / "network")
    console.rule("[bold]Part 2: a ledger, and tampered copies of it")
    built = build(where)
    genesis = built.genesis
    console.print(f"1. Built a ledger of 3 authors in 8 blocks at {built.store}")
    console.print(f"   network id {genesis.network_id.hex()}")
    with output(where / "genesis.json", force=False, home=where) as f:
        f.write(genesis.to_json())
    bundle = where / "ledger.bundle"
    with Store.open(built.store, rules=commons_rules) as store:
        with output(bundle, force=False, home=where) as f:
            write_bundle(f, genesis, store.blocks(), store.commit(store.tip.height))
        proof = store.prove_record(built.parser.id)
        state = store.chain.state
        outcome = state.get(PROPOSAL + built.proposal.id)["state"]
        balances = {n: state.get(MEMBER + k)["balance"] for n, k in built.members.items()}
    console.print(
        f"2. Governance: ada proposed 5 tokens for linus's walkthrough; ada and grace voted for; "
        f"the proposal is {outcome}. Balances: "
        + ", ".join(f"{n} {b}" for n, b in balances.items())
    )
    console.print(f"3. Exported the ledger to {bundle}")
    failure = audit_of(bundle)
    all_ok = failure is None and outcome == "Executed" and balances["linus"] == 105
    console.print(
        "4. Audited the bundle from genesis: "
        + ("[green]intact[/]" if failure is None else f"[red]{failure.message}")
    )
    verify_record_proof(RecordProof.decode(proof.encode()), genesis)
    prefix = built.parser.id.hex()[:16]
    console.print(f"   Proved record {prefix}… is in block {proof.block.header.height}")
    console.print("5. Tampered copies, each audited from genesis:")
    for name, (what, tamper, expected) in TAMPERINGS.items():
        copy = where / f"tampered-{name.replace(' ', '-')}.bundle"
        tamper_bundle(bundle, copy, tamper)
        found = audit_of(copy)
        caught = found is not None and found.rule is expected
        all_ok = all_ok and caught
        mark = "[green]caught[/]" if caught else "[red]MISSED[/]"
        said = "nothing" if found is None else f"{found.message} (PROTOCOL §{found.rule.section})"
        console.print(f"   {mark} {name}: {what}\n          → {said}", soft_wrap=True)
    all_ok = all_ok and network_ok
    took = time.monotonic() - started
    console.rule(
        f"[green]every step did what it should ({took:.0f} s)"
        if all_ok
        else "[red]the demo did not go as it should"
    )
    if kept:
        net = where / "network"
        console.print(f"The network is in {net}; start it again and look around:")
        console.print(f"  commons devnet --dir {net}")
        console.print(f"  commons proposals --home {net / 'node-1'}")
        console.print(f"  commons members --home {net / 'node-1'}")
        console.print(f"The tampering part's ledger is a home in {where}:")
        console.print(f"  commons records --home {where}")
        console.print(f"  commons proof {prefix} --home {where} --out proof.bin")
    else:
        console.print("Its temporary folder is removed. To keep the network and look inside it:")
        console.print("  commons demo --dir demo && commons devnet --dir demo/network")
    return 0 if all_ok else 1
