"""Files on disk: the ledger's one module (with store.py) that reads and writes them.

Every file a command reads is read with `read_limited`: its size is checked before it is read,
and no more than the limit is ever read (a pipe or a device has no size to check). Every file a
command writes is written through `output_file`, one rule for all of them: an existing path is
replaced only when forced, and never when it is not a regular file or is one of the `protected`
paths (symbolic links followed); the data goes to a temporary file in the same folder, is
flushed to disk and renamed into place, so a failure or an interrupt at any moment leaves either
the old file or the new one, and no partial or temporary file.

A bundle is a whole ledger in one file, for auditors and for moving a ledger between machines:
the magic line `COMMONS-BUNDLE-1\n`, then frames of a 4-byte big-endian length and a canonical map
`{kind, data}`: first the genesis (its JSON), then every block in height order, then the tip's
commit certificate. Frames are bounded before they are read.

A key file is JSON holding one role's Ed25519 seed, sealed with ChaCha20-Poly1305 under a key
derived from a passphrase by scrypt. The role, public key and KDF parameters are authenticated
as associated data, so none can be swapped without the passphrase. Plaintext key files exist only
when asked for explicitly. Key files are written with mode 0600.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import stat
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ledger import codec, jsontext, schema
from ledger.block import (
    MAX_BLOCK_BYTES,
    Block,
    Commit,
    RawBlock,
    decode_commit,
    decode_raw_block,
    encode_commit,
)
from ledger.crypto import PUBLIC_KEY_BYTES, SEED_BYTES, Keypair, Role
from ledger.errors import (
    DecodeError,
    InputFileError,
    InvalidData,
    KeyFileError,
    OutputFileError,
    WrongPassphrase,
)
from ledger.genesis import MAX_GENESIS_BYTES, Genesis
from ledger.rulebook import Rule

KEY_FORMAT = "commons-key-v1"
SCRYPT_N = 2**17  # 128 MiB, about half a second: OWASP's floor for scrypt
SCRYPT_N_RANGE = (2**14, 2**18)
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
NONCE_BYTES = 12
MAX_KEY_FILE_BYTES = 4096


# reading and writing any file


def size_text(size: int) -> str:
    """A size for people: 4096 bytes, 4 MiB, 2.0 GiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            whole = size % scale == 0
            return f"{size // scale} {unit}" if whole else f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def read_limited(path: Path, limit: int, what: str) -> bytes:
    """The bytes of the file at `path`, which must hold at most `limit` bytes: a regular file's
    size is checked before anything is read, and at most `limit` + 1 bytes are read in any case.
    DecodeError when it is larger; InputFileError when it cannot be read at all."""
    try:
        with path.open("rb") as f:
            info = os.fstat(f.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                size, most = size_text(info.st_size), size_text(limit)
                raise DecodeError(f"{what} {path} is {size}; at most {most} is accepted")
            data = f.read(limit + 1)
    except OSError as e:
        raise InputFileError(f"cannot read {what} {path}: {e.strerror or e}") from e
    if len(data) > limit:
        raise DecodeError(f"{what} {path} holds more than {size_text(limit)}, the most accepted")
    return data


class Sink(Protocol):
    """Where a writer puts its bytes: a binary file, or `output_file`'s file."""

    def write(self, data: bytes, /) -> int: ...


class OutputFile:
    """The file `output_file` yields: `write` puts bytes in its temporary file, and a failure
    (a full disk) is an OutputFileError naming the file asked for."""

    __slots__ = ("_file", "path")

    def __init__(self, file: BinaryIO, path: Path) -> None:
        self._file = file
        self.path = path

    def write(self, data: bytes, /) -> int:
        try:
            return self._file.write(data)
        except OSError as e:
            raise OutputFileError(f"cannot write {self.path}: {e.strerror or e}") from e


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISFIFO, "a pipe"),
    (stat.S_ISSOCK, "a socket"),
)


