"""Records, equivocation evidence and feeds (`ledger.records`, `ledger.feed`).

DESIGN.md "Records": a record is a canonical MessagePack map signed by a member key for one
network; its id is the SHA-256 of the bytes received; every author's records form a hash-linked
feed; a second record at a finalized (author, seq) enters only as verifiable evidence. The tests
use real Ed25519 keys from fixed seeds and a fixed network id. Each schema limit is tested at the
limit (accepted) and one past it (refused with a SchemaError naming the field), both through the
dataclasses and through hand-built wire maps; properties check that any valid record round-trips
and that any flipped bit is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ledger import codec
from ledger.crypto import Keypair, Tag, sha256
from ledger.errors import (
    DecodeError,
    EvidenceError,
    FeedError,
    InvalidData,
    SchemaError,
    SignatureError,
)
from ledger.feed import EMPTY_HEAD, FeedHead, extend
from ledger.records import (
    MAX_EVIDENCE_BYTES,
    MAX_RECORD_BYTES,
    MAX_SEQ,
    MAX_TIMESTAMP,
    ZERO_HASH,
    Body,
    Contribution,
    Endorsement,
    Equivocation,
    Identity,
    Record,
    decode_record,
    decode_verified,
    sign_record,
)

NETWORK = sha256(b"commons test network")
OTHER_NETWORK = sha256(b"another community")
ALICE = Keypair.from_seed(bytes([1]) * 32)
BOB = Keypair.from_seed(bytes([2]) * 32)
CAROL = Keypair.from_seed(bytes([3]) * 32)
T0 = 1_700_000_000_000  # ms since the epoch
SOME_ID = sha256(b"some earlier record")
MAX_INT = 2**53 - 1

INVALID_RECORD = (DecodeError, SchemaError, SignatureError)


def make(
    body: Body,
    *,
    key: Keypair = ALICE,
    seq: int = 1,
    prev: bytes | None = None,
    timestamp: int = T0,
    network: bytes = NETWORK,
) -> Record:
    """A signed record; `prev` defaults to the zero hash at seq 1 and SOME_ID after."""
    if prev is None:
        prev = ZERO_HASH if seq == 1 else SOME_ID
    return sign_record(key, network, seq=seq, prev=prev, timestamp=timestamp, body=body)


def wire_of(record: Record) -> dict[str, Any]:
    """The decoded envelope of `record` as a mutable dict (its body a mutable dict too)."""
    m = dict(codec.decode(record.raw, max_size=MAX_EVIDENCE_BYTES))
    m["body"] = dict(m["body"])
    return m


def signed_wire(m: dict[str, Any], key: Keypair = ALICE) -> bytes:
    """Encode an envelope map with a fresh, valid signature, so only the schema can object."""
    unsigned = {k: v for k, v in m.items() if k != "sig"}
    return codec.encode({**unsigned, "sig": key.sign(Tag.RECORD, NETWORK, codec.encode(unsigned))})


def _utf8_text(lo: int, hi: int, *, multiline: bool = False) -> st.SearchStrategy[str]:
    """Text of `lo`..`hi` UTF-8 bytes without control characters (multi-line: tab and newline)."""
    chars = st.characters(
        codec="utf-8", exclude_categories=["Cc"], include_characters="\t\n" if multiline else ""
    )
    # Cut at `hi` bytes on a character boundary; the first character always survives (hi >= 4).
    return st.text(chars, min_size=lo, max_size=hi).map(
        lambda s: s.encode()[:hi].decode("utf-8", "ignore")
    )


identities = st.builds(Identity, name=_utf8_text(1, 64))
contributions = st.builds(
    Contribution,
    title=_utf8_text(1, 200),
    kind=st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=32),
    refs=st.lists(_utf8_text(1, 512), max_size=16).map(tuple),
    description=_utf8_text(0, 4096, multiline=True),
    hours=st.none() | st.integers(0, 100_000),
    size=st.none() | st.integers(0, MAX_INT),
)
endorsements = st.builds(
    Endorsement,
    contribution=st.binary(min_size=32, max_size=32),
    comment=_utf8_text(0, 1024, multiline=True),
)
bodies = identities | contributions | endorsements


@st.composite
def records(draw: st.DrawFn) -> Record:
    body = draw(bodies)
    # Leave room for the envelope (under 256 bytes); limits near 8192 have their own tests.
    assume(len(codec.encode(body.to_wire())) <= MAX_RECORD_BYTES - 256)
    key = draw(st.sampled_from([ALICE, BOB, CAROL]))
    seq = draw(st.just(1) | st.integers(1, MAX_SEQ))
    prev = ZERO_HASH if seq == 1 else draw(st.binary(min_size=32, max_size=32))
    assume(seq == 1 or prev != ZERO_HASH)
    timestamp = draw(st.integers(0, MAX_TIMESTAMP))
    return make(body, key=key, seq=seq, prev=prev, timestamp=timestamp)


record_settings = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- round trip and signatures ---------------------------------------------------------------------


@record_settings
@given(records())
def test_every_valid_record_round_trips_and_verifies_only_on_its_network(record: Record) -> None:
    decoded = decode_record(record.raw)
    assert decoded == record
    assert type(decoded.body) is type(record.body)
    assert decoded.raw == record.raw
    assert decoded.id == record.id == sha256(record.raw)
    assert decode_verified(record.raw, NETWORK) == record
    with pytest.raises(SignatureError):
        decode_verified(record.raw, OTHER_NETWORK)


@record_settings
@given(records(), st.data())
def test_flipping_any_bit_of_a_record_is_refused(record: Record, data: st.DataObject) -> None:
    raw = bytearray(record.raw)
    at = data.draw(st.integers(0, len(raw) - 1), label="byte")
    raw[at] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    with pytest.raises(INVALID_RECORD):
        decode_verified(bytes(raw), NETWORK)


def _exhaustive_flips(raw: bytes) -> None:
    for at in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[at] ^= 1 << bit
            with pytest.raises(InvalidData):
                decode_verified(bytes(flipped), NETWORK)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(Identity(name="alice"), id="identity"),
        pytest.param(
            Contribution(title="Fix", kind="code", refs=("r",), description="d", hours=2, size=9),
            id="contribution",
        ),
        pytest.param(Endorsement(contribution=SOME_ID, comment="ok"), id="endorsement"),
    ],
)
def test_every_single_bit_flip_of_a_record_is_refused(body: Body) -> None:
    record = make(body, seq=5)
    _exhaustive_flips(record.raw)


def test_every_single_bit_flip_of_an_evidence_record_is_refused() -> None:
    # Flips inside an embedded record surface as EvidenceError, also an InvalidData.
    a = make(Identity(name="a"))
    b = make(Identity(name="b"))
    _exhaustive_flips(make(Equivocation.of(a, b), key=CAROL).raw)


def test_the_signature_covers_the_author() -> None:
    m = wire_of(make(Identity(name="alice")))
    m["author"] = BOB.public_key  # Alice's signature, Bob's name on it
    with pytest.raises(SignatureError):
        decode_verified(codec.encode(m), NETWORK)


def test_the_signature_is_domain_separated_by_tag() -> None:
    record = make(Identity(name="alice"))
    m = wire_of(record)
    m["sig"] = ALICE.sign(Tag.PROPOSAL, NETWORK, record.signed_body())
    with pytest.raises(SignatureError):
        decode_verified(codec.encode(m), NETWORK)


def test_signed_body_is_the_record_without_sig() -> None:
    record = make(Contribution(title="t", kind="code", hours=1))
    m = wire_of(record)
    del m["sig"]
    assert record.signed_body() == codec.encode(m)
    # PROTOCOL.md §3: the same bytes as the record less its final entry, fixmap 0x87 -> 0x86.
    assert record.raw[0] == 0x87
    assert record.raw[-70:-64] == bytes.fromhex("a3736967c440")
    assert record.signed_body() == b"\x86" + record.raw[1:-70]


def test_a_record_signed_for_another_network_does_not_verify() -> None:
    record = make(Identity(name="alice"), network=OTHER_NETWORK)
    assert decode_verified(record.raw, OTHER_NETWORK) == record
    with pytest.raises(SignatureError):
        decode_verified(record.raw, NETWORK)


def test_decoding_rejects_a_non_canonical_record() -> None:
    raw = make(Identity(name="alice"), seq=5).raw
    shortest_seq = b"\xa3seq\x05"
    assert raw.count(shortest_seq) == 1
    with pytest.raises(DecodeError):
        decode_record(raw.replace(shortest_seq, b"\xa3seq\xcc\x05"))


# -- schema limits: bodies -------------------------------------------------------------------------

BASE: dict[type[Body], dict[str, Any]] = {
    Identity: {"name": "alice"},
    Contribution: {"title": "Fix the parser", "kind": "code", "refs": (), "description": ""},
    Endorsement: {"contribution": SOME_ID, "comment": ""},
}

ACCEPTED_BODIES = [
    pytest.param(Identity, "name", "a", id="identity.name-1-byte"),
    pytest.param(Identity, "name", "a" * 64, id="identity.name-64-bytes"),
    pytest.param(Identity, "name", "é" * 32, id="identity.name-32x2-byte-chars"),
    pytest.param(Identity, "name", "€" * 21 + "a", id="identity.name-21x3-byte-chars+1"),
    pytest.param(Identity, "name", "😀" * 16, id="identity.name-16x4-byte-chars"),
    pytest.param(Contribution, "title", "t", id="contribution.title-1-byte"),
    pytest.param(Contribution, "title", "t" * 200, id="contribution.title-200-bytes"),
    pytest.param(Contribution, "title", "é" * 100, id="contribution.title-100x2-byte-chars"),
    pytest.param(Contribution, "kind", "c", id="contribution.kind-1-byte"),
    pytest.param(Contribution, "kind", "k" * 32, id="contribution.kind-32-bytes"),
    pytest.param(Contribution, "kind", "code-review-2", id="contribution.kind-full-alphabet"),
    pytest.param(Contribution, "kind", "0-9", id="contribution.kind-digits-and-dash"),
    pytest.param(Contribution, "refs", ("r",) * 16, id="contribution.refs-16-items"),
    pytest.param(Contribution, "refs", ("r" * 512,), id="contribution.refs-item-512-bytes"),
    pytest.param(Contribution, "refs", ("é" * 256,), id="contribution.refs-item-256x2-bytes"),
    pytest.param(Contribution, "refs", ("r",), id="contribution.refs-item-1-byte"),
    pytest.param(Contribution, "description", "", id="contribution.description-empty"),
    pytest.param(Contribution, "description", "d" * 4096, id="contribution.description-4096"),
    pytest.param(Contribution, "description", "é" * 2048, id="contribution.description-2048x2"),
    pytest.param(Contribution, "description", "a\nb\tc\n", id="contribution.description-nl-tab"),
    pytest.param(Contribution, "hours", 0, id="contribution.hours-0"),
    pytest.param(Contribution, "hours", 100_000, id="contribution.hours-100000"),
    pytest.param(Contribution, "size", 0, id="contribution.size-0"),
    pytest.param(Contribution, "size", MAX_INT, id="contribution.size-2**53-1"),
    pytest.param(Endorsement, "comment", "", id="endorsement.comment-empty"),
    pytest.param(Endorsement, "comment", "c" * 1024, id="endorsement.comment-1024"),
    pytest.param(Endorsement, "comment", "é" * 512, id="endorsement.comment-512x2"),
    pytest.param(Endorsement, "comment", "ok\n\tthanks", id="endorsement.comment-nl-tab"),
    pytest.param(Endorsement, "contribution", b"\xff" * 32, id="endorsement.contribution-32"),
]

REJECTED_BODIES = [
    # identity.name: 1..64 UTF-8 bytes, one line
    pytest.param(Identity, "name", "", id="identity.name-empty"),
    pytest.param(Identity, "name", "a" * 65, id="identity.name-65-bytes"),
    pytest.param(Identity, "name", "é" * 32 + "a", id="identity.name-33-chars-65-bytes"),
    pytest.param(Identity, "name", "€" * 22, id="identity.name-22-chars-66-bytes"),
    pytest.param(Identity, "name", "😀" * 16 + "a", id="identity.name-17-chars-65-bytes"),
    pytest.param(Identity, "name", "al\nice", id="identity.name-newline"),
    pytest.param(Identity, "name", "al\tice", id="identity.name-tab"),
    pytest.param(Identity, "name", "\x00", id="identity.name-nul"),
    pytest.param(Identity, "name", "a\x7f", id="identity.name-del"),
    pytest.param(Identity, "name", "a\x85", id="identity.name-c1-control"),
    pytest.param(Identity, "name", b"alice", id="identity.name-bytes"),
    pytest.param(Identity, "name", 7, id="identity.name-int"),
    # contribution.title: 1..200 bytes, one line
    pytest.param(Contribution, "title", "", id="contribution.title-empty"),
    pytest.param(Contribution, "title", "t" * 201, id="contribution.title-201-bytes"),
    pytest.param(Contribution, "title", "é" * 100 + "t", id="contribution.title-101-chars-201"),
    pytest.param(Contribution, "title", "a\nb", id="contribution.title-newline"),
    pytest.param(Contribution, "title", b"t", id="contribution.title-bytes"),
    # contribution.kind: 1..32 bytes of [a-z0-9-]
    pytest.param(Contribution, "kind", "", id="contribution.kind-empty"),
    pytest.param(Contribution, "kind", "k" * 33, id="contribution.kind-33-bytes"),
    pytest.param(Contribution, "kind", "Code", id="contribution.kind-uppercase"),
    pytest.param(Contribution, "kind", "code_review", id="contribution.kind-underscore"),
    pytest.param(Contribution, "kind", "code review", id="contribution.kind-space"),
    pytest.param(Contribution, "kind", "docs/site", id="contribution.kind-slash"),
    pytest.param(Contribution, "kind", "données", id="contribution.kind-non-ascii"),
    pytest.param(Contribution, "kind", "code\n", id="contribution.kind-newline"),
    # contribution.refs: at most 16 items of 1..512 bytes, one line
    pytest.param(Contribution, "refs", ("r",) * 17, id="contribution.refs-17-items"),
    pytest.param(Contribution, "refs", ("r" * 513,), id="contribution.refs-item-513-bytes"),
    pytest.param(Contribution, "refs", ("é" * 256 + "r",), id="contribution.refs-item-513-utf8"),
    pytest.param(Contribution, "refs", ("",), id="contribution.refs-item-empty"),
    pytest.param(Contribution, "refs", ("a", "b\nc"), id="contribution.refs-item-newline"),
    pytest.param(Contribution, "refs", (b"r",), id="contribution.refs-item-bytes"),
    pytest.param(Contribution, "refs", "r", id="contribution.refs-str-not-list"),
    # contribution.description: 0..4096 bytes, tab and newline but no other control characters
    pytest.param(Contribution, "description", "d" * 4097, id="contribution.description-4097"),
    pytest.param(
        Contribution, "description", "é" * 2048 + "d", id="contribution.description-4097-utf8"
    ),
    pytest.param(Contribution, "description", "a\r\nb", id="contribution.description-cr"),
    pytest.param(Contribution, "description", "a\x00", id="contribution.description-nul"),
    pytest.param(Contribution, "description", "\x1b[31m", id="contribution.description-escape"),
    pytest.param(Contribution, "description", "\x0b", id="contribution.description-vtab"),
    pytest.param(Contribution, "description", "\x7f", id="contribution.description-del"),
    pytest.param(Contribution, "description", "\x9f", id="contribution.description-c1"),
    # contribution.hours 0..100000 and size 0..2**53-1: ints, never bools
    pytest.param(Contribution, "hours", -1, id="contribution.hours-negative"),
    pytest.param(Contribution, "hours", 100_001, id="contribution.hours-100001"),
    pytest.param(Contribution, "hours", True, id="contribution.hours-bool"),
    pytest.param(Contribution, "hours", "3", id="contribution.hours-str"),
    pytest.param(Contribution, "size", -1, id="contribution.size-negative"),
    pytest.param(Contribution, "size", MAX_INT + 1, id="contribution.size-2**53"),
    pytest.param(Contribution, "size", False, id="contribution.size-bool"),
    # endorsement.comment 0..1024 bytes multiline; endorsement.contribution exactly 32 bytes
    pytest.param(Endorsement, "comment", "c" * 1025, id="endorsement.comment-1025"),
    pytest.param(Endorsement, "comment", "é" * 512 + "c", id="endorsement.comment-1025-utf8"),
    pytest.param(Endorsement, "comment", "a\rb", id="endorsement.comment-cr"),
    pytest.param(Endorsement, "contribution", b"\xff" * 31, id="endorsement.contribution-31"),
    pytest.param(Endorsement, "contribution", b"\xff" * 33, id="endorsement.contribution-33"),
    pytest.param(Endorsement, "contribution", b"", id="endorsement.contribution-empty"),
    pytest.param(Endorsement, "contribution", "ff" * 32, id="endorsement.contribution-hex-str"),
]

# Values with no wire form distinct from another one (a str passed where a tuple is expected is
# still a str on the wire, but a bytearray or list has no wire form of its own).
CONSTRUCTION_ONLY = [
    pytest.param(Contribution, "refs", ["r"], id="contribution.refs-list-not-tuple"),
    pytest.param(
        Endorsement, "contribution", bytearray(32), id="endorsement.contribution-bytearray"
    ),
]


@pytest.mark.parametrize(("cls", "field", "value"), ACCEPTED_BODIES)
def test_body_at_the_limit_is_accepted_and_round_trips(
    cls: type[Body], field: str, value: Any
) -> None:
    body = cls(**{**BASE[cls], field: value})
    assert getattr(body, field) == value
    record = make(body, seq=3)
    decoded = decode_verified(record.raw, NETWORK)
    assert decoded.body == body
    assert getattr(decoded.body, field) == value


@pytest.mark.parametrize(("cls", "field", "value"), REJECTED_BODIES + CONSTRUCTION_ONLY)
def test_body_past_the_limit_cannot_be_constructed(cls: type[Body], field: str, value: Any) -> None:
    with pytest.raises(SchemaError, match=rf"{cls.KIND}\.{field}"):
        cls(**{**BASE[cls], field: value})


@pytest.mark.parametrize(("cls", "field", "value"), REJECTED_BODIES)
def test_body_past_the_limit_is_refused_on_the_wire(
    cls: type[Body], field: str, value: Any
) -> None:
    m = wire_of(make(cls(**BASE[cls]), seq=3))
    m["body"][field] = value
    with pytest.raises(SchemaError, match=rf"{cls.KIND}\.{field}"):
        decode_record(signed_wire(m))


def test_identity_name_with_a_lone_surrogate_cannot_be_constructed() -> None:
    # A name with no UTF-8 encoding passes schema.text (it counts bytes with "surrogatepass"), so
    # the invalid Identity exists and only fails later, as a DecodeError when a Record encodes it.
    with pytest.raises(SchemaError, match=r"identity\.name"):
        Identity(name="\ud800")


# -- schema limits: envelope -----------------------------------------------------------------------


def _envelope(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "author": ALICE.public_key,
        "seq": 2,
        "prev": SOME_ID,
        "timestamp": T0,
        "body": Identity(name="alice"),
        "signature": bytes(64),
    }
    return {**fields, **overrides}


ACCEPTED_ENVELOPES = [
    pytest.param({"seq": 1, "prev": ZERO_HASH}, id="seq-1-zero-prev"),
    pytest.param({"seq": MAX_SEQ}, id="seq-2**53-1"),
    pytest.param({"timestamp": 0}, id="timestamp-0"),
    pytest.param({"timestamp": MAX_TIMESTAMP}, id="timestamp-2**53-1"),
    pytest.param({"prev": b"\x00" * 31 + b"\x01"}, id="prev-almost-zero"),
]

# (overrides, wire key, wire value or None when the envelope value is used, field in message)
REJECTED_ENVELOPES = [
    pytest.param({"seq": 0}, "record.seq", id="seq-0"),
    pytest.param({"seq": -1}, "record.seq", id="seq-negative"),
    pytest.param({"seq": MAX_SEQ + 1}, "record.seq", id="seq-2**53"),
    pytest.param({"seq": True, "prev": ZERO_HASH}, "record.seq", id="seq-bool"),
    pytest.param({"seq": 1, "prev": SOME_ID}, "record.prev", id="seq-1-nonzero-prev"),
    pytest.param({"seq": 2, "prev": ZERO_HASH}, "record.prev", id="seq-2-zero-prev"),
    pytest.param({"prev": SOME_ID[:31]}, "record.prev", id="prev-31-bytes"),
    pytest.param({"prev": SOME_ID + b"\x00"}, "record.prev", id="prev-33-bytes"),
    pytest.param({"prev": SOME_ID.hex()}, "record.prev", id="prev-str"),
    pytest.param({"timestamp": -1}, "record.at", id="timestamp-negative"),
    pytest.param({"timestamp": MAX_TIMESTAMP + 1}, "record.at", id="timestamp-2**53"),
    pytest.param({"timestamp": False}, "record.at", id="timestamp-bool"),
    pytest.param({"author": ALICE.public_key[:31]}, "record.author", id="author-31-bytes"),
    pytest.param({"author": ALICE.public_key + b"\x00"}, "record.author", id="author-33-bytes"),
    pytest.param({"author": ALICE.public_key.hex()}, "record.author", id="author-str"),
    pytest.param({"signature": bytes(63)}, "record.sig", id="signature-63-bytes"),
    pytest.param({"signature": bytes(65)}, "record.sig", id="signature-65-bytes"),
    pytest.param({"signature": b""}, "record.sig", id="signature-empty"),
]

WIRE_KEYS = {"timestamp": "at", "signature": "sig"}


@pytest.mark.parametrize("overrides", ACCEPTED_ENVELOPES)
def test_envelope_at_the_limit_is_accepted_and_round_trips(overrides: dict[str, Any]) -> None:
    fields = _envelope(**overrides)
    del fields["author"], fields["signature"]
    record = sign_record(ALICE, NETWORK, **fields)
    assert decode_verified(record.raw, NETWORK) == record
    assert record.seq == fields["seq"]
    assert record.timestamp == fields["timestamp"]


@pytest.mark.parametrize(("overrides", "field"), REJECTED_ENVELOPES)
def test_envelope_past_the_limit_cannot_be_constructed(
    overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(SchemaError, match=rf"{field}\b"):
        Record(**_envelope(**overrides))


@pytest.mark.parametrize(("overrides", "field"), REJECTED_ENVELOPES)
def test_envelope_past_the_limit_is_refused_on_the_wire(
    overrides: dict[str, Any], field: str
) -> None:
    m = wire_of(make(Identity(name="alice"), seq=2))
    for name, value in overrides.items():
        m[WIRE_KEYS.get(name, name)] = value
    data = codec.encode(m) if "signature" in overrides else signed_wire(m)
    with pytest.raises(SchemaError, match=rf"{field}\b"):
        decode_record(data)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(
            lambda: sign_record(
                ALICE, NETWORK, seq=True, prev=ZERO_HASH, timestamp=T0, body=Identity(name="a")
            ),
            id="seq-bool-when-signing",
        ),
        pytest.param(lambda: Record(**_envelope(body=object())), id="body-of-unknown-type"),
        pytest.param(lambda: Record(**_envelope(body={"name": "alice"})), id="body-as-dict"),
    ],
)
def test_records_with_wrong_types_cannot_be_constructed(build: Callable[[], Any]) -> None:
    with pytest.raises(SchemaError, match=r"record\.(seq|body)"):
        build()


def test_bool_and_int_are_different_on_the_wire() -> None:
    # The wire-level counterpart of the bool cases above: True is not seq 1.
    m = wire_of(make(Identity(name="alice")))
    assert m["seq"] == 1
    m["seq"] = True
    with pytest.raises(SchemaError, match=r"record\.seq must be an integer, got bool"):
        decode_record(signed_wire(m))


# -- unknown, extra and missing fields -------------------------------------------------------------


def _mutated(mutate: Callable[[dict[str, Any]], None], body: Body | None = None) -> bytes:
    m = wire_of(make(body or Identity(name="alice"), seq=2))
    mutate(m)
    return signed_wire(m)


WIRE_SHAPE_ERRORS = [
    pytest.param(
        lambda m: m.update(kind="bogus"), "unknown record kind 'bogus'", id="unknown-kind"
    ),
    pytest.param(lambda m: m.update(kind=""), "unknown record kind ''", id="empty-kind"),
    pytest.param(lambda m: m.update(kind=7), "unknown record kind 7", id="int-kind"),
    pytest.param(lambda m: m.update(kind=b"identity"), "unknown record kind", id="bin-kind"),
    pytest.param(
        lambda m: m.update(kind="contribution"),
        "contribution is missing",
        id="kind-does-not-match-body",
    ),
    pytest.param(
        lambda m: m.update(zzz=1), "record has unknown field zzz", id="extra-envelope-field"
    ),
    pytest.param(
        lambda m: m.update(id=b"x" * 32), "record has unknown field id", id="extra-envelope-id"
    ),
    pytest.param(
        lambda m: m["body"].update(admin=True),
        "identity has unknown field admin",
        id="extra-body-field",
    ),
    pytest.param(lambda m: m.pop("at"), "record is missing at", id="missing-at"),
    pytest.param(lambda m: m.pop("author"), "record is missing author", id="missing-author"),
    pytest.param(lambda m: m.pop("body"), "record is missing body", id="missing-body"),
    pytest.param(lambda m: m.pop("kind"), "record is missing kind", id="missing-kind"),
    pytest.param(lambda m: m.pop("prev"), "record is missing prev", id="missing-prev"),
    pytest.param(lambda m: m.pop("seq"), "record is missing seq", id="missing-seq"),
    pytest.param(lambda m: m["body"].pop("name"), "identity is missing name", id="missing-name"),
    pytest.param(lambda m: m.update(body="alice"), "identity must be a map", id="body-not-a-map"),
    pytest.param(lambda m: m.update(body=("alice",)), "identity must be a map", id="body-array"),
]


@pytest.mark.parametrize(("mutate", "message"), WIRE_SHAPE_ERRORS)
def test_wire_maps_of_the_wrong_shape_are_refused(
    mutate: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(SchemaError, match=message):
        decode_record(_mutated(mutate))


@pytest.mark.parametrize("field", ["title", "kind", "refs", "description"])
def test_contribution_fields_required_on_the_wire(field: str) -> None:
    body = Contribution(title="t", kind="code")
    with pytest.raises(SchemaError, match=f"contribution is missing {field}"):
        decode_record(_mutated(lambda m: m["body"].pop(field), body))


def test_contribution_optional_fields_are_omitted_when_unset() -> None:
    bare = make(Contribution(title="t", kind="code"), seq=2)
    assert set(wire_of(bare)["body"]) == {"title", "kind", "refs", "description"}
    full = make(Contribution(title="t", kind="code", hours=0, size=0), seq=2)
    assert set(wire_of(full)["body"]) == {"title", "kind", "refs", "description", "hours", "size"}
    assert decode_record(full.raw).body == Contribution(title="t", kind="code", hours=0, size=0)


def test_missing_signature_is_refused() -> None:
    m = wire_of(make(Identity(name="alice"), seq=2))
    del m["sig"]
    with pytest.raises(SchemaError, match="record is missing sig"):
        decode_record(codec.encode(m))


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(Identity, id="identity-missing-name"),
        pytest.param(lambda: Identity(name="a", admin=True), id="identity-extra-field"),
        pytest.param(lambda: Contribution(title="t"), id="contribution-missing-kind"),
        pytest.param(lambda: Endorsement(comment="c"), id="endorsement-missing-contribution"),
        pytest.param(lambda: Identity("alice"), id="identity-positional"),
    ],
)
def test_dataclasses_refuse_missing_extra_and_positional_fields(build: Callable[[], Any]) -> None:
    with pytest.raises(TypeError):
        build()


# -- whole-record size -----------------------------------------------------------------------------

BIG_REFS = tuple(f"https://example.org/{i:02d}/" + "r" * 470 for i in range(8))


def _big_contribution(description_bytes: int) -> Record:
    body = Contribution(
        title="t" * 200, kind="code", refs=BIG_REFS, description="d" * description_bytes
    )
    return make(body, seq=MAX_SEQ, timestamp=MAX_TIMESTAMP)


def _description_for(record_bytes: int) -> int:
    """The description length that makes `_big_contribution` exactly `record_bytes` long."""
    probe = 1000  # any length with a str16 header, so the size is linear in it
    size = len(_big_contribution(probe).raw)
    return probe + record_bytes - size


def test_a_record_of_exactly_max_record_bytes_is_accepted() -> None:
    record = _big_contribution(_description_for(MAX_RECORD_BYTES))
    assert len(record.raw) == MAX_RECORD_BYTES
    assert decode_verified(record.raw, NETWORK) == record


def test_a_record_one_byte_over_max_record_bytes_cannot_be_built() -> None:
    description = _description_for(MAX_RECORD_BYTES + 1)
    with pytest.raises(SchemaError, match=f"of {MAX_RECORD_BYTES + 1} bytes exceeds the limit"):
        _big_contribution(description)


def test_a_record_one_byte_over_max_record_bytes_is_refused_on_the_wire() -> None:
    m = wire_of(_big_contribution(_description_for(MAX_RECORD_BYTES)))
    m["body"]["description"] += "d"
    data = signed_wire(m)
    assert len(data) == MAX_RECORD_BYTES + 1
    with pytest.raises(SchemaError, match=f"of {MAX_RECORD_BYTES + 1} bytes exceeds the limit"):
        decode_record(data)


def test_every_field_within_its_limit_can_still_make_an_oversized_record() -> None:
    body = Contribution(
        title="t" * 200, kind="k" * 32, refs=("r" * 512,) * 16, description="d" * 4096
    )
    with pytest.raises(SchemaError, match="exceeds the limit of 8192"):
        make(body, seq=2)


def test_bytes_over_the_evidence_bound_are_refused_before_decoding() -> None:
    m = wire_of(make(Identity(name="alice"), seq=2))
    m["body"]["padding"] = bytes(MAX_EVIDENCE_BYTES)
    with pytest.raises(DecodeError, match="exceeds the limit"):
        decode_record(codec.encode(m))


# -- equivocation evidence -------------------------------------------------------------------------


def _two_at_seq(seq: int = 4, key: Keypair = ALICE) -> tuple[Record, Record]:
    a = make(Identity(name="alice"), key=key, seq=seq)
    b = make(Identity(name="alice the second"), key=key, seq=seq)
    return a, b


def test_two_different_records_at_one_seq_are_evidence() -> None:
    a, b = _two_at_seq()
    evidence = Equivocation.of(a, b)
    evidence.verify(NETWORK)
    assert evidence == Equivocation.of(b, a)
    assert evidence.first < evidence.second
    assert {evidence.first, evidence.second} == {a.raw, b.raw}
    assert evidence.author == ALICE.public_key
    assert evidence.seq == 4
    assert set(evidence.records) == {a, b}


def test_evidence_of_two_first_records_verifies() -> None:
    evidence = Equivocation.of(*_two_at_seq(seq=1))
    evidence.verify(NETWORK)


def test_evidence_record_signed_by_a_third_member_round_trips() -> None:
    evidence = Equivocation.of(*_two_at_seq())
    record = make(evidence, key=CAROL, seq=9)
    decoded = decode_verified(record.raw, NETWORK)
    assert decoded == record
    assert decoded.kind == "equivocation"
    assert decoded.author == CAROL.public_key
    assert isinstance(decoded.body, Equivocation)
    assert decoded.body == evidence
    decoded.body.verify(NETWORK)
    with pytest.raises(SignatureError):
        decode_verified(record.raw, OTHER_NETWORK)


def test_evidence_of_two_records_of_max_size_fits_in_an_evidence_record() -> None:
    a = _big_contribution(_description_for(MAX_RECORD_BYTES))
    m = wire_of(a)
    m["body"]["title"] = "T" + m["body"]["title"][1:]
    b = decode_verified(signed_wire(m), NETWORK)
    assert len(a.raw) == len(b.raw) == MAX_RECORD_BYTES
    evidence = Equivocation.of(a, b)
    evidence.verify(NETWORK)
    record = make(evidence, key=CAROL, seq=MAX_SEQ, timestamp=MAX_TIMESTAMP)
    assert MAX_RECORD_BYTES * 2 < len(record.raw) <= MAX_EVIDENCE_BYTES
    assert decode_verified(record.raw, NETWORK) == record


def test_the_same_record_twice_is_not_evidence() -> None:
    a, _ = _two_at_seq()
    with pytest.raises(EvidenceError, match="same one twice"):
        Equivocation.of(a, a)


def test_records_by_different_authors_are_not_evidence() -> None:
    a = make(Identity(name="alice"), key=ALICE, seq=4)
    b = make(Identity(name="bob"), key=BOB, seq=4)
    with pytest.raises(EvidenceError, match="different authors"):
        Equivocation.of(a, b)


def test_records_at_different_seqs_are_not_evidence() -> None:
    a = make(Identity(name="alice"), seq=4)
    b = make(Identity(name="alice"), seq=5)
    with pytest.raises(EvidenceError, match="different seqs 4 and 5"):
        Equivocation.of(a, b)


def test_evidence_parts_must_be_in_byte_order() -> None:
    evidence = Equivocation.of(*_two_at_seq())
    with pytest.raises(EvidenceError, match="sort before"):
        Equivocation(first=evidence.second, second=evidence.first)


def test_evidence_parts_out_of_order_are_refused_on_the_wire() -> None:
    evidence = Equivocation.of(*_two_at_seq())
    m = wire_of(make(evidence, key=CAROL, seq=2))
    m["body"] = {"first": evidence.second, "second": evidence.first}
    with pytest.raises(EvidenceError, match="sort before"):
        decode_record(signed_wire(m, CAROL))


def test_evidence_with_a_forged_part_does_not_verify() -> None:
    a, b = _two_at_seq()
    forged = Record(
        author=b.author,
        seq=b.seq,
        prev=b.prev,
        timestamp=b.timestamp,
        body=b.body,
        signature=a.signature,
    )
    evidence = Equivocation.of(a, forged)  # the structure is fine...
    with pytest.raises(EvidenceError, match="does not verify"):
        evidence.verify(NETWORK)  # ...the signatures are not


def test_evidence_does_not_verify_on_another_network() -> None:
    evidence = Equivocation.of(*_two_at_seq())
    with pytest.raises(EvidenceError, match="does not verify"):
        evidence.verify(OTHER_NETWORK)


def test_evidence_does_not_nest() -> None:
    inner = Equivocation.of(*_two_at_seq())
    nested = make(inner, key=CAROL, seq=3)
    plain = make(Identity(name="carol"), key=CAROL, seq=3)
    with pytest.raises(EvidenceError, match="does not nest"):
        Equivocation.of(nested, plain)


@pytest.mark.parametrize(
    ("part", "error"),
    [
        pytest.param(b"\x01not a record", EvidenceError, id="garbage"),
        pytest.param(codec.encode({"seq": 4}), EvidenceError, id="map-that-is-no-record"),
        pytest.param(b"", SchemaError, id="empty"),
        pytest.param(b"\x00" * (MAX_RECORD_BYTES + 1), SchemaError, id="over-max-record-bytes"),
        pytest.param("not bytes", SchemaError, id="str"),
    ],
)
def test_evidence_parts_must_be_records(part: Any, error: type[InvalidData]) -> None:
    a, _ = _two_at_seq()
    with pytest.raises(error, match=r"equivocation\.first"):
        Equivocation(first=part, second=a.raw)
    with pytest.raises(error, match=r"equivocation\.second"):
        Equivocation(first=a.raw, second=part)


# -- feeds -----------------------------------------------------------------------------------------

SKEW = 5_000


def _extend(head: FeedHead, record: Record, reference_time: int = T0) -> FeedHead:
    return extend(head, record, reference_time=reference_time, max_skew=SKEW)


def test_a_feed_starts_from_the_empty_head_and_links_by_id() -> None:
    first = make(Identity(name="alice"), seq=1, prev=ZERO_HASH, timestamp=T0)
    head = _extend(EMPTY_HEAD, first)
    assert head == FeedHead(seq=1, id=first.id, timestamp=T0)
    second = make(Identity(name="alice b"), seq=2, prev=first.id, timestamp=T0)  # equal time
    head = _extend(head, second)
    assert head == FeedHead(seq=2, id=second.id, timestamp=T0)
    third = make(Identity(name="alice c"), seq=3, prev=second.id, timestamp=T0 + 1)
    assert _extend(head, third) == FeedHead(seq=3, id=third.id, timestamp=T0 + 1)


def test_the_empty_head_is_seq_0_and_the_zero_id() -> None:
    assert FeedHead(seq=0, id=ZERO_HASH, timestamp=0) == EMPTY_HEAD
    assert FeedHead() == EMPTY_HEAD


@pytest.mark.parametrize(
    "fields",
    [{"seq": -1}, {"seq": True}, {"id": b"short"}, {"timestamp": -1}, {"timestamp": "0"}],
)
def test_a_head_built_from_values_checks_them(fields: dict[str, object]) -> None:
    with pytest.raises(SchemaError):
        FeedHead(**fields)  # type: ignore[arg-type]
    with pytest.raises(SchemaError):
        EMPTY_HEAD._replace(**fields)


def test_a_feed_cannot_start_after_seq_1() -> None:
    record = make(Identity(name="alice"), seq=2, prev=SOME_ID)
    with pytest.raises(FeedError, match="expected seq 1, got 2"):
        _extend(EMPTY_HEAD, record)


HEAD_7 = FeedHead(seq=7, id=SOME_ID, timestamp=T0)


@pytest.mark.parametrize(
    ("seq", "message"),
    [
        pytest.param(9, "expected seq 8, got 9", id="gap"),
        pytest.param(7, "expected seq 8, got 7", id="replay"),
        pytest.param(1, "expected seq 8, got 1", id="restart"),
    ],
)
def test_seq_must_be_head_plus_one(seq: int, message: str) -> None:
    record = make(Identity(name="alice"), seq=seq, prev=ZERO_HASH if seq == 1 else SOME_ID)
    with pytest.raises(FeedError, match=message):
        _extend(HEAD_7, record)


def test_prev_must_be_the_head_id() -> None:
    assert _extend(HEAD_7, make(Identity(name="a"), seq=8, prev=SOME_ID)).seq == 8
    other = sha256(b"a fork")
    with pytest.raises(FeedError, match=f"prev {other.hex()[:16]} is not the id of seq 7"):
        _extend(HEAD_7, make(Identity(name="a"), seq=8, prev=other))


def test_timestamps_never_decrease() -> None:
    assert _extend(HEAD_7, make(Identity(name="a"), seq=8, timestamp=T0)).timestamp == T0
    with pytest.raises(FeedError, match=f"timestamp {T0 - 1} is before the previous record's {T0}"):
        _extend(HEAD_7, make(Identity(name="a"), seq=8, timestamp=T0 - 1))


def test_timestamp_may_be_at_most_max_skew_after_the_reference_time() -> None:
    reference = T0 + 60_000
    at_bound = make(Identity(name="a"), seq=8, timestamp=reference + SKEW)
    assert _extend(HEAD_7, at_bound, reference).timestamp == reference + SKEW
    past_bound = make(Identity(name="a"), seq=8, timestamp=reference + SKEW + 1)
    with pytest.raises(
        FeedError, match=f"more than {SKEW} ms after the reference time {reference}"
    ):
        _extend(HEAD_7, past_bound, reference)


def test_a_record_before_the_reference_time_is_fine() -> None:
    # Only the future is bounded: a record may be old, as long as its feed's order holds.
    record = make(Identity(name="a"), seq=8, timestamp=T0)
    assert _extend(HEAD_7, record, reference_time=T0 + 10**9).seq == 8
