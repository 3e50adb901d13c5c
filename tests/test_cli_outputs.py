"""Never lose a user's data: the one rule of every command that writes a file (`export`,
`genesis create`, `proof`, `key export`, the demo's files, a home's keys).

An existing path is replaced only with --force; a home's own files (its ledger and the ledger's
-wal and -shm, its keys, its configuration) and anything that is not a regular file never are,
symbolic links followed; the data goes to a temporary file in the same folder, flushed to disk
and renamed into place, so a full disk or a Ctrl-C at any moment leaves no partial output, no
temporary file, and the old file as it was.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clikit import cli, run
from ledger_factory import Ledger, build_standard, copy_ledger, keypair

from cli.main import main
from ledger import files
from ledger.files import read_key_file
from ledger.genesis import Genesis
from ledger.proof import RecordProof
from ledger.store import Store

PASSPHRASE = "correct horse battery staple"  # noqa: S105 - a test home's


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    return build_standard(tmp_path_factory.mktemp("outputs") / "home")


@pytest.fixture(scope="module")
def made_home(ledger: Ledger, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The standard ledger in a home with keys and a configuration, as `init` makes them."""
    where = tmp_path_factory.mktemp("made") / "home"
    copy_ledger(ledger.path, where)
    passphrase = where.parent / "pass.txt"
    passphrase.write_text(PASSPHRASE + "\n")
    assert main(["init", "--home", str(where), "--passphrase-file", str(passphrase)]) == 0
    return where


