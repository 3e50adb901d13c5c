"""Records: the signed, canonical unit of every feed, and the kinds of body a record can carry.

A record is a canonical MessagePack map `{at, author, body, kind, prev, seq, sig}` signed by its
author's member key under the RECORD tag over the same map without `sig`. `sig` sorts last, so
those signed bytes are the record's own bytes less the last entry, with the map count one lower.
Its id is the SHA-256 of the exact bytes received. Every kind is a frozen dataclass that validates
at construction, listed in `KINDS`; new kinds (governance) join with `register_kind`. Limits are
in docs/PROTOCOL.md.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self, TypeVar

from ledger import codec, fastparse, schema
from ledger.crypto import (
    HASH_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    Keypair,
    Tag,
    sha256,
    verify_tagged,
)
from ledger.errors import EvidenceError, InvalidData, SchemaError

MAX_RECORD_BYTES = 8192
"""Largest encoded record of any kind but evidence."""
MAX_EVIDENCE_BYTES = 2 * MAX_RECORD_BYTES + 256
"""Largest encoded evidence record (it carries two records); the bound checked before decoding."""
MAX_SEQ = schema.MAX_INT
MAX_TIMESTAMP = schema.MAX_INT
ZERO_HASH = bytes(HASH_BYTES)
"""`prev` of every author's first record."""

_ENVELOPE_KEYS = frozenset({"at", "author", "body", "kind", "prev", "seq", "sig"})
_SIG_ENTRY_BYTES = 1 + 3 + 2 + SIGNATURE_BYTES  # fixstr "sig", then bin8 header and 64 bytes


class Body(Protocol):
    """What every record kind provides."""

    KIND: ClassVar[str]
    MAX_BYTES: ClassVar[int]

    def to_wire(self) -> dict[str, Any]: ...

    @classmethod
    def from_wire(cls, m: Mapping[str, Any]) -> Self: ...


KINDS: dict[str, type[Body]] = {}
_KIND_TYPES: set[type] = set()
_CHECKED: dict[str, Callable[[Mapping[str, Any]], Body]] = {}

B = TypeVar("B", bound=type[Body])


def register_kind(cls: B) -> B:
    """Class decorator adding a record kind; its KIND must be new."""
    if cls.KIND in KINDS:
        raise ValueError(f"record kind {cls.KIND!r} is already registered")
    KINDS[cls.KIND] = cls
    _KIND_TYPES.add(cls)
    _CHECKED[cls.KIND] = _checked_builder(cls)
    return cls


def _checked_builder(cls: type[Body]) -> Callable[[Mapping[str, Any]], Body]:
    """How `decode_checked` builds a body of kind `cls` from a map already schema-checked: for a
    plain `WireBody` whose dataclass fields are exactly its wire fields, by setting the fields
    without re-running the checks; for any other kind, by `from_wire` itself."""
    names = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else None
    if not (
        issubclass(cls, WireBody)
        and "from_wire" not in vars(cls)
        and names == set(cls.FIELDS) | set(cls.OPTIONAL)
    ):
        return cls.from_wire
    required, optional = cls.FIELDS, cls.OPTIONAL

    def build(m: Mapping[str, Any]) -> Body:
        body = object.__new__(cls)
        for name in required:
            object.__setattr__(body, name, m[name])
        for name in optional:
            object.__setattr__(body, name, m.get(name))
        return body

    return build


