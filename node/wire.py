"""What travels between peers (docs/PROTOCOL.md §16): the handshake, the push frames of a peer
connection, and the bodies of the pull requests. Bytes in, values out; no sockets here.

A peer connection is a WebSocket whose first three binary messages are the handshake:

1. initiator → `hello {key, network, nonce, type, version}`
2. responder → `hello {key, network, nonce, sig, type, version}`
3. initiator → `auth {sig, type}`

Each side signs, under `commons/handshake/v1` and the network id, the canonical map
`{initiator, initiator_nonce, responder, responder_nonce, role}` (`role` its own: "initiator" or
"responder"): both keys and both fresh nonces, never bytes the other side alone chose, and the
role so that a signature cannot be reflected back. A responder refuses a hello of another network
or version before reading anything else. After the handshake every message is a push frame
`{data: [bin, ...], type}`: one or more payloads of one type, `records` (records' exact bytes),
`consensus` (consensus messages' exact bytes, node/consensus/messages.py), `have` (ids of records
the sender holds) or `want` (ids of records it asks for), so that under load one WebSocket message
carries many.

Every decoder here bounds the size before parsing and raises `WireError` (bad remote data) with
the reason; nothing else in the node parses peer bytes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ledger import codec, schema
from ledger.block import Commit, RawBlock, decode_commit, decode_raw_block, encode_commit
from ledger.crypto import HASH_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, Keypair, Tag, verify_tagged
from ledger.errors import InvalidData
from ledger.records import MAX_EVIDENCE_BYTES, Record, decode_record
from node.consensus.messages import MAX_MESSAGE_BYTES
from node.errors import WireError

PROTOCOL_VERSION = 3
"""Version 1 carried one payload per push frame; version 2 a list; version 3 adds the `have` and
`want` frames of record ids (PROTOCOL §16)."""
NONCE_BYTES = 32
MAX_HANDSHAKE_BYTES = 512
MAX_FRAME_BYTES = MAX_MESSAGE_BYTES + 64
"""The largest push frame: a proposal carrying the largest block, plus the frame's own keys."""
MAX_PULL_BYTES = MAX_FRAME_BYTES + 64
BLOCKS_ANSWER_BYTES = 64 * 1024 * 1024
"""A `/p2p/blocks` answer stops after the block that takes it past this many bytes."""
MAX_BLOCKS_ANSWER_BYTES = BLOCKS_ANSWER_BYTES + MAX_PULL_BYTES + 4


FRAME_FILL_BYTES = 1024 * 1024
"""A sender starts a new frame rather than take one past this many payload bytes (a payload
larger than this goes alone)."""


class Push(enum.Enum):
    RECORDS = "records"
    CONSENSUS = "consensus"
    HAVE = "have"
    WANT = "want"


_MAX_DATA = {
    Push.RECORDS: MAX_EVIDENCE_BYTES,
    Push.CONSENSUS: MAX_MESSAGE_BYTES,
    Push.HAVE: HASH_BYTES,
    Push.WANT: HASH_BYTES,
}
_IDS = frozenset({Push.HAVE, Push.WANT})
"""Frames whose payloads are record ids, each exactly HASH_BYTES."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    key: bytes
    network: bytes
    nonce: bytes
    version: int = PROTOCOL_VERSION
    sig: bytes | None = None

    def encode(self) -> bytes:
        m: dict[str, Any] = {
            "type": "hello",
            "version": self.version,
            "network": self.network,
            "key": self.key,
            "nonce": self.nonce,
        }
        if self.sig is not None:
            m["sig"] = self.sig
        return codec.encode(m)


def handshake_body(
    *, initiator: bytes, responder: bytes, initiator_nonce: bytes, responder_nonce: bytes, role: str
) -> bytes:
    """What each side of a handshake signs under `commons/handshake/v1`."""
    return codec.encode(
        {
            "initiator": initiator,
            "initiator_nonce": initiator_nonce,
            "responder": responder,
            "responder_nonce": responder_nonce,
            "role": role,
        }
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """Both hellos of one handshake: what each side signs follows from them."""

    network: bytes
    initiator: Hello
    responder: Hello

    def body(self, role: str) -> bytes:
        return handshake_body(
            initiator=self.initiator.key,
            responder=self.responder.key,
            initiator_nonce=self.initiator.nonce,
            responder_nonce=self.responder.nonce,
            role=role,
        )

    def sign(self, key: Keypair, role: str) -> bytes:
        return key.sign(Tag.HANDSHAKE, self.network, self.body(role))

    def verify(self, role: str, sig: bytes) -> None:
        """Raise WireError unless `sig` is the `role` side's signature of this session."""
        signer = self.initiator.key if role == "initiator" else self.responder.key
        try:
            verify_tagged(signer, Tag.HANDSHAKE, self.network, self.body(role), sig)
        except InvalidData as e:
            raise WireError(f"handshake: the {role}'s signature does not verify") from e