def _target(path: Path, force: bool, protected: Mapping[Path, str]) -> Path:
    """The real path `path` names (symbolic links followed), once it may be written."""
    real = Path(os.path.realpath(path))
    for place, what in protected.items():
        guarded = Path(os.path.realpath(place))
        if real == guarded or guarded in real.parents:
            shown = f"{path}" if real == Path(path).absolute() else f"{path} ({real})"
            where = "is" if real == guarded else "is inside"
            raise OutputFileError(f"{shown} {where} {what}: no command writes over it")
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        if os.path.islink(path) and not force:
            raise OutputFileError(
                f"{path} is a symbolic link to {real}, which does not exist: refusing to follow "
                "it without --force"
            ) from None
        return real
    except OSError as e:
        raise OutputFileError(f"cannot write {path}: {e.strerror or e}") from e
    for test, kind in _KINDS:
        if test(mode):
            raise OutputFileError(f"{path} is {kind}, not a regular file: refusing to write to it")
    if not stat.S_ISREG(mode):
        raise OutputFileError(f"{path} is not a regular file: refusing to write to it")
    if not force:
        raise OutputFileError(f"{path} already exists: refusing to replace it without --force")
    return real


@contextmanager
def output_file(
    path: Path,
    *,
    force: bool = False,
    private: bool = False,
    protected: Mapping[Path, str] | None = None,
) -> Iterator[OutputFile]:
    """Write the file `path` all at once or not at all. Yields a file to write; when the block
    ends without error, the data is flushed to disk and renamed into place. Refused before
    anything is written (OutputFileError): a path that exists, unless `force`; anything but a
    regular file; a path in `protected` (a path to what it is: "the ledger of home H") or below
    one. On any error or interrupt the temporary file is removed and the path is untouched.
    `private` files get mode 0600, others 0666 less the umask."""
    target = _target(path, force, protected or {})
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, 0o600 if private else 0o666)
    except OSError as e:
        raise OutputFileError(f"cannot write {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            yield OutputFile(f, path)
            try:
                f.flush()
                os.fsync(f.fileno())
            except OSError as e:
                raise OutputFileError(f"cannot write {path}: {e.strerror or e}") from e
        _rename(tmp, target, path, force)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _rename(tmp: Path, target: Path, path: Path, force: bool) -> None:
    """Put `tmp` in place at `target`; without `force`, never over a file made meanwhile."""
    try:
        if force:
            os.replace(tmp, target)
        else:
            _link_new(tmp, target)
        _sync_folder(target.parent)
    except FileExistsError:
        raise OutputFileError(
            f"{path} already exists: refusing to replace it without --force"
        ) from None
    except OSError as e:
        raise OutputFileError(f"cannot write {path}: {e.strerror or e}") from e


def _link_new(tmp: Path, target: Path) -> None:
    """Rename `tmp` to `target` unless `target` exists (FileExistsError)."""
    try:
        os.link(tmp, target)  # atomic, and fails if the target exists
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target)) from None
        os.replace(tmp, target)
    else:
        tmp.unlink()


def _sync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (where the system can flush a folder at all)."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write `data` to `path` through `output_file` with mode 0600, replacing a file only when
    told to."""
    with output_file(path, force=overwrite, private=True) as f:
        f.write(data)


# key files


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyFile:
    """What a key file holds once opened."""

    role: Role
    key: Keypair
    encrypted: bool
    data: bytes = field(repr=False)
    """The file's bytes, as read."""


def _aad(role: Role, public_key: bytes, kdf: dict[str, Any]) -> bytes:
    header = {"format": KEY_FORMAT, "role": role.value, "public_key": public_key.hex(), "kdf": kdf}
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def _derive(passphrase: bytes, kdf: dict[str, Any]) -> bytes:
    """scrypt of `passphrase` under the parameters `_kdf` has checked."""
    salt = bytes.fromhex(kdf["salt"])
    return Scrypt(salt=salt, length=32, n=kdf["n"], r=kdf["r"], p=kdf["p"]).derive(passphrase)


