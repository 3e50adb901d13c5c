"""The state tree: a canonical root whatever the order of updates, incremental equals from-scratch,
and per-key proofs of values and of absence."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import statetree
from ledger.errors import ProofError
from ledger.statetree import EMPTY, StateTree, verify_proof

keys = st.binary(min_size=1, max_size=12)
maps = st.dictionaries(keys, st.binary(min_size=0, max_size=16), max_size=60)


def tree_of(items: dict[bytes, bytes]) -> StateTree:
    tree = StateTree()
    for key, value in items.items():
        tree.set(key, value)
    return tree


@given(maps, st.randoms(use_true_random=False))
def test_root_does_not_depend_on_update_order(
    items: dict[bytes, bytes], rnd: random.Random
) -> None:
    shuffled = list(items.items())
    rnd.shuffle(shuffled)
    other = StateTree()
    for key, _ in shuffled:  # write garbage first, then the real values, then delete extras
        other.set(key, b"garbage")
    other.set(b"\xffextra", b"x")
    for key, value in shuffled:
        other.set(key, value)
    other.set(b"\xffextra", None)
    assert other.root() == tree_of(items).root()


@given(maps, maps)
def test_incremental_root_equals_from_scratch(
    first: dict[bytes, bytes], second: dict[bytes, bytes]
) -> None:
    tree = tree_of(first)
    tree.root()  # cache hashes, then change things
    for key in first:
        if key not in second:
            tree.set(key, None)
    for key, value in second.items():
        tree.set(key, value)
    assert tree.root() == tree_of(second).root()
    assert dict(tree.items()) == second


@given(maps, maps, maps, st.booleans())
def test_a_change_hashed_undone_and_made_again_gives_the_from_scratch_root(
    first: dict[bytes, bytes], tried: dict[bytes, bytes], then: dict[bytes, bytes], again: bool
) -> None:
    """A block tried (hashed), undone, then made for good or another made instead: keys set
    back to what the tree holds are not rehashed, and the root is still the map's."""
    tree = tree_of(first)
    tree.root()

    def write(changes: dict[bytes, bytes]) -> dict[bytes, bytes | None]:
        before = {key: tree.get(key) for key in changes}
        for key, value in changes.items():
            tree.set(key, value or None)  # an empty value stands for a deletion
        return before

    undo = write(tried)
    tree.root()
    for key, value in undo.items():
        tree.set(key, value)
    write(tried if again else then)
    expected = dict(first)
    for key, value in (tried if again else then).items():
        if value:
            expected[key] = value
        else:
            expected.pop(key, None)
    assert tree.root() == tree_of(expected).root()


@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"a", b"b", b"c", b"d"]),
            st.sampled_from([None, b"1", b"2"]),
            st.booleans(),
        ),
        max_size=40,
    )
)
def test_any_sequence_of_sets_deletes_and_roots_gives_the_from_scratch_root(
    ops: list[tuple[bytes, bytes | None, bool]],
) -> None:
    """Few keys and values, so keys are often set back to what the tree last hashed."""
    tree, expected = StateTree(), {}
    for key, value, hash_now in ops:
        tree.set(key, value)
        if value is None:
            expected.pop(key, None)
        else:
            expected[key] = value
        if hash_now:
            assert tree.root() == tree_of(expected).root()
    assert tree.root() == tree_of(expected).root()
    assert dict(tree.items()) == expected


def test_empty_tree_root() -> None:
    assert StateTree().root() == EMPTY


def test_single_leaf_root_is_the_leaf() -> None:
    tree = tree_of({b"k": b"v"})
    path = hashlib.sha256(b"k").digest()
    assert tree.root() == hashlib.sha256(b"\x00" + path + hashlib.sha256(b"v").digest()).digest()


@given(maps.filter(bool), keys)
@settings(max_examples=60)
def test_proofs_of_values_and_absence(items: dict[bytes, bytes], probe: bytes) -> None:
    tree = tree_of(items)
    root = tree.root()
    for key, value in items.items():
        verify_proof(root, key, value, tree.prove(key))
        with pytest.raises(ProofError):
            verify_proof(root, key, value + b"!", tree.prove(key))
        with pytest.raises(ProofError):
            verify_proof(root, key, None, tree.prove(key))
    if probe not in items:
        verify_proof(root, probe, None, tree.prove(probe))
        with pytest.raises(ProofError):
            verify_proof(root, probe, b"claimed", tree.prove(probe))


@given(maps, maps)
def test_first_difference_is_the_least_key_that_differs(
    first: dict[bytes, bytes], second: dict[bytes, bytes]
) -> None:
    differing = [k for k in first.keys() | second.keys() if first.get(k) != second.get(k)]
    expected = min(differing) if differing else None
    assert tree_of(first).first_difference(second) == expected
    assert tree_of(first).first_difference(dict(first)) is None


def spec_root(leaves: list[tuple[int, bytes]], depth: int = 0) -> bytes:
    """PROTOCOL §11 read literally: empty is zeros, one leaf is the leaf, else the node over
    sixteen children split on nibble `depth`."""
    if not leaves:
        return EMPTY
    if len(leaves) == 1:
        path, value = leaves[0]
        return hashlib.sha256(
            b"\x00" + path.to_bytes(32, "big") + hashlib.sha256(value).digest()
        ).digest()
    kids: list[list[tuple[int, bytes]]] = [[] for _ in range(16)]
    for path, value in leaves:
        kids[(path >> (252 - 4 * depth)) & 15].append((path, value))
    return hashlib.sha256(b"\x01" + b"".join(spec_root(k, depth + 1) for k in kids)).digest()


@given(maps, maps)
def test_root_is_the_one_protocol_section_11_defines(
    first: dict[bytes, bytes], second: dict[bytes, bytes]
) -> None:
    tree = tree_of(first)
    tree.root()
    for key in first.keys() - second.keys():
        tree.set(key, None)
    for key, value in second.items():
        tree.set(key, value)
    expected = spec_root(
        [(int.from_bytes(hashlib.sha256(k).digest(), "big"), v) for k, v in second.items()]
    )
    assert tree.root() == expected


@given(
    st.lists(st.integers(min_value=0, max_value=255), min_size=1, max_size=40, unique=True),
    st.sampled_from([1, 4, 8, 60, 200, 252]),
    st.randoms(use_true_random=False),
)
@settings(max_examples=60)
def test_keys_sharing_long_path_prefixes_give_the_spec_root_and_proofs(
    tails: list[int], shared: int, rnd: random.Random
) -> None:
    """Paths that agree on their first `shared` bits, so nodes nest up to 64 levels deep. The
    keys here are their own paths (key_path patched to read them), as no hash gives such keys."""
    base = rnd.getrandbits(256)
    keys = [(base ^ rnd.getrandbits(256 - shared) ^ t).to_bytes(32, "big") for t in tails]
    keys = list(dict.fromkeys(keys))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(statetree, "key_path", lambda key: int.from_bytes(key, "big"))
        tree = StateTree()
        for i, key in enumerate(keys):
            tree.set(key, bytes([i % 3]))
        for key in keys[::3]:
            tree.set(key, None)
        live = {k: bytes([i % 3]) for i, k in enumerate(keys) if k not in keys[::3]}
        root = tree.root()
        assert root == spec_root([(int.from_bytes(k, "big"), v) for k, v in live.items()])
        for key in keys:
            verify_proof(root, key, live.get(key), tree.prove(key))
