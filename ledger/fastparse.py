"""A compiled parser for contribution records, the bulk of what a node receives.

`decode_record` (ledger/records.py) defines a valid record; this module only spares it work. It
parses a record's envelope and body with msgspec into typed values, and keeps them only if
encoding those values again gives back the very bytes it was given: then the bytes are canonical
MessagePack (ledger/codec.py) of a map with exactly a contribution record's keys, in order, each
of the type `codec.decode` would give. For anything else it answers None and `decode_record`
parses the bytes itself. The values still go through every schema check of `decode_record`
(tests/test_fastparse.py compares the two on valid, mutated and arbitrary bytes).
"""

from __future__ import annotations

from typing import Any

import msgspec


class Envelope(msgspec.Struct, forbid_unknown_fields=True):
    """A record's map, fields in canonical (sorted) order; its body kept as bytes."""

    at: int
    author: bytes
    body: msgspec.Raw
    kind: str
    prev: bytes
    seq: int
    sig: bytes


class _Contribution(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A contribution's map, fields in canonical order; the optional ones absent when unset."""

    description: str
    hours: int | msgspec.UnsetType = msgspec.UNSET
    kind: str
    refs: tuple[str, ...]
    size: int | msgspec.UnsetType = msgspec.UNSET
    title: str


_envelope = msgspec.msgpack.Decoder(Envelope)
_contribution = msgspec.msgpack.Decoder(_Contribution)
_encode = msgspec.msgpack.Encoder().encode


def contribution(data: bytes, max_bytes: int) -> tuple[Envelope, dict[str, Any]] | None:
    """The envelope of the contribution record `data` and its body's fields (by the names of
    `Contribution`'s), if `data` is one in canonical form within `max_bytes`; None otherwise
    (which does not say it is invalid)."""
    if type(data) is not bytes or len(data) > max_bytes:
        return None
    try:
        envelope = _envelope.decode(data)
        if envelope.kind != "contribution":
            return None
        body = bytes(envelope.body)
        wire = _contribution.decode(body)
    except msgspec.MsgspecError:
        return None
    if _encode(envelope) != data or _encode(wire) != body:
        return None
    unset = msgspec.UNSET
    return envelope, {
        "title": wire.title,
        "kind": wire.kind,
        "refs": wire.refs,
        "description": wire.description,
        "hours": None if wire.hours is unset else wire.hours,
        "size": None if wire.size is unset else wire.size,
    }
