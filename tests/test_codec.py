"""Canonical MessagePack (`ledger.codec`): what round-trips, what is refused, and what it costs.

The codec is the one parser of every wire format, so these tests pin DESIGN.md's "Records" rules
at the byte level: sorted str keys without duplicates, shortest integers, str for text and bin for
bytes, no floats, nil or extension types, no trailing bytes, sizes bounded before parsing. Named
cases give each rejection its own hand-written bytes; properties check that canonical values
round-trip and that arbitrary bytes either re-encode to themselves or raise DecodeError.
"""

from __future__ import annotations

import contextlib
import tracemalloc
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.codec import MAX_CONTAINER_LEN, MAX_DEPTH, decode, encode, encode_own
from ledger.errors import DecodeError

BIG = 1 << 20
"""A max_size no test message comes near."""


def _typed(value: Any) -> Any:
    """`value` with every scalar tagged by its type, so True and 1 (equal in Python) differ."""
    if isinstance(value, dict):
        return ("map", tuple((k, _typed(v)) for k, v in sorted(value.items())))
    if isinstance(value, tuple | list):
        return ("array", tuple(_typed(v) for v in value))
    return (type(value).__name__, value)


# -- strategies ------------------------------------------------------------------------------------

msgpack_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
scalars = msgpack_ints | st.booleans() | st.text(max_size=40) | st.binary(max_size=40)


def _nested(depth: int) -> st.SearchStrategy[Any]:
    """Canonical values whose containers nest at most `depth` deep (arrays as tuples)."""
    values: st.SearchStrategy[Any] = scalars
    for _ in range(depth):
        values = (
            scalars
            | st.lists(values, max_size=4).map(tuple)
            | st.dictionaries(st.text(max_size=6), values, max_size=4)
        )
    return values


canonical_values = _nested(6)


# -- round trips -----------------------------------------------------------------------------------


@given(canonical_values)
def test_canonical_values_round_trip(value: Any) -> None:
    data = encode(value)
    decoded = decode(data, max_size=len(data))
    assert _typed(decoded) == _typed(value)
    assert encode(decoded) == data


@given(canonical_values | st.lists(canonical_values, max_size=3))
def test_the_ledgers_own_values_encode_as_encode_would(value: Any) -> None:
    """`encode_own` (compiled, for the state's values) gives `encode`'s bytes: keys in code point
    order whatever the order given, every integer at its shortest, lists and tuples alike."""
    assert encode_own(value) == encode(value)


def test_encode_own_refuses_an_integer_msgpack_cannot_hold() -> None:
    with pytest.raises(DecodeError, match="cannot encode"):
        encode_own({"balance": 2**64})


@given(st.lists(msgpack_ints | st.booleans(), max_size=8))
def test_arrays_decode_as_tuples_whether_encoded_from_list_or_tuple(items: list[Any]) -> None:
    assert encode(items) == encode(tuple(items))
    decoded = decode(encode(items), max_size=BIG)
    assert type(decoded) is tuple
    assert _typed(decoded) == _typed(tuple(items))


def test_nested_arrays_come_back_as_tuples() -> None:
    decoded = decode(encode([1, [2, [3]], {"a": [4]}]), max_size=BIG)
    assert decoded == (1, (2, (3,)), {"a": (4,)})
    assert type(decoded[1]) is tuple
    assert type(decoded[1][1]) is tuple
    assert type(decoded[2]["a"]) is tuple


def test_str_and_bin_are_distinct_types_and_both_round_trip() -> None:
    as_str, as_bin = encode("abc"), encode(b"abc")
    assert as_str == b"\xa3abc"
    assert as_bin == b"\xc4\x03abc"
    assert decode(as_str, max_size=BIG) == "abc"
    assert decode(as_bin, max_size=BIG) == b"abc"


def test_encode_sorts_keys_by_code_point() -> None:
    data = encode({"é": 1, "z": 2, "aa": 3, "a": 4})
    assert data == b"\x84\xa1a\x04\xa2aa\x03\xa1z\x02\xa2\xc3\xa9\x01"
    assert list(decode(data, max_size=BIG)) == ["a", "aa", "z", "é"]


