"""Canonical MessagePack: the one encoder and the one decoder of every Commons wire format.

Canonical means: maps with str keys sorted by code point (= UTF-8 byte order) and no duplicates,
the shortest integer encodings, str for text and bin for bytes, arrays, booleans, and nothing else
(no floats, nil or extension types), and no trailing bytes. `decode` bounds the input size before
parsing, parses with container limits, checks key order and value types as each container is
built, then re-encodes and rejects anything that is not byte for byte what it was given. Nothing
else in the project calls `msgpack.unpackb`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import msgpack
import msgspec

from ledger.errors import DecodeError

MAX_DEPTH = 8
"""Deepest nesting of containers any Commons message may have."""

MAX_CONTAINER_LEN = 4096
"""Default bound on entries in one map or array; schemas bound their own fields far lower."""

Value = int | bool | str | bytes | tuple["Value", ...] | list["Value"] | Mapping[str, "Value"]

_SCALARS = frozenset({int, bool, str, bytes})
_DECODED = frozenset({int, bool, str, bytes, dict, tuple})


def _canonical(value: Any, depth: int) -> Any:
    """`value` as msgpack should pack it: maps rebuilt in key order; anything else refused."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if depth >= MAX_DEPTH:
        raise DecodeError(f"nesting deeper than {MAX_DEPTH}")
    if kind is dict or isinstance(value, Mapping):
        out = {}
        for key in sorted(value, key=_str_key):
            item = value[key]
            out[key] = item if type(item) in _SCALARS else _canonical(item, depth + 1)
        return out
    if kind is tuple or kind is list:
        return [item if type(item) in _SCALARS else _canonical(item, depth + 1) for item in value]
    raise DecodeError(f"type {kind.__name__} has no canonical encoding")


def _str_key(key: Any) -> str:
    if type(key) is not str:
        raise DecodeError(f"map key {key!r} is not a str")
    return key


def encode(value: Value) -> bytes:
    """The canonical bytes of `value`. Raises DecodeError for a value that has none."""
    try:
        return msgpack.packb(_canonical(value, 0), use_bin_type=True)  # type: ignore[no-any-return]
    except (OverflowError, ValueError, TypeError) as e:
        raise DecodeError(f"cannot encode: {e}") from e


_OWN = msgspec.msgpack.Encoder(order="sorted")


def encode_own(value: Value) -> bytes:
    """`encode` of a value this ledger built itself from the types `encode` takes (the state's
    values, whose shapes its own code fixes): compiled, with map keys sorted, and without the
    check that refuses other types. Never use it on a value from outside."""
    try:
        return _OWN.encode(value)
    except (OverflowError, ValueError, TypeError, msgspec.EncodeError) as e:
        raise DecodeError(f"cannot encode: {e}") from e


def _reject_ext(code: int, data: bytes) -> NoReturn:
    raise DecodeError(f"extension type {code} is not allowed")


def _check_map(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    previous = None
    for key, item in pairs:
        if type(key) is not str:
            raise DecodeError(f"map key {key!r} is not a str")
        if previous is not None and key <= previous:
            raise DecodeError(f"map keys out of order or repeated at {key!r}")
        if type(item) not in _DECODED:
            raise DecodeError(f"value of {key!r} has type {type(item).__name__}")
        previous = key
    return dict(pairs)


def _check_array(items: tuple[Any, ...]) -> tuple[Any, ...]:
    for item in items:
        if type(item) not in _DECODED:
            raise DecodeError(f"array item has type {type(item).__name__}")
    return items


def decode(data: bytes, *, max_size: int, max_items: int = MAX_CONTAINER_LEN) -> Any:
    """Parse canonical bytes of at most `max_size` with at most `max_items` entries in any one
    container. Maps come back as dicts, arrays as tuples."""
    if type(data) is not bytes:
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise DecodeError(f"message of {len(data)} bytes exceeds the limit of {max_size}")
    limit = min(len(data), max_items)
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=False,
            strict_map_key=False,  # _check_map refuses non-str keys with a clearer message
            object_pairs_hook=_check_map,
            list_hook=_check_array,
            ext_hook=_reject_ext,
            max_str_len=len(data),
            max_bin_len=len(data),
            max_array_len=limit,
            max_map_len=limit,
            max_ext_len=len(data),
        )
    except DecodeError:
        raise
    except (ValueError, TypeError) as e:  # msgpack's own errors all derive from ValueError
        raise DecodeError(f"malformed MessagePack: {str(e) or type(e).__name__}") from e
    if type(value) not in _DECODED:
        raise DecodeError(f"message has type {type(value).__name__}")
    _check_depth(value, 0)
    if msgpack.packb(value, use_bin_type=True) != data:
        raise DecodeError("message is not in canonical form (integer or string encoding)")
    return value


def decode_own(data: bytes) -> Any:
    """Parse bytes already known to be canonical: values this ledger encoded itself and keeps
    (the state, whose integrity its root guards), or records a checker has already run through
    `decode` (ledger/checking.py). No canonical re-check; never use it on unchecked bytes."""
    try:
        return msgpack.unpackb(data, raw=False, use_list=False, strict_map_key=False)
    except (ValueError, TypeError) as e:
        raise DecodeError(f"malformed checked bytes: {str(e) or type(e).__name__}") from e


def _check_depth(value: Any, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise DecodeError(f"nesting deeper than {MAX_DEPTH}")
    if type(value) is dict:
        for item in value.values():
            if type(item) is dict or type(item) is tuple:
                _check_depth(item, depth + 1)
    elif type(value) is tuple:
        for item in value:
            if type(item) is dict or type(item) is tuple:
                _check_depth(item, depth + 1)
