"""A 4-validator devnet on loopback under steady load from many authors.

Prints finalized records/s, submit-to-final latency p50 and p99, CPU seconds per finalized record
per node, and the ratio of finalized records/s to raw Ed25519 verifications/s on one core measured
in the same run, before and after the load (the headline ratio); and, since the machine's speed
drifts within a run, raw verifications sampled during the load too (`RawSampler`; the primitive
itself runs slower on cores the nodes keep busy). Every node verifies every record's signature
once (on arrival, or in a block when it came no other way), so four nodes on two cores each spend
a verification per record.

    python scripts/bench_network.py [--nodes 4] [--authors 200] [--records 6000] [--rate 0]
        [--batch 64] [--inflight 8]

Records go to the local API `--batch` at a time (`POST /api/records` with `{"records": [...]}`),
as a gateway for many members would send them: the load generator shares the machine's cores
with the nodes, and one HTTP request per record would measure mostly itself. `--batch 1` sends
one record per request. `--rate 0` submits as fast as the nodes accept (at most `--inflight`
requests waiting).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import nacl.bindings

from cli.devnet import DevnetNode, create, free_ports, start_node, stop_all
from ledger.crypto import Keypair, Tag, signing_bytes
from ledger.genesis import Param
from ledger.records import ZERO_HASH, Contribution, Record, sign_record

PARAMS = {"max_block_interval_ms": Param(value=2_000, min=1_000, max=3_600_000)}


def raw_verifications_per_second(seconds: float = 1.5) -> float:
    key = Keypair.from_seed(bytes(32))
    message = signing_bytes(Tag.RECORD, bytes(32), b"x" * 200)
    signed = key.sign(Tag.RECORD, bytes(32), b"x" * 200) + message
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(500):
            nacl.bindings.crypto_sign_open(signed, key.public_key)
        count += 500
    return count / (time.perf_counter() - start)


class RawSampler:
    """Raw verifications/s on one core while the load runs: a thread verifies a few signatures
    every `every` seconds and counts them against its own CPU time (not the wall clock, which
    the busy nodes share), so the figure follows the machine's speed through the run. It takes
    about 2% of one core from the nodes."""

    def __init__(self, every: float = 0.25, batch: int = 40) -> None:
        self.every, self.batch = every, batch
        self.count, self.cpu = 0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RawSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        key = Keypair.from_seed(bytes(32))
        message = signing_bytes(Tag.RECORD, bytes(32), b"x" * 200)
        signed = key.sign(Tag.RECORD, bytes(32), b"x" * 200) + message
        while not self._stop.wait(self.every):
            start = time.thread_time()
            for _ in range(self.batch):
                nacl.bindings.crypto_sign_open(signed, key.public_key)
            self.cpu += time.thread_time() - start
            self.count += self.batch

    @property
    def rate(self) -> float:
        return self.count / self.cpu


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_records(network: bytes, authors: int, total: int, start: int) -> list[list[Record]]:
    """Each author's feed of records, seq 1 upwards (signed before the clock starts)."""
    keys = [Keypair.from_seed(os.urandom(32)) for _ in range(authors)]
    feeds: list[list[Record]] = [[] for _ in keys]
    for i in range(total):
        a = i % authors
        feed = feeds[a]
        prev = feed[-1].id if feed else ZERO_HASH
        body = Contribution(title=f"benchmark record {i}", kind="code")
        feed.append(
            sign_record(keys[a], network, seq=len(feed) + 1, prev=prev, timestamp=start, body=body)
        )
    return feeds


async def wait_ready(session: aiohttp.ClientSession, apis: list[str]) -> None:
    deadline = time.monotonic() + 120
    for api in apis:
        while True:
            try:
                async with session.get(f"{api}/ready") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{api} never became ready")
            await asyncio.sleep(0.1)