def test_booleans_are_not_integers() -> None:
    assert encode(True) == b"\xc3"
    assert encode(1) == b"\x01"
    assert decode(b"\xc3", max_size=1) is True
    assert type(decode(b"\x01", max_size=1)) is int


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        pytest.param(0, b"\x00", id="zero-fixint"),
        pytest.param(127, b"\x7f", id="fixint-max"),
        pytest.param(128, b"\xcc\x80", id="uint8-min"),
        pytest.param(256, b"\xcd\x01\x00", id="uint16-min"),
        pytest.param(2**16, b"\xce\x00\x01\x00\x00", id="uint32-min"),
        pytest.param(2**32, b"\xcf\x00\x00\x00\x01\x00\x00\x00\x00", id="uint64-min"),
        pytest.param(2**64 - 1, b"\xcf" + b"\xff" * 8, id="uint64-max"),
        pytest.param(-1, b"\xff", id="negative-fixint"),
        pytest.param(-32, b"\xe0", id="negative-fixint-min"),
        pytest.param(-33, b"\xd0\xdf", id="int8"),
        pytest.param(-129, b"\xd1\xff\x7f", id="int16"),
        pytest.param(-(2**63), b"\xd3\x80" + b"\x00" * 7, id="int64-min"),
    ],
)
def test_integers_use_the_shortest_encoding(value: int, wire: bytes) -> None:
    assert encode(value) == wire
    assert decode(wire, max_size=BIG) == value


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1], ids=["above-uint64", "below-int64"])
def test_integers_outside_msgpack_range_cannot_be_encoded(value: int) -> None:
    with pytest.raises(DecodeError):
        encode(value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(1.5, id="float"),
        pytest.param(None, id="none"),
        pytest.param(bytearray(b"x"), id="bytearray"),
        pytest.param({1: 2}, id="int-key"),
        pytest.param({b"k": 2}, id="bytes-key"),
        pytest.param({"a": {1, 2}}, id="set-value"),
        pytest.param([0.0], id="float-in-array"),
    ],
)
def test_values_without_a_canonical_encoding_are_refused(value: Any) -> None:
    with pytest.raises(DecodeError):
        encode(value)


