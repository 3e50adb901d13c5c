"""The state tree: a compact sparse Merkle tree of radix 16 that commits to a key-value state.

Keys are hashed to 256-bit paths, read as 64 nibbles. A subtree holding no leaf hashes to 32 zero
bytes; a subtree holding exactly one leaf is that leaf, lifted as high as it goes; every other
subtree is an internal node `H(0x01 || child_0 || ... || child_15)`. A leaf is
`H(0x00 || path || H(value))`. The shape depends only on the set of keys, so the root is
canonical: the same on every machine, whatever the order of updates. Sixteen children per node
keep a state of n keys about log16(n) levels deep, so an update rehashes a handful of nodes (each
hash over 513 bytes costs about what one over 65 bytes does). Updates mark the nodes on their path
dirty and `root()` rehashes only those, once per batch. `prove`/`verify_proof` give per-key proofs
of a value or of absence.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from hashlib import sha256
from typing import Final

from ledger.errors import ProofError

EMPTY = bytes(32)
RADIX = 16
LEVELS = 64  # nibbles in a path
_TOP = 252  # shift that brings the first nibble of a 256-bit path down to the low 4 bits
SIBLINGS = (RADIX - 1) * 32  # bytes of one proof step: the other fifteen children's hashes
OTHER_LEAF = 64  # bytes of the last proof item that proves absence by another leaf


_Leaf = tuple[bytes, bytes]
"""A leaf: (key, hash). A plain tuple of atoms, which Python's cycle collector stops tracking,
so a state of a million keys adds nothing to the cost of each collection. Its path is
SHA-256(key), recomputed in the rare places that need another leaf's path."""
_KEY: Final = 0
_HASH: Final = 1


class _Node:
    """An internal node: its children, their hashes as last computed, and a bitmask of the
    children changed since, so rehashing a node visits only those."""

    __slots__ = ("hash", "hashes", "kids", "stale")

    def __init__(self) -> None:
        self.kids: list[_Leaf | _Node | None] = [None] * RADIX
        self.hashes: list[bytes] = [EMPTY] * RADIX
        self.stale = 0
        self.hash: bytes | None = None

    def set_kid(self, i: int, kid: _Leaf | _Node | None) -> None:
        self.kids[i] = kid
        self.stale |= 1 << i
        self.hash = None


_Tree = _Leaf | _Node | None


def key_path(key: bytes) -> int:
    return int.from_bytes(sha256(key).digest(), "big")


def leaf_hash(path: int, value: bytes) -> bytes:
    return sha256(b"\x00" + path.to_bytes(32, "big") + sha256(value).digest()).digest()


def _nibble(path: int, depth: int) -> int:
    return (path >> (_TOP - 4 * depth)) & 15


def _hash(tree: _Tree) -> bytes:
    if tree is None:
        return EMPTY
    if type(tree) is tuple:
        return tree[_HASH]
    assert type(tree) is _Node  # noqa: S101 - for the type checker
    if tree.hash is None:
        kids, hashes, stale = tree.kids, tree.hashes, tree.stale
        while stale:
            i = (stale & -stale).bit_length() - 1
            stale &= stale - 1
            kid = kids[i]
            hashes[i] = EMPTY if kid is None else kid[_HASH] if type(kid) is tuple else _hash(kid)
        tree.stale = 0
        tree.hash = sha256(b"\x01" + b"".join(hashes)).digest()
    return tree.hash


def _join(a: _Leaf, b: _Leaf, b_path: int, depth: int) -> _Node:
    """The subtree at `depth` holding exactly the two leaves `a` and `b` (different keys)."""
    a_path = key_path(a[_KEY])
    top = node = _Node()
    while True:
        i, j = _nibble(a_path, depth), _nibble(b_path, depth)
        if i != j:
            node.set_kid(i, a)
            node.set_kid(j, b)
            return top
        inner = _Node()
        node.set_kid(i, inner)
        node, depth = inner, depth + 1


