"""Field checks shared by every message schema: each reads one key of a decoded map or raises.

Checks are exact: a map must carry exactly the expected keys, text is bounded in UTF-8 bytes, a
one-line text has no control characters, integers are ints (never bools) within bounds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ledger.errors import SchemaError

# Unicode category Cc, and lone surrogates (Cs), which have no UTF-8 encoding at all.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_MULTILINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")

MAX_INT = 2**53 - 1
"""Largest integer in any field: exact in every JSON and JavaScript client too."""


def exact_keys(m: Any, what: str, required: frozenset[str], optional: frozenset[str]) -> None:
    if type(m) is not dict and not isinstance(m, Mapping):  # the ABC check costs more than a dict's
        raise SchemaError(f"{what} must be a map, got {type(m).__name__}")
    keys = m.keys()
    if required <= keys and len(keys) == len(required):
        return
    missing = required - keys
    if missing:
        raise SchemaError(f"{what} is missing {', '.join(sorted(missing))}")
    unknown = keys - required - optional
    if unknown:
        raise SchemaError(f"{what} has unknown field {', '.join(sorted(map(str, unknown)))}")


def integer(value: Any, what: str, lo: int, hi: int) -> int:
    if type(value) is not int:
        raise SchemaError(f"{what} must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise SchemaError(f"{what} must be within {lo}..{hi}, got {value}")
    return value


def fixed_bytes(value: Any, what: str, size: int) -> bytes:
    if type(value) is not bytes:
        raise SchemaError(f"{what} must be bytes, got {type(value).__name__}")
    if len(value) != size:
        raise SchemaError(f"{what} must be {size} bytes, got {len(value)}")
    return value


def bounded_bytes(value: Any, what: str, lo: int, hi: int) -> bytes:
    if type(value) is not bytes:
        raise SchemaError(f"{what} must be bytes, got {type(value).__name__}")
    if not lo <= len(value) <= hi:
        raise SchemaError(f"{what} must be {lo}..{hi} bytes, got {len(value)}")
    return value


def text(value: Any, what: str, lo: int, hi: int, *, multiline: bool = False) -> str:
    """A str of `lo`..`hi` UTF-8 bytes; one-line text has no control characters at all."""
    if type(value) is str and value.isascii() and value.isprintable() and lo <= len(value) <= hi:
        return value  # printable ASCII: one byte a character, no control character
    if type(value) is not str:
        raise SchemaError(f"{what} must be text, got {type(value).__name__}")
    size = len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if not lo <= size <= hi:
        raise SchemaError(f"{what} must be {lo}..{hi} UTF-8 bytes, got {size}")
    bad = (_CONTROL_MULTILINE if multiline else _CONTROL).search(value)
    if bad:
        raise SchemaError(
            f"{what} contains control or surrogate character U+{ord(bad.group()):04X}"
        )
    return value


def text_tuple(value: Any, what: str, most: int, lo: int, hi: int) -> tuple[str, ...]:
    if type(value) is not tuple:
        raise SchemaError(f"{what} must be a list, got {type(value).__name__}")
    if len(value) > most:
        raise SchemaError(f"{what} must have at most {most} items, got {len(value)}")
    for i, item in enumerate(value):
        plain = type(item) is str and item.isascii() and lo <= len(item) <= hi
        if not plain or _CONTROL.search(item):
            text(item, f"{what}[{i}]", lo, hi)  # the full check, which names the item
    return value
