"""Key files and bundles on disk: the ledger's one module (with store.py) that touches files.

A bundle is a whole ledger in one file, for auditors and for moving a ledger between machines:
the magic line `COMMONS-BUNDLE-1\n`, then frames of a 4-byte big-endian length and a canonical map
`{kind, data}`: first the genesis (its JSON), then every block in height order, then the tip's
commit certificate. Frames are bounded before they are read.

A key file is JSON holding one role's Ed25519 seed, sealed with ChaCha20-Poly1305 under a key
derived from a passphrase by scrypt. The role, public key and KDF parameters are authenticated
as associated data, so none can be swapped without the passphrase. Plaintext key files exist only
when asked for explicitly. Files are written atomically with mode 0600.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ledger import codec, schema
from ledger.block import (
    MAX_BLOCK_BYTES,
    Block,
    Commit,
    RawBlock,
    decode_commit,
    decode_raw_block,
    encode_commit,
)
from ledger.crypto import SEED_BYTES, Keypair, Role
from ledger.errors import DecodeError, InvalidData, KeyFileError, LocalError
from ledger.genesis import MAX_GENESIS_BYTES, Genesis

KEY_FORMAT = "commons-key-v1"
SCRYPT_N = 2**17  # 128 MiB, about half a second: OWASP's floor for scrypt
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
NONCE_BYTES = 12
MAX_KEY_FILE_BYTES = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyFile:
    """What a key file holds once opened."""

    role: Role
    key: Keypair
    encrypted: bool


def _aad(role: Role, public_key: bytes, kdf: dict[str, Any]) -> bytes:
    header = {"format": KEY_FORMAT, "role": role.value, "public_key": public_key.hex(), "kdf": kdf}
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def _derive(passphrase: bytes, kdf: dict[str, Any]) -> bytes:
    try:
        salt = bytes.fromhex(kdf["salt"])
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        if kdf["name"] != "scrypt" or not (2**14 <= n <= 2**18 and r == SCRYPT_R and p == SCRYPT_P):
            raise KeyFileError(f"unsupported key derivation {kdf!r}")
        return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)
    except (KeyError, TypeError, ValueError) as e:
        raise KeyFileError(f"malformed key derivation parameters: {e}") from e


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
        sealed = ChaCha20Poly1305(_derive(passphrase, kdf)).encrypt(
            nonce, key.seed, _aad(role, key.public_key, kdf)
        )
        cipher = {"name": "chacha20-poly1305", "nonce": nonce.hex(), "ciphertext": sealed.hex()}
        body = {**head, "encrypted": True, "kdf": kdf, "cipher": cipher}
    return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()


Passphrase = bytes | Callable[[], bytes] | None
"""A passphrase, or a function asked for one only when the file is encrypted."""


def open_key(data: bytes, passphrase: Passphrase) -> KeyFile:
    """Parse and, if sealed, decrypt key file bytes. Raises KeyFileError with the reason."""
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"key file of {len(data)} bytes is too large to be one")
    try:
        doc = json.loads(data)
        if doc["format"] != KEY_FORMAT:
            raise KeyFileError(f"not a Commons key file (format {doc['format']!r})")
        role = Role(doc["role"])
        public_key = bytes.fromhex(doc["public_key"])
        if doc["encrypted"]:
            if passphrase is None:
                raise KeyFileError("this key file is encrypted: a passphrase is needed")
            if callable(passphrase):
                passphrase = passphrase()
            kdf, cipher = doc["kdf"], doc["cipher"]
            if cipher["name"] != "chacha20-poly1305":
                raise KeyFileError(f"unsupported cipher {cipher['name']!r}")
            seed = ChaCha20Poly1305(_derive(passphrase, kdf)).decrypt(
                bytes.fromhex(cipher["nonce"]),
                bytes.fromhex(cipher["ciphertext"]),
                _aad(role, public_key, kdf),
            )
        else:
            seed = bytes.fromhex(doc["seed"])
    except InvalidTag as e:
        raise KeyFileError("wrong passphrase, or the key file was altered") from e
    except (KeyError, TypeError, ValueError) as e:
        raise KeyFileError(f"malformed key file: {e!r}") from e
    if len(seed) != SEED_BYTES:
        raise KeyFileError(f"key file seed must be {SEED_BYTES} bytes, got {len(seed)}")
    key = Keypair.from_seed(seed)
    if key.public_key != public_key:
        raise KeyFileError("key file's public key does not match its secret key")
    return KeyFile(role=role, key=key, encrypted=bool(doc["encrypted"]))


def write_private(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write `data` to `path` atomically with mode 0600, refusing to replace a file unless told."""
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path} already exists; refusing to overwrite it")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as e:
        raise KeyFileError(f"cannot write {path}: {e.strerror or e}") from e


