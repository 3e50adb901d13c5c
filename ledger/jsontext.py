"""JSON documents people write and pass around (genesis files, key files, scenarios): the one
parser for them, so every such file fails the same way, with the file's name and in its terms.

A document is UTF-8 JSON text. Its nesting is bounded (the parser's own recursion never decides),
objects repeat no key (the last would silently win), integers have at most MAX_DIGITS digits and
other numbers are finite (`1e999` would be an infinite float, NaN and Infinity are not JSON).
A fraction is parsed as a float, for the document's own checks to refuse where it stands ("'at'
must be whole seconds"). Sizes are the caller's to bound before reading.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ledger.errors import DecodeError

MAX_DIGITS = 40
"""Digits in one integer: more than any field takes (2^128 has 39)."""


class _RefusedError(ValueError):
    """Raised inside the parser's hooks; becomes a DecodeError naming the document."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RefusedError(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return doc


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _RefusedError(f"a number has {len(text.lstrip('-'))} digits, more than {MAX_DIGITS}")
    return int(text)


def _fraction(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _RefusedError(f"the number {text[:MAX_DIGITS]} is out of range")
    return value


def _constant(text: str) -> Any:
    raise _RefusedError(f"{text} is not a number JSON allows")


def parse(data: bytes, what: str, *, max_depth: int) -> Any:
    """The value of the JSON document `data`; DecodeError saying what is wrong with `what` (its
    name for the user: "genesis file g.json", "key file backup.key") otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError(f"{what} is not JSON text: byte {e.start} is not UTF-8") from e
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=_integer,
            parse_float=_fraction,
            parse_constant=_constant,
        )
    except _RefusedError as e:
        raise DecodeError(f"{what}: {e}") from e
    except json.JSONDecodeError as e:
        raise DecodeError(f"{what} is not JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    except RecursionError as e:
        # the C parser stops at the interpreter's recursion limit, far deeper than max_depth
        raise DecodeError(f"{what} nests deeper than {max_depth} levels") from e
    if _depth(value) > max_depth:
        raise DecodeError(f"{what} nests deeper than {max_depth} levels")
    return value


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (a scalar: 0), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


_HEX = re.compile(r"[0-9a-fA-F]*")


def hex_bytes(value: Any, size: int) -> bytes | None:
    """The `size` bytes a JSON string writes as exactly twice `size` hex digits, else None."""
    if isinstance(value, str) and len(value) == 2 * size and _HEX.fullmatch(value):
        return bytes.fromhex(value)
    return None
