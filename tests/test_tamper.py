"""Tampering with a finished ledger, in bundles and in on-disk stores: every change is caught.

The ledger is the standard one of `ledger_factory` (three authors, seven blocks, four validators of
power 1, 1, 1, 3, one equivocation caught). Each case changes a copy in one named way — flipped
bytes, dropped or reordered records and blocks, forged signatures, records spliced between blocks
or from another ledger, swapped certificates, rows edited in the SQLite file — and then
`commons audit` must exit 1 and name the first failing height or record and the rule broken;
`commons import` must refuse the bundle and leave no ledger behind. A second group plays rogue
validators, who hold every validator key and re-certify a rewritten history: the member
signatures and feed rules still catch them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from ledger_factory import (
    Author,
    Builder,
    Ledger,
    build_standard,
    copy_ledger,
    export_blocks,
    genesis_of,
    keypair,
    precommits,
    replace_header,
    replace_records,
    replay_of,
    sql,
    write_tampered,
)

from cli.main import main
from ledger import codec
from ledger.audit import audit
from ledger.block import Block, BlockError, Commit, encode_commit
from ledger.chain import certify
from ledger.crypto import Tag, sha256
from ledger.errors import LedgerError
from ledger.files import BUNDLE_MAGIC, open_bundle
from ledger.records import Contribution, Equivocation, Record
from ledger.rulebook import Rule
from ledger.store import _LEVEL_SHIFT, SCHEMA_VERSION, Store, StoreError
from node.rules import commons_rules

OTHER_NETWORK = sha256(b"another community")
GENESIS_SWAPPED = "block 1(: prev does not link to block 0| record [0-9a-f]{64}: bad signature)"
"""Block 1 is the first to fail under another genesis: its link, or (checked first by an audit)
its records' signatures, which commit to the network id."""


@dataclass
class Original:
    ledger: Ledger
    bundle: Path
    blocks: list[Block]
    commit: Commit

    def author(self, name: str) -> Author:
        return self.ledger.authors[name]

    def who(self, name: str) -> str:
        """How messages name an author: the first 16 hex digits of the key."""
        return self.author(name).public_key.hex()[:16]

    def record(self, label: str) -> Record:
        return self.ledger.records[label]


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Original:
    where = tmp_path_factory.mktemp("original")
    ledger = build_standard(where / "home", validators="four")
    bundle = where / "ledger.bundle"
    assert main(["export", "--home", str(ledger.home), "--out", str(bundle)]) == 0
    blocks, commit = export_blocks(ledger)
    return Original(ledger=ledger, bundle=bundle, blocks=blocks, commit=commit)


