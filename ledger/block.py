"""Blocks, precommit votes and commit certificates, and BFT time.

A block is `{header, records}`; its id is the SHA-256 of the canonical header, which commits to
the records through `records_root`. A precommit signs (tag, network id, height, round, block id,
timestamp). A commit certificate for a block is a set of precommits for it from distinct
validators of that height holding more than 2/3 of the voting power; header H carries the
certificate of H-1 as `last_commit`, and time(H) is the power-weighted median of its timestamps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledger import codec, schema
from ledger.crypto import (
    HASH_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    Keypair,
    Tag,
    sha256,
    verify_tagged,
)
from ledger.errors import InvalidData, SchemaError
from ledger.records import MAX_EVIDENCE_BYTES, Record, decode_record
from ledger.rulebook import Rule
from ledger.validators import MAX_VALIDATORS, ValidatorSet

Known = Callable[[bytes], Record | None]
"""A record parsed before, by id (or None)."""

MAX_ROUND = 2**31
MAX_BLOCK_RECORDS = 100_000
"""The hard bound of the `max_block_records` parameter."""
MAX_BLOCK_BYTES = 32 * 1024 * 1024
"""Bound on an encoded block, checked before decoding (100,000 records of typical size)."""


class CertificateError(InvalidData):
    """A commit certificate or precommit does not certify what it claims."""

    rule = Rule.CERTIFICATE


class BlockError(InvalidData):
    """A block breaks a validity rule."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Precommit:
    """One validator's signed precommit for a block at (height, round)."""

    height: int
    round: int
    block_id: bytes
    timestamp: int
    validator: bytes
    signature: bytes

    def __post_init__(self) -> None:
        schema.integer(self.height, "precommit.height", 1, schema.MAX_INT)
        schema.integer(self.round, "precommit.round", 0, MAX_ROUND)
        schema.fixed_bytes(self.block_id, "precommit.block", HASH_BYTES)
        schema.integer(self.timestamp, "precommit.at", 0, schema.MAX_INT)
        schema.fixed_bytes(self.validator, "precommit.validator", PUBLIC_KEY_BYTES)
        schema.fixed_bytes(self.signature, "precommit.sig", SIGNATURE_BYTES)

    @staticmethod
    def signed_body(height: int, round_: int, block_id: bytes, timestamp: int) -> bytes:
        return codec.encode({"height": height, "round": round_, "block": block_id, "at": timestamp})

    @classmethod
    def sign(
        cls,
        key: Keypair,
        network_id: bytes,
        *,
        height: int,
        round_: int,
        block_id: bytes,
        timestamp: int,
    ) -> Precommit:
        body = cls.signed_body(height, round_, block_id, timestamp)
        return cls(
            height=height,
            round=round_,
            block_id=block_id,
            timestamp=timestamp,
            validator=key.public_key,
            signature=key.sign(Tag.PRECOMMIT, network_id, body),
        )

    def verify(self, network_id: bytes) -> None:
        body = self.signed_body(self.height, self.round, self.block_id, self.timestamp)
        verify_tagged(self.validator, Tag.PRECOMMIT, network_id, body, self.signature)


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    """A commit certificate: precommits for one block at one (height, round), by validator."""

    height: int
    round: int
    block_id: bytes
    votes: tuple[tuple[bytes, int, bytes], ...]  # (validator, timestamp, signature)

    def __post_init__(self) -> None:
        schema.integer(self.height, "commit.height", 1, schema.MAX_INT)
        schema.integer(self.round, "commit.round", 0, MAX_ROUND)
        schema.fixed_bytes(self.block_id, "commit.block", HASH_BYTES)
        if not self.votes:
            raise SchemaError("a commit certificate needs at least one precommit")
        if len(self.votes) > MAX_VALIDATORS:
            raise SchemaError(f"a commit has at most {MAX_VALIDATORS} precommits")
        for v in self.votes:
            if type(v) is not tuple or len(v) != 3:
                raise SchemaError("commit vote must be [validator, at, sig]")
            schema.fixed_bytes(v[0], "commit.validator", PUBLIC_KEY_BYTES)
            schema.integer(v[1], "commit.at", 0, schema.MAX_INT)
            schema.fixed_bytes(v[2], "commit.sig", SIGNATURE_BYTES)
        keys = [v[0] for v in self.votes]
        if keys != sorted(set(keys)):
            raise SchemaError("commit precommits must be sorted by validator and distinct")

    @classmethod
    def of(cls, precommits: list[Precommit]) -> Commit:
        first = precommits[0]
        for p in precommits:
            if (p.height, p.round, p.block_id) != (first.height, first.round, first.block_id):
                raise CertificateError(
                    "precommits of a commit must be for one height, round and block"
                )
        votes = tuple(sorted((p.validator, p.timestamp, p.signature) for p in precommits))
        return cls(height=first.height, round=first.round, block_id=first.block_id, votes=votes)

    def precommits(self) -> list[Precommit]:
        return [
            Precommit(
                height=self.height,
                round=self.round,
                block_id=self.block_id,
                timestamp=at,
                validator=key,
                signature=sig,
            )
            for key, at, sig in self.votes
        ]

    def verify(
        self, network_id: bytes, validators: ValidatorSet, *, height: int, block_id: bytes
    ) -> None:
        """Raise CertificateError unless this certifies `block_id` at `height` by `validators`."""
        if self.height != height:
            raise CertificateError(f"certificate is for height {self.height}, expected {height}")
        if self.block_id != block_id:
            raise CertificateError(
                f"certificate at height {height} is for block {self.block_id.hex()[:16]}, "
                f"not {block_id.hex()[:16]}"
            )
        power = 0
        for precommit in self.precommits():
            weight = validators.power(precommit.validator)
            if weight == 0:
                raise CertificateError(
                    f"precommit at height {height} by {precommit.validator.hex()[:16]}, "
                    "not a validator of that height"
                )
            try:
                precommit.verify(network_id)
            except InvalidData as e:
                raise CertificateError(
                    f"precommit at height {height} by {precommit.validator.hex()[:16]}: {e}"
                ) from e
            power += weight
        if not validators.has_quorum(power):
            raise CertificateError(
                f"certificate at height {height} carries power {power} of {validators.total}: "
                "not more than 2/3"
            )

    def median_time(self, validators: ValidatorSet) -> int:
        """Voting-power-weighted median of the timestamps: the smallest t such that precommits at
        or before t carry more than half of the certificate's power."""
        weighted = sorted((at, validators.power(key)) for key, at, _ in self.votes)
        total = sum(w for _, w in weighted)
        running = 0
        for at, weight in weighted:
            running += weight
            if 2 * running > total:
                return at
        raise CertificateError("certificate carries no voting power")

    def to_wire(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "round": self.round,
            "block": self.block_id,
            "votes": self.votes,
        }

    @classmethod
    def from_wire(cls, m: Any) -> Commit:
        schema.exact_keys(
            m, "commit", frozenset({"height", "round", "block", "votes"}), frozenset()
        )
        if type(m["votes"]) is not tuple:
            raise SchemaError("commit.votes must be a list")
        return cls(height=m["height"], round=m["round"], block_id=m["block"], votes=m["votes"])


