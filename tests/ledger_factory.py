"""Builders shared by the chain, tamper and ledger-CLI tests: deterministic keys and authors,
certified ledgers with one validator (`SoloValidator`) or several, in memory or in a real store.

Everything is real: Ed25519 signatures, `Chain` rules, the SQLite store, bundle files. Keys come
from fixed seeds and times from a fixed genesis time, so a ledger is the same bytes on every run
(the state-root test rebuilds one in a subprocess with another hash seed and compares).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ledger import store as store_module
from ledger.audit import audit
from ledger.block import Block, Commit, Precommit
from ledger.chain import Chain, certify
from ledger.crypto import Keypair, sha256
from ledger.feed import FeedWriter
from ledger.files import open_bundle, output_file, write_bundle
from ledger.genesis import Genesis, Param
from ledger.records import (
    Contribution,
    Endorsement,
    Equivocation,
    Identity,
    Record,
)
from ledger.state import Apply, LedgerState
from ledger.store import Store
from ledger.validators import ValidatorSet
from node.rules import commons_genesis, commons_rules
from node.solo import SoloValidator

GENESIS_TIME = 1_767_225_600_000  # 2026-01-01T00:00:00Z
STEP_MS = 1_000
"""Each certificate is signed this long after its block's time, so blocks are STEP_MS apart."""
LEDGER_FILE = "ledger.sqlite"


def keypair(label: str) -> Keypair:
    """The same key for the same label on every run."""
    return Keypair.from_seed(sha256(b"commons-tests/" + label.encode()))


class Author(FeedWriter):
    """A named member writing its own hash-linked feed for one network."""

    def __init__(self, name: str, key: Keypair, network_id: bytes) -> None:
        super().__init__(key, network_id)
        self.name = name


def genesis_of(
    validators: Sequence[tuple[Keypair, int]],
    members: Sequence[tuple[str, Keypair]] = (),
    *,
    name: str = "test-commons",
    params: Mapping[str, Param] | None = None,
    time: int = GENESIS_TIME,
) -> Genesis:
    return commons_genesis(
        name=name,
        time=time,
        members={key.public_key: (member, 100) for member, key in members},
        validators={key.public_key: power for key, power in validators},
        params=params,
    )


def validator_set(validators: Sequence[tuple[Keypair, int]]) -> ValidatorSet:
    return ValidatorSet.of({key.public_key: power for key, power in validators})


def precommits(
    block: Block, network_id: bytes, votes: Sequence[tuple[Keypair, int]], *, round_: int = 0
) -> Commit:
    """A certificate for `block` whose voters sign at their own timestamps."""
    return Commit.of(
        [
            Precommit.sign(
                key,
                network_id,
                height=block.height,
                round_=round_,
                block_id=block.id,
                timestamp=at,
            )
            for key, at in votes
        ]
    )


class Builder:
    """Drives a chain (in memory, or a store's) through certified blocks signed by several
    validators: `Chain.propose`, then `certify`, then `Chain.append` / `Store.append`."""

    def __init__(
        self,
        genesis: Genesis,
        signers: Sequence[Keypair],
        *,
        store: Store | None = None,
        apply: Apply | None = None,
    ) -> None:
        """Blocks follow the Commons network's rules unless `apply` says otherwise."""
        self.genesis = genesis
        self.network_id = genesis.network_id
        self.signers = list(signers)
        self.store = store
        rules = commons_rules(genesis) if apply is None else apply
        self._chain = None if store is not None else Chain(genesis, apply=rules)
        self.last_commit: Commit | None = None
        self.blocks: list[Block] = []
        self.commits: list[Commit] = []

    @property
    def chain(self) -> Chain:
        if self.store is not None:
            return self.store.chain  # a failed Store.append replaces it: always ask
        assert self._chain is not None
        return self._chain

    @property
    def next_time(self) -> int:
        """The BFT time the next block will have."""
        if self.last_commit is None:
            return self.genesis.time
        return self.last_commit.median_time(self.chain.state.validators("current"))

    def propose(self, records: Sequence[Record] = (), *, proposer: Keypair | None = None) -> Block:
        key = proposer or self._proposer()
        return self.chain.propose(records, proposer=key.public_key, last_commit=self.last_commit)

    def certify(
        self, block: Block, signers: Sequence[Keypair] | None = None, timestamp: int | None = None
    ) -> Commit:
        at = block.header.time + STEP_MS if timestamp is None else timestamp
        return certify(block, self.network_id, signers or self.signers, timestamp=at)

    def accept(self, block: Block, commit: Commit) -> None:
        """Append a certified block (to the store, with its certificate, if there is one)."""
        if self.store is not None:
            self.store.append(block, commit)
        else:
            self.chain.append(block)
            self.chain.verify_commit(commit)
        self.blocks.append(block)
        self.commits.append(commit)
        self.last_commit = commit

    def add(
        self,
        records: Sequence[Record] = (),
        *,
        signers: Sequence[Keypair] | None = None,
        proposer: Keypair | None = None,
    ) -> Block:
        """Propose, certify and append the next block."""
        if signers is not None:
            self.signers = list(signers)
        block = self.propose(records, proposer=proposer)
        self.accept(block, self.certify(block))
        return block

    def _proposer(self) -> Keypair:
        current = self.chain.state.validators("next")
        for key in self.signers:
            if current.power(key.public_key):
                return key
        return self.signers[0]


