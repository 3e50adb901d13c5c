"""Benchmark of a whole ledger: SQLite ingest, audit, Merkle log and proofs against raw Ed25519.

Pre-signs N contribution records from A authors (fixed seeds: every run builds the same ledger)
for one genesis with one validator, makes blocks of B records in memory (Chain.propose + certify)
and encodes them. The rules are those of a Commons network, the ledger's with governance as the
state transition, as `commons genesis create / import / audit` use them (--rules ledger: the core
alone). Then, each phase timed with time.perf_counter:

  raw      PyNaCl crypto_sign_open over every record's signing bytes, one core
  ingest   decode_raw_block + decode_commit from bytes, Store.extend into a fresh SQLite store
           (decode + validate + verify + store), as `commons import` and a node catching up do:
           the records' decoding, schema and signature checks on a pool of worker processes, one
           per core, ahead of the chain rules and the writes in the main process
  audit    what `commons audit --home` runs, in a freshly spawned interpreter as the command
           would be: Store.open (a snapshot), ledger.audit.audit over store.raw_blocks() with
           the command's record checker (a pool on all cores from PARALLEL_FROM_RECORDS records
           on) and store.check_block on each block, then store.check_derived
  log      MerkleLog(keep_nodes=False).append_hash over the N leaf hashes
  proofs   store.inclusion_proof(leaf, size) for random leaves at the tip (each then checked with
           ledger.merkle.verify_inclusion, outside the timed loop)

It prints the ratios ingest/raw and audit/raw measured in the same run against their targets, and
memory: the current RSS at 1/4, 1/2, 3/4 and all of the ingest and of the audit (flat in N when
the store and the audit hold O(1) per record), the peak of each phase where Linux lets a process
reset its peak (/proc/self/clear_refs), and ru_maxrss of this process, of the audit's process
and of its pool workers.

Usage: python scripts/bench_ledger.py [--records N] [--keep DIR] [--per-block B] [--authors A]
       [--proofs P] [--profile ingest|audit] [--rules commons|ledger]
--keep DIR leaves DIR/ledger.sqlite (and DIR/genesis.json): a home for `commons audit --home DIR`.
--profile runs that phase under cProfile (its rate is then not comparable) and prints the top.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import gc
import multiprocessing
import os
import pstats
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

import nacl.bindings

from cli.ledger_cmds import LEDGER_FILE
from ledger.audit import audit
from ledger.block import Commit, RawBlock, decode_commit, decode_raw_block, encode_commit
from ledger.chain import Chain, certify
from ledger.crypto import Keypair, Tag, signing_bytes
from ledger.genesis import LEDGER_PARAMS, Genesis, Param, make_genesis
from ledger.merkle import MerkleLog, leaf_hash, verify_inclusion
from ledger.records import ZERO_HASH, Contribution, Record, sign_record
from ledger.state import Apply, no_transition
from ledger.store import Store
from node.parallel import PoolChecker, record_checker

try:  # a Commons network's rules: the ledger's, with governance as the state transition
    from node.rules import commons_genesis, commons_rules
except ImportError:  # a tree without governance yet: the ledger's rules are all there is
    commons_genesis = commons_rules = None

GENESIS_TIME = 1_767_225_600_000  # 2026-01-01T00:00:00Z
BLOCK_INTERVAL_MS = 1_000  # the validator certifies a block every second
SEED = 20_260_101
R = TypeVar("R")
TARGET_INGEST = 0.6
TARGET_AUDIT = 1.4
TARGET_APPENDS = 145_000
TARGET_PROOFS = 12_000

KINDS = ("code", "code", "code", "docs", "review", "design", "ops", "translation", "community")
VERBS = ("Fix", "Add", "Refactor", "Document", "Speed up", "Harden", "Test", "Port", "Simplify")
THINGS = (
    "the bundle reader",
    "feed head caching",
    "peer handshake retries",
    "the proposal tally",
    "Merkle proof serving",
    "key file rotation",
    "the onboarding guide",
    "state tree pruning",
    "CLI error messages",
    "the translation catalogue",
)
REPOS = ("commons", "commons-web", "commons-docs", "commons-node", "commons-i18n")
SENTENCES = (
    "Handles the empty case and adds a regression test.",
    "The old code re-read the whole file on every call; it now streams frame by frame.",
    "Reviewed with two maintainers on the weekly call; their notes are addressed.",
    "Benchmarks before and after are in the pull request description.",
    "No change to the wire format, so nodes on the previous release keep working.",
    "Adds property tests that found two off-by-one errors in the boundary handling.",
    "Updates the documentation and the changelog to match.",
    "Splits the long function into three steps that can each be tested on their own.",
    "Follows up on the issue reported by a downstream packager last month.",
    "Translations for five languages were checked by native speakers.",
)


# the rules: "commons" (what the CLI's genesis, import and audit use) or "ledger" (the core alone)

RULES = ("commons", "ledger") if commons_rules is not None else ("ledger",)


def apply_of(rules: str, genesis: Genesis) -> Apply:
    return commons_rules(genesis) if rules == "commons" else no_transition


def store_options(rules: str) -> dict[str, Any]:
    return {"rules": commons_rules} if rules == "commons" else {}


# building the ledger


def block_time(height: int) -> int:
    """BFT time of block `height`: the genesis time, then the previous block's commit time."""
    return GENESIS_TIME + (height - 1) * BLOCK_INTERVAL_MS


