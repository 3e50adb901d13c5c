"""RFC 9162 (section 2.1) Merkle tree hashing, proofs and the incremental log: pure, no I/O.

This module owns every Merkle computation of the ledger: leaf and node hashing, tree roots,
generating and verifying inclusion and consistency proofs, and appending to a log through its
frontier. Storage is someone else's job: proof generation reads nodes through a callable, so the
in-memory `MerkleLog` here and a SQLite store serve proofs with the same code.

Vocabulary. The *perfect subtree* at (level, index) covers the 2**level leaves
[index * 2**level, (index + 1) * 2**level); level 0 nodes are leaf hashes. An RFC 9162 tree of n
leaves splits at the largest power of two k < n, so its left part is always a perfect subtree and
only its right edge is not; every subtree it contains (and so every proof element) is the hash of
a leaf range [begin, end) that fits in one aligned block (see `range_hash`). The *frontier* of a
tree of n leaves is the list of perfect subtrees that the binary digits of n cut [0, n) into,
largest (leftmost) first; it is all a log needs to keep appending and to compute its root.

Verification raises `ProofError` for anything that does not verify, including malformed input
(hashes that are not 32 bytes, impossible indexes or sizes, proofs of the wrong length); it never
succeeds vacuously. Generating a proof that cannot exist is a caller bug: `ValueError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from ledger.errors import ProofError

HASH_SIZE: Final = 32
"""Bytes in every Merkle hash (SHA-256)."""

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"
_sha256: Final = hashlib.sha256

EMPTY_ROOT: Final = _sha256(b"").digest()
"""The root of the tree with no leaves: SHA-256 of the empty string."""

NodeSource = Callable[[int, int], bytes]
"""`node(level, index)`: the hash of the perfect subtree at (level, index); raises if unknown."""

CompletedNode = tuple[int, int, bytes]
"""(level, index, hash) of a perfect subtree that an append completed."""


def leaf_hash(leaf: bytes) -> bytes:
    """SHA-256(0x00 || leaf): the hash of one leaf input."""
    return _sha256(_LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The RFC 9162 root over `leaves` (leaf inputs, not hashes); `EMPTY_ROOT` for no leaves."""
    return root_of_hashes([leaf_hash(leaf) for leaf in leaves])


def root_of_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """The RFC 9162 root over leaves given by their leaf hashes."""
    log = MerkleLog(keep_nodes=False)
    for h in leaf_hashes:
        log.append_hash(h)
    return log.root()


# --- proof generation ------------------------------------------------------------------------


def range_hash(node: NodeSource, begin: int, end: int) -> bytes:
    """The RFC 9162 hash of the subtree over leaves [begin, end), from O(log n) stored nodes.

    Precondition: `begin` is a multiple of the smallest power of two >= `end - begin`, i.e. the
    range starts an aligned block of that size and ends inside it ([0, n) always qualifies; [1, 3)
    does not). Every node of every RFC 9162 tree meets it, so every proof hash does: [0, n) does,
    and if [a, b) does, its split k (the largest power of two < b - a) makes a a multiple of 2k,
    so both children [a, a + k) and [a + k, b) (at most k leaves, from a multiple of k) do too.

    Under the precondition the subtree is the perfect subtrees that the binary digits of
    `end - begin` cut it into, largest first, folded from the right: `node(level, index)` is called
    once for each (popcount(end - begin) calls) and nothing is rehashed from leaves. A range that
    breaks the precondition, is empty or is negative raises ValueError.
    """
    width = end - begin
    if begin < 0 or width <= 0:
        raise ValueError(f"leaf range [{begin}, {end}) is empty or negative")
    block = 1 << (width - 1).bit_length()
    if begin % block:
        raise ValueError(
            f"leaf range [{begin}, {end}) is not a subtree: {begin} is not a multiple of {block}"
        )
    # Binary digits of the width, lowest first, are the pieces from the right: start with the
    # rightmost piece and fold each one to its left onto it.
    level = (width & -width).bit_length() - 1
    pos = end - (1 << level)
    result = node(level, pos >> level)
    width >>= level + 1
    while width:
        level += 1
        if width & 1:
            pos -= 1 << level
            result = _sha256(_NODE_PREFIX + node(level, pos >> level) + result).digest()
        width >>= 1
    return result


