"""The audit: re-verify a whole ledger from its genesis and say exactly where integrity breaks.

`audit` takes a genesis, a stream of blocks and the tip's certificate, from wherever they come
(a store, a bundle, peers), and replays them through the same `Chain` rules a node applies:
every signature, feed link, evidence, block link, certificate, Merkle root, record inclusion
and state root. Signature checks are handed to a `SignatureChecker`, so the shell can spread them
over several cores while the chain rules run here. The result counts what was checked and, on
failure, names the first failing height or record and the rule broken.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ledger.block import Block, Commit
from ledger.chain import Chain
from ledger.crypto import Tag, signing_bytes, verify
from ledger.errors import InvalidData, LedgerError, SignatureError
from ledger.genesis import Genesis
from ledger.records import Equivocation, signature_parts
from ledger.state import Apply, no_transition

BATCH_RECORDS = 2048


class SignatureChecker(Protocol):
    """Checks record signatures, perhaps elsewhere: `submit` starts a batch and returns a function
    that waits for it and gives the index of its first bad record, or None."""

    def submit(self, network_id: bytes, raws: Sequence[bytes]) -> Callable[[], int | None]: ...


def first_bad_signature(network_id: bytes, raws: Sequence[bytes]) -> int | None:
    """The index of the first record in `raws` whose signature fails, or None."""
    for index, raw in enumerate(raws):
        try:
            author, body, signature = signature_parts(raw)
            verify(author, signing_bytes(Tag.RECORD, network_id, body), signature)
        except (SignatureError, ValueError):
            return index
    return None


class InlineChecker:
    """Checks signatures in this process, when the batch's result is asked for."""

    def submit(self, network_id: bytes, raws: Sequence[bytes]) -> Callable[[], int | None]:
        return lambda: first_bad_signature(network_id, raws)


@dataclass(slots=True)
class AuditReport:
    network_id: bytes
    height: int = 0
    blocks: int = 0
    records: int = 0
    signatures: int = 0
    certificates: int = 0
    evidence: int = 0
    state_root: bytes = b""
    log_root: bytes = b""
    failure: str | None = None
    extra_checks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None


def audit(
    genesis: Genesis,
    blocks: Iterable[Block],
    tip_commit: Callable[[], Commit | None],
    *,
    apply: Apply = no_transition,
    checker: SignatureChecker | None = None,
    progress: Callable[[int], None] | None = None,
    expected_network: bytes | None = None,
) -> tuple[AuditReport, Chain]:
    """Replay `blocks` from `genesis`; `tip_commit` is asked once the blocks are exhausted (a
    bundle reads it last). Never raises for bad data: the report says what failed."""
    report = AuditReport(network_id=genesis.network_id)
    chain = Chain(genesis, apply=apply)
    if expected_network is not None and expected_network != genesis.network_id:
        report.failure = (
            f"genesis: network id {genesis.network_id.hex()} is not the expected "
            f"{expected_network.hex()}"
        )
        return report, chain
    try:
        _replay(
            chain,
            report,
            blocks=blocks,
            tip_commit=tip_commit,
            checker=checker or InlineChecker(),
            progress=progress,
        )
    except LedgerError as e:
        report.failure = str(e) if _names_place(e) else f"after block {chain.tip.height}: {e}"
    finally:
        if isinstance(blocks, Generator):
            blocks.close()  # e.g. a bundle's file, when the replay stopped early
    report.height = chain.tip.height
    report.state_root = chain.state.root()
    report.log_root = chain.log.root()
    return report, chain


def _replay(
    chain: Chain,
    report: AuditReport,
    *,
    blocks: Iterable[Block],
    tip_commit: Callable[[], Commit | None],
    checker: SignatureChecker,
    progress: Callable[[int], None] | None,
) -> None:
    for batch, pending in _batches(blocks, checker, chain.network_id):
        bad = pending()
        done = 0
        for block in batch:
            n = len(block.records)
            if bad is not None and done <= bad < done + n:
                # Re-run this block with in-order signature checks, so that the first record
                # to break any rule is the one named, as a node applying it would.
                chain.append(block, signatures_checked=False)
                record = block.records[bad - done]
                raise _Found(
                    f"block {block.height} record {record.id.hex()}: bad signature by "
                    f"{record.author.hex()[:16]}"
                )
            chain.append(block, signatures_checked=True)
            done += n
            _count(report, block)
            if progress is not None:
                progress(n)
    commit = tip_commit()
    if chain.tip.height > 0:
        if commit is None:
            raise _Found(f"block {chain.tip.height}: the tip has no commit certificate")
        try:
            chain.verify_commit(commit)
        except LedgerError as e:
            raise _Found(f"block {chain.tip.height}: tip commit certificate: {e}") from e
        report.certificates += 1


class _Found(InvalidData):
    pass


def _names_place(error: LedgerError) -> bool:
    return str(error).startswith(("block ", "expected block", "after block"))


def _count(report: AuditReport, block: Block) -> None:
    report.blocks += 1
    report.records += len(block.records)
    report.signatures += len(block.records)
    report.evidence += sum(isinstance(r.body, Equivocation) for r in block.records)
    if block.header.last_commit is not None:
        report.certificates += 1


def _batches(
    blocks: Iterable[Block], checker: SignatureChecker, network_id: bytes
) -> Iterator[tuple[list[Block], Callable[[], int | None]]]:
    """Group blocks into batches of about BATCH_RECORDS records and submit each batch's signatures
    one batch ahead, so checking overlaps with the chain rules."""
    queued: list[tuple[list[Block], Callable[[], int | None]]] = []
    batch: list[Block] = []
    size = 0
    unreadable: LedgerError | None = None
    try:
        for block in blocks:
            batch.append(block)
            size += len(block.records)
            if size >= BATCH_RECORDS:
                queued.append((batch, checker.submit(network_id, _raws(batch))))
                batch, size = [], 0
                if len(queued) > 2:
                    yield queued.pop(0)
    except LedgerError as e:
        unreadable = e  # the blocks read before it are verified first: they may fail earlier
    if batch:
        queued.append((batch, checker.submit(network_id, _raws(batch))))
    yield from queued
    if unreadable is not None:
        raise unreadable


def _raws(batch: list[Block]) -> list[bytes]:
    return [r.raw for block in batch for r in block.records]
