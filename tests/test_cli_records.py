"""What a newcomer reaches for: record ids by their first digits, a listing of records, JSON from
every command a script reads, audit JSON whatever happens, progress on a terminal, and a demo that
cleans up after itself and says what to try next."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import pytest
from clikit import ROOT, cli, run
from console import commons
from ledger_factory import STANDARD_BLOCKS, STANDARD_RECORDS, Ledger, build_standard

from cli import demo as demo_module
from ledger.genesis import Genesis
from ledger.proof import RecordProof
from ledger.store import Store
from node.rules import commons_rules


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    return build_standard(tmp_path_factory.mktemp("records") / "home")


def _ids(ledger: Ledger) -> list[bytes]:
    return [record.id for block in ledger.blocks for record in block.records]


# record ids by prefix


def test_store_finds_ids_by_prefix_in_the_index_tables_and_in_memory(ledger: Ledger) -> None:
    """The standard store indexes its first six records and keeps the last four in memory: a
    prefix search must see each record exactly once, wherever it is."""
    ids = _ids(ledger)
    with Store.open(ledger.path, rules=commons_rules) as store:
        assert 0 < store._unindexed.start < len(ids)  # both kinds are there
        for record_id in ids:
            text = record_id.hex()
            for digits in (1, 4, 15, 16, 17, 33, 64):
                expected = sorted(i for i in ids if i.hex().startswith(text[:digits]))
                found = sorted(store.record_ids_with_prefix(text[:digits], most=len(ids) + 1))
                assert found == expected, (text, digits)
        for digit in "0123456789abcdef":  # across the sign of the 8-byte prefixes
            expected = sorted(i for i in ids if i.hex().startswith(digit))
            assert sorted(store.record_ids_with_prefix(digit, most=100)) == expected
            assert len(store.record_ids_with_prefix(digit, most=1)) == min(1, len(expected))
        with pytest.raises(ValueError, match="1 to 64 lowercase hex digits"):
            store.record_ids_with_prefix("AB")


def test_proof_takes_the_first_digits_of_a_record_id(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo prints 16-digit prefixes, which `proof` once refused."""
    ids = _ids(ledger)
    for record_id in (ledger.records["ada-2"].id, ledger.records["linus-3"].id):
        full, short = tmp_path / "full.proof", tmp_path / "short.proof"
        args = ["--home", str(ledger.home), "--force"]
        assert cli(capsys, "proof", record_id.hex(), "--out", str(full), *args)[0] == 0
        digits = next(
            n
            for n in range(4, 65)
            if sum(i.hex().startswith(record_id.hex()[:n]) for i in ids) == 1
        )
        for prefix in {record_id.hex()[:16], record_id.hex()[:digits].upper()}:
            code, out, err = cli(capsys, "proof", prefix, "--out", str(short), *args)
            assert code == 0, err
            assert record_id.hex() in out
            assert short.read_bytes() == full.read_bytes()


