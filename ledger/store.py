"""The SQLite store: the ledger's only module that imports sqlite3.

One file per node, in WAL mode with `synchronous=FULL` (checked on every open). It keeps the raw
bytes of every block header, record and commit certificate, the RFC 9162 log's completed nodes
(so a proof costs O(log n) stored hashes and one query), and the state's key-value leaves. A block
and everything it changes are committed in one transaction. Opening a store re-checks its shape
(`quick_check`, contiguous heights, counts) and rebuilds the verified tip, or raises StoreError
saying exactly what is wrong.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ledger.block import (
    Block,
    Commit,
    Header,
    RawBlock,
    decode_commit,
    decode_header,
    encode_commit,
)
from ledger.chain import Chain, Tip
from ledger.checking import RecordChecker, checked
from ledger.crypto import sha256
from ledger.errors import LedgerError, LocalError
from ledger.genesis import Genesis
from ledger.merkle import MerkleLog, NodeSource, consistency_proof, inclusion_proof, leaf_hash
from ledger.proof import CertifiedHeader, RecordProof
from ledger.records import Record, decode_record
from ledger.state import Apply, LedgerState, no_transition
from ledger.statetree import StateTree

SCHEMA_VERSION = 1
_LEVEL_SHIFT = 48  # merkle node key = level << 48 | index
_QUERY_KEYS = 8192  # keys in one IN (...) query, well under SQLite's variable limit


Rules = Callable[[Genesis], Apply]
"""Gives the state transition of a network from its genesis."""


def ledger_only(genesis: Genesis) -> Apply:
    """The ledger's own rules alone, with no governance."""
    return no_transition


class StoreError(LocalError):
    """The store cannot be opened or written, and says why."""


