"""Bad input gets a clear error in the user's terms, bounded work, and the documented exit code.

Files nested too deep, too large (refused from their size, before they are read), keys no
signature can ever verify under, key files with broken parameters, short passphrases for new
keys; and the exit codes of cli/main.py, which README.md's table must list in full.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nacl.bindings
import pytest
from clikit import ROOT, cli, run
from console import commons
from ledger_factory import Ledger, build_standard, keypair

from cli import main as cli_main
from ledger import codec
from ledger.crypto import Role, public_key_problem, verify
from ledger.errors import SignatureError
from ledger.files import BUNDLE_MAGIC, NONCE_BYTES, SALT_BYTES, read_key_file, seal_key

VECTORS = ROOT / "tests" / "vectors" / "ed25519-speccheck" / "cases.json"
PASSPHRASE = "correct horse battery staple"  # noqa: S105 - a test home's


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    return build_standard(tmp_path_factory.mktemp("input") / "home")


@pytest.fixture(scope="module")
def proof_file(ledger: Ledger, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("proof") / "ada-2.proof"
    record = ledger.records["ada-2"].id.hex()
    assert cli_main.main(["proof", record, "--home", str(ledger.home), "--out", str(out)]) == 0
    return out


@pytest.fixture
def passphrase(tmp_path: Path) -> Path:
    path = tmp_path / "pass.txt"
    path.write_text(PASSPHRASE + "\n")
    return path


def _sparse(path: Path, size: int = 2 * 2**30) -> Path:
    """A file of `size` bytes that takes no room on disk (and would take as much memory as
    its size to read whole)."""
    with path.open("wb") as f:
        f.truncate(size)
    return path


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


# JSON nested very deep


def _bundle_with_genesis(path: Path, genesis_json: bytes) -> Path:
    body = codec.encode({"kind": "genesis", "data": genesis_json})
    path.write_bytes(BUNDLE_MAGIC + len(body).to_bytes(4, "big") + body)
    return path


@pytest.mark.parametrize("levels", [9, 100_000])
def test_deeply_nested_json_is_refused_without_a_traceback(
    ledger: Ledger,
    proof_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    levels: int,
) -> None:
    """JSON nested 100000 deep once crashed genesis and scenario parsing (RecursionError)."""
    deep = tmp_path / "deep.json"
    deep.write_bytes(_deep(levels))
    genesis = b'{"format": "commons-genesis-v1", "name": ' + _deep(levels) + b"}"
    bundle = _bundle_with_genesis(tmp_path / "deep.bundle", genesis)
    cases = [
        (["audit", "--home", str(ledger.home), "--genesis", str(deep)], 1),
        (["verify-proof", str(proof_file), "--genesis", str(deep)], 1),
        (["audit", "--bundle", str(bundle)], 1),
        (["import", "--home", str(tmp_path / "h"), str(bundle)], 1),
        (["governance", "simulate", str(deep)], 2),
    ]
    for args, code in cases:
        got, _, err = cli(capsys, *args)
        assert got == code, (args, err)
        assert re.search(r"nests deeper than \d+ levels", err), err
    assert not (tmp_path / "h" / "ledger.sqlite").exists()


def test_deep_genesis_as_a_subprocess(ledger: Ledger, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_bytes(b'{"a":' * 50_000 + b"1" + b"}" * 50_000)
    result = run("audit", "--home", str(ledger.home), "--genesis", str(deep))
    assert result.returncode == 1
    assert "genesis file" in result.stderr
    assert "nests deeper than 4 levels" in result.stderr


# files too large: refused from their size, before they are read


def _large_input_cases(
    ledger: Ledger, proof_file: Path, big: Path, home: Path, passphrase: Path
) -> dict[str, tuple[list[str], int, str]]:
    genesis = home.parent / "genesis.json"
    ledger.write_genesis(genesis)
    return {
        "genesis for audit": (
            ["audit", "--home", str(ledger.home), "--genesis", str(big)],
            1,
            "genesis file",
        ),
        "genesis for verify-proof": (
            ["verify-proof", str(proof_file), "--genesis", str(big)],
            1,
            "genesis file",
        ),
        "proof": (["verify-proof", str(big), "--genesis", str(genesis)], 1, "proof file"),
        "scenario": (["governance", "simulate", str(big)], 2, "scenario file"),
        "key file": (
            ["key", "import", str(big), "--home", str(home), "--passphrase-file", str(passphrase)],
            1,
            "key file",
        ),
        "passphrase file": (
            ["init", "--home", str(home), "--passphrase-file", str(big)],
            1,
            "passphrase file",
        ),
    }


LARGE = ("genesis for audit", "genesis for verify-proof", "proof", "scenario", "key file")
LARGE += ("passphrase file",)


@pytest.mark.parametrize("case", LARGE)
def test_a_2_gib_input_is_refused_from_its_size(
    ledger: Ledger,
    proof_file: Path,
    passphrase: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    """A 2 GiB genesis, proof, scenario, key or passphrase file once cost 2-4 GB of memory
    before it was refused; now its size refuses it and nothing is read."""
    big = _sparse(tmp_path / "big.json")
    home = tmp_path / "home"
    args, code, what = _large_input_cases(ledger, proof_file, big, home, passphrase)[case]
    started = time.monotonic()
    got, _, err = cli(capsys, *args)
    assert got == code, err
    assert f"{what} {big} is 2 GiB; at most" in err
    assert time.monotonic() - started < 10
    assert not (home / "keys").exists()


@pytest.mark.parametrize("case", ["genesis for audit", "proof", "passphrase file", "key file"])
def test_an_endless_input_is_read_only_up_to_its_limit(
    ledger: Ledger,
    proof_file: Path,
    passphrase: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    """A device has no size to check first: at most the limit and one byte are read."""
    zero = Path("/dev/zero")
    home = tmp_path / "home"
    args, code, what = _large_input_cases(ledger, proof_file, zero, home, passphrase)[case]
    got, _, err = cli(capsys, *args)
    assert got == code, err
    assert f"{what} {zero} holds more than" in err


# keys that no signature verifies under


def _speccheck() -> list[dict[str, object]]:
    cases: list[dict[str, object]] = json.loads(VECTORS.read_text())
    return cases


SMALL_ORDER = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"
P_MINUS_ONE = "ec" + "ff" * 30 + "7f"  # y = p - 1: the point of order 2
WEAK_KEYS = {
    "all-zeros": ("00" * 32, "small order"),
    "identity": ("01" + "00" * 31, "small order"),
    "identity-with-sign-bit": ("01" + "00" * 30 + "80", "small order"),
    "order-8": (SMALL_ORDER, "small order"),
    "order-2": (P_MINUS_ONE, "small order"),
    "non-canonical-p": ("ed" + "ff" * 30 + "7f", "not a canonical encoding"),
    "non-canonical-all-ones": ("ff" * 32, "not a canonical encoding"),
    "off-the-curve": ("02" + "00" * 31, "not a point on the Ed25519 curve"),
}


def test_public_key_problem_agrees_with_strict_verification() -> None:
    """Every speccheck key refused is one under which libsodium rejected every case; the key of
    the one valid case (a key with a small-order component) is accepted."""
    for case in _speccheck():
        key = bytes.fromhex(str(case["pub_key"]))
        problem = public_key_problem(key)
        if case["valid_under_commons"]:
            assert problem is None, case["case"]
        if problem is not None:
            with pytest.raises(SignatureError):
                verify(
                    key, bytes.fromhex(str(case["message"])), bytes.fromhex(str(case["signature"]))
                )
    # all eight points of small order, each with both sign bits
    point = bytes.fromhex(SMALL_ORDER)
    multiple = point
    for _ in range(8):
        for sign in (0x00, 0x80):
            encoded = multiple[:31] + bytes([multiple[31] & 0x7F | sign])
            assert "small order" in (public_key_problem(encoded) or ""), encoded.hex()
        multiple = nacl.bindings.crypto_core_ed25519_add(multiple, point)
    for label in ("member/a", "validator/b", "node/c"):
        assert public_key_problem(keypair(label).public_key) is None


@pytest.mark.parametrize("flag", ["--member", "--validator"])
@pytest.mark.parametrize(("key", "reason"), WEAK_KEYS.values(), ids=WEAK_KEYS.keys())
def test_genesis_create_refuses_keys_that_can_never_sign(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, key: str, reason: str
) -> None:
    good = keypair("genesis/good").public_key.hex()
    out = tmp_path / "genesis.json"
    spec = f"ada={key}:5" if flag == "--member" else f"{key}:1"
    validator = good if flag == "--member" else key
    args = ["genesis", "create", "--validator", f"{validator}:1", "--out", str(out)]
    if flag == "--member":
        args += ["--member", spec]
    code, _, err = cli(capsys, *args)
    assert code == 2, err
    assert f"key {key} can never sign: it is" in err
    assert reason in err
    assert not out.exists()


def test_genesis_create_accepts_a_key_with_a_small_order_component(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Speccheck case 3's key is not in the prime-order group, yet libsodium verifies a
    signature under it: it is not refused."""
    mixed = next(str(c["pub_key"]) for c in _speccheck() if c["valid_under_commons"])
    out = tmp_path / "genesis.json"
    code, _, err = cli(capsys, "genesis", "create", "--validator", f"{mixed}:1", "--out", str(out))
    assert code == 0, err


