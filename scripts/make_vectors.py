"""Write the conformance vectors of tests/vectors/commons/ (what each file holds: its README.md).

    python scripts/make_vectors.py [--out DIR]

Every key comes from a label and every time from a scenario, so a run writes the same bytes as
the last one; `tests/test_vectors_commons.py` checks the code against the files written, so an
encoding change that breaks compatibility fails a test instead of going unnoticed. Run this only
when the protocol changes on purpose, and say so in docs/PROTOCOL.md §17.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledger.audit import Failure, audit_bundle
from ledger.block import Block, Commit, Header, Precommit, encode_commit
from ledger.chain import certify
from ledger.crypto import Keypair, Tag, signing_bytes
from ledger.errors import InvalidData
from ledger.files import BUNDLE_MAGIC, bundle_frame, write_bundle
from ledger.genesis import Genesis
from ledger.merkle import root_of
from ledger.records import Contribution, Endorsement, Equivocation, Record, sign_record
from ledger.rulebook import Rule
from ledger.store import Store
from ledger.validators import ValidatorSet
from ledger.vote_evidence import PREVOTE, DoubleVote, Vote
from node.rules import commons_rules
from node.scenario import Player, load

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = (
    "reward_lifecycle",  # contribute, propose reward, vote, execute
    "failed_execution",  # freeze, reinstate, set_param, a whole proposal undone
    "validator_power_on_a_live_network",  # change_validators: new_validators in headers
    "cancel_while_pending",  # cancel
    "transfer_off_and_on",  # register, delegate, transfer
)
BROKEN_FROM = "reward_lifecycle"


def key(label: str) -> Keypair:
    """The key node/scenario.py gives a label."""
    return Keypair.from_seed(hashlib.sha256(f"commons-scenario/{label}".encode()).digest())


@dataclasses.dataclass
class Played:
    genesis: Genesis
    blocks: list[Block]
    commit: Commit
    verdicts: dict[bytes, str | None]
    """Each record's rejection reason, None when the rules accepted it."""
    signers: list[Keypair]


def play(name: str) -> Played:
    doc = load((ROOT / "tests" / "scenarios" / f"{name}.json").read_bytes())
    with tempfile.TemporaryDirectory() as where:
        player = Player(doc, Path(where))
        player.play()
        store = player.store
        blocks = list(store.blocks())
        commit = store.commit(store.tip.height)
        if commit is None:
            raise SystemExit(f"{name}: the scenario's tip has no certificate")
        verdicts = {
            r.id: store.chain.state.get(b"gov/rejected/" + r.id) for b in blocks for r in b.records
        }
        genesis, signers = store.genesis, list(player.validators.values())
        store.close()
    return Played(genesis, blocks, commit, verdicts, signers)


# the files


def genesis_vector(genesis: Genesis) -> dict[str, Any]:
    return {
        "json": genesis.to_json().decode(),
        "canonical": genesis.raw.hex(),
        "network_id": genesis.network_id.hex(),
        "rules": genesis.rules,
    }


def chain_vector(p: Played) -> dict[str, Any]:
    """Every block's bytes and the roots after it: the state root after each governance step."""
    blocks = []
    for b in p.blocks:
        h = b.header
        blocks.append(
            {
                "height": h.height,
                "id": h.id.hex(),
                "header": h.raw.hex(),
                "time": h.time,
                "records": [
                    {"id": r.id.hex(), "kind": r.body.KIND, "rejected": p.verdicts.get(r.id)}
                    for r in b.records
                ],
                "records_root": h.records_root.hex(),
                "log_size": h.log_size,
                "log_root": h.log_root.hex(),
                "state_root": h.state_root.hex(),
                "new_validators": None
                if h.new_validators is None
                else [[k.hex(), power] for k, power in h.new_validators.to_wire()],
            }
        )
    return {
        "genesis": genesis_vector(p.genesis),
        "blocks": blocks,
        "tip_commit": encode_commit(p.commit).hex(),
    }


def record_vector(record: Record, network_id: bytes, seed: bytes | None) -> dict[str, Any]:
    return {
        "kind": record.body.KIND,
        "network_id": network_id.hex(),
        "author": record.author.hex(),
        "seed": None if seed is None else seed.hex(),
        "bytes": record.raw.hex(),
        "id": record.id.hex(),
        "signing_bytes": signing_bytes(Tag.RECORD, network_id, record.signed_body()).hex(),
        "signature": record.signature.hex(),
    }