def read_key_file(path: Path, passphrase: Passphrase) -> KeyFile:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"cannot read key file {path}: {e.strerror or e}") from e
    return open_key(data, passphrase)


BUNDLE_MAGIC = b"COMMONS-BUNDLE-1\n"
MAX_FRAME_BYTES = MAX_BLOCK_BYTES + 64
_FRAME_KINDS = ("genesis", "block", "commit")


class BundleError(LocalError):
    """A bundle file cannot be read or written (as opposed to holding an invalid ledger)."""


def write_bundle(
    path: Path, genesis: Genesis, blocks: Iterable[Block], commit: Commit | None
) -> int:
    """Write a bundle atomically; return the number of blocks written."""
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    try:
        with tmp.open("wb") as f:
            f.write(BUNDLE_MAGIC)
            f.write(_frame("genesis", genesis.to_json()))
            for block in blocks:
                f.write(_frame("block", block.encode()))
                count += 1
            if commit is not None:
                f.write(_frame("commit", encode_commit(commit)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise BundleError(f"cannot write bundle {path}: {e.strerror or e}") from e
    return count


def _frame(kind: str, data: bytes) -> bytes:
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
                raise DecodeError(f"after block {read}: {e}") from e
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
                what = f"block {read + 1}" if kind == "block" else f"after block {read}"
                raise DecodeError(f"{what}: {e}") from e
            read += 1
            yield block

    @property
    def commit(self) -> Commit | None:
        return self._end[0] if self._end else None


def open_bundle(path: Path) -> Bundle:
    """Open a bundle for streaming. Raises BundleError if unreadable, DecodeError if malformed."""
    try:
        f = path.open("rb")
    except OSError as e:
        raise BundleError(f"cannot read bundle {path}: {e.strerror or e}") from e
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
        raise DecodeError(f"bundle {path} does not start with a genesis")
    return Bundle(genesis=genesis, _frames=frames, _end=[])


def _frames(f: BinaryIO, path: Path) -> Generator[tuple[str, bytes], None, None]:
    with f:
        if f.read(len(BUNDLE_MAGIC)) != BUNDLE_MAGIC:
            raise DecodeError(f"{path} is not a Commons bundle")
        seen_commit = False
        index = 0
        while head := f.read(4):
            if len(head) < 4:
                raise DecodeError(f"bundle {path} ends inside a frame length")
            size = int.from_bytes(head, "big")
            if size > MAX_FRAME_BYTES:
                raise DecodeError(f"bundle frame of {size} bytes exceeds {MAX_FRAME_BYTES}")
            body = f.read(size)
            if len(body) < size:
                raise DecodeError(
                    f"bundle {path} is truncated: a frame lacks {size - len(body)} bytes"
                )
            if seen_commit:
                raise DecodeError(f"bundle {path} has frames after its final commit")
            try:
                m = codec.decode(body, max_size=MAX_FRAME_BYTES)
                schema.exact_keys(m, "bundle frame", frozenset({"kind", "data"}), frozenset())
            except InvalidData as e:
                raise DecodeError(f"bundle {path}: frame {index} is malformed: {e}") from e
            index += 1
            kind = m["kind"]
            if kind not in _FRAME_KINDS or type(m["data"]) is not bytes:
                raise DecodeError(f"bundle frame of unknown kind {kind!r}")
            if kind == "genesis" and len(m["data"]) > MAX_GENESIS_BYTES:
                raise DecodeError("bundle genesis frame is too large")
            seen_commit = kind == "commit"
            yield kind, m["data"]
