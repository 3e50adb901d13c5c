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
from console import commons

from cli.main import main
from ledger.crypto import Role
from ledger.files import read_key_file


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