# the standard multi-author ledger

FOUR = (("v1", 1), ("v2", 1), ("v3", 1), ("v4", 3))
"""Four validators with unequal power: v4 alone is not a quorum, v4 with any other one is."""
AUTHOR_NAMES = ("ada", "grace", "linus")


@dataclass
class Ledger:
    """A ledger the tests know by heart, and where it lives."""

    genesis: Genesis
    home: Path
    validators: list[tuple[Keypair, int]]
    authors: dict[str, Author]
    records: dict[str, Record] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    commits: list[Commit] = field(default_factory=list)
    forks: dict[str, Record] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.home / LEDGER_FILE

    @property
    def keys(self) -> list[Keypair]:
        return [key for key, _ in self.validators]

    @property
    def tip(self) -> int:
        return len(self.blocks)

    def height_of(self, label: str) -> int:
        record = self.records[label]
        return next(b.height for b in self.blocks if record in b.records)

    def write_genesis(self, path: Path) -> Path:
        path.write_bytes(self.genesis.to_json())
        return path


STANDARD_BLOCKS = 7
STANDARD_RECORDS = 10


STANDARD_INDEX_BATCH = 6
"""The standard ledger's store indexes its first six records (blocks 1 to 3) in a batch with
block 3 and finds the last four in memory: lookups and audits meet both kinds."""


