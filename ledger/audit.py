"""The audit: re-verify a whole ledger from its genesis and say exactly where integrity breaks.

`audit` takes a genesis, a stream of blocks and the tip's certificate, from wherever they come
(a store, a bundle, peers), and replays them through the same `Chain` rules a node applies:
every signature, feed link, evidence, block link, certificate, Merkle root, record inclusion
and state root. Each record's decoding, schema and signature checks are handed to a
`RecordChecker`, so the shell can spread them over several cores while the chain rules run here.
`audit_store` and `audit_bundle` do it for an open store or a bundle file.

The report is a frozen value: what was checked, and a `Failure` naming the first rule broken (a
`Rule`, with its PROTOCOL section), the block and the record, as data a program can act on; the
CLI and the demo only print it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.block import Block, Commit, RawBlock
from ledger.chain import Applied, Chain
from ledger.checking import InlineChecker, RecordChecker, checked
from ledger.errors import InvalidData, LedgerError
from ledger.files import open_bundle
from ledger.genesis import Genesis
from ledger.records import Equivocation
from ledger.rulebook import Rule
from ledger.state import Apply, no_transition
from ledger.store import Rules, Store


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """The first rule a ledger breaks: which (and its PROTOCOL section), where, and in words."""

    rule: Rule
    message: str
    height: int | None = None
    """The block that breaks it; None for the genesis or the bundle's framing."""
    record: bytes | None = None
    """The record that breaks it, when one does."""

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule.id,
            "section": self.rule.section,
            "height": self.height,
            "record": None if self.record is None else self.record.hex(),
            "message": self.message,
        }

    @classmethod
    def of(cls, error: LedgerError, height: int | None = None) -> Failure:
        """The failure an error describes; `height` where the error does not say."""
        if not isinstance(error, InvalidData):  # a store's derived data, not the protocol
            return cls(rule=Rule.STORE, message=str(error), height=height)
        where = error.height if error.height is not None else height
        return cls(rule=error.rule, message=str(error), height=where, record=error.record)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditReport:
    """What an audit checked and what it found: `failure` is None when the ledger is intact."""

    network_id: bytes
    rules: str
    height: int
    blocks: int
    records: int
    signatures: int
    certificates: int
    evidence: int
    state_root: bytes
    log_root: bytes
    failure: Failure | None
    checks: tuple[str, ...] = ()
    """What was checked beyond the protocol's rules (a store's derived data)."""

    @property
    def ok(self) -> bool:
        return self.failure is None

    def to_json(self) -> dict[str, Any]:
        """The report as `commons audit --json` prints it (schema in docs/API.md)."""
        return {
            "ok": self.ok,
            "network_id": self.network_id.hex(),
            "rules": self.rules,
            "height": self.height,
            "blocks": self.blocks,
            "records": self.records,
            "signatures": self.signatures,
            "certificates": self.certificates,
            "evidence": self.evidence,
            "state_root": self.state_root.hex(),
            "log_root": self.log_root.hex(),
            "failure": None if self.failure is None else self.failure.to_json(),
            "checks": list(self.checks),
        }


@dataclass(slots=True)
class _Tally:
    blocks: int = 0
    records: int = 0
    certificates: int = 0
    evidence: int = 0
    at: int | None = None
    """The block being checked, while one is."""


def audit_bundle(
    path: Path,
    *,
    rules: Rules,
    checker: RecordChecker | None = None,
    progress: Callable[[int], None] | None = None,
    expected_network: bytes | None = None,
) -> AuditReport:
    """Audit the bundle at `path` under the rules its genesis names (`rules` gives them).
    Raises InputFileError when it cannot be read, and InvalidData when it has no readable
    genesis (there is no ledger to report on); every later failure is in the report."""
    opened = open_bundle(path)
    try:
        apply = rules(opened.genesis)
    except InvalidData:
        opened.close()
        raise
    report, _ = audit(
        opened.genesis,
        opened.raw_blocks(),
        lambda: opened.commit,
        apply=apply,
        checker=checker,
        progress=progress,
        expected_network=expected_network,
    )
    return report


