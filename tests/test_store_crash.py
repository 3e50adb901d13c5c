"""Crash safety of the SQLite store (`ledger/store.py`), with real processes and damaged files.

DESIGN.md "Storage": one SQLite file per node in WAL mode with `synchronous=FULL`, raw record and
block bytes plus indexes, a block and its state committed in one transaction. The issue adds:
a writer killed with SIGKILL at random points at least 100 times leaves 0 corrupted stores and
loses 0 committed blocks; a store whose WAL was truncated or had a byte flipped opens to a valid
prefix of its chain or says precisely why it cannot (never a crash, never silent garbage); the
schema is checkpointed into the main file when the store is created.

"Valid" always means a full, independent re-verification: a fresh `Chain` from the genesis takes
every stored block in order (header links, certificates, BFT time, feeds, signatures, records,
log and state roots) and then the tip's stored certificate. `tests/crash_writer.py` is the
writer; it prints `committed <height>` after each block is stored, so every such line is a
promise the store must keep.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import crash_writer
import pytest

from ledger import store as store_module
from ledger.chain import Chain
from ledger.errors import LedgerError
from ledger.records import Record
from ledger.store import Store, StoreError
from node.solo import SoloValidator

WRITER = Path(__file__).resolve().parent / "crash_writer.py"
KILLS = 110
FRESH_EVERY = 6  # start a new store every few kills: kills during creation, bounded re-verification
SIDE_FILES = ("-wal", "-shm")


# the independent re-verification


def reverify(store: Store, known: dict[int, bytes] | None = None) -> Chain:
    """Replay every stored block on a fresh chain from the genesis and check the tip's
    certificate. `known` maps heights to ids of blocks whose record signatures were already
    verified: the block id and records root pin those exact bytes, so only their signatures are
    skipped; every other rule is checked again."""
    known = known or {}
    chain = Chain(store.genesis)
    for height in range(1, store.tip.height + 1):
        block = store.block(height)
        assert block is not None, f"store lacks block {height} below its tip {store.tip.height}"
        chain.append(block, signatures_checked=known.get(height) == block.id)
    assert chain.tip == store.tip, f"re-verified tip {chain.tip} differs from {store.tip}"
    assert chain.log.size == store.record_count()
    assert chain.state.root() == store.chain.state.root()
    store.check_derived(chain)  # stored state rows and Merkle nodes equal the replay's
    if store.tip.height:
        commit = store.commit(store.tip.height)
        assert commit is not None, f"store lacks the certificate of its tip {store.tip.height}"
        chain.verify_commit(commit)
    return chain


def block_ids(store: Store) -> dict[int, bytes]:
    ids = {}
    for height in range(1, store.tip.height + 1):
        header = store.header(height)
        assert header is not None
        ids[height] = header.id
    return ids


def remove_store(path: Path) -> None:
    for suffix in ("", *SIDE_FILES):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# 1-2. a writer killed with SIGKILL at random points


class Writer:
    """`crash_writer.py` as a subprocess, its stdout lines collected by a thread."""

    def __init__(self, path: Path, seed: int, stderr: Path) -> None:
        self.lines: list[str] = []
        self.creating = threading.Event()
        self.ready = threading.Event()
        self._stderr = stderr.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(path), str(seed)],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())
            if line.startswith("creating"):
                self.creating.set()
            elif line.startswith(("ready", "open-failed")):
                self.ready.set()
        self.creating.set()
        self.ready.set()

    def kill(self) -> int:
        """SIGKILL it; its return code (-9 when the kill is what ended it)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        code = self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self._stderr.close()
        return code

    def committed(self) -> list[int]:
        return [int(x.split()[1]) for x in self.lines if x.startswith("committed ")]


@dataclass
class Campaign:
    kills: int = 0
    corrupted: int = 0
    lost: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    max_height: int = 0

    def fail(self, kind: str, message: str) -> None:
        if kind == "lost":
            self.lost += 1
        else:
            self.corrupted += 1
        self.outcomes[kind] += 1
        self.failures.append(f"{kind}: {message}")