def inclusion_proof(node: NodeSource, index: int, size: int) -> list[bytes]:
    """The RFC 9162 inclusion proof (section 2.1.3.1) of leaf `index` in the tree of `size` leaves.

    Hashes are ordered from the leaf's sibling up to the child of the root. Raises ValueError
    unless 0 <= index < size.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    path: list[bytes] = []
    begin, end = 0, size
    while end - begin > 1:
        mid = begin + _split(end - begin)
        if index < mid:
            path.append(range_hash(node, mid, end))
            end = mid
        else:
            path.append(range_hash(node, begin, mid))
            begin = mid
    path.reverse()
    return path


def consistency_proof(node: NodeSource, size1: int, size2: int) -> list[bytes]:
    """The RFC 9162 consistency proof (section 2.1.4.1) from the tree of `size1` to `size2`.

    Empty when the sizes are equal. Raises ValueError unless 0 < size1 <= size2: a proof from the
    empty tree proves nothing, and verifiers reject it.
    """
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    path: list[bytes] = []
    begin, end = 0, size2
    whole_old_tree = True  # RFC 9162's flag b: still on the path that covers all of [0, size1)
    while end != size1:
        mid = begin + _split(end - begin)
        if size1 <= mid:
            path.append(range_hash(node, mid, end))
            end = mid
        else:
            path.append(range_hash(node, begin, mid))
            begin = mid
            whole_old_tree = False
    if not whole_old_tree:
        path.append(range_hash(node, begin, end))
    path.reverse()
    return path


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# --- verification ------------------------------------------------------------------------------


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `leaf_hash` is leaf `index` of the tree of `size` leaves whose root is `root`.

    Raises ProofError unless 0 <= index < size, every hash is 32 bytes, the proof has exactly the
    length (index, size) requires and the root it recomputes is `root`. The size is not hashed into
    the root: take `size` and `root` from the same signed tree head.
    """
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root", root)
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    inner, border = _path_shape(index, size - 1)
    _check_proof(proof, inner + border, f"leaf {index} of a tree of size {size}")
    computed = _climb(leaf_hash, index, inner, proof, with_left=False)[1]
    if computed != root:
        raise ProofError(
            f"inclusion proof of leaf {index} in a tree of size {size} gives root "
            f"{computed.hex()}, expected {root.hex()}"
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of `size2` leaves with `root2` extends the tree of `size1` with `root1`.

    Raises ProofError unless 0 < size1 <= size2 and either the sizes are equal, the proof is
    empty and the roots are the same bytes, or every hash is 32 bytes and the proof is non-empty,
    has exactly the length (size1, size2) requires and recomputes both roots. Equal sizes prove
    nothing beyond root1 == root2, so (as in the reference verifier) their length is not checked.
    """
    if size1 <= 0:
        raise ProofError(f"no consistency proof from size {size1}: the old tree must not be empty")
    if size2 < size1:
        raise ProofError(f"tree size {size2} is smaller than the old size {size1}")
    if size1 == size2:
        if proof:
            raise ProofError(f"{len(proof)} proof hashes for two trees of the same size {size1}")
        if root1 != root2:
            raise ProofError(f"two trees of size {size1} have different roots")
        return
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    # The old tree's last perfect subtree, at (level, index), is where the proof starts; if it
    # is the whole old tree (size1 a power of two) the proof leaves it out: it is root1.
    level = (size1 & -size1).bit_length() - 1
    index = (size1 >> level) - 1
    inner, border = _path_shape(index, (size2 - 1) >> level)
    seeded = index > 0
    what = f"consistency from size {size1} to {size2}"
    _check_proof(proof, int(seeded) + inner + border, what)
    if seeded:
        seed, path = proof[0], proof[1:]
    else:
        seed, path = root1, proof
    computed1, computed2 = _climb(seed, index, inner, path, with_left=True)
    if computed1 != root1:
        raise ProofError(
            f"{what}: the proof gives old root {computed1.hex()}, expected {root1.hex()}"
        )
    if computed2 != root2:
        raise ProofError(
            f"{what}: the proof gives new root {computed2.hex()}, expected {root2.hex()}"
        )


def _path_shape(index: int, last: int) -> tuple[int, int]:
    """How many proof hashes climb from node `index` to the root of nodes 0..`last`, by kind.

    `inner` counts the levels below the point where the paths of `index` and `last` meet: one
    sibling each, on either side. Above it the path runs along the tree's right edge and has a
    (left) sibling only where the node is a right child: `border` of them.
    """
    inner = (index ^ last).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _climb(
    start: bytes, index: int, inner: int, proof: Sequence[bytes], *, with_left: bool
) -> tuple[bytes, bytes]:
    """Hash from node `index` up to the root with `proof` (shaped by `_path_shape`).

    Returns (left root, full root): the full root folds in every proof hash; the left root (only
    computed `with_left`, else `start`) only the siblings on the left, i.e. the root of the tree
    that ends where node `index` ends.
    """
    left = full = start
    for level, sibling in enumerate(proof):
        if level >= inner or (index >> level) & 1:
            full = _sha256(_NODE_PREFIX + sibling + full).digest()
            if with_left:
                left = _sha256(_NODE_PREFIX + sibling + left).digest()
        else:
            full = _sha256(_NODE_PREFIX + full + sibling).digest()
    return left, full


def _check_hash(what: str, value: object) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {_describe(value)}")


def _check_proof(proof: Sequence[bytes], expected: int, what: str) -> None:
    if len(proof) != expected:
        raise ProofError(f"{what} needs {expected} proof hashes, got {len(proof)}")
    for i, item in enumerate(proof):
        _check_hash(f"proof hash {i}", item)


def _describe(value: object) -> str:
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    return type(value).__name__


# --- the incremental log -----------------------------------------------------------------------


class MerkleLog:
    """An append-only RFC 9162 log in memory, grown one leaf at a time through its frontier.

    An append hashes only what the new leaf completes (amortised two SHA-256 calls, at most
    log2(n) + 1) and `root()` folds the frontier (O(log n)); nothing is rebuilt from leaves.

    With `keep_nodes` (the default) the log also keeps every perfect subtree it completes, so
    `node`, `inclusion_proof`, `consistency_proof` and `root_at` work; that costs about two hashes
    of memory per leaf. With `keep_nodes=False` it keeps only the frontier (popcount(size) hashes),
    which is all a store needs: it persists what `append_hash_nodes` returns and resumes with
    `from_frontier`. A resumed log knows only its frontier and what it appends afterwards.

    Appending API: `append(leaf)` and `append_hash(leaf_hash)` return the new leaf's index;
    `append_hash_nodes(leaf_hash)` also returns every node the append completed, for a store.
    """

    __slots__ = ("_first", "_frontier", "_levels", "_size")

    def __init__(self, *, keep_nodes: bool = True) -> None:
        self._size = 0
        self._frontier: list[bytes] = []
        # _levels[level][i] is the hash of node (level, _first[level] + i).
        self._levels: list[list[bytes]] | None = [[]] if keep_nodes else None
        self._first: list[int] = [0]

    @classmethod
    def from_frontier(
        cls, size: int, frontier: Sequence[bytes], *, keep_nodes: bool = True
    ) -> MerkleLog:
        """A log of `size` leaves that continues from `frontier` (as `frontier()` returned it).

        Raises ValueError if the frontier does not have popcount(size) hashes of 32 bytes.
        """
        if size < 0:
            raise ValueError(f"log size {size} is negative")
        if len(frontier) != size.bit_count():
            raise ValueError(
                f"a log of size {size} has {size.bit_count()} frontier hashes, got {len(frontier)}"
            )
        for i, item in enumerate(frontier):
            if not isinstance(item, bytes) or len(item) != HASH_SIZE:
                raise ValueError(
                    f"frontier hash {i} must be {HASH_SIZE} bytes, got {_describe(item)}"
                )
        log = cls(keep_nodes=keep_nodes)
        log._size = size
        log._frontier = list(frontier)
        if log._levels is not None:
            levels: list[list[bytes]] = []
            log._first = []
            held = iter(reversed(frontier))  # smallest (lowest level) first
            for level in range(max(size.bit_length(), 1)):
                if (size >> level) & 1:
                    levels.append([next(held)])
                    log._first.append((size >> level) - 1)
                else:
                    levels.append([])
                    log._first.append(size >> level)
            log._levels = levels
        return log

    @property
    def size(self) -> int:
        """Number of leaves appended."""
        return self._size

    def frontier(self) -> tuple[bytes, ...]:
        """The hashes of the perfect subtrees that make up [0, size), largest first.

        The hash for binary digit 2**level of `size` is the node at (level, index) with
        index = (size >> level) - 1. `from_frontier(size, frontier())` resumes the log.
        """
        return tuple(self._frontier)

    def root(self) -> bytes:
        """The current root, folded from the frontier: O(log n)."""
        return _fold(reversed(self._frontier))

    def append(self, leaf: bytes) -> int:
        """Append one leaf input; return its index."""
        return self._push(_sha256(_LEAF_PREFIX + leaf).digest(), None)

    def append_hash(self, leaf_hash: bytes) -> int:
        """Append one leaf by its hash; return its index. Raises ValueError if not 32 bytes."""
        _require_hash(leaf_hash)
        return self._push(leaf_hash, None)

    def append_hash_nodes(self, leaf_hash: bytes) -> list[CompletedNode]:
        """Append one leaf by its hash; return the (level, index, hash) of every node completed.

        The first is the leaf itself, (0, leaf index, leaf_hash); each next one is the parent of
        the one before, up to the largest perfect subtree the leaf completed. These are exactly the
        nodes a store must persist to serve `node(level, index)` later.
        """
        _require_hash(leaf_hash)
        completed: list[CompletedNode] = []
        self._push(leaf_hash, completed)
        return completed

    def _push(self, h: bytes, completed: list[CompletedNode] | None) -> int:
        index = self._size
        self._size = index + 1
        frontier = self._frontier
        levels = self._levels
        if levels is None and completed is None:  # the hot path: a store or root_of
            n = index
            while n & 1:
                h = _sha256(_NODE_PREFIX + frontier.pop() + h).digest()
                n >>= 1
            frontier.append(h)
            return index
        level = 0
        while True:
            if completed is not None:
                completed.append((level, index >> level, h))
            if levels is not None:
                if level < len(levels):
                    levels[level].append(h)
                else:  # a level's first node is its node 0, even in a resumed log
                    levels.append([h])
                    self._first.append(0)
            if not (index >> level) & 1:
                break
            h = _sha256(_NODE_PREFIX + frontier.pop() + h).digest()
            level += 1
        frontier.append(h)
        return index

    def node(self, level: int, index: int) -> bytes:
        """The hash of the perfect subtree at (level, index).

        Raises ValueError if that subtree is not complete in this log or the log did not keep it
        (`keep_nodes=False`, or it predates `from_frontier`).
        """
        if level < 0 or index < 0 or (index + 1) << level > self._size:
            raise ValueError(
                f"node ({level}, {index}) is not complete in a log of size {self._size}"
            )
        levels = self._levels
        if levels is None:
            raise ValueError("this log does not keep nodes (keep_nodes=False)")
        offset = index - self._first[level]
        if offset < 0:
            raise ValueError(f"node ({level}, {index}) predates this log's frontier")
        return levels[level][offset]

    def root_at(self, size: int) -> bytes:
        """The root of the first `size` leaves (0 <= size <= self.size), from kept nodes."""
        if not 0 <= size <= self._size:
            raise ValueError(f"size {size} is outside 0..{self._size}")
        return range_hash(self.node, 0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The inclusion proof of leaf `index` in the tree of the first `size` leaves."""
        if size > self._size:
            raise ValueError(f"size {size} is larger than the log ({self._size})")
        return inclusion_proof(self.node, index, size)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """The consistency proof from the first `size1` leaves to the first `size2`."""
        if size2 > self._size:
            raise ValueError(f"size {size2} is larger than the log ({self._size})")
        return consistency_proof(self.node, size1, size2)


def _fold(right_to_left: Iterable[bytes]) -> bytes:
    """Fold perfect-subtree hashes, given rightmost first, into one root (EMPTY_ROOT if none)."""
    result: bytes | None = None
    for h in right_to_left:
        result = h if result is None else _sha256(_NODE_PREFIX + h + result).digest()
    return EMPTY_ROOT if result is None else result


def _require_hash(value: object) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ValueError(f"a leaf hash must be {HASH_SIZE} bytes, got {_describe(value)}")