def seal_key(
    role: Role,
    key: Keypair,
    passphrase: bytes | None,
    *,
    salt: bytes = b"",
    nonce: bytes = b"",
    scrypt_n: int = SCRYPT_N,
) -> bytes:
    """The key file bytes for `key`; plaintext when `passphrase` is None (salt, nonce unused)."""
    head: dict[str, Any] = {
        "format": KEY_FORMAT,
        "role": role.value,
        "public_key": key.public_key.hex(),
    }
    if passphrase is None:
        body = {**head, "encrypted": False, "seed": key.seed.hex()}
    else:
        if not passphrase:
            raise KeyFileError("the passphrase is empty")
        if len(salt) != SALT_BYTES or len(nonce) != NONCE_BYTES:
            raise ValueError(f"salt must be {SALT_BYTES} bytes and nonce {NONCE_BYTES}")
        kdf = {"name": "scrypt", "n": scrypt_n, "r": SCRYPT_R, "p": SCRYPT_P, "salt": salt.hex()}
        sealed = ChaCha20Poly1305(_derive(passphrase, _kdf(kdf, "the new key file"))).encrypt(
            nonce, key.seed, _aad(role, key.public_key, kdf)
        )
        cipher = {"name": "chacha20-poly1305", "nonce": nonce.hex(), "ciphertext": sealed.hex()}
        body = {**head, "encrypted": True, "kdf": kdf, "cipher": cipher}
    return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()


Passphrase = bytes | Callable[[], bytes] | None
"""A passphrase, or a function asked for one only when the file is encrypted."""

_PLAIN_FIELDS = frozenset({"format", "role", "public_key", "encrypted", "seed"})
_SEALED_FIELDS = frozenset({"format", "role", "public_key", "encrypted", "kdf", "cipher"})
_KDF_FIELDS = frozenset({"name", "n", "r", "p", "salt"})
_CIPHER_FIELDS = frozenset({"name", "nonce", "ciphertext"})


def _fields(value: Any, fields: frozenset[str], what: str) -> dict[str, Any]:
    """`value` as an object with exactly `fields`, or a KeyFileError naming what differs."""
    if not isinstance(value, dict):
        raise KeyFileError(f"{what} must be a JSON object")
    missing, unknown = fields - value.keys(), value.keys() - fields
    if missing:
        raise KeyFileError(f"{what} lacks {', '.join(sorted(missing))}")
    if unknown:
        raise KeyFileError(f"{what} has unknown field {', '.join(sorted(unknown))}")
    return value


def _hex(value: Any, size: int, what: str) -> bytes:
    data = jsontext.hex_bytes(value, size)
    if data is None:
        raise KeyFileError(f"{what} must be {2 * size} hex digits")
    return data


def _kdf(value: Any, name: str) -> dict[str, Any]:
    """The key derivation parameters of key file `name`, checked: scrypt with n a power of two
    within SCRYPT_N_RANGE, r = 8, p = 1, a 16-byte salt."""
    kdf = _fields(value, _KDF_FIELDS, f"{name}: kdf")
    if kdf["name"] != "scrypt":
        raise KeyFileError(f"{name}: key derivation {kdf['name']!r} is not supported (scrypt is)")
    n, (low, high) = kdf["n"], SCRYPT_N_RANGE
    if type(n) is not int or not low <= n <= high or n & (n - 1):
        raise KeyFileError(f"{name}: scrypt n must be a power of two within 2^14..2^18, got {n!r}")
    for letter, expected in (("r", SCRYPT_R), ("p", SCRYPT_P)):
        if type(kdf[letter]) is not int or kdf[letter] != expected:
            raise KeyFileError(f"{name}: scrypt {letter} must be {expected}, got {kdf[letter]!r}")
    _hex(kdf["salt"], SALT_BYTES, f"{name}: kdf salt")
    return kdf