@pytest.mark.crash
def test_sigkilled_writer_never_corrupts_or_loses_committed_blocks(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    path = tmp_path / "ledger.sqlite"
    expected_network = crash_writer.genesis().network_id
    run = Campaign()
    known: dict[int, bytes] = {}  # heights -> ids of blocks verified after an earlier kill
    started = time.monotonic()
    for i in range(KILLS):
        fresh = i % FRESH_EVERY == 0
        if fresh:
            remove_store(path)
            known = {}
        writer = Writer(path, seed=i, stderr=tmp_path / "writer.err")
        if fresh and rng.random() < 0.6:
            # Aim at Store.create itself: schema transaction and checkpoint take milliseconds.
            assert writer.creating.wait(30), "writer never started creating the store"
            time.sleep(rng.uniform(0, 0.02))
        else:
            assert writer.ready.wait(30), "writer never opened the store"
            time.sleep(rng.uniform(0.05, 0.6))
        code = writer.kill()
        where = f"kill {i} (fresh={fresh}, lines {writer.lines[:2]}...{writer.lines[-1:]})"
        if code != -signal.SIGKILL:
            err = (tmp_path / "writer.err").read_text()[-2000:]
            run.fail("writer-died", f"{where}: writer exited {code} before the kill: {err}")
            remove_store(path)
            known = {}
            continue
        run.kills += 1
        committed = writer.committed()
        promised = max(committed, default=0)
        if not path.exists():
            if committed:
                run.fail("lost", f"{where}: no store file after {promised} committed blocks")
            else:
                run.outcomes["no store yet"] += 1
            continue
        try:
            store = Store.open(path)
        except LedgerError as e:
            half = "creating" in writer.lines and not any(
                x.startswith("ready") for x in writer.lines
            )
            kind = "half-created store refused" if half else "refused"
            size = path.stat().st_size
            wal = Path(f"{path}-wal")
            wal_size = wal.stat().st_size if wal.exists() else None
            run.fail(
                kind,
                f"{where}: Store.open raised {type(e).__name__}: {e} (main file {size} bytes, "
                f"wal {wal_size} bytes)",
            )
            remove_store(path)  # Store.create refuses an existing path: start over
            known = {}
            continue
        except Exception as e:  # noqa: BLE001 - any other exception is the finding
            run.fail("crash", f"{where}: Store.open raised {type(e).__name__}: {e!r}")
            remove_store(path)
            known = {}
            continue
        with store:
            tip = store.tip.height
            if store.genesis.network_id != expected_network:
                run.fail("corrupted", f"{where}: the store has another genesis")
            elif tip < promised:
                run.fail("lost", f"{where}: writer reported block {promised}, store ends at {tip}")
            elif tip < max(known, default=0):
                run.fail("lost", f"{where}: block {max(known)} was verified earlier, tip is {tip}")
            else:
                try:
                    reverify(store, known)
                    ids = block_ids(store)
                except Exception as e:  # noqa: BLE001 - an opened store must re-verify
                    run.fail("corrupted", f"{where}: re-verification: {type(e).__name__}: {e}")
                    ids = None
                if ids is not None:
                    rewritten = [h for h, b in known.items() if ids.get(h) != b]
                    if rewritten:
                        run.fail("lost", f"{where}: verified blocks {rewritten[:5]} were replaced")
                    else:
                        run.outcomes["empty store" if tip == 0 else "opened and verified"] += 1
                    known = ids
                    run.max_height = max(run.max_height, tip)
    elapsed = time.monotonic() - started
    print(
        f"\ncrash campaign: {run.kills} kills in {elapsed:.1f}s, corrupted {run.corrupted}, "
        f"lost {run.lost}, outcomes {dict(run.outcomes)}, highest verified tip {run.max_height}"
    )
    for failure in run.failures:
        print("  FAILURE", failure)
    assert run.kills >= 100
    assert run.failures == []
    assert run.corrupted == 0
    assert run.lost == 0


@pytest.mark.crash
def test_writer_killed_before_each_statement_of_create_and_first_blocks(tmp_path: Path) -> None:
    """The deterministic complement of the random kills: the writer SIGKILLs itself just before
    each SQL statement, from `Store.create`'s first to the second block's commit. Afterwards
    there is no store, or a store that opens (empty or with every reported block) and re-verifies;
    never a half-created file that `Store.open` refuses (and `Store.create` refuses to replace)."""
    failures = []
    outcomes: Counter[str] = Counter()
    for n in range(1, 120):
        path = tmp_path / f"die-{n}" / "ledger.sqlite"
        path.parent.mkdir()
        done = subprocess.run(
            [sys.executable, str(WRITER), str(path), "1", str(n)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        lines = done.stdout.splitlines()
        step = next((x[len("dying before ") :] for x in lines if x.startswith("dying")), "?")
        where = f"killed before statement {n} ({step})"
        if done.returncode != -signal.SIGKILL:
            failures.append(f"{where}: writer exited {done.returncode}: {done.stderr[-500:]}")
            continue
        promised = max((int(x.split()[1]) for x in lines if x.startswith("committed ")), default=0)
        if not path.exists():
            outcomes["no store"] += 1
            assert promised == 0
            continue
        try:
            store = Store.open(path)
        except Exception as e:  # noqa: BLE001 - the finding is reported with the step
            failures.append(f"{where}: Store.open raised {type(e).__name__}: {e}")
            outcomes["refused"] += 1
            continue
        with store:
            try:
                reverify(store)
            except Exception as e:  # noqa: BLE001
                failures.append(f"{where}: re-verification: {type(e).__name__}: {e}")
                continue
            if store.tip.height < promised:
                failures.append(f"{where}: reported {promised}, store ends at {store.tip.height}")
                continue
            outcomes[f"opened at tip {store.tip.height}"] += 1
        if promised >= 2:
            break
    print(f"\nkills before each statement: {n} runs: {dict(outcomes)}")
    for failure in failures:
        print("  FAILURE", failure)
    assert promised >= 2, "the sweep never reached the second block"
    assert failures == []


# 3. damaged WAL and main files


@dataclass(frozen=True)
class Damaged:
    """A store whose last blocks live only in its WAL, with the original blocks' ids."""

    db: bytes
    wal: bytes
    checkpointed: int
    full: int
    ids: dict[int, bytes]
    commit_ends: list[int]  # WAL offsets just after each commit frame, in order
    page_size: int
    clean_db: bytes  # the same store closed cleanly: everything in the main file


def _frames(wal: bytes) -> tuple[int, list[int]]:
    page_size = int.from_bytes(wal[8:12], "big")
    frame = 24 + page_size
    ends = []
    for start in range(32, len(wal) - frame + 1, frame):
        if int.from_bytes(wal[start + 4 : start + 8], "big"):  # db size after commit: a commit
            ends.append(start + frame)
    return page_size, ends


@pytest.fixture(scope="module")
def damaged_source(tmp_path_factory: pytest.TempPathFactory) -> Damaged:
    base = tmp_path_factory.mktemp("wal-source")
    path = base / "ledger.sqlite"
    rng = random.Random(7)
    store = Store.create(path, crash_writer.genesis())
    solo = SoloValidator(store, crash_writer.VALIDATOR)

    def grow(blocks: int) -> None:
        for _ in range(blocks):
            records = crash_writer.next_records(store, rng)
            solo.make_block(records, commit_time=crash_writer.commit_time(store.tip.height + 1))

    grow(3)
    with sqlite3.connect(path) as other:
        busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    other.close()
    assert busy == 0
    assert Path(f"{path}-wal").stat().st_size == 0
    checkpointed = store.tip.height
    grow(7)
    # The store's connection stays open: the last 7 blocks live only in the WAL.
    db, wal = path.read_bytes(), Path(f"{path}-wal").read_bytes()
    full = store.tip.height
    ids = block_ids(store)
    store.close()
    page_size, ends = _frames(wal)
    assert len(ends) == full - checkpointed, "expected one WAL transaction per block"
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return Damaged(
        db=db,
        wal=wal,
        checkpointed=checkpointed,
        full=full,
        ids=ids,
        commit_ends=ends,
        page_size=page_size,
        clean_db=path.read_bytes(),
    )


def _open_damaged(
    work: Path, db: bytes, wal: bytes | None, source: Damaged, low: int
) -> tuple[str, int | None, str]:
    """Open a damaged copy: ('opened', tip, '') after a successful re-verification and prefix
    check, ('refused', None, message) for a LedgerError on open, ('detected', tip, message) when
    it opens but re-verification reports the damage as a LedgerError, or ('crash'|'garbage', tip,
    why)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    path = work / "ledger.sqlite"
    path.write_bytes(db)
    if wal is not None:
        Path(f"{path}-wal").write_bytes(wal)
    try:
        store = Store.open(path)
    except LedgerError as e:
        if not str(e):
            return "crash", None, f"{type(e).__name__} without a message"
        return "refused", None, f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001 - any other exception is the finding
        return "crash", None, f"Store.open raised {type(e).__name__}: {e!r}"
    with store:
        tip = store.tip.height
        try:
            reverify(store)
            ids = block_ids(store)
        except LedgerError as e:
            return "detected", tip, f"opened at tip {tip}; re-verification reports: {e}"
        except Exception as e:  # noqa: BLE001 - any other exception is the finding
            return "crash", tip, f"opened at tip {tip}, re-verification raised {e!r}"
        if not low <= tip <= source.full:
            return "garbage", tip, f"tip {tip} outside {low}..{source.full}"
        if any(ids[h] != source.ids[h] for h in ids):
            return "garbage", tip, f"tip {tip}: blocks differ from the original chain"
        return "opened", tip, ""


def _gist(why: str) -> str:
    """A message with its hashes and numbers blanked, to group similar outcomes."""
    return re.sub(r"[0-9a-f]{16,}|\d+", "#", why.splitlines()[0] if why else "")[:120]


def _report(name: str, results: list[tuple[int, str, int | None, str]]) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for _, outcome, tip, _ in results:
        if outcome == "opened":
            kinds[f"opened at tip {tip}"] += 1
        else:
            kinds[outcome] += 1
    print(f"\n{name}: {len(results)} cases: {dict(sorted(kinds.items()))}")
    gists = Counter((outcome, _gist(why)) for _, outcome, _, why in results if outcome != "opened")
    for (outcome, gist), count in sorted(gists.items()):
        print(f"  {outcome.upper() if outcome != 'refused' else outcome} x{count}: {gist}")
    for offset, outcome, _, why in [r for r in results if r[1] in ("crash", "garbage")][:3]:
        print(f"  e.g. offset {offset}: {outcome}: {why}")
    return kinds


def _expected_tip(source: Damaged, valid_bytes: int) -> int:
    """SQLite's WAL rule: a transaction survives when its commit frame and every frame before it
    are intact; the first damaged frame ends the log."""
    return source.checkpointed + sum(1 for end in source.commit_ends if end <= valid_bytes)


def test_truncated_wal_opens_to_a_valid_prefix(damaged_source: Damaged, tmp_path: Path) -> None:
    src = damaged_source
    frame = 24 + src.page_size
    offsets = set(range(0, len(src.wal), 997))
    for start in range(32, len(src.wal) + 1, frame):
        offsets.update({start, start + 24, start + 24 + src.page_size // 2, start - 1})
    offsets.update(src.commit_ends)
    offsets.update(end - 1 for end in src.commit_ends)
    offsets = {o for o in offsets if 0 <= o <= len(src.wal)}
    results = []
    mismatched = []
    for offset in sorted(offsets):
        outcome, tip, why = _open_damaged(
            tmp_path / "w", src.db, src.wal[:offset], src, src.checkpointed
        )
        results.append((offset, outcome, tip, why))
        if outcome == "opened" and tip != _expected_tip(src, offset):
            mismatched.append((offset, tip, _expected_tip(src, offset)))
    kinds = _report(f"WAL truncations (checkpointed {src.checkpointed}, full {src.full})", results)
    assert [r for r in results if r[1] in ("crash", "garbage", "detected")] == []
    assert mismatched == [], f"(offset, tip, SQLite's rule) {mismatched[:10]}"
    strict = [r for r in results if r[1] == "opened" and r[2] is not None and r[2] < src.full]
    assert strict, f"no truncation opened to a strict prefix: {kinds}"
    assert {r[2] for r in strict} == set(range(src.checkpointed, src.full))


def test_flipped_byte_in_wal_opens_to_a_valid_prefix(
    damaged_source: Damaged, tmp_path: Path
) -> None:
    src = damaged_source
    rng = random.Random(11)
    frame = 24 + src.page_size
    offsets = set(range(32))  # the WAL header
    for start in range(32, len(src.wal), frame * 3):
        offsets.update(start + k for k in (0, 3, 4, 7, 8, 15, 16, 23, 24, 24 + src.page_size - 1))
    offsets.update(rng.randrange(len(src.wal)) for _ in range(120))
    results = []
    mismatched = []
    for offset in sorted(offsets):
        wal = bytearray(src.wal)
        wal[offset] ^= 0xFF
        outcome, tip, why = _open_damaged(tmp_path / "w", src.db, bytes(wal), src, src.checkpointed)
        results.append((offset, outcome, tip, why))
        first_bad = 0 if offset < 32 else 32 + (offset - 32) // frame * frame
        if outcome == "opened" and tip != _expected_tip(src, first_bad):
            mismatched.append((offset, tip, _expected_tip(src, first_bad)))
    _report(f"WAL byte flips (checkpointed {src.checkpointed}, full {src.full})", results)
    assert [r for r in results if r[1] in ("crash", "garbage", "detected")] == []
    assert mismatched == [], f"(offset, tip, SQLite's rule) {mismatched[:10]}"


_MainFlips = dict[str, list[tuple[int, str, int | None, str]]]


@pytest.fixture(scope="module")
def main_file_flips(
    damaged_source: Damaged, tmp_path_factory: pytest.TempPathFactory
) -> _MainFlips:
    """Flip one byte of the main file (not covered by the WAL's checksums: SQLite itself may not
    notice), of a cleanly closed store and of the checkpointed file under an intact WAL. Either
    way every block is still there, so an opened store must hold the full, original chain."""
    src = damaged_source
    work = tmp_path_factory.mktemp("main-flips")
    results: _MainFlips = {}
    for name, db, wal in (("closed store", src.clean_db, None), ("db + wal", src.db, src.wal)):
        offsets = set(range(0, 100, 3)) | set(range(100, len(db), 509))
        cases = []
        for offset in sorted(offsets):
            damaged = bytearray(db)
            damaged[offset] ^= 0xFF
            outcome, tip, why = _open_damaged(work / "m", bytes(damaged), wal, src, src.full)
            cases.append((offset, outcome, tip, why))
        _report(f"main-file byte flips ({name})", cases)
        results[name] = cases
    return results


def test_flipped_byte_in_main_file_never_crashes_open(main_file_flips: _MainFlips) -> None:
    """Store.open raises a LedgerError saying why, never another exception."""
    crashes = [(n, r) for n, cases in main_file_flips.items() for r in cases if r[1] == "crash"]
    assert crashes == []


def test_flipped_byte_in_main_file_never_opens_to_garbage(main_file_flips: _MainFlips) -> None:
    """Damage to old pages of the main file (which open() does not scan) is never served
    silently: lookups and the audit's re-verification report it as a LedgerError with a message.
    A damaged store that re-verifies clean must hold exactly the original chain."""
    garbage = [(n, r) for n, cases in main_file_flips.items() for r in cases if r[1] == "garbage"]
    assert garbage == [], f"{len(garbage)} damaged stores opened with altered contents"
    detected = [r for cases in main_file_flips.values() for r in cases if r[1] == "detected"]
    assert all(r[3] for r in detected)


# 4. creation checkpoints the schema; opening enforces WAL and synchronous=FULL


def test_schema_is_in_the_main_file_right_after_create(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    store = Store.create(path, crash_writer.genesis())
    try:
        alone = tmp_path / "copy" / "ledger.sqlite"
        alone.parent.mkdir()
        shutil.copyfile(path, alone)  # the main file only, while the creator is still open
        for suffix in SIDE_FILES:
            assert not Path(f"{alone}{suffix}").exists()
        with Store.open(alone) as copy:
            assert copy.tip.height == 0
            assert copy.record_count() == 0
            assert copy.genesis.network_id == crash_writer.genesis().network_id
            assert copy.chain.state.root() == store.chain.state.root()
    finally:
        store.close()


def test_open_enforces_wal_and_synchronous_full(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Store.create(path, crash_writer.genesis()).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # Someone switched the file back to a rollback journal; opening must switch it back.
        assert db.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
    db.close()
    with Store.open(path) as store:
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_open_refuses_what_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store"):
        Store.open(tmp_path / "missing.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all, " * 200)
    with pytest.raises(StoreError):
        Store.open(junk)
    existing = tmp_path / "ledger.sqlite"
    Store.create(existing, crash_writer.genesis()).close()
    with pytest.raises(StoreError, match="already exists"):
        Store.create(existing, crash_writer.genesis())


# 5. lookups return the exact signed bytes


def test_lookups_after_reopen_give_the_exact_signed_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "INDEX_BATCH", 5)  # some indexed, the last few in memory
    path = tmp_path / "ledger.sqlite"
    rng = random.Random(5)
    signed: list[tuple[Record, int, int]] = []  # record, height, leaf
    headers: dict[int, bytes] = {}
    with Store.create(path, crash_writer.genesis()) as store:
        solo = SoloValidator(store, crash_writer.VALIDATOR)
        for _ in range(6):
            records = crash_writer.next_records(store, rng)
            leaf = store.record_count()
            block = solo.make_block(
                records, commit_time=crash_writer.commit_time(store.tip.height + 1)
            )
            headers[block.height] = block.header.raw
            signed.extend((r, block.height, leaf + k) for k, r in enumerate(records))
    with Store.open(path) as store:
        assert store.tip.height == 6
        assert store.record_count() == len(signed)
        reverify(store)
        for record, height, leaf in signed:
            by_id = store.record(record.id)
            by_seq = store.record_at(record.author, record.seq)
            for found in (by_id, by_seq):
                assert found is not None
                assert found.record.raw == record.raw
                assert found.record.id == record.id
                assert (found.height, found.leaf) == (height, leaf)
            assert by_seq is not None
            by_seq.record.verify(store.genesis.network_id)
        for height, raw in headers.items():
            header = store.header(height)
            block = store.block(height)
            assert header is not None
            assert block is not None
            assert header.raw == raw == block.header.raw
            assert [r.raw for r in block.records] == [r.raw for r, h, _ in signed if h == height]
        assert store.record(bytes(32)) is None
        assert store.record_at(crash_writer.AUTHORS[0].public_key, 10_000) is None
        assert store.block(7) is None
        assert store.header(7) is None
        assert store.commit(7) is None
