"""Chain verification: the deterministic rule that decides whether a block extends a verified tip.

`Chain` holds everything needed to judge the next block — height, id and time of the tip, the
Merkle log's frontier and the state — and `append` checks a block against every rule of
docs/PROTOCOL.md: header links, validator hashes, the previous block's certificate and BFT time,
each record's signature, feed and evidence rules, the records root, the log and the state root
after the state transition. A refused block leaves the chain as it was. Nothing here reads a clock.

A block judged by `validate` (or made by `propose`) is not executed again by `append` at the same
tip: what it changes is kept (`_Prepared`) and replayed, so a node that checks a proposal before
voting and stores it once decided runs its records once.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from ledger.block import Block, BlockError, CertificateError, Commit, Header, Precommit
from ledger.crypto import Keypair
from ledger.errors import InvalidData
from ledger.feed import extend
from ledger.genesis import Genesis
from ledger.merkle import CompletedNode, MerkleLog, leaf_hash, root_of, root_of_hashes
from ledger.records import Equivocation, Record
from ledger.rulebook import Rule
from ledger.state import Apply, LedgerState, double_vote_key, no_transition
from ledger.validators import ValidatorSet
from ledger.vote_evidence import DoubleVote

ZERO = bytes(32)
MAX_PREPARED = 4
"""Blocks judged at the current tip whose changes are kept for `append` (one per round tried)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Tip:
    """Where a verified chain stands."""

    height: int
    block_id: bytes
    time: int