_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE blocks (
    height INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    header BLOB NOT NULL,
    first_leaf INTEGER NOT NULL,
    record_count INTEGER NOT NULL,
    validator_change INTEGER NOT NULL
);
CREATE TABLE records (
    leaf INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    author BLOB NOT NULL,
    seq INTEGER NOT NULL,
    height INTEGER NOT NULL,
    raw BLOB NOT NULL,
    UNIQUE (author, seq)
);
CREATE TABLE commits (height INTEGER PRIMARY KEY, commit_ BLOB NOT NULL);
CREATE TABLE merkle (key INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE state (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredRecord:
    record: Record
    leaf: int
    height: int


def _node_key(level: int, index: int) -> int:
    return (level << _LEVEL_SHIFT) | index


class Store:
    """A node's ledger on disk with its verified chain in memory. Use `Store.open`."""

    def __init__(self, path: Path, db: sqlite3.Connection, chain: Chain) -> None:
        self.path = path
        self._db = db
        self.chain = chain

    # opening

    @classmethod
    def create(cls, path: Path, genesis: Genesis, *, rules: Rules = ledger_only) -> Store:
        """A new store for `genesis` at `path`, which must not exist yet. The store is built
        under a temporary name, checkpointed, and renamed into place: a crash leaves either no
        store or a complete empty one."""
        if path.exists():
            raise StoreError(f"{path} already exists")
        building = path.with_name(f".{path.name}.creating")
        _remove_files(building)
        db = _connect(building)
        try:
            with db:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [("schema", str(SCHEMA_VERSION).encode()), ("genesis", genesis.to_json())],
                )
                db.executemany(
                    "INSERT INTO state VALUES (?, ?)",
                    list(LedgerState.from_genesis(genesis).items()),
                )
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
            os.replace(building, path)
        except (sqlite3.Error, OSError) as e:
            db.close()
            _remove_files(building)
            raise StoreError(f"cannot create store {path}: {e}") from e
        return cls.open(path, rules=rules)

    @classmethod
    def open(cls, path: Path, *, rules: Rules = ledger_only) -> Store:
        """Open an existing store and rebuild its tip from what it holds. `rules` gives the state
        transition for the store's genesis (governance's, for a Commons network)."""
        if not path.is_file():
            raise StoreError(f"no store at {path}")
        db = _connect(path)
        try:
            return cls(path, db, _load_chain(path, db, rules))
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
            db.close()
            raise StoreError(f"store {path} is damaged: {e!r}") from e
        except LedgerError:
            db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # writing

    @property
    def tip(self) -> Tip:
        return self.chain.tip

    @property
    def genesis(self) -> Genesis:
        return self.chain.genesis

    def append(
        self, block: Block, commit: Commit | None = None, *, signatures_checked: bool = False
    ) -> None:
        """Verify `block` against the tip and store it, with everything it changes, in one
        transaction. `commit`, if given, must certify it and is stored as its certificate."""
        first_leaf = self.chain.log.size
        changed = self.chain.append(block, signatures_checked=signatures_checked)
        try:
            if commit is not None:
                self.chain.verify_commit(commit)
            self._write(block, commit, first_leaf, changed)
        except BaseException as e:
            # Nothing reached the disk: go back to the last committed tip.
            self.chain = _load_chain(self.path, self._db, lambda _: self.chain.apply)
            if isinstance(e, sqlite3.Error):
                raise StoreError(f"cannot store block {block.height}: {e}") from e
            raise

    def extend(
        self, items: Iterable[tuple[RawBlock, Commit | None]], checker: RecordChecker
    ) -> int:
        """Append each (block, its certificate or None) in order, as `append` does, while
        `checker` checks the records of the blocks ahead (on other cores, say). Stops at the
        first block refused, raising its error: the blocks before it stay stored. Returns the
        number of blocks appended."""
        appended = 0
        for block, records_checked, commit in checked(items, checker, self.genesis.network_id):
            self.append(block, commit, signatures_checked=records_checked)
            appended += 1
        return appended

    def add_commit(self, commit: Commit) -> None:
        """Store the certificate of the tip block (it reaches the next header only later)."""
        self.chain.verify_commit(commit)
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO commits VALUES (?, ?)",
                (commit.height, encode_commit(commit)),
            )

    def _write(
        self, block: Block, commit: Commit | None, first_leaf: int, changed: list[bytes]
    ) -> None:
        header = block.header
        log = MerkleLog.from_frontier(first_leaf, _frontier(self._db, first_leaf), keep_nodes=False)
        nodes: list[tuple[int, bytes]] = []
        rows = []
        for offset, record in enumerate(block.records):
            for level, index, h in log.append_hash_nodes(leaf_hash(record.raw)):
                nodes.append((_node_key(level, index), h))
            rows.append(
                (
                    first_leaf + offset,
                    record.id,
                    record.author,
                    record.seq,
                    header.height,
                    record.raw,
                )
            )
        state = self.chain.state
        with self._db:
            db = self._db
            db.execute(
                "INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?)",
                (
                    header.height,
                    header.id,
                    header.raw,
                    first_leaf,
                    header.record_count,
                    int(header.new_validators is not None),
                ),
            )
            db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.executemany("INSERT INTO merkle VALUES (?, ?)", nodes)
            if header.last_commit is not None:
                db.execute(
                    "INSERT OR REPLACE INTO commits VALUES (?, ?)",
                    (header.height - 1, encode_commit(header.last_commit)),
                )
            if commit is not None:
                db.execute(
                    "INSERT INTO commits VALUES (?, ?)", (header.height, encode_commit(commit))
                )
            for key in changed:
                value = state.get_raw(key)
                if value is None:
                    db.execute("DELETE FROM state WHERE key = ?", (key,))
                else:
                    db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, value))

    # reading

    def header(self, height: int) -> Header | None:
        row = self._db.execute(
            "SELECT header, id FROM blocks WHERE height = ?", (height,)
        ).fetchone()
        return None if row is None else _checked_header(row[0], row[1], height)

    def raw_block(self, height: int) -> RawBlock | None:
        """Block `height` with its records as stored bytes (each checked against its id)."""
        row = self._db.execute(
            "SELECT header, first_leaf, record_count, id FROM blocks WHERE height = ?", (height,)
        ).fetchone()
        if row is None:
            return None
        rows = self._db.execute(
            "SELECT raw, id FROM records WHERE leaf >= ? AND leaf < ? ORDER BY leaf",
            (row[1], row[1] + row[2]),
        ).fetchall()
        for raw, record_id in rows:
            if sha256(raw) != record_id:
                raise StoreError(
                    f"stored record {record_id.hex()} is damaged: its bytes hash to another id"
                )
        return RawBlock(_checked_header(row[0], row[3], height), tuple(raw for raw, _ in rows))

    def block(self, height: int) -> Block | None:
        raw = self.raw_block(height)
        if raw is None:
            return None
        try:
            return raw.parse()
        except LedgerError as e:
            raise StoreError(f"stored block {height} is damaged: {e}") from e

    def raw_blocks(self, start: int = 1) -> Iterator[RawBlock]:
        """Blocks from `start` to the tip, records as bytes; a missing or damaged one is named by
        its height. For checking on several cores (ledger.checking)."""
        for height in range(start, self.tip.height + 1):
            try:
                block = self.raw_block(height)
            except LedgerError as e:
                raise StoreError(f"block {height}: {e}") from e
            if block is None:
                raise StoreError(f"block {height}: missing from store {self.path}")
            yield block

    def blocks(self, start: int = 1) -> Iterator[Block]:
        """Blocks from `start` to the tip; a missing or damaged one is named by its height."""
        for raw in self.raw_blocks(start):
            try:
                yield raw.parse()
            except LedgerError as e:
                raise StoreError(f"block {raw.header.height}: {e}") from e

    def commit(self, height: int) -> Commit | None:
        row = self._db.execute("SELECT commit_ FROM commits WHERE height = ?", (height,)).fetchone()
        return None if row is None else decode_commit(row[0])

    def record(self, record_id: bytes) -> StoredRecord | None:
        row = self._db.execute(
            "SELECT raw, leaf, height, id FROM records WHERE id = ?", (record_id,)
        ).fetchone()
        return None if row is None else _stored_record(row)

    def record_at(self, author: bytes, seq: int) -> StoredRecord | None:
        row = self._db.execute(
            "SELECT raw, leaf, height, id FROM records WHERE author = ? AND seq = ?", (author, seq)
        ).fetchone()
        return None if row is None else _stored_record(row)

    def record_count(self) -> int:
        return self.chain.log.size

    # proofs from stored nodes: one query each

    def prove_record(self, record_id: bytes) -> RecordProof:
        """A proof of `record_id` that holds back to the genesis (see ledger/proof.py)."""
        found = self.record(record_id)
        if found is None:
            raise StoreError(f"no record {record_id.hex()} in this ledger")
        header = self.header(found.height)
        commit = self.commit(found.height)
        if header is None or commit is None:
            raise StoreError(f"block {found.height} or its certificate is missing from the store")
        changes = []
        for (height,) in self._db.execute(
            "SELECT height FROM blocks WHERE validator_change = 1 AND height < ? ORDER BY height",
            (found.height,),
        ).fetchall():
            change_header, change_commit = self.header(height), self.commit(height)
            if change_header is None or change_commit is None:
                raise StoreError(f"block {height} or its certificate is missing from the store")
            changes.append(CertifiedHeader(header=change_header, commit=change_commit))
        return RecordProof(
            network_id=self.genesis.network_id,
            record=found.record,
            leaf=found.leaf,
            path=tuple(self.inclusion_proof(found.leaf, header.log_size)),
            block=CertifiedHeader(header=header, commit=commit),
            changes=tuple(changes),
        )

    def check_derived(self, replayed: Chain) -> None:
        """Raise StoreError unless everything the store keeps beside the blocks agrees with
        `replayed`, a chain rebuilt from this store's blocks (as an audit does): the state, the
        Merkle nodes, the certificates, and the record and block index columns."""
        self._check_index()
        stored = self._db.execute("SELECT key, value FROM state ORDER BY key")
        expected = iter(replayed.state.items())
        for row in stored:
            want = next(expected, None)
            if want is None or (bytes(row[0]), bytes(row[1])) != want:
                raise StoreError(f"stored state differs from the replay at key {bytes(row[0])!r}")
        if next(expected, None) is not None:
            raise StoreError("stored state lacks keys the replay has")
        log = MerkleLog(keep_nodes=False)
        computed: dict[int, bytes] = {}
        for (raw,) in self._db.execute("SELECT raw FROM records ORDER BY leaf"):
            for level, index, h in log.append_hash_nodes(leaf_hash(raw)):
                computed[_node_key(level, index)] = h
            if len(computed) >= _QUERY_KEYS:
                self._compare_nodes(computed)
                computed.clear()
        self._compare_nodes(computed)
        total = self._db.execute("SELECT COUNT(*) FROM merkle").fetchone()[0]
        expected_nodes = 2 * log.size - log.size.bit_count()  # every completed perfect subtree
        if total != expected_nodes:
            raise StoreError(f"store holds {total} Merkle nodes, the log has {expected_nodes}")

    def _check_index(self) -> None:
        """Block rows: flags and leaf ranges match the headers, each certificate below the tip is
        the one the next header carries; record rows: each sits in its block's leaf range."""
        tip = self.tip.height
        next_leaf = 0
        previous_commit: bytes | None = None
        rows = self._db.execute(
            "SELECT height, header, id, first_leaf, record_count, validator_change "
            "FROM blocks ORDER BY height"
        )
        for height, raw, block_id, first_leaf, count, change in rows:
            header = _checked_header(raw, block_id, height)
            if (first_leaf, count) != (next_leaf, header.record_count):
                raise StoreError(f"block {height}: stored leaf range disagrees with its header")
            if change != int(header.new_validators is not None):
                raise StoreError(f"block {height}: stored validator-change flag is wrong")
            if header.last_commit is not None:
                previous_commit = encode_commit(header.last_commit)
                if self._commit_raw(height - 1) != previous_commit:
                    raise StoreError(
                        f"stored certificate for height {height - 1} is not the last_commit "
                        f"that height {height} carries"
                    )
            next_leaf += count
        if self._commit_raw(tip) is None and tip > 0:
            raise StoreError(f"block {tip}: the tip's certificate is missing")
        misplaced = self._db.execute(
            "SELECT r.id, r.height FROM records r JOIN blocks b "
            "ON r.leaf >= b.first_leaf AND r.leaf < b.first_leaf + b.record_count "
            "WHERE r.height != b.height LIMIT 1"
        ).fetchone()
        if misplaced is not None:
            rid, height = bytes(misplaced[0]).hex(), misplaced[1]
            raise StoreError(f"record {rid}: stored height {height} is not its block's")

    def _commit_raw(self, height: int) -> bytes | None:
        row = self._db.execute("SELECT commit_ FROM commits WHERE height = ?", (height,)).fetchone()
        return None if row is None else bytes(row[0])

    def _compare_nodes(self, computed: dict[int, bytes]) -> None:
        stored = _nodes(self._db, list(computed))
        for key, value in computed.items():
            if stored[key] != value:
                level, index = key >> _LEVEL_SHIFT, key & ((1 << _LEVEL_SHIFT) - 1)
                raise StoreError(f"stored Merkle node level {level} index {index} is wrong")

    def inclusion_proof(self, leaf: int, size: int) -> list[bytes]:
        return self._prove(lambda node: inclusion_proof(node, leaf, size))

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        return self._prove(lambda node: consistency_proof(node, size1, size2))

    def _prove(self, make: Callable[[NodeSource], list[bytes]]) -> list[bytes]:
        """Run `make` once to learn which nodes it needs, fetch them in one query, run it again."""
        wanted: list[int] = []

        def record_key(level: int, index: int) -> bytes:
            wanted.append(_node_key(level, index))
            return bytes(32)

        make(record_key)
        hashes = _nodes(self._db, wanted)
        return make(lambda level, index: hashes[_node_key(level, index)])


