"""The SQLite store: the ledger's only module that imports sqlite3.

One file per node, in WAL mode with `synchronous=FULL` (checked on every open). It keeps the raw
bytes of every block header, record and commit certificate, the RFC 9162 log's completed nodes
(so a proof costs O(log n) stored hashes and one query), and the state as a log of its changes.
A block and everything it changes are committed in one transaction. Opening a store re-checks its
shape (`quick_check`, the schema, contiguous heights, counts) in one read transaction and rebuilds
the verified tip, or raises StoreError saying exactly what is wrong. A snapshot (for an audit, an
export, a proof) keeps that transaction until it is closed, so it reads one moment of a file
another process may be writing; meanwhile the WAL grows, for it cannot be reset past that moment.

Every write is laid out to land at the end of a table or of a small index, because keys that are
hashes (record ids, state keys) scatter over a B-tree: a block of a thousand records would dirty
a page per record in each such tree, and the pages written per block would grow with the ledger.
So the state is stored as an append-only log of changes (the last change of a key wins),
rewritten from memory when it holds more than twice the live keys plus COMPACT_SLACK rows. Records
are found by id and by (author, seq) through index tables on 8-byte integer prefixes of the id
and the author (a third of the size of indexes on the whole values; the lookup compares the whole
value), filled in sorted batches of INDEX_BATCH records or more, in the transaction of the block
that completes a batch: each index page is then rewritten about once per batch instead of once
per block (while an index has fewer pages than a batch has records, up to a few million records;
beyond that most records of a batch land on a page of their own again). The records not indexed
yet are found through a map in memory, rebuilt from their rows when the store is opened. Opening
compares the tables with the schema, so the index tables keep their primary keys.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ledger import codec
from ledger.block import (
    Block,
    Commit,
    Header,
    RawBlock,
    decode_commit,
    decode_header,
    encode_commit,
)
from ledger.chain import Applied, Chain, Tip
from ledger.checking import RecordChecker, checked
from ledger.crypto import sha256
from ledger.errors import LedgerError, LocalError, UnknownRules
from ledger.genesis import LEDGER_RULES, Genesis
from ledger.merkle import MerkleLog, NodeSource, consistency_proof, inclusion_proof, leaf_hash
from ledger.proof import CertifiedHeader, RecordProof
from ledger.records import MAX_SEQ, Record, decode_record
from ledger.state import Apply, LedgerState, no_transition
from ledger.statetree import StateTree

SCHEMA_VERSION = 3
_LEVEL_SHIFT = 48  # merkle node key = level << 48 | index
_QUERY_KEYS = 8192  # keys in one IN (...) query, well under SQLite's variable limit


Rules = Callable[[Genesis], Apply]
"""Gives the state transition of a network from its genesis."""


def ledger_only(genesis: Genesis) -> Apply:
    """The ledger's own rules alone, with no governance: for a genesis that says so."""
    if genesis.rules != LEDGER_RULES:
        raise UnknownRules(
            f"the genesis runs rules {genesis.rules!r}; the ledger alone runs {LEDGER_RULES!r}"
        )
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
    id BLOB NOT NULL,
    author BLOB NOT NULL,
    seq INTEGER NOT NULL,
    height INTEGER NOT NULL,
    raw BLOB NOT NULL,
    id_prefix INTEGER NOT NULL,
    author_prefix INTEGER NOT NULL
);
CREATE TABLE record_ids (
    id_prefix INTEGER NOT NULL, leaf INTEGER NOT NULL, PRIMARY KEY (id_prefix, leaf)
) WITHOUT ROWID;
CREATE TABLE feed_index (
    author_prefix INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    leaf INTEGER NOT NULL,
    PRIMARY KEY (author_prefix, seq, leaf)
) WITHOUT ROWID;
CREATE TABLE commits (height INTEGER PRIMARY KEY, commit_ BLOB NOT NULL);
CREATE TABLE merkle (key INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE state (change INTEGER PRIMARY KEY, key BLOB NOT NULL, value BLOB);
"""
COMPACT_SLACK = 4096
"""The state log is rewritten once it holds more than twice the live keys plus this many rows."""
INDEX_BATCH = 16_384
"""Records are added to the lookup index tables once at least this many wait for it."""
_LOOKUP_TABLES = {
    "record_ids": "i.id_prefix = r.id_prefix AND i.leaf = r.leaf",
    "feed_index": "i.author_prefix = r.author_prefix AND i.seq = r.seq AND i.leaf = r.leaf",
}
"""Each index table, and when its row `i` is the one of record row `r`."""


def _prefix(value: bytes) -> int:
    """The first 8 bytes of a hash or key as SQLite's signed 64-bit integer."""
    return int.from_bytes(value[:8], "big", signed=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredRecord:
    record: Record
    leaf: int
    height: int


def _node_key(level: int, index: int) -> int:
    return (level << _LEVEL_SHIFT) | index


class Store:
    """A node's ledger on disk with its verified chain in memory. Use `Store.open`.

    Opening checks the file and rebuilds the tip and the Merkle log's frontier; the state (its
    log of changes, O(state) to read) is loaded and checked against the tip's state root on
    first use of `chain`, so that an audit, which replays the state from genesis, never loads
    it."""

    def __init__(
        self, path: Path, db: sqlite3.Connection, head: _Head, *, snapshot: bool = False
    ) -> None:
        self.path = path
        self._db = db
        self._head = head
        self._unindexed = _load_unindexed(path, db, head.log.size)  # as committed
        self._index_from = self._unindexed.start  # where the next batch starts, once planned
        self._chain: Chain | None = None
        self._state_rows = 0  # rows in the state log, once the chain is loaded
        self._broken: str | None = None  # why the store refuses all work, if it must
        self._snapshot = snapshot  # reads one moment of the file, writes nothing

    @property
    def chain(self) -> Chain:
        """The verified chain at the tip, its state loaded from the store."""
        if self._broken is not None:
            raise StoreError(self._broken)
        if self._chain is None:
            state, self._state_rows = _stored_state(self.path, self._db)
            self._chain = self._head.chain(self.path, state)
        return self._chain

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
                    [
                        ("schema", str(SCHEMA_VERSION).encode()),
                        ("genesis", genesis.to_json()),
                        ("indexed", b"0"),
                    ],
                )
                db.executemany(
                    "INSERT INTO state (key, value) VALUES (?, ?)",
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
    def open(cls, path: Path, *, rules: Rules = ledger_only, snapshot: bool = False) -> Store:
        """Open an existing store and rebuild its tip from what it holds, all read in one
        transaction (so a block another process commits meanwhile is wholly in it or not at
        all). `rules` gives the state transition for the store's genesis (governance's, for a
        Commons network). A `snapshot` keeps that transaction until it is closed: whatever it
        reads (an audit, an export, a proof) is that one moment of the file, and it refuses to
        write."""
        if not path.is_file():
            raise StoreError(f"no store at {path}")
        db = _connect(path)
        try:
            db.execute("BEGIN")
            store = cls(path, db, _load_head(path, db, rules), snapshot=snapshot)
            if not snapshot:
                db.rollback()
            return store
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
        return self._head.tip if self._chain is None else self._chain.tip

    @property
    def genesis(self) -> Genesis:
        return self._head.genesis

    def append(
        self, block: Block, commit: Commit | None = None, *, signatures_checked: bool = False
    ) -> None:
        """Verify `block` against the tip and store it, with everything it changes, in one
        transaction. `commit`, if given, must certify it and is stored as its certificate.
        A refused block changes nothing, in memory or on disk."""
        rows = self._apply(block, commit, signatures_checked=signatures_checked)
        with self._writing(block.height):
            self._write(rows)
        self._written(rows)

    def extend(
        self, items: Iterable[tuple[RawBlock, Commit | None]], checker: RecordChecker
    ) -> int:
        """Append each (block, its certificate or None) in order, as `append` does, while
        `checker` checks the records of the blocks ahead (on other cores, say) and a writer
        thread commits each block while the next one is verified. Stops at the first block
        refused, raising its error: the blocks before it stay stored, each in its own
        transaction. A failed write outranks a refusal met meanwhile: it is the error raised.
        Returns the number of blocks appended."""
        appended = 0
        writing: tuple[Future[None], _Rows] | None = None  # the write in flight, its rows

        def wait() -> None:
            nonlocal writing, appended
            if writing is not None:
                (write, rows), writing = writing, None
                with self._writing(rows.block[0]):
                    try:
                        write.result()
                    except BaseException:
                        wait_for([write])  # an interrupt: the writer must let go of the file
                        raise
                self._written(rows)
                appended += 1

        with ThreadPoolExecutor(1, thread_name_prefix="store-writer") as writer:
            try:
                for block, records_checked, commit in checked(
                    items, checker, self.genesis.network_id
                ):
                    rows = self._apply(block, commit, signatures_checked=records_checked)
                    wait()
                    writing = (writer.submit(self._write, rows), rows)
            finally:
                wait()
        return appended

    def _written(self, rows: _Rows) -> None:
        """After `rows` are committed: their records are found in memory until a batch puts
        them in the index tables."""
        for leaf, record_id, author, seq, *_ in rows.records:
            self._unindexed.add(leaf, record_id, author, seq)
        if rows.index is not None:
            self._unindexed.drop_below(rows.index[1])

    def _refuse_if_snapshot(self) -> None:
        """Raise StoreError in a store opened as a snapshot: it holds a read transaction."""
        if self._snapshot:
            raise StoreError(f"store {self.path} is open as a snapshot: it writes nothing")

    @contextmanager
    def _writing(self, height: int) -> Iterator[None]:
        """Around writing block `height`: if it fails, the chain in memory (which has the block)
        goes back to what the disk holds, and SQLite's error becomes a StoreError."""
        try:
            yield
        except sqlite3.Error as e:
            self._back_to_disk()
            raise StoreError(f"cannot store block {height}: {e}") from e
        except BaseException:
            self._back_to_disk()
            raise

    def _back_to_disk(self) -> None:
        self._chain = None
        apply = self._head.apply
        try:
            self._db.execute("BEGIN")  # one moment of the file, as when opening
            self._head = _load_head(self.path, self._db, lambda _: apply)
            self._unindexed = _load_unindexed(self.path, self._db, self._head.log.size)
            self._index_from = self._unindexed.start
        except (sqlite3.Error, LedgerError) as e:
            self._broken = f"store {self.path} cannot be reread after a failed write: {e}"
            raise StoreError(self._broken) from e
        finally:
            if self._db.in_transaction:
                self._db.rollback()

    def _apply(self, block: Block, commit: Commit | None, *, signatures_checked: bool) -> _Rows:
        """Verify `block` (and `commit`) against the tip and advance the chain in memory; return
        every row the block changes, so that writing them needs nothing else."""
        self._refuse_if_snapshot()
        chain = self.chain
        first_leaf = chain.log.size
        applied = chain.append(block, signatures_checked=signatures_checked, commit=commit)
        header = block.header
        nodes = [(_node_key(level, index), h) for level, index, h in applied.log_nodes]
        records = []
        for leaf, record in enumerate(block.records, first_leaf):
            records.append(
                (
                    leaf,
                    record.id,
                    record.author,
                    record.seq,
                    header.height,
                    record.raw,
                    _prefix(record.id),
                    _prefix(record.author),
                )
            )
        index = None
        if chain.log.size - self._index_from >= INDEX_BATCH:
            index = (self._index_from, chain.log.size)
            self._index_from = chain.log.size  # should the write fail, the disk is reread
        commits = []
        if header.last_commit is not None:
            commits.append((header.height - 1, encode_commit(header.last_commit)))
        if commit is not None:
            commits.append((header.height, encode_commit(commit)))
        state = chain.state
        live = len(state.tree)
        changes: list[tuple[bytes, bytes | None]]
        if self._state_rows + len(applied.changed) > 2 * live + COMPACT_SLACK:
            changes, rewrite = list(state.items()), True
        else:
            changes, rewrite = [(key, state.get_raw(key)) for key in applied.changed], False
        self._state_rows = len(changes) + (0 if rewrite else self._state_rows)
        block_row = (
            header.height,
            header.id,
            header.raw,
            first_leaf,
            header.record_count,
            int(header.new_validators is not None),
        )
        return _Rows(block_row, records, nodes, commits, changes, rewrite, index)

    def add_commit(self, commit: Commit) -> None:
        """Store the certificate of the tip block (it reaches the next header only later)."""
        self._refuse_if_snapshot()
        self.chain.verify_commit(commit)
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO commits VALUES (?, ?)",
                (commit.height, encode_commit(commit)),
            )

    def node_value(self, name: str) -> bytes | None:
        """A value the node running on this store keeps beside the ledger (its validator's
        consensus state, its own records not final yet): meta row `node:<name>`. The ledger
        never reads these; they change no block, certificate or root."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (f"node:{name}",)).fetchone()
        if row is not None and type(row[0]) is not bytes:
            raise StoreError(f"store {self.path} is damaged: node value {name!r} is not bytes")
        return None if row is None else row[0]

    def node_values(self, prefix: str) -> dict[str, bytes]:
        """Every node value whose name starts with `prefix`, by name."""
        low = f"node:{prefix}"
        rows = self._db.execute(
            "SELECT key, value FROM meta WHERE key >= ? AND key < ?", (low, low + "\U0010ffff")
        ).fetchall()
        for key, value in rows:
            if type(value) is not bytes:
                raise StoreError(f"store {self.path} is damaged: node value {key!r} is not bytes")
        return {key[len("node:") :]: value for key, value in rows}

    def set_node_values(self, changes: Mapping[str, bytes | None], *, fsync: bool = True) -> None:
        """Store each value (None: no value) under its name, all in one transaction. With
        `fsync` (synchronous=FULL) they are on disk before this returns; without, they survive
        the process being killed at once, and a power cut from the next write with `fsync` (a
        block, say) on: the WAL is synced then, with everything before it."""
        self._refuse_if_snapshot()
        try:
            if not fsync:
                self._db.execute("PRAGMA synchronous=NORMAL")
            gone = [(f"node:{name}",) for name, value in changes.items() if value is None]
            kept = [(f"node:{name}", value) for name, value in changes.items() if value is not None]
            with self._db:
                self._db.executemany("DELETE FROM meta WHERE key = ?", gone)
                self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", kept)
        except sqlite3.Error as e:
            raise StoreError(f"cannot store node values in {self.path}: {e}") from e
        finally:
            if not fsync:
                self._db.execute("PRAGMA synchronous=FULL")

    def _write(self, rows: _Rows) -> None:
        with self._db:
            db = self._db
            db.execute("INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?)", rows.block)
            db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows.records)
            db.executemany("INSERT INTO merkle VALUES (?, ?)", rows.nodes)
            db.executemany("INSERT OR REPLACE INTO commits VALUES (?, ?)", rows.commits)
            if rows.rewrite:
                db.execute("DELETE FROM state")
            db.executemany("INSERT INTO state (key, value) VALUES (?, ?)", rows.state)
            if rows.index is not None:
                db.execute(
                    "INSERT INTO record_ids SELECT id_prefix, leaf FROM records "
                    "WHERE leaf >= ? AND leaf < ? ORDER BY id_prefix, leaf",
                    rows.index,
                )
                db.execute(
                    "INSERT INTO feed_index SELECT author_prefix, seq, leaf FROM records "
                    "WHERE leaf >= ? AND leaf < ? ORDER BY author_prefix, seq, leaf",
                    rows.index,
                )
                db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'indexed'", (b"%d" % rows.index[1],)
                )

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
        _check_leaf_range(row, f"stored block {height}")
        rows = self._db.execute(
            "SELECT raw, id FROM records WHERE leaf >= ? AND leaf < ? ORDER BY leaf",
            (row[1], row[1] + row[2]),
        ).fetchall()
        for raw, record_id in rows:
            if type(raw) is not bytes or type(record_id) is not bytes:
                raise StoreError(f"a stored record of block {height} is damaged: not bytes")
            if sha256(raw) != record_id:
                raise StoreError(
                    f"stored record {record_id.hex()} is damaged: its bytes hash to another id"
                )
        return RawBlock(
            header=_checked_header(row[0], row[3], height), raws=tuple(raw for raw, _ in rows)
        )

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
        leaf = self._unindexed.by_id.get(record_id)
        if leaf is not None:
            row = self._row_at(leaf)
        else:
            row = self._db.execute(
                "SELECT r.raw, r.leaf, r.height, r.id FROM record_ids i JOIN records r "
                "ON r.leaf = i.leaf WHERE i.id_prefix = ? AND r.id = ?",
                (_prefix(record_id), record_id),
            ).fetchone()
        return None if row is None else _stored_record(row)

    def record_at(self, author: bytes, seq: int) -> StoredRecord | None:
        if not 0 < seq <= MAX_SEQ:
            return None
        leaf = self._unindexed.by_feed.get((author, seq))
        if leaf is not None:
            row = self._row_at(leaf)
        else:
            row = self._db.execute(
                "SELECT r.raw, r.leaf, r.height, r.id FROM feed_index i JOIN records r "
                "ON r.leaf = i.leaf WHERE i.author_prefix = ? AND i.seq = ? AND r.author = ? "
                "AND r.seq = ?",
                (_prefix(author), seq, author, seq),
            ).fetchone()
        if row is None:
            return None
        found = _stored_record(row)
        if (found.record.author, found.record.seq) != (author, seq):
            raise StoreError(
                f"stored record {found.record.id.hex()} is damaged: it is filed as record {seq} "
                f"of {author.hex()[:16]}, which it is not"
            )
        return found

    def record_ids_with_prefix(self, prefix: str, *, most: int = 2) -> list[bytes]:
        """Ids of stored records whose hex begins with `prefix` (1 to 64 lowercase hex digits),
        at most `most` of them, in no particular order: one id if the prefix is unique. The
        records before the index mark are found through `record_ids` (the prefix's range of
        8-byte id prefixes), the others in memory, so that each record is looked at once."""
        if not (0 < len(prefix) <= 64 and all(c in "0123456789abcdef" for c in prefix)):
            raise ValueError(f"a record id prefix is 1 to 64 lowercase hex digits, got {prefix!r}")
        found = [i for i in self._unindexed.by_id if i.hex().startswith(prefix)][:most]
        digits = prefix[:16]
        low = int(digits, 16) << 4 * (16 - len(digits))
        high = low + (1 << 4 * (16 - len(digits))) - 1
        # an aligned range of 2^60 or fewer values never spans 2^63, so stays one signed range
        rows = self._db.execute(
            "SELECT r.id FROM record_ids i JOIN records r ON r.leaf = i.leaf "
            "WHERE i.id_prefix BETWEEN ? AND ? AND i.leaf < ? AND substr(hex(r.id), 1, ?) = ? "
            "LIMIT ?",
            (
                _prefix(low.to_bytes(8, "big")),
                _prefix(high.to_bytes(8, "big")),
                self._unindexed.start,
                len(prefix),
                prefix.upper(),
                most - len(found),
            ),
        ).fetchall()
        for (record_id,) in rows:
            if type(record_id) is not bytes:
                raise StoreError(f"store {self.path} is damaged: a record id is not bytes")
            found.append(record_id)
        return found

    def _row_at(self, leaf: int) -> tuple[bytes, int, int, bytes] | None:
        """The (raw, leaf, height, id) of the record row at `leaf`, a record not indexed yet."""
        return self._db.execute(  # type: ignore[no-any-return]
            "SELECT raw, leaf, height, id FROM records WHERE leaf = ?", (leaf,)
        ).fetchone()

    def record_count(self) -> int:
        return self._head.log.size if self._chain is None else self._chain.log.size

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
        first = header.log_size - header.record_count
        if not first <= found.leaf < header.log_size:
            raise StoreError(
                f"stored record {record_id.hex()} is damaged: its leaf {found.leaf} is not in "
                f"block {found.height}, which holds leaves [{first}, {header.log_size})"
            )
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

    def check_block(self, block: Block, applied: Applied) -> None:
        """Raise StoreError unless what the store keeps for `block` beside its bytes is what
        replaying it gave (`applied`): its records' author, seq, height and lookup columns, and
        the Merkle nodes its records completed. An audit calls it block by block, then
        `check_derived(replayed, blocks_checked=True)`."""
        try:
            self._compare_nodes({_node_key(lv, i): h for lv, i, h in applied.log_nodes})
            if block.records:
                self._check_rows(block, first_leaf=applied.log_nodes[0][1])
        except StoreError as e:
            raise StoreError(f"block {block.height}: {e}") from e

    def _check_rows(self, block: Block, *, first_leaf: int) -> None:
        rows = self._db.execute(
            "SELECT id, author, seq, height, id_prefix, author_prefix FROM records "
            "WHERE leaf >= ? AND leaf < ? ORDER BY leaf",
            (first_leaf, first_leaf + len(block.records)),
        ).fetchall()
        if len(rows) != len(block.records):
            raise StoreError(f"holds {len(rows)} record rows for {len(block.records)} records")
        for record, row in zip(block.records, rows, strict=True):
            _check_columns(record.id, row, (record.author, record.seq, block.height))

    def check_derived(self, replayed: Chain, *, blocks_checked: bool = False) -> None:
        """Raise StoreError unless everything the store keeps beside the blocks agrees with
        `replayed`, a chain rebuilt from this store's blocks (as an audit does): the state, the
        Merkle nodes, the certificates, the record and block index columns, and the lookup
        tables built from the record columns. With `blocks_checked`, `check_block` has seen
        every block: the records are not read again."""
        try:
            self._check_derived(replayed, blocks_checked=blocks_checked)
        except sqlite3.Error as e:
            raise StoreError(f"store {self.path} is damaged: {e!r}") from e

    def _check_derived(self, replayed: Chain, *, blocks_checked: bool) -> None:
        self._check_index()
        differs = replayed.state.first_difference(_stored_state(self.path, self._db)[0])
        if differs is not None:
            raise StoreError(
                f"stored state is not the state after block {replayed.tip.height}: it differs "
                f"from the replay at key {differs!r}"
            )
        size = replayed.log.size
        if not blocks_checked:
            self._check_records_and_nodes()
        total = self._db.execute("SELECT COUNT(*) FROM merkle").fetchone()[0]
        expected_nodes = 2 * size - size.bit_count()  # every completed perfect subtree
        if total != expected_nodes:
            raise StoreError(f"store holds {total} Merkle nodes, the log has {expected_nodes}")
        self._check_lookup_tables()

    def _check_records_and_nodes(self) -> None:
        """Every record row's columns against its bytes, every Merkle node against the log
        rebuilt from the stored records."""
        log = MerkleLog(keep_nodes=False)
        computed: dict[int, bytes] = {}
        rows = self._db.execute(
            "SELECT raw, id, author, seq, height, id_prefix, author_prefix FROM records "
            "ORDER BY leaf"
        )
        for raw, record_id, *columns in rows:
            try:
                m = codec.decode_own(raw)
                expected = (m["author"], m["seq"], columns[2])
            except (LedgerError, KeyError, TypeError) as e:
                raise StoreError(f"stored record {record_id!r} is damaged: {e}") from e
            _check_columns(record_id, (record_id, *columns), expected)
            for level, index, h in log.append_hash_nodes(leaf_hash(raw)):
                computed[_node_key(level, index)] = h
            if len(computed) >= _QUERY_KEYS:
                self._compare_nodes(computed)
                computed.clear()
        self._compare_nodes(computed)

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

    def _check_lookup_tables(self) -> None:
        """Each index table holds one row for each record before the index mark, with that
        record's lookup columns, and no other row (their primary keys make rows unique)."""
        indexed = self._unindexed.start
        for table, same in _LOOKUP_TABLES.items():
            rows = self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608 - ours
            found = self._db.execute(
                f"SELECT COUNT(*) FROM records r WHERE r.leaf < ? "  # noqa: S608 - ours
                f"AND EXISTS (SELECT 1 FROM {table} i WHERE {same})",
                (indexed,),
            ).fetchone()[0]
            if rows != indexed or found != indexed:
                raise StoreError(
                    f"stored lookup table {table} is not the index of the first {indexed} "
                    f"records: it has {rows} rows, and {found} of those records have theirs"
                )

    def _commit_raw(self, height: int) -> bytes | None:
        row = self._db.execute("SELECT commit_ FROM commits WHERE height = ?", (height,)).fetchone()
        if row is not None and type(row[0]) is not bytes:
            raise StoreError(f"stored certificate of height {height} is damaged: not bytes")
        return None if row is None else row[0]

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


def _check_columns(
    record_id: bytes, row: Sequence[object], expected: tuple[bytes, int, int]
) -> None:
    """A record row (id, author, seq, height, id_prefix, author_prefix) must hold what the
    record's bytes say (`expected`: author, seq, height) and the prefixes of its id and author."""
    author = expected[0]
    if tuple(row) != (record_id, *expected, _prefix(record_id), _prefix(author)):
        raise StoreError(
            f"record {record_id.hex()}: its stored id, author, seq, height or lookup prefixes "
            "are not its own"
        )


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


def _check_leaf_range(row: Sequence[object], where: str) -> None:
    """A block row's first leaf and record count (columns 1 and 2) must be counts."""
    if not all(type(n) is int and n >= 0 for n in row[1:3]):
        raise StoreError(f"{where} is damaged: its leaf range is {row[1]!r}, {row[2]!r}")


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


@dataclass(frozen=True, slots=True)
class _Rows:
    """Every row one block adds or changes, ready to write."""

    block: tuple[int, bytes, bytes, int, int, int]
    records: list[tuple[int, bytes, bytes, int, int, bytes, int, int]]
    nodes: list[tuple[int, bytes]]
    commits: list[tuple[int, bytes]]
    state: list[tuple[bytes, bytes | None]]  # changes to log (None: deleted)
    rewrite: bool  # the log is replaced by `state`, every live key, instead of extended
    index: tuple[int, int] | None  # leaves [from, to) to add to the lookup index tables


class _Unindexed:
    """The stored records not in the lookup index tables yet (leaves from `start` on), by id
    and by (author, seq)."""

    __slots__ = ("by_feed", "by_id", "start")

    def __init__(self, start: int) -> None:
        self.start = start
        self.by_id: dict[bytes, int] = {}
        self.by_feed: dict[tuple[bytes, int], int] = {}

    def add(self, leaf: int, record_id: bytes, author: bytes, seq: int) -> None:
        self.by_id[record_id] = leaf
        self.by_feed[author, seq] = leaf

    def drop_below(self, leaf: int) -> None:
        """Forget the records before `leaf`: the index tables hold them now."""
        self.start = leaf
        self.by_id = {k: v for k, v in self.by_id.items() if v >= leaf}
        self.by_feed = {k: v for k, v in self.by_feed.items() if v >= leaf}


@dataclass(frozen=True, slots=True)
class _Head:
    """What opening a store establishes cheaply: its genesis, rules, tip and Merkle log."""

    genesis: Genesis
    apply: Apply
    tip: Tip
    log: MerkleLog
    state_root: bytes | None  # the tip header's; None at genesis

    def chain(self, path: Path, values: dict[bytes, bytes]) -> Chain:
        """The chain at this tip with the state `values`, checked against the tip."""
        tree = StateTree()
        for key, value in values.items():
            tree.set(key, value)
        state = LedgerState(tree)
        if self.state_root is not None and state.root() != self.state_root:
            raise StoreError(
                f"store {path}: its state does not match block {self.tip.height}'s state root"
            )
        log = MerkleLog.from_frontier(self.log.size, self.log.frontier(), keep_nodes=False)
        return Chain(self.genesis, apply=self.apply, state=state, log=log, tip=self.tip)


def _stored_state(path: Path, db: sqlite3.Connection) -> tuple[dict[bytes, bytes], int]:
    """The state the log of changes adds up to (the last change of a key wins), and its rows."""
    values: dict[bytes, bytes] = {}
    rows = 0
    try:
        for key, value in db.execute("SELECT key, value FROM state ORDER BY change"):
            rows += 1
            if type(key) is not bytes or not (value is None or type(value) is bytes):
                raise StoreError(f"store {path} is damaged: state change {rows} is not bytes")
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
    except sqlite3.DatabaseError as e:
        raise StoreError(f"store {path} is damaged: {e!r}") from e
    return values, rows


@cache
def _schema_tables() -> frozenset[tuple[str, str, str, str | None]]:
    """What sqlite_master lists for a store of this schema: tables, indexes and their SQL."""
    with closing(sqlite3.connect(":memory:")) as db:
        db.executescript(_SCHEMA)
        return frozenset(db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))