def wire_of(body: Any, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {k: getattr(body, k) for k in required}
    out.update({k: v for k in optional if (v := getattr(body, k)) is not None})
    return out


def fields_of(
    m: Mapping[str, Any], what: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    schema.exact_keys(m, what, _keyset(required), _keyset(optional))
    return dict(m)


@functools.cache
def _keyset(keys: tuple[str, ...]) -> frozenset[str]:
    return frozenset(keys)


class WireBody:
    """Mixin for kinds whose wire map is their fields: `FIELDS` always present, `OPTIONAL`
    omitted when None. Gives `to_wire` and `from_wire`."""

    __slots__ = ()
    KIND: ClassVar[str]
    FIELDS: ClassVar[tuple[str, ...]] = ()
    OPTIONAL: ClassVar[tuple[str, ...]] = ()

    def to_wire(self) -> dict[str, Any]:
        return wire_of(self, self.FIELDS, self.OPTIONAL)

    @classmethod
    def from_wire(cls, m: Mapping[str, Any]) -> Self:
        return cls(**fields_of(m, cls.KIND, cls.FIELDS, cls.OPTIONAL))


@register_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class Identity(WireBody):
    """Registers the author's member key under a display name."""

    KIND: ClassVar[str] = "identity"
    MAX_BYTES: ClassVar[int] = MAX_RECORD_BYTES
    FIELDS: ClassVar[tuple[str, ...]] = ("name",)
    name: str

    def __post_init__(self) -> None:
        schema.text(self.name, "identity.name", 1, 64)


CONTRIBUTION_KINDS_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


@register_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class Contribution(WireBody):
    """A piece of work the author says they did, with references to where it lives."""

    KIND: ClassVar[str] = "contribution"
    MAX_BYTES: ClassVar[int] = MAX_RECORD_BYTES
    FIELDS: ClassVar[tuple[str, ...]] = ("title", "kind", "refs", "description")
    OPTIONAL: ClassVar[tuple[str, ...]] = ("hours", "size")
    title: str
    kind: str
    refs: tuple[str, ...] = ()
    description: str = ""
    hours: int | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        schema.text(self.title, "contribution.title", 1, 200)
        schema.text(self.kind, "contribution.kind", 1, 32)
        if not set(self.kind) <= CONTRIBUTION_KINDS_ALPHABET:
            raise SchemaError(f"contribution.kind must be [a-z0-9-], got {self.kind!r}")
        schema.text_tuple(self.refs, "contribution.refs", 16, 1, 512)
        schema.text(self.description, "contribution.description", 0, 4096, multiline=True)
        if self.hours is not None:
            schema.integer(self.hours, "contribution.hours", 0, 100_000)
        if self.size is not None:
            schema.integer(self.size, "contribution.size", 0, schema.MAX_INT)


@register_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class Endorsement(WireBody):
    """The author vouches for a contribution record, named by its id."""

    KIND: ClassVar[str] = "endorsement"
    MAX_BYTES: ClassVar[int] = MAX_RECORD_BYTES
    FIELDS: ClassVar[tuple[str, ...]] = ("contribution", "comment")
    contribution: bytes
    comment: str = ""

    def __post_init__(self) -> None:
        schema.fixed_bytes(self.contribution, "endorsement.contribution", HASH_BYTES)
        schema.text(self.comment, "endorsement.comment", 0, 1024, multiline=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """A signed record. `raw` is its canonical encoding and `id` the SHA-256 of `raw`."""

    author: bytes
    seq: int
    prev: bytes
    timestamp: int
    body: Body
    signature: bytes
    raw: bytes = field(init=False, repr=False, compare=False)
    id: bytes = field(init=False, compare=False)

    def __post_init__(self) -> None:
        self._check()
        self._seal(codec.encode(self._wire(sig=True)))

    @classmethod
    def _parsed(
        cls,
        raw: bytes,
        *,
        author: bytes,
        seq: int,
        prev: bytes,
        timestamp: int,
        body: Body,
        signature: bytes,
        check: bool = True,
    ) -> Record:
        """The record whose canonical encoding `raw` holds these fields (parsed out of it), with
        its own checks run unless `check` is False (bytes a checker passed already)."""
        record = object.__new__(cls)
        init = object.__setattr__
        init(record, "author", author)
        init(record, "seq", seq)
        init(record, "prev", prev)
        init(record, "timestamp", timestamp)
        init(record, "body", body)
        init(record, "signature", signature)
        if check:
            record._check()
            record._seal(raw)
        else:
            init(record, "raw", raw)
            init(record, "id", sha256(raw))
        return record

    def _check(self) -> None:
        schema.fixed_bytes(self.author, "record.author", PUBLIC_KEY_BYTES)
        schema.integer(self.seq, "record.seq", 1, MAX_SEQ)
        schema.fixed_bytes(self.prev, "record.prev", HASH_BYTES)
        if (self.seq == 1) != (self.prev == ZERO_HASH):
            raise SchemaError(
                f"record.prev must be all zero exactly when seq is 1 (seq {self.seq})"
            )
        schema.integer(self.timestamp, "record.at", 0, MAX_TIMESTAMP)
        if type(self.body) not in _KIND_TYPES:
            raise SchemaError(f"record.body of type {type(self.body).__name__} is not a known kind")
        schema.fixed_bytes(self.signature, "record.sig", SIGNATURE_BYTES)

    def _seal(self, raw: bytes) -> None:
        if len(raw) > self.body.MAX_BYTES:
            raise SchemaError(
                f"{self.kind} record of {len(raw)} bytes exceeds the limit of {self.body.MAX_BYTES}"
            )
        object.__setattr__(self, "raw", raw)
        object.__setattr__(self, "id", sha256(raw))

    @property
    def kind(self) -> str:
        return self.body.KIND

    def _wire(self, *, sig: bool) -> dict[str, Any]:
        m: dict[str, Any] = {
            "at": self.timestamp,
            "author": self.author,
            "body": self.body.to_wire(),
            "kind": self.body.KIND,
            "prev": self.prev,
            "seq": self.seq,
        }
        if sig:
            m["sig"] = self.signature
        return m

    def signed_body(self) -> bytes:
        """The canonical encoding of the record without `sig`: what the author signs."""
        return bytes((self.raw[0] - 1,)) + self.raw[1:-_SIG_ENTRY_BYTES]

    def verify(self, network_id: bytes) -> None:
        """Raise SignatureError unless the author's key signed this record for this network."""
        verify_tagged(self.author, Tag.RECORD, network_id, self.signed_body(), self.signature)


def sign_record(
    key: Keypair, network_id: bytes, *, seq: int, prev: bytes, timestamp: int, body: Body
) -> Record:
    """A new record by `key`, signed for `network_id`."""
    unsigned = Record(
        author=key.public_key,
        seq=seq,
        prev=prev,
        timestamp=timestamp,
        body=body,
        signature=bytes(SIGNATURE_BYTES),
    )
    signature = key.sign(Tag.RECORD, network_id, unsigned.signed_body())
    return Record(
        author=key.public_key,
        seq=seq,
        prev=prev,
        timestamp=timestamp,
        body=body,
        signature=signature,
    )


def decode_record(data: bytes, *, max_bytes: int = MAX_EVIDENCE_BYTES) -> Record:
    """Parse and schema-check one record; does NOT check its signature (see `Record.verify`).

    Raises DecodeError for bytes that are not canonical MessagePack within `max_bytes`, and
    SchemaError for a well-formed map that is not a valid record. A contribution goes through
    the compiled parser (ledger/fastparse.py) first, to the same verdict.
    """
    fast = fastparse.contribution(data, max_bytes)
    if fast is not None:
        body = fast.body
        try:
            return Record._parsed(
                data,
                author=fast.author,
                seq=fast.seq,
                prev=fast.prev,
                timestamp=fast.at,
                body=Contribution(
                    title=body.title,
                    kind=body.kind,
                    refs=body.refs,
                    description=body.description,
                    hours=body.hours,
                    size=body.size,
                ),
                signature=fast.sig,
            )
        except InvalidData:
            pass  # parsed again below, for the error of the rule it breaks
    return _decode_record(data, max_bytes)


def _decode_record(data: bytes, max_bytes: int) -> Record:
    """`decode_record` without the compiled parser: the definition of a valid record."""
    m = codec.decode(data, max_size=max_bytes)
    schema.exact_keys(m, "record", _ENVELOPE_KEYS, frozenset())
    kind = m["kind"]
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SchemaError(f"unknown record kind {kind!r}")
    try:
        body = cls.from_wire(m["body"])
    except TypeError as e:  # a field of the wrong shape for the dataclass
        raise SchemaError(f"malformed {kind} body: {e}") from e
    return _from_map(data, m, body, check=True)


def decode_checked(data: bytes) -> Record:
    """A record from bytes that already passed `decode_record` (on another core, say): parsed
    without repeating the canonical-form and schema checks. Never give it unchecked bytes."""
    m = codec.decode_own(data)
    return _from_map(data, m, _CHECKED[m["kind"]](m["body"]), check=False)


def _from_map(raw: bytes, m: Mapping[str, Any], body: Body, *, check: bool) -> Record:
    return Record._parsed(
        raw,
        author=m["author"],
        seq=m["seq"],
        prev=m["prev"],
        timestamp=m["at"],
        body=body,
        signature=m["sig"],
        check=check,
    )


def decode_verified(data: bytes, network_id: bytes) -> Record:
    """Decode, schema-check and verify the signature of one record: the gate for outside bytes."""
    record = decode_record(data)
    record.verify(network_id)
    return record


@register_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class Equivocation(WireBody):
    """Proof that an author signed two different records at one seq.

    `first` and `second` are the two records' exact bytes, `first < second` bytewise so a pair has
    one encoding. Construction checks the structure; `verify` checks both signatures.
    """

    KIND: ClassVar[str] = "equivocation"
    MAX_BYTES: ClassVar[int] = MAX_EVIDENCE_BYTES
    FIELDS: ClassVar[tuple[str, ...]] = ("first", "second")
    first: bytes
    second: bytes

    def __post_init__(self) -> None:
        a = _evidence_part(self.first, "equivocation.first")
        b = _evidence_part(self.second, "equivocation.second")
        if self.first == self.second:
            raise EvidenceError("equivocation needs two different records, got the same one twice")
        if self.first > self.second:
            raise EvidenceError("equivocation.first must sort before equivocation.second")
        if a.author != b.author:
            raise EvidenceError(
                f"records are by different authors {a.author.hex()[:16]} and {b.author.hex()[:16]}"
            )
        if a.seq != b.seq:
            raise EvidenceError(f"records are at different seqs {a.seq} and {b.seq}")

    @classmethod
    def of(cls, one: Record, other: Record) -> Equivocation:
        first, second = sorted((one.raw, other.raw))
        return cls(first=first, second=second)

    @property
    def records(self) -> tuple[Record, Record]:
        return decode_record(self.first), decode_record(self.second)

    @property
    def author(self) -> bytes:
        return self.records[0].author

    @property
    def seq(self) -> int:
        return self.records[0].seq

    def verify(self, network_id: bytes) -> None:
        """Raise EvidenceError unless both records carry valid signatures for this network."""
        for name, record in zip(("first", "second"), self.records, strict=True):
            try:
                record.verify(network_id)
            except InvalidData as e:
                raise EvidenceError(f"equivocation.{name} does not verify: {e}") from e


def _evidence_part(data: Any, what: str) -> Record:
    schema.bounded_bytes(data, what, 1, MAX_RECORD_BYTES)
    try:
        record = decode_record(data, max_bytes=MAX_RECORD_BYTES)
    except InvalidData as e:
        raise EvidenceError(f"{what} is not a valid record: {e}") from e
    if isinstance(record.body, Equivocation):
        raise EvidenceError(f"{what} is itself evidence; evidence does not nest")
    return record


# Kinds with modules of their own register themselves when imported: import them here, so that
# decoding any record knows every kind.
from ledger import kinds_governance, vote_evidence  # noqa: E402, F401