def _nodes(db: sqlite3.Connection, keys: Sequence[int]) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for start in range(0, len(keys), _QUERY_KEYS):
        chunk = keys[start : start + _QUERY_KEYS]
        marks = ",".join("?" * len(chunk))
        query = f"SELECT key, hash FROM merkle WHERE key IN ({marks})"  # noqa: S608 - only marks
        found.update(db.execute(query, chunk).fetchall())
    for key in keys:
        if key not in found:
            level, index = key >> _LEVEL_SHIFT, key & ((1 << _LEVEL_SHIFT) - 1)
            raise StoreError(f"store lacks Merkle node level {level} index {index}")
    return found


def _frontier(db: sqlite3.Connection, size: int) -> list[bytes]:
    keys = [
        _node_key(level, (size >> level) - 1)
        for level in range(size.bit_length() - 1, -1, -1)
        if (size >> level) & 1
    ]
    nodes = _nodes(db, keys)
    return [nodes[k] for k in keys]


def _checked_record(raw: bytes, record_id: bytes) -> Record:
    """Stored bytes must still be the record they were filed under: never hand out garbage."""
    try:
        record = decode_record(raw)
    except LedgerError as e:
        raise StoreError(f"stored record {record_id.hex()} is damaged: {e}") from e
    if record.id != record_id:
        raise StoreError(
            f"stored record {record_id.hex()} is damaged: its bytes hash to another id"
        )
    return record