def _decode_map(data: bytes, what: str, max_size: int) -> dict[str, Any]:
    if len(data) > max_size:
        raise WireError(f"{what} of {len(data)} bytes exceeds {max_size}")
    try:
        m = codec.decode(data, max_size=max_size)
    except InvalidData as e:
        raise WireError(f"{what} does not decode: {e}") from e
    if not isinstance(m, dict):
        raise WireError(f"{what} is not a map")
    return m


def decode_hello(data: bytes, *, network: bytes, signed: bool) -> Hello:
    """A peer's hello, refused unless it is of `network` and this protocol version."""
    m = _decode_map(data, "hello", MAX_HANDSHAKE_BYTES)
    try:
        keys = {"type", "version", "network", "key", "nonce"}
        schema.exact_keys(m, "hello", frozenset(keys | ({"sig"} if signed else set())), frozenset())
        if m["type"] != "hello":
            raise WireError(f"expected a hello, got {m['type']!r}")
        version = schema.integer(m["version"], "hello.version", 0, schema.MAX_INT)
        hello = Hello(
            version=version,
            network=schema.fixed_bytes(m["network"], "hello.network", HASH_BYTES),
            key=schema.fixed_bytes(m["key"], "hello.key", PUBLIC_KEY_BYTES),
            nonce=schema.fixed_bytes(m["nonce"], "hello.nonce", NONCE_BYTES),
            sig=schema.fixed_bytes(m["sig"], "hello.sig", SIGNATURE_BYTES) if signed else None,
        )
    except InvalidData as e:
        raise WireError(f"malformed hello: {e}") from e
    if hello.network != network:
        raise WireError(f"peer is on network {hello.network.hex()[:16]}, not {network.hex()[:16]}")
    if hello.version != PROTOCOL_VERSION:
        raise WireError(f"peer speaks protocol version {version}, this node {PROTOCOL_VERSION}")
    return hello


def encode_auth(sig: bytes) -> bytes:
    return codec.encode({"type": "auth", "sig": sig})


def decode_auth(data: bytes) -> bytes:
    m = _decode_map(data, "auth", MAX_HANDSHAKE_BYTES)
    try:
        schema.exact_keys(m, "auth", frozenset({"type", "sig"}), frozenset())
        if m["type"] != "auth":
            raise WireError(f"expected auth, got {m['type']!r}")
        return schema.fixed_bytes(m["sig"], "auth.sig", SIGNATURE_BYTES)
    except InvalidData as e:
        raise WireError(f"malformed auth: {e}") from e


def encode_push(kind: Push, payloads: Sequence[bytes]) -> bytes:
    return codec.encode({"type": kind.value, "data": list(payloads)})


def decode_push(frame: bytes) -> tuple[Push, tuple[bytes, ...]]:
    """A push frame's kind and payloads (each still to be decoded by its own decoder)."""
    m = _decode_map(frame, "frame", MAX_FRAME_BYTES)
    try:
        schema.exact_keys(m, "frame", frozenset({"type", "data"}), frozenset())
        kind = Push(m["type"])
    except (InvalidData, ValueError) as e:
        raise WireError(f"malformed frame: {e}") from e
    payloads = m["data"]
    limit = _MAX_DATA[kind]
    if type(payloads) is not tuple or not payloads:
        raise WireError(f"{kind.value} frame data is not a list of 1 or more payloads")
    if kind in _IDS:
        if any(type(p) is not bytes or len(p) != HASH_BYTES for p in payloads):
            raise WireError(f"{kind.value} frame data is not record ids of {HASH_BYTES} bytes")
    elif any(type(p) is not bytes or len(p) > limit for p in payloads):
        raise WireError(f"{kind.value} frame data is not 1 or more bytes of at most {limit} each")
    return kind, payloads