def seed_of(label: str) -> bytes:
    return hashlib.sha256(f"commons-scenario/{label}".encode()).digest()


def record_vectors(played: list[Played]) -> list[dict[str, Any]]:
    """The first record of each kind the scenarios made, and evidence of both sorts."""
    seeds = {
        key(f"member/{n}").public_key: seed_of(f"member/{n}")
        for n in ("ada", "bob", "cy", "dan", "eve", "newcomer", "zed", "stranger")
    }
    found: dict[str, dict[str, Any]] = {}
    for p in played:
        for b in p.blocks:
            for r in b.records:
                if r.body.KIND not in found:
                    found[r.body.KIND] = record_vector(r, p.genesis.network_id, seeds.get(r.author))
    net = played[0].genesis.network_id
    contribution = next(v for v in found.values() if v["kind"] == "contribution")
    endorsement = sign_record(
        key("member/bob"),
        net,
        seq=2,
        prev=b"\x02" * 32,
        timestamp=4000,
        body=Endorsement(contribution=bytes.fromhex(contribution["id"]), comment="reviewed"),
    )
    found["endorsement"] = record_vector(endorsement, net, seed_of("member/bob"))
    ada = key("member/ada")
    one, two = (
        sign_record(
            ada,
            net,
            seq=9,
            prev=b"\x09" * 32,
            timestamp=5000,
            body=Contribution(title=title, kind="code"),
        )
        for title in ("one", "another")
    )
    first, second = sorted((one.raw, two.raw))
    evidence = sign_record(
        key("member/bob"),
        net,
        seq=1,
        prev=bytes(32),
        timestamp=6000,
        body=Equivocation(first=first, second=second),
    )
    found["equivocation"] = record_vector(evidence, net, seed_of("member/bob"))
    validator = key("validator/validator")
    votes = [
        Vote.sign(validator, net, type_=PREVOTE, height=4, round_=0, block_id=block)
        for block in (bytes(32), b"\x01" * 32)
    ]
    double = sign_record(
        key("member/cy"),
        net,
        seq=1,
        prev=bytes(32),
        timestamp=7000,
        body=DoubleVote.of(*votes),
    )
    found["double-vote"] = record_vector(double, net, seed_of("member/cy"))
    return [found[k] for k in sorted(found)]


def proof_vectors(p: Played) -> list[dict[str, Any]]:
    """A record proof for a record of each block that has one, and one with a wrong path."""
    with tempfile.TemporaryDirectory() as where:
        store = Store.create(Path(where) / "l.sqlite", p.genesis, rules=commons_rules)
        for i, b in enumerate(p.blocks):
            commit = p.blocks[i + 1].header.last_commit if i + 1 < len(p.blocks) else p.commit
            store.append(b, commit)
        out = []
        for b in p.blocks:
            if b.records:
                proof = store.prove_record(b.records[-1].id)
                out.append(
                    {
                        "proof": proof.encode().hex(),
                        "record": b.records[-1].id.hex(),
                        "height": b.height,
                        "valid": True,
                    }
                )
        store.close()
    last = bytes.fromhex(out[-1]["proof"])
    broken = bytearray(last)
    broken[-40] ^= 1
    out.append(
        {
            "proof": bytes(broken).hex(),
            "record": out[-1]["record"],
            "height": out[-1]["height"],
            "valid": False,
        }
    )
    return out


# bundles that break one rule each: the tip block changed, then certified again by the
# scenario's validator, so its certificate holds and the rule named is the first one broken


Broken = tuple[list[Block], Commit | None, int | None, bytes | None]
"""The blocks and tip certificate of a broken bundle, the height and record the audit names."""
Tamper = Callable[[Played], Broken]


def _recertify(p: Played, blocks: list[Block], header: Header) -> tuple[list[Block], Commit]:
    tip = Block(header=header, records=blocks[-1].records)
    commit = certify(tip, p.genesis.network_id, p.signers, timestamp=header.time + 1000)
    return [*blocks[:-1], tip], commit


def _tip_header(**changes: Any) -> Tamper:
    def tamper(p: Played) -> Broken:
        header = dataclasses.replace(p.blocks[-1].header, **changes)
        blocks, commit = _recertify(p, p.blocks, header)
        return blocks, commit, header.height, None

    return tamper