def commit_time(height: int) -> int:
    """When the validator signs the precommit of block `height` (after its block time)."""
    return GENESIS_TIME + height * BLOCK_INTERVAL_MS


def contribution(rng: random.Random, i: int) -> Contribution:
    repo = rng.choice(REPOS)
    refs = tuple(
        f"https://git.example.org/{repo}/pull/{rng.randrange(1, 20_000)}"
        for _ in range(rng.randint(1, 3))
    )
    return Contribution(
        title=f"{rng.choice(VERBS)} {rng.choice(THINGS)} (#{i})",
        kind=rng.choice(KINDS),
        refs=refs,
        description=" ".join(rng.sample(SENTENCES, rng.randint(1, 5))),
        hours=rng.randint(1, 40),
        size=rng.randrange(1, 5_000) if rng.random() < 0.5 else None,
    )


def make_network(
    rules: str, authors: int, per_block: int
) -> tuple[Genesis, Keypair, list[Keypair]]:
    keys = [Keypair.from_seed(i.to_bytes(32, "big")) for i in range(1, authors + 1)]
    validator = Keypair.from_seed(b"bench-ledger validator key seed!")
    params = {}
    if per_block > LEDGER_PARAMS["max_block_records"].value:
        base = LEDGER_PARAMS["max_block_records"]
        params["max_block_records"] = Param(value=per_block, min=base.min, max=base.max)
    make = commons_genesis if rules == "commons" else make_genesis
    genesis = make(
        name="bench-ledger",
        time=GENESIS_TIME,
        members={k.public_key: (f"author-{i}", 100) for i, k in enumerate(keys)},
        validators={validator.public_key: 1},
        params=params,
    )
    return genesis, validator, keys


def sign_records(genesis: Genesis, keys: list[Keypair], n: int, per_block: int) -> list[Record]:
    """N records; record i goes into block i // per_block + 1 and is written in the second
    before that block's time, so timestamps never decrease and never run ahead of a block."""
    rng = random.Random(SEED)
    heads = [(0, ZERO_HASH)] * len(keys)
    out = []
    for i in range(n):
        a = rng.randrange(len(keys))
        seq, prev = heads[a]
        height, j = divmod(i, per_block)
        at = block_time(height + 1) - (per_block - j) * BLOCK_INTERVAL_MS // per_block
        record = sign_record(
            keys[a],
            genesis.network_id,
            seq=seq + 1,
            prev=prev,
            timestamp=at,
            body=contribution(rng, i),
        )
        heads[a] = (seq + 1, record.id)
        out.append(record)
    return out


def make_blocks(
    rules: str, genesis: Genesis, validator: Keypair, records: list[Record], per_block: int
) -> list[tuple[bytes, bytes]]:
    """The blocks (and their certificates) a solo validator makes, encoded as a peer sends them."""
    chain = Chain(genesis, apply=apply_of(rules, genesis))
    last: Commit | None = None
    out = []
    for start in range(0, len(records), per_block):
        block = chain.propose(
            records[start : start + per_block], proposer=validator.public_key, last_commit=last
        )
        last = certify(block, genesis.network_id, [validator], timestamp=commit_time(block.height))
        chain.append(block, signatures_checked=True)
        out.append((block.encode(), encode_commit(last)))
    return out


