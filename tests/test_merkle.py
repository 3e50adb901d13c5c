"""RFC 9162 Merkle hashing, proofs and the incremental log (`ledger.merkle`).

Golden data: the 196 transparency-dev/merkle probes and the tree roots of sizes 0..8 in
`tests/vectors/rfc9162/`. Properties check generated proofs against an independent, literal
implementation of the RFC's MTH definition.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidData, ProofError
from ledger.merkle import (
    EMPTY_ROOT,
    MerkleLog,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    range_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent / "vectors" / "rfc9162"
PROBES_FILE = VECTORS / "probes.jsonl"
ROOTS_FILE = VECTORS / "tree_roots.json"


def _load_probes() -> list[dict[str, Any]]:
    # Read at collection: a missing file is a collection error (a failure), never a skip.
    with PROBES_FILE.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


PROBES = _load_probes()


def _probe_id(probe: dict[str, Any]) -> str:
    return f"{probe['file'].removeprefix('testdata/')} ({probe['desc']})"


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH exactly as RFC 9162 section 2.1.1 writes it: recursive, split at the largest 2**k < n."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def distinct_leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [salt + i.to_bytes(4, "big") for i in range(n)]


def log_of(leaves: list[bytes]) -> MerkleLog:
    log = MerkleLog()
    for leaf in leaves:
        log.append(leaf)
    return log


def flip_bit(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def assert_rejected(name: str, run: Callable[[], None]) -> None:
    try:
        run()
    except ProofError:
        return
    pytest.fail(f"{name} verified")


# --- golden vectors ------------------------------------------------------------------------------


def test_probe_file_has_all_196_probes() -> None:
    assert PROBES_FILE.is_file()
    assert len(PROBES) == 196
    assert len({p["file"] for p in PROBES}) == 196
    assert sum(p["kind"] == "inclusion" for p in PROBES) > 0
    assert sum(p["kind"] == "consistency" for p in PROBES) > 0
    assert sum(not p["wantErr"] for p in PROBES) > 0


@pytest.mark.parametrize("probe", PROBES, ids=[_probe_id(p) for p in PROBES])
def test_probe_verdict(probe: dict[str, Any]) -> None:
    proof = [bytes.fromhex(h) for h in probe["proof"] or []]  # null means an empty proof
    if probe["kind"] == "inclusion":
        args = (
            bytes.fromhex(probe["leafHash"]),
            probe["leafIdx"],
            probe["treeSize"],
            proof,
            bytes.fromhex(probe["root"]),
        )

        def run() -> None:
            verify_inclusion(*args)
    else:
        assert probe["kind"] == "consistency"
        cargs = (
            probe["size1"],
            probe["size2"],
            proof,
            bytes.fromhex(probe["root1"]),
            bytes.fromhex(probe["root2"]),
        )

        def run() -> None:
            verify_consistency(*cargs)

    if probe["wantErr"]:
        with pytest.raises(ProofError):
            run()
    else:
        run()


def test_tree_roots_for_sizes_0_to_8() -> None:
    data = json.loads(ROOTS_FILE.read_text(encoding="utf-8"))
    leaves = [bytes.fromhex(h) for h in data["leaf_inputs_hex"]]
    want = [bytes.fromhex(h) for h in data["root_by_size_hex"]]
    assert len(want) == 9
    log = MerkleLog()
    assert log.root() == want[0]
    for n in range(9):
        assert root_of(leaves[:n]) == want[n]
        assert reference_root(leaves[:n]) == want[n]
    for n, leaf in enumerate(leaves, start=1):
        assert log.append(leaf) == n - 1
        assert log.size == n
        assert log.root() == want[n]
    for n in range(9):
        assert log.root_at(n) == want[n]


def test_hash_constants() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert node_hash(b"a" * 32, b"b" * 32) != node_hash(b"b" * 32, b"a" * 32)
    assert leaf_hash(b"\x01" + b"a" * 64) != node_hash(b"a" * 32, b"a" * 32)


def test_proof_error_is_invalid_data() -> None:
    with pytest.raises(InvalidData):
        verify_inclusion(b"\x00" * 32, 0, 0, [], b"\x00" * 32)


# --- exhaustive small trees ----------------------------------------------------------------------


def test_every_proof_of_every_tree_up_to_64_leaves() -> None:
    leaves = distinct_leaves(64)
    log = log_of(leaves)
    roots = [reference_root(leaves[:n]) for n in range(65)]
    for size in range(1, 65):
        assert log.root_at(size) == roots[size]
        for index in range(size):
            proof = log.inclusion_proof(index, size)
            verify_inclusion(leaf_hash(leaves[index]), index, size, proof, roots[size])
        for size1 in range(1, size + 1):
            proof = log.consistency_proof(size1, size)
            verify_consistency(size1, size, proof, roots[size1], roots[size])


def test_proofs_match_the_rfc_example_tree() -> None:
    # RFC 9162 section 2.1.5: seven leaves d0..d6, named as the RFC's figure names them.
    leaves = distinct_leaves(7)
    a, b, c, d, e, f, j = (leaf_hash(leaf) for leaf in leaves)
    g, h, i = node_hash(a, b), node_hash(c, d), node_hash(e, f)
    k, l_ = node_hash(g, h), node_hash(i, j)
    log = log_of(leaves)
    assert log.root() == node_hash(k, l_)
    assert log.inclusion_proof(0, 7) == [b, h, l_]
    assert log.inclusion_proof(3, 7) == [c, g, l_]
    assert log.inclusion_proof(4, 7) == [f, j, k]
    assert log.inclusion_proof(6, 7) == [i, k]
    assert log.consistency_proof(3, 7) == [c, d, g, l_]
    assert log.consistency_proof(4, 7) == [l_]
    assert log.consistency_proof(6, 7) == [i, j, k]


# --- properties ----------------------------------------------------------------------------------

leaf_lists = st.lists(st.binary(max_size=12), min_size=1, max_size=300, unique=True)


@settings(max_examples=60, deadline=None)
@given(leaves=leaf_lists)
def test_every_inclusion_proof_verifies(leaves: list[bytes]) -> None:
    size = len(leaves)
    root = root_of(leaves)
    assert root == reference_root(leaves)
    log = log_of(leaves)
    for index, leaf in enumerate(leaves):
        proof = log.inclusion_proof(index, size)
        assert proof == inclusion_proof(log.node, index, size)
        verify_inclusion(leaf_hash(leaf), index, size, proof, root)


@settings(max_examples=60, deadline=None)
@given(leaves=leaf_lists, data=st.data())
def test_consistency_proofs_verify(leaves: list[bytes], data: st.DataObject) -> None:
    log = log_of(leaves)
    size2 = data.draw(st.integers(1, len(leaves)), label="size2")
    root2 = root_of(leaves[:size2])
    # Every old size against the drawn new size, and the drawn size against every larger one.
    for size1 in range(1, size2 + 1):
        proof = log.consistency_proof(size1, size2)
        verify_consistency(size1, size2, proof, log.root_at(size1), root2)
    for later in range(size2, len(leaves) + 1):
        proof = log.consistency_proof(size2, later)
        verify_consistency(size2, later, proof, root2, log.root_at(later))


@st.composite
def inclusion_cases(draw: st.DrawFn) -> tuple[list[bytes], int, int]:
    leaves = draw(leaf_lists)
    size = draw(st.integers(1, len(leaves)), label="size")
    index = draw(st.integers(0, size - 1), label="index")
    return leaves, index, size


@settings(max_examples=200, deadline=None)
@given(case=inclusion_cases(), data=st.data())
def test_altered_inclusion_proof_fails(
    case: tuple[list[bytes], int, int], data: st.DataObject
) -> None:
    leaves, index, size = case
    log = log_of(leaves)
    h = leaf_hash(leaves[index])
    root = log.root_at(size)
    proof = log.inclusion_proof(index, size)
    verify_inclusion(h, index, size, proof, root)

    mutations: list[tuple[str, Any]] = [
        ("flipped root", lambda: verify_inclusion(h, index, size, proof, flip_bit(root, 7))),
        ("flipped leaf", lambda: verify_inclusion(flip_bit(h, 0), index, size, proof, root)),
        ("extra hash", lambda: verify_inclusion(h, index, size, [*proof, h], root)),
        ("extra hash first", lambda: verify_inclusion(h, index, size, [h, *proof], root)),
    ]
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1), label="element")
        bit = data.draw(st.integers(0, 255), label="bit")
        flipped = [*proof]
        flipped[at] = flip_bit(flipped[at], bit)
        dropped = proof[:at] + proof[at + 1 :]
        mutations += [
            ("flipped element", lambda: verify_inclusion(h, index, size, flipped, root)),
            ("dropped element", lambda: verify_inclusion(h, index, size, dropped, root)),
        ]
    if size > 1:
        other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="wrong")
        mutations.append(
            ("wrong index", lambda: verify_inclusion(h, other, size, proof, root)),
        )
    if len(leaves) > index + 1:
        # Another size, with that tree's true root: the size is not hashed into the root, so
        # checking against the original root would not be a claim a verifier could make.
        wrong_size = data.draw(
            st.integers(index + 1, len(leaves)).filter(lambda s: s != size), label="wrong size"
        )
        wrong_root = log.root_at(wrong_size)
        mutations.append(
            ("wrong size", lambda: verify_inclusion(h, index, wrong_size, proof, wrong_root)),
        )
    for name, run in mutations:
        assert_rejected(name, run)


@st.composite
def consistency_cases(draw: st.DrawFn) -> tuple[list[bytes], int, int]:
    leaves = draw(st.lists(st.binary(max_size=12), min_size=2, max_size=300, unique=True))
    size2 = draw(st.integers(2, len(leaves)), label="size2")
    size1 = draw(st.integers(1, size2 - 1), label="size1")
    return leaves, size1, size2


@settings(max_examples=200, deadline=None)
@given(case=consistency_cases(), data=st.data())
def test_altered_consistency_proof_fails(
    case: tuple[list[bytes], int, int], data: st.DataObject
) -> None:
    leaves, size1, size2 = case
    log = log_of(leaves)
    root1, root2 = log.root_at(size1), log.root_at(size2)
    proof = log.consistency_proof(size1, size2)
    verify_consistency(size1, size2, proof, root1, root2)
    assert proof

    at = data.draw(st.integers(0, len(proof) - 1), label="element")
    bit = data.draw(st.integers(0, 255), label="bit")
    flipped = [*proof]
    flipped[at] = flip_bit(flipped[at], bit)
    dropped = proof[:at] + proof[at + 1 :]
    mutations: list[tuple[str, Any]] = [
        ("flipped element", lambda: verify_consistency(size1, size2, flipped, root1, root2)),
        ("dropped element", lambda: verify_consistency(size1, size2, dropped, root1, root2)),
        ("extra hash", lambda: verify_consistency(size1, size2, [*proof, root1], root1, root2)),
        ("extra first", lambda: verify_consistency(size1, size2, [root1, *proof], root1, root2)),
        ("empty proof", lambda: verify_consistency(size1, size2, [], root1, root2)),
        ("swapped roots", lambda: verify_consistency(size1, size2, proof, root2, root1)),
        (
            "flipped root1",
            lambda: verify_consistency(size1, size2, proof, flip_bit(root1, 3), root2),
        ),
        (
            "flipped root2",
            lambda: verify_consistency(size1, size2, proof, root1, flip_bit(root2, 3)),
        ),
        ("sizes swapped", lambda: verify_consistency(size2, size1, proof, root2, root1)),
        ("size1 zero", lambda: verify_consistency(0, size2, proof, EMPTY_ROOT, root2)),
    ]
    # Other sizes, each with that tree's true root (see the inclusion test for why).
    wrong1 = data.draw(st.integers(1, size2).filter(lambda s: s != size1), label="wrong size1")
    root_w1 = log.root_at(wrong1)
    mutations.append(
        ("wrong size1", lambda: verify_consistency(wrong1, size2, proof, root_w1, root2)),
    )
    wrong2 = data.draw(
        st.integers(size1, len(leaves)).filter(lambda s: s != size2), label="wrong size2"
    )
    root_w2 = log.root_at(wrong2)
    mutations.append(
        ("wrong size2", lambda: verify_consistency(size1, wrong2, proof, root1, root_w2)),
    )
    for name, run in mutations:
        assert_rejected(name, run)


@settings(max_examples=100, deadline=None)
@given(leaves=st.lists(st.binary(max_size=8), max_size=300), data=st.data())
def test_from_frontier_resumes_to_identical_roots(leaves: list[bytes], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(leaves)), label="cut")
    keep = data.draw(st.booleans(), label="keep_nodes")
    full = log_of(leaves)
    first = log_of(leaves[:cut])
    resumed = MerkleLog.from_frontier(cut, first.frontier(), keep_nodes=keep)
    assert resumed.size == cut
    assert resumed.root() == first.root() == root_of(leaves[:cut])
    for n, leaf in enumerate(leaves[cut:], start=cut + 1):
        assert resumed.append(leaf) == n - 1
        assert resumed.root() == full.root_at(n)
    assert resumed.frontier() == full.frontier()
    if keep and cut < len(leaves):
        # Nodes completed after the resume point, and the frontier it started from, are served.
        size = len(leaves)
        for index in range(cut, size):
            proof = resumed.inclusion_proof(index, size)
            assert proof == full.inclusion_proof(index, size)
        for size1 in range(max(cut, 1), size + 1):
            assert resumed.consistency_proof(size1, size) == full.consistency_proof(size1, size)


@settings(max_examples=200, deadline=None)
@given(leaves=st.lists(st.binary(max_size=8), min_size=1, max_size=300), data=st.data())
def test_range_hash_agrees_with_root_of_slice(leaves: list[bytes], data: st.DataObject) -> None:
    log = log_of(leaves)
    begin = data.draw(st.integers(0, len(leaves) - 1), label="begin")
    # Widest range starting at `begin` that still fits in one aligned block.
    widest = len(leaves) - begin if begin == 0 else min(begin & -begin, len(leaves) - begin)
    end = begin + data.draw(st.integers(1, widest), label="width")
    calls: list[tuple[int, int]] = []

    def node(level: int, index: int) -> bytes:
        calls.append((level, index))
        return log.node(level, index)

    assert range_hash(node, begin, end) == root_of(leaves[begin:end])
    assert len(calls) == (end - begin).bit_count()


def test_range_hash_rejects_ranges_that_are_not_subtrees() -> None:
    log = log_of(distinct_leaves(16))
    for begin, end in [(1, 3), (2, 5), (4, 9), (3, 3), (5, 4), (-1, 1), (6, 10)]:
        with pytest.raises(ValueError, match="range"):
            range_hash(log.node, begin, end)


# --- the incremental log -------------------------------------------------------------------------


def test_root_of_1000_leaves_keeps_only_a_logarithmic_frontier() -> None:
    leaves = distinct_leaves(1000)
    log = MerkleLog(keep_nodes=False)
    for n, leaf in enumerate(leaves, start=1):
        log.append(leaf)
        assert len(log.frontier()) == n.bit_count() <= n.bit_length()
    assert len(log.frontier()) == 6  # 1000 = 0b1111101000
    assert log.root() == reference_root(leaves)
    with pytest.raises(ValueError, match="does not keep nodes"):
        log.node(0, 0)


def test_append_hash_nodes_reports_every_completed_node() -> None:
    leaves = distinct_leaves(200)
    full = log_of(leaves)
    store: dict[tuple[int, int], bytes] = {}
    log = MerkleLog(keep_nodes=False)
    for index, leaf in enumerate(leaves):
        completed = log.append_hash_nodes(leaf_hash(leaf))
        assert completed[0] == (0, index, leaf_hash(leaf))
        # Leaf i completes one node for each trailing 1 bit of i, plus the leaf itself.
        trailing_ones = (index ^ (index + 1)).bit_length() - 1
        assert [(lv, ix) for lv, ix, _ in completed] == [
            (lv, index >> lv) for lv in range(trailing_ones + 1)
        ]
        for level, ix, h in completed:
            assert h == full.node(level, ix)
            store[(level, ix)] = h
    assert log.root() == full.root()

    # What a store persisted is enough to serve every proof.
    def stored(level: int, index: int) -> bytes:
        return store[(level, index)]

    for size in (1, 7, 64, 129, 200):
        for index in (0, size // 2, size - 1):
            assert inclusion_proof(stored, index, size) == full.inclusion_proof(index, size)
        if size > 3:
            assert consistency_proof(stored, 3, size) == full.consistency_proof(3, size)


def test_append_returns_the_leaf_index() -> None:
    log = MerkleLog()
    assert [log.append(b"x%d" % i) for i in range(5)] == [0, 1, 2, 3, 4]
    assert log.append_hash(leaf_hash(b"y")) == 5
    assert log.append_hash_nodes(leaf_hash(b"z"))[0][:2] == (0, 6)
    assert log.size == 7


def test_empty_log() -> None:
    log = MerkleLog()
    assert log.size == 0
    assert log.root() == EMPTY_ROOT == root_of([])
    assert log.frontier() == ()
    assert MerkleLog.from_frontier(0, ()).root() == EMPTY_ROOT


def test_node_of_an_incomplete_or_forgotten_subtree_is_an_error() -> None:
    leaves = distinct_leaves(6)
    log = log_of(leaves)
    assert log.node(1, 2) == node_hash(leaf_hash(leaves[4]), leaf_hash(leaves[5]))
    for level, index in [(0, 6), (1, 3), (2, 1), (3, 0), (-1, 0), (0, -1)]:
        with pytest.raises(ValueError, match="not complete"):
            log.node(level, index)
    resumed = MerkleLog.from_frontier(6, log.frontier())
    assert resumed.node(2, 0) == log.node(2, 0)  # frontier nodes are known
    assert resumed.node(1, 2) == log.node(1, 2)
    with pytest.raises(ValueError, match="predates"):
        resumed.node(0, 1)


def test_misuse_of_generators_is_value_error() -> None:
    log = log_of(distinct_leaves(8))
    bad_calls: list[tuple[Callable[[], object], str]] = [
        (lambda: log.inclusion_proof(8, 8), "leaf index 8 is outside a tree of size 8"),
        (lambda: log.inclusion_proof(-1, 8), "leaf index -1 is outside"),
        (lambda: log.inclusion_proof(0, 9), "size 9 is larger than the log"),
        (lambda: log.inclusion_proof(0, 0), "leaf index 0 is outside a tree of size 0"),
        (lambda: log.consistency_proof(0, 8), "no consistency proof from size 0 to size 8"),
        (lambda: log.consistency_proof(5, 4), "no consistency proof from size 5 to size 4"),
        (lambda: log.consistency_proof(1, 9), "size 9 is larger than the log"),
        (lambda: log.root_at(9), "size 9 is outside 0..8"),
        (lambda: log.append_hash(b"\x00" * 31), "must be 32 bytes, got 31 bytes"),
        (lambda: MerkleLog.from_frontier(3, [b"\x00" * 32]), "has 2 frontier hashes, got 1"),
        (lambda: MerkleLog.from_frontier(1, [b"\x00" * 33]), "must be 32 bytes, got 33"),
        (lambda: MerkleLog.from_frontier(-1, []), "negative"),
    ]
    for call, message in bad_calls:
        with pytest.raises(ValueError, match=message):
            call()
    assert log.size == 8
    assert log.consistency_proof(8, 8) == []


def test_verifiers_reject_malformed_hashes() -> None:
    leaves = distinct_leaves(5)
    log = log_of(leaves)
    root = log.root()
    proof = log.inclusion_proof(1, 5)
    h = leaf_hash(leaves[1])
    with pytest.raises(ProofError, match="leaf hash must be 32 bytes"):
        verify_inclusion(h[:31], 1, 5, proof, root)
    with pytest.raises(ProofError, match="root must be 32 bytes"):
        verify_inclusion(h, 1, 5, proof, root + b"\x00")
    with pytest.raises(ProofError, match="proof hash 1 must be 32 bytes"):
        verify_inclusion(h, 1, 5, [proof[0], proof[1][:-1], proof[2]], root)
    with pytest.raises(ProofError, match="needs 3 proof hashes, got 2"):
        verify_inclusion(h, 1, 5, proof[:2], root)
    for index in (5, 6, -1, 2**64 - 1):
        with pytest.raises(ProofError, match=f"leaf index {index} is outside a tree of size 5"):
            verify_inclusion(h, index, 5, proof, root)
    cproof = log.consistency_proof(3, 5)
    with pytest.raises(ProofError, match="root1 must be 32 bytes"):
        verify_consistency(3, 5, cproof, log.root_at(3)[:16], root)
    with pytest.raises(ProofError, match="proof hash 0 must be 32 bytes"):
        verify_consistency(3, 5, [b"", *cproof[1:]], log.root_at(3), root)
