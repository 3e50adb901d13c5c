"""Checking records ahead of the chain, and parsing them once checked.

`ledger.checking` hands a ledger's raw records to a `RecordChecker` in batches (in this process,
or on worker processes with `cli.parallel.PoolChecker`) while the chain applies the blocks before
them; a block whose records the checker vouched for is parsed by `decode_checked`, without a second
schema check, and appended without a second signature check. What must hold, and is tested here
with real signatures, real SQLite files and real worker processes:

- `decode_checked` gives exactly the record `decode_record` gives, for every registered kind
  (hypothesis, one strategy per kind; a kind without one fails the test);
- `first_bad_record` names the first forged, undecodable or schema-invalid record, and the pool
  names the same one as the inline checker, wherever the batch is split;
- `checked` flags the block holding the first refused record, and the rest of its batch, for
  the full checks, so the chain names that record exactly as a node applying it alone would;
  it works at most two batches ahead, and an unreadable item comes after the blocks before it;
- `Store.extend` keeps every block before a refused one and nothing after, on disk;
- an audit reports the same with either checker; `commons import` through worker processes
  refuses a bundle with a forged record and leaves no ledger behind.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from ledger_factory import (
    Author,
    Builder,
    genesis_of,
    keypair,
    replace_records,
    replay_of,
    sql,
    write_tampered,
)

from cli.ledger_cmds import LEDGER_FILE
from cli.main import main
from ledger import checking, codec
from ledger import store as store_module
from ledger.audit import AuditReport, Failure, audit
from ledger.block import (
    Block,
    BlockError,
    CertificateError,
    Commit,
    RawBlock,
    decode_block,
    decode_raw_block,
)
from ledger.chain import Chain
from ledger.checking import InlineChecker, RecordChecker, checked, first_bad_record
from ledger.crypto import PUBLIC_KEY_BYTES, Keypair, Tag, sha256
from ledger.errors import DecodeError, SchemaError, SignatureError
from ledger.files import open_bundle
from ledger.genesis import Genesis
from ledger.kinds_governance import (
    MAX_ACTIONS,
    MAX_VALIDATOR_CHANGES,
    Cancel,
    ChangeValidators,
    Delegation,
    Freeze,
    Proposal,
    Reinstate,
    Reward,
    SetParam,
    Text,
    Transfer,
    Vote,
)
from ledger.records import (
    KINDS,
    MAX_SEQ,
    MAX_TIMESTAMP,
    ZERO_HASH,
    Body,
    Contribution,
    Endorsement,
    Equivocation,
    Identity,
    Record,
    decode_checked,
    decode_record,
    sign_record,
)
from ledger.rulebook import Rule
from ledger.schema import MAX_INT
from ledger.store import Store, StoreError
from ledger.vote_evidence import MAX_ROUND, PRECOMMIT, VOTE_TYPES, DoubleVote
from ledger.vote_evidence import Vote as ConsensusVote
from node import parallel
from node.parallel import PoolChecker, bundle_records, record_checker
from node.rules import commons_rules

NETWORK = sha256(b"commons checking tests")
OTHER_NETWORK = sha256(b"another community")
X = TypeVar("X")
MEMBERS = [keypair(f"checking/member/{i}") for i in range(3)]


# decode_checked: the same record as decode_record, for every kind


def _text(lo: int, hi: int, *, multiline: bool = False) -> st.SearchStrategy[str]:
    """Text of `lo`..`hi` UTF-8 bytes without control characters (multi-line: tab and newline)."""
    chars = st.characters(
        codec="utf-8", exclude_categories=["Cc"], include_characters="\t\n" if multiline else ""
    )
    return (
        st.text(chars, min_size=lo, max_size=hi)
        .map(lambda s: s.encode()[:hi].decode("utf-8", "ignore"))
        .filter(lambda s: len(s.encode()) >= lo)
    )


hashes = st.binary(min_size=32, max_size=32)
public_keys = st.binary(min_size=PUBLIC_KEY_BYTES, max_size=PUBLIC_KEY_BYTES)
amounts = st.integers(1, MAX_INT)
identities = st.builds(Identity, name=_text(1, 64))


@st.composite
def equivocations(draw: st.DrawFn) -> Equivocation:
    """Two records one author signed at one seq: same body, different times."""
    key = draw(st.sampled_from(MEMBERS))
    seq = draw(st.integers(1, MAX_SEQ))
    prev = ZERO_HASH if seq == 1 else draw(hashes.filter(lambda h: h != ZERO_HASH))
    body = draw(identities)
    times = draw(st.lists(st.integers(0, MAX_TIMESTAMP), min_size=2, max_size=2, unique=True))
    one, other = (
        sign_record(key, NETWORK, seq=seq, prev=prev, timestamp=at, body=body) for at in times
    )
    return Equivocation.of(one, other)


@st.composite
def double_votes(draw: st.DrawFn) -> DoubleVote:
    """Two prevotes or precommits by one validator at one (height, round) for different blocks."""
    key = draw(st.sampled_from(MEMBERS))
    type_ = draw(st.sampled_from(VOTE_TYPES))
    height, round_ = draw(st.integers(1, MAX_INT)), draw(st.integers(0, MAX_ROUND))
    at = draw(st.integers(0, MAX_INT)) if type_ == PRECOMMIT else None
    blocks = draw(st.lists(hashes, min_size=2, max_size=2, unique=True))
    one, other = (
        ConsensusVote.sign(
            key, NETWORK, type_=type_, height=height, round_=round_, block_id=b, timestamp=at
        )
        for b in blocks
    )
    return DoubleVote.of(one, other)


actions = st.one_of(
    st.builds(Reward, to=public_keys, amount=amounts, contribution=st.none() | hashes),
    st.builds(SetParam, name=_text(1, 64), value=st.integers(-MAX_INT, MAX_INT)),
    st.dictionaries(
        public_keys, st.integers(0, MAX_INT), min_size=1, max_size=MAX_VALIDATOR_CHANGES
    ).map(lambda d: ChangeValidators(changes=tuple(sorted(d.items())))),
    st.builds(Freeze, member=public_keys),
    st.builds(Reinstate, member=public_keys),
    st.just(Text()),
)

BODIES: dict[str, st.SearchStrategy[Body]] = {
    "identity": identities,
    "contribution": st.builds(
        Contribution,
        title=_text(1, 200),
        kind=st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=32),
        refs=st.lists(_text(1, 512), max_size=16).map(tuple),
        description=_text(0, 4096, multiline=True),
        hours=st.none() | st.integers(0, 100_000),
        size=st.none() | st.integers(0, MAX_INT),
    ),
    "endorsement": st.builds(
        Endorsement, contribution=hashes, comment=_text(0, 1024, multiline=True)
    ),
    "equivocation": equivocations(),
    "proposal": st.builds(
        Proposal,
        title=_text(1, 200),
        description=_text(0, 4096, multiline=True),
        actions=st.lists(actions, min_size=1, max_size=MAX_ACTIONS).map(tuple),
    ),
    "vote": st.builds(
        Vote, proposal=hashes, support=st.integers(0, 2), reason=_text(0, 1024, multiline=True)
    ),
    "delegation": st.builds(Delegation, to=public_keys),
    "transfer": st.builds(Transfer, to=public_keys, amount=amounts),
    "cancel": st.builds(Cancel, proposal=hashes),
    "double-vote": double_votes(),
}
"""A strategy for each registered record kind, by its KIND."""


@st.composite
def signed(draw: st.DrawFn, body: Body) -> Record:
    """`body` in a validly signed record by any member at any seq and time."""
    # Leave room for the envelope (under 256 bytes): limits have their own tests.
    assume(len(codec.encode(body.to_wire())) <= body.MAX_BYTES - 256)
    key = draw(st.sampled_from(MEMBERS))
    seq = draw(st.integers(1, MAX_SEQ))
    prev = ZERO_HASH if seq == 1 else draw(hashes.filter(lambda h: h != ZERO_HASH))
    at = draw(st.integers(0, MAX_TIMESTAMP))
    return sign_record(key, NETWORK, seq=seq, prev=prev, timestamp=at, body=body)


def fields_of(body: Body) -> dict[str, Any]:
    """Every dataclass field of `body`, compared or not (a double vote's parsed votes too)."""
    assert dataclasses.is_dataclass(body)
    return {f.name: getattr(body, f.name) for f in dataclasses.fields(body)}


def test_every_registered_kind_has_a_strategy_here() -> None:
    assert set(BODIES) == set(KINDS), "a kind was added: give it a strategy in BODIES"


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(data=st.data())
def test_decode_checked_gives_the_record_decode_record_gives(
    kind: str, data: st.DataObject
) -> None:
    record = data.draw(BODIES[kind].flatmap(signed), label="record")
    full = decode_record(record.raw)
    quick = decode_checked(record.raw)
    assert quick == full == record
    assert hash(quick) == hash(full)
    assert (quick.raw, quick.id, quick.kind) == (full.raw, full.id, kind)
    assert quick.id == sha256(record.raw)
    assert type(quick.body) is KINDS[kind]
    assert fields_of(quick.body) == fields_of(full.body)
    assert repr(quick) == repr(full), "same field types all the way down (tuples, not lists)"
    assert quick.body.to_wire() == full.body.to_wire()
    assert quick.signed_body() == full.signed_body()
    quick.verify(NETWORK)


# first_bad_record and the checkers


def _wire_record(key: Keypair, body: dict[str, Any], kind: str) -> bytes:
    """A canonical, validly signed seq-1 record map with any body at all."""
    unsigned: dict[str, Any] = {"at": 1, "author": key.public_key, "body": body, "kind": kind}
    unsigned |= {"prev": ZERO_HASH, "seq": 1}
    sig = key.sign(Tag.RECORD, NETWORK, codec.encode(unsigned))
    return codec.encode({**unsigned, "sig": sig})


def good_raws(count: int) -> list[bytes]:
    """`count` validly signed records, by the members in turn."""
    return [
        sign_record(
            MEMBERS[i % len(MEMBERS)],
            NETWORK,
            seq=1 + i // len(MEMBERS),
            prev=ZERO_HASH if i < len(MEMBERS) else sha256(bytes([i])),
            timestamp=i,
            body=Contribution(title=f"work {i}", kind="code"),
        ).raw
        for i in range(count)
    ]


def flip_signature(raw: bytes) -> bytes:
    """The record with one bit of its signature (its last bytes) flipped: still well-formed."""
    return raw[:-1] + bytes([raw[-1] ^ 0x01])


def forged(raw: bytes) -> bytes:
    out = flip_signature(raw)
    with pytest.raises(SignatureError):
        decode_record(out).verify(NETWORK)
    return out


def undecodable(raw: bytes) -> bytes:
    out = raw[:-1]
    with pytest.raises(DecodeError):
        decode_record(out)
    return out


def schema_invalid(raw: bytes) -> bytes:
    out = _wire_record(MEMBERS[0], {"name": ""}, "identity")
    with pytest.raises(SchemaError):
        decode_record(out)
    return out


def other_network(raw: bytes) -> bytes:
    record = decode_record(raw)
    out = sign_record(
        MEMBERS[0],
        OTHER_NETWORK,
        seq=record.seq,
        prev=record.prev,
        timestamp=record.timestamp,
        body=record.body,
    ).raw
    with pytest.raises(SignatureError):
        decode_record(out).verify(NETWORK)
    return out


BREAKS: dict[str, Callable[[bytes], bytes]] = {
    "forged-signature": forged,
    "undecodable": undecodable,
    "schema-invalid": schema_invalid,
    "signed-for-another-network": other_network,
}


def test_first_bad_record_is_none_when_every_record_is_good() -> None:
    assert first_bad_record(NETWORK, good_raws(7)) is None
    assert first_bad_record(NETWORK, []) is None
    assert InlineChecker().submit(NETWORK, good_raws(3))() is None


@pytest.mark.parametrize("break_", BREAKS.values(), ids=BREAKS.keys())
@pytest.mark.parametrize("at", [0, 3, 6])
def test_first_bad_record_names_the_first_one_refused(
    break_: Callable[[bytes], bytes], at: int
) -> None:
    raws = good_raws(7)
    raws[at] = break_(raws[at])
    assert first_bad_record(NETWORK, raws) == at
    if at + 1 < len(raws):
        raws[at + 1] = forged(raws[at + 1])  # a later bad one does not hide the first
        assert first_bad_record(NETWORK, raws) == at
    assert InlineChecker().submit(NETWORK, raws)() == at


def test_first_bad_record_checks_under_the_network_it_is_given() -> None:
    raws = good_raws(3)
    assert first_bad_record(NETWORK, raws) is None
    assert first_bad_record(OTHER_NETWORK, raws) == 0


@pytest.fixture
def pool() -> Iterator[PoolChecker]:
    checker = PoolChecker(workers=2)
    try:
        yield checker
    finally:
        checker.close()


@pytest.mark.parametrize(
    ("count", "bad"),
    [
        (12, []),
        (12, [0]),
        (12, [5]),
        (12, [11]),
        (12, [9, 6]),
        (12, [2, 8]),
        (13, [7]),
        (1, [0]),
        (0, []),
    ],
    ids=str,
)
def test_three_workers_name_the_same_first_bad_record_as_one_process(
    count: int, bad: list[int]
) -> None:
    """Three workers split a batch in parts: the first bad record is found in whichever part."""
    raws = good_raws(count)
    for index in bad:
        raws[index] = forged(raws[index])
    expected = min(bad, default=None)
    checker = PoolChecker(workers=3)
    try:
        assert checker.submit(NETWORK, raws)() == expected
    finally:
        checker.close()
    assert InlineChecker().submit(NETWORK, raws)() == expected


def test_pool_batches_in_flight_together_each_give_their_own_answer(pool: PoolChecker) -> None:
    clean, dirty = good_raws(6), good_raws(6)
    dirty[4] = undecodable(dirty[4])
    first = pool.submit(NETWORK, clean)
    second = pool.submit(NETWORK, dirty)
    assert (second(), first()) == (4, None)


# a ledger of nine blocks to check


RECORD_COUNTS = (3, 2, 2, 0, 2, 2, 2, 1, 2)
"""Records in blocks 1..9: 16 in all, block 4 empty."""


@dataclass(frozen=True)
class History:
    """A certified ledger in memory: its genesis, blocks, each block's certificate."""

    genesis: Genesis
    blocks: list[Block]
    commits: list[Commit]
    state_root: bytes

    @property
    def network(self) -> bytes:
        return self.genesis.network_id

    @property
    def records(self) -> int:
        return sum(len(b.records) for b in self.blocks)

    def forge(self, height: int, index: int) -> tuple[list[Block], Record]:
        """The blocks with record #`index` of block `height` carrying a flipped signature bit;
        every header as it was."""
        block = self.blocks[height - 1]
        record = block.records[index]
        sig = bytearray(record.signature)
        sig[7] ^= 0x01
        bad = dataclasses.replace(record, signature=bytes(sig))
        records = list(block.records)
        records[index] = bad
        blocks = list(self.blocks)
        blocks[height - 1] = replace_records(block, records)
        return blocks, bad

    def who(self, record: Record) -> str:
        return record.author.hex()[:16]


@pytest.fixture(scope="module")
def history() -> History:
    validator = keypair("checking/validator")
    names = ("ada", "grace", "linus")
    members = [(name, keypair(f"checking/{name}")) for name in names]
    genesis = genesis_of([(validator, 1)], members, name="checking-commons")
    authors = [Author(name, key, genesis.network_id) for name, key in members]
    builder = Builder(genesis, [validator])
    for height, count in enumerate(RECORD_COUNTS, start=1):
        at = builder.next_time
        bodies: list[Body] = (
            [Identity(name=a.name) for a in authors]
            if height == 1
            else [Contribution(title=f"work {height}.{i}", kind="code") for i in range(count)]
        )
        builder.add([authors[i].write(body, at) for i, body in enumerate(bodies)])
    return History(
        genesis=genesis,
        blocks=builder.blocks,
        commits=builder.commits,
        state_root=builder.chain.state.root(),
    )


def raw_blocks(blocks: Iterable[Block]) -> list[RawBlock]:
    """Each block as a peer or a bundle hands it over: encoded, then its envelope decoded."""
    return [decode_raw_block(block.encode()) for block in blocks]


def apply_checked(chain: Chain, blocks: Iterable[tuple[Block, bool, object]]) -> None:
    """Append what `checked` hands out, as a store or an audit does."""
    for block, records_checked, _ in blocks:
        chain.append(block, signatures_checked=records_checked)


def drain(items: Iterable[X], into: list[X]) -> None:
    """Collect `items` until they end or raise: what came before a failure is kept."""
    for item in items:
        into.append(item)


# blocks: raw, parsed, parsed once checked


def test_a_raw_block_parses_to_the_block_encoded(history: History) -> None:
    for block in history.blocks:
        data = block.encode()
        raw = decode_raw_block(data)
        assert raw.header.id == block.id
        assert raw.raws == tuple(r.raw for r in block.records)
        vouched = Block(header=raw.header, records=tuple(map(decode_checked, raw.raws)))
        assert decode_block(data) == raw.parse() == vouched == block
        for quick, full in zip(vouched.records, block.records, strict=True):
            assert (quick.raw, quick.id) == (full.raw, full.id)


def test_a_raw_block_with_an_undecodable_record_names_it_when_parsed(history: History) -> None:
    block = history.blocks[4]
    raws = (block.records[0].raw, block.records[1].raw[:-1])
    with pytest.raises(BlockError, match="block 5 record #1: "):
        RawBlock(header=block.header, raws=raws).parse()


def test_a_raw_block_whose_records_are_not_a_list_is_refused(history: History) -> None:
    block = history.blocks[1]
    m: dict[str, Any] = {"header": block.header.to_wire(), "records": block.records[0].raw}
    with pytest.raises(SchemaError, match=r"block\.records must be a list"):
        decode_raw_block(codec.encode(m))


# checked(): which blocks come out checked


class RecordingChecker:
    """The inline checker, noting the size of each batch it is given and when."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self._inner = InlineChecker()

    def submit(self, network_id: bytes, raws: Sequence[bytes]) -> Callable[[], int | None]:
        self.batches.append(len(raws))
        return self._inner.submit(network_id, raws)


T, F = True, False
FLAG_CASES = {
    # batch size, forged (height, record #), records_checked of blocks 1..9 by hand
    "one-batch-forged-last-record": (2048, (9, 1), [T, T, T, T, T, T, T, T, F]),
    "mid-batch-after-a-checked-block": (6, (6, 1), [T, T, T, T, T, F, F, T, T]),
    "after-an-empty-block-of-its-batch": (6, (5, 0), [T, T, T, T, F, F, F, T, T]),
    "first-of-its-batch-empty-block-follows": (4, (3, 0), [T, T, F, F, F, T, T, T, T]),
    "block-per-batch": (1, (5, 0), [T, T, T, T, F, T, T, T, T]),
    "first-record-of-the-ledger": (6, (1, 0), [F, F, F, T, T, T, T, T, T]),
}
"""Batches close once they reach the batch size: with 6, blocks 1-3 | 4-7 | 8-9; with 4,
1-2 | 3-5 | 6-7 | 8-9; with 1, each block but empty block 4, which joins block 5."""


@pytest.mark.parametrize(("batch", "forge", "flags"), FLAG_CASES.values(), ids=FLAG_CASES.keys())
def test_the_block_of_the_first_refused_record_and_the_rest_of_its_batch_are_unchecked(
    history: History,
    monkeypatch: pytest.MonkeyPatch,
    batch: int,
    forge: tuple[int, int],
    flags: list[bool],
) -> None:
    monkeypatch.setattr(checking, "BATCH_RECORDS", batch)
    blocks, _ = history.forge(*forge)
    items = ((raw, raw.header.height) for raw in raw_blocks(blocks))
    out = list(checked(items, InlineChecker(), history.network))
    assert [ok for _, ok, _ in out] == flags
    assert [item for _, _, item in out] == list(range(1, 10))
    assert [b for b, _, _ in out] == blocks, "every block parsed, checked or not"


@pytest.mark.parametrize(("batch", "forge", "flags"), FLAG_CASES.values(), ids=FLAG_CASES.keys())
def test_the_chain_names_the_forged_record_of_an_unchecked_block(
    history: History,
    monkeypatch: pytest.MonkeyPatch,
    batch: int,
    forge: tuple[int, int],
    flags: list[bool],
) -> None:
    monkeypatch.setattr(checking, "BATCH_RECORDS", batch)
    blocks, bad = history.forge(*forge)
    chain = Chain(history.genesis, apply=commons_rules(history.genesis))
    height = forge[0]
    items = ((raw, None) for raw in raw_blocks(blocks))
    with pytest.raises(BlockError) as refused:
        apply_checked(chain, checked(items, InlineChecker(), history.network))
    assert str(refused.value) == (
        f"block {height} record {bad.id.hex()}: bad signature by {history.who(bad)}"
    )
    assert chain.tip.height == height - 1


def test_a_ledger_with_no_refused_record_comes_out_all_checked_and_applies(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checking, "BATCH_RECORDS", 3)
    checker = RecordingChecker()
    chain = Chain(history.genesis, apply=commons_rules(history.genesis))
    items = ((raw, None) for raw in raw_blocks(history.blocks))
    out = list(checked(items, checker, history.network))
    assert [ok for _, ok, _ in out] == [True] * 9
    apply_checked(chain, out)
    assert chain.tip.height == len(history.blocks)
    assert chain.tip.block_id == history.blocks[-1].id
    assert chain.state.root() == history.state_root
    assert checker.batches == [3, 4, 4, 3, 2], "blocks 1 | 2-3 | 4-6 | 7-8 | 9: each record once"


def test_the_checker_works_at_most_two_batches_ahead(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With batches of 2 records: blocks 1 | 2 | 3 | 4-5 | 6 | 7 | 8-9."""
    monkeypatch.setattr(checking, "BATCH_RECORDS", 2)
    checker = RecordingChecker()
    items = ((raw, None) for raw in raw_blocks(history.blocks))
    submitted = [len(checker.batches) for _ in checked(items, checker, history.network)]
    assert checker.batches == [3, 2, 2, 2, 2, 2, 3]
    assert submitted == [3, 4, 5, 6, 6, 7, 7, 7, 7]


def test_an_unreadable_item_is_raised_after_the_blocks_before_it(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checking, "BATCH_RECORDS", 4)

    def read() -> Iterator[tuple[RawBlock, int]]:
        for raw in raw_blocks(history.blocks[:6]):
            yield raw, raw.header.height
        raise DecodeError("block 7: unreadable")

    seen: list[tuple[Block, bool, int]] = []
    with pytest.raises(DecodeError, match="block 7: unreadable"):
        drain(checked(read(), InlineChecker(), history.network), seen)
    assert [(block.height, ok, item) for block, ok, item in seen] == [
        (h, True, h) for h in range(1, 7)
    ]


# Store.extend, with worker processes


def new_store(path: Path, history: History) -> Store:
    return Store.create(path, history.genesis, rules=commons_rules)


def certified(history: History, blocks: list[Block]) -> list[tuple[RawBlock, Commit | None]]:
    return list(zip(raw_blocks(blocks), history.commits, strict=True))


def records_before(height: int) -> int:
    return sum(RECORD_COUNTS[: height - 1])


def test_extend_on_worker_processes_stores_every_block(
    history: History, tmp_path: Path, pool: PoolChecker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checking, "BATCH_RECORDS", 5)
    path = tmp_path / "ledger.sqlite"
    with new_store(path, history) as store:
        assert store.extend(certified(history, history.blocks), pool) == 9
        assert (store.tip.height, store.tip.block_id) == (9, history.blocks[-1].id)
        assert store.record_count() == history.records == 16
    with Store.open(path, rules=commons_rules) as store:
        assert (store.tip.height, store.tip.block_id) == (9, history.blocks[-1].id)
        assert store.record_count() == 16
        assert store.chain.state.root() == history.state_root
        assert list(store.blocks()) == history.blocks
        assert [store.commit(h) for h in range(1, 10)] == history.commits


@pytest.mark.parametrize(("height", "index"), [(1, 0), (5, 1), (9, 1)])
def test_extend_on_worker_processes_stops_at_the_forged_record(
    history: History,
    tmp_path: Path,
    pool: PoolChecker,
    monkeypatch: pytest.MonkeyPatch,
    height: int,
    index: int,
) -> None:
    monkeypatch.setattr(checking, "BATCH_RECORDS", 5)
    blocks, bad = history.forge(height, index)
    path = tmp_path / "ledger.sqlite"
    with new_store(path, history) as store:
        with pytest.raises(BlockError, match=f"block {height} record {bad.id.hex()}: bad sig"):
            store.extend(certified(history, blocks), pool)
        assert store.tip.height == height - 1
    with Store.open(path, rules=commons_rules) as store:
        assert store.tip.height == height - 1
        assert store.record_count() == records_before(height)
        assert [b.id for b in store.blocks()] == [b.id for b in history.blocks[: height - 1]]
        assert store.raw_block(height) is None
        assert store.header(height) is None
        assert store.record(bad.id) is None
        assert store.record(history.blocks[height - 1].records[index].id) is None


def test_extend_refusing_a_certificate_goes_back_to_the_disk_and_can_go_on(
    history: History, tmp_path: Path, pool: PoolChecker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Block 5 comes with block 4's certificate: it is refused before the block is applied. The
    store stays at block 4, and takes 5-9 when given them right."""
    monkeypatch.setattr(checking, "BATCH_RECORDS", 5)
    items = certified(history, history.blocks)
    items[4] = (items[4][0], history.commits[3])
    path = tmp_path / "ledger.sqlite"
    with new_store(path, history) as store:
        with pytest.raises(CertificateError, match="certificate is for height 4, expected 5"):
            store.extend(items, pool)
        assert store.tip.height == 4
        assert store.chain.state.root() == history.blocks[3].header.state_root
        assert store.extend(certified(history, history.blocks)[4:], pool) == 5
        assert (store.tip.height, store.record_count()) == (9, 16)
    with Store.open(path, rules=commons_rules) as store:
        assert list(store.blocks()) == history.blocks
        assert store.chain.state.root() == history.state_root


def table_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with closing(sqlite3.connect(path)) as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}  # noqa: S608


def test_extend_inline_and_on_workers_write_the_same_rows(
    history: History, tmp_path: Path, pool: PoolChecker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checking, "BATCH_RECORDS", 4)
    checkers: dict[str, RecordChecker] = {"inline": InlineChecker(), "pool": pool}
    for name, checker in checkers.items():
        with new_store(tmp_path / f"{name}.sqlite", history) as store:
            store.extend(certified(history, history.blocks), checker)
    inline, on_workers = (
        table_rows(tmp_path / "inline.sqlite"),
        table_rows(tmp_path / "pool.sqlite"),
    )
    assert set(inline) >= {"blocks", "records", "commits", "merkle", "state", "meta"}
    assert inline == on_workers


# Store.extend when a write fails: what reached the disk stays, the rest is dropped


def failing_writes(monkeypatch: pytest.MonkeyPatch, height: int) -> None:
    """Writing block `height` fails as a full or failing disk would make SQLite fail."""
    real = Store._write

    def write(store: Store, rows: Any) -> None:
        if rows.block[0] == height:
            raise sqlite3.OperationalError("disk I/O error")
        real(store, rows)

    monkeypatch.setattr(Store, "_write", write)


def test_a_failed_write_stops_extend_at_the_block_before(
    history: History, tmp_path: Path, pool: PoolChecker, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.sqlite"
    with new_store(path, history) as store:
        with monkeypatch.context() as patch:
            failing_writes(patch, 5)
            with pytest.raises(StoreError, match="cannot store block 5: disk I/O error"):
                store.extend(certified(history, history.blocks), pool)
        assert store.tip.height == 4
        assert store.chain.state.root() == history.blocks[3].header.state_root
        assert store.extend(certified(history, history.blocks)[4:], pool) == 5
    with Store.open(path, rules=commons_rules) as store:
        assert list(store.blocks()) == history.blocks
        assert store.chain.state.root() == history.state_root


def assert_lookups(store: Store, history: History, stored_blocks: int) -> None:
    """Every record of the first `stored_blocks` blocks is found by id and by (author, seq) at
    its leaf and height; no record of a later block is."""
    leaf = 0
    for block in history.blocks:
        for record in block.records:
            found = [store.record(record.id), store.record_at(record.author, record.seq)]
            if block.height > stored_blocks:
                assert found == [None, None], f"block {block.height} is not stored"
                continue
            for hit in found:
                assert hit is not None, f"record at leaf {leaf} is lost"
                assert (hit.record.raw, hit.leaf, hit.height) == (record.raw, leaf, block.height)
            leaf += 1


@pytest.mark.parametrize("failing", range(1, len(RECORD_COUNTS) + 1))
def test_lookups_survive_a_failed_write_whether_or_not_it_filled_the_index(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: int
) -> None:
    """With index batches of three records, some failed writes would have filled the lookup
    tables and some not: either way the store answers for exactly the blocks on disk, then
    goes on, and an audit finds the tables it wrote to be the index of its records."""
    path = tmp_path / "ledger.sqlite"
    with new_store(path, history) as store:
        monkeypatch.setattr(store_module, "INDEX_BATCH", 3)
        with monkeypatch.context() as patch:
            failing_writes(patch, failing)
            with pytest.raises(StoreError, match=f"cannot store block {failing}"):
                store.extend(certified(history, history.blocks), InlineChecker())
        assert_lookups(store, history, failing - 1)
        store.extend(certified(history, history.blocks)[failing - 1 :], InlineChecker())
        assert_lookups(store, history, len(history.blocks))
    with Store.open(path, rules=commons_rules) as store:
        assert_lookups(store, history, len(history.blocks))
        store.check_derived(replay_of(store))
    # batches closed with blocks 1, 3, 6 and 8: fourteen records indexed, two found in memory
    assert len(table_rows(path)["record_ids"]) == 14


def test_lookups_compare_whole_values_when_prefixes_collide(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With lookup prefixes of one bit, every index query finds about half the records: the
    store must still hand out exactly the one asked for, and its audit must pass."""
    monkeypatch.setattr(store_module, "_prefix", lambda value: value[0] % 2)
    monkeypatch.setattr(store_module, "INDEX_BATCH", 3)
    path = tmp_path / "ledger.sqlite"
    with new_store(path, history) as store:
        store.extend(certified(history, history.blocks), InlineChecker())
    with Store.open(path, rules=commons_rules) as store:
        assert_lookups(store, history, len(history.blocks))
        store.check_derived(replay_of(store))


@pytest.mark.parametrize("snapshot", [False, True], ids=["open", "snapshot"])
def test_opening_reads_one_moment_while_another_writer_fills_the_index(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, snapshot: bool
) -> None:
    """Another writer (as another process would, through its own connection) commits seven
    blocks, closing three index batches, between the moment an opening has read the tip and the
    moment it reads the rest: the opening sees none of them, not an index mark past its records.
    A snapshot goes on seeing that moment, audits it clean and refuses to write."""
    monkeypatch.setattr(store_module, "INDEX_BATCH", 3)
    path = tmp_path / "ledger.sqlite"
    items = certified(history, history.blocks)
    with new_store(path, history) as writer:
        writer.extend(items[:2], InlineChecker())
        real = store_module._load_head

        def load_then_write(*args: Any) -> Any:
            head = real(*args)
            writer.extend(items[2:], InlineChecker())
            return head

        with monkeypatch.context() as patch:
            patch.setattr(store_module, "_load_head", load_then_write)
            reader = Store.open(path, rules=commons_rules, snapshot=snapshot)
        with reader:
            assert reader.tip.height == 2
            if snapshot:
                assert_lookups(reader, history, 2)
                reader.check_derived(replay_of(reader))
                with pytest.raises(StoreError, match="is open as a snapshot: it writes nothing"):
                    reader.append(history.blocks[2], history.commits[2])
                with pytest.raises(StoreError, match="is open as a snapshot: it writes nothing"):
                    reader.add_commit(history.commits[1])
        assert writer.tip.height == len(history.blocks)


def test_commons_audit_checks_one_moment_of_a_store_another_writer_extends(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While `commons audit --home` replays a five-block store, a writer appends four blocks:
    the audit, reading a snapshot, checks the five blocks and every row as they were."""
    monkeypatch.setattr(store_module, "INDEX_BATCH", 3)
    home = tmp_path / "home"
    home.mkdir()
    items = certified(history, history.blocks)
    with new_store(home / LEDGER_FILE, history) as writer:
        writer.extend(items[:5], InlineChecker())
        real = Store.check_block

        def check_then_write(store: Store, block: Any, applied: Any) -> None:
            real(store, block, applied)
            if writer.tip.height == 5:
                writer.extend(items[5:], InlineChecker())

        monkeypatch.setattr(Store, "check_block", check_then_write)
        assert main(["audit", "--home", str(home), "--json"]) == 0
        assert writer.tip.height == len(history.blocks)


def test_an_interrupt_while_a_write_is_in_flight_rereads_the_disk_only_after_it(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while `extend` waits for a write: the store rereads its file (on the connection
    the writer thread uses) only once that write is over, then lets the interrupt through."""
    path = tmp_path / "ledger.sqlite"
    real_write, real_result = Store._write, Future.result
    written: list[int] = []
    seen_at_reread: list[list[int]] = []

    def slow_write(store: Store, rows: Any) -> None:
        time.sleep(0.3)
        real_write(store, rows)
        written.append(rows.block[0])

    def interrupted(future: Future[Any], timeout: float | None = None) -> Any:
        monkeypatch.setattr(Future, "result", real_result)
        raise KeyboardInterrupt

    real_reread = Store._back_to_disk

    def reread(store: Store) -> None:
        seen_at_reread.append(list(written))
        real_reread(store)

    with new_store(path, history) as store:
        monkeypatch.setattr(Store, "_write", slow_write)
        monkeypatch.setattr(Store, "_back_to_disk", reread)
        monkeypatch.setattr(Future, "result", interrupted)
        with pytest.raises(KeyboardInterrupt):
            store.extend(certified(history, history.blocks), InlineChecker())
        assert seen_at_reread == [[1]]
        assert store.tip.height == 1
    with Store.open(path, rules=commons_rules) as store:
        assert store.tip.height == 1
        store.check_derived(replay_of(store))


def test_a_failed_write_outranks_a_refusal_met_while_it_was_in_flight(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Block 5's write fails while block 6, with the wrong certificate, is being refused: the
    error is the lost write, the refusal its context, and the disk ends at block 4."""
    items = certified(history, history.blocks)
    items[5] = (items[5][0], history.commits[6])
    failing_writes(monkeypatch, 5)
    path = tmp_path / "ledger.sqlite"
    with new_store(path, history) as store:
        with pytest.raises(StoreError, match="cannot store block 5") as raised:
            store.extend(items, InlineChecker())
        chain, error = [], raised.value.__context__
        while error is not None:
            chain.append(type(error))
            error = error.__context__
        assert chain == [sqlite3.OperationalError, CertificateError]
        assert store.tip.height == 4
    with Store.open(path, rules=commons_rules) as store:
        assert store.tip.height == 4


def test_a_failed_append_leaves_the_store_at_its_tip(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.sqlite"
    with new_store(path, history) as store:
        for block, commit in zip(history.blocks[:2], history.commits[:2], strict=True):
            store.append(block, commit)
        with monkeypatch.context() as patch:
            failing_writes(patch, 3)
            with pytest.raises(StoreError, match="cannot store block 3: disk I/O error"):
                store.append(history.blocks[2], history.commits[2])
        assert store.tip.height == 2
        store.append(history.blocks[2], history.commits[2])
        assert store.tip.block_id == history.blocks[2].id


def test_a_store_that_cannot_reread_its_disk_after_a_failed_write_refuses_all_work(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Block 3's write fails and so does rereading the file: the store no longer knows where
    its disk stands, so it must not take block 4 (which would leave a gap at 3)."""
    path = tmp_path / "ledger.sqlite"
    with new_store(path, history) as store:
        for block, commit in zip(history.blocks[:2], history.commits[:2], strict=True):
            store.append(block, commit)
        with monkeypatch.context() as patch:
            failing_writes(patch, 3)

            def unreadable(*args: object) -> None:
                raise sqlite3.OperationalError("disk I/O error")

            patch.setattr(store_module, "_load_unindexed", unreadable)  # after the head is read
            with pytest.raises(StoreError, match="cannot be reread after a failed write"):
                store.append(history.blocks[2], history.commits[2])
        for block, commit in zip(history.blocks[2:4], history.commits[2:4], strict=True):
            with pytest.raises(StoreError, match="cannot be reread after a failed write"):
                store.append(block, commit)
        with Store.open(path, rules=commons_rules) as other:
            assert other.tip.height == 2
            other.append(history.blocks[2], history.commits[2])
        # the failed reread left no read transaction behind: reads see what others wrote since
        header = store.header(3)
        assert header is not None
        assert header.id == history.blocks[2].id


def test_the_state_log_is_rewritten_and_still_adds_up_to_the_state(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the slack far below zero the log of state changes is rewritten at every block: it
    ends holding exactly the live keys, shorter than the full log, and reopens to the state."""
    full, compacted = tmp_path / "full.sqlite", tmp_path / "compacted.sqlite"
    with new_store(full, history) as store:
        store.extend(certified(history, history.blocks), InlineChecker())
    monkeypatch.setattr(store_module, "COMPACT_SLACK", -1_000_000)
    with new_store(compacted, history) as store:
        store.extend(certified(history, history.blocks), InlineChecker())
        live = len(store.chain.state.tree)
    rows = {p: len(table_rows(p)["state"]) for p in (full, compacted)}
    assert rows[compacted] == live < rows[full]
    with Store.open(compacted, rules=commons_rules) as store:
        assert store.chain.state.root() == history.state_root
        report, chain = audit(
            store.genesis,
            store.raw_blocks(),
            lambda: store.commit(9),
            apply=commons_rules(store.genesis),
        )
        assert report.ok, report.failure
        store.check_derived(chain)


# Store.raw_block / raw_blocks


@pytest.fixture(scope="module")
def stored(history: History, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The history in a closed store file; tests copy it before changing it."""
    path = tmp_path_factory.mktemp("stored") / "ledger.sqlite"
    with new_store(path, history) as store:
        store.extend(certified(history, history.blocks), InlineChecker())
    return path


def copy_of(path: Path, where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    target = where / path.name
    target.write_bytes(path.read_bytes())
    return target


def test_raw_blocks_are_the_stored_bytes(history: History, stored: Path) -> None:
    with Store.open(stored, rules=commons_rules) as store:
        raws = list(store.raw_blocks())
        assert [r.header.id for r in raws] == [b.id for b in history.blocks]
        assert [r.raws for r in raws] == [tuple(x.raw for x in b.records) for b in history.blocks]
        assert [r.header.height for r in store.raw_blocks(start=7)] == [7, 8, 9]
        assert store.raw_block(4) == RawBlock(header=history.blocks[3].header, raws=())
        assert store.raw_block(10) is None


def test_a_stored_record_whose_bytes_are_not_its_id_is_damaged(
    history: History, stored: Path, tmp_path: Path
) -> None:
    path = copy_of(stored, tmp_path)
    record = history.blocks[5].records[1]
    changed = sql(
        path,
        "UPDATE records SET raw = ? WHERE id = ?",
        (flip_signature(record.raw), record.id),
    )
    assert changed == 1
    with Store.open(path, rules=commons_rules) as store:
        with pytest.raises(StoreError, match=f"stored record {record.id.hex()} is damaged"):
            store.raw_block(6)
        assert store.raw_block(5) is not None
        read: list[RawBlock] = []
        with pytest.raises(StoreError, match=f"block 6: stored record {record.id.hex()} is dam"):
            drain(store.raw_blocks(), read)
        assert [raw.header.height for raw in read] == [1, 2, 3, 4, 5]


# the same audit with either checker


def audit_report(
    genesis: Genesis, blocks: Iterable[RawBlock], commit: Commit | None, checker: RecordChecker
) -> AuditReport:
    report, _ = audit(
        genesis, blocks, lambda: commit, apply=commons_rules(genesis), checker=checker
    )
    return report


def both_audits(pool: PoolChecker, run: Callable[[RecordChecker], AuditReport]) -> AuditReport:
    """The report of `run` with the inline checker, after checking the pool gives the same."""
    inline = run(InlineChecker())
    assert run(pool) == inline
    return inline


def test_audit_of_a_good_store_is_the_same_inline_and_on_workers(
    history: History, stored: Path, pool: PoolChecker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checking, "BATCH_RECORDS", 4)
    with Store.open(stored, rules=commons_rules) as store:
        report = both_audits(
            pool,
            lambda checker: audit_report(
                store.genesis, store.raw_blocks(), store.commit(9), checker
            ),
        )
    assert report.ok, report.failure
    assert (report.height, report.blocks, report.records) == (9, 9, 16)
    assert report.state_root == history.state_root


def test_audit_of_a_forged_record_in_a_store_is_the_same_inline_and_on_workers(
    history: History,
    stored: Path,
    tmp_path: Path,
    pool: PoolChecker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Someone with the disk replaces a record's bytes and its id: only the signature tells."""
    monkeypatch.setattr(checking, "BATCH_RECORDS", 4)
    path = copy_of(stored, tmp_path)
    record = history.blocks[5].records[0]
    raw = flip_signature(record.raw)
    sql(path, "UPDATE records SET raw = ?, id = ? WHERE id = ?", (raw, sha256(raw), record.id))
    with Store.open(path, rules=commons_rules) as store:
        report = both_audits(
            pool,
            lambda checker: audit_report(
                store.genesis, store.raw_blocks(), store.commit(9), checker
            ),
        )
    assert report.failure == Failure(
        rule=Rule.SIGNATURE,
        message=f"block 6 record {sha256(raw).hex()}: bad signature by {history.who(record)}",
        height=6,
        record=sha256(raw),
    )
    assert (report.height, report.blocks) == (5, 5)


def test_audit_of_a_damaged_store_is_the_same_inline_and_on_workers(
    history: History, stored: Path, tmp_path: Path, pool: PoolChecker
) -> None:
    path = copy_of(stored, tmp_path)
    record = history.blocks[2].records[0]
    sql(path, "UPDATE records SET raw = ? WHERE id = ?", (flip_signature(record.raw), record.id))
    with Store.open(path, rules=commons_rules) as store:
        report = both_audits(
            pool,
            lambda checker: audit_report(
                store.genesis, store.raw_blocks(), store.commit(9), checker
            ),
        )
    assert report.failure is not None
    assert report.failure.rule is Rule.STORE
    assert report.failure.message == (
        f"block 3: stored record {record.id.hex()} is damaged: its bytes hash to another id"
    )
    assert report.height == 2


def test_audit_of_a_tampered_bundle_is_the_same_inline_and_on_workers(
    history: History, tmp_path: Path, pool: PoolChecker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checking, "BATCH_RECORDS", 3)
    blocks, bad = history.forge(7, 1)
    bundle = write_tampered(
        tmp_path / "forged.bundle", history.genesis, blocks, history.commits[-1]
    )

    def run(checker: RecordChecker) -> AuditReport:
        opened = open_bundle(bundle)
        return audit_report(opened.genesis, opened.raw_blocks(), opened.commit, checker)

    report = both_audits(pool, run)
    assert report.failure == Failure(
        rule=Rule.SIGNATURE,
        message=f"block 7 record {bad.id.hex()}: bad signature by {history.who(bad)}",
        height=7,
        record=bad.id,
    )
    assert report.height == 6


# the CLI: record_checker, and import through worker processes


def test_record_checker_uses_workers_only_from_the_threshold() -> None:
    raws = good_raws(4)
    raws[2] = forged(raws[2])
    with record_checker(parallel.PARALLEL_FROM_RECORDS - 1) as small:
        assert isinstance(small, InlineChecker)
    with record_checker(0) as empty:
        assert isinstance(empty, InlineChecker)
    with record_checker(parallel.PARALLEL_FROM_RECORDS) as large:
        assert isinstance(large, PoolChecker)
        assert large.submit(NETWORK, raws)() == 2
    with pytest.raises(RuntimeError, match="shutdown"):
        large.submit(NETWORK, raws)  # the workers are gone once the block ends
    with record_checker(None) as unknown:
        assert isinstance(unknown, PoolChecker)


def import_cli(capsys: pytest.CaptureFixture[str], home: Path, bundle: Path) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["import", "--home", str(home), str(bundle)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_import_through_worker_processes(
    history: History,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(parallel, "PARALLEL_FROM_RECORDS", 0)
    monkeypatch.setattr(checking, "BATCH_RECORDS", 4)
    bundle = tmp_path / "good.bundle"
    write_tampered(bundle, history.genesis, history.blocks, history.commits[-1])
    with record_checker(bundle_records(bundle)) as checker:
        assert isinstance(checker, PoolChecker), "the import below runs on worker processes"
    home = tmp_path / "home"
    assert import_cli(capsys, home, bundle)[0] == 0
    with Store.open(home / "ledger.sqlite", rules=commons_rules) as store:
        assert (store.tip.height, store.record_count()) == (9, 16)
        assert store.chain.state.root() == history.state_root


def test_import_through_worker_processes_refuses_a_forged_middle_record(
    history: History,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The 9th of 16 records (block 5, record #1) carries a flipped signature bit."""
    monkeypatch.setattr(parallel, "PARALLEL_FROM_RECORDS", 0)
    monkeypatch.setattr(checking, "BATCH_RECORDS", 4)
    blocks, bad = history.forge(5, 1)
    assert [r.id for b in blocks for r in b.records].index(bad.id) == 8
    bundle = write_tampered(
        tmp_path / "forged.bundle", history.genesis, blocks, history.commits[-1]
    )
    home = tmp_path / "home"
    code, err = import_cli(capsys, home, bundle)
    assert code == 1
    assert f"block 5 record {bad.id.hex()}: bad signature by {history.who(bad)}" in err
    assert sorted(p.name for p in home.iterdir()) == [], "no ledger, no staging file left"


# the size bound that picks the pool for bundles


def test_bundle_records_is_an_upper_bound_for_a_bundle_of_small_records(
    history: History, tmp_path: Path
) -> None:
    """cli/parallel.py: `bundle_records` promises at least as many records as the bundle holds;
    one block of 200 seq-1 identity records (the smallest record there is) holds more."""
    records = tuple(
        sign_record(
            keypair(f"checking/many/{i}"),
            history.genesis.network_id,
            seq=1,
            prev=ZERO_HASH,
            timestamp=history.genesis.time,
            body=Identity(name="a"),
        )
        for i in range(200)
    )
    block = replace_records(history.blocks[0], records)
    bundle = tmp_path / "small.bundle"
    write_tampered(bundle, history.genesis, [block], history.commits[0])
    assert bundle_records(bundle) >= len(records)