def _load_head(path: Path, db: sqlite3.Connection, rules: Rules) -> _Head:
    check = db.execute("PRAGMA quick_check").fetchall()
    if check != [("ok",)]:
        raise StoreError(f"store {path} fails SQLite's integrity check: {check[0][0]}")
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("schema") != str(SCHEMA_VERSION).encode():
        raise StoreError(
            f"store {path} has schema {meta.get('schema')!r}, expected {SCHEMA_VERSION}: export "
            "it with the release that wrote it, then import the bundle"
        )
    tables = set(db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
    expected = _schema_tables()
    if tables != expected:
        changed = sorted({row[1] for row in tables ^ expected})
        raise StoreError(
            f"store {path} is damaged: {', '.join(changed)} not as schema {SCHEMA_VERSION} has it"
        )
    if type(meta.get("genesis")) is not bytes:
        raise StoreError(f"store {path} is damaged: its genesis row is missing or not bytes")
    genesis = Genesis.from_json(meta["genesis"])
    apply = rules(genesis)
    count, top = db.execute("SELECT COUNT(*), COALESCE(MAX(height), 0) FROM blocks").fetchone()
    if count != top:
        raise StoreError(
            f"store {path} has {count} blocks but heights up to {top}: a block is missing"
        )
    leaves = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    if top == 0:
        if leaves:
            raise StoreError(f"store {path} holds {leaves} records but no block")
        genesis_tip = Tip(height=0, block_id=genesis.network_id, time=genesis.time)
        return _Head(genesis, apply, genesis_tip, MerkleLog(keep_nodes=False), None)
    row = db.execute(
        "SELECT header, first_leaf, record_count, id FROM blocks WHERE height = ?", (top,)
    ).fetchone()
    _check_leaf_range(row, f"store {path}: block {top}")
    header = _checked_header(row[0], row[3], top)
    if row[1] + row[2] != leaves or header.log_size != leaves:
        raise StoreError(
            f"store {path} holds {leaves} records but block {top} ends the log at {header.log_size}"
        )
    log = MerkleLog.from_frontier(leaves, _frontier(db, leaves), keep_nodes=False)
    if log.root() != header.log_root:
        raise StoreError(f"store {path}: its Merkle log does not match block {top}'s log root")
    tip = Tip(height=top, block_id=header.id, time=header.time)
    return _Head(genesis, apply, tip, log, header.state_root)


def _load_unindexed(path: Path, db: sqlite3.Connection, leaves: int) -> _Unindexed:
    """The records past the index tables, from the leaf the meta row `indexed` names."""
    row = db.execute("SELECT value FROM meta WHERE key = 'indexed'").fetchone()
    mark = None if row is None else row[0]
    if type(mark) is not bytes or not (mark.isdigit() and len(mark) <= 19 and int(mark) <= leaves):
        raise StoreError(
            f"store {path} is damaged: its index mark {mark!r} is not a record count up to {leaves}"
        )
    unindexed = _Unindexed(int(mark))
    rows = db.execute(
        "SELECT leaf, id, author, seq FROM records WHERE leaf >= ? ORDER BY leaf",
        (unindexed.start,),
    )
    for leaf, record_id, author, seq in rows:
        unindexed.add(leaf, record_id, author, seq)
    return unindexed