def open_key(data: bytes, passphrase: Passphrase, *, name: str = "key file") -> KeyFile:
    """Parse and, if sealed, decrypt key file bytes. Raises KeyFileError with the reason (its
    subclass WrongPassphrase when the passphrase does not open it); `name` names the file."""
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{name} of {len(data)} bytes is too large to be one")
    try:
        doc = jsontext.parse(data, name, max_depth=2)
    except DecodeError as e:
        raise KeyFileError(str(e)) from e
    if not isinstance(doc, dict) or doc.get("format") != KEY_FORMAT:
        raise KeyFileError(f"{name} is not a Commons key file (its format is not {KEY_FORMAT!r})")
    encrypted = doc.get("encrypted")
    if type(encrypted) is not bool:
        raise KeyFileError(f"{name}: 'encrypted' must be true or false")
    _fields(doc, _SEALED_FIELDS if encrypted else _PLAIN_FIELDS, name)
    roles = {r.value: r for r in Role}
    if doc["role"] not in roles:
        raise KeyFileError(f"{name}: role must be one of {', '.join(roles)}")
    role = roles[doc["role"]]
    public_key = _hex(doc["public_key"], PUBLIC_KEY_BYTES, f"{name}: public_key")
    if encrypted:
        kdf = _kdf(doc["kdf"], name)
        cipher = _fields(doc["cipher"], _CIPHER_FIELDS, f"{name}: cipher")
        if cipher["name"] != "chacha20-poly1305":
            raise KeyFileError(f"{name}: cipher {cipher['name']!r} is not supported")
        nonce = _hex(cipher["nonce"], NONCE_BYTES, f"{name}: cipher nonce")
        sealed = _hex(cipher["ciphertext"], SEED_BYTES + 16, f"{name}: ciphertext")
        if passphrase is None:
            raise KeyFileError(f"{name} is encrypted: a passphrase is needed")
        if callable(passphrase):
            passphrase = passphrase()
        try:
            seed = ChaCha20Poly1305(_derive(passphrase, kdf)).decrypt(
                nonce, sealed, _aad(role, public_key, kdf)
            )
        except InvalidTag as e:
            raise WrongPassphrase(f"wrong passphrase for {name}, or the file was altered") from e
    else:
        seed = _hex(doc["seed"], SEED_BYTES, f"{name}: seed")
    key = Keypair.from_seed(seed)
    if key.public_key != public_key:
        raise KeyFileError(f"{name}: its public key does not match its secret key")
    return KeyFile(role=role, key=key, encrypted=encrypted, data=data)


def read_public_key(path: Path) -> bytes:
    """The public key a key file names, read without its passphrase (not checked against the
    secret key: `read_key_file` does that when the key signs)."""
    name = f"key file {path}"
    try:
        doc = jsontext.parse(read_limited(path, MAX_KEY_FILE_BYTES, "key file"), name, max_depth=2)
    except DecodeError as e:
        raise KeyFileError(str(e)) from e
    if not isinstance(doc, dict) or doc.get("format") != KEY_FORMAT:
        raise KeyFileError(f"{name} is not a Commons key file (its format is not {KEY_FORMAT!r})")
    return _hex(doc.get("public_key"), PUBLIC_KEY_BYTES, f"{name}: public_key")


def read_key_file(path: Path, passphrase: Passphrase) -> KeyFile:
    """Open the key file at `path` (at most MAX_KEY_FILE_BYTES are read)."""
    try:
        data = read_limited(path, MAX_KEY_FILE_BYTES, "key file")
    except DecodeError as e:
        raise KeyFileError(str(e)) from e
    return open_key(data, passphrase, name=f"key file {path}")


# bundles


BUNDLE_MAGIC = b"COMMONS-BUNDLE-1\n"
MAX_FRAME_BYTES = MAX_BLOCK_BYTES + 64
_FRAME_KINDS = ("genesis", "block", "commit")


def write_bundle(
    out: Sink, genesis: Genesis, blocks: Iterable[Block], commit: Commit | None
) -> int:
    """Write a bundle to `out` (from `output_file`, which makes it appear all at once); return
    the number of blocks written."""
    out.write(BUNDLE_MAGIC)
    out.write(bundle_frame("genesis", genesis.to_json()))
    count = 0
    for block in blocks:
        out.write(bundle_frame("block", block.encode()))
        count += 1
    if commit is not None:
        out.write(bundle_frame("commit", encode_commit(commit)))
    return count


def bundle_frame(kind: str, data: bytes) -> bytes:
    """One frame of a bundle (PROTOCOL §12): a 4-byte big-endian length, then {kind, data}."""
    body = codec.encode({"kind": kind, "data": data})
    return len(body).to_bytes(4, "big") + body


