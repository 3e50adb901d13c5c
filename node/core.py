"""One node's logic, synchronous: the engine, the mempool, the forwarding and catch-up policies
and the store, driven by events from the shell, answering with the actions the shell performs.

The shell (node/shell/) calls these methods from one thread only, so nothing here locks; it
performs the returned actions in order (sends, timers, fetches, disconnects). Consensus effects
are carried out here: `Persist` is written to the store before this method returns, so before
any message it covers can be sent; `Decide` has already been committed by the engine's app.
Time is the shell's clock, an argument in ms.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ledger.block import MAX_BLOCK_BYTES, Block, Commit, RawBlock
from ledger.codec import MAX_CONTAINER_LEN
from ledger.crypto import Keypair, Tag, sha256
from ledger.errors import InvalidData
from ledger.records import Record, decode_record, sign_record
from ledger.store import Store
from ledger.vote_evidence import DoubleVote, Vote
from node.app import ScheduleReplay, StoreApp, Verified
from node.consensus.effects import (
    Broadcast,
    Decide,
    Effect,
    Evidence,
    Persist,
    PersistedState,
    ScheduleTimeout,
    Timeout,
)
from node.consensus.engine import NEW_HEIGHT, Engine, Timeouts
from node.consensus.messages import Decision, Proposal, Status, decode_message
from node.consensus.proposer import ProposerSchedule
from node.errors import NotReadyError
from node.outbox import Outbox
from node.parallel import record_checker
from node.policy import records
from node.policy.gossip import Gossip, Kind
from node.policy.gossip import Send as Forward
from node.policy.mempool import Mempool, Refused
from node.policy.pacing import Pacer
from node.policy.signing import SigningGuard
from node.policy.sync import CatchUp, Report, SyncAction
from node.policy.sync import Fetch as FetchRange
from node.wire import FRAME_FILL_BYTES, Push, decode_push, encode_push

log = logging.getLogger("commons.node")

Peer = bytes
"""A peer is named by its node key."""

EXTEND_FROM = 8
"""Fetched runs of at least this many blocks are stored with `Store.extend`."""
STALL_MS = 1_500
"""One height behind a peer for this long, this node fetches the block instead of waiting."""
FETCH_TIMEOUT_MS = 30_000
RESEND_MS = 1_000
GOSSIP_MS = 1_000
"""How often a node looks whether it is stuck (the forwarding policy's gossip interval)."""
RESEND_RECORDS = 256
"""Own records not final yet sent again, oldest first: whole at every gossip interval while stuck,
announced every few while the height moves (the forwarding policy's `relay_again_ticks`)."""
STUCK_AFTER_MS = 3_000
"""A height that has not moved for this long gets its messages and own records sent again."""
MAX_BLOCK_RECORD_BYTES = MAX_BLOCK_BYTES - 4 * 1024 * 1024
"""Record bytes a proposer puts in one block: room is left for the header, its certificate and
each record's framing."""
CONSENSUS_STATE = "consensus"
"""The node value (`Store.node_value`) holding the validator's last persisted consensus state."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    peer: Peer
    frame: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    timeout: Timeout
    delay_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetch:
    peer: Peer
    first: int
    last: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnect:
    peer: Peer
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Finalized:
    height: int
    block_id: bytes
    records: tuple[bytes, ...]
    time: int


Action = Send | Schedule | Fetch | Disconnect | Finalized
Out = Action | Forward[Peer]
"""What the methods below collect: forwards are packed into frames (`_framed`) on the way out."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Submitted:
    """What became of a record given to this node."""

    record_id: bytes
    status: str
    """`accepted` (new, in the mempool), `known` (already pending or final), or `final`."""
    height: int | None = None


Submission = Submitted | InvalidData | Refused
"""What became of one record of a batch: taken, or why not (a rule it breaks, or the mempool's
refusal)."""


class NodeCore:
    def __init__(
        self,
        store: Store,
        validator: Keypair | None,
        *,
        timeouts: Timeouts,
        now: int,
        mempool_records: int = 50_000,
        mempool_bytes: int = 64 * 1024 * 1024,
        reporter: Keypair | None = None,
    ) -> None:
        """A node starts as an observer: it signs and takes records only once it has caught up
        with its peers (`SigningGuard`), unless it is the network's only validator. `reporter`
        (the node key) signs the evidence of double votes this node sees."""
        self.store = store
        self.validator = validator
        self.reporter = reporter
        self.timeouts = timeouts
        self.network_id = store.genesis.network_id
        params = store.genesis.params
        self.max_skew = params["max_skew_ms"].value
        self.max_block_records = params["max_block_records"].value
        self.verified = Verified()
        self.mempool = Mempool(
            lambda: store.chain.state,
            network_id=self.network_id,
            max_records=mempool_records,
            max_bytes=mempool_bytes,
        )
        self.app = StoreApp(store, validator, self._take, self.verified)
        self.gossip: Gossip[Peer] = Gossip(stuck_after_ms=STUCK_AFTER_MS)
        self.sync: CatchUp[Peer] = CatchUp(
            stall_ms=STALL_MS, timeout_ms=FETCH_TIMEOUT_MS, resend_ms=RESEND_MS
        )
        self.pacer = Pacer(params["max_block_interval_ms"].value)
        self.guard = SigningGuard()
        self.schedules = ScheduleReplay(store)
        raw = store.node_value(CONSENSUS_STATE)
        self._persisted = None if raw is None else PersistedState.decode(raw)
        self._signed: dict[bytes, int] = {}
        """Consensus messages this node signed, by raw bytes, with their height: any other
        message signed by its key comes from another node running the same key."""
        if self._persisted is not None:
            self._signed.update((m.raw, m.height) for m in self._persisted.signed)
        self._followed: set[int] = set()
        """Heights this node got valid votes or proposals of while deciding them."""
        self._signed_elsewhere: set[int] = set()
        """Heights where a message signed by this node's key but not by it arrived."""
        self.joined = self._sole_validator()
        self._started_elsewhere = 0
        self._gossiped = 0
        self._asked_again = 0
        self._heard: set[Peer] = set()
        """Peers that told this node their height: it joins consensus only after one has."""
        self.outbox = Outbox(store, self.mempool, self._verify, now=now)
        self.engine = self._new_engine(signing=self.joined)

    # lifecycle

    def start(self, now: int) -> list[Action]:
        return _framed(self._perform(self.engine.start(now), now))

    def _sole_validator(self) -> bool:
        vals = self.store.chain.state.validators("next")
        key = self.validator
        return key is not None and vals.power(key.public_key) == vals.total

    def _covered(self) -> bool:
        """This node's persisted consensus state reaches the store's next height: it resumes
        from there, so it cannot sign anything it did not sign before."""
        restored = self._persisted
        return restored is not None and restored.height >= self.app.next_height() - 1

    def _new_engine(self, *, signing: bool) -> Engine:
        """An engine at the store's next height: a validator resumes from its persisted state
        (never signing twice); an observer (not signing, or not joined yet) starts fresh."""
        height = self.app.next_height()
        if signing and self._covered():
            return self._engine(self.validator, restored=self._persisted)
        # a persisted state further back covers heights this node has passed and will not sign
        schedule = self.schedules.at_next_height() if height > 1 else None
        return self._engine(self.validator if signing else None, schedule=schedule)

    def _engine(
        self,
        key: Keypair | None,
        *,
        restored: PersistedState | None = None,
        schedule: ProposerSchedule | None = None,
    ) -> Engine:
        return Engine(
            self.app,
            network_id=self.network_id,
            key=key,
            timeouts=self.timeouts,
            restored=restored,
            schedule=schedule,
        )

    def join(self, now: int) -> list[Action]:
        """Caught up with the peers: from now on this validator signs."""
        return _framed(self._join(now))

    def _join(self, now: int) -> list[Out]:
        if self.joined:
            return []
        self.joined = True
        log.info("joined consensus at height %d", self.app.next_height())
        observer, self.engine = self.engine, self._new_engine(signing=True)
        out = self._perform(self.engine.start(now), now)
        # seen once already, so gossip will not bring them again
        for message in [*observer.known_messages(), *observer.future_messages()]:
            out += self._perform(self.engine.receive(message, now), now)
        return out

    def _step_down(self, message: Vote | Proposal, now: int) -> list[Out]:
        """A message signed by this node's key that it did not sign: another node runs the
        key. Signing on could make two different votes; watch again instead."""
        self.guard.signed_elsewhere()
        if message.height not in self._signed_elsewhere:
            self._signed_elsewhere.add(message.height)
            log.error(
                "a %s of height %d round %d is signed by this node's validator key, but not by "
                "this node: another node runs this key. Not signing until %d heights pass "
                "without one.",
                type(message).__name__.lower(),
                message.height,
                message.round,
                self.guard.watch_heights,
            )
        if not self.joined:
            return []
        self.joined = False
        self.engine = self._new_engine(signing=False)
        return self._perform(self.engine.start(now), now)

    # events from peers

    def peer_joined(self, peer: Peer, now: int) -> list[Action]:
        self.gossip.peer_joined(peer)
        self.sync.peer_joined(peer)
        status = Status(height=self.engine.height, round=self.engine.round)
        return _framed([Forward(peer=peer, kind=Kind.CONSENSUS, data=status.raw)])

    def peer_left(self, peer: Peer) -> None:
        self._heard.discard(peer)
        self.gossip.peer_left(peer)
        self.sync.peer_left(peer)

    def on_frames(self, frames: Sequence[tuple[Peer, bytes]], now: int) -> list[Action]:
        """Frames from peers, in the order they arrived; what they make this node send goes
        out packed, a frame per peer and kind where it can."""
        out: list[Out] = []
        dropped: set[Peer] = set()
        for peer, frame in frames:
            if peer not in dropped:  # what a peer sent after bytes it is dropped for is not read
                done = self._on_frame(peer, frame, now)
                dropped.update(a.peer for a in done if isinstance(a, Disconnect))
                out += done
        return _framed(out + self._pace(now))

    def on_frame(self, peer: Peer, frame: bytes, now: int) -> list[Action]:
        return self.on_frames([(peer, frame)], now)

    def _on_frame(self, peer: Peer, frame: bytes, now: int) -> list[Out]:
        """A frame from an authenticated peer. Bytes it is to blame for disconnect it (what
        came before them in the frame is kept)."""
        out: list[Out] = []
        try:
            kind, payloads = decode_push(frame)
            if kind is Push.HAVE:
                out += records.announced(self.gossip, self.mempool, peer, payloads, now=now)
            elif kind is Push.WANT:
                # asking again is answered again: the asker reads every byte it makes this
                # node send, and what waits for a peer is bounded by the shell (as are pulls)
                out += records.wanted(self.mempool, peer, payloads)
            elif kind is Push.RECORDS:
                for data in payloads:
                    out += self._on_record(peer, data, now)
            else:
                for data in payloads:
                    out += self._on_consensus(peer, data, now)
        except InvalidData as e:
            out.append(Disconnect(peer=peer, reason=str(e)))
        return out

    def _on_record(self, peer: Peer, data: bytes, now: int) -> list[Out]:
        """Relayed only once it passed every check against the current state: a bad signature
        is the sender's fault (InvalidData); a record the mempool cannot take now is not. (The
        pacer hears of it once the whole batch is in: a block then takes them all.)"""
        message_id = sha256(data)
        if message_id in self.gossip.seen:
            return []
        record = decode_record(data)
        try:  # a final record is refused too (its seq is final), unverified: no store lookup
            return list(
                records.came(self.gossip, self.mempool, peer, record, now=now, verify=self._verify)
            )
        except Refused as e:
            log.debug("record %s not kept: %s", record.id.hex()[:16], e)
            return []

    def _on_consensus(self, peer: Peer, data: bytes, now: int) -> list[Out]:
        """Votes and proposals are relayed, count for pacing and reach the engine only once
        their signature verifies against the validators of their height; a bad one, or a
        decision whose certificate does not verify, is the sender's fault (every node checks
        before it relays)."""
        message_id = sha256(data)
        if message_id in self.gossip.seen:
            return []  # a copy: decoding a proposal again would cost a parse of its block
        message = decode_message(data, self.mempool.get)
        engine = self.engine
        height = message.height
        # a decision of h says its sender decided h; any other message of h, that it decided h - 1
        self.sync.peer_at(peer, height + isinstance(message, Decision))
        self._heard.add(peer)
        if isinstance(message, Decision) and height < engine.height:
            # old news, served by a peer that thought this node behind: it says nothing of what
            # the peer lacks (answering it with decisions would start a ping-pong of blocks)
            return []
        if isinstance(message, Status) or height < engine.height - 1:
            return self._serve_catch_up(peer, height, now)
        if height > engine.height + 1:
            # too far ahead to use: its sender re-sends it while stuck, and catch-up fetches
            return []
        if isinstance(message, Decision):
            return self._on_decision(peer, message, now)
        signer = self._check_signer(message)
        if signer is None:
            return []  # not by a validator of its height: nobody counts it
        out: list[Out] = []
        own = self.validator is not None and signer == self.validator.public_key
        if own and message.raw not in self._signed:
            out += self._step_down(message, now)
            engine = self.engine
        elif height == engine.height:
            self._followed.add(height)
        received = self.gossip.received(
            peer, data, kind=Kind.CONSENSUS, now=now, message_id=message_id
        )
        out += received.sends
        if height < engine.height:
            return out  # relayed for peers still deciding it
        self._started_elsewhere = max(self._started_elsewhere, height)
        out += self._pace(now)
        return out + self._perform(engine.receive(message, now), now)

    def _check_signer(self, message: Vote | Proposal) -> bytes | None:
        """The validator that signed `message`, once its signature verifies (InvalidData if it
        does not); None if the key has no power at the message's height."""
        engine = self.engine
        if message.height == engine.height:
            vals = engine.vals
        elif message.height > engine.height:
            vals = self.app.validators_after()
        else:
            vals = self.store.chain.state.validators("current")
        if isinstance(message, Proposal):
            key, tag = message.proposer, Tag.PROPOSAL
        else:
            key, tag = message.validator, message.tag
        if vals.power(key) == 0:
            return None
        engine.signatures.verify(key, tag, message.signed_body(), message.signature)
        return key

    def _on_decision(self, peer: Peer, decision: Decision, now: int) -> list[Out]:
        engine = self.engine
        rejected = engine.rejected
        out = self._perform(engine.receive(decision, now), now)
        if engine.rejected > rejected:
            reason = f"decision of height {decision.height} does not verify"
            out.append(Disconnect(peer=peer, reason=reason))
        return out

    def _serve_catch_up(self, peer: Peer, height: int, now: int) -> list[Out]:
        """A peer is behind at `height`: send it the decided blocks it lacks (a few at a time;
        far behind, it fetches ranges over HTTP)."""
        out: list[Out] = []
        for h in self.sync.decisions_for(peer, height, tip=self.store.tip.height, now=now):
            decision = self.decision(h)
            if decision is not None:
                out.append(Forward(peer=peer, kind=Kind.CONSENSUS, data=decision.raw))
        return out

    def decision(self, height: int) -> Decision | None:
        block, commit = self.store.block(height), self.store.commit(height)
        if block is None or commit is None:
            return None
        return Decision(block=block, commit=commit)

    # catch-up over HTTP

    def blocks_fetched(
        self, peer: Peer, certified: Sequence[tuple[RawBlock, Commit]], now: int
    ) -> list[Action]:
        """Blocks a peer answered a `Fetch` with, each checked with its certificate before it is
        stored. A few are decided through the engine, as gossiped decisions are; a long run
        (`EXTEND_FROM` blocks or more) goes through `Store.extend`, its records checked on every
        core when there are many, and the engine starts again at the new height."""
        return _framed(self._blocks_fetched(peer, certified, now))

    def _blocks_fetched(
        self, peer: Peer, certified: Sequence[tuple[RawBlock, Commit]], now: int
    ) -> list[Out]:
        usable = [(raw, c) for raw, c in certified if raw.header.height > self.store.tip.height]
        if len(usable) >= EXTEND_FROM:
            return self._extend(peer, usable, now)
        out: list[Out] = []
        for raw, commit in usable:
            height = self.engine.height
            if raw.header.height != height:
                break
            try:
                decision = Decision(block=raw.parse(self.mempool.get), commit=commit)
            except InvalidData as e:
                return out + self._sync(self._fetch_failed(peer, now, f"block {height}: {e}"))
            out += self._perform(self.engine.receive(decision, now), now)
            if self.engine.height == height:
                reason = f"block {height} or its certificate does not verify"
                return out + self._sync(self._fetch_failed(peer, now, reason))
        return out + self._sync(self.sync.fetched(peer, tip=self.store.tip.height, now=now))

    def _extend(self, peer: Peer, usable: Sequence[tuple[RawBlock, Commit]], now: int) -> list[Out]:
        before = self.store.tip.height
        records = sum(len(raw.raws) for raw, _ in usable)
        failure: str | None = None
        try:
            with record_checker(records) as checker:
                self.store.extend(usable, checker)
        except InvalidData as e:
            failure = f"block {self.store.tip.height + 1}: {e}"
        out: list[Out] = []
        for raw, _ in usable[: self.store.tip.height - before]:
            out.append(self._decided(raw.parse(self.mempool.get)))
        if self.store.tip.height > before:
            log.info("sync: stored blocks %d-%d at once", before + 1, self.store.tip.height)
            # the engine was at `before + 1`: it starts again where the store now is
            self.engine = self._new_engine(signing=self.joined)
            out += self._perform(self.engine.start(now), now)
        if failure is not None:
            return out + self._sync(self._fetch_failed(peer, now, failure))
        return out + self._sync(self.sync.fetched(peer, tip=self.store.tip.height, now=now))

    def fetch_failed(self, peer: Peer, now: int) -> list[Action]:
        """A fetch from `peer` got no answer (transport, timeout)."""
        return self._sync(self._fetch_failed(peer, now, None))

    def fetch_invalid(self, peer: Peer, reason: str, now: int) -> list[Action]:
        """A fetch from `peer` got an answer that does not decode."""
        return self._sync(self._fetch_failed(peer, now, f"blocks answer: {reason}"))

    def _fetch_failed(self, peer: Peer, now: int, invalid: str | None) -> list[SyncAction[Peer]]:
        return self.sync.fetch_failed(peer, tip=self.store.tip.height, now=now, invalid=invalid)

    def _sync(self, actions: Sequence[SyncAction[Peer]]) -> list[Action]:
        out: list[Action] = []
        for action in actions:
            if isinstance(action, Report):
                out.append(Disconnect(peer=action.peer, reason=action.reason))
            elif isinstance(action, FetchRange):
                out.append(Fetch(peer=action.peer, first=action.first, last=action.last))
        return out

    # timers

    def on_timeout(self, timeout: Timeout, now: int) -> list[Action]:
        return _framed(self._perform(self.engine.on_timeout(timeout, now), now))

    def tick(self, now: int) -> list[Action]:
        """Called every gossip interval: pacing, records asked for again, re-sends when stuck,
        catch-up, joining."""
        out = self._send_own(self.outbox.retry(now), now) + self._pace(now)
        if now - self._asked_again >= GOSSIP_MS:  # also while the pacer holds the height
            self._asked_again = now
            out += self.gossip.ask_again(now)
        if self.pacer.held is None and now - self._gossiped >= GOSSIP_MS:
            # while the pacer holds the height, it has no messages yet and is not stuck
            self._gossiped = now
            engine = self.engine
            own = self.mempool.local_records()[:RESEND_RECORDS]
            sends = self.gossip.tick(
                now,
                height=engine.height,
                status=Status(height=engine.height, round=engine.round).raw,
                own=[m.raw for m in engine.own_messages()],
                known=[m.raw for m in engine.known_messages()],
                own_records=[r.raw for r in own],
            )
            out += sends
        out += self._sync(self.sync.poll(tip=self.store.tip.height, now=now))
        if not self.joined and self._may_sign():
            out += self._join(now)
        return _framed(out)

    def waiting_for(self) -> str | None:
        """Why this node has not joined consensus (and takes no records) yet, or None."""
        if self.joined:
            return None
        tip, best = self.store.tip.height, self.sync.progress().best
        if not self._heard:
            return "waiting to hear from a peer"
        if best > tip:
            return f"catching up: height {tip} of {best}"
        guard = self.guard
        if guard.alarmed:
            return (
                "another node signs with this node's validator key: watching "
                f"({guard.watched} of {guard.watch_heights} heights without it)"
            )
        return f"following {guard.watched} of {guard.watch_heights} heights before signing"

    def _may_sign(self) -> bool:
        tip = self.store.tip.height
        best = self.sync.progress().best
        if self.validator is None or self.engine.vals.power(self.validator.public_key) == 0:
            # not a validator here: nothing to guard, only a stale head to avoid
            return bool(self._heard) and best <= tip
        return self.guard.may_sign(
            caught_up=bool(self._heard) and best <= tip,
            covered=self._covered(),
            network_started=max(tip, best) > 0,
        )

    def _pace(self, now: int) -> list[Out]:
        timeout = self.pacer.release(
            now=now,
            records_waiting=self.mempool.ready > 0,
            height_started_elsewhere=self._started_elsewhere,
        )
        if timeout is None:
            return []
        return self._perform(self.engine.on_timeout(timeout, now), now)

    # the local API

    def submit(self, records: Sequence[bytes], now: int) -> tuple[list[Submission], list[Action]]:
        """Records signed by members, given through the local API: what became of each, in
        order, each judged on its own (InvalidData for one that breaks a rule, `Refused` for one
        the mempool cannot take now). The accepted ones reach the outbox in one write and the
        peers in one frame each. Raises `NotReadyError` while the node takes no records."""
        waiting = self.waiting_for()
        if waiting is not None:
            raise NotReadyError(f"the node takes records once it is ready; now it is {waiting}")
        results: list[Submission] = []
        taken: list[Record] = []
        for data in records:
            try:
                record = decode_record(data)
                if record.id in self.mempool or record.id in self.outbox.waiting:
                    results.append(Submitted(record_id=record.id, status="known"))
                    continue
                self.outbox.refuse_beside_waiting(record)
                head = self.store.chain.state.feed_head(record.author)
                stored = self.store.record(record.id) if record.seq <= head.seq else None
                if stored is not None:
                    results.append(
                        Submitted(record_id=record.id, status="final", height=stored.height)
                    )
                    continue
                self._verify(record)  # first: a member is told of a bad signature before all
                self.mempool.add(record, now=now, local=True)
            except (InvalidData, Refused) as e:
                results.append(e)
                continue
            taken.append(record)
            results.append(Submitted(record_id=record.id, status="accepted"))
        return results, _framed(self._originated(taken, now) + self._pace(now))

    def _verify(self, record: Record) -> None:
        """Check a record's signature unless this node did before (SignatureError if bad)."""
        if record.id not in self.verified:
            record.verify(self.network_id)
            self.verified.add(record.id)

    def _originated(self, records: Sequence[Record], now: int) -> list[Out]:
        """Records made or taken by this node, in its mempool now: into the outbox until final,
        and out to every peer."""
        self.outbox.keep(records)
        return self._send_own(records, now)

    def _send_own(self, records: Iterable[Record], now: int) -> list[Out]:
        """Records of this node's, in its mempool now: whole to every peer."""
        out: list[Out] = []
        for record in records:
            out += self.gossip.originated(record.raw, kind=Kind.RECORD, now=now)
        return out

    def _report(self, evidence: DoubleVote, now: int) -> list[Out]:
        """A validator signed two votes naming different blocks at one (height, round, type):
        the proof goes on the chain as a `double-vote` record by this node's key."""
        vote = evidence.votes[0]
        log.warning(
            "validator %s signed two votes at height %d round %d: reporting it",
            vote.validator.hex()[:16],
            vote.height,
            vote.round,
        )
        if self.reporter is None:
            return []
        author = self.reporter.public_key
        head = self.store.chain.state.feed_head(author)
        pending = self.mempool.pending_of(author)
        seq, prev, at = head.seq, head.id, head.timestamp
        if pending:
            seq, prev, at = pending[-1].seq, pending[-1].id, pending[-1].timestamp
        record = sign_record(
            self.reporter, self.network_id, seq=seq + 1, prev=prev, timestamp=max(now, at),
            body=evidence,
        )  # fmt: skip
        self.verified.add(record.id)
        try:
            self.mempool.add(record, now=now, local=True)
        except Refused as e:  # proved already, by this node's peers or on the chain
            log.info("double-vote evidence not sent: %s", e)
            return []
        return self._originated([record], now) + self._pace(now)

    # effects

    def _perform(self, effects: list[Effect], now: int) -> list[Out]:
        out: list[Out] = []
        for effect in effects:
            if isinstance(effect, Persist):
                if self.engine.key is not None:  # an observer's state must not replace it
                    self.store.set_node_values({CONSENSUS_STATE: effect.state.encode()})
                    self._persisted = effect.state
            elif isinstance(effect, Broadcast):
                message = effect.message
                self._signed[message.raw] = message.height
                out += self.gossip.originated(message.raw, kind=Kind.CONSENSUS, now=now)
            elif isinstance(effect, ScheduleTimeout):
                out += self._schedule(effect, now)
            elif isinstance(effect, Decide):
                out.append(self._decided(effect.block))
            elif isinstance(effect, Evidence):
                out += self._report(effect.double_vote, now)
        return out

    def _schedule(self, effect: ScheduleTimeout, now: int) -> list[Out]:
        timeout = effect.timeout
        if timeout.round != NEW_HEIGHT:
            return [Schedule(timeout=timeout, delay_ms=effect.delay_ms)]
        self.pacer.hold(timeout, now=now, delay_ms=effect.delay_ms, decided_at=now)
        return self._pace(now)

    def _decided(self, block: Block) -> Finalized:
        caught_up = self.sync.progress().best <= block.height
        h = block.height
        # a height counts only if this node followed it, and this key signed nothing there
        followed = h in self._followed and h not in self._signed_elsewhere
        self.guard.decided(caught_up=caught_up and bool(self._heard) and followed)
        self._followed = {x for x in self._followed if x > h}
        self._signed_elsewhere = {x for x in self._signed_elsewhere if x >= h}
        for raw in [raw for raw, height in self._signed.items() if height < h]:
            del self._signed[raw]  # its own messages of h may still come back relayed
        dropped = self.mempool.on_finalized(block)
        for record in dropped:
            if record.id in self.outbox:
                log.warning("own record %s dropped: it no longer extends its feed", record.id.hex())
        self.outbox.forget([*(r.id for r in block.records), *(r.id for r in dropped)])
        log.info(
            "block %d finalized: %d records, id %s",
            block.height,
            len(block.records),
            block.id.hex()[:16],
        )
        return Finalized(
            height=block.height,
            block_id=block.id,
            records=tuple(r.id for r in block.records),
            time=block.header.time,
        )

    # what the proposer takes

    def _take(self, block_time: int) -> list[Record]:
        return self.mempool.take(
            max_records=self.max_block_records,
            max_bytes=MAX_BLOCK_RECORD_BYTES,
            block_time=block_time,
            max_skew=self.max_skew,
        )


def _framed(out: Sequence[Out]) -> list[Action]:
    """`out` with its forwards packed into frames: per peer, payloads of one kind in a row share
    a frame up to `FRAME_FILL_BYTES` (in their order, so a proposal never overtakes the records
    it names). The frames come first, then the other actions in their order."""
    frames: dict[Peer, list[_Packing]] = {}
    others: list[Action] = []
    for item in out:
        if not isinstance(item, Forward):
            others.append(item)
            continue
        packed = frames.setdefault(item.peer, [])
        if not (packed and packed[-1].takes(item)):
            packed.append(_Packing(_PUSH[item.kind]))
        packed[-1].add(item.data)
    return [
        Send(peer=peer, frame=encode_push(frame.kind, frame.payloads))
        for peer, packed in frames.items()
        for frame in packed
    ] + others


@dataclass(slots=True)
class _Packing:
    """A frame being filled."""

    kind: Push
    payloads: list[bytes] = field(default_factory=list)
    size: int = 0

    def takes(self, item: Forward[Peer]) -> bool:
        return (
            self.kind is _PUSH[item.kind]
            and self.size + len(item.data) <= FRAME_FILL_BYTES
            and len(self.payloads) < MAX_CONTAINER_LEN
        )

    def add(self, payload: bytes) -> None:
        self.payloads.append(payload)
        self.size += len(payload)


_PUSH = {
    Kind.RECORD: Push.RECORDS,
    Kind.CONSENSUS: Push.CONSENSUS,
    Kind.HAVE: Push.HAVE,
    Kind.WANT: Push.WANT,
}
