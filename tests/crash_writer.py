"""A ledger writer that runs until it is killed: the subject of tests/test_store_crash.py.

    python tests/crash_writer.py STORE SEED [DIE_BEFORE]

Opens the store at STORE (or creates it with the fixed genesis below), then appends blocks of a
few records by several fixed authors, forever. Every run uses the same genesis and keys, so any
run continues any earlier run's store from its feed heads. After each block is stored it prints
`committed <height>` and flushes, so whatever it printed is a promise the store must keep.
Other lines: `creating` just before `Store.create`, `ready <height>` once the store is open, and
`open-failed <message>` (then exit status 3) when an existing store cannot be opened.

With DIE_BEFORE = n the writer SIGKILLs itself just before SQLite runs the n-th SQL statement of
the run (counted with a trace callback on every connection the store opens), printing
`dying before <statement>` first: a deterministic kill at each step of `Store.create` and of the
first blocks.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ledger.store
from ledger.crypto import Keypair
from ledger.errors import LedgerError
from ledger.genesis import Genesis, make_genesis
from ledger.records import Contribution, Record, sign_record
from ledger.store import Store
from node.solo import SoloValidator

GENESIS_TIME = 1_700_000_000_000
BLOCK_SPACING_MS = 1_000
VALIDATOR = Keypair.from_seed(b"crash-writer-validator".ljust(32, b"."))
AUTHORS = tuple(
    Keypair.from_seed(f"crash-writer-author-{i}".encode().ljust(32, b".")) for i in range(4)
)


def genesis() -> Genesis:
    return make_genesis(
        name="crash-test",
        time=GENESIS_TIME,
        members={a.public_key: (f"author{i}", 10 + i) for i, a in enumerate(AUTHORS)},
        validators={VALIDATOR.public_key: 1},
    )


def commit_time(height: int) -> int:
    """When the precommit for `height` is signed: strictly increasing, so the BFT time of block
    h + 1 is commit_time(h) and block 1's is the genesis time."""
    return GENESIS_TIME + height * BLOCK_SPACING_MS


def next_records(store: Store, rng: random.Random) -> list[Record]:
    """A few records continuing some authors' feeds from their finalized heads."""
    height = store.tip.height + 1
    block_time = GENESIS_TIME if height == 1 else commit_time(height - 1)
    network = store.genesis.network_id
    records: list[Record] = []
    for author in rng.sample(AUTHORS, rng.randint(1, len(AUTHORS))):
        head = store.chain.state.feed_head(author.public_key)
        seq, prev = head.seq, head.id
        timestamp = max(head.timestamp, block_time - rng.randint(0, 500))
        for _ in range(rng.randint(1, 2)):
            seq += 1
            record = sign_record(
                author,
                network,
                seq=seq,
                prev=prev,
                timestamp=timestamp,
                body=Contribution(
                    title=f"work {seq} at height {height}",
                    kind="code",
                    description="x" * rng.randint(0, 600),
                ),
            )
            records.append(record)
            prev = record.id
    return records


INDEX_BATCH = 7
"""Small, so that kills also land in the transactions that fill the lookup index tables."""


def die_before_statement(n: int) -> None:
    """Make every new SQLite connection SIGKILL this process just before its n-th statement."""
    real_connect = sqlite3.connect
    count = 0

    def trace(statement: str) -> None:
        nonlocal count
        count += 1
        if count == n:
            print(f"dying before {' '.join(statement.split())[:60]}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    def connect(*args: object, **kwargs: object) -> sqlite3.Connection:
        db = real_connect(*args, **kwargs)  # type: ignore[arg-type]
        db.set_trace_callback(trace)
        return db

    sqlite3.connect = connect  # type: ignore[assignment]


def main(argv: list[str]) -> int:
    path, seed = Path(argv[1]), int(argv[2])
    if len(argv) > 3:
        die_before_statement(int(argv[3]))
    rng = random.Random(seed)
    ledger.store.INDEX_BATCH = INDEX_BATCH
    if path.exists():
        try:
            store = Store.open(path)
        except LedgerError as e:
            print(f"open-failed {type(e).__name__}: {e}", flush=True)
            return 3
    else:
        print("creating", flush=True)
        store = Store.create(path, genesis())
    if store.genesis.network_id != genesis().network_id:
        print("open-failed the store belongs to another genesis", flush=True)
        return 3
    solo = SoloValidator(store, VALIDATOR)
    print(f"ready {store.tip.height}", flush=True)
    while True:
        records = next_records(store, rng)
        block = solo.make_block(records, commit_time=commit_time(store.tip.height + 1))
        print(f"committed {block.height}", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