def test_an_ambiguous_or_unknown_prefix_is_refused(
    ledger: Ledger,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "p.proof"
    ids = [i.hex() for i in _ids(ledger)]
    # ten ids of 16 possible first digits: some first digit starts two of them, and a prefix
    # of four digits is ambiguous once the lookup only compares the first
    first = next(d for d in "0123456789abcdef" if sum(i.startswith(d) for i in ids) > 1)
    lookup = Store.record_ids_with_prefix
    monkeypatch.setattr(
        Store, "record_ids_with_prefix", lambda s, prefix, most: lookup(s, prefix[0], most=most)
    )
    code, _, err = cli(capsys, "proof", first * 4, "--home", str(ledger.home), "--out", str(out))
    assert code == 2
    assert f"{first * 4} begins several record ids" in err
    assert "give more digits" in err
    monkeypatch.undo()
    unknown = next(
        f"{n:04x}" for n in range(65536) if not any(i.startswith(f"{n:04x}") for i in ids)
    )
    code, _, err = cli(capsys, "proof", unknown, "--home", str(ledger.home), "--out", str(out))
    assert code == 1
    assert f"no record id in this ledger begins with {unknown}" in err
    code, _, err = cli(capsys, "proof", "abc", "--home", str(ledger.home), "--out", str(out))
    assert code == 2
    assert "4 to 64 hex digits" in err
    assert not out.exists()


# commons records


def test_records_lists_every_record_with_its_full_id(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "records", "--home", str(ledger.home))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["height", "seq", "author", "kind", "id"]
    rows = [line.split() for line in lines[1:]]
    expected = [
        [str(block.height), str(r.seq), ledger_name(ledger, r.author), r.kind, r.id.hex()]
        for block in ledger.blocks
        for r in block.records
    ]
    assert rows == expected
    assert len(rows) == STANDARD_RECORDS


def ledger_name(ledger: Ledger, author: bytes) -> str:
    return next(name for name, a in ledger.authors.items() if a.key.public_key == author)


def test_records_of_one_author_by_name_or_key_as_json(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    grace = ledger.authors["grace"].key.public_key
    by_name = cli(capsys, "records", "--home", str(ledger.home), "--author", "grace", "--json")
    by_key = cli(capsys, "records", "--home", str(ledger.home), "--author", grace.hex(), "--json")
    assert by_name[0] == by_key[0] == 0
    assert by_name[1] == by_key[1]
    doc = json.loads(by_name[1])
    expected = [
        (block.height, r.seq, r.id.hex())
        for block in ledger.blocks
        for r in block.records
        if r.author == grace
    ]
    assert [(d["height"], d["seq"], d["id"]) for d in doc] == expected
    assert {d["author"] for d in doc} == {grace.hex()}
    assert {d["author_name"] for d in doc} == {"grace"}
    assert {d["kind"] for d in doc} == {"identity", "endorsement", "contribution"}


def test_records_of_an_unknown_author_or_home(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "records", "--home", str(ledger.home), "--author", "nobody")
    assert code == 1
    assert "no member of this ledger is named 'nobody'" in err
    stranger = "ab" * 32  # a key with no records: an empty listing
    code, out, _ = cli(
        capsys, "records", "--home", str(ledger.home), "--author", stranger, "--json"
    )
    assert (code, json.loads(out)) == (0, [])
    code, _, err = cli(capsys, "records", "--home", str(tmp_path))
    assert code == 2
    assert "has no ledger" in err


# --json where a script reads the result


def test_json_from_every_command_a_script_reads(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    genesis = tmp_path / "genesis.json"
    key = ledger.validators[0][0].public_key.hex()
    code, out, _ = cli(
        capsys, "genesis", "create", "--validator", f"{key}:1", "--out", str(genesis), "--json"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["network_id"] == Genesis.from_json(genesis.read_bytes()).network_id.hex()
    assert doc["out"] == str(genesis)

    bundle = tmp_path / "l.bundle"
    code, out, _ = cli(capsys, "export", "--home", str(ledger.home), "--out", str(bundle), "--json")
    assert code == 0
    assert json.loads(out) == {
        "out": str(bundle),
        "blocks": STANDARD_BLOCKS,
        "records": STANDARD_RECORDS,
    }

    home = tmp_path / "imported"
    code, out, _ = cli(capsys, "import", "--home", str(home), str(bundle), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc == {
        "ledger": str(home / "ledger.sqlite"),
        "blocks": STANDARD_BLOCKS,
        "records": STANDARD_RECORDS,
    }

    proof = tmp_path / "p.proof"
    record = ledger.records["ada-2"].id.hex()
    args = ["proof", record[:16], "--home", str(ledger.home), "--out", str(proof), "--json"]
    code, out, _ = cli(capsys, *args)
    assert code == 0
    doc = json.loads(out)
    assert doc == {"record_id": record, "block": 2, "validator_changes": 0, "out": str(proof)}

    own = ledger.write_genesis(tmp_path / "own.json")
    code, out, _ = cli(capsys, "verify-proof", str(proof), "--genesis", str(own), "--json")
    assert code == 0
    doc = json.loads(out)
    network = ledger.genesis.network_id.hex()
    assert doc == {"valid": True, "record_id": record, "block": 2, "network_id": network}
    code, out, _ = cli(capsys, "verify-proof", str(proof), "--genesis", str(genesis), "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["valid"] is False
    assert "proof is for network" in doc["failure"]
    RecordProof.decode(proof.read_bytes())


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("not-a-bundle", 1),
        ("missing-bundle", 2),
        ("home-without-ledger", 2),
        ("missing-home", 2),
        ("both-home-and-bundle", 2),
        ("unreadable-genesis", 1),
    ],
)
def test_audit_json_on_every_outcome(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, code: int
) -> None:
    """`audit --json` once printed nothing on stdout when the file was not a bundle."""
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    args = {
        "not-a-bundle": ["--bundle", str(notes)],
        "missing-bundle": ["--bundle", str(tmp_path / "missing.bundle")],
        "home-without-ledger": ["--home", str(tmp_path)],
        "missing-home": ["--home", str(tmp_path / "nope")],
        "both-home-and-bundle": ["--home", str(ledger.home), "--bundle", str(notes)],
        "unreadable-genesis": ["--home", str(ledger.home), "--genesis", str(notes)],
    }[case]
    got, out, err = cli(capsys, "audit", *args, "--json")
    assert got == code, err
    doc = json.loads(out)
    assert doc["ok"] is False
    assert doc["failure"]["message"]
    assert doc["failure"]["message"] in err
    assert doc["height"] is None


# progress on a terminal


def _on_a_terminal(*args: str) -> tuple[int, str]:
    """Run `commons args` with its stderr on a pseudo-terminal: (exit code, what it showed)."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [*commons(), *args],
            stdout=subprocess.DEVNULL,
            stderr=follower,
            cwd=ROOT,
            env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal is closed once the process ends
                break
            if not chunk:
                break
            shown += chunk
        return process.wait(timeout=120), shown.decode(errors="replace")
    finally:
        os.close(leader)


def test_import_and_simulate_show_progress_on_a_terminal_only(
    ledger: Ledger, tmp_path: Path
) -> None:
    bundle = tmp_path / "l.bundle"
    assert run("export", "--home", str(ledger.home), "--out", str(bundle)).returncode == 0
    code, shown = _on_a_terminal("import", "--home", str(tmp_path / "a"), str(bundle))
    assert code == 0
    assert "importing" in shown
    code, shown = _on_a_terminal("simulate", "--seeds", "3", "--heights", "2")
    assert code == 0
    assert "simulating" in shown
    piped = run("import", "--home", str(tmp_path / "b"), str(bundle))
    assert piped.returncode == 0
    assert "importing" not in piped.stderr
    piped = run("simulate", "--seeds", "3", "--heights", "2")
    assert "simulating" not in piped.stderr


# the demo


def command_lines() -> list[bytes]:
    """The command line of every process running now."""
    out = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            out.append(path.read_bytes())
        except OSError:  # it ended meanwhile
            continue
    return out


def test_demo_removes_its_temporary_folder_and_says_what_to_try_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scratch = tmp_path / "scratch"

    def mkdtemp(prefix: str) -> str:
        scratch.mkdir()
        return str(scratch)

    monkeypatch.setattr(demo_module.tempfile, "mkdtemp", mkdtemp)
    code, out, err = cli(capsys, "demo")
    assert code == 0, err
    assert "every step did what it should" in out
    assert not scratch.exists()
    # no node process of the demo's network is left running
    assert [c for c in command_lines() if str(scratch).encode() in c] == []
    assert out.rstrip().endswith("commons demo --dir demo && commons devnet --dir demo/network")


def test_demo_with_a_folder_ends_with_commands_that_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    where = tmp_path / "demo"
    code, out, err = cli(capsys, "demo", "--dir", str(where))
    assert code == 0, err
    tail = out.rstrip().splitlines()[-2:]
    assert tail[0].strip() == f"commons records --home {where}"
    proof_command = tail[1].split()
    assert proof_command[:2] == ["commons", "proof"]
    monkeypatch.chdir(tmp_path)
    for command in (tail[0].split(), proof_command):
        code, _, err = cli(capsys, *command[1:])
        assert code == 0, (command, err)
    assert (tmp_path / "proof.bin").exists()
