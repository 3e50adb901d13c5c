"""A compiled parser for contribution records, the bulk of what a node receives.

`decode_record` (ledger/records.py) defines a valid record; this module only spares it work. It
parses a contribution record with msgspec into typed values, and keeps them only if encoding them
again gives back the very bytes it was given: then the bytes are canonical MessagePack
(ledger/codec.py) of a map with exactly a contribution record's keys, in order, each of the type
`codec.decode` would give. For anything else it answers None and `decode_record` parses the bytes
itself. The values still go through every schema check of `decode_record` (tests/test_fastparse.py
compares the two on valid, mutated and arbitrary bytes, and msgspec's encodings with msgpack's).
Every field is typed, so msgspec never walks a value of a shape it does not expect.
"""

from __future__ import annotations

import msgspec


class ContributionBody(
    msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """A contribution's map, fields in canonical (sorted) order; `hours` and `size` absent when
    None, as `Contribution.to_wire` leaves them out (an explicit nil re-encodes differently)."""

    description: str
    hours: int | None = None
    kind: str
    refs: tuple[str, ...]
    size: int | None = None
    title: str


class ContributionRecord(msgspec.Struct, forbid_unknown_fields=True):
    """A contribution record's map, fields in canonical order."""

    at: int
    author: bytes
    body: ContributionBody
    kind: str
    prev: bytes
    seq: int
    sig: bytes


_decode = msgspec.msgpack.Decoder(ContributionRecord).decode
_encode = msgspec.msgpack.Encoder().encode


def contribution(data: bytes, max_bytes: int) -> ContributionRecord | None:
    """The contribution record `data` holds, if it is one in canonical form within `max_bytes`;
    None otherwise (which does not say it is invalid)."""
    if type(data) is not bytes or len(data) > max_bytes:
        return None
    try:
        parsed = _decode(data)
    except (msgspec.MsgspecError, RecursionError):  # RecursionError: a safety net only
        return None  # the reference parser says what is wrong
    if parsed.kind != "contribution" or _encode(parsed) != data:
        return None
    return parsed