def _bad_record(p: Played) -> Broken:
    """A record in the tip block whose signature is flipped, the roots made over its bytes."""
    height = max(b.height for b in p.blocks if b.records)
    index = height - 1
    block = p.blocks[index]
    record = block.records[0]
    signature = bytearray(record.signature)
    signature[0] ^= 1
    forged = dataclasses.replace(record, signature=bytes(signature))
    records = (forged, *block.records[1:])
    header = dataclasses.replace(block.header, records_root=root_of([r.raw for r in records]))
    cut = [*p.blocks[:index], Block(header=header, records=records)]
    tip = cut[-1]
    commit = certify(tip, p.genesis.network_id, p.signers, timestamp=header.time + 1000)
    return cut, commit, height, forged.id


def _late_last_commit(p: Played) -> Broken:
    """The tip's last_commit signed at the previous block's own time; the tip's time follows."""
    previous, tip = p.blocks[-2].header, p.blocks[-1].header
    early = Commit.of(
        [
            Precommit.sign(
                s,
                p.genesis.network_id,
                height=previous.height,
                round_=0,
                block_id=previous.id,
                timestamp=previous.time,
            )
            for s in p.signers
        ]
    )
    header = dataclasses.replace(tip, last_commit=early, time=previous.time)
    blocks, commit = _recertify(p, p.blocks, header)
    return blocks, commit, header.height, None


def _gap_in_feed(p: Played) -> Broken:
    """A record appended to the tip block that skips a seq in its author's feed."""
    ada = key("member/ada")
    last = [r for b in p.blocks for r in b.records if r.author == ada.public_key][-1]
    gap = sign_record(
        ada,
        p.genesis.network_id,
        seq=last.seq + 2,
        prev=last.id,
        timestamp=p.blocks[-1].header.time,
        body=Contribution(title="seq skipped", kind="code"),
    )
    tip = p.blocks[-1]
    records = (*tip.records, gap)
    header = dataclasses.replace(
        tip.header, record_count=len(records), records_root=root_of([r.raw for r in records])
    )
    blocks = [*p.blocks[:-1], Block(header=header, records=records)]
    tip_block = blocks[-1]
    commit = certify(tip_block, p.genesis.network_id, p.signers, timestamp=header.time + 1000)
    return blocks, commit, header.height, gap.id


def _forged_last_commit(p: Played) -> Broken:
    """The tip's last_commit with one precommit's signature flipped."""
    tip = p.blocks[-1].header
    if tip.last_commit is None:
        raise SystemExit("the tip has no last_commit to forge")
    first, *rest = tip.last_commit.precommits()
    signature = bytearray(first.signature)
    signature[0] ^= 1
    forged = Commit.of([dataclasses.replace(first, signature=bytes(signature)), *rest])
    blocks, commit = _recertify(p, p.blocks, dataclasses.replace(tip, last_commit=forged))
    return blocks, commit, tip.height, None


def _no_tip_commit(p: Played) -> Broken:
    return p.blocks, None, p.blocks[-1].height, None


def _swapped(p: Played) -> Broken:
    blocks = [*p.blocks[:-2], p.blocks[-1], p.blocks[-2]]
    return blocks, p.commit, p.blocks[-1].height, None


def _later(p: Played) -> Broken:
    return _tip_header(time=p.blocks[-1].header.time + 1)(p)


BROKEN: dict[Rule, tuple[str, Tamper]] = {
    Rule.SIGNATURE: ("a record's signature flipped", _bad_record),
    Rule.STATE_ROOT: ("the tip's state_root changed", _tip_header(state_root=b"\x01" * 32)),
    Rule.LOG: ("the tip's log_root changed", _tip_header(log_root=b"\x01" * 32)),
    Rule.RECORDS_ROOT: ("the tip's records_root changed", _tip_header(records_root=b"\x01" * 32)),
    Rule.PREV: ("the tip's prev changed", _tip_header(prev=b"\x01" * 32)),
    Rule.BFT_TIME: ("the tip's time one ms later", _later),
    Rule.PROPOSER: ("the tip's proposer not a validator", _tip_header(proposer=b"\x02" * 32)),
    Rule.VALIDATORS_HASH: (
        "the tip's validators_hash changed",
        _tip_header(validators_hash=b"\x01" * 32),
    ),
    Rule.COMMIT_AFTER_BLOCK: (
        "the tip's last_commit signed at the block's time",
        _late_last_commit,
    ),
    Rule.TIP_COMMIT: ("the tip's certificate left out", _no_tip_commit),
    Rule.FEED: ("a record skipping a seq added to the tip block", _gap_in_feed),
    Rule.LAST_COMMIT: ("a precommit in the tip's last_commit forged", _forged_last_commit),
    Rule.NEXT_VALIDATORS_HASH: (
        "the tip's next_validators_hash changed",
        _tip_header(next_validators_hash=b"\x01" * 32),
    ),
    Rule.NEW_VALIDATORS: (
        "the tip says the validators change",
        _tip_header(new_validators=ValidatorSet.of({b"\x03" * 32: 1})),
    ),
    Rule.HEIGHT: ("the last two blocks swapped", _swapped),
}


