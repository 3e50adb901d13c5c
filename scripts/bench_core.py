"""Benchmark of the ledger core: record decode + validate + verify against raw Ed25519.

Prints raw PyNaCl verifications/s, records decoded + schema-checked + verified per second, Merkle
log appends per second, and the ratio of record verification to raw verification measured in the
same run (target >= 0.8). Usage: python scripts/bench_core.py [--records N]
"""

from __future__ import annotations

import argparse
import time

import nacl.bindings

from ledger.crypto import Keypair, Tag, signing_bytes
from ledger.merkle import MerkleLog, leaf_hash
from ledger.records import ZERO_HASH, Contribution, decode_verified, sign_record

NET = bytes(range(32))


def make_records(n: int) -> list[bytes]:
    authors = [Keypair.from_seed(i.to_bytes(32, "big")) for i in range(1, 101)]
    heads = {a.public_key: (0, ZERO_HASH) for a in authors}
    out = []
    for i in range(n):
        key = authors[i % len(authors)]
        seq, prev = heads[key.public_key]
        body = Contribution(
            title=f"Fix issue #{i}",
            kind="code",
            refs=(f"https://example.org/pr/{i}",),
            description="Handles the empty case and adds a regression test.",
            hours=2,
        )
        record = sign_record(
            key, NET, seq=seq + 1, prev=prev, timestamp=1_700_000_000_000 + i, body=body
        )
        heads[key.public_key] = (seq + 1, record.id)
        out.append(record.raw)
    return out


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    n = args.records

    print(f"signing {n} records from 100 authors ...", flush=True)
    raws = make_records(n)
    decoded = [decode_verified(raw, NET) for raw in raws]
    pairs = [
        (r.signature + signing_bytes(Tag.RECORD, NET, r.signed_body()), r.author) for r in decoded
    ]

    # Raw and record verification alternate chunk by chunk, so a load change on the machine
    # affects both sides alike and the ratio stays honest.
    raw_seconds = record_seconds = 0.0
    chunk = 5_000
    for lo in range(0, n, chunk):
        start = time.perf_counter()
        for signed, public in pairs[lo : lo + chunk]:
            nacl.bindings.crypto_sign_open(signed, public)
        middle = time.perf_counter()
        for raw in raws[lo : lo + chunk]:
            decode_verified(raw, NET)
        raw_seconds += middle - start
        record_seconds += time.perf_counter() - middle
    raw_rate = rate(n, raw_seconds)
    record_rate = rate(n, record_seconds)

    hashes = [leaf_hash(raw) for raw in raws]
    log = MerkleLog(keep_nodes=False)
    start = time.perf_counter()
    for h in hashes:
        log.append_hash(h)
    log.root()
    append_rate = rate(n, time.perf_counter() - start)

    print(f"raw PyNaCl verifications/s            {raw_rate:12,.0f}")
    print(f"records decoded+validated+verified/s  {record_rate:12,.0f}")
    print(f"Merkle log appends/s                  {append_rate:12,.0f}")
    print(f"ratio record/raw                      {record_rate / raw_rate:12.3f}  (target >= 0.8)")


if __name__ == "__main__":
    main()
