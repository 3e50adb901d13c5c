"""The auditor's commands as a user runs them: `genesis create`, `export`, `import`, `audit`,
`proof`, `verify-proof` and `demo`, in-process through `main([...])` and as `commons` subprocesses,
on real stores, bundles and proof files.

Exit codes (cli/main.py): 0 ok, 1 refused or integrity failure, 2 usage error. A traceback never
reaches the user.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from clikit import cli, run
from ledger_factory import (
    CHANGE_HEIGHT,
    STANDARD_BLOCKS,
    STANDARD_RECORDS,
    Ledger,
    build_standard,
    build_with_change,
    copy_ledger,
    genesis_of,
    keypair,
    read_bundle,
    sql,
    write_tampered,
)

from cli.main import main
from ledger import codec
from ledger.chain import certify
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.proof import CertifiedHeader, RecordProof, verify_record_proof
from ledger.store import Store
from node.rules import commons_genesis, commons_rules

GENESIS_T = 1_767_225_600_000


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    return build_standard(tmp_path_factory.mktemp("cli") / "home", validators="four")


@pytest.fixture(scope="module")
def bundle(ledger: Ledger, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bundle") / "ledger.bundle"
    assert main(["export", "--home", str(ledger.home), "--out", str(path)]) == 0
    return path


@pytest.fixture
def genesis_file(ledger: Ledger, tmp_path: Path) -> Path:
    return ledger.write_genesis(tmp_path / "genesis.json")


# genesis create

KEY_A, KEY_B, KEY_V = (keypair(f"genesis/{n}").public_key.hex() for n in ("a", "b", "v"))


def _create(out: Path, *extra: str, members: tuple[str, ...] | None = None) -> list[str]:
    specs = members if members is not None else (f"ada={KEY_A}:100", f"bob={KEY_B}:5")
    args = ["genesis", "create", "--name", "tested", "--time", str(GENESIS_T)]
    for spec in specs:
        args += ["--member", spec]
    return [*args, "--validator", f"{KEY_V}:3", "--out", str(out), *extra]


def test_genesis_create_network_id_is_stable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "one.json", tmp_path / "two.json"
    code, out, _ = cli(capsys, *_create(first))
    assert code == 0
    reordered = (f"bob={KEY_B}:5", f"ada={KEY_A}:100")
    assert cli(capsys, *_create(second, members=reordered))[0] == 0
    assert first.read_bytes() == second.read_bytes()
    doc = Genesis.from_json(first.read_bytes())
    expected = commons_genesis(
        name="tested",
        time=GENESIS_T,
        members={bytes.fromhex(KEY_A): ("ada", 100), bytes.fromhex(KEY_B): ("bob", 5)},
        validators={bytes.fromhex(KEY_V): 3},
    )
    assert doc.network_id == expected.network_id
    assert f"network id {doc.network_id.hex()}" in out
    # JSON formatting is not identity: the same content written compactly is the same network
    compact = json.dumps(json.loads(first.read_bytes()), separators=(",", ":"), sort_keys=True)
    assert Genesis.from_json(compact.encode()).network_id == doc.network_id
    # ... while any change of content is another network
    assert cli(capsys, *_create(second, "--param", "max_skew_ms=1000", "--force"))[0] == 0
    assert Genesis.from_json(second.read_bytes()).network_id != doc.network_id


def test_genesis_create_as_a_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "genesis.json"
    result = run(*_create(out))
    assert result.returncode == 0, result.stderr
    network_id = Genesis.from_json(out.read_bytes()).network_id.hex()
    assert f"network id {network_id}" in result.stdout


def test_genesis_bad_spec_as_a_subprocess_has_no_traceback(tmp_path: Path) -> None:
    result = run(*_create(tmp_path / "g.json", members=("ada=nothex:5",)))
    assert result.returncode == 2
    assert "is not 64 hex digits" in result.stderr
    assert not (tmp_path / "g.json").exists()


BAD_SPECS = [
    ("member-key-not-hex", {"members": ("ada=zz:5",)}, (), 2, "is not 64 hex digits"),
    ("member-key-short", {"members": (f"ada={KEY_A[:62]}:5",)}, (), 2, "is not 64 hex digits"),
    ("member-without-tokens", {"members": (f"ada={KEY_A}",)}, (), 2, "expected NAME=KEY:TOKENS"),
    ("member-negative-tokens", {"members": (f"ada={KEY_A}:-5",)}, (), 2, "NAME=KEY:TOKENS"),
    ("member-superscript-tokens", {"members": (f"ada={KEY_A}:²",)}, (), 2, "NAME=KEY:TOKENS"),
    ("member-twice", {"members": (f"a={KEY_A}:1", f"b={KEY_A}:2")}, (), 2, "given twice"),
    ("member-empty-name", {"members": (f"={KEY_A}:1",)}, (), 1, "member.name"),
    ("member-tokens-too-many", {"members": (f"a={KEY_A}:{2**53}",)}, (), 1, "member.tokens"),
    ("validator-without-power", {}, ("--validator", KEY_A), 2, "expected KEY:POWER"),
    ("validator-key-not-hex", {}, ("--validator", "xyz:1"), 2, "is not 64 hex digits"),
    ("validator-power-zero", {}, ("--validator", f"{KEY_A}:0"), 1, "validator.power"),
    ("validator-twice", {}, ("--validator", f"{KEY_V}:1"), (1, 2), f"{KEY_V[:16]}|twice"),
    ("param-below-bounds", {}, ("--param", "max_skew_ms=-1"), 1, "outside its bounds 0..86400000"),
    ("param-above-bounds", {}, ("--param", "max_block_records=100001"), 1, "outside its bounds"),
    ("param-not-integer", {}, ("--param", "max_skew_ms=ten"), 2, "must be an integer"),
    ("param-unknown", {}, ("--param", "gas=1"), 2, "known parameters are"),
    ("param-without-value", {}, ("--param", "max_skew_ms"), 2, "known parameters are"),
    ("name-too-long", {}, ("--name", "x" * 65), 1, "genesis.name"),
    ("time-negative", {}, ("--time", "-1"), 1, "genesis.time"),
    ("time-not-a-number", {}, ("--time", "soon"), 2, "--time"),
]


@pytest.mark.parametrize(
    ("members", "extra", "code", "message"),
    [pytest.param(m, e, c, msg, id=name) for name, m, e, c, msg in BAD_SPECS],
)
def test_genesis_create_refuses_bad_specs(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    members: dict[str, tuple[str, ...]],
    extra: tuple[str, ...],
    code: int | tuple[int, ...],
    message: str,
) -> None:
    out = tmp_path / "genesis.json"
    got, _, err = cli(capsys, *_create(out, *extra, **members))
    assert got in (code if isinstance(code, tuple) else (code,)), err
    assert err.strip(), "a refusal must say why"
    assert re.search(message, err), err
    assert not out.exists()


def test_genesis_create_without_validator_or_out_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "genesis", "create", "--out", str(tmp_path / "g.json"))
    assert code == 2
    assert "--validator" in err
    code, _, err = cli(capsys, "genesis", "create", "--validator", f"{KEY_V}:1")
    assert code == 2
    assert "--out" in err


def test_genesis_create_into_a_missing_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "missing" / "genesis.json"
    code, _, err = cli(capsys, *_create(out))
    assert code == 1
    assert "No such file or directory" in err


# audit


def test_audit_of_intact_home_exits_0(ledger: Ledger, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "audit", "--home", str(ledger.home))
    assert code == 0, err
    assert "intact" in out
    assert ledger.genesis.network_id.hex() in out
    assert "stored state, Merkle nodes and lookup tables match the replay" in out


def test_audit_json_parses_and_counts(ledger: Ledger, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "audit", "--home", str(ledger.home), "--json")
    assert code == 0
    doc = json.loads(out)
    tip = ledger.blocks[-1].header
    assert doc["ok"] is True
    assert doc["failure"] is None
    assert doc["network_id"] == ledger.genesis.network_id.hex()
    assert (doc["height"], doc["blocks"]) == (STANDARD_BLOCKS, STANDARD_BLOCKS)
    assert (doc["records"], doc["signatures"]) == (STANDARD_RECORDS, STANDARD_RECORDS)
    assert doc["certificates"] == STANDARD_BLOCKS  # six last_commits and the tip's
    assert doc["evidence"] == 1
    assert doc["state_root"] == tip.state_root.hex()
    assert doc["log_root"] == tip.log_root.hex()


def test_audit_json_of_a_bundle_matches_the_home(
    ledger: Ledger, bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = json.loads(cli(capsys, "audit", "--home", str(ledger.home), "--json")[1])
    code, out, _ = cli(capsys, "audit", "--bundle", str(bundle), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["source"] == str(bundle)
    for key in ("ok", "height", "records", "certificates", "evidence", "state_root", "log_root"):
        assert doc[key] == home[key], key


def test_audit_json_of_a_broken_ledger_exits_1_and_says_where(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    db = copy_ledger(ledger.path, home)
    sql(db, "DELETE FROM commits WHERE height = ?", (STANDARD_BLOCKS,))
    code, out, err = cli(capsys, "audit", "--home", str(home), "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False
    assert doc["failure"] == {
        "rule": "tip.commit",
        "section": "12",
        "height": STANDARD_BLOCKS,
        "record": None,
        "message": f"block {STANDARD_BLOCKS}: the tip has no commit certificate",
    }
    assert doc["blocks"] == STANDARD_BLOCKS
    assert "integrity failure" in err


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--home", "{home}", "--bundle", "{bundle}"], id="both-home-and-bundle"),
        pytest.param([], id="neither-home-nor-bundle"),
        pytest.param(["--home", "{home}", "--deep"], id="unknown-flag"),
        pytest.param(["--home", "{empty}"], id="home-without-ledger"),
        pytest.param(["--bundle", "{empty}/missing.bundle"], id="bundle-missing"),
        pytest.param(["--home", "{home}", "--json=yes"], id="flag-with-value"),
    ],
)
def test_audit_usage_errors_exit_2(
    ledger: Ledger,
    bundle: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("COMMONS_HOME", str(empty))  # "neither" must not find a default ledger
    filled = [a.format(home=ledger.home, bundle=bundle, empty=empty) for a in args]
    code, out, err = cli(capsys, "audit", *filled)
    assert code == 2, out + err
    assert err.strip()


def test_audit_against_the_expected_genesis(
    ledger: Ledger, genesis_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "audit", "--home", str(ledger.home), "--genesis", str(genesis_file))[0] == 0
    other = tmp_path / "other.json"
    other.write_bytes(genesis_of(ledger.validators, name="someone-else").to_json())
    code, _, err = cli(capsys, "audit", "--home", str(ledger.home), "--genesis", str(other))
    assert code == 1
    assert f"network id {ledger.genesis.network_id.hex()} is not the expected" in err


def test_audit_as_a_subprocess(ledger: Ledger, tmp_path: Path) -> None:
    intact = run("audit", "--home", str(ledger.home))
    assert intact.returncode == 0, intact.stderr
    assert "intact" in intact.stdout
    home = tmp_path / "home"
    db = copy_ledger(ledger.path, home)
    sql(db, "UPDATE state SET value = ? WHERE key = ?", (codec.encode(1), b"param/max_skew_ms"))
    broken = run("audit", "--home", str(home), "--json")
    assert broken.returncode == 1
    assert "stored state is not the state after block 7" in broken.stderr
    usage = run("audit", "--home", str(ledger.home), "--bundle", str(tmp_path / "x"))
    assert usage.returncode == 2


def test_audit_of_a_file_that_is_not_a_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    code, _, err = cli(capsys, "audit", "--bundle", str(path))
    assert code == 1
    assert "is not a Commons bundle" in err


# export and import


def test_export_import_round_trip(
    ledger: Ledger, bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "imported"
    code, out, err = cli(capsys, "import", "--home", str(home), str(bundle))
    assert code == 0, err
    assert f"Imported {STANDARD_BLOCKS} blocks, {STANDARD_RECORDS} records" in out
    assert sorted(p.name for p in home.iterdir()) == ["ledger.sqlite"]
    assert cli(capsys, "audit", "--home", str(home))[0] == 0
    with (
        Store.open(home / "ledger.sqlite", rules=commons_rules) as copy,
        Store.open(ledger.path, rules=commons_rules) as source,
    ):
        assert copy.tip == source.tip
        assert copy.chain.state.root() == source.chain.state.root()
        assert copy.commit(STANDARD_BLOCKS) == source.commit(STANDARD_BLOCKS)
    again = tmp_path / "again.bundle"
    assert cli(capsys, "export", "--home", str(home), "--out", str(again))[0] == 0
    assert again.read_bytes() == bundle.read_bytes()


def test_import_refuses_a_home_that_has_a_ledger(
    ledger: Ledger, bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    db = copy_ledger(ledger.path, home)
    before = db.read_bytes()
    code, _, err = cli(capsys, "import", "--home", str(home), str(bundle))
    assert code == 1
    assert "already holds a ledger" in err
    assert db.read_bytes() == before


def test_import_of_a_bundle_without_tip_certificate_leaves_nothing(
    ledger: Ledger, bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    genesis, blocks, _ = read_bundle(bundle)
    cut = write_tampered(tmp_path / "cut.bundle", genesis, blocks, None)
    home = tmp_path / "home"
    code, _, err = cli(capsys, "import", "--home", str(home), str(cut))
    assert code == 1
    assert f"block {STANDARD_BLOCKS}: the bundle's tip has no commit certificate" in err
    assert list(home.iterdir()) == []


def test_import_and_export_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "import", "--home", str(tmp_path / "h"), str(tmp_path / "nope"))
    assert code == 2
    assert "does not exist" in err
    code, _, err = cli(
        capsys, "export", "--home", str(tmp_path / "h"), "--out", str(tmp_path / "o")
    )
    assert code == 2
    assert f"{tmp_path / 'h'} has no ledger: the folder does not exist" in err


def test_export_and_import_as_subprocesses(ledger: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "sub.bundle"
    assert run("export", "--home", str(ledger.home), "--out", str(out)).returncode == 0
    imported = run("import", "--home", str(tmp_path / "h"), str(out))
    assert imported.returncode == 0, imported.stderr
    assert run("audit", "--bundle", str(out)).returncode == 0


# proofs


@pytest.fixture
def proof_file(ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "ada-2.proof"
    record = ledger.records["ada-2"].id.hex()
    code, printed, err = cli(capsys, "proof", record, "--home", str(ledger.home), "--out", str(out))
    assert code == 0, err
    assert "block 2" in printed
    return out


def test_proof_verifies_against_the_genesis(
    ledger: Ledger, proof_file: Path, genesis_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "verify-proof", str(proof_file), "--genesis", str(genesis_file))
    assert code == 0, err
    assert f"record {ledger.records['ada-2'].id.hex()} is in block 2" in out


def test_proof_and_verify_as_subprocesses(
    ledger: Ledger, genesis_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "p.proof"
    made = run(
        "proof", ledger.records["linus-3"].id.hex(), "--home", str(ledger.home), "--out", str(out)
    )
    assert made.returncode == 0, made.stderr
    assert run("verify-proof", str(out), "--genesis", str(genesis_file)).returncode == 0
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x01
    out.write_bytes(bytes(data))
    assert run("verify-proof", str(out), "--genesis", str(genesis_file)).returncode == 1


def _altered(ledger: Ledger, proof: RecordProof, how: str) -> RecordProof:
    block = proof.block
    if how == "path-byte-flipped":
        first = bytearray(proof.path[0])
        first[0] ^= 0x01
        return dataclasses.replace(proof, path=(bytes(first), *proof.path[1:]))
    if how == "path-element-dropped":
        return dataclasses.replace(proof, path=proof.path[:-1])
    if how == "header-swapped-for-an-earlier-block":
        earlier = ledger.blocks[0].header
        commit = ledger.blocks[1].header.last_commit
        assert commit is not None
        return dataclasses.replace(proof, block=CertifiedHeader(header=earlier, commit=commit))
    if how == "header-swapped-for-the-tip":
        tip = CertifiedHeader(header=ledger.blocks[-1].header, commit=ledger.commits[-1])
        return dataclasses.replace(proof, block=tip)
    if how == "header-log-root-rewritten":
        header = dataclasses.replace(block.header, log_root=bytes(32))
        return dataclasses.replace(proof, block=dataclasses.replace(block, header=header))
    if how == "certificate-below-quorum":
        votes = tuple(v for v in block.commit.votes if v[0] in _heavy_and_one(ledger))
        commit = dataclasses.replace(block.commit, votes=votes)
        return dataclasses.replace(proof, block=dataclasses.replace(block, commit=commit))
    if how == "record-swapped":
        return dataclasses.replace(proof, record=ledger.records["linus-2"])
    if how == "leaf-index-changed":
        return dataclasses.replace(proof, leaf=proof.leaf + 1)
    if how == "network-changed":
        return dataclasses.replace(proof, network_id=bytes(32))
    raise AssertionError(how)


def _heavy_and_one(ledger: Ledger) -> set[bytes]:
    keys = sorted(ledger.validators, key=lambda v: -v[1])
    return {keys[0][0].public_key, keys[1][0].public_key}


ALTERATIONS = {
    "path-byte-flipped": "inclusion proof of leaf 3",
    "path-element-dropped": "proof",
    "header-swapped-for-an-earlier-block": "leaf index 3 is outside a tree of size 3",
    "header-swapped-for-the-tip": "proof",
    "header-log-root-rewritten": "header 2: certificate at height 2 is for block",
    "certificate-below-quorum": "header 2: certificate at height 2 carries power 4 of 6",
    "record-swapped": "inclusion proof",
    "leaf-index-changed": "inclusion proof|leaf",
    "network-changed": "proof is for network 0000000000000000",
}


@pytest.mark.parametrize(("how", "message"), ALTERATIONS.items(), ids=ALTERATIONS.keys())
def test_altered_proof_fails_verification(
    ledger: Ledger,
    proof_file: Path,
    genesis_file: Path,
    capsys: pytest.CaptureFixture[str],
    how: str,
    message: str,
) -> None:
    proof = RecordProof.decode(proof_file.read_bytes())
    proof_file.write_bytes(_altered(ledger, proof, how).encode())
    code, _, err = cli(capsys, "verify-proof", str(proof_file), "--genesis", str(genesis_file))
    assert code == 1
    assert err.startswith("integrity failure: proof does not verify: ")
    assert re.search(message, err), err


def test_proof_against_the_wrong_genesis_fails(
    ledger: Ledger, proof_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.json"
    other.write_bytes(genesis_of(ledger.validators, name="someone-else").to_json())
    code, _, err = cli(capsys, "verify-proof", str(proof_file), "--genesis", str(other))
    assert code == 1
    assert f"proof is for network {ledger.genesis.network_id.hex()[:16]}" in err


def test_any_flipped_byte_of_a_proof_fails(
    ledger: Ledger, proof_file: Path, genesis_file: Path
) -> None:
    """Every byte of the proof file, low bit flipped: decoding or verification refuses it, with
    a ledger error (never another exception, which would be a traceback in the CLI)."""
    data = proof_file.read_bytes()
    genesis = Genesis.from_json(genesis_file.read_bytes())
    verify_record_proof(RecordProof.decode(data), genesis)
    accepted = []
    for index in range(len(data)):
        flipped = bytearray(data)
        flipped[index] ^= 0x01
        try:
            verify_record_proof(RecordProof.decode(bytes(flipped)), genesis)
        except LedgerError:
            continue
        accepted.append(index)
    assert accepted == []


def test_proof_usage_and_lookup_errors(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "p.proof")
    code, _, err = cli(capsys, "proof", "abc", "--home", str(ledger.home), "--out", out)
    assert code == 2
    assert "'abc' is not a record id or the beginning of one (4 to 64 hex digits)" in err
    code, _, err = cli(capsys, "proof", "00" * 32, "--home", str(ledger.home), "--out", out)
    assert code == 1
    assert f"no record {'00' * 32} in this ledger" in err
    assert not Path(out).exists()


# proofs across a validator-set change


@pytest.fixture(scope="module")
def changing(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    ledger, _ = build_with_change(tmp_path_factory.mktemp("change") / "home")
    return ledger


def _prove(
    ledger: Ledger, label: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, Path, RecordProof]:
    out = tmp_path / f"{label}.proof"
    code, _, err = cli(
        capsys,
        "proof",
        ledger.records[label].id.hex(),
        "--home",
        str(ledger.home),
        "--out",
        str(out),
    )
    assert code == 0, err
    genesis = ledger.write_genesis(tmp_path / "genesis.json")
    return out, genesis, RecordProof.decode(out.read_bytes())


@pytest.mark.parametrize(
    ("label", "height", "changes"),
    [("ada-2", 2, 0), ("ada-3", 4, 1), ("grace-3", 5, 1), ("ada-4", 6, 1)],
    ids=["before-the-change", "old-set-after-change", "first-new-set-block", "later"],
)
def test_proof_across_a_validator_change_verifies(
    changing: Ledger,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    label: str,
    height: int,
    changes: int,
) -> None:
    path, genesis, proof = _prove(changing, label, tmp_path, capsys)
    assert proof.block.header.height == height
    assert [c.header.height for c in proof.changes] == [CHANGE_HEIGHT] * changes
    if changes:
        assert proof.changes[0].header.new_validators is not None
    code, out, err = cli(capsys, "verify-proof", str(path), "--genesis", str(genesis))
    assert code == 0, err
    assert f"is in block {height}" in out


def test_proof_without_its_validator_change_fails(
    changing: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, genesis, proof = _prove(changing, "grace-3", tmp_path, capsys)
    path.write_bytes(dataclasses.replace(proof, changes=()).encode())
    code, _, err = cli(capsys, "verify-proof", str(path), "--genesis", str(genesis))
    assert code == 1
    assert "header 5: its validators are not the set the genesis and the changes lead to" in err


def test_proof_with_a_forged_validator_change_fails(
    changing: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Changes whose header is not the certified one, or that change nothing, are refused."""
    path, genesis, proof = _prove(changing, "grace-3", tmp_path, capsys)
    change = proof.changes[0]
    mallory = genesis_of([(keypair("validator/mallory"), 1)]).validators
    forged_header = dataclasses.replace(change.header, new_validators=mallory)
    forged = dataclasses.replace(change, header=forged_header)
    path.write_bytes(dataclasses.replace(proof, changes=(forged,)).encode())
    code, _, err = cli(capsys, "verify-proof", str(path), "--genesis", str(genesis))
    assert code == 1
    assert "header 3: certificate at height 3 is for block" in err
    plain = CertifiedHeader(header=changing.blocks[1].header, commit=changing.commits[1])
    path.write_bytes(dataclasses.replace(proof, changes=(plain,)).encode())
    code, _, err = cli(capsys, "verify-proof", str(path), "--genesis", str(genesis))
    assert code == 1
    assert "header 2 is offered as a validator change but has none" in err