@pytest.fixture
def home(made_home: Path, tmp_path: Path) -> Path:
    """A copy of `made_home` for one test, with its passphrase file beside it."""
    where = tmp_path / "home"
    shutil.copytree(made_home, where)
    shutil.copy(made_home.parent / "pass.txt", tmp_path / "pass.txt")
    return where


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` with its bytes (a SQLite store's too)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


KEY_V = keypair("outputs/validator").public_key.hex()


def writers(ledger: Ledger, home: Path, out: Path) -> dict[str, list[str]]:
    """Each command that writes a file, writing `out`."""
    record = ledger.records["ada-2"].id.hex()
    passphrase = str(home.parent / "pass.txt")
    return {
        "export": ["export", "--home", str(home), "--out", str(out)],
        "genesis create": ["genesis", "create", "--validator", f"{KEY_V}:1", "--out", str(out)],
        "proof": ["proof", record, "--home", str(home), "--out", str(out)],
        "key export": [
            *("key", "export", "--home", str(home), "--out", str(out)),
            *("--passphrase-file", passphrase),
        ],
    }


WRITERS = ("export", "genesis create", "proof", "key export")


def _check_written(command: str, out: Path, home: Path) -> None:
    """`out` holds what `command` writes, whole."""
    data = out.read_bytes()
    if command == "export":
        assert data.startswith(files.BUNDLE_MAGIC)
        assert files.open_bundle(out).genesis.network_id
    elif command == "genesis create":
        Genesis.from_json(data)
    elif command == "proof":
        RecordProof.decode(data)
    else:
        assert read_key_file(out, PASSPHRASE.encode()).role.value == "member"
        assert stat.S_IMODE(out.stat().st_mode) == 0o600


# the home's own files


@pytest.mark.parametrize(
    "name",
    ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm", "config.toml", "keys/member.key"],
)
@pytest.mark.parametrize("force", [False, True], ids=["plain", "forced"])
def test_export_onto_the_homes_own_ledger_is_refused(
    home: Path, capsys: pytest.CaptureFixture[str], name: str, force: bool
) -> None:
    """`export --home D --out D/ledger.sqlite` once wrote over the ledger and exited 0."""
    target = home / name  # the -wal and -shm exist only while the ledger is open
    before = _snapshot(home)
    args = ["export", "--home", str(home), "--out", str(target)] + (["--force"] if force else [])
    code, _, err = cli(capsys, *args)
    assert code == 1
    assert f"of the Commons home {home}: no command writes over it" in err
    assert _snapshot(home) == before
    assert cli(capsys, "audit", "--home", str(home))[0] == 0


@pytest.mark.parametrize("command", WRITERS)
def test_every_writer_refuses_the_homes_ledger(
    ledger: Ledger, home: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    before = (home / "ledger.sqlite").read_bytes()
    args = [*writers(ledger, home, home / "ledger.sqlite")[command], "--force"]
    code, _, err = cli(capsys, *args)
    assert code == 1, err
    assert "is the ledger of the Commons home" in err
    assert (home / "ledger.sqlite").read_bytes() == before


def test_output_through_a_symbolic_link_to_the_ledger_is_refused(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "innocent.bundle"
    link.symlink_to(home / "ledger.sqlite")
    folder_link = tmp_path / "elsewhere"
    folder_link.symlink_to(home)
    before = _snapshot(home)
    for out in (link, folder_link / "ledger.sqlite", folder_link / "keys" / "node.key"):
        code, _, err = cli(capsys, "export", "--home", str(home), "--out", str(out), "--force")
        assert code == 1, out
        assert "of the Commons home" in err
    assert _snapshot(home) == before


def test_the_default_home_is_protected_too(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`genesis create` has no --home: the home the environment names is still protected."""
    monkeypatch.setenv("COMMONS_HOME", str(home))
    before = (home / "config.toml").read_bytes()
    args = ["genesis", "create", "--validator", f"{KEY_V}:1", "--out", str(home / "config.toml")]
    code, _, err = cli(capsys, *args, "--force")
    assert code == 1
    assert "is the configuration of the Commons home" in err
    assert (home / "config.toml").read_bytes() == before


# existing files


@pytest.mark.parametrize("command", WRITERS)
def test_every_writer_refuses_an_existing_file_unless_forced(
    ledger: Ledger, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    out = tmp_path / "precious.txt"
    out.write_bytes(b"a week of notes\n")
    args = writers(ledger, home, out)[command]
    code, _, err = cli(capsys, *args)
    assert code == 1
    assert f"{out} already exists: refusing to replace it without --force" in err
    assert out.read_bytes() == b"a week of notes\n"
    code, _, err = cli(capsys, *args, "--force")
    assert code == 0, err
    _check_written(command, out, home)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "pass.txt", "precious.txt"]


@pytest.mark.parametrize("command", WRITERS)
def test_every_writer_refuses_what_is_not_a_regular_file(
    ledger: Ledger, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """A device, a pipe, a folder: never written, not even with --force (as root, writing over
    /dev/sda would have destroyed a disk)."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    for out, kind in ((Path("/dev/null"), "a device"), (pipe, "a pipe")):
        code, _, err = cli(capsys, *writers(ledger, home, out)[command], "--force")
        assert code == 1, err
        assert f"{out} is {kind}, not a regular file" in err
    folder = tmp_path / "folder"
    folder.mkdir()
    code, _, err = cli(capsys, *writers(ledger, home, folder)[command], "--force")
    assert code == 2  # click's own check of --out
    assert "is a directory" in err
    assert list(folder.iterdir()) == []


def test_a_dangling_symbolic_link_is_followed_only_when_forced(
    ledger: Ledger, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "out.bundle"
    link.symlink_to(tmp_path / "target.bundle")
    args = writers(ledger, home, link)["export"]
    code, _, err = cli(capsys, *args)
    assert code == 1
    assert "is a symbolic link to" in err
    assert not (tmp_path / "target.bundle").exists()
    assert cli(capsys, *args, "--force")[0] == 0
    assert link.is_symlink()
    assert (tmp_path / "target.bundle").read_bytes().startswith(files.BUNDLE_MAGIC)


def test_outputs_into_a_missing_folder_leave_nothing(
    ledger: Ledger, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "missing" / "x.bundle"
    code, _, err = cli(capsys, *writers(ledger, home, out)["export"])
    assert code == 1
    assert f"cannot write {out}: No such file or directory" in err
    assert not out.parent.exists()


# failures and interrupts while writing


class _FullDisk(io.FileIO):
    """A file on a disk with `room` bytes left."""

    room = 1000

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def _full_disk(fd: int, mode: str) -> io.BufferedWriter:
    return io.BufferedWriter(_FullDisk(fd, "wb"), buffer_size=64)


def _failing_fsync(error: BaseException) -> Callable[[int], None]:
    def fsync(fd: int) -> None:
        raise error

    return fsync


FAILURES: dict[str, tuple[str, Callable[[], object], int, str]] = {
    "disk-full-while-writing": ("fdopen", lambda: _full_disk, 1, "No space left on device"),
    "disk-full-at-fsync": (
        "fsync",
        lambda: _failing_fsync(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))),
        1,
        "No space left on device",
    ),
    "ctrl-c-at-fsync": ("fsync", lambda: _failing_fsync(KeyboardInterrupt()), 130, "interrupted"),
}


@pytest.mark.parametrize("command", WRITERS)
@pytest.mark.parametrize("failure", FAILURES, ids=FAILURES.keys())
def test_a_failed_write_leaves_nothing_behind(
    ledger: Ledger,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    failure: str,
) -> None:
    """A full disk once left 0-byte outputs and .tmp files behind."""
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    old = outputs / "old.out"
    old.write_bytes(b"the previous version\n")
    name, make, expected_code, message = FAILURES[failure]
    # genesis files and key files are small: a full disk must still be met while writing them
    monkeypatch.setattr(_FullDisk, "room", 100)
    monkeypatch.setattr(files.os, name, make())
    for out, extra in ((outputs / "new.out", []), (old, ["--force"])):
        code, _, err = cli(capsys, *writers(ledger, home, out)[command], *extra)
        assert code == expected_code, err
        assert message in err
    monkeypatch.undo()
    assert sorted(p.name for p in outputs.iterdir()) == ["old.out"]
    assert old.read_bytes() == b"the previous version\n"


def test_ctrl_c_in_the_middle_of_an_export_exits_130_and_leaves_nothing(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = Store.blocks

    def interrupted(self: Store, start: int = 1) -> Iterator[object]:
        for index, block in enumerate(blocks(self, start)):
            if index == 3:
                raise KeyboardInterrupt
            yield block

    monkeypatch.setattr(Store, "blocks", interrupted)
    out = tmp_path / "out" / "ledger.bundle"
    out.parent.mkdir()
    code, _, err = cli(capsys, "export", "--home", str(home), "--out", str(out))
    assert code == 130
    assert "interrupted" in err
    assert list(out.parent.iterdir()) == []


def test_ctrl_c_during_import_leaves_no_ledger(
    ledger: Ledger,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bundle = tmp_path / "l.bundle"
    assert cli(capsys, "export", "--home", str(ledger.home), "--out", str(bundle))[0] == 0
    extend = Store.extend

    def interrupted(self: Store, items: Iterator[object], checker: object) -> int:
        def some() -> Iterator[object]:
            for index, item in enumerate(items):
                if index == 2:
                    raise KeyboardInterrupt
                yield item

        return extend(self, some(), checker)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "extend", interrupted)
    target = tmp_path / "new-home"
    code, _, err = cli(capsys, "import", "--home", str(target), str(bundle))
    assert code == 130
    assert "interrupted" in err
    assert list(target.iterdir()) == []


def test_outputs_have_the_modes_of_their_kind(
    ledger: Ledger, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    umask = os.umask(0o022)
    try:
        for command in WRITERS:
            out = tmp_path / f"{command.replace(' ', '-')}.out"
            assert cli(capsys, *writers(ledger, home, out)[command])[0] == 0
            mode = stat.S_IMODE(out.stat().st_mode)
            assert mode == (0o600 if command == "key export" else 0o644), command
    finally:
        os.umask(umask)


def test_export_onto_the_ledger_as_a_subprocess(home: Path) -> None:
    before = (home / "ledger.sqlite").read_bytes()
    result = run("export", "--home", str(home), "--out", str(home / "ledger.sqlite"), "--force")
    assert result.returncode == 1
    assert "no command writes over it" in result.stderr
    assert (home / "ledger.sqlite").read_bytes() == before
    assert run("audit", "--home", str(home)).returncode == 0