def _put(root: _Tree, leaf: _Leaf, path: int) -> _Tree:
    """The tree `root` with `leaf` (whose path is `path`) inserted or replaced."""
    if root is None:
        return leaf
    key = leaf[_KEY]
    if isinstance(root, tuple):
        return leaf if root[_KEY] == key else _join(root, leaf, path, 0)
    node = root
    shift = _TOP
    while True:
        node.hash = None
        i = (path >> shift) & 15
        node.stale |= 1 << i
        kid = node.kids[i]
        if isinstance(kid, _Node):
            node, shift = kid, shift - 4
            continue
        if kid is None or kid[_KEY] == key:
            node.kids[i] = leaf
        else:
            node.kids[i] = _join(kid, leaf, path, (_TOP - shift) // 4 + 1)
        return root


def _remove(tree: _Tree, key: bytes, path: int, depth: int) -> _Tree:
    if tree is None:
        return None
    if isinstance(tree, tuple):
        return None if tree[_KEY] == key else tree
    assert type(tree) is _Node  # noqa: S101 - for the type checker
    i = _nibble(path, depth)
    tree.set_kid(i, _remove(tree.kids[i], key, path, depth + 1))
    # A node left with a single leaf and nothing else collapses into that leaf; with a single
    # internal node it stays, for that subtree still holds two leaves or more.
    remaining = [kid for kid in tree.kids if kid is not None]
    if not remaining:
        return None
    if len(remaining) == 1 and isinstance(remaining[0], tuple):
        return remaining[0]
    return tree


class StateTree:
    """A mutable key-value map with an incrementally maintained canonical Merkle root.

    Writes land in the map at once and in the tree when the root is next asked for, so many
    writes to one key between two roots (a proposal's tally within a block) cost one tree update.
    """

    __slots__ = ("_dirty", "_root", "_values")

    def __init__(self) -> None:
        self._root: _Tree = None
        self._values: dict[bytes, bytes] = {}
        self._dirty: dict[bytes, bytes | None] = {}
        """Keys set since the tree was last brought to the map, with the value the tree holds."""

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: bytes) -> bytes | None:
        return self._values.get(key)

    def items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) whose key starts with `prefix`, in key order."""
        values = self._values
        for key in sorted(k for k in values if k.startswith(prefix)):
            yield key, values[key]

    def first_difference(self, other: dict[bytes, bytes]) -> bytes | None:
        """The least key whose value differs between this map and `other` (or that only one of
        them holds); None when they are equal."""
        if self._values == other:
            return None
        keys = self._values.keys() ^ other.keys()
        keys |= {k for k, v in self._values.items() if other.get(k, v) != v}
        return min(keys)

    def set(self, key: bytes, value: bytes | None) -> None:
        """Set `key` to `value`; None deletes it. A key set back to what the tree holds (a block
        tried, undone, then made for good) is not dirty any more: its path stays as hashed."""
        values, dirty = self._values, self._dirty
        before = values.get(key)
        if before == value:
            return
        if value is None:
            del values[key]
        else:
            values[key] = value
        if key not in dirty:
            dirty[key] = before
        elif dirty[key] == value:
            del dirty[key]

    def _flush(self) -> None:
        """Bring the tree to the map."""
        root, values = self._root, self._values
        for key in self._dirty:
            value, path = values.get(key), key_path(key)
            if value is None:
                root = _remove(root, key, path, 0)
            else:
                root = _put(root, (key, leaf_hash(path, value)), path)
        self._root = root
        self._dirty.clear()

    def root(self) -> bytes:
        if self._dirty:
            self._flush()
        return _hash(self._root)

    def prove(self, key: bytes) -> list[bytes]:
        """From the root down to where `key`'s path ends, the fifteen other children's hashes of
        each node passed (480 bytes per node); if another leaf sits where the path ends, its
        path and value hash (64 bytes) come last, proving absence."""
        if self._dirty:
            self._flush()
        path = key_path(key)
        proof: list[bytes] = []
        tree, depth = self._root, 0
        while type(tree) is _Node:
            i = _nibble(path, depth)
            _hash(tree)
            proof.append(b"".join(tree.hashes[:i] + tree.hashes[i + 1 :]))
            tree, depth = tree.kids[i], depth + 1
        if isinstance(tree, tuple) and tree[_KEY] != key:
            other = key_path(tree[_KEY]).to_bytes(32, "big")
            proof.append(other + sha256(self._values[tree[_KEY]]).digest())
        return proof


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: Sequence[bytes]) -> None:
    """Raise ProofError unless `proof` shows `key` maps to `value` (None: absent) under `root`."""
    path = key_path(key)
    steps = list(proof)
    if steps and len(steps[-1]) == OTHER_LEAF:
        other = steps.pop()
        other_path = int.from_bytes(other[:32], "big")
        if value is not None or other_path == path:
            raise ProofError("state proof ends in another key's leaf: it proves absence only")
        for depth in range(len(steps)):
            if _nibble(other_path, depth) != _nibble(path, depth):
                raise ProofError("state proof's other leaf is not on the key's path")
        node = sha256(b"\x00" + other).digest()
    else:
        node = EMPTY if value is None else leaf_hash(path, value)
    if len(steps) > LEVELS or any(len(s) != SIBLINGS for s in steps):
        raise ProofError("malformed state proof")
    for depth in range(len(steps) - 1, -1, -1):
        at = _nibble(path, depth) * 32
        node = sha256(b"\x01" + steps[depth][:at] + node + steps[depth][at:]).digest()
    if node != root:
        raise ProofError(f"state proof for key {key!r} does not lead to root {root.hex()[:16]}")