def audit_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["audit", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


def assert_names(message: str, patterns: Sequence[str], also: frozenset[int] = frozenset()) -> None:
    """Every pattern is in `message`, and every block it names is one the patterns name (or
    `also`): a message that points at a block the failure is not in misleads the auditor."""
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    allowed = {int(n) for p in patterns for n in re.findall(r"block (\d+)", p)} | also
    named = {int(n) for n in re.findall(r"\bblock (\d+)\b", message)}
    assert named <= allowed, f"{message!r} names block {sorted(named - allowed)}, wrongly"


def either(*patterns: str) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


# tampering without any key: bundles


Tampered = tuple[list[Block], Commit | None, list[str]]
BundleCase = Callable[[Original], Tampered]


def in_block(o: Original, height: int, records: Sequence[Record]) -> list[Block]:
    blocks = list(o.blocks)
    blocks[height - 1] = replace_records(blocks[height - 1], records)
    return blocks


def with_header(o: Original, height: int, **changes: object) -> list[Block]:
    blocks = list(o.blocks)
    blocks[height - 1] = replace_header(blocks[height - 1], **changes)
    return blocks


def flip_signature(o: Original) -> Tampered:
    ada_2, linus_2 = o.blocks[1].records
    sig = bytearray(ada_2.signature)
    sig[10] ^= 0x01
    forged = dataclasses.replace(ada_2, signature=bytes(sig))
    expect = [f"block 2 record {forged.id.hex()}: bad signature by {o.who('ada')}"]
    return in_block(o, 2, [forged, linus_2]), o.commit, expect


def forge_signature(o: Original) -> Tampered:
    """grace signs ada's record bytes with her own key and puts it in ada's name."""
    ada_2, linus_2 = o.blocks[1].records
    sig = o.author("grace").key.sign(Tag.RECORD, o.ledger.genesis.network_id, ada_2.signed_body())
    forged = dataclasses.replace(ada_2, signature=sig)
    expect = [f"block 2 record {forged.id.hex()}: bad signature by {o.who('ada')}"]
    return in_block(o, 2, [forged, linus_2]), o.commit, expect


def rewrite_title(o: Original) -> Tampered:
    ada_2, linus_2 = o.blocks[1].records
    assert isinstance(linus_2.body, Contribution)
    edited = dataclasses.replace(
        linus_2, body=dataclasses.replace(linus_2.body, title="Protocol walkthrough and parser")
    )
    expect = [f"block 2 record {edited.id.hex()}: bad signature by {o.who('linus')}"]
    return in_block(o, 2, [ada_2, edited]), o.commit, expect


def drop_record(o: Original) -> Tampered:
    return in_block(o, 2, o.blocks[1].records[:1]), o.commit, ["block 2: records_root"]


def duplicate_record(o: Original) -> Tampered:
    linus_2 = o.record("linus-2")
    blocks = in_block(o, 2, [*o.blocks[1].records, linus_2])
    expect = [f"block 2 record {linus_2.id.hex()}: feed {o.who('linus')}: expected seq 3, got 2"]
    return blocks, o.commit, expect


def reorder_records(o: Original) -> Tampered:
    blocks = in_block(o, 2, list(reversed(o.blocks[1].records)))
    return blocks, o.commit, ["block 2: records_root does not match its records"]


def move_record_earlier(o: Original) -> Tampered:
    """grace-2 moves from block 3 into block 2: a valid feed, but not what block 2 committed to."""
    blocks = in_block(o, 2, [*o.blocks[1].records, o.record("grace-2")])
    blocks = in_block(Original(o.ledger, o.bundle, blocks, o.commit), 3, [])
    return blocks, o.commit, ["block 2: records_root does not match"]


def move_record_later(o: Original) -> Tampered:
    blocks = in_block(o, 2, [o.record("linus-2")])
    blocks[2] = replace_records(blocks[2], [o.record("ada-2"), *blocks[2].records])
    return blocks, o.commit, ["block 2: records_root does not match"]


def splice_other_ledger(o: Original) -> Tampered:
    """ada's seq 2 replaced by ada's seq 2 of another community: same author, seq and prev."""
    ada_2 = o.record("ada-2")
    foreign = o.author("ada").sign(
        seq=2, prev=ada_2.prev, at=ada_2.timestamp, body=ada_2.body, network_id=OTHER_NETWORK
    )
    blocks = in_block(o, 2, [foreign, o.record("linus-2")])
    expect = [f"block 2 record {foreign.id.hex()}: bad signature by {o.who('ada')}"]
    return blocks, o.commit, expect


def splice_fork(o: Original) -> Tampered:
    """grace's finalized seq 3 replaced by her validly signed fork of it."""
    blocks = in_block(o, 4, [o.ledger.forks["grace-3"]])
    return blocks, o.commit, ["block 4: records_root does not match"]


def drop_evidence(o: Original) -> Tampered:
    return in_block(o, 5, []), o.commit, ["block 5: records_root does not match"]


def swap_blocks(o: Original) -> Tampered:
    blocks = list(o.blocks)
    blocks[2], blocks[3] = blocks[3], blocks[2]
    return blocks, o.commit, ["expected block 3, got block 4"]


def drop_block(o: Original) -> Tampered:
    return [*o.blocks[:3], *o.blocks[4:]], o.commit, ["expected block 4, got block 5"]


def repeat_block(o: Original) -> Tampered:
    return [*o.blocks[:3], o.blocks[2], *o.blocks[3:]], o.commit, ["expected block 4, got block 3"]


def drop_tip_block(o: Original) -> Tampered:
    expect = ["block 6: tip commit certificate: certificate is for height 7, expected 6"]
    return o.blocks[:-1], o.commit, expect


def header_state_root(o: Original) -> Tampered:
    blocks = with_header(o, 3, state_root=sha256(b"rich"))
    return blocks, o.commit, ["block 3: state_root does not match the state after the block"]


def header_time(o: Original) -> Tampered:
    time = o.blocks[3].header.time
    blocks = with_header(o, 4, time=time + 1)
    return blocks, o.commit, [f"block 4: time {time + 1} is not the BFT time {time}"]


def header_log_root(o: Original) -> Tampered:
    blocks = with_header(o, 5, log_root=sha256(b"x"))
    return blocks, o.commit, ["block 5: log_root does not match the log of all records"]


def header_proposer(o: Original) -> Tampered:
    """Another real validator as proposer: valid on its own, but block 4 is no longer the block
    that block 5 links to."""
    other = o.ledger.keys[1].public_key
    assert o.blocks[3].header.proposer != other
    blocks = with_header(o, 4, proposer=other)
    return blocks, o.commit, ["block 5: prev does not link to block 4"]


def last_commit_of_another_block(o: Original) -> Tampered:
    blocks = with_header(o, 4, last_commit=o.blocks[2].header.last_commit)
    return blocks, o.commit, ["block 4: last_commit: certificate is for height 2, expected 3"]


def last_commit_vote_dropped(o: Original) -> Tampered:
    commit = o.blocks[3].header.last_commit
    assert commit is not None
    heavy = max(o.ledger.validators, key=lambda v: v[1])[0].public_key
    light = next(v for v in commit.votes if v[0] != heavy)
    votes = tuple(v for v in commit.votes if v[0] in (heavy, light[0]))
    blocks = with_header(o, 4, last_commit=dataclasses.replace(commit, votes=votes))
    return blocks, o.commit, ["block 4: last_commit: certificate at height 3 carries power 4 of 6"]


def last_commit_vote_moved(o: Original) -> Tampered:
    commit = o.blocks[3].header.last_commit
    assert commit is not None
    key, at, sig = commit.votes[0]
    moved = dataclasses.replace(commit, votes=((key, at + 1, sig), *commit.votes[1:]))
    blocks = with_header(o, 4, last_commit=moved)
    expect = [f"block 4: last_commit: precommit at height 3 by {key.hex()[:16]}: bad signature"]
    return blocks, o.commit, expect


def last_commit_other_network(o: Original) -> Tampered:
    """The same validators' certificate of block 3, signed for another community."""
    block3 = o.blocks[2]
    foreign = certify(block3, OTHER_NETWORK, o.ledger.keys, timestamp=block3.header.time + 1000)
    blocks = with_header(o, 4, last_commit=foreign)
    return blocks, o.commit, ["block 4: last_commit: precommit at height 3 by .*: bad signature"]


def last_commit_other_ledger(o: Original) -> Tampered:
    """A genuine certificate of height 3 from another ledger run by the same validators."""
    genesis = genesis_of(o.ledger.validators, name="sister-commons")
    sister = Builder(genesis, o.ledger.keys)
    for _ in range(3):
        sister.add([])
    blocks = with_header(o, 4, last_commit=sister.commits[2])
    return blocks, o.commit, ["block 4: last_commit: certificate at height 3 is for block"]


def tip_commit_other_height(o: Original) -> Tampered:
    expect = ["block 7: tip commit certificate: certificate is for height 6, expected 7"]
    return list(o.blocks), o.blocks[-1].header.last_commit, expect


def tip_commit_missing(o: Original) -> Tampered:
    return list(o.blocks), None, ["block 7: the tip has no commit certificate"]


def tip_commit_other_network(o: Original) -> Tampered:
    tip = o.blocks[-1]
    foreign = certify(tip, OTHER_NETWORK, o.ledger.keys, timestamp=tip.header.time + 1000)
    expect = ["block 7: tip commit certificate: precommit at height 7 by .*: bad signature"]
    return list(o.blocks), foreign, expect


def tip_commit_below_quorum(o: Original) -> Tampered:
    tip = o.blocks[-1]
    keys = o.ledger.keys
    weak = certify(
        tip, o.ledger.genesis.network_id, [keys[0], keys[3]], timestamp=tip.header.time + 1
    )
    expect = ["block 7: tip commit certificate: certificate at height 7 carries power 4 of 6"]
    return list(o.blocks), weak, expect


def tip_commit_outsider(o: Original) -> Tampered:
    tip = o.blocks[-1]
    outsider = keypair("validator/outsider")
    votes = [(k, tip.header.time + 1) for k in [*o.ledger.keys, outsider]]
    forged = precommits(tip, o.ledger.genesis.network_id, votes)
    expect = [
        f"block 7: tip commit certificate: precommit at height 7 by "
        f"{outsider.public_key.hex()[:16]}, not a validator"
    ]
    return list(o.blocks), forged, expect


BUNDLE_CASES: dict[str, BundleCase] = {
    "record-signature-bit-flipped": flip_signature,
    "record-signature-forged-by-another-member": forge_signature,
    "record-title-rewritten": rewrite_title,
    "record-dropped": drop_record,
    "record-duplicated": duplicate_record,
    "records-reordered-in-block": reorder_records,
    "record-moved-to-earlier-block": move_record_earlier,
    "record-moved-to-later-block": move_record_later,
    "record-replaced-by-same-author-from-another-ledger": splice_other_ledger,
    "record-replaced-by-authors-fork": splice_fork,
    "evidence-dropped": drop_evidence,
    "blocks-reordered": swap_blocks,
    "block-dropped": drop_block,
    "block-repeated": repeat_block,
    "tip-block-dropped": drop_tip_block,
    "header-state-root-changed": header_state_root,
    "header-time-changed": header_time,
    "header-log-root-changed": header_log_root,
    "header-proposer-changed": header_proposer,
    "last-commit-of-another-block": last_commit_of_another_block,
    "last-commit-votes-dropped-below-quorum": last_commit_vote_dropped,
    "last-commit-vote-timestamp-moved": last_commit_vote_moved,
    "last-commit-from-another-network": last_commit_other_network,
    "last-commit-from-another-ledger": last_commit_other_ledger,
    "tip-commit-of-another-height": tip_commit_other_height,
    "tip-commit-missing": tip_commit_missing,
    "tip-commit-from-another-network": tip_commit_other_network,
    "tip-commit-below-quorum": tip_commit_below_quorum,
    "tip-commit-with-outsider-vote": tip_commit_outsider,
}


@pytest.mark.parametrize("case", BUNDLE_CASES.values(), ids=BUNDLE_CASES.keys())
def test_tampered_bundle_fails_audit_naming_place_and_rule(
    original: Original, case: BundleCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks, commit, expect = case(original)
    bundle = write_tampered(tmp_path / "t.bundle", original.ledger.genesis, blocks, commit)
    code, err = audit_cli(capsys, "--bundle", str(bundle))
    assert code == 1
    assert err.startswith("integrity failure: ")
    assert_names(err, expect)
    assert_typed(bundle, capsys)


def assert_typed(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`audit --json` gives the failure as data that agrees with its words: a known rule and
    its PROTOCOL section, the block the message names first, the record it names."""
    capsys.readouterr()
    assert main(["audit", "--bundle", str(bundle), "--json"]) == 1
    failure = json.loads(capsys.readouterr().out)["failure"]
    rule = next(r for r in Rule if r.id == failure["rule"])
    assert failure["section"] == rule.section
    named = re.match(r"(?:expected )?block (\d+)", failure["message"])
    if rule is Rule.HEIGHT:  # "expected block N, got block M": M is the block that came
        named = re.search(r"got block (\d+)", failure["message"])
    if named is not None:
        assert failure["height"] == int(named[1]) or rule is Rule.HEIGHT, failure
    if failure["record"] is not None:
        assert failure["record"] in failure["message"] or failure["message"].count("record #")


@pytest.mark.parametrize("case", BUNDLE_CASES.values(), ids=BUNDLE_CASES.keys())
def test_tampered_bundle_is_not_imported(
    original: Original, case: BundleCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks, commit, _ = case(original)
    bundle = write_tampered(tmp_path / "t.bundle", original.ledger.genesis, blocks, commit)
    home = tmp_path / "home"
    assert main(["import", "--home", str(home), str(bundle)]) == 1
    assert "Traceback" not in capsys.readouterr().err
    assert not (home / "ledger.sqlite").exists()
    assert (list(home.iterdir()) if home.exists() else []) == []  # no staging files left


def test_untampered_copy_passes(
    original: Original, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control: rewriting the same blocks through the same code changes nothing."""
    bundle = write_tampered(
        tmp_path / "same.bundle", original.ledger.genesis, original.blocks, original.commit
    )
    assert bundle.read_bytes() == original.bundle.read_bytes()
    assert audit_cli(capsys, "--bundle", str(bundle))[0] == 0


def test_bundle_with_another_genesis_fails(
    original: Original, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = genesis_of(original.ledger.validators, name="sister-commons")
    bundle = write_tampered(tmp_path / "g.bundle", other, original.blocks, original.commit)
    code, err = audit_cli(capsys, "--bundle", str(bundle))
    assert code == 1
    assert_names(err, [GENESIS_SWAPPED])
    genesis_file = original.ledger.write_genesis(tmp_path / "genesis.json")
    code, err = audit_cli(capsys, "--bundle", str(bundle), "--genesis", str(genesis_file))
    assert code == 1
    assert f"is not the expected {original.ledger.genesis.network_id.hex()}" in err


# bytes of a bundle


def _frame_offset(data: bytes, block: Block) -> int:
    encoded = block.encode()
    at = data.find(encoded)
    assert at > 0
    return at


RawCase = Callable[[Original, bytes], tuple[bytes, list[str]]]


def raw_magic(o: Original, data: bytes) -> tuple[bytes, list[str]]:
    return b"X" + data[1:], ["is not a Commons bundle"]


def raw_truncated(o: Original, data: bytes) -> tuple[bytes, list[str]]:
    return data[:-30], ["is truncated: a frame lacks 30 bytes"]


def raw_trailing_frame(o: Original, data: bytes) -> tuple[bytes, list[str]]:
    body = codec.encode({"data": b"", "kind": "commit"})
    return data + len(body).to_bytes(4, "big") + body, ["frames after its final commit"]


def raw_length_inflated(o: Original, data: bytes) -> tuple[bytes, list[str]]:
    start = len(BUNDLE_MAGIC)
    size = int.from_bytes(data[start : start + 4], "big")
    grown = data[:start] + (size + 1).to_bytes(4, "big") + data[start + 4 :]
    return grown, ["bundle|genesis|frame"]


def raw_block5_undecodable(o: Original, data: bytes) -> tuple[bytes, list[str]]:
    """A byte of block 5's header turned into an invalid MessagePack type: the message must name
    block 5 (the first block that fails), not a block the audit never reached."""
    at = _frame_offset(data, o.blocks[4])
    out = bytearray(data)
    out[at + 1] = 0xC1  # "never used" in MessagePack
    return bytes(out), [r"block 5\b"]


def raw_block3_record_byte(o: Original, data: bytes) -> tuple[bytes, list[str]]:
    record = o.record("grace-2")
    at = data.find(record.raw)
    out = bytearray(data)
    out[at + len(record.raw) - 1] ^= 0x01  # the signature's last byte
    return bytes(out), ["block 3 record", f"bad signature by {o.who('grace')}"]


RAW_ALSO = {raw_truncated: frozenset({7}), raw_trailing_frame: frozenset({7})}
"""Failures after the last block may name it."""

RAW_CASES: dict[str, RawCase] = {
    "magic-changed": raw_magic,
    "truncated": raw_truncated,
    "frame-after-final-commit": raw_trailing_frame,
    "frame-length-inflated": raw_length_inflated,
    "block-5-header-undecodable": raw_block5_undecodable,
    "block-3-record-byte-flipped": raw_block3_record_byte,
}


@pytest.mark.parametrize("case", RAW_CASES.values(), ids=RAW_CASES.keys())
def test_bundle_bytes_tampered_fail_audit(
    original: Original, case: RawCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, expect = case(original, original.bundle.read_bytes())
    bundle = tmp_path / "raw.bundle"
    bundle.write_bytes(data)
    code, err = audit_cli(capsys, "--bundle", str(bundle))
    assert code == 1, err
    assert_names(err, expect, RAW_ALSO.get(case, frozenset()))
    home = tmp_path / "home"
    assert main(["import", "--home", str(home), str(bundle)]) == 1
    assert not (home / "ledger.sqlite").exists()


def _audit_bytes(path: Path) -> str | None:
    """The failure an audit finds in the bundle at `path`, None if intact. Only ledger errors
    may come out of reading a bundle: anything else would reach a user as a traceback."""
    try:
        opened = open_bundle(path)
        report, _ = audit(
            opened.genesis,
            opened.raw_blocks(),
            lambda: opened.commit,
            apply=commons_rules(opened.genesis),
        )
    except LedgerError as e:
        return str(e) or type(e).__name__
    return None if report.failure is None else report.failure.message


def test_any_flipped_bit_in_a_bundle_is_caught(original: Original, tmp_path: Path) -> None:
    """Every third byte, low bit flipped: each copy must fail the audit."""
    data = original.bundle.read_bytes()
    path = tmp_path / "flip.bundle"
    missed = []
    for index in range(0, len(data), 3):
        flipped = bytearray(data)
        flipped[index] ^= 0x01
        path.write_bytes(bytes(flipped))
        if _audit_bytes(path) is None:
            missed.append(index)
    assert missed == [], f"flips at {missed[:10]} of {len(data)} bytes went unnoticed"


# rogue validators: every validator key, a rewritten history, re-certified


def forge(o: Original, bodies: list[list[Record]]) -> tuple[list[Block], Commit]:
    """Blocks certified by all the ledger's validators with these bodies, one per height. A body
    the chain refuses is still made into a block with correct links and a valid certificate,
    and the forgery stops there."""
    forger = Builder(o.ledger.genesis, o.ledger.keys)
    for body in bodies:
        try:
            forger.add(body)
        except BlockError:
            block = replace_records(forger.propose([]), body)
            return [*forger.blocks, block], forger.certify(block)
    assert forger.last_commit is not None
    return forger.blocks, forger.last_commit


def bodies(o: Original) -> list[list[Record]]:
    return [list(b.records) for b in o.blocks]


def rogue_drop(o: Original) -> Tampered:
    history = bodies(o)
    history[1] = [o.record("linus-2")]  # ada-2 never happened
    blocks, commit = forge(o, history)
    ada_3 = o.record("ada-3")
    expect = [f"block 5 record {ada_3.id.hex()}: feed {o.who('ada')}: expected seq 2, got 3"]
    return blocks, commit, expect


def rogue_reorder(o: Original) -> Tampered:
    history = bodies(o)
    history[1] = [o.record("ada-4"), o.record("linus-2")]
    history[6] = [o.record("ada-2"), o.record("linus-3")]
    blocks, commit = forge(o, history)
    ada_4 = o.record("ada-4")
    return blocks, commit, [f"block 2 record {ada_4.id.hex()}: feed .*expected seq 2, got 4"]


def rogue_splice_other_ledger(o: Original) -> Tampered:
    history = bodies(o)
    ada_2 = o.record("ada-2")
    foreign = o.author("ada").sign(
        seq=2, prev=ada_2.prev, at=ada_2.timestamp, body=ada_2.body, network_id=OTHER_NETWORK
    )
    history[1] = [foreign, o.record("linus-2")]
    blocks, commit = forge(o, history)
    return blocks, commit, [f"block 2 record {foreign.id.hex()}: bad signature by {o.who('ada')}"]


def rogue_splice_fork(o: Original) -> Tampered:
    """linus-2 replaced by another record linus signed at seq 2: linus-3 no longer links."""
    history = bodies(o)
    linus_2 = o.record("linus-2")
    fork = o.author("linus").sign(
        seq=2,
        prev=linus_2.prev,
        at=linus_2.timestamp,
        body=Contribution(title="Protocol walkthrough v2", kind="docs"),
    )
    history[1] = [o.record("ada-2"), fork]
    blocks, commit = forge(o, history)
    linus_3 = o.record("linus-3")
    expect = [
        f"block 7 record {linus_3.id.hex()}: feed {o.who('linus')} seq 3: prev "
        f"{linus_2.id.hex()[:16]} is not the id of seq 2 \\({fork.id.hex()[:16]}\\)"
    ]
    return blocks, commit, expect


def rogue_second_evidence(o: Original) -> Tampered:
    history = bodies(o)
    kept = o.record("grace-3")
    third = o.author("grace").sign(
        seq=3, prev=kept.prev, at=kept.timestamp, body=Contribution(title="Third", kind="code")
    )
    linus = o.author("linus")
    again = linus.sign(
        seq=3,
        prev=o.record("linus-2").id,
        at=o.blocks[5].header.time,
        body=Equivocation.of(kept, third),
    )
    history[5] = [again]
    blocks, commit = forge(o, history)
    expect = [f"block 6 record {again.id.hex()}: evidence for author {o.who('grace')} seq 3"]
    return blocks, commit, expect


def rogue_future_record(o: Original) -> Tampered:
    history = bodies(o)
    time6 = o.blocks[5].header.time
    ahead = o.author("grace").sign(
        seq=4,
        prev=o.record("grace-3").id,
        at=time6 + 600_001,
        body=Contribution(title="Tomorrow", kind="code"),
    )
    history[5] = [ahead]
    blocks, commit = forge(o, history)
    expect = [f"block 6 record {ahead.id.hex()}: .*more than 600000 ms after the reference time"]
    return blocks, commit, expect


def rogue_backdated_record(o: Original) -> Tampered:
    history = bodies(o)
    kept = o.record("grace-3")
    back = o.author("grace").sign(
        seq=4, prev=kept.id, at=kept.timestamp - 1, body=Contribution(title="Back", kind="code")
    )
    history[5] = [back]
    blocks, commit = forge(o, history)
    return blocks, commit, [f"block 6 record {back.id.hex()}: .*is before the previous record's"]


ROGUE_CASES: dict[str, BundleCase] = {
    "validators-drop-a-record": rogue_drop,
    "validators-reorder-a-feed": rogue_reorder,
    "validators-splice-record-from-another-ledger": rogue_splice_other_ledger,
    "validators-splice-a-fork-into-a-feed": rogue_splice_fork,
    "validators-repeat-evidence": rogue_second_evidence,
    "validators-include-a-record-from-the-future": rogue_future_record,
    "validators-include-a-backdated-record": rogue_backdated_record,
}


@pytest.mark.parametrize("case", ROGUE_CASES.values(), ids=ROGUE_CASES.keys())
def test_history_rewritten_by_all_validators_is_caught(
    original: Original, case: BundleCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks, commit, expect = case(original)
    assert commit is not None
    bundle = write_tampered(tmp_path / "rogue.bundle", original.ledger.genesis, blocks, commit)
    code, err = audit_cli(capsys, "--bundle", str(bundle))
    assert code == 1
    assert_names(err, expect)
    home = tmp_path / "home"
    assert main(["import", "--home", str(home), str(bundle)]) == 1
    assert not (home / "ledger.sqlite").exists()


def test_audit_names_the_first_failing_record_of_a_block(
    original: Original, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records are checked in order, each signature then feed (PROTOCOL.md §10): in a block whose
    record #0 breaks its feed and record #1 has a bad signature, record #0 fails first. The
    import (the chain rules) says so; the audit, which checks a batch's signatures ahead of the
    chain rules, must name the same record."""
    o = original
    history = bodies(o)
    time6 = o.blocks[5].header.time
    gap = o.author("grace").sign(
        seq=5, prev=o.record("grace-3").id, at=time6, body=Contribution(title="Gap", kind="code")
    )
    forged = o.author("linus").sign(
        seq=3,
        prev=o.record("linus-2").id,
        at=time6,
        body=Contribution(title="Forged", kind="docs"),
        network_id=OTHER_NETWORK,
    )
    history[5] = [gap, forged]
    blocks, commit = forge(o, history)
    bundle = write_tampered(tmp_path / "order.bundle", o.ledger.genesis, blocks, commit)
    first = f"block 6 record {gap.id.hex()}: feed {o.who('grace')}: expected seq 4, got 5"
    assert main(["import", "--home", str(tmp_path / "home"), str(bundle)]) == 1
    assert first in capsys.readouterr().err
    code, err = audit_cli(capsys, "--bundle", str(bundle))
    assert code == 1
    assert first in err


def test_forger_reproduces_the_honest_history(
    original: Original, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control for the rogue cases: forging the true bodies gives back the same blocks."""
    blocks, commit = forge(original, bodies(original))
    assert [b.id for b in blocks] == [b.id for b in original.blocks]
    bundle = write_tampered(tmp_path / "same.bundle", original.ledger.genesis, blocks, commit)
    assert audit_cli(capsys, "--bundle", str(bundle))[0] == 0


# tampering with the store on disk (the SQLite file, edited directly)


StoreCase = Callable[[Original, Path], list[str]]


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def damaged(record: Record, height: int) -> str:
    """How a store that checks what it reads names a record whose bytes changed."""
    return f"stored record {record.id.hex()} (in block {height} )?is damaged"


def s_record_signature(o: Original, db: Path) -> list[str]:
    ada_2 = o.record("ada-2")
    raw = _flip(ada_2.raw, len(ada_2.raw) - 5)
    sql(db, "UPDATE records SET raw = ? WHERE id = ?", (raw, ada_2.id))
    bad = f"block 2 record {sha256(raw).hex()}: bad signature by {o.who('ada')}"
    return [either(bad, damaged(ada_2, 2))]


def s_record_title(o: Original, db: Path) -> list[str]:
    linus_2 = o.record("linus-2")
    raw = linus_2.raw.replace(b"Protocol walkthrough", b"Protocol walkthrougH")
    assert raw != linus_2.raw
    sql(db, "UPDATE records SET raw = ? WHERE id = ?", (raw, linus_2.id))
    bad = f"block 2 record {sha256(raw).hex()}: bad signature by {o.who('linus')}"
    return [either(bad, damaged(linus_2, 2))]


def s_record_other_ledger(o: Original, db: Path) -> list[str]:
    ada_2 = o.record("ada-2")
    foreign = o.author("ada").sign(
        seq=2, prev=ada_2.prev, at=ada_2.timestamp, body=ada_2.body, network_id=OTHER_NETWORK
    )
    sql(db, "UPDATE records SET raw = ? WHERE id = ?", (foreign.raw, ada_2.id))
    bad = f"block 2 record {foreign.id.hex()}: bad signature by {o.who('ada')}"
    return [either(bad, damaged(ada_2, 2))]


def s_record_undecodable(o: Original, db: Path) -> list[str]:
    """grace-2's bytes no longer canonical: the audit must name block 3 (or the record)."""
    grace_2 = o.record("grace-2")
    sql(db, "UPDATE records SET raw = ? WHERE id = ?", (grace_2.raw + b"\x00", grace_2.id))
    return [either(r"block 3\b", damaged(grace_2, 3))]


def s_records_swapped(o: Original, db: Path) -> list[str]:
    ada_2, linus_2 = o.record("ada-2"), o.record("linus-2")
    sql(db, "UPDATE records SET raw = ? WHERE id = ?", (linus_2.raw, ada_2.id))
    sql(db, "UPDATE records SET raw = ? WHERE id = ?", (ada_2.raw, linus_2.id))
    return [either("block 2: records_root does not match its records", damaged(ada_2, 2))]


def s_record_fork(o: Original, db: Path) -> list[str]:
    grace_3 = o.record("grace-3")
    sql(db, "UPDATE records SET raw = ? WHERE id = ?", (o.ledger.forks["grace-3"].raw, grace_3.id))
    return [either("block 4: records_root does not match its records", damaged(grace_3, 4))]


def s_record_moved(o: Original, db: Path) -> list[str]:
    """Block 2's range grows over grace-2, block 3's shrinks: grace-2 now sits in block 2."""
    sql(db, "UPDATE blocks SET record_count = 3 WHERE height = 2")
    sql(db, "UPDATE blocks SET first_leaf = first_leaf + 1, record_count = 0 WHERE height = 3")
    return ["block 2 says 2 records, carries 3"]


def s_record_deleted(o: Original, db: Path) -> list[str]:
    sql(db, "DELETE FROM records WHERE id = ?", (o.record("grace-2").id,))
    return ["holds 9 records but block 7 ends the log at 10"]


def s_header_state_root(o: Original, db: Path) -> list[str]:
    header = dataclasses.replace(o.blocks[4].header, state_root=sha256(b"rich"))
    sql(db, "UPDATE blocks SET header = ? WHERE height = 5", (header.raw,))
    return [either("block 5: state_root does not match the state", "header of block 5 is damaged")]


def s_header_undecodable(o: Original, db: Path) -> list[str]:
    sql(db, "UPDATE blocks SET header = ? WHERE height = 3", (o.blocks[2].header.raw + b"\x00",))
    return ["block 3"]


def s_tip_header_undecodable(o: Original, db: Path) -> list[str]:
    """Store.open itself reads the tip header: its refusal must still say where."""
    sql(db, "UPDATE blocks SET header = ? WHERE height = 7", (o.blocks[6].header.raw + b"\x00",))
    return [r"block 7\b"]


def s_headers_swapped(o: Original, db: Path) -> list[str]:
    sql(db, "UPDATE blocks SET header = ? WHERE height = 3", (o.blocks[3].header.raw,))
    sql(db, "UPDATE blocks SET header = ? WHERE height = 4", (o.blocks[2].header.raw,))
    return [either("expected block 3, got block 4", "header of block 3 is damaged")]


def s_block_deleted(o: Original, db: Path) -> list[str]:
    sql(db, "DELETE FROM blocks WHERE height = 4")
    return ["has 6 blocks but heights up to 7: a block is missing"]


def s_tip_block_deleted(o: Original, db: Path) -> list[str]:
    sql(db, "DELETE FROM blocks WHERE height = 7")
    return ["holds 10 records but block 6 ends the log at 8"]


def s_state_value(o: Original, db: Path) -> list[str]:
    key = b"feed/" + o.author("ada").public_key
    sql(db, "UPDATE state SET value = ? WHERE key = ?", (codec.encode((9, bytes(32), 0)), key))
    return ["stored state is not the state after block 7"]


def s_state_added(o: Original, db: Path) -> list[str]:
    sql(
        db, "INSERT INTO state (key, value) VALUES (?, ?)", (b"tokens/mallory", codec.encode(10**6))
    )
    return ["stored state is not the state after block 7"]


def s_state_deleted(o: Original, db: Path) -> list[str]:
    sql(
        db,
        "DELETE FROM state WHERE key = ?",
        (b"evidence/" + o.author("grace").public_key + (3).to_bytes(8, "big"),),
    )
    return ["stored state is not the state after block 7"]


def s_merkle_inner(o: Original, db: Path) -> list[str]:
    """A node no frontier uses: opening does not read it, the audit's comparison must."""
    assert sql(db, "UPDATE merkle SET hash = ? WHERE key = ?", (sha256(b"x"), 1)) == 1
    return ["block 1: stored Merkle node level 0 index 1 is wrong"]


def s_merkle_frontier(o: Original, db: Path) -> list[str]:
    key = (3 << _LEVEL_SHIFT) | 0  # the 8-leaf subtree: on the 10-leaf log's frontier
    assert sql(db, "UPDATE merkle SET hash = ? WHERE key = ?", (sha256(b"x"), key)) == 1
    return ["its Merkle log does not match block 7's log root"]


def s_merkle_deleted(o: Original, db: Path) -> list[str]:
    assert sql(db, "DELETE FROM merkle WHERE key = ?", ((1 << _LEVEL_SHIFT) | 1,)) == 1
    return ["block 2: store lacks Merkle node level 1 index 1"]


def s_tip_commit_deleted(o: Original, db: Path) -> list[str]:
    sql(db, "DELETE FROM commits WHERE height = 7")
    return ["block 7: the tip has no commit certificate"]


def s_tip_commit_swapped(o: Original, db: Path) -> list[str]:
    sql(
        db,
        "UPDATE commits SET commit_ = (SELECT commit_ FROM commits WHERE height = 6) "
        "WHERE height = 7",
    )
    return ["block 7: tip commit certificate: certificate is for height 6, expected 7"]


def s_tip_commit_other_network(o: Original, db: Path) -> list[str]:
    tip = o.blocks[-1]
    foreign = certify(tip, OTHER_NETWORK, o.ledger.keys, timestamp=tip.header.time + 1000)
    sql(db, "UPDATE commits SET commit_ = ? WHERE height = 7", (encode_commit(foreign),))
    return ["block 7: tip commit certificate: precommit at height 7 by .*: bad signature"]


def s_genesis_swapped(o: Original, db: Path) -> list[str]:
    other = genesis_of(o.ledger.validators, name="sister-commons")
    sql(db, "UPDATE meta SET value = ? WHERE key = 'genesis'", (other.to_json(),))
    return [GENESIS_SWAPPED]


def s_genesis_garbled(o: Original, db: Path) -> list[str]:
    sql(db, "UPDATE meta SET value = ? WHERE key = 'genesis'", (b"{}",))
    return ["genesis"]


def s_schema_version(o: Original, db: Path) -> list[str]:
    sql(db, "UPDATE meta SET value = ? WHERE key = 'schema'", (b"9",))
    return [f"has schema b'9', expected {SCHEMA_VERSION}"]


def s_table_dropped(o: Original, db: Path) -> list[str]:
    sql(db, "DROP TABLE merkle")
    return [f"is damaged: merkle not as schema {SCHEMA_VERSION} has it"]


def s_file_header(o: Original, db: Path) -> list[str]:
    db.write_bytes(b"NOT SQLITE" + db.read_bytes()[10:])
    return ["store", "file is not a database"]


def _flip_in_file(db: Path, needle: bytes, offset: int) -> None:
    data = db.read_bytes()
    at = data.find(needle)
    assert at >= 0, "the bytes to flip must be in the file"
    assert data.find(needle, at + 1) < 0, "... and only once"
    db.write_bytes(_flip(data, at + offset))


def s_file_record_byte(o: Original, db: Path) -> list[str]:
    """A bit flipped in the database file itself, inside ada-2's stored signature."""
    ada_2 = o.record("ada-2")
    _flip_in_file(db, ada_2.signature, 7)
    raw = _flip(ada_2.raw, len(ada_2.raw) - 64 + 7)
    bad = f"block 2 record {sha256(raw).hex()}: bad signature by {o.who('ada')}"
    return [either(bad, damaged(ada_2, 2))]


def s_file_header_byte(o: Original, db: Path) -> list[str]:
    """A bit flipped in the database file, in block 4's stored header (its last field)."""
    header = o.blocks[3].header.raw
    _flip_in_file(db, header, len(header) - 1)
    return [either("block 4: validators_hash is not", "header of block 4 is damaged")]


# Derived rows the store serves (certificates below the tip, the record index) and that the
# audit of a store does not compare with the replay yet: tampering here goes unnoticed.


def s_middle_commit_swapped(o: Original, db: Path) -> list[str]:
    sql(
        db,
        "UPDATE commits SET commit_ = (SELECT commit_ FROM commits WHERE height = 2) "
        "WHERE height = 3",
    )
    return [r"\b3\b", "certificate|commit"]


def s_middle_commit_deleted(o: Original, db: Path) -> list[str]:
    sql(db, "DELETE FROM commits WHERE height = 3")
    return [r"\b3\b", "certificate|commit"]


def s_record_id_column(o: Original, db: Path) -> list[str]:
    grace_2 = o.record("grace-2")
    sql(db, "UPDATE records SET id = ? WHERE id = ?", (sha256(b"not it"), grace_2.id))
    filed = sha256(b"not it").hex()
    return [either(grace_2.id.hex()[:16], "block 3", f"stored record {filed} is damaged")]


def s_record_lookup_columns(o: Original, db: Path) -> list[str]:
    """The lookup columns the audit does not replay: record(id) and record_at would miss it."""
    grace_2 = o.record("grace-2")
    sql(db, "UPDATE records SET id_prefix = 0 WHERE id = ?", (grace_2.id,))
    return [f"block 3: record {grace_2.id.hex()}: its stored id, author, seq, height or lookup"]


def s_record_seq_column(o: Original, db: Path) -> list[str]:
    grace_2 = o.record("grace-2")
    sql(db, "UPDATE records SET seq = 999 WHERE id = ?", (grace_2.id,))
    return [f"block 3: record {grace_2.id.hex()}: its stored id, author, seq, height or lookup"]


def s_record_raw_not_bytes(o: Original, db: Path) -> list[str]:
    sql(db, "UPDATE records SET raw = 'garbage text' WHERE id = ?", (o.record("grace-2").id,))
    return ["a stored record of block 3 is damaged: not bytes"]


def s_state_row_not_bytes(o: Original, db: Path) -> list[str]:
    sql(db, "INSERT INTO state (key, value) VALUES ('text key', 'text value')")
    return ["is damaged: state change .* is not bytes"]


def s_record_height_column(o: Original, db: Path) -> list[str]:
    sql(db, "UPDATE records SET height = 7 WHERE id = ?", (o.record("grace-2").id,))
    return [o.record("grace-2").id.hex()[:16] + "|block 3"]


INDEX_OF_6 = (
    "stored lookup table {} is not the index of the first 6 records: it has {} rows, and {} of "
    "those records have theirs"
)


def s_id_index_row_deleted(o: Original, db: Path) -> list[str]:
    """record(id) would no longer find grace-2: the index tables hold the first six records."""
    assert sql(db, "DELETE FROM record_ids WHERE leaf = 5") == 1
    return [INDEX_OF_6.format("record_ids", 5, 5)]


def s_id_index_row_moved(o: Original, db: Path) -> list[str]:
    """record(grace-2's id) would look at another leaf (it compares the id, and finds none)."""
    assert sql(db, "UPDATE record_ids SET leaf = 4 WHERE leaf = 5") == 1
    return [INDEX_OF_6.format("record_ids", 6, 5)]


def s_feed_index_row_changed(o: Original, db: Path) -> list[str]:
    assert sql(db, "UPDATE feed_index SET seq = 9 WHERE leaf = 5") == 1
    return [INDEX_OF_6.format("feed_index", 6, 5)]


def s_id_index_row_swapped(o: Original, db: Path) -> list[str]:
    """Grace-2's row (leaf 5) traded for a correct row of ada-4 (leaf 8), past the mark."""
    ada_4 = o.record("ada-4")
    prefix = int.from_bytes(ada_4.id[:8], "big", signed=True)
    assert sql(db, "DELETE FROM record_ids WHERE leaf = 5") == 1
    assert sql(db, "INSERT INTO record_ids VALUES (?, 8)", (prefix,)) == 1
    return [INDEX_OF_6.format("record_ids", 6, 5)]


def s_id_index_without_its_key(o: Original, db: Path) -> list[str]:
    """A table without the primary key could hold leaf 4 twice and leaf 5 never, counts intact."""
    sql(db, "DROP TABLE record_ids")
    sql(db, "CREATE TABLE record_ids (id_prefix INTEGER NOT NULL, leaf INTEGER NOT NULL)")
    return [f"is damaged: record_ids not as schema {SCHEMA_VERSION} has it"]


def s_feed_index_dropped(o: Original, db: Path) -> list[str]:
    sql(db, "DROP TABLE feed_index")
    return [f"is damaged: feed_index not as schema {SCHEMA_VERSION} has it"]


def s_feed_index_row_added(o: Original, db: Path) -> list[str]:
    """An index row for ada-4 (leaf 8), past the index mark: found in memory, never there."""
    ada_4 = o.record("ada-4")
    prefix = int.from_bytes(ada_4.author[:8], "big", signed=True)
    assert sql(db, "INSERT INTO feed_index VALUES (?, ?, 8)", (prefix, ada_4.seq)) == 1
    return [INDEX_OF_6.format("feed_index", 7, 6)]


def s_index_mark_lowered(o: Original, db: Path) -> list[str]:
    assert sql(db, "UPDATE meta SET value = ? WHERE key = 'indexed'", (b"3",)) == 1
    return ["lookup table record_ids is not the index of the first 3 records: it has 6 rows, and 3"]


def s_index_mark_beyond_the_records(o: Original, db: Path) -> list[str]:
    assert sql(db, "UPDATE meta SET value = ? WHERE key = 'indexed'", (b"11",)) == 1
    return ["its index mark b'11' is not a record count up to 10"]


def s_index_mark_of_5000_digits(o: Original, db: Path) -> list[str]:
    assert sql(db, "UPDATE meta SET value = ? WHERE key = 'indexed'", (b"9" * 5000,)) == 1
    return ["its index mark b'9999.* is not a record count up to 10"]


def s_genesis_row_deleted(o: Original, db: Path) -> list[str]:
    assert sql(db, "DELETE FROM meta WHERE key = 'genesis'") == 1
    return ["its genesis row is missing or not bytes"]


def s_tip_leaf_range_text(o: Original, db: Path) -> list[str]:
    assert sql(db, "UPDATE blocks SET first_leaf = 'eight' WHERE height = 7") == 1
    return ["block 7 is damaged: its leaf range is 'eight', 2"]


def s_leaf_range_text(o: Original, db: Path) -> list[str]:
    assert sql(db, "UPDATE blocks SET record_count = 'one' WHERE height = 3") == 1
    return ["block 3: stored block 3 is damaged: its leaf range is 5, 'one'"]


def s_commit_row_text(o: Original, db: Path) -> list[str]:
    assert sql(db, "UPDATE commits SET commit_ = 'signed' WHERE height = 3") == 1
    return ["stored certificate of height 3 is damaged: not bytes"]


def s_validator_change_flag(o: Original, db: Path) -> list[str]:
    sql(db, "UPDATE blocks SET validator_change = 1 WHERE height = 3")
    return [r"block 3\b"]


STORE_CASES: dict[str, StoreCase] = {
    "record-raw-signature-flipped": s_record_signature,
    "record-raw-title-edited": s_record_title,
    "record-raw-from-another-ledger": s_record_other_ledger,
    "record-raw-undecodable": s_record_undecodable,
    "record-rows-swapped": s_records_swapped,
    "record-raw-replaced-by-fork": s_record_fork,
    "record-moved-to-earlier-block": s_record_moved,
    "record-row-deleted": s_record_deleted,
    "block-header-state-root": s_header_state_root,
    "block-header-undecodable": s_header_undecodable,
    "tip-block-header-undecodable": s_tip_header_undecodable,
    "block-headers-swapped": s_headers_swapped,
    "block-row-deleted": s_block_deleted,
    "tip-block-row-deleted": s_tip_block_deleted,
    "state-row-changed": s_state_value,
    "state-row-added": s_state_added,
    "state-row-deleted": s_state_deleted,
    "merkle-row-changed": s_merkle_inner,
    "merkle-frontier-row-changed": s_merkle_frontier,
    "merkle-row-deleted": s_merkle_deleted,
    "tip-commit-row-deleted": s_tip_commit_deleted,
    "tip-commit-row-of-another-height": s_tip_commit_swapped,
    "tip-commit-row-from-another-network": s_tip_commit_other_network,
    "genesis-row-of-another-network": s_genesis_swapped,
    "genesis-row-garbled": s_genesis_garbled,
    "schema-version-changed": s_schema_version,
    "table-dropped": s_table_dropped,
    "sqlite-file-header-garbled": s_file_header,
    "file-bit-flipped-in-a-record": s_file_record_byte,
    "file-bit-flipped-in-a-header": s_file_header_byte,
    "commit-row-below-tip-swapped": s_middle_commit_swapped,
    "commit-row-below-tip-deleted": s_middle_commit_deleted,
    "record-index-id-column-changed": s_record_id_column,
    "record-index-height-column-changed": s_record_height_column,
    "record-index-lookup-prefix-changed": s_record_lookup_columns,
    "record-index-seq-column-changed": s_record_seq_column,
    "record-raw-not-bytes": s_record_raw_not_bytes,
    "state-row-not-bytes": s_state_row_not_bytes,
    "block-validator-change-flag-set": s_validator_change_flag,
    "genesis-row-deleted": s_genesis_row_deleted,
    "tip-block-leaf-range-text": s_tip_leaf_range_text,
    "block-leaf-range-text": s_leaf_range_text,
    "commit-row-below-tip-text": s_commit_row_text,
    "id-index-row-deleted": s_id_index_row_deleted,
    "id-index-row-moved": s_id_index_row_moved,
    "feed-index-row-changed": s_feed_index_row_changed,
    "feed-index-row-added": s_feed_index_row_added,
    "index-mark-lowered": s_index_mark_lowered,
    "index-mark-beyond-the-records": s_index_mark_beyond_the_records,
    "index-mark-of-5000-digits": s_index_mark_of_5000_digits,
    "id-index-row-swapped-for-an-unindexed-one": s_id_index_row_swapped,
    "id-index-table-without-its-primary-key": s_id_index_without_its_key,
    "feed-index-table-dropped": s_feed_index_dropped,
}


DERIVED_ROW_CASES = {
    name: STORE_CASES[name]
    for name in (
        "merkle-row-changed",
        "merkle-row-deleted",
        "record-index-lookup-prefix-changed",
        "record-index-seq-column-changed",
        "id-index-row-deleted",
        "feed-index-row-changed",
    )
}


@pytest.mark.parametrize("case", DERIVED_ROW_CASES.values(), ids=DERIVED_ROW_CASES.keys())
def test_check_derived_on_its_own_catches_what_check_block_catches(
    original: Original, case: StoreCase, tmp_path: Path
) -> None:
    """The audit compares a store's rows block by block; `check_derived` without
    `blocks_checked` (for a replay that did not) reads every record again and must find the
    same change, named without the block."""
    db = copy_ledger(original.ledger.path, tmp_path / "home")
    expect = [re.sub(r"^block \d+: ", "", pattern) for pattern in case(original, db)]
    with Store.open(db, rules=commons_rules) as store:
        chain = replay_of(store)
        with pytest.raises(StoreError) as raised:
            store.check_derived(chain)
    assert_names(str(raised.value), expect)


@pytest.mark.parametrize("case", STORE_CASES.values(), ids=STORE_CASES.keys())
def test_tampered_store_fails_audit_naming_place_and_rule(
    original: Original, case: StoreCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    db = copy_ledger(original.ledger.path, home)
    expect = case(original, db)
    code, err = audit_cli(capsys, "--home", str(home))
    assert code == 1, f"audit passed a store with this change: {err}"
    assert err.startswith(("integrity failure: ", "error: "))
    assert_names(err, expect)


@pytest.mark.parametrize(
    ("case", "lookup"),
    [
        (s_feed_index_row_changed, lambda o, s: s.record_at(o.record("grace-2").author, 9)),
        (s_feed_index_row_changed, lambda o, s: s.record_at(o.record("grace-2").author, 2)),
        (s_id_index_row_moved, lambda o, s: s.record(o.record("grace-2").id)),
    ],
    ids=["asked-seq-9-row-says-9", "asked-seq-2-row-gone", "id-row-points-elsewhere"],
)
def test_lookups_through_a_tampered_index_never_hand_out_another_record(
    original: Original,
    case: StoreCase,
    lookup: Callable[[Original, Store], object],
    tmp_path: Path,
) -> None:
    """The index tables only point: the record row itself must be the one asked for."""
    db = copy_ledger(original.ledger.path, tmp_path / "home")
    case(original, db)
    with Store.open(db, rules=commons_rules) as store:
        assert lookup(original, store) is None


@pytest.mark.parametrize("label", ["grace-2", "ada-4"], ids=["indexed", "found-in-memory"])
def test_record_at_refuses_a_row_whose_bytes_are_another_record(
    original: Original, label: str, tmp_path: Path
) -> None:
    """The row filed as `label` (author and seq columns untouched) holds another record's id
    and bytes: the lookup by (author, seq) must not hand that record out."""
    db = copy_ledger(original.ledger.path, tmp_path / "home")
    filed, other = original.record(label), original.record("linus-2")
    sql(db, "UPDATE records SET raw = ?, id = ? WHERE id = ?", (other.raw, other.id, filed.id))
    with (
        Store.open(db, rules=commons_rules) as store,
        pytest.raises(StoreError, match=f"it is filed as record {filed.seq} of "),
    ):
        store.record_at(filed.author, filed.seq)


@pytest.mark.parametrize("seq", [0, -1, -(2**70), 2**63, 2**64])
def test_record_at_a_seq_no_record_can_have_finds_nothing(
    original: Original, seq: int, tmp_path: Path
) -> None:
    with Store.open(original.ledger.path, rules=commons_rules, snapshot=True) as store:
        assert store.record_at(original.author("ada").public_key, seq) is None


@pytest.mark.parametrize(
    ("leaf", "statement", "expected"),
    [
        (8, "UPDATE records SET height = 3 WHERE leaf = 8", "its leaf 8 is not in block 3"),
        (5, "UPDATE records SET height = 1 WHERE leaf = 5", "its leaf 5 is not in block 1"),
        (9, "UPDATE records SET leaf = 10 WHERE leaf = 9", "its leaf 10 is not in block 7"),
        (9, "UPDATE records SET height = 6 WHERE leaf = 9", "block 6, which holds leaves [8, 8)"),
    ],
    ids=["unindexed-height", "indexed-height", "leaf-past-the-log", "empty-block"],
)
def test_proof_from_a_store_with_misplaced_rows_is_a_clear_error(
    original: Original,
    leaf: int,
    statement: str,
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A record row whose leaf or height columns were edited would make the proof's path
    wrong: `commons proof` says which record is damaged, with no traceback."""
    home = tmp_path / "home"
    db = copy_ledger(original.ledger.path, home)
    record_id = [record for block in original.blocks for record in block.records][leaf].id
    sql(db, statement)
    capsys.readouterr()
    code = main(["proof", record_id.hex(), "--home", str(home), "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert (code, "Traceback" in err) == (1, False), err
    assert expected in err


def test_untampered_store_copy_passes(
    original: Original, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    copy_ledger(original.ledger.path, home)
    assert audit_cli(capsys, "--home", str(home))[0] == 0


def test_store_serving_a_tampered_certificate_gives_proofs_that_fail(
    original: Original, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Why the certificate rows below the tip matter: `commons proof` serves them."""
    home = tmp_path / "home"
    db = copy_ledger(original.ledger.path, home)
    s_middle_commit_swapped(original, db)
    proof, genesis = tmp_path / "p.proof", original.ledger.write_genesis(tmp_path / "g.json")
    grace_2 = original.record("grace-2").id.hex()
    assert main(["proof", grace_2, "--home", str(home), "--out", str(proof)]) == 0
    assert main(["verify-proof", str(proof), "--genesis", str(genesis)]) == 1
    assert "certificate is for height 2, expected 3" in capsys.readouterr().err
