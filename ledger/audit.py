"""The audit: re-verify a whole ledger from its genesis and say exactly where integrity breaks.

`audit` takes a genesis, a stream of blocks and the tip's certificate, from wherever they come
(a store, a bundle, peers), and replays them through the same `Chain` rules a node applies:
every signature, feed link, evidence, block link, certificate, Merkle root, record inclusion
and state root. Each record's decoding, schema and signature checks are handed to a
`RecordChecker`, so the shell can spread them over several cores while the chain rules run here.
The result counts what was checked and, on failure, names the first failing height or record and
the rule broken.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field

from ledger.block import Block, Commit, RawBlock
from ledger.chain import Applied, Chain
from ledger.checking import InlineChecker, RecordChecker, checked
from ledger.errors import InvalidData, LedgerError
from ledger.genesis import Genesis
from ledger.records import Equivocation
from ledger.state import Apply, no_transition


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
    blocks: Iterable[RawBlock],
    tip_commit: Callable[[], Commit | None],
    *,
    apply: Apply = no_transition,
    checker: RecordChecker | None = None,
    progress: Callable[[int], None] | None = None,
    expected_network: bytes | None = None,
    on_block: Callable[[Block, Applied], None] | None = None,
) -> tuple[AuditReport, Chain]:
    """Replay `blocks` from `genesis`; `tip_commit` is asked once the blocks are exhausted (a
    bundle reads it last). `on_block` sees each block with what applying it changed (a store
    compares what it derived from the block). Never raises for bad data: the report says what
    failed."""
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
            on_block=on_block,
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
    blocks: Iterable[RawBlock],
    tip_commit: Callable[[], Commit | None],
    checker: RecordChecker,
    progress: Callable[[int], None] | None,
    on_block: Callable[[Block, Applied], None] | None,
) -> None:
    items = ((raw, None) for raw in blocks)
    for block, records_checked, _ in checked(items, checker, chain.network_id):
        applied = chain.append(block, signatures_checked=records_checked)
        if on_block is not None:
            on_block(block, applied)
        _count(report, block)
        if progress is not None:
            progress(len(block.records))
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
