"""The state tree: a compact sparse Merkle tree that commits to a key-value state.

Keys are hashed to 256-bit paths. A subtree holding no leaf hashes to 32 zero bytes; a subtree
holding exactly one leaf is that leaf, lifted as high as it goes; every other subtree is an
internal node `H(0x01 || left || right)`. A leaf is `H(0x00 || path || H(value))`. The shape
depends only on the set of keys, so the root is canonical: the same on every machine, whatever the
order of updates. Updates mark the nodes on their path dirty and `root()` rehashes only those, so a
block costs O(changes x log n) hashes, not O(state). `prove`/`verify_proof` give per-key proofs of
a value or of absence.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from hashlib import sha256

from ledger.errors import ProofError

EMPTY = bytes(32)
DEPTH = 256


class _Leaf:
    __slots__ = ("hash", "key", "path", "value")

    def __init__(self, key: bytes, path: int, value: bytes) -> None:
        self.key = key
        self.path = path
        self.value = value
        self.hash = leaf_hash(path, value)


class _Node:
    __slots__ = ("hash", "left", "right")

    def __init__(self, left: _Tree, right: _Tree) -> None:
        self.left = left
        self.right = right
        self.hash: bytes | None = None


_Tree = _Leaf | _Node | None


def key_path(key: bytes) -> int:
    return int.from_bytes(sha256(key).digest(), "big")


def leaf_hash(path: int, value: bytes) -> bytes:
    return sha256(b"\x00" + path.to_bytes(32, "big") + sha256(value).digest()).digest()


def _bit(path: int, depth: int) -> int:
    return (path >> (DEPTH - 1 - depth)) & 1


def _hash(tree: _Tree) -> bytes:
    if tree is None:
        return EMPTY
    if isinstance(tree, _Leaf):
        return tree.hash
    if tree.hash is None:
        tree.hash = sha256(b"\x01" + _hash(tree.left) + _hash(tree.right)).digest()
    return tree.hash


def _join(a: _Leaf, b: _Leaf, depth: int) -> _Tree:
    """The subtree at `depth` holding exactly the two leaves `a` and `b`."""
    bit_a, bit_b = _bit(a.path, depth), _bit(b.path, depth)
    if bit_a == bit_b:
        inner = _join(a, b, depth + 1)
        return _Node(inner, None) if bit_a == 0 else _Node(None, inner)
    return _Node(a, b) if bit_a == 0 else _Node(b, a)


def _put(tree: _Tree, leaf: _Leaf, depth: int) -> _Tree:
    """`tree` (the subtree at `depth`) with `leaf` inserted or replaced."""
    if not isinstance(tree, _Node):
        if tree is None or tree.path == leaf.path:
            return leaf
        return _join(tree, leaf, depth)
    top = tree
    path = leaf.path
    while True:
        tree.hash = None
        if (path >> (DEPTH - 1 - depth)) & 1 == 0:
            child = tree.left
            if isinstance(child, _Node):
                tree, depth = child, depth + 1
                continue
            tree.left = (
                leaf if child is None or child.path == path else _join(child, leaf, depth + 1)
            )
        else:
            child = tree.right
            if isinstance(child, _Node):
                tree, depth = child, depth + 1
                continue
            tree.right = (
                leaf if child is None or child.path == path else _join(child, leaf, depth + 1)
            )
        return top


def _remove(tree: _Tree, path: int, depth: int) -> _Tree:
    if tree is None:
        return None
    if isinstance(tree, _Leaf):
        return None if tree.path == path else tree
    tree.hash = None
    if _bit(path, depth) == 0:
        tree.left = _remove(tree.left, path, depth + 1)
    else:
        tree.right = _remove(tree.right, path, depth + 1)
    # A node left with a single leaf and nothing else collapses into that leaf.
    if tree.left is None and isinstance(tree.right, _Leaf):
        return tree.right
    if tree.right is None and isinstance(tree.left, _Leaf):
        return tree.left
    if tree.left is None and tree.right is None:
        return None
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
        self._dirty: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: bytes) -> bytes | None:
        return self._values.get(key)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value), in key order."""
        for key in sorted(self._values):
            yield key, self._values[key]

    def set(self, key: bytes, value: bytes | None) -> None:
        """Set `key` to `value`; None deletes it."""
        if value is None:
            if self._values.pop(key, None) is not None:
                self._dirty.add(key)
        elif self._values.get(key) != value:
            self._values[key] = value
            self._dirty.add(key)

    def _flush(self) -> None:
        root = self._root
        for key in sorted(self._dirty):
            value = self._values.get(key)
            if value is None:
                root = _remove(root, key_path(key), 0)
            else:
                root = _put(root, _Leaf(key, key_path(key), value), 0)
        self._root = root
        self._dirty.clear()

    def root(self) -> bytes:
        if self._dirty:
            self._flush()
        return _hash(self._root)

    def prove(self, key: bytes) -> list[bytes]:
        """Sibling hashes from the root down to where `key`'s path ends (a leaf or emptiness)."""
        if self._dirty:
            self._flush()
        path = key_path(key)
        siblings: list[bytes] = []
        tree, depth = self._root, 0
        while isinstance(tree, _Node):
            if _bit(path, depth) == 0:
                siblings.append(_hash(tree.right))
                tree = tree.left
            else:
                siblings.append(_hash(tree.left))
                tree = tree.right
            depth += 1
        if isinstance(tree, _Leaf) and tree.path != path:
            # Absence proven by a different leaf where the path ends: send it as the last item.
            siblings.append(tree.path.to_bytes(32, "big") + sha256(tree.value).digest())
        return siblings


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: Sequence[bytes]) -> None:
    """Raise ProofError unless `proof` shows `key` maps to `value` (None: absent) under `root`."""
    path = key_path(key)
    siblings = list(proof)
    if siblings and len(siblings[-1]) == 64:
        other = siblings.pop()
        other_path = int.from_bytes(other[:32], "big")
        if value is not None or other_path == path:
            raise ProofError("state proof ends in another key's leaf: it proves absence only")
        for depth in range(len(siblings)):
            if _bit(other_path, depth) != _bit(path, depth):
                raise ProofError("state proof's other leaf is not on the key's path")
        node = sha256(b"\x00" + other).digest()
    else:
        node = EMPTY if value is None else leaf_hash(path, value)
    if len(siblings) > DEPTH or any(len(s) != 32 for s in siblings):
        raise ProofError("malformed state proof")
    for depth in range(len(siblings) - 1, -1, -1):
        sibling = siblings[depth]
        if _bit(path, depth) == 0:
            node = sha256(b"\x01" + node + sibling).digest()
        else:
            node = sha256(b"\x01" + sibling + node).digest()
    if node != root:
        raise ProofError(f"state proof for key {key!r} does not lead to root {root.hex()[:16]}")