# pulls: bodies of the HTTP answers between peers


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerStatus:
    """`GET /p2p/status`: where a node stands."""

    network: bytes
    height: int
    tip: bytes
    time: int
    key: bytes

    def encode(self) -> bytes:
        return codec.encode(
            {
                "network": self.network,
                "height": self.height,
                "tip": self.tip,
                "time": self.time,
                "key": self.key,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> PeerStatus:
        m = _decode_map(data, "status", MAX_HANDSHAKE_BYTES)
        try:
            keys = frozenset({"network", "height", "tip", "time", "key"})
            schema.exact_keys(m, "status", keys, frozenset())
            return cls(
                network=schema.fixed_bytes(m["network"], "status.network", HASH_BYTES),
                height=schema.integer(m["height"], "status.height", 0, schema.MAX_INT),
                tip=schema.fixed_bytes(m["tip"], "status.tip", HASH_BYTES),
                time=schema.integer(m["time"], "status.time", 0, schema.MAX_INT),
                key=schema.fixed_bytes(m["key"], "status.key", PUBLIC_KEY_BYTES),
            )
        except InvalidData as e:
            raise WireError(f"malformed status: {e}") from e


def encode_certified(block: RawBlock, commit: Commit) -> bytes:
    """One frame of a `GET /p2p/blocks` answer: a 4-byte big-endian length, then
    `{block: bin, commit: bin}`."""
    body = codec.encode({"block": block.encode(), "commit": encode_commit(commit)})
    return len(body).to_bytes(4, "big") + body


def decode_certified(stream: bytes) -> list[tuple[RawBlock, Commit]]:
    """Every (block, certificate) of a `GET /p2p/blocks` answer, in order."""
    out: list[tuple[RawBlock, Commit]] = []
    for frame in _length_prefixed(stream, "blocks answer", MAX_PULL_BYTES):
        m = _decode_map(frame, "blocks answer frame", MAX_PULL_BYTES)
        try:
            schema.exact_keys(m, "certified block", frozenset({"block", "commit"}), frozenset())
            if type(m["block"]) is not bytes or type(m["commit"]) is not bytes:
                raise WireError("certified block: block and commit must be bytes")
            out.append((decode_raw_block(m["block"]), decode_commit(m["commit"])))
        except InvalidData as e:
            raise WireError(f"malformed certified block: {e}") from e
    return out


def encode_records(raws: Iterable[bytes]) -> bytes:
    """A `GET /p2p/records` answer: each record's exact bytes after its 4-byte length."""
    return b"".join(len(raw).to_bytes(4, "big") + raw for raw in raws)


def decode_records(stream: bytes) -> list[Record]:
    """Every record of a `GET /p2p/records` answer, in order (signatures not checked)."""
    try:
        return [
            decode_record(raw)
            for raw in _length_prefixed(stream, "records answer", MAX_EVIDENCE_BYTES)
        ]
    except InvalidData as e:
        raise WireError(f"malformed records answer: {e}") from e


def _length_prefixed(stream: bytes, what: str, limit: int) -> Iterator[bytes]:
    """The frames of `stream`, each after its 4-byte big-endian length of at most `limit`."""
    at = 0
    while at < len(stream):
        if len(stream) - at < 4:
            raise WireError(f"{what} ends inside a frame length")
        size = int.from_bytes(stream[at : at + 4], "big")
        if size > limit or at + 4 + size > len(stream):
            raise WireError(f"{what} has a frame of {size} bytes past its end or limit")
        yield stream[at + 4 : at + 4 + size]
        at += 4 + size