async def run_load(
    nodes: list[tuple[str, str]], feeds: list[list[Record]], rate: float, inflight: int, batch: int
) -> tuple[dict[bytes, float], dict[bytes, float], list[tuple[float, int]], float, float]:
    """Submit every record (each author always through the same node: its feed stays in
    order) and note when each is final; (submitted, final, blocks with records as (when final,
    how many), start, end) in monotonic seconds."""
    apis = [api for api, _ in nodes]
    submitted: dict[bytes, float] = {}
    final: dict[bytes, float] = {}
    blocks: list[tuple[float, int]] = []
    order = [r for round_ in zip(*feeds, strict=False) for r in round_]
    per_node: list[list[Record]] = [[] for _ in nodes]
    for record in order:
        per_node[record.author[0] % len(nodes)].append(record)
    chunks = [[rs[i : i + batch] for i in range(0, len(rs), batch)] for rs in per_node]
    requests = [  # the nodes' requests in turn, so that every node is under load at once
        (n, chunk)
        for turn in itertools.zip_longest(*chunks)
        for n, chunk in enumerate(turn)
        if chunk is not None
    ]
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, apis)
        slots = asyncio.Semaphore(inflight)

        async def submit(n: int, records: list[Record], body: bytes) -> None:
            async with slots:
                api, token = nodes[n]
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                at = time.monotonic()
                for record in records:
                    submitted[record.id] = at
                async with session.post(f"{api}/api/records", data=body, headers=headers) as r:
                    answer = await r.json()
                if r.status != 200 or any(a["code"] not in (200, 202) for a in answer["results"]):
                    print(f"submit refused: {r.status} {answer}", file=sys.stderr)

        async def watch() -> None:
            """Follow node 1's chain block by block, each asked for before it exists (the API
            answers once it does): a record is final when the block holding it is."""
            api = apis[0]
            height = 0
            while len(final) < len(order):
                async with session.get(f"{api}/api/blocks/{height + 1}?wait=10") as r:
                    if r.status == 404:
                        continue  # not there yet after the wait: ask again
                    ids = (await r.json())["records"]
                height += 1
                now = time.monotonic()
                if ids:
                    blocks.append((now, len(ids)))
                for rid in ids:
                    final.setdefault(bytes.fromhex(rid), now)

        bodies = {  # each request's body made before the clock starts, as the records are signed
            (n, records[0].id): json.dumps({"records": [r.raw.hex() for r in records]}).encode()
            for n, records in requests
        }
        watcher = asyncio.ensure_future(watch())
        start = time.monotonic()
        tasks = []
        sent = 0
        for n, records in requests:
            if rate:
                delay = start + sent / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent += len(records)
            tasks.append(asyncio.ensure_future(submit(n, records, bodies[n, records[0].id])))
        await asyncio.gather(*tasks)
        await asyncio.wait_for(watcher, 300)
        end = max(final.values())
    return submitted, final, blocks, start, end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--authors", type=int, default=200)
    parser.add_argument("--records", type=int, default=6000)
    parser.add_argument("--rate", type=float, default=0.0, help="records/s; 0: as fast as taken")
    parser.add_argument("--batch", type=int, default=64, help="records per API request")
    parser.add_argument("--inflight", type=int, default=8, help="API requests waiting at once")
    parser.add_argument("--dir", type=Path, default=None, help="keep the devnet here")
    args = parser.parse_args()

    raw_before = raw_verifications_per_second()
    with tempfile.TemporaryDirectory(prefix="commons-bench-") as tmp:
        where = args.dir or Path(tmp)
        ports = free_ports(2 * args.nodes)
        specs = [
            DevnetNode(home=where / f"node-{i + 1}", listen=ports[2 * i], api=ports[2 * i + 1])
            for i in range(args.nodes)
        ]
        genesis = create(where, specs, params=PARAMS)
        feeds = make_records(genesis.network_id, args.authors, args.records, genesis.time + 1)
        processes: list[subprocess.Popen[bytes]] = [start_node(n) for n in specs]
        try:
            deadline = time.monotonic() + 60
            while not all((n.home / "api.token").exists() for n in specs):
                if time.monotonic() > deadline:
                    raise SystemExit("nodes did not start")
                time.sleep(0.05)
            nodes = [
                (f"http://127.0.0.1:{n.api}", (n.home / "api.token").read_text().strip())
                for n in specs
            ]
            cpu_before = [cpu_seconds(p.pid) for p in processes]
            load_before = time.process_time()
            with RawSampler() as during:
                submitted, final, blocks, start, end = asyncio.run(
                    run_load(nodes, feeds, args.rate, args.inflight, args.batch)
                )
            cpu_after = [cpu_seconds(p.pid) for p in processes]
            load_cpu = time.process_time() - load_before
        finally:
            stop_all(processes)
    raw_after = raw_verifications_per_second()
    raw = (raw_before + raw_after) / 2  # a machine whose speed drifts is measured at both ends
    latencies = sorted(final[r] - submitted[r] for r in final if r in submitted)
    seconds = end - start
    rate = len(final) / seconds
    cpu = [(b - a) / len(final) for a, b in zip(cpu_before, cpu_after, strict=True)]
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(f"nodes {args.nodes}, authors {args.authors}, records {len(final)} in {seconds:.1f} s")
    print(
        f"raw Ed25519 verifications/s (one core): {raw:,.0f} "
        f"(before the load {raw_before:,.0f}, after {raw_after:,.0f})"
    )
    print(f"finalized records/s: {rate:,.0f}")
    print(f"ratio finalized/raw: {rate / raw:.3f}")
    if during.count:
        print(
            f"raw Ed25519 verifications/s (one core) sampled during the load: {during.rate:,.0f} "
            f"({during.count:,} verifications); ratio against it: {rate / during.rate:.3f}"
        )
    else:
        print("raw Ed25519 verifications during the load: none sampled (the load was too short)")
    interval = (blocks[-1][0] - blocks[0][0]) / max(1, len(blocks) - 1)
    print(
        f"blocks with records: {len(blocks)}, {len(final) / len(blocks):.0f} records each on "
        f"average, one every {interval * 1000:.0f} ms"
    )
    print(
        f"submit-to-final latency: p50 {p50 * 1000:.0f} ms ({p50 / interval:.1f} block intervals), "
        f"p99 {p99 * 1000:.0f} ms"
    )
    print("CPU s per finalized record per node: " + ", ".join(f"{c * 1e6:.0f} us" for c in cpu))
    print(
        f"CPU of the load generator (this process, on the same cores): "
        f"{load_cpu / len(final) * 1e6:.0f} us per record"
    )


if __name__ == "__main__":
    main()
