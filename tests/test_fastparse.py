"""The compiled parser of contribution records gives `decode_record` the verdict its own parser
gives: the same record for valid bytes, the same error (type, rule and message) for any other,
whether the bytes are well-formed records with bad values, in non-canonical form, mutated or
arbitrary."""

from __future__ import annotations

from typing import Any

import msgpack
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import codec, fastparse
from ledger.crypto import Keypair
from ledger.errors import InvalidData
from ledger.records import (
    _ENVELOPE_KEYS,
    MAX_EVIDENCE_BYTES,
    ZERO_HASH,
    Contribution,
    Endorsement,
    _decode_record,
    decode_record,
    sign_record,
)

KEY = Keypair.from_seed(b"k" * 32)
NETWORK = b"n" * 32


def outcome(decode: Any, data: bytes) -> tuple[Any, ...]:
    try:
        record = decode(data)
    except InvalidData as e:
        return ("refused", type(e), str(e), getattr(e, "rule", None))
    return ("record", record, record.raw, record.id)


def same_verdict(data: bytes) -> None:
    assert outcome(decode_record, data) == outcome(
        lambda d: _decode_record(d, MAX_EVIDENCE_BYTES), data
    )


any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
texts = any_text | st.sampled_from(
    ["", "x" * 200, "x" * 201, "é" * 100, "a\nb", "a\tb", "\x00", "code", "Code", "a-b-9"]
)
ints = st.integers(-(2**63), 2**64 - 1) | st.sampled_from(
    [0, 1, 127, 128, 255, 256, 100_000, 100_001, 2**53 - 1, 2**53, -1, -33, -129]
)
blobs = st.binary(max_size=70) | st.sampled_from([ZERO_HASH, b"\x01" * 32, b"\x02" * 64])
values = st.one_of(texts, ints, blobs, st.booleans(), st.tuples(texts), st.lists(texts, max_size=3))


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A valid value four times in five, anything else the fifth."""
    return st.integers(0, 4).flatmap(lambda n: valid if n else values)


valid_texts = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=30
)
valid_kinds = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=32)
small = st.integers(0, 100_000)


@st.composite
def contribution_maps(draw: st.DrawFn) -> dict[str, Any]:
    """A contribution record's map, its values mostly valid, some anywhere near or past the
    rules; now and then a key missing or one too many."""
    body: dict[str, Any] = {
        "title": draw(mostly(valid_texts)),
        "kind": draw(mostly(valid_kinds)),
        "refs": draw(mostly(st.lists(valid_texts, max_size=3).map(tuple))),
        "description": draw(mostly(st.just("") | valid_texts)),
    }
    for name in ("hours", "size"):
        if draw(st.booleans()):
            body[name] = draw(mostly(small))
    if draw(st.integers(0, 9)) == 0:
        del body[draw(st.sampled_from(sorted(body)))]
    if draw(st.integers(0, 9)) == 0:
        body[draw(texts)] = draw(values)
    seq = draw(mostly(st.integers(1, 2**53 - 1)))
    record = {
        "at": draw(mostly(st.integers(0, 2**53 - 1))),
        "author": draw(mostly(st.just(KEY.public_key))),
        "body": body,
        "kind": draw(mostly(st.just("contribution"))),
        "prev": draw(mostly(st.just(ZERO_HASH if seq == 1 else b"\x01" * 32))),
        "seq": seq,
        "sig": draw(mostly(st.just(b"\x02" * 64))),
    }
    if draw(st.integers(0, 9)) == 0:
        del record[draw(st.sampled_from(sorted(record)))]
    return record


ENCODERS = {
    "canonical": codec.encode,
    "msgpack, in the map's own key order (the body's is not sorted)": lambda m: msgpack.packb(
        m, use_bin_type=True
    ),
    "msgspec, in the map's own key order": msgspec.msgpack.encode,
}


@settings(max_examples=900, deadline=None)
@given(contribution_maps(), st.sampled_from(sorted(ENCODERS)))
def test_well_formed_records_with_any_values_get_one_verdict(m: dict[str, Any], how: str) -> None:
    try:
        data = ENCODERS[how](m)
    except (codec.DecodeError, OverflowError, ValueError, TypeError):
        return  # no bytes to give
    same_verdict(data)


def valid_records() -> list[bytes]:
    made = []
    prev = ZERO_HASH
    bodies = [
        Contribution(title="t", kind="code"),
        Contribution(
            title="é" * 100,
            kind="a-b-9",
            refs=("https://example.org/x",) * 16,
            description="line\nline",
            hours=100_000,
            size=2**53 - 1,
        ),
        Contribution(title="x" * 200, kind="doc", description="", hours=0, size=0),
        Endorsement(contribution=b"\x07" * 32),
    ]
    for seq, body in enumerate(bodies, 1):
        record = sign_record(KEY, NETWORK, seq=seq, prev=prev, timestamp=seq * 10**12, body=body)
        made.append(record.raw)
        prev = record.id
    return made


VALID = valid_records()


def test_valid_contributions_take_the_compiled_path_to_the_same_record() -> None:
    for data in VALID:
        parsed = fastparse.contribution(data, MAX_EVIDENCE_BYTES)
        assert (parsed is not None) == (decode_record(data).kind == "contribution")
        same_verdict(data)
    assert fastparse.contribution(VALID[0], len(VALID[0]) - 1) is None  # over the bound


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.integers(0, 2)), max_size=4),
)
def test_mutated_records_get_one_verdict(data: bytes, edits: list[tuple[int, int, int]]) -> None:
    """Bytes replaced, inserted or deleted anywhere: non-canonical lengths and integers, broken
    UTF-8, keys out of order, truncation, trailing bytes."""
    mutated = bytearray(data)
    for where, byte, how in edits:
        at = where % (len(mutated) + 1)
        if how == 0 and at < len(mutated):
            mutated[at] = byte
        elif how == 1:
            mutated.insert(at, byte)
        elif at < len(mutated):
            del mutated[at]
    same_verdict(bytes(mutated))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_get_one_verdict(data: bytes) -> None:
    same_verdict(data)


def test_integers_in_longer_encodings_than_needed_are_refused_alike() -> None:
    """seq 1 as uint64 (0xcf + 8 bytes) instead of one byte: same map, not canonical."""
    data = VALID[0]
    short = b"\xa3seq\x01"
    assert short in data
    long_form = data.replace(short, b"\xa3seq\xcf" + (1).to_bytes(8, "big"))
    assert fastparse.contribution(long_form, MAX_EVIDENCE_BYTES) is None
    same_verdict(long_form)
    assert outcome(decode_record, long_form)[0] == "refused"


def test_a_body_out_of_canonical_form_is_refused_alike() -> None:
    """The envelope canonical, the body's keys out of order or its integer too long."""
    body = {"description": "", "hours": 1, "kind": "code", "refs": (), "title": "t"}
    m = {
        "at": 1,
        "author": KEY.public_key,
        "body": body,
        "kind": "contribution",
        "prev": ZERO_HASH,
        "seq": 1,
        "sig": b"\x02" * 64,
    }
    canonical = codec.encode(m)
    assert fastparse.contribution(canonical, MAX_EVIDENCE_BYTES) is not None
    unsorted = codec.encode(m).replace(
        msgpack.packb(body), msgpack.packb(dict(reversed(body.items())))
    )
    long_int = canonical.replace(b"\xa5hours\x01", b"\xa5hours\xcc\x01")
    for data in (unsorted, long_int):
        assert data != canonical
        assert fastparse.contribution(data, MAX_EVIDENCE_BYTES) is None
        assert outcome(decode_record, data)[0] == "refused"
        same_verdict(data)