def expect(holds: bool, what: str) -> None:
    """Stop unless a vector breaks the rule it is named after (or a valid one is valid)."""
    if not holds:
        raise SystemExit(f"vector not as intended: {what}")


def write_bundle_file(
    path: Path, genesis: Genesis, blocks: list[Block], commit: Commit | None
) -> None:
    with path.open("wb") as f:
        write_bundle(f, genesis, blocks, commit)


def bundles(out: Path, played: dict[str, Played]) -> list[dict[str, Any]]:
    folder = out / "bundles"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = []
    for name, p in played.items():
        path = folder / f"valid-{name}.bundle"
        write_bundle_file(path, p.genesis, p.blocks, p.commit)
        report = audit_bundle(path, rules=commons_rules)
        expect(report.ok, f"{name}: {report.failure}")
        manifest.append(
            {
                "file": path.name,
                "ok": True,
                "failure": None,
                "height": report.height,
                "records": report.records,
                "state_root": report.state_root.hex(),
                "log_root": report.log_root.hex(),
            }
        )
    base = played[BROKEN_FROM]
    for rule, (what, tamper) in BROKEN.items():
        blocks, commit, height, record = tamper(base)
        path = folder / f"broken-{rule.id}-s{rule.section}.bundle"
        write_bundle_file(path, base.genesis, blocks, commit)
        failure = audit_bundle(path, rules=commons_rules).failure
        expected = {
            "rule": rule.id,
            "section": rule.section,
            "height": height,
            "record": None if record is None else record.hex(),
        }
        got = None if failure is None else failure.to_json()
        expect(got is not None and got.pop("message") and got == expected, f"{path.name}: {got}")
        manifest.append({"file": path.name, "ok": False, "what": what, "failure": expected})
    for rule, (what, data) in framing(base).items():
        path = folder / f"broken-{rule.id}-s{rule.section}.bundle"
        path.write_bytes(data)
        try:
            failure = audit_bundle(path, rules=commons_rules).failure
        except InvalidData as e:  # no genesis to report on: the CLI prints the error's rule
            failure = Failure.of(e)
        expect(failure is not None and failure.rule is rule, f"{path.name}: {failure}")
        assert failure is not None  # noqa: S101 - for the type checker: expect() said so
        expected = {k: v for k, v in failure.to_json().items() if k != "message"}
        manifest.append({"file": path.name, "ok": False, "what": what, "failure": expected})
    return manifest


def framing(p: Played) -> dict[Rule, tuple[str, bytes]]:
    """Bundles broken before any block: their framing, their genesis."""
    with tempfile.TemporaryDirectory() as where:
        path = Path(where) / "b"
        write_bundle_file(path, p.genesis, p.blocks, p.commit)
        whole = path.read_bytes()
        future = dataclasses.replace(p.genesis, rules="commons-governance-v9")
        write_bundle_file(path, future, p.blocks, p.commit)
        other_rules = path.read_bytes()
    doc = json.loads(p.genesis.to_json())
    del doc["rules"]
    no_rules = BUNDLE_MAGIC + bundle_frame("genesis", json.dumps(doc).encode())
    return {
        Rule.BUNDLE: ("the last 10 bytes cut off", whole[:-10]),
        Rule.GENESIS: ("a genesis without its rules identifier", no_rules),
        Rule.RULES: ("a genesis naming rules no version runs", other_rules),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "vectors" / "commons")
    write_all(parser.parse_args().out)


def write_all(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    played = {name: play(name) for name in SCENARIOS}
    chains = out / "chains"
    chains.mkdir(exist_ok=True)
    for name, p in played.items():
        _write(chains / f"{name}.json", chain_vector(p))
    _write(out / "records.json", record_vectors(list(played.values())))
    _write(
        out / "proofs.json",
        {
            "genesis": genesis_vector(played[BROKEN_FROM].genesis),
            "proofs": proof_vectors(played[BROKEN_FROM]),
        },
    )
    _write(out / "bundles.json", bundles(out, played))
    print(f"wrote {out}")


def _write(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