def _stored_record(row: tuple[bytes, int, int, bytes]) -> StoredRecord:
    return StoredRecord(record=_checked_record(row[0], row[3]), leaf=row[1], height=row[2])


def _checked_header(raw: bytes, block_id: bytes, height: int) -> Header:
    try:
        header = decode_header(raw)
    except LedgerError as e:
        raise StoreError(f"stored header of block {height} is damaged: {e}") from e
    if header.id != block_id or header.height != height:
        raise StoreError(f"stored header of block {height} is damaged: it is not the block filed")
    return header


def _remove_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _connect(path: Path) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(path, isolation_level="DEFERRED", check_same_thread=False)
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        db.execute("PRAGMA synchronous=FULL")
        sync = db.execute("PRAGMA synchronous").fetchone()[0]
    except (sqlite3.Error, UnicodeDecodeError) as e:
        raise StoreError(f"cannot open store {path}: {e!r}") from e
    if mode.lower() != "wal" or sync != 2:
        db.close()
        raise StoreError(f"store {path} is not in WAL mode with synchronous=FULL ({mode}, {sync})")
    return db


def _load_chain(path: Path, db: sqlite3.Connection, rules: Rules) -> Chain:
    check = db.execute("PRAGMA quick_check").fetchall()
    if check != [("ok",)]:
        raise StoreError(f"store {path} fails SQLite's integrity check: {check[0][0]}")
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("schema") != str(SCHEMA_VERSION).encode():
        raise StoreError(
            f"store {path} has schema {meta.get('schema')!r}, expected {SCHEMA_VERSION}"
        )
    genesis = Genesis.from_json(meta["genesis"])
    apply = rules(genesis)
    count, top = db.execute("SELECT COUNT(*), COALESCE(MAX(height), 0) FROM blocks").fetchone()
    if count != top:
        raise StoreError(
            f"store {path} has {count} blocks but heights up to {top}: a block is missing"
        )
    leaves = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    tree = StateTree()
    for key, value in db.execute("SELECT key, value FROM state"):
        tree.set(key, value)
    state = LedgerState(tree)
    if top == 0:
        return Chain(genesis, apply=apply, state=state)
    row = db.execute(
        "SELECT header, first_leaf, record_count, id FROM blocks WHERE height = ?", (top,)
    ).fetchone()
    header = _checked_header(row[0], row[3], top)
    if row[1] + row[2] != leaves or header.log_size != leaves:
        raise StoreError(
            f"store {path} holds {leaves} records but block {top} ends the log at {header.log_size}"
        )
    if state.root() != header.state_root:
        raise StoreError(f"store {path}: its state does not match block {top}'s state root")
    log = MerkleLog.from_frontier(leaves, _frontier(db, leaves), keep_nodes=False)
    if log.root() != header.log_root:
        raise StoreError(f"store {path}: its Merkle log does not match block {top}'s log root")
    tip = Tip(height=top, block_id=header.id, time=header.time)
    return Chain(genesis, apply=apply, state=state, log=log, tip=tip)