@dataclass(frozen=True, slots=True, kw_only=True)
class Bundle:
    """An opened bundle: its genesis, then `blocks()` streams the blocks; `commit` is set once
    the stream has ended."""

    genesis: Genesis
    _frames: Generator[tuple[str, bytes], None, None]
    _end: list[Commit]

    def raw_blocks(self) -> Iterator[RawBlock]:
        """The blocks in order, records as bytes (for checking on several cores); an unreadable
        one is named by its height (or the last before). The file is closed when the blocks run
        out or this generator is closed."""
        try:
            yield from self._read_blocks()
        finally:
            self.close()

    def blocks(self) -> Iterator[Block]:
        """The blocks in order, each record parsed and schema-checked."""
        for raw in self.raw_blocks():
            yield raw.parse()

    def close(self) -> None:
        self._frames.close()

    def _read_blocks(self) -> Iterator[RawBlock]:
        read = 0
        frames = self._frames
        while True:
            try:
                item = next(frames, None)
            except DecodeError as e:
                raise DecodeError(f"after block {read}: {e}", rule=Rule.BUNDLE) from e
            if item is None:
                return
            kind, data = item
            try:
                if kind == "block":
                    block = decode_raw_block(data)
                elif kind == "commit":
                    self._end.append(decode_commit(data))
                    continue
                else:
                    raise DecodeError(f"bundle has a second {kind} frame")
            except InvalidData as e:
                if kind == "block":
                    raise DecodeError(
                        f"block {read + 1}: {e}", rule=Rule.BLOCK_ENCODING, height=read + 1
                    ) from e
                raise DecodeError(f"after block {read}: {e}", rule=Rule.BUNDLE) from e
            read += 1
            yield block

    @property
    def commit(self) -> Commit | None:
        return self._end[0] if self._end else None


def open_bundle(path: Path) -> Bundle:
    """Open a bundle for streaming. Raises InputFileError if unreadable, DecodeError if
    malformed."""
    try:
        f = path.open("rb")
    except OSError as e:
        raise InputFileError(f"cannot read bundle {path}: {e.strerror or e}") from e
    frames = _frames(f, path)
    try:
        kind, data = next(frames, ("", b""))
        genesis = Genesis.from_json(data) if kind == "genesis" else None
    except BaseException:
        frames.close()
        f.close()
        raise
    if genesis is None:
        frames.close()
        f.close()
        raise DecodeError(f"bundle {path} does not start with a genesis", rule=Rule.BUNDLE)
    return Bundle(genesis=genesis, _frames=frames, _end=[])


def _frames(f: BinaryIO, path: Path) -> Generator[tuple[str, bytes], None, None]:
    with f:
        if f.read(len(BUNDLE_MAGIC)) != BUNDLE_MAGIC:
            raise DecodeError(f"{path} is not a Commons bundle", rule=Rule.BUNDLE)
        seen_commit = False
        index = 0
        while head := f.read(4):
            if len(head) < 4:
                raise DecodeError(f"bundle {path} ends inside a frame length", rule=Rule.BUNDLE)
            size = int.from_bytes(head, "big")
            if size > MAX_FRAME_BYTES:
                raise DecodeError(
                    f"bundle frame of {size} bytes exceeds {MAX_FRAME_BYTES}", rule=Rule.BUNDLE
                )
            body = f.read(size)
            if len(body) < size:
                raise DecodeError(
                    f"bundle {path} is truncated: a frame lacks {size - len(body)} bytes",
                    rule=Rule.BUNDLE,
                )
            if seen_commit:
                raise DecodeError(
                    f"bundle {path} has frames after its final commit", rule=Rule.BUNDLE
                )
            try:
                m = codec.decode(body, max_size=MAX_FRAME_BYTES)
                schema.exact_keys(m, "bundle frame", frozenset({"kind", "data"}), frozenset())
            except InvalidData as e:
                raise DecodeError(
                    f"bundle {path}: frame {index} is malformed: {e}", rule=Rule.BUNDLE
                ) from e
            index += 1
            kind = m["kind"]
            if kind not in _FRAME_KINDS or type(m["data"]) is not bytes:
                raise DecodeError(f"bundle frame of unknown kind {kind!r}", rule=Rule.BUNDLE)
            if kind == "genesis" and len(m["data"]) > MAX_GENESIS_BYTES:
                raise DecodeError("bundle genesis frame is too large", rule=Rule.BUNDLE)
            seen_commit = kind == "commit"
            yield kind, m["data"]