# measuring


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def status_kib(field_name: str) -> int | None:
    """A Vm* line of /proc/self/status in KiB (Linux), else None."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mib() -> float:
    kib = status_kib("VmRSS")
    if kib is None:  # no /proc: the peak is the best we have
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024


def reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM), so a phase's own peak can be read after it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


def peak_mib() -> float | None:
    kib = status_kib("VmHWM")
    return None if kib is None else kib / 1024


def machine_cpu() -> float:
    """CPU seconds every process of this machine has used so far, with time stolen by the
    hypervisor (/proc/stat); 0.0 where there is no /proc. Less this run's own CPU time over a
    phase, it is what other processes took from the phase."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


_SHARED: dict[str, list[tuple[bytes, bytes]]] = {}
"""What forked workers of `raw_all_cores` read: they inherit it, nothing is pickled."""


def _verify_slice(start: int, stop: int) -> None:
    for signed, public in _SHARED["pairs"][start:stop]:
        nacl.bindings.crypto_sign_open(signed, public)


def _ready() -> None:
    pass


def raw_all_cores(pairs: list[tuple[bytes, bytes]], workers: int) -> float:
    """Raw verifications/s with one forked process per core: the ceiling of any parallel audit."""
    _SHARED["pairs"] = pairs
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        for future in [pool.submit(_ready) for _ in range(workers)]:
            future.result()
        step = -(-len(pairs) // workers)
        start = time.perf_counter()
        parts = [pool.submit(_verify_slice, i, i + step) for i in range(0, len(pairs), step)]
        for future in parts:
            future.result()
        seconds = time.perf_counter() - start
    del _SHARED["pairs"]
    return rate(len(pairs), seconds)


@dataclass
class Memory:
    """RSS and time when a phase has done 1/4, 1/2, 3/4 and all of its records."""

    total: int
    marks: list[tuple[int, float, float]] = field(default_factory=list)
    start: float = 0.0
    started: float = 0.0
    peak: float | None = None
    _next: int = 1
    _resettable: bool = False

    def begin(self) -> None:
        gc.collect()
        self._resettable = reset_peak()
        self.start = rss_mib()
        self.started = time.perf_counter()

    def progress(self, done: int) -> None:
        while self._next <= 4 and done * 4 >= self._next * self.total:
            self.marks.append((done, rss_mib(), time.perf_counter()))
            self._next += 1

    def end(self) -> None:
        if self._resettable:
            self.peak = peak_mib()

    def rates(self) -> str:
        """Records/s in each quarter: falling rates mean a record costs more as the ledger grows."""
        out, done, at = [], 0, self.started
        for mark_done, _, mark_at in self.marks:
            out.append(f"{rate(mark_done - done, mark_at - at):,.0f}")
            done, at = mark_done, mark_at
        return " / ".join(out)

    def line(self) -> str:
        marks = "  ".join(f"{done:,}: {mib:.1f}" for done, mib, _ in self.marks)
        growth = self.marks[-1][1] - self.marks[0][1] if self.marks else 0.0
        between = self.marks[-1][0] - self.marks[0][0] if self.marks else 0
        per = f", {growth * 2**20 / between:,.0f} B/record" if between else ""
        peak = "n/a" if self.peak is None else f"{self.peak:.1f}"
        return (
            f"start {self.start:.1f}  {marks}\n"
            f"          growth N/4 -> N {growth:+.1f} MiB{per}; phase peak {peak}"
        )


@contextmanager
def profiled(enabled: bool, what: str) -> Iterator[None]:
    if not enabled:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        print(f"\n--- cProfile of {what} (top 30 by own time; rates under a profiler are slower)")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(30)
        print(f"--- cProfile of {what} (top 20 by cumulative time)")
        stats.sort_stats("cumulative").print_stats(20)


@dataclass
class IngestResult:
    seconds: float
    cpu: float
    workers_cpu: float
    others: float
    memory: Memory
    peak: float


def run_ingest(
    rules: str,
    path: Path,
    genesis: Genesis,
    encoded: list[tuple[bytes, bytes]],
    total: int,
    profile: bool,
) -> IngestResult:
    """Decode, verify and store every block into a new store, as a node receiving them does."""
    memory = Memory(total=total)
    done = 0

    def blocks() -> Iterator[tuple[RawBlock, Commit]]:
        nonlocal done
        for block_bytes, commit_bytes in encoded:
            raw = decode_raw_block(block_bytes)
            yield raw, decode_commit(commit_bytes)
            done += raw.header.record_count
            memory.progress(done)

    store = Store.create(path, genesis, **store_options(rules))
    with store, record_checker(total) as checker:
        memory.begin()
        with profiled(profile, "ingest"):
            machine = machine_cpu()
            before = os.times()
            start = time.perf_counter()
            store.extend(blocks(), checker)
            seconds = time.perf_counter() - start
        memory.end()
    after = os.times()  # the pool's workers are counted once they have exited
    machine = machine_cpu() - machine
    cpu = after.user + after.system - before.user - before.system
    workers_cpu = (
        after.children_user + after.children_system - before.children_user - before.children_system
    )
    return IngestResult(
        seconds=seconds,
        cpu=cpu,
        workers_cpu=workers_cpu,
        others=max(0.0, machine - cpu - workers_cpu),
        memory=memory,
        peak=peak_mib() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


@dataclass
class AuditResult:
    open: float
    replay: float
    derived: float
    records: int
    workers: int
    log_root: bytes
    size: int
    memory: Memory
    cpu: float
    workers_cpu: float
    others: float
    peak: float
    workers_peak: float


def run_audit(rules: str, path: Path, profile: bool) -> AuditResult:
    """`commons audit --home`: open the store, replay it on all cores, compare derived data."""
    memory = Memory(total=0)
    memory.begin()
    with profiled(profile, "audit (its main process)"):
        machine = machine_cpu()
        before = os.times()
        start = time.perf_counter()
        store = Store.open(path, snapshot=True, **store_options(rules))
        opened = time.perf_counter()
        with store:
            tip = store.tip.height
            total = memory.total = store.record_count()
            done = 0

            def progress(n: int) -> None:
                nonlocal done
                done += n
                memory.progress(done)

            with record_checker(total) as checker:
                workers = checker.workers if isinstance(checker, PoolChecker) else 0
                report, chain = audit(
                    store.genesis,
                    store.raw_blocks(),
                    lambda: store.commit(tip) if tip else None,
                    apply=apply_of(rules, store.genesis),
                    checker=checker,
                    progress=progress,
                    on_block=store.check_block,
                )
            replayed = time.perf_counter()
            if report.failure is not None:
                raise SystemExit(f"audit failed: {report.failure.message}")
            store.check_derived(chain, blocks_checked=True)
            derived = time.perf_counter()
        after = os.times()
        machine = machine_cpu() - machine
    memory.end()
    cpu = after.user + after.system - before.user - before.system
    workers_cpu = (
        after.children_user + after.children_system - before.children_user - before.children_system
    )
    return AuditResult(
        open=opened - start,
        replay=replayed - opened,
        derived=derived - replayed,
        records=report.records,
        workers=workers,
        log_root=report.log_root,
        size=total,
        memory=memory,
        cpu=cpu,
        workers_cpu=workers_cpu,
        others=max(0.0, machine - cpu - workers_cpu),
        peak=peak_mib() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        workers_peak=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    )


def _child(phase: Callable[..., object], args: tuple[object, ...], conn: Connection) -> None:
    conn.send(phase(*args))
    conn.close()


def in_new_process(phase: Callable[..., R], *args: object) -> R:
    """`phase(*args)` in a freshly spawned interpreter, as a `commons` command runs: its memory
    (and that of the pool workers it forks) is then its own, not this benchmark's, which holds
    every pre-signed record."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(phase, args, sender))
    child.start()
    sender.close()
    try:
        result: R = receiver.recv()
    except EOFError:
        child.join()
        raise SystemExit(f"{phase.__name__} failed (exit code {child.exitcode})") from None
    child.join()
    return result


def prove(
    rules: str, path: Path, hashes: list[bytes], root: bytes, count: int
) -> tuple[float, int]:
    """(proofs/s served by the store at its tip size, proofs that verify)."""
    rng = random.Random(SEED + 1)
    with Store.open(path, **store_options(rules)) as store:
        size = store.record_count()
        leaves = [rng.randrange(size) for _ in range(count)]
        start = time.perf_counter()
        proofs = [store.inclusion_proof(leaf, size) for leaf in leaves]
        seconds = time.perf_counter() - start
    good = 0
    for leaf, proof in zip(leaves, proofs, strict=True):
        verify_inclusion(hashes[leaf], leaf, size, proof, root)  # raises ProofError if not
        good += 1
    return rate(count, seconds), good


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, metavar="N")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR")
    parser.add_argument("--per-block", type=int, default=1_000, metavar="B")
    parser.add_argument("--authors", type=int, default=500, metavar="A")
    parser.add_argument("--proofs", type=int, default=20_000, metavar="P")
    parser.add_argument("--profile", choices=("ingest", "audit"), default=None)
    parser.add_argument(
        "--rules",
        choices=RULES,
        default=RULES[0],
        help="commons: the ledger with governance, as `commons import/audit` run it (default "
        "when node/rules.py exists); ledger: the core's rules alone",
    )
    args = parser.parse_args()
    n, per_block = args.records, args.per_block
    if n < 1 or args.authors < 1 or not 1 <= per_block <= LEDGER_PARAMS["max_block_records"].max:
        parser.error("--records and --authors must be >= 1, --per-block within 1..100000")
    if args.keep is not None and (args.keep / LEDGER_FILE).exists():
        parser.error(f"{args.keep} already holds a ledger")

    load_before = os.getloadavg()[0]
    rules = args.rules
    genesis, validator, keys = make_network(rules, args.authors, per_block)
    print(f"signing {n:,} records from {args.authors} authors ...", flush=True)
    start = time.perf_counter()
    records = sign_records(genesis, keys, n, per_block)
    print(f"  {time.perf_counter() - start:.1f} s; making blocks of {per_block} ...", flush=True)
    start = time.perf_counter()
    encoded = make_blocks(rules, genesis, validator, records, per_block)
    print(f"  {len(encoded)} blocks in {time.perf_counter() - start:.1f} s", flush=True)
    record_bytes = sum(len(r.raw) for r in records)
    hashes = [leaf_hash(r.raw) for r in records]
    pairs = [
        (r.signature + signing_bytes(Tag.RECORD, genesis.network_id, r.signed_body()), r.author)
        for r in records
    ]
    del records
    gc.collect()

    print("raw verification ...", flush=True)
    machine = machine_cpu()
    cpu = time.process_time()
    start = time.perf_counter()
    for signed, public in pairs:
        nacl.bindings.crypto_sign_open(signed, public)
    raw_seconds = time.perf_counter() - start
    raw_cpu = time.process_time() - cpu
    raw_others = max(0.0, machine_cpu() - machine - raw_cpu)
    raw_rate = rate(n, raw_seconds)
    cores = os.cpu_count() or 1
    raw_parallel = raw_all_cores(pairs, cores) if cores > 1 else raw_rate
    del pairs

    log = MerkleLog(keep_nodes=False)
    start = time.perf_counter()
    for h in hashes:
        log.append_hash(h)
    log_root = log.root()
    append_rate = rate(n, time.perf_counter() - start)

    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as scratch:
        home = args.keep if args.keep is not None else Path(scratch)
        home.mkdir(parents=True, exist_ok=True)
        path = home / LEDGER_FILE
        (home / "genesis.json").write_bytes(genesis.to_json())

        print(f"ingest into {path} ...", flush=True)
        ingested = in_new_process(
            run_ingest, rules, path, genesis, encoded, n, args.profile == "ingest"
        )
        ingest_seconds, ingest_cpu = ingested.seconds, ingested.cpu
        ingest_rate = rate(n, ingest_seconds)
        del encoded
        gc.collect()

        print("audit (in a new process, as `commons audit --home` runs) ...", flush=True)
        times = in_new_process(run_audit, rules, path, args.profile == "audit")
        audit_seconds = times.open + times.replay + times.derived
        audit_rate = rate(times.records, audit_seconds)
        if times.records != n or times.log_root != log_root or times.size != n:
            raise SystemExit("the audited ledger is not the one that was built")

        print(f"{args.proofs:,} inclusion proofs ...", flush=True)
        proof_rate, good = prove(rules, path, hashes, log_root, args.proofs)
        db_mib = sum(p.stat().st_size for p in home.glob(LEDGER_FILE + "*")) / 2**20

    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ingest_ratio, audit_ratio = ingest_rate / raw_rate, audit_rate / raw_rate
    blocks = -(-n // per_block)
    workers = f"{times.workers} pool workers" if times.workers else "no pool (inline)"
    rows = [
        ("rules", rules, "ledger + governance (node.rules.commons_rules), as the CLI"
            if rules == "commons" else "the ledger core alone (no state transition)"),
        ("records", f"{n:,}", f"{args.authors} authors, {blocks:,} blocks of {per_block}, "
            f"{record_bytes / n:.0f} B/record avg"),
        ("raw PyNaCl verifications/s", f"{raw_rate:,.0f}", f"crypto_sign_open, one core; "
            f"{raw_seconds:.2f} s, on CPU {raw_cpu / raw_seconds:.0%} of it; others "
            f"{raw_others:.1f} CPU-s"),
        ("  the same on all cores", f"{raw_parallel:,.0f}", f"{cores} processes: "
            f"{raw_parallel / raw_rate:.2f}x one core, the ceiling of a parallel audit"),
        ("ingest records/s", f"{ingest_rate:,.0f}", f"{ingest_seconds:.2f} s; store "
            f"{db_mib:.0f} MiB; main process on CPU {ingest_cpu / ingest_seconds:.0%} of it"),
        ("  ingest CPU seconds", f"{ingest_cpu + ingested.workers_cpu:.2f}", f"main process "
            f"{ingest_cpu:.2f} + pool workers {ingested.workers_cpu:.2f}: "
            f"{(ingest_cpu + ingested.workers_cpu) / ingest_seconds / cores:.0%} of {cores} "
            f"cores; others {ingested.others:.1f} CPU-s"),
        ("audit records/s", f"{audit_rate:,.0f}", f"{audit_seconds:.2f} s = open "
            f"{times.open:.2f} + replay {times.replay:.2f} + check_derived {times.derived:.2f}"
            f"; {workers}, {cores} cores"),
        ("  audit CPU seconds", f"{times.cpu + times.workers_cpu:.2f}", f"main process "
            f"{times.cpu:.2f} + pool workers {times.workers_cpu:.2f}: "
            f"{(times.cpu + times.workers_cpu) / audit_seconds / cores:.0%} of {cores} cores; "
            f"others {times.others:.1f} CPU-s"),
        ("Merkle log appends/s", f"{append_rate:,.0f}",
            f"target >= {TARGET_APPENDS:,}  {verdict(append_rate >= TARGET_APPENDS)}"),
        ("inclusion proofs/s", f"{proof_rate:,.0f}",
            f"target >= {TARGET_PROOFS:,}  {verdict(proof_rate >= TARGET_PROOFS)}; "
            f"{good:,} of {args.proofs:,} verify"),
        ("ratio ingest/raw", f"{ingest_ratio:.3f}",
            f"target >= {TARGET_INGEST}  {verdict(ingest_ratio >= TARGET_INGEST)}; "
            f"{ingest_rate / raw_parallel:.3f} of the all-cores raw rate"),
        ("ratio audit/raw", f"{audit_ratio:.3f}",
            f"target >= {TARGET_AUDIT} (two cores)  {verdict(audit_ratio >= TARGET_AUDIT)}; "
            f"{audit_rate / raw_parallel:.3f} of the all-cores raw rate"),
        ("load average", f"{load_before:.2f}", f"1-min, before the run; {os.getloadavg()[0]:.2f} "
            "after. 'others': CPU other processes used during a phase (/proc/stat): above a few "
            "tenths, the phase's rate is low"),
        ("peak RSS, benchmark", f"{self_peak:,.1f} MiB", "ru_maxrss of this process: "
            "pre-signing (all N records at once), raw, log, proofs"),
        ("peak RSS, ingest process", f"{ingested.peak:,.1f} MiB", "VmHWM of the ingest's "
            "process (holds the encoded blocks it is given)"),
        ("peak RSS, audit process", f"{times.peak:,.1f} MiB", "VmHWM of the audit's process "
            "(its ru_maxrss would still count the benchmark it was forked from before exec)"),
        ("peak RSS, pool workers", f"{times.workers_peak:,.1f} MiB",
            "ru_maxrss (RUSAGE_CHILDREN) of its largest worker, forked from it"),
    ]  # fmt: skip
    print()
    print(f"{'measure':<28} {'value':>14}  notes")
    print("-" * 100)
    for name, value, note in rows:
        print(f"{name:<28} {value:>14}  {note}")
    print()
    print("RSS in MiB as records are processed (B/record: what each record adds to memory):")
    print(f"  ingest  {ingested.memory.line()}")
    print(f"  audit   {times.memory.line()}")
    print("records/s in each quarter (falling: each record costs more as the ledger grows):")
    print(f"  ingest  {ingested.memory.rates()}")
    print(f"  audit   {times.memory.rates()}  (the first quarter includes Store.open and the pool)")
    if args.keep is not None:
        print(f"\nkept {home}: try `commons audit --home {home} --genesis {home}/genesis.json`")


if __name__ == "__main__":
    main()