def build_standard(home: Path, *, validators: str = "solo") -> Ledger:
    """`_build_standard`, its store filling the index tables in batches of six records."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "INDEX_BATCH", STANDARD_INDEX_BATCH)
        return _build_standard(home, validators=validators)


def _build_standard(home: Path, *, validators: str) -> Ledger:
    """Three authors in seven blocks, one equivocation caught, stored in `home/ledger.sqlite`.

    1: identities of ada, grace, linus (ada-1, grace-1, linus-1)
    2: ada-2 (a contribution), linus-2 (a contribution)
    3: grace-2 (endorses ada-2)
    4: grace-3 (a contribution; grace also signed a fork of it, never finalized)
    5: ada-3 (evidence of grace's equivocation at seq 3)
    6: empty
    7: ada-4, linus-3

    `validators` is "solo" (one validator, `SoloValidator`) or "four" (powers 1, 1, 1, 3, every
    block certified by all four through `Chain.propose` and `certify`).
    """
    specs = [("solo", 1)] if validators == "solo" else list(FOUR)
    vals = [(keypair(f"validator/{name}"), power) for name, power in specs]
    member_keys = [(name, keypair(f"member/{name}")) for name in AUTHOR_NAMES]
    genesis = genesis_of(vals, member_keys)
    authors = {name: Author(name, key, genesis.network_id) for name, key in member_keys}
    home.mkdir(parents=True, exist_ok=True)
    store = Store.create(home / LEDGER_FILE, genesis, rules=commons_rules)
    ledger = Ledger(genesis=genesis, home=home, validators=vals, authors=authors)
    solo = SoloValidator(store, vals[0][0]) if validators == "solo" else None
    builder = Builder(genesis, [k for k, _ in vals], store=store)

    def block(labelled: list[tuple[str, Record]]) -> None:
        for label, record in labelled:
            ledger.records[label] = record
        records = [r for _, r in labelled]
        if solo is not None:
            made = solo.make_block(records, commit_time=builder.next_time + STEP_MS)
            commit = solo.last_commit
            assert commit is not None
            builder.blocks.append(made)
            builder.commits.append(commit)
            builder.last_commit = commit
        else:
            builder.add(records)

    ada, grace, linus = (authors[n] for n in AUTHOR_NAMES)
    now = builder.next_time
    block([(f"{a.name}-1", a.write(Identity(name=a.name), now)) for a in (ada, grace, linus)])
    now = builder.next_time
    parser = ada.write(
        Contribution(
            title="Streaming parser for bundle files",
            kind="code",
            refs=("https://example.org/commons/pull/12",),
            hours=14,
        ),
        now,
    )
    docs = linus.write(Contribution(title="Protocol walkthrough", kind="docs", hours=5), now)
    block([("ada-2", parser), ("linus-2", docs)])
    now = builder.next_time
    block([("grace-2", grace.write(Endorsement(contribution=parser.id, comment="works"), now))])
    now = builder.next_time
    kept = grace.write(Contribution(title="Fuzzing the decoder", kind="code"), now)
    ledger.forks["grace-3"] = grace.sign(
        seq=kept.seq, prev=kept.prev, at=now, body=Contribution(title="Fuzzing again", kind="code")
    )
    block([("grace-3", kept)])
    now = builder.next_time
    block([("ada-3", ada.write(Equivocation.of(kept, ledger.forks["grace-3"]), now))])
    block([])
    now = builder.next_time
    block(
        [
            ("ada-4", ada.write(Contribution(title="Bundle export", kind="code"), now)),
            ("linus-3", linus.write(Contribution(title="Audit guide", kind="docs"), now)),
        ]
    )
    store.close()
    ledger.blocks, ledger.commits = builder.blocks, builder.commits
    return ledger


def replay_of(store: Store) -> Chain:
    """The chain an audit of `store`'s blocks rebuilds (every rule; the audit must pass)."""
    tip = store.tip.height
    report, chain = audit(
        store.genesis,
        store.raw_blocks(),
        lambda: store.commit(tip) if tip else None,
        apply=commons_rules(store.genesis),
    )
    assert report.ok, report.failure
    return chain


def copy_ledger(source: Path, home: Path) -> Path:
    """A private copy of a closed store (one file: closing checkpointed the WAL)."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / LEDGER_FILE
    target.write_bytes(source.read_bytes())
    return target


def sql(path: Path, statement: str, params: Sequence[Any] = ()) -> int:
    """Run one statement on a store's file directly, as an attacker with the disk would."""
    db = sqlite3.connect(path)
    try:
        with db:
            changed = db.execute(statement, params).rowcount
    finally:
        db.close()
    return changed


def sql_value(path: Path, query: str, params: Sequence[Any] = ()) -> Any:
    db = sqlite3.connect(path)
    try:
        row = db.execute(query, params).fetchone()
    finally:
        db.close()
    return None if row is None else row[0]


# bundles


def read_bundle(path: Path) -> tuple[Genesis, list[Block], Commit | None]:
    opened = open_bundle(path)
    blocks = list(opened.blocks())
    return opened.genesis, blocks, opened.commit


def export_blocks(ledger: Ledger) -> tuple[list[Block], Commit]:
    """The ledger's blocks and tip certificate as a tamperer would start from them."""
    with Store.open(ledger.path, rules=commons_rules) as store:
        blocks = list(store.blocks())
        commit = store.commit(store.tip.height)
    assert commit is not None
    return blocks, commit


def replace_records(block: Block, records: Sequence[Record]) -> Block:
    """`block` with another body: record_count follows, every other header field stays."""
    header = dataclasses.replace(block.header, record_count=len(records))
    return Block(header=header, records=tuple(records))


def replace_header(block: Block, **changes: Any) -> Block:
    return Block(header=dataclasses.replace(block.header, **changes), records=block.records)


def write_tampered(
    path: Path, genesis: Genesis, blocks: Sequence[Block], commit: Commit | None
) -> Path:
    with output_file(path, force=True) as f:
        write_bundle(f, genesis, blocks, commit)
    return path


def state_root_script() -> str:
    """Python source printing the hex state root of the standard in-memory chain built here."""
    return (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from ledger_factory import standard_chain_root\n"
        "print(standard_chain_root().hex())\n"
    )


def standard_chain_root() -> bytes:
    """The state root after a fixed four-validator chain with several authors (in memory)."""
    chain, _ = standard_chain()
    return chain.state.root()


def standard_chain(extra_param: int | None = None) -> tuple[Chain, list[Block]]:
    """A fixed in-memory chain of four validators and three authors; `extra_param` adds a
    governance-like key through the state transition, to tell two transitions apart."""
    vals = [(keypair(f"validator/{name}"), power) for name, power in FOUR]
    member_keys = [(name, keypair(f"member/{name}")) for name in AUTHOR_NAMES]
    genesis = genesis_of(vals, member_keys)

    def apply(state: LedgerState, block: Any) -> LedgerState:
        if extra_param is not None:
            state.put(b"test/" + block.height.to_bytes(8, "big"), extra_param)
        return state

    builder = Builder(genesis, [k for k, _ in vals], apply=apply)
    authors = [Author(name, key, genesis.network_id) for name, key in member_keys]
    for round_ in range(4):
        at = builder.next_time
        builder.add(
            [a.write(Contribution(title=f"work {round_}", kind="code"), at) for a in authors]
        )
    return builder.chain, builder.blocks


# a ledger whose validator set changes

OLD_SET = (("a1", 1), ("a2", 1), ("a3", 1))
NEW_SET = (("b1", 1), ("b2", 1), ("b3", 1), ("b4", 3))
CHANGE_HEIGHT = 3


def validators_of(specs: Sequence[tuple[str, int]]) -> list[tuple[Keypair, int]]:
    return [(keypair(f"validator/{name}"), power) for name, power in specs]


def change_at(height: int, new: ValidatorSet) -> Apply:
    """A state transition that only replaces the validator set, at `height`."""

    def apply(state: LedgerState, block: Any) -> LedgerState:
        if block.height == height:
            state.validator_change = new
        return state

    return apply


def build_with_change(home: Path) -> tuple[Ledger, list[Keypair]]:
    """Two authors in six blocks; block 3's transition replaces the three genesis validators
    (power 1 each) by four new ones (1, 1, 1, 3), who certify from block 5 on.

    1: ada-1, grace-1   2: ada-2   3: grace-2 (the change)   4: ada-3   5: grace-3   6: ada-4
    Returns the ledger (its `validators` are the genesis set) and the new set's keys.
    """
    old, new = validators_of(OLD_SET), validators_of(NEW_SET)
    members = [(name, keypair(f"member/{name}")) for name in ("ada", "grace")]
    genesis = genesis_of(old, members, name="changing-commons")
    authors = {name: Author(name, key, genesis.network_id) for name, key in members}
    home.mkdir(parents=True, exist_ok=True)
    apply = change_at(CHANGE_HEIGHT, validator_set(new))
    store = Store.create(home / LEDGER_FILE, genesis, rules=lambda _: apply)
    ledger = Ledger(genesis=genesis, home=home, validators=old, authors=authors)
    builder = Builder(genesis, [k for k, _ in old], store=store)
    ada, grace = authors["ada"], authors["grace"]
    plan = [
        [("ada-1", ada, Identity(name="ada")), ("grace-1", grace, Identity(name="grace"))],
        [("ada-2", ada, Contribution(title="Parser", kind="code"))],
        [("grace-2", grace, Contribution(title="Fuzzer", kind="code"))],
        [("ada-3", ada, Contribution(title="Exporter", kind="code"))],
        [("grace-3", grace, Contribution(title="Guide", kind="docs"))],
        [("ada-4", ada, Contribution(title="Importer", kind="code"))],
    ]
    for height, entries in enumerate(plan, start=1):
        now = builder.next_time
        records = []
        for label, author, body in entries:
            records.append(author.write(body, now))
            ledger.records[label] = records[-1]
        signers = [k for k, _ in (new if height >= CHANGE_HEIGHT + 2 else old)]
        builder.add(records, signers=signers)
    store.close()
    ledger.blocks, ledger.commits = builder.blocks, builder.commits
    return ledger, [k for k, _ in new]