def test_genesis_create_refuses_a_member_name_given_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, v = (keypair(f"names/{n}").public_key.hex() for n in "abv")
    out = tmp_path / "genesis.json"
    code, _, err = cli(
        capsys,
        *("genesis", "create", "--validator", f"{v}:1", "--out", str(out)),
        *("--member", f"ada={a}:5", "--member", f"ada={b}:7"),
    )
    assert code == 2
    assert "the name 'ada' is given twice" in err
    assert not out.exists()


# malformed files: the user's terms, never Python's


GENESIS_DOCS = {
    "members-missing": (
        lambda g: {k: v for k, v in g.items() if k != "members"},
        "missing members",
    ),
    "not-an-object": (lambda g: [g], "must be a map"),
    "member-key-not-hex": (
        lambda g: {**g, "members": [{**g["members"][0], "key": "zz"}, *g["members"][1:]]},
        r"members\[0\].key must be 64 hex digits",
    ),
    "member-unknown-field": (
        lambda g: {**g, "members": [{**g["members"][0], "bio": "x"}, *g["members"][1:]]},
        r"members\[0\] has unknown field bio",
    ),
    "validators-not-a-list": (lambda g: {**g, "validators": {"a": 1}}, "validators must be a list"),
    "time-a-fraction": (lambda g: {**g, "time": 1.5}, "genesis.time must be an integer"),
    "time-infinite": (lambda g: {**g, "time": "INF"}, "out of range"),
    "key-repeated": (lambda g: g, "appears twice"),
}


