"""Ed25519 keys, domain-separated signing bytes, and the one signature check of the protocol.

Every signature in Commons signs `signing_bytes(tag, network_id, body)`: a per-message-type tag,
the network id (the genesis hash) and the message body, so no signature is valid for another
message type or another community. `verify` is libsodium's strict verification (PyNaCl), the only
verdict every node and auditor must share; OpenSSL disagrees with it on crafted signatures.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field

import nacl.bindings
import nacl.exceptions

from ledger.errors import SignatureError

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
SEED_BYTES = 32
HASH_BYTES = 32


class Tag(enum.Enum):
    """Domain tags: one per signed message type."""

    RECORD = "commons/record/v1"
    PROPOSAL = "commons/proposal/v1"
    PREVOTE = "commons/prevote/v1"
    PRECOMMIT = "commons/precommit/v1"
    HANDSHAKE = "commons/handshake/v1"


class Role(enum.Enum):
    """What a key is for. One person may hold all three; each is its own key."""

    MEMBER = "member"  # signs records
    VALIDATOR = "validator"  # signs consensus messages
    NODE = "node"  # authenticates peer connections


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


_PREFIX = {tag: tag.value.encode("ascii") + b"\x00" for tag in Tag}


def signing_bytes(tag: Tag, network_id: bytes, body: bytes) -> bytes:
    """The exact bytes a signature covers: tag, NUL, 32-byte network id, body."""
    if len(network_id) != HASH_BYTES:
        raise ValueError(f"network id must be {HASH_BYTES} bytes, got {len(network_id)}")
    return _PREFIX[tag] + network_id + body


def verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Strict Ed25519 verification. Raises SignatureError; returns None when valid."""
    _open(public_key, signature + message, signature)


def _open(public_key: bytes, signed: bytes, signature: bytes) -> None:
    """libsodium's strict check of `signed` = signature || message."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise SignatureError(f"public key must be {PUBLIC_KEY_BYTES} bytes, got {len(public_key)}")
    if len(signature) != SIGNATURE_BYTES:
        raise SignatureError(f"signature must be {SIGNATURE_BYTES} bytes, got {len(signature)}")
    try:
        nacl.bindings.crypto_sign_open(signed, public_key)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as e:
        raise SignatureError(f"bad signature by {public_key.hex()[:16]}") from e


def verify_tagged(
    public_key: bytes, tag: Tag, network_id: bytes, body: bytes, signature: bytes
) -> None:
    """`verify` of `signing_bytes(tag, network_id, body)`, building the bytes only once."""
    if len(network_id) != HASH_BYTES:
        raise ValueError(f"network id must be {HASH_BYTES} bytes, got {len(network_id)}")
    _open(public_key, b"".join((signature, _PREFIX[tag], network_id, body)), signature)


_FIELD_PRIME = 2**255 - 19
_IDENTITY = b"\x01" + bytes(31)


def public_key_problem(public_key: bytes) -> str | None:
    """Why `verify` rejects every signature under `public_key` whatever the message, or None if
    some signature can verify. These are libsodium's checks of the key itself, made before any
    signature is looked at: a canonical encoding (y below 2^255-19), a point on the curve, not
    of small order (the identity, all zeros and the other six points of order 2, 4 or 8). A key
    with only a small-order component is not refused: libsodium verifies signatures under it."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        return f"it is {len(public_key)} bytes, not {PUBLIC_KEY_BYTES}"
    if int.from_bytes(public_key, "little") & (2**255 - 1) >= _FIELD_PRIME:
        return "it is not a canonical encoding of a point (y is 2^255-19 or more)"
    try:
        point = nacl.bindings.crypto_core_ed25519_add(public_key, public_key)
    except nacl.exceptions.CryptoError:
        return "it is not a point on the Ed25519 curve"
    for _ in range(2):  # 2 · 2 · 2: the point times the cofactor 8
        point = nacl.bindings.crypto_core_ed25519_add(point, point)
    if point == _IDENTITY:
        return "it is a point of small order (the identity, all zeros, or another of order 2, 4, 8)"
    return None


@dataclass(frozen=True, slots=True)
class Keypair:
    """An Ed25519 key. Build with `from_seed`; the seed never appears in repr."""

    seed: bytes = field(repr=False)
    public_key: bytes = field(init=False)
    _secret: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_BYTES:
            raise ValueError(f"seed must be {SEED_BYTES} bytes, got {len(self.seed)}")
        public, secret = nacl.bindings.crypto_sign_seed_keypair(self.seed)
        object.__setattr__(self, "public_key", public)
        object.__setattr__(self, "_secret", secret)

    @classmethod
    def from_seed(cls, seed: bytes) -> Keypair:
        return cls(seed)

    def sign(self, tag: Tag, network_id: bytes, body: bytes) -> bytes:
        signed = nacl.bindings.crypto_sign(signing_bytes(tag, network_id, body), self._secret)
        return bytes(signed[:SIGNATURE_BYTES])