def test_new_set_block_certified_by_the_old_set_fails_in_a_proof(
    changing: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, genesis, proof = _prove(changing, "grace-3", tmp_path, capsys)
    header = proof.block.header
    old = [key for key, _ in changing.validators]
    stale = certify(changing.blocks[4], changing.genesis.network_id, old, timestamp=header.time + 1)
    block = CertifiedHeader(header=header, commit=stale)
    path.write_bytes(dataclasses.replace(proof, block=block).encode())
    code, _, err = cli(capsys, "verify-proof", str(path), "--genesis", str(genesis))
    assert code == 1
    assert "header 5: precommit at height 5 by" in err
    assert "not a validator of that height" in err


# demo


def test_demo_leaves_a_ledger_that_audits_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = tmp_path / "demo"
    code, out, err = cli(capsys, "demo", "--dir", str(where))
    assert code == 0, out + err
    assert "every step did what it should" in out
    # part 1, on a real network of four processes
    assert "ada's balance: 0 → 5; the rename is Defeated (For did not exceed Against)" in out
    assert "node-4 caught up" in out
    assert "every home audits clean" in out
    for node in sorted((where / "network").glob("node-*")):
        assert cli(capsys, "audit", "--home", str(node))[0] == 0, node.name
    # part 2, the tampered copies
    assert out.count("   caught ") == 5
    code, out, err = cli(capsys, "audit", "--home", str(where))
    assert code == 0, err
    assert "intact" in out
    assert cli(capsys, "audit", "--bundle", str(where / "ledger.bundle"))[0] == 0
    tampered = sorted(where.glob("tampered-*.bundle"))
    assert len(tampered) == 5
    for path in tampered:
        code, _, err = cli(capsys, "audit", "--bundle", str(path))
        assert code == 1, path.name
        assert err.startswith("integrity failure: ")
    # a second demo into the same folder is refused, and the ledger stays as it was
    before = (where / "ledger.sqlite").read_bytes()
    code, _, err = cli(capsys, "demo", "--dir", str(where))
    assert code == 2
    assert "already holds demo files (genesis.json, ledger.bundle, ledger.sqlite" in err
    assert (where / "ledger.sqlite").read_bytes() == before


def test_demo_as_a_subprocess(tmp_path: Path) -> None:
    where = tmp_path / "demo"
    result = run("demo", "--dir", str(where))
    assert result.returncode == 0, result.stdout + result.stderr
    assert run("audit", "--home", str(where), "--json").returncode == 0