def encode_commit(commit: Commit) -> bytes:
    return codec.encode(commit.to_wire())


def decode_commit(data: bytes) -> Commit:
    return Commit.from_wire(codec.decode(data, max_size=MAX_VALIDATORS * 200 + 256))


_HEADER_KEYS = frozenset(
    {
        "height",
        "prev",
        "time",
        "proposer",
        "record_count",
        "records_root",
        "log_size",
        "log_root",
        "state_root",
        "validators_hash",
        "next_validators_hash",
    }
)
_HEADER_OPTIONAL = frozenset({"new_validators", "last_commit"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    height: int
    prev: bytes
    time: int
    proposer: bytes
    record_count: int
    records_root: bytes
    log_size: int
    log_root: bytes
    state_root: bytes
    validators_hash: bytes
    next_validators_hash: bytes
    new_validators: ValidatorSet | None = None
    last_commit: Commit | None = None
    raw: bytes = field(init=False, repr=False, compare=False)
    id: bytes = field(init=False, compare=False)

    def __post_init__(self) -> None:
        schema.integer(self.height, "header.height", 1, schema.MAX_INT)
        schema.integer(self.time, "header.time", 0, schema.MAX_INT)
        schema.integer(self.record_count, "header.record_count", 0, schema.MAX_INT)
        schema.integer(self.log_size, "header.log_size", 0, schema.MAX_INT)
        schema.fixed_bytes(self.proposer, "header.proposer", PUBLIC_KEY_BYTES)
        for name in ("prev", "records_root", "log_root", "state_root", "validators_hash",
                     "next_validators_hash"):  # fmt: skip
            schema.fixed_bytes(getattr(self, name), f"header.{name}", HASH_BYTES)
        if (self.height == 1) != (self.last_commit is None):
            raise SchemaError("header.last_commit must be present exactly when height > 1")
        raw = codec.encode(self.to_wire())
        object.__setattr__(self, "raw", raw)
        object.__setattr__(self, "id", sha256(raw))

    def to_wire(self) -> dict[str, Any]:
        m: dict[str, Any] = {name: getattr(self, name) for name in _HEADER_KEYS}
        if self.new_validators is not None:
            m["new_validators"] = self.new_validators.to_wire()
        if self.last_commit is not None:
            m["last_commit"] = self.last_commit.to_wire()
        return m

    @classmethod
    def from_wire(cls, m: Any) -> Header:
        schema.exact_keys(m, "header", _HEADER_KEYS, _HEADER_OPTIONAL)
        fields = {name: m[name] for name in _HEADER_KEYS}
        if "new_validators" in m:
            fields["new_validators"] = ValidatorSet.from_wire(m["new_validators"])
        if "last_commit" in m:
            fields["last_commit"] = Commit.from_wire(m["last_commit"])
        return cls(**fields)


MAX_HEADER_BYTES = 2048 + 2 * MAX_VALIDATORS * 200


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    """A header and the records it commits to (each keeps the exact bytes received)."""

    header: Header
    records: tuple[Record, ...]

    def __post_init__(self) -> None:
        if len(self.records) != self.header.record_count:
            raise BlockError(
                f"block {self.header.height} says {self.header.record_count} records, "
                f"carries {len(self.records)}"
            )

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def id(self) -> bytes:
        return self.header.id

    def encode(self) -> bytes:
        return codec.encode(
            {"header": self.header.to_wire(), "records": tuple(r.raw for r in self.records)}
        )


def decode_header(data: bytes) -> Header:
    return Header.from_wire(codec.decode(data, max_size=MAX_HEADER_BYTES))


@dataclass(frozen=True, slots=True, kw_only=True)
class RawBlock:
    """A decoded header with its records still as bytes, so that checking them (schema and
    signature, the bulk of the work) can happen on other cores before they are parsed here
    (see ledger/checking.py)."""

    header: Header
    raws: tuple[bytes, ...]

    def parse(self, known: Known | None = None) -> Block:
        """The block, each record parsed and schema-checked; signatures are the chain's.
        `known(id)` may give a record parsed before (a node's mempool): it is used when its bytes
        are these, instead of parsing them again."""
        records = []
        for index, raw in enumerate(self.raws):
            if known is not None:
                found = known(sha256(raw))
                if found is not None and found.raw == raw:
                    records.append(found)
                    continue
            try:
                schema.bounded_bytes(raw, "block record", 1, MAX_EVIDENCE_BYTES)
                records.append(decode_record(raw))
            except InvalidData as e:
                raise BlockError(
                    f"block {self.header.height} record #{index}: {e}",
                    rule=Rule.RECORD_SCHEMA if e.rule is Rule.SCHEMA else e.rule,
                    height=self.header.height,
                    record=sha256(raw),
                ) from e
        return Block(header=self.header, records=tuple(records))

    def encode(self) -> bytes:
        """The block's bytes, as `Block.encode` gives them."""
        return codec.encode({"header": self.header.to_wire(), "records": self.raws})


def decode_raw_block(data: bytes) -> RawBlock:
    """Parse a block's envelope and header; its records stay bytes (see `RawBlock.parse`)."""
    m = codec.decode(data, max_size=MAX_BLOCK_BYTES, max_items=MAX_BLOCK_RECORDS)
    schema.exact_keys(m, "block", frozenset({"header", "records"}), frozenset())
    header = Header.from_wire(m["header"])
    raws = m["records"]
    if type(raws) is not tuple:
        raise SchemaError("block.records must be a list")
    return RawBlock(header=header, raws=raws)


def decode_block(data: bytes, known: Known | None = None) -> Block:
    """Parse a block and schema-check its records; signatures are the chain's to verify.
    `known` as for `RawBlock.parse`."""
    return decode_raw_block(data).parse(known)