class Chain:
    """A verified chain from genesis: `append` extends it by one block, or raises and changes
    nothing."""

    def __init__(
        self,
        genesis: Genesis,
        *,
        apply: Apply = no_transition,
        state: LedgerState | None = None,
        log: MerkleLog | None = None,
        tip: Tip | None = None,
    ) -> None:
        self.genesis = genesis
        self.network_id = genesis.network_id
        self.apply = apply
        self.state = state if state is not None else LedgerState.from_genesis(genesis)
        self.log = log if log is not None else MerkleLog(keep_nodes=False)
        self.tip = tip or Tip(height=0, block_id=genesis.network_id, time=genesis.time)
        self._prepared: dict[bytes, _Prepared] = {}
        """Blocks judged at `tip`, by id."""

    def append(
        self, block: Block, *, signatures_checked: bool = False, commit: Commit | None = None
    ) -> Applied:
        """Verify `block` as the next one and apply it; return what it changed.
        `signatures_checked` says the caller already verified every record's signature (e.g. on
        several cores). `commit`, if given, must certify `block` too, or nothing is applied."""
        prepared = self._judged(block, signatures_checked=signatures_checked)
        # a prepared block was judged at this very tip
        header = block.header if prepared is not None else self._check_header(block.header)
        with self._attempt() as attempt:
            if prepared is None:
                leaves = self._execute(
                    block, check_signatures=not signatures_checked, nodes=attempt.nodes
                )
                self._check_roots(header, leaves)
            else:
                self._replay(prepared, attempt)
            if commit is not None:
                self._check_commit(commit, header)
            attempt.keep = True
        self.tip = Tip(height=header.height, block_id=header.id, time=header.time)
        self._prepared.clear()
        return Applied(changed=attempt.changed, log_nodes=attempt.nodes)

    def validate(self, block: Block, *, signatures_checked: bool = False) -> None:
        """Raise unless `block` would be accepted by `append`; change nothing (but keep what
        it changes, for `append`). `signatures_checked` as for `append`."""
        if self._judged(block, signatures_checked=signatures_checked) is not None:
            return
        header = self._check_header(block.header)
        nodes: list[CompletedNode] = []
        with self._attempt():
            leaves = self._execute(block, check_signatures=not signatures_checked, nodes=nodes)
            self._check_roots(header, leaves)
            self._prepare(block, nodes, verified_here=not signatures_checked)

    def next_time(self, last_commit: Commit | None) -> int:
        """The time of the next block, certified by `last_commit` (None for block 1): the BFT
        time, the median of its precommits' times weighted by vals(h - 1), or the genesis time."""
        if last_commit is None:
            return self.genesis.time
        return last_commit.median_time(self.state.validators("current"))

    def propose(
        self,
        records: Sequence[Record],
        *,
        proposer: bytes,
        last_commit: Commit | None,
        signatures_checked: bool = False,
    ) -> Block:
        """The next block made of `records`, with the roots they lead to. The chain is left as it
        was: append the block once it is certified. `signatures_checked` as for `append`."""
        time = self.next_time(last_commit)
        draft = Header(
            height=self.tip.height + 1,
            prev=self.tip.block_id,
            time=time,
            proposer=proposer,
            record_count=len(records),
            records_root=root_of([r.raw for r in records]),
            log_size=0,
            log_root=ZERO,
            state_root=ZERO,
            validators_hash=self.state.validators("next").hash,
            next_validators_hash=self.state.validators("after").hash,
            last_commit=last_commit,
        )
        block = Block(header=draft, records=tuple(records))
        try:  # what the header says before its roots; a block it breaks is not kept as judged
            self._check_header(draft)
            judged = True
        except InvalidData:
            judged = False
        nodes: list[CompletedNode] = []
        with self._attempt():
            self._execute(block, check_signatures=not signatures_checked, nodes=nodes)
            header = dataclasses.replace(
                draft,
                log_size=self.log.size,
                log_root=self.log.root(),
                state_root=self.state.root(),
                new_validators=self.state.validator_change,
            )
            made = Block(header=header, records=block.records)
            if judged:
                self._prepare(made, nodes, verified_here=not signatures_checked)
        return made

    def _judged(self, block: Block, *, signatures_checked: bool) -> _Prepared | None:
        """What `block` changes, if it was judged at this tip as it is now, with its
        signatures checked then or vouched for now."""
        prepared = self._prepared.get(block.id)
        if prepared is None or prepared.raws != tuple(r.raw for r in block.records):
            return None  # the header names its records by their root, checked in execution
        return prepared if prepared.verified_here or signatures_checked else None

    def _prepare(self, block: Block, nodes: list[CompletedNode], *, verified_here: bool) -> None:
        """Keep what the block being tried changes (before `_attempt` undoes it)."""
        if len(self._prepared) >= MAX_PREPARED:
            del self._prepared[next(iter(self._prepared))]
        self._prepared[block.id] = _Prepared(
            raws=tuple(r.raw for r in block.records),
            changes=self.state.changes(),
            validator_change=self.state.validator_change,
            log_size=self.log.size,
            frontier=self.log.frontier(),
            nodes=tuple(nodes),
            verified_here=verified_here,
        )

    def _replay(self, prepared: _Prepared, attempt: _Attempt) -> None:
        """Make the changes of a block judged at this tip, without executing it again. (Its
        roots were checked then; the state tree rehashes the changed paths when next asked.)"""
        self.state.replay(prepared.changes)
        self.state.validator_change = prepared.validator_change
        self.log = MerkleLog.from_frontier(prepared.log_size, prepared.frontier, keep_nodes=False)
        attempt.nodes += prepared.nodes

    def verify_commit(self, commit: Commit) -> None:
        """Raise CertificateError unless `commit` certifies the tip block."""
        if self.tip.height == 0:
            raise CertificateError("the genesis has no commit certificate")
        self._check_commit(commit, self.tip)

    def _check_commit(self, commit: Commit, block: Tip | Header) -> None:
        """`commit` must certify `block`, the tip or the one being applied (whose validators are
        then already the state's current set), with every precommit after the block's time."""
        commit.verify(
            self.network_id,
            self.state.validators("current"),
            height=block.height,
            block_id=block.block_id if isinstance(block, Tip) else block.id,
        )
        for key, at, _ in commit.votes:
            if at <= block.time:
                raise CertificateError(
                    f"precommit by {key.hex()[:16]} has timestamp {at}, not after block "
                    f"{block.height}'s time {block.time}"
                )

    # the rules, in order

    def _check_header(self, header: Header) -> Header:
        h = header.height
        if h != self.tip.height + 1:
            raise BlockError(
                f"expected block {self.tip.height + 1}, got block {h}", rule=Rule.HEIGHT, height=h
            )
        if header.prev != self.tip.block_id:
            raise _broken(Rule.PREV, h, f"prev does not link to block {self.tip.height}")
        if header.validators_hash != self.state.validators("next").hash:
            raise _broken(
                Rule.VALIDATORS_HASH, h, "validators_hash is not the hash of the height's set"
            )
        if header.next_validators_hash != self.state.validators("after").hash:
            raise _broken(
                Rule.NEXT_VALIDATORS_HASH, h, "next_validators_hash is not the next height's set"
            )
        if self.state.validators("next").power(header.proposer) == 0:
            raise _broken(
                Rule.PROPOSER, h, f"proposer {header.proposer.hex()[:16]} is not a validator"
            )
        if header.last_commit is None:
            expected_time = self.genesis.time
        else:
            previous = self.state.validators("current")
            try:
                header.last_commit.verify(
                    self.network_id, previous, height=h - 1, block_id=self.tip.block_id
                )
            except CertificateError as e:
                raise _broken(Rule.LAST_COMMIT, h, f"last_commit: {e}") from e
            for key, at, _ in header.last_commit.votes:
                if at <= self.tip.time:
                    raise _broken(
                        Rule.COMMIT_AFTER_BLOCK,
                        h,
                        f"precommit by {key.hex()[:16]} has timestamp {at}, not after "
                        f"block {h - 1}'s time {self.tip.time}",
                    )
            expected_time = header.last_commit.median_time(previous)
        if header.time != expected_time:
            raise _broken(
                Rule.BFT_TIME, h, f"time {header.time} is not the BFT time {expected_time}"
            )
        limit = self.state.param("max_block_records")
        if header.record_count > limit:
            raise _broken(
                Rule.RECORD_LIMIT, h, f"{header.record_count} records exceed the limit {limit}"
            )
        return header

    @contextlib.contextmanager
    def _attempt(self) -> Iterator[_Attempt]:
        """Run a block's changes; undo them unless the body sets `keep`, or raises."""
        attempt = _Attempt()
        size, frontier = self.log.size, self.log.frontier()
        self.state.begin()
        try:
            yield attempt
        finally:
            if attempt.keep:
                attempt.changed = self.state.commit()
            else:
                self.state.rollback()
                self.log = MerkleLog.from_frontier(size, frontier, keep_nodes=False)

    def _execute(
        self, block: Block, *, check_signatures: bool, nodes: list[CompletedNode] | None = None
    ) -> list[bytes]:
        """Every state change a block makes: feeds, evidence, log, validators, the transition.
        `nodes`, if given, gathers the Merkle log nodes the block's records complete. Returns
        the records' leaf hashes (the log's and the records root's)."""
        header = block.header
        max_skew = self.state.param("max_skew_ms")
        leaves = []
        for record in block.records:
            try:
                if check_signatures:
                    record.verify(self.network_id)
                head = self.state.feed_head(record.author)
                head = extend(head, record, reference_time=header.time, max_skew=max_skew)
                if isinstance(record.body, Equivocation):
                    self._record_evidence(record.body, record.id)
                elif isinstance(record.body, DoubleVote):
                    self._record_double_vote(record.body, record.id)
            except InvalidData as e:
                raise BlockError(
                    f"block {header.height} record {record.id.hex()}: {e}",
                    rule=_RECORD_RULES.get(e.rule, e.rule),
                    height=header.height,
                    record=record.id,
                ) from e
            self.state.set_feed_head(record.author, head)
            leaf = leaf_hash(record.raw)
            leaves.append(leaf)
            if nodes is None:
                self.log.append_hash(leaf)
            else:
                nodes += self.log.append_hash_nodes(leaf)
        self.state.set_validators("current", self.state.validators("next"))
        self.state.set_validators("next", self.state.validators("after"))
        self.apply(self.state, block)
        if self.state.validator_change is not None:
            self.state.set_validators("after", self.state.validator_change)
        return leaves

    def _record_evidence(self, evidence: Equivocation, evidence_id: bytes) -> None:
        evidence.verify(self.network_id)
        author, seq = evidence.author, evidence.seq
        if self.state.has_evidence(author, seq):
            raise BlockError(
                f"evidence for author {author.hex()[:16]} seq {seq} is already recorded",
                rule=Rule.EVIDENCE_ONCE,
            )
        self.state.mark_evidence(author, seq, evidence_id)

    def _record_double_vote(self, evidence: DoubleVote, evidence_id: bytes) -> None:
        evidence.verify(self.network_id)
        key = double_vote_key(evidence)
        if self.state.get_raw(key) is not None:
            raise BlockError(
                f"evidence of validator {evidence.validator.hex()[:16]}'s double "
                f"{evidence.vote_type} at height {evidence.height} round {evidence.round} is "
                "already recorded",
                rule=Rule.EVIDENCE_ONCE,
            )
        self.state.put(key, evidence_id)

    def _check_roots(self, header: Header, leaves: list[bytes]) -> None:
        h = header.height
        if root_of_hashes(leaves) != header.records_root:
            raise _broken(Rule.RECORDS_ROOT, h, "records_root does not match its records")
        if header.log_size != self.log.size:
            raise _broken(Rule.LOG, h, f"log_size {header.log_size}, expected {self.log.size}")
        if header.log_root != self.log.root():
            raise _broken(Rule.LOG, h, "log_root does not match the log of all records")
        if header.new_validators != self.state.validator_change:
            raise _broken(
                Rule.NEW_VALIDATORS, h, "new_validators differs from the state transition's"
            )
        if header.state_root != self.state.root():
            raise _broken(Rule.STATE_ROOT, h, "state_root does not match the state after the block")