def _nest(depth: int) -> Any:
    """`depth` arrays inside each other, the innermost empty."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_nesting_is_bounded_by_max_depth_in_both_directions() -> None:
    deepest = encode(_nest(MAX_DEPTH))
    assert deepest == b"\x91" * (MAX_DEPTH - 1) + b"\x90"
    expected: Any = ()
    for _ in range(MAX_DEPTH - 1):
        expected = (expected,)
    assert decode(deepest, max_size=BIG) == expected
    with pytest.raises(DecodeError, match="nesting"):
        encode(_nest(MAX_DEPTH + 1))
    with pytest.raises(DecodeError, match="nesting"):
        decode(b"\x91" * MAX_DEPTH + b"\x90", max_size=BIG)
    with pytest.raises(DecodeError, match="nesting"):
        decode(b"\x81\xa1k" * MAX_DEPTH + b"\x80", max_size=BIG)


# -- named rejections ------------------------------------------------------------------------------

REJECTED = [
    # maps
    pytest.param(b"\x82\xa1b\x01\xa1a\x02", id="unsorted-keys"),
    pytest.param(b"\x82\xa2aa\x01\xa1a\x02", id="unsorted-keys-prefix-after-longer"),
    pytest.param(b"\x82\xa1a\x01\xa1a\x02", id="duplicate-keys"),
    pytest.param(b"\x82\xa0\x01\xa0\x02", id="duplicate-empty-keys"),
    pytest.param(b"\x81\x01\x02", id="int-key"),
    pytest.param(b"\x81\xc4\x01a\x01", id="bin-key"),
    pytest.param(b"\x81\xc3\x01", id="bool-key"),
    pytest.param(b"\x81\x90\x01", id="array-key"),
    pytest.param(b"\x81\x80\x01", id="map-key"),
    pytest.param(b"\x81\xc0\x01", id="nil-key"),
    # types with no place in a canonical message
    pytest.param(b"\xca\x3f\xc0\x00\x00", id="float32"),
    pytest.param(b"\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", id="float64"),
    pytest.param(b"\x91\xcb\x00\x00\x00\x00\x00\x00\x00\x00", id="float64-in-array"),
    pytest.param(b"\x81\xa1a\xca\x00\x00\x00\x00", id="float32-as-map-value"),
    pytest.param(b"\xc0", id="nil"),
    pytest.param(b"\x91\xc0", id="nil-in-array"),
    pytest.param(b"\x81\xa1a\xc0", id="nil-as-map-value"),
    pytest.param(b"\xd4\x05\x00", id="fixext1"),
    pytest.param(b"\xc7\x02\x07ab", id="ext8"),
    pytest.param(b"\x91\xd5\x01\x00\x00", id="ext-in-array"),
    pytest.param(b"\xd6\xff\x00\x00\x00\x01", id="timestamp32"),
    pytest.param(b"\xd7\xff" + b"\x00" * 8, id="timestamp64"),
    pytest.param(b"\xc7\x0c\xff" + b"\x00" * 12, id="timestamp96"),
    pytest.param(b"\x81\xa1t\xd6\xff\x00\x00\x00\x01", id="timestamp-as-map-value"),
    pytest.param(b"\xd6\xff\x00\x00", id="timestamp-truncated"),
    pytest.param(b"\xc1", id="never-used-byte"),
    # non-shortest integers
    pytest.param(b"\xcc\x05", id="uint8-for-fixint"),
    pytest.param(b"\xd0\x05", id="int8-for-positive-fixint"),
    pytest.param(b"\xcd\x00\xff", id="uint16-for-uint8"),
    pytest.param(b"\xd1\xff\x80", id="int16-for-int8"),
    pytest.param(b"\xd1\x00\x05", id="int16-for-fixint"),
    pytest.param(b"\xd0\xff", id="int8-for-negative-fixint"),
    pytest.param(b"\xce\x00\x00\x01\x00", id="uint32-for-uint16"),
    pytest.param(b"\xcf\x00\x00\x00\x00\x00\x00\x00\x01", id="uint64-for-fixint"),
    pytest.param(b"\xd3\xff\xff\xff\xff\xff\xff\xff\xff", id="int64-for-negative-fixint"),
    pytest.param(b"\x81\xa1n\xcc\x05", id="non-shortest-int-as-map-value"),
    # non-shortest lengths
    pytest.param(b"\xd9\x03abc", id="str8-for-fixstr"),
    pytest.param(b"\xda\x00\x03abc", id="str16-for-fixstr"),
    pytest.param(b"\xc5\x00\x03abc", id="bin16-for-bin8"),
    pytest.param(b"\xdc\x00\x01\x01", id="array16-for-fixarray"),
    pytest.param(b"\xdd\x00\x00\x00\x01\x01", id="array32-for-fixarray"),
    pytest.param(b"\xde\x00\x01\xa1a\x01", id="map16-for-fixmap"),
    pytest.param(b"\x81\xd9\x01a\x01", id="str8-key-for-fixstr"),
    # text must be UTF-8
    pytest.param(b"\xa2\xff\xfe", id="invalid-utf8"),
    pytest.param(b"\xa1\x80", id="lone-continuation-byte"),
    pytest.param(b"\xa2\xc3\x28", id="bad-continuation"),
    pytest.param(b"\xa2\xc0\x80", id="overlong-nul"),
    pytest.param(b"\xa3\xed\xa0\x80", id="utf8-encoded-surrogate"),
    pytest.param(b"\x81\xa1\xff\x01", id="invalid-utf8-key"),
    # framing
    pytest.param(b"\x01\x02", id="trailing-bytes"),
    pytest.param(b"\x80\x00", id="trailing-after-map"),
    pytest.param(b"\x92\x01", id="truncated-array"),
    pytest.param(b"\xa5abc", id="truncated-str"),
    pytest.param(b"\xcd\x01", id="truncated-uint16"),
    pytest.param(b"", id="empty"),
    pytest.param(b"\xdd\xff\xff\xff\xff" + b"\x00" * 5, id="array32-claims-2**32-1-items"),
    pytest.param(b"\xdf\xff\xff\xff\xff" + b"\x00" * 5, id="map32-claims-2**32-1-entries"),
    pytest.param(b"\xc6\xff\xff\xff\xff" + b"\x00" * 5, id="bin32-claims-4GiB"),
    pytest.param(b"\xdb\xff\xff\xff\xff" + b"\x00" * 5, id="str32-claims-4GiB"),
]


@pytest.mark.parametrize("data", REJECTED)
def test_non_canonical_or_malformed_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(data, max_size=BIG)


def test_the_canonical_twins_of_the_rejected_integers_and_lengths_are_accepted() -> None:
    # Guards the rejections above: they fail for their encoding, not for their value.
    assert decode(b"\x05", max_size=BIG) == 5
    assert decode(b"\xcc\xff", max_size=BIG) == 255
    assert decode(b"\xd0\x80", max_size=BIG) == -128
    assert decode(b"\xa3abc", max_size=BIG) == "abc"
    assert decode(b"\xc4\x03abc", max_size=BIG) == b"abc"
    assert decode(b"\x91\x01", max_size=BIG) == (1,)
    assert decode(b"\x82\xa1a\x02\xa1b\x01", max_size=BIG) == {"a": 2, "b": 1}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("\x80", id="str"),
        pytest.param(bytearray(b"\x80"), id="bytearray"),
        pytest.param(memoryview(b"\x80"), id="memoryview"),
        pytest.param(None, id="none"),
        pytest.param([0x80], id="list"),
    ],
)
def test_non_bytes_input_is_refused(data: Any) -> None:
    with pytest.raises(DecodeError, match="expected bytes"):
        decode(data, max_size=BIG)


def test_max_size_is_inclusive() -> None:
    data = encode(b"x" * 100)
    assert decode(data, max_size=len(data)) == b"x" * 100
    with pytest.raises(
        DecodeError, match=f"{len(data)} bytes exceeds the limit of {len(data) - 1}"
    ):
        decode(data, max_size=len(data) - 1)


def test_oversized_input_is_refused_before_any_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def parser_must_not_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("msgpack.unpackb called on an oversized message")

    monkeypatch.setattr(msgpack, "unpackb", parser_must_not_run)
    huge = b"\xc4\xff" + b"\x00" * (16 << 20)  # 16 MiB
    with pytest.raises(DecodeError, match="exceeds the limit of 64"):
        decode(huge, max_size=64)


def test_a_container_may_hold_max_container_len_entries_and_no_more() -> None:
    full = b"\xdc" + MAX_CONTAINER_LEN.to_bytes(2, "big") + b"\x80" * MAX_CONTAINER_LEN
    decoded = decode(full, max_size=len(full))
    assert len(decoded) == MAX_CONTAINER_LEN
    over = b"\xdc" + (MAX_CONTAINER_LEN + 1).to_bytes(2, "big") + b"\x80" * (MAX_CONTAINER_LEN + 1)
    with pytest.raises(DecodeError):
        decode(over, max_size=len(over))


def test_max_items_lowers_the_container_bound() -> None:
    three = encode([1, 2, 3])
    assert decode(three, max_size=BIG, max_items=3) == (1, 2, 3)
    with pytest.raises(DecodeError):
        decode(three, max_size=BIG, max_items=2)
    with pytest.raises(DecodeError):
        decode(encode({"a": 1, "b": 2, "c": 3}), max_size=BIG, max_items=2)


def test_decode_errors_say_what_went_wrong() -> None:
    # Regression: `e or type(e).__name__` never falls back (exceptions are truthy), so msgpack's
    # message-less StackError produced "malformed MessagePack: " and nothing else.
    with pytest.raises(DecodeError) as caught:
        decode(b"\x91" * 4095 + b"\x90", max_size=BIG)
    assert str(caught.value).split(":", 1)[-1].strip(), f"empty reason in {str(caught.value)!r}"


# -- memory ----------------------------------------------------------------------------------------

PEAK_LIMIT = 8 << 20  # 8 MiB for a 4 KiB message: any per-claimed-entry allocation would exceed it


def _peak_while_decoding(data: bytes) -> int:
    tracemalloc.start()
    try:
        with contextlib.suppress(DecodeError):
            decode(data, max_size=len(data))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x91" * 4095 + b"\x90", id="4KiB-of-nested-arrays"),
        pytest.param(b"\x81\xa0" * 2047 + b"\x80", id="4KiB-of-nested-maps"),
        pytest.param(b"\xdc\x10\x00" + b"\x80" * 4096, id="array-of-4096-empty-maps"),
        pytest.param(b"\xdc\x10\x00" + b"\x90" * 4096, id="array-of-4096-empty-arrays"),
        pytest.param(b"\xdd\xff\xff\xff\xff" + b"\x00" * 5, id="array32-claiming-2**32-1"),
        pytest.param(b"\xdf\xff\xff\xff\xff" + b"\x00" * 5, id="map32-claiming-2**32-1"),
        pytest.param(b"\xdb\xff\xff\xff\xff" + b"a" * 5, id="str32-claiming-4GiB"),
    ],
)
def test_small_hostile_messages_stay_small_in_memory(data: bytes) -> None:
    peak = _peak_while_decoding(data)
    assert peak < PEAK_LIMIT, f"decoding {len(data)} bytes peaked at {peak} bytes"


# -- arbitrary bytes -------------------------------------------------------------------------------


def _decodes_to_itself_or_raises_decode_error(data: bytes) -> None:
    try:
        value = decode(data, max_size=BIG)
    except DecodeError:
        return
    assert encode(value) == data


@given(st.binary(max_size=64))
def test_any_bytes_decode_canonically_or_raise_decode_error(data: bytes) -> None:
    _decodes_to_itself_or_raises_decode_error(data)


@given(canonical_values, st.data())
def test_any_mutation_of_a_canonical_message_decodes_canonically_or_raises(
    value: Any, data: st.DataObject
) -> None:
    # Random bytes rarely parse at all; mutating a valid message reaches the deeper checks.
    encoded = bytearray(encode(value))
    at = data.draw(st.integers(0, len(encoded) - 1), label="offset")
    encoded[at] = data.draw(st.integers(0, 255).filter(lambda b: b != encoded[at]), label="byte")
    cut = data.draw(st.integers(0, len(encoded)), label="truncate to")
    _decodes_to_itself_or_raises_decode_error(bytes(encoded[:cut]))