def audit_store(
    store: Store,
    *,
    rules: Rules,
    checker: RecordChecker | None = None,
    progress: Callable[[int], None] | None = None,
    expected_network: bytes | None = None,
) -> AuditReport:
    """Audit an open store (`Store.open(path, rules=..., snapshot=True)`): its blocks from
    genesis, then everything it keeps beside them (state, Merkle nodes, lookup tables) against
    the replay."""
    tip = store.tip.height
    report, chain = audit(
        store.genesis,
        store.raw_blocks(),
        lambda: store.commit(tip) if tip else None,
        apply=rules(store.genesis),
        checker=checker,
        progress=progress,
        expected_network=expected_network,
        on_block=store.check_block,
    )
    if not report.ok:
        return report
    try:
        store.check_derived(chain, blocks_checked=True)
    except LedgerError as e:
        return dataclasses.replace(report, failure=Failure.of(e))
    return dataclasses.replace(
        report, checks=("stored state, Merkle nodes and lookup tables match the replay",)
    )


def unaudited_json(failure: dict[str, Any]) -> dict[str, Any]:
    """`AuditReport.to_json`'s shape when there is no ledger to report on: every value null."""
    values = dict.fromkeys(f.name for f in dataclasses.fields(AuditReport))
    return {"ok": False, **values, "failure": failure, "checks": []}


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
    chain = Chain(genesis, apply=apply)
    tally = _Tally()
    failure = None
    if expected_network is not None and expected_network != genesis.network_id:
        failure = Failure(
            rule=Rule.NETWORK,
            message=f"genesis: network id {genesis.network_id.hex()} is not the expected "
            f"{expected_network.hex()}",
        )
    else:
        try:
            _replay(
                chain,
                tally,
                blocks=blocks,
                tip_commit=tip_commit,
                checker=checker or InlineChecker(),
                progress=progress,
                on_block=on_block,
            )
        except LedgerError as e:
            failure = Failure.of(e, tally.at)
        finally:
            if isinstance(blocks, Generator):
                blocks.close()  # e.g. a bundle's file, when the replay stopped early
    report = AuditReport(
        network_id=genesis.network_id,
        rules=genesis.rules,
        height=chain.tip.height,
        blocks=tally.blocks,
        records=tally.records,
        signatures=tally.records,
        certificates=tally.certificates,
        evidence=tally.evidence,
        state_root=chain.state.root(),
        log_root=chain.log.root(),
        failure=failure,
    )
    return report, chain


def _replay(
    chain: Chain,
    tally: _Tally,
    *,
    blocks: Iterable[RawBlock],
    tip_commit: Callable[[], Commit | None],
    checker: RecordChecker,
    progress: Callable[[int], None] | None,
    on_block: Callable[[Block, Applied], None] | None,
) -> None:
    items = ((raw, None) for raw in blocks)
    for block, records_checked, _ in checked(items, checker, chain.network_id):
        tally.at = chain.tip.height + 1
        applied = chain.append(block, signatures_checked=records_checked)
        tally.at = chain.tip.height
        if on_block is not None:
            on_block(block, applied)
        tally.at = None
        _count(tally, block)
        if progress is not None:
            progress(len(block.records))
    commit = tip_commit()
    if chain.tip.height > 0:
        height = chain.tip.height
        if commit is None:
            raise InvalidData(
                f"block {height}: the tip has no commit certificate",
                rule=Rule.TIP_COMMIT,
                height=height,
            )
        try:
            chain.verify_commit(commit)
        except LedgerError as e:
            raise InvalidData(
                f"block {height}: tip commit certificate: {e}", rule=Rule.TIP_COMMIT, height=height
            ) from e
        tally.certificates += 1


def _count(tally: _Tally, block: Block) -> None:
    tally.blocks += 1
    tally.records += len(block.records)
    tally.evidence += sum(isinstance(r.body, Equivocation) for r in block.records)
    if block.header.last_commit is not None:
        tally.certificates += 1