def _broken(rule: Rule, height: int, what: str) -> BlockError:
    return BlockError(f"block {height}: {what}", rule=rule, height=height)


_RECORD_RULES = {Rule.SCHEMA: Rule.RECORD_SCHEMA}
"""A record's own rules, where the error alone names a general one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    """What appending a block changed: the state keys, in the order first touched, and the
    Merkle log nodes its records completed (what a store persists to serve proofs)."""

    changed: list[bytes]
    log_nodes: list[CompletedNode]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Prepared:
    """What a block judged at the tip changes: state keys (first touched first) with their new
    raw values, the validator change, the Merkle log after it and the nodes it completed."""

    raws: tuple[bytes, ...]
    """Its records, as judged."""
    changes: tuple[tuple[bytes, bytes | None], ...]
    validator_change: ValidatorSet | None
    log_size: int
    frontier: tuple[bytes, ...]
    nodes: tuple[CompletedNode, ...]
    verified_here: bool
    """Its records' signatures were verified while it was executed (not vouched for by the
    caller): an `append` that asks for them to be checked may use it too."""


@dataclass(slots=True)
class _Attempt:
    keep: bool = False
    changed: list[bytes] = dataclasses.field(default_factory=list)
    nodes: list[CompletedNode] = dataclasses.field(default_factory=list)


def certify(
    block: Block, network_id: bytes, signers: Iterable[Keypair], *, timestamp: int, round_: int = 0
) -> Commit:
    """A certificate for `block` signed by `signers` (one validator, or several in tests)."""
    return Commit.of(
        [
            Precommit.sign(
                key,
                network_id,
                height=block.height,
                round_=round_,
                block_id=block.id,
                timestamp=timestamp,
            )
            for key in signers
        ]
    )