@pytest.mark.parametrize("case", GENESIS_DOCS)
def test_a_malformed_genesis_is_described_in_the_users_terms(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    """Errors once read "KeyError('members')" and "UnicodeDecodeError(...)"."""
    change, message = GENESIS_DOCS[case]
    text = json.dumps(change(json.loads(ledger.genesis.to_json())))
    if case == "time-infinite":
        text = text.replace('"INF"', "1e999")
    if case == "key-repeated":
        text = text.replace('"name":', '"name": "x", "name":', 1)
    path = tmp_path / "genesis.json"
    path.write_text(text)
    code, _, err = cli(capsys, "audit", "--home", str(ledger.home), "--genesis", str(path))
    assert code == 1
    assert err.startswith(f"error: genesis file {path}")
    assert re.search(message, err), err
    assert not re.search(r"Error\(|\w+Error\b|Traceback", err), err


def test_a_genesis_that_is_not_utf8_says_so(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "genesis.json"
    path.write_bytes(b'{"name": "\xff"}')
    code, _, err = cli(capsys, "audit", "--home", str(ledger.home), "--genesis", str(path))
    assert code == 1
    assert f"genesis file {path} is not JSON text: byte 10 is not UTF-8" in err


def _key_file(tmp_path: Path, *, kdf: str | None = None, n: str | None = None) -> Path:
    """A key file sealed under PASSPHRASE, its KDF text or its scrypt n replaced."""
    data = seal_key(
        Role.MEMBER,
        keypair("input/member"),
        PASSPHRASE.encode(),
        salt=bytes(SALT_BYTES),
        nonce=bytes(NONCE_BYTES),
        scrypt_n=2**14,
    ).decode()
    if n is not None:
        data = data.replace('"n": 16384', f'"n": {n}')
    if kdf is not None:
        data = re.sub(r'"kdf": \{.*?\}', f'"kdf": {kdf}', data, flags=re.DOTALL)
    path = tmp_path / "member.key"
    path.write_text(data)
    return path


BAD_KDF = {
    "n-infinite": ({"n": "1e999"}, "the number 1e999 is out of range"),
    "n-negative": ({"n": "-1"}, "scrypt n must be a power of two within 2^14..2^18, got -1"),
    "n-text": ({"n": '"x"'}, "scrypt n must be a power of two within 2^14..2^18, got 'x'"),
    "n-2-to-1000": ({"n": str(2**1000)}, "a number has 302 digits, more than 40"),
    "n-2-to-40": ({"n": str(2**40)}, "got 1099511627776"),
    "n-not-a-power-of-two": ({"n": "20000"}, "got 20000"),
    "n-fraction": ({"n": "16384.0"}, "got 16384.0"),
    "n-true": ({"n": "true"}, "got True"),
    "n-nan": ({"n": "NaN"}, "NaN is not a number JSON allows"),
    "kdf-not-an-object": ({"kdf": "[1, 2]"}, "kdf must be a JSON object"),
    "kdf-unknown-name": (
        {"kdf": '{"name": "argon2", "n": 1, "r": 8, "p": 1, "salt": ""}'},
        "key derivation 'argon2' is not supported",
    ),
    "kdf-lacks-salt": (
        {"kdf": '{"name": "scrypt", "n": 16384, "r": 8, "p": 1}'},
        "kdf lacks salt",
    ),
    "r-wrong": (
        {"kdf": '{"name": "scrypt", "n": 16384, "r": 1, "p": 1, "salt": "' + "00" * 16 + '"}'},
        "scrypt r must be 8, got 1",
    ),
}


@pytest.mark.parametrize(("change", "message"), BAD_KDF.values(), ids=BAD_KDF.keys())
def test_key_files_with_broken_kdf_parameters_are_refused_without_a_traceback(
    tmp_path: Path,
    passphrase: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    message: str,
) -> None:
    """n = 1e999 once raised OverflowError out of the CLI."""
    path = _key_file(tmp_path, **change)
    home = tmp_path / "home"
    args = ["key", "import", str(path), "--home", str(home), "--passphrase-file", str(passphrase)]
    code, _, err = cli(capsys, *args)
    assert code == 1, err
    assert f"key file {path}" in err
    assert message in err
    assert not home.exists()


def test_a_broken_key_in_the_home_is_named_on_export(
    tmp_path: Path, passphrase: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    (home / "keys").mkdir(parents=True)
    broken = _key_file(tmp_path, n="1e999")
    (home / "keys" / "member.key").write_bytes(broken.read_bytes())
    out = tmp_path / "out.key"
    args = ["--passphrase-file", str(passphrase)]
    code, _, err = cli(capsys, "key", "export", "--home", str(home), "--out", str(out), *args)
    assert code == 1
    assert f"key file {home / 'keys' / 'member.key'}: the number 1e999 is out of range" in err
    assert not out.exists()


# passphrases


def test_new_keys_need_a_passphrase_of_eight_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`init` once sealed keys under "abc"."""
    short = tmp_path / "short.txt"
    short.write_text("abc\n")
    home = tmp_path / "home"
    code, _, err = cli(capsys, "init", "--home", str(home), "--passphrase-file", str(short))
    assert code == 2
    assert "has 3 characters; new keys need at least 8" in err
    assert not home.exists()
    short.write_text("ünïcödé\n")  # 7 characters, 11 bytes
    code, _, err = cli(capsys, "init", "--home", str(home), "--passphrase-file", str(short))
    assert code == 2
    assert "has 7 characters" in err


def test_an_old_key_under_a_short_passphrase_still_opens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The minimum is for new keys: a key sealed before it opens with its passphrase."""
    home = tmp_path / "home"
    (home / "keys").mkdir(parents=True)
    key = keypair("input/old")
    sealed = seal_key(Role.MEMBER, key, b"abc", salt=bytes(16), nonce=bytes(12), scrypt_n=2**14)
    (home / "keys" / "member.key").write_bytes(sealed)
    short = tmp_path / "short.txt"
    short.write_text("abc\n")
    out = tmp_path / "backup.key"
    args = ["key", "export", "--home", str(home), "--out", str(out), "--json"]
    code, printed, err = cli(capsys, *args, "--passphrase-file", str(short))
    assert code == 0, err
    assert json.loads(printed)["public_key"] == key.public_key.hex()
    # and, into a home that has keys, it is re-sealed under that home's (short) passphrase
    code, _, err = cli(capsys, "init", "--home", str(home), "--passphrase-file", str(short))
    assert code == 0, err
    assert read_key_file(home / "keys" / "node.key", b"abc").role is Role.NODE


# exit codes


def _readme_exit_codes() -> set[int]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    return {int(code) for code in re.findall(r"^\| (\d+) \|", section, re.MULTILINE)}


def test_readme_lists_every_exit_code_the_cli_returns() -> None:
    codes = {code for _, code in cli_main.ERROR_EXITS}
    codes |= {cli_main.EXIT_OK, cli_main.EXIT_REFUSED, cli_main.EXIT_USAGE}
    codes |= {cli_main.EXIT_UNREACHABLE, cli_main.EXIT_INTERRUPTED}
    assert _readme_exit_codes() == codes


def test_missing_or_unreadable_input_files_exit_2(
    ledger: Ledger, proof_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """They once exited 1, the code of an integrity failure."""
    missing = tmp_path / "missing.json"
    home = tmp_path / "home"
    cases = [
        ["verify-proof", str(missing), "--genesis", str(missing)],
        ["audit", "--home", str(ledger.home), "--genesis", str(missing)],
        ["audit", "--bundle", str(missing)],
        ["audit", "--bundle", str(tmp_path)],
        ["import", "--home", str(home), str(missing)],
        ["init", "--home", str(home), "--passphrase-file", str(missing)],
        ["key", "import", str(missing), "--home", str(home)],
        ["key", "export", "--home", str(home), "--out", str(tmp_path / "o.key")],
        ["governance", "simulate", str(missing)],
    ]
    for args in cases:
        code, _, err = cli(capsys, *args)
        assert code == 2, (args, err)
        assert re.search(r"does not exist|No such file|Is a directory|has no member key", err)
    assert not home.exists()


def test_audit_of_a_home_without_a_ledger_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit --home /nope` once said "give --home DIR or --bundle FILE" though --home was."""
    code, _, err = cli(capsys, "audit", "--home", str(tmp_path / "nope"))
    assert code == 2
    assert f"{tmp_path / 'nope'} has no ledger: the folder does not exist" in err
    assert "give --home" not in err
    code, _, err = cli(capsys, "audit", "--home", str(tmp_path))
    assert code == 2
    assert f"{tmp_path} has no ledger (no ledger.sqlite in it)" in err


def test_ctrl_c_at_a_passphrase_prompt_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("cli.home.click.prompt", interrupted)
    code, _, err = cli(capsys, "init", "--home", str(tmp_path / "home"))
    assert code == 130
    assert "interrupted" in err
    assert not (tmp_path / "home").exists()


def _ctrl_c_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_in_a_subprocess_exits_130(tmp_path: Path) -> None:
    """A real SIGINT while `governance simulate` waits for its file to be written (a FIFO)."""
    fifo = tmp_path / "scenario.json"
    os.mkfifo(fifo)
    process = subprocess.Popen(
        [*commons(), "governance", "simulate", str(fifo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell without job control starts background jobs with Ctrl-C ignored, and a program
        # started so rightly keeps ignoring it: give the command the terminal's default
        preexec_fn=_ctrl_c_default,  # noqa: PLW1509 - only resets one signal
    )
    deadline = time.monotonic() + 60
    while True:  # the FIFO opens for writing once the command has it open for reading
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert time.monotonic() < deadline, "the command never opened its file"
            time.sleep(0.05)
    try:
        time.sleep(0.2)  # it is waiting for the scenario's bytes
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        os.close(writer)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err
