"""`commons init` and `commons key export|import`, driven as a user would: in-process and as a
subprocess, on real files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from clikit import cli as _cli
from console import commons

from cli.main import main
from ledger.crypto import Keypair, Role
from ledger.errors import WrongPassphrase
from ledger.files import NONCE_BYTES, SALT_BYTES, read_key_file, seal_key

PASS = b"correct horse battery staple"


@pytest.fixture
def passphrase(tmp_path: Path) -> Path:
    path = tmp_path / "pass.txt"
    path.write_text("correct horse battery staple\n")
    return path


def _public_keys(out: str) -> dict[str, str]:
    keys = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in {r.value for r in Role}:
            keys[parts[0]] = parts[1]
    return keys


def test_init_creates_private_encrypted_home(
    tmp_path: Path, passphrase: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    assert main(["init", "--home", str(home), "--passphrase-file", str(passphrase)]) == 0
    out = capsys.readouterr().out
    keys = _public_keys(out)
    assert set(keys) == {"member", "validator", "node"}
    assert "Back up" in out
    assert "passphrase" in out
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for role in Role:
        path = home / "keys" / f"{role.value}.key"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        doc = json.loads(path.read_text())
        assert doc["encrypted"] is True
        assert "seed" not in doc
        opened = read_key_file(path, b"correct horse battery staple")
        assert opened.key.public_key.hex() == keys[role.value]
    assert "listen" in (home / "config.toml").read_text()


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    assert main(["init", "--home", str(home), "--plaintext-keys"]) == 0
    before = (home / "keys" / "member.key").read_bytes()
    assert main(["init", "--home", str(home), "--plaintext-keys"]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (home / "keys" / "member.key").read_bytes() == before


def test_init_reads_home_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMONS_HOME", str(tmp_path / "envhome"))
    assert main(["init", "--plaintext-keys"]) == 0
    assert (tmp_path / "envhome" / "keys" / "node.key").exists()


def test_init_without_terminal_or_passphrase_file_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "init", "--home", str(tmp_path / "h")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "--passphrase-file" in result.stderr
    assert not (tmp_path / "h" / "keys").exists()


def test_wrong_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--no-such-flag"]) == 2
    assert "No such option" in capsys.readouterr().err


def test_key_moves_to_a_new_machine(
    tmp_path: Path, passphrase: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    assert main(["init", "--home", str(old), "--passphrase-file", str(passphrase)]) == 0
    member = _public_keys(capsys.readouterr().out)["member"]
    backup = tmp_path / "backup.key"
    args = ["--passphrase-file", str(passphrase)]
    assert main(["key", "export", "--home", str(old), "--out", str(backup), *args]) == 0
    assert json.loads(backup.read_text())["encrypted"] is True
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert main(["key", "import", str(backup), "--home", str(new), *args]) == 0
    moved = read_key_file(new / "keys" / "member.key", b"correct horse battery staple")
    assert moved.key.public_key.hex() == member
    # a second import would replace the key: refused unless --force
    assert main(["key", "import", str(backup), "--home", str(new), *args]) == 1
    assert main(["key", "import", str(backup), "--home", str(new), "--force", *args]) == 0


def test_plaintext_export_is_resealed_on_import(
    tmp_path: Path, passphrase: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    args = ["--passphrase-file", str(passphrase)]
    assert main(["init", "--home", str(old), *args]) == 0
    validator = _public_keys(capsys.readouterr().out)["validator"]
    plain = tmp_path / "plain.key"
    export = ["key", "export", "--home", str(old), "--role", "validator", "--out", str(plain)]
    assert main([*export, "--plaintext", *args]) == 0
    assert json.loads(plain.read_text())["encrypted"] is False
    assert main(["key", "import", str(plain), "--home", str(new), *args]) == 0
    stored = json.loads((new / "keys" / "validator.key").read_text())
    assert stored["encrypted"] is True
    assert stored["public_key"] == validator


def test_wrong_passphrase_is_refused(
    tmp_path: Path, passphrase: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    assert main(["init", "--home", str(home), "--passphrase-file", str(passphrase)]) == 0
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not it\n")
    out = tmp_path / "x.key"
    code = main(
        ["key", "export", "--home", str(home), "--out", str(out), "--passphrase-file", str(wrong)]
    )
    assert code == 1
    assert "wrong passphrase" in capsys.readouterr().err
    assert not out.exists()


def test_tampered_key_file_is_refused(tmp_path: Path, passphrase: Path) -> None:
    home = tmp_path / "home"
    assert main(["init", "--home", str(home), "--passphrase-file", str(passphrase)]) == 0
    path = home / "keys" / "member.key"
    doc = json.loads(path.read_text())
    doc["role"] = "validator"  # authenticated as associated data
    path.write_text(json.dumps(doc))
    out = tmp_path / "x.key"
    args = ["--passphrase-file", str(passphrase), "--out", str(out)]
    assert main(["key", "export", "--home", str(home), *args]) == 1


def test_console_script_runs(tmp_path: Path) -> None:
    env = {**os.environ, "COMMONS_HOME": str(tmp_path / "h")}
    result = subprocess.run(
        [*commons(), "init", "--plaintext-keys"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(_public_keys(result.stdout)) == 3


def test_binary_passphrase_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "pass.bin"
    binary.write_bytes(b"\x9a\xff\x00secret")
    assert main(["init", "--home", str(tmp_path / "h"), "--passphrase-file", str(binary)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert not (tmp_path / "h" / "keys").exists()


# a home made by `key import`, and which passphrase is which


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Path, str]:
    """(a member key file sealed under its own passphrase, that passphrase's file, its key)."""
    old_pass = tmp_path / "old-pass.txt"
    old_pass.write_text("the old machine's passphrase\n")
    key = Keypair.from_seed(bytes(range(32)))
    backup = tmp_path / "backup.key"
    sealed = seal_key(
        Role.MEMBER,
        key,
        b"the old machine's passphrase",
        salt=bytes(SALT_BYTES),
        nonce=bytes(NONCE_BYTES),
        scrypt_n=2**14,  # a cheaper key than `init` makes, for a faster test
    )
    backup.write_bytes(sealed)
    return backup, old_pass, key.public_key.hex()


def test_key_import_into_an_empty_folder_makes_a_usable_home(
    tmp_path: Path,
    passphrase: Path,
    exported: tuple[Path, Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A key imported into an empty folder once left a home that `init` refused to finish."""
    backup, old_pass, member = exported
    (tmp_path / "empty").mkdir()
    for new in (tmp_path / "empty", tmp_path / "nonexistent"):
        args = ["--passphrase-file", str(passphrase), "--file-passphrase-file", str(old_pass)]
        code, out, err = _cli(capsys, "key", "import", str(backup), "--home", str(new), *args)
        assert code == 0, err
        assert f"Created the Commons home {new}" in out
        assert stat.S_IMODE(new.stat().st_mode) == 0o700
        assert stat.S_IMODE((new / "keys").stat().st_mode) == 0o700
        assert "listen" in (new / "config.toml").read_text()
        stored = new / "keys" / "member.key"
        # re-sealed under the new home's passphrase, no longer the file's
        assert read_key_file(stored, PASS).key.public_key.hex() == member
        with pytest.raises(WrongPassphrase):
            read_key_file(stored, b"the old machine's passphrase")
        if new.name == "empty":
            continue  # what follows is the same for both
        code, out, err = _cli(
            capsys, "init", "--home", str(new), "--passphrase-file", str(passphrase)
        )
        assert code == 0, err
        assert "kept the member key it had" in out
        assert read_key_file(stored, PASS).key.public_key.hex() == member
        assert set(_public_keys(out)) == {"validator", "node"}
        out_key = tmp_path / f"{new.name}.key"
        export = ["key", "export", "--home", str(new), "--out", str(out_key)]
        assert main([*export, "--passphrase-file", str(passphrase)]) == 0


@pytest.fixture
def home(tmp_path: Path, passphrase: Path) -> Path:
    """A home made by `init` under `passphrase`."""
    where = tmp_path / "home"
    assert main(["init", "--home", str(where), "--passphrase-file", str(passphrase)]) == 0
    return where


def test_key_import_into_a_home_with_keys_reuses_its_passphrase(
    home: Path,
    passphrase: Path,
    exported: tuple[Path, Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    backup, old_pass, member = exported
    args = ["--passphrase-file", str(passphrase), "--file-passphrase-file", str(old_pass)]
    code, out, err = _cli(
        capsys, "key", "import", str(backup), "--home", str(home), "--force", "--json", *args
    )
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["role"], doc["public_key"], doc["created_home"]) == ("member", member, False)
    assert read_key_file(home / "keys" / "member.key", PASS).key.public_key.hex() == member


def test_a_wrong_passphrase_says_which_one(
    home: Path,
    tmp_path: Path,
    passphrase: Path,
    exported: tuple[Path, Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    backup, old_pass, _ = exported
    before = (home / "keys" / "member.key").read_bytes()
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the passphrase at all\n")
    base = ["key", "import", str(backup), "--home", str(home), "--force"]
    # the key file's passphrase is wrong (given for the file, or the home's taken for it)
    code, _, err = _cli(
        capsys, *base, "--passphrase-file", str(passphrase), "--file-passphrase-file", str(wrong)
    )
    assert code == 1
    assert f"the passphrase in {wrong} (--file-passphrase-file) does not open the key file" in err
    code, _, err = _cli(capsys, *base, "--passphrase-file", str(passphrase))
    assert code == 1
    assert "(give the file's own with --file-passphrase-file) does not open the key file" in err
    # the home's passphrase is wrong
    code, _, err = _cli(
        capsys, *base, "--passphrase-file", str(wrong), "--file-passphrase-file", str(old_pass)
    )
    assert code == 1
    assert f"the passphrase in {wrong} is not the passphrase of this home's keys" in err
    assert (home / "keys" / "member.key").read_bytes() == before


def test_key_import_into_a_new_home_needs_a_long_enough_passphrase(
    tmp_path: Path, exported: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    backup, old_pass, _ = exported
    short = tmp_path / "short.txt"
    short.write_text("abc\n")
    new = tmp_path / "new"
    args = ["--passphrase-file", str(short), "--file-passphrase-file", str(old_pass)]
    code, _, err = _cli(capsys, "key", "import", str(backup), "--home", str(new), *args)
    assert code == 2
    assert "has 3 characters; new keys need at least 8" in err
    assert not new.exists()


def test_init_json_lists_the_public_keys(
    tmp_path: Path, passphrase: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    args = ["init", "--home", str(home), "--passphrase-file", str(passphrase), "--json"]
    code, out, _ = _cli(capsys, *args)
    assert code == 0
    doc = json.loads(out)
    assert doc["home"] == str(home)
    assert doc["encrypted"] is True
    for role in Role:
        entry = doc["keys"][role.value]
        assert entry["path"] == str(home / "keys" / f"{role.value}.key")
        assert read_key_file(Path(entry["path"]), PASS).key.public_key.hex() == entry["public_key"]