@pytest.mark.parametrize("where", ["refs", "body", "unknown field"])
def test_a_deeply_nested_value_is_refused_not_raised(where: str) -> None:
    """Arrays nested 5,000 deep where a record has text, a map or nothing: a DecodeError from
    the reference parser, never a RecursionError (which would stop the node)."""
    body = {"description": "", "kind": "code", "refs": ("r",), "title": "t"}
    m = {"at": 1, "author": KEY.public_key, "body": body, "kind": "contribution",
         "prev": ZERO_HASH, "seq": 1, "sig": b"\x02" * 64}  # fmt: skip
    deep = b"\x91" * 5_000 + b"\x01"
    if where == "refs":
        data = codec.encode(m).replace(b"\xa4refs\x91\xa1r", b"\xa4refs" + deep)
    elif where == "body":
        data = codec.encode(m).replace(codec.encode(body), deep)
    else:
        data = codec.encode({**m, "zz": 1}).replace(b"\xa2zz\x01", b"\xa2zz" + deep)
    assert deep in data
    assert fastparse.contribution(data, MAX_EVIDENCE_BYTES) is None
    assert outcome(decode_record, data)[0] == "refused"
    same_verdict(data)


BOUNDARY_VALUES = [
    *(n for k in (7, 8, 16, 32, 64) for n in (2**k - 1, 2**k) if n < 2**64),
    *(-n for k in (5, 7, 15, 31, 63) for n in (2**k, 2**k + 1) if n <= 2**63),
    0, -1, True, False,
    *("x" * n for n in (0, 31, 32, 255, 256, 65_535, 65_536)),
    *(b"x" * n for n in (0, 255, 256, 65_535, 65_536)),
    *(("x",) * n for n in (0, 15, 16, 65_535, 65_536)),
    *({f"{i:05d}": i for i in range(n)} for n in (0, 15, 16, 65_536)),
]  # fmt: skip


@pytest.mark.parametrize("value", BOUNDARY_VALUES, ids=range(len(BOUNDARY_VALUES)))
def test_msgspec_encodes_as_the_canonical_encoder_at_every_size_boundary(value: Any) -> None:
    """The compiled parser keeps bytes only if msgspec re-encodes them exactly: sound only while
    msgspec picks the shortest form for every size, as msgpack (and so the codec) does."""
    assert msgspec.msgpack.encode(value) == msgpack.packb(value, use_bin_type=True)


def test_the_compiled_parser_knows_a_contribution_records_fields_in_canonical_order() -> None:
    body = fastparse.ContributionBody.__struct_fields__
    assert body == tuple(sorted(Contribution.FIELDS + Contribution.OPTIONAL))
    assert fastparse.ContributionRecord.__struct_fields__ == tuple(sorted(_ENVELOPE_KEYS))
