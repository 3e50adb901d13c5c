"""The state tree: a canonical root whatever the order of updates, incremental equals from-scratch,
and per-key proofs of values and of absence."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
