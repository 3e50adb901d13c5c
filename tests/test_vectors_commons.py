"""The code against the Commons conformance vectors (tests/vectors/commons/, README.md there).

An independent verifier checks its own code against the same files, so these tests pin what it
relies on: a change that alters any byte a verifier recomputes fails here first."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from clikit import cli

import node.rules  # noqa: F401 - registers the governance record kinds
from ledger import codec
from ledger.block import decode_header
from ledger.chain import Chain
from ledger.crypto import Keypair, Tag, sha256, signing_bytes
from ledger.errors import InvalidData
from ledger.files import open_bundle
from ledger.genesis import Genesis
from ledger.proof import RecordProof, verify_record_proof
from ledger.records import KINDS, decode_record, sign_record
from node.rules import commons_rules

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors" / "commons"
CHAINS = sorted((VECTORS / "chains").glob("*.json"))
MANIFEST: list[dict[str, Any]] = json.loads((VECTORS / "bundles.json").read_text())
RECORDS: list[dict[str, Any]] = json.loads((VECTORS / "records.json").read_text())


def test_every_record_kind_has_a_vector() -> None:
    assert sorted(v["kind"] for v in RECORDS) == sorted(KINDS)


@pytest.mark.parametrize("vector", RECORDS, ids=[v["kind"] for v in RECORDS])
def test_record_bytes_id_signature(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["bytes"])
    network = bytes.fromhex(vector["network_id"])
    record = decode_record(raw)
    assert vector["kind"] == record.body.KIND
    assert record.raw == raw == codec.encode(codec.decode(raw, max_size=len(raw)))
    assert record.id.hex() == vector["id"] == sha256(raw).hex()
    assert record.author.hex() == vector["author"]
    message = signing_bytes(Tag.RECORD, network, record.signed_body())
    assert message.hex() == vector["signing_bytes"]
    record.verify(network)
    if vector["seed"] is not None:  # Ed25519 is deterministic: the same key signs the same bytes
        again = sign_record(
            Keypair.from_seed(bytes.fromhex(vector["seed"])),
            network,
            seq=record.seq,
            prev=record.prev,
            timestamp=record.timestamp,
            body=record.body,
        )
        assert again.raw == raw


@pytest.mark.parametrize("path", CHAINS, ids=[p.stem for p in CHAINS])
def test_chain_headers_and_the_state_root_after_each_block(path: Path) -> None:
    vector = json.loads(path.read_text())
    g = vector["genesis"]
    genesis = Genesis.from_json(g["json"].encode())
    assert genesis.raw.hex() == g["canonical"]
    assert genesis.network_id.hex() == g["network_id"] == sha256(genesis.raw).hex()
    assert genesis.rules == g["rules"]
    opened = open_bundle(VECTORS / "bundles" / f"valid-{path.stem}.bundle")
    assert opened.genesis == genesis
    chain = Chain(genesis, apply=commons_rules(genesis))
    blocks = list(opened.blocks())
    assert len(blocks) == len(vector["blocks"])
    for block, want in zip(blocks, vector["blocks"], strict=True):
        header = decode_header(bytes.fromhex(want["header"]))
        assert header == block.header
        assert header.raw.hex() == want["header"]
        assert header.id.hex() == want["id"] == sha256(header.raw).hex()
        chain.append(block)
        assert chain.state.root().hex() == want["state_root"]
        assert (chain.log.size, chain.log.root().hex()) == (want["log_size"], want["log_root"])
        assert [r.id.hex() for r in block.records] == [r["id"] for r in want["records"]]
        for r in want["records"]:
            reason = chain.state.get(b"gov/rejected/" + bytes.fromhex(r["id"]))
            assert reason == r["rejected"]
    assert opened.commit is not None
    chain.verify_commit(opened.commit)


def test_record_proofs() -> None:
    vector = json.loads((VECTORS / "proofs.json").read_text())
    genesis = Genesis.from_json(vector["genesis"]["json"].encode())
    assert any(not p["valid"] for p in vector["proofs"])
    for p in vector["proofs"]:
        proof = RecordProof.decode(bytes.fromhex(p["proof"]))
        assert proof.encode().hex() == p["proof"]
        if p["valid"]:
            verify_record_proof(proof, genesis)
            assert proof.record.id.hex() == p["record"]
            assert proof.block.header.height == p["height"]
        else:
            with pytest.raises(InvalidData):
                verify_record_proof(proof, genesis)


@pytest.mark.parametrize("entry", MANIFEST, ids=[m["file"] for m in MANIFEST])
def test_bundle_audit_reports_what_the_vector_says(
    entry: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(
        capsys, "audit", "--bundle", str(VECTORS / "bundles" / entry["file"]), "--json"
    )
    doc = json.loads(out)
    assert doc["ok"] is entry["ok"]
    assert code == (0 if entry["ok"] else 1)
    if entry["ok"]:
        assert doc["failure"] is None
        for name in ("height", "records", "state_root", "log_root"):
            assert doc[name] == entry[name], name
    else:
        failure = {k: v for k, v in doc["failure"].items() if k != "message"}
        assert failure == entry["failure"]


def test_each_broken_bundle_breaks_a_different_rule() -> None:
    broken = [m["failure"]["rule"] for m in MANIFEST if not m["ok"]]
    assert len(broken) == len(set(broken)) >= 15


def test_the_generator_writes_these_very_files(tmp_path: Path) -> None:
    """scripts/make_vectors.py run again gives the committed bytes: nothing drifted."""
    spec = importlib.util.spec_from_file_location(
        "make_vectors", ROOT / "scripts" / "make_vectors.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    module.write_all(tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(VECTORS) for p in VECTORS.rglob("*") if p.is_file() and p.name != "README.md"
    )
    assert written == committed
    for name in written:
        assert (tmp_path / name).read_bytes() == (VECTORS / name).read_bytes(), name
