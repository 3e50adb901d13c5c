"""A deterministic simulation of a Commons validator network in one process.

Every node runs the real engine on a real `Chain` and the node's own policies (`node.policy`:
what to forward, when to re-send, when and what to fetch, what to send a peer behind; a `Fetch`
travels the virtual network as a request answered with decisions); between them is a virtual
network on a virtual clock. Events
(deliveries, timers, gossip ticks, crashes, restarts) sit in one queue ordered by (virtual time,
sequence number), and every random choice — delays, drops, duplicates, which validators are
Byzantine and how, partitions, crashes — comes from one `random.Random(seed)` owned by the run.
Nothing depends on hash order (nodes are lists, sets are only probed), so a seed gives the same
run in any process.

Faults happen before GST (global stabilization time, drawn from the seed when the scenario has
faults): messages are dropped with probability `drop` and delayed up to 1 s, a partition splits
the honest nodes in two groups until GST, and crashed validators restart from their persisted
state — some of them crash right after persisting, before sending what they signed. After GST
every message between live nodes arrives within `delay_max_ms`. Byzantine validators misbehave
throughout (`byzantine.py`). The checks are in `checker.py`.

With `records`, members submit records to honest nodes; each node keeps them in its own
mempool (`node.policy.mempool`, lost in a crash) and its outbox (its own records, kept until
final), forwards them by its forwarding policy (pushed by their origin, announced by id and asked
for by the others) and proposes what its mempool gives. Byzantine validators handle records as
honest nodes do: their attacks are on consensus.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ledger.block import Block
from ledger.crypto import Keypair, sha256
from ledger.errors import InvalidData
from ledger.genesis import make_genesis
from ledger.records import ZERO_HASH, Contribution, Identity, Record, sign_record
from ledger.state import LedgerState
from ledger.validators import ValidatorSet
from ledger.vote_evidence import DoubleVote
from node.consensus.effects import (
    Broadcast,
    Decide,
    Effect,
    Evidence,
    Persist,
    PersistedState,
    ScheduleTimeout,
)
from node.consensus.engine import Engine
from node.consensus.messages import (
    Decision,
    Proposal,
    Status,
    WireMessage,
    decode_message,
)
from node.consensus.verify import SignatureCache
from node.policy import records
from node.policy.gossip import Gossip, Kind, Send
from node.policy.mempool import TRY_AGAIN, Admitted, Mempool, Refused
from node.policy.sync import CatchUp, Fetch, SyncAction
from node.sim.app import ChainApp, Verdicts
from node.sim.byzantine import (
    HONEST,
    MIXED,
    Behaviour,
    Coalition,
    Fork,
    behaviour_named,
)
from node.sim.checker import check
from node.sim.scenario import RunResult, Scenario

GENESIS_TIME = 1_767_225_600_000  # 2026-01-01T00:00:00Z
CRASH_FALLBACK_MS = 300
"""A crash meant to hit between persist and send happens anyway this long after it was due."""
DECODED_KEPT = 50_000
HISTORY_KEPT = 500
SYNC_STALL_TICKS = 4
"""A node one height behind a peer fetches after this many gossip intervals without a decision."""
SYNC_TIMEOUT_TICKS = 5

SUBMIT_AGAIN_MS = 500
"""A member whose node is down (or cannot take the record yet) tries again this much later."""
AUTHORS = 4

_DELIVER, _FETCH, _TIMER, _TICK, _CRASH, _CRASH_NOW, _RESTART, _GST, _SUBMIT = range(9)


@dataclass(frozen=True, slots=True)
class Partition:
    start: int
    end: int
    groups: tuple[tuple[int, ...], ...]
    """The honest nodes on each side; Byzantine nodes reach both."""

    def active(self, now: int) -> bool:
        return self.start <= now < self.end

    def side(self, index: int) -> int:
        for i, group in enumerate(self.groups):
            if index in group:
                return i
        return -1  # bridged


class SimNode:
    """One simulated node: its keys, its durable state (chain, persisted consensus state) and
    its volatile state (the engine, the gossip and catch-up policies), which a crash loses."""

    def __init__(
        self,
        index: int,
        key: Keypair,
        app: ChainApp,
        *,
        honest: bool,
        gossip: Gossip[int],
        sync: CatchUp[int],
    ) -> None:
        self.index = index
        self.key = key
        self.app = app
        self.honest = honest
        self.behaviour: Behaviour = HONEST
        self.engine: Engine | None = None
        self.persisted: PersistedState | None = None
        self.up = True
        self.incarnation = 0
        self.crash_pending_down = 0
        """Down time of a crash waiting for the next persist (0: none pending)."""
        self.skew = 0
        self.gossip = gossip
        self.sync = sync
        self.decisions: dict[int, bytes] = {}
        """Encoded `Decision` of each decided height, made when first sent."""
        self.history: list[bytes] = []
        self.evidence: list[DoubleVote] = []
        self.decide_times: list[int] = []
        self.mempool = self.new_mempool()
        self.outbox: dict[bytes, Record] = {}
        """Records members submitted here, until final: kept through a crash."""

    def new_mempool(self) -> Mempool:
        chain = self.app.chain
        return Mempool(
            lambda: chain.state,
            network_id=chain.genesis.network_id,
            max_records=10_000,
            max_bytes=16 * 1024 * 1024,
        )

    def take(self, block_time: int) -> list[Record]:
        max_skew = self.app.chain.state.param("max_skew_ms")
        return self.mempool.take(
            max_records=1_000, max_bytes=4 * 1024 * 1024, block_time=block_time, max_skew=max_skew
        )


class Simulation:
    def __init__(self, scenario: Scenario) -> None:
        s = scenario
        self.scenario = s
        self.rng = random.Random(s.seed)  # noqa: S311 - a reproducible simulation, not secrecy
        keys = [
            Keypair.from_seed(sha256(f"commons-sim/{s.seed}/node/{i}".encode()))
            for i in range(s.nodes)
        ]
        genesis = make_genesis(
            name="commons-sim",
            time=GENESIS_TIME,
            members={},
            validators={keys[i].public_key: s.power(i) for i in range(s.validators)},
        )
        self.genesis = genesis
        self.network_id = genesis.network_id
        self.signatures = SignatureCache(self.network_id)
        self._verdicts: Verdicts = {}
        self._decoded: dict[bytes, WireMessage | None] = {}
        byzantine = sorted(self.rng.sample(range(s.validators), s.byzantine))
        self.byzantine = frozenset(byzantine)
        change = None
        if s.change_at:
            change = ValidatorSet.of(
                {keys[i].public_key: p for i, p in enumerate(s.change_to) if p > 0}
            )
        apply = _scripted_change(s.change_at, change)
        self.nodes = [
            SimNode(
                i,
                keys[i],
                ChainApp(genesis, keys[i], apply=apply, verdicts=self._verdicts),
                honest=i not in self.byzantine,
                gossip=self._new_gossip(i, s.nodes),
                sync=self._new_sync(i, s.nodes),
            )
            for i in range(s.nodes)
        ]
        for node in self.nodes:
            node.app.take = node.take
        self.taken: list[bytes] = []
        """Ids of the records members submitted that their node took."""
        self._records: dict[bytes, Record] = {}
        """Every record members will submit, by id (what a node decodes from the wire)."""
        self.submitted = 0
        """Records members will submit."""
        self.coalition = Coalition()
        for i in byzantine:
            node = self.nodes[i]
            if s.attack == "fork":
                node.behaviour = Fork(self.coalition)
                self.coalition.members.append(node)
            elif s.attack == "mixed":
                node.behaviour = behaviour_named(self.rng.choice(MIXED))
            else:
                node.behaviour = behaviour_named(s.attack)
        for node in self.nodes:
            node.skew = self.rng.randint(-20, 20)
        partition_wanted = s.partition or s.attack == "fork"
        faulty = s.drop > 0 or partition_wanted or s.crashes > 0
        if s.gst_ms:
            self.gst = s.gst_ms
        elif s.attack == "fork":
            self.gst = 30_000
        else:
            self.gst = self.rng.randint(1_500, 4_000) if faulty else 0
        self.partition: Partition | None = None
        honest = [n.index for n in self.nodes if n.honest]
        if partition_wanted and len(honest) >= 2 and self.gst > 0:
            order = list(honest)
            self.rng.shuffle(order)
            cut = self.rng.randint(1, len(order) - 1)
            start = 0 if s.attack == "fork" else self.rng.randint(0, self.gst // 4)
            self.partition = Partition(
                start, self.gst, (tuple(sorted(order[:cut])), tuple(sorted(order[cut:])))
            )
        self.max_time = s.max_time_ms or self.gst + 15_000 * s.heights
        self.now = 0
        self._queue: list[tuple[int, int, int, int, Any]] = []
        self._seq = 0
        self.messages = 0
        self.dropped = 0
        self.crashes = 0
        self.crashes_after_persist = 0
        """Crashes that struck after a Persist and before the messages it covered were sent."""
        self.restarts = 0
        self.fetches = 0
        """Catch-up requests sent (`node.policy.sync.Fetch`)."""
        self.heights_at_gst: int | None = None
        self.evidence: dict[tuple[bytes, bytes], DoubleVote] = {}
        self.invalid_evidence = 0
        self._decided = False
        honest_validators = [i for i in honest if i < s.validators]
        for _ in range(s.crashes if honest_validators and self.gst else 0):
            victim = self.rng.choice(honest_validators)
            at = self.rng.randint(0, max(0, self.gst - 1_500))
            down = self.rng.randint(200, 1_000)
            after_persist = self.rng.random() < 0.5
            self._push(at, _CRASH, victim, (down, after_persist))
        if self.gst:
            self._push(self.gst, _GST, -1, None)
        if s.records:
            self._schedule_records(s.records, honest)

    # the run

    def run(self) -> Simulation:
        for sim_node in self.nodes:
            sim_node.engine = self._new_engine(sim_node)
            self._push(
                self.scenario.gossip_ms
                + sim_node.index * self.scenario.gossip_ms // len(self.nodes),
                _TICK,
                sim_node.index,
                None,
            )
        for sim_node in self.nodes:
            if sim_node.engine is not None:
                self._perform(sim_node, sim_node.engine.start(self.local_now(sim_node)))
        target = self.scenario.heights
        while self._queue:
            at, _, kind, index, payload = heapq.heappop(self._queue)
            if at > self.max_time:
                break
            self.now = at
            node = self.nodes[index] if index >= 0 else None
            if kind == _DELIVER and node is not None:
                self._deliver(node, *payload)
            elif kind == _FETCH and node is not None:
                self._answer_fetch(node, *payload)
            elif kind == _TIMER and node is not None:
                incarnation, timeout = payload
                if node.up and node.engine is not None and node.incarnation == incarnation:
                    self._perform(node, node.engine.on_timeout(timeout, self.local_now(node)))
            elif kind == _TICK and node is not None:
                self._tick(node)
            elif kind == _CRASH and node is not None:
                self._crash_event(node, *payload)
            elif kind == _CRASH_NOW and node is not None:
                if node.up and node.incarnation == payload and node.crash_pending_down:
                    self._crash(node)
            elif kind == _RESTART and node is not None:
                self._restart(node)
            elif kind == _GST:
                self.heights_at_gst = max(n.app.height + 1 for n in self.nodes if n.honest)
            elif kind == _SUBMIT and node is not None:
                self._submit(node, payload)
            if (self._decided or kind == _RESTART) and self._done(target):
                break
            self._decided = False
        return self

    def _done(self, target: int) -> bool:
        """Every honest node decided `target` heights and every record submitted, and none is
        down (every crash restarts)."""
        return (
            all(n.up for n in self.nodes)
            and all(n.app.height >= target for n in self.nodes if n.honest)
            and self.submitted == len(self.taken)
            and all(
                self._final_at(n, self._records[rid])
                for n in self.nodes
                if n.honest
                for rid in self.taken
            )
        )

    def result(self) -> RunResult:
        return check(self)

    # records

    def _schedule_records(self, count: int, homes: list[int]) -> None:
        """`count` records by a few members, each member's submitted in order at one honest
        node (a validator or an observer), at times spread from the start to a little after
        GST."""
        self.submitted = count
        s = self.scenario
        authors = [
            Keypair.from_seed(sha256(f"commons-sim/{s.seed}/member/{a}".encode()))
            for a in range(min(AUTHORS, count))
        ]
        home_of = [self.rng.choice(homes) for _ in authors]
        times = sorted(self.rng.randint(0, self.gst + 2_000) for _ in range(count))
        prev = [ZERO_HASH] * len(authors)
        for n, at in enumerate(times):
            a = n % len(authors)
            record = sign_record(
                authors[a],
                self.network_id,
                seq=n // len(authors) + 1,
                prev=prev[a],
                timestamp=GENESIS_TIME + at,
                body=Contribution(title=f"record {n}", kind="code"),
            )
            prev[a] = record.id
            self._records[record.id] = record
            self._push(at, _SUBMIT, home_of[a], record)

    def _submit(self, node: SimNode, record: Record) -> None:
        """A member submits a record to its node: taken, or tried again a little later."""
        if not node.up or node.engine is None:
            self._push(self.now + SUBMIT_AGAIN_MS, _SUBMIT, node.index, record)
            return
        if record.id in node.outbox or self._final_at(node, record):
            return
        try:
            node.mempool.add(record, now=self.local_now(node), local=True)
        except Refused as e:
            if e.reason not in TRY_AGAIN:
                raise AssertionError(f"a member's record was refused: {e}") from e
            self._push(self.now + SUBMIT_AGAIN_MS, _SUBMIT, node.index, record)
            return
        node.outbox[record.id] = record
        self.taken.append(record.id)
        self.perform_sends(
            node, node.gossip.originated(record.raw, kind=Kind.RECORD, now=self.local_now(node))
        )

    def _final_at(self, node: SimNode, record: Record) -> bool:
        """In a block `node` decided (its chain is what survives a crash)."""
        return node.app.chain.state.feed_head(record.author).seq >= record.seq

    def _offer_outbox(self, node: SimNode) -> None:
        """After a restart: the node's own records not final go back into its mempool, in
        order, and out to its peers."""
        for record in sorted(node.outbox.values(), key=lambda r: (r.author, r.seq)):
            if self._final_at(node, record):
                del node.outbox[record.id]
                continue
            try:
                admitted = node.mempool.add(record, now=self.local_now(node), local=True)
            except Refused as e:
                if e.reason not in TRY_AGAIN:  # broke a lasting rule meanwhile: forgotten
                    del node.outbox[record.id]
                continue  # offered again at the next gossip interval
            if admitted is Admitted.KNOWN:
                continue  # come back from a peer meanwhile: its own again, sent already
            sends = node.gossip.originated(record.raw, kind=Kind.RECORD, now=self.local_now(node))
            self.perform_sends(node, sends)

    # network

    def local_now(self, node: SimNode) -> int:
        return GENESIS_TIME + self.now + node.skew

    def peers(self, node: SimNode) -> list[int]:
        return [i for i in range(len(self.nodes)) if i != node.index]

    def honest_groups(self) -> tuple[list[int], ...] | None:
        if self.partition is None or not self.partition.active(self.now):
            return None
        return tuple(list(g) for g in self.partition.groups)

    def broadcast(self, node: SimNode, raw: bytes) -> None:
        """`node` sends a message of its own (through its forwarding policy)."""
        self.perform_sends(
            node, node.gossip.originated(raw, kind=Kind.CONSENSUS, now=self.local_now(node))
        )

    def perform_sends(self, node: SimNode, sends: Iterable[Send[int]]) -> None:
        for send in sends:
            self.send(node, send.peer, send.data, send.kind)

    def send(self, node: SimNode, peer: int, raw: bytes, kind: Kind = Kind.CONSENSUS) -> None:
        self._transmit(node, peer, _DELIVER, (node.index, raw, kind))

    def _transmit(self, node: SimNode, peer: int, kind: int, payload: tuple[Any, ...]) -> None:
        """Put a message from `node` on the network to `peer`: partitions, drops, delays."""
        self.messages += 1
        now = self.now
        partition = self.partition
        if (
            partition is not None
            and partition.active(now)
            and -1 != partition.side(node.index) != partition.side(peer) != -1
        ):
            self.dropped += 1
            return
        s = self.scenario
        if now < self.gst and s.drop and self.rng.random() < s.drop:
            self.dropped += 1
            return
        self._push(now + self._delay(), kind, peer, payload)
        if s.duplicate and self.rng.random() < s.duplicate:
            self._push(now + self._delay(), kind, peer, payload)

    def _delay(self) -> int:
        s = self.scenario
        delay = s.delay_min_ms + int(self.rng.expovariate(1.0 / s.delay_mean_ms))
        return min(delay, s.delay_max_ms if self.now >= self.gst else 1_000)

    def _push(self, at: int, kind: int, index: int, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, kind, index, payload))

    # events

    def _deliver(self, node: SimNode, sender: int, raw: bytes, kind: Kind) -> None:
        engine = node.engine
        if not node.up or engine is None:
            return
        if kind is not Kind.CONSENSUS:
            self._deliver_for_records(node, sender, raw, kind)
            return
        message = self._decode(raw)
        if message is None:
            return
        if node.behaviour.keeps_history and len(node.history) < HISTORY_KEPT:
            node.history.append(raw)
        # a decision of h says its sender decided h; any other message, that it decided h - 1
        node.sync.peer_at(sender, message.height + isinstance(message, Decision))
        if message.height > engine.height + 1:
            return  # of no use yet: its sender sends it again if this node is needed
        if not isinstance(message, Status | Decision):
            received = node.gossip.received(
                sender, raw, kind=Kind.CONSENSUS, now=self.local_now(node)
            )
            if not received.new:
                return
            node.behaviour.relay(self, node, received.sends)
        if message.height < engine.height:
            # a vote of the height just decided is usually late, not a sign the peer is behind:
            # a peer stuck there says so with a Status; an old decision says nothing of its
            # sender's needs (as in NodeCore)
            old_news = isinstance(message, Decision)
            if not old_news and (isinstance(message, Status) or message.height < engine.height - 1):
                self._catch_up(node, sender, message.height)
            return
        if isinstance(message, Status):
            return
        self._perform(node, engine.receive(message, self.local_now(node)))

    def _deliver_for_records(self, node: SimNode, sender: int, data: bytes, kind: Kind) -> None:
        """A record, an announcement or an ask, handled as `NodeCore` handles them."""
        if kind is Kind.HAVE:
            sends = records.announced(
                node.gossip, node.mempool, sender, [data], now=self.local_now(node)
            )
        elif kind is Kind.WANT:
            sends = records.wanted(node.mempool, sender, [data])
        elif (message_id := sha256(data)) not in node.gossip.seen:
            record = self._records[message_id]
            try:
                sends = records.came(
                    node.gossip, node.mempool, sender, record, now=self.local_now(node)
                )
            except Refused:
                return
        else:
            return
        self.perform_sends(node, sends)

    def _decode(self, raw: bytes) -> WireMessage | None:
        if raw in self._decoded:
            return self._decoded[raw]
        try:
            message: WireMessage | None = decode_message(raw)
        except InvalidData:
            message = None
        if len(self._decoded) >= DECODED_KEPT:
            del self._decoded[next(iter(self._decoded))]
        self._decoded[raw] = message
        return message

    def _catch_up(self, node: SimNode, peer: int, height: int) -> None:
        """A peer is behind at `height`: send it the decided blocks it lacks, with their
        certificates, as the catch-up policy says."""
        if not node.behaviour.answers_catchup:
            return
        for h in node.sync.decisions_for(peer, height, tip=node.app.height, now=self.now):
            self.send(node, peer, self._decision(node, h))

    def _answer_fetch(self, node: SimNode, requester: int, first: int, last: int) -> None:
        """A `Fetch` reached `node`: it answers with the decisions it has in the range."""
        if node.up and node.engine is not None and node.behaviour.answers_catchup:
            for h in range(first, min(last, node.app.height) + 1):
                self.send(node, requester, self._decision(node, h))

    def _decision(self, node: SimNode, height: int) -> bytes:
        raw = node.decisions.get(height)
        if raw is None:
            block, commit = node.app.decided[height - 1]
            raw = node.decisions[height] = Decision(block=block, commit=commit).raw
        return raw

    def _sync(self, node: SimNode, actions: list[SyncAction[int]]) -> None:
        """Perform the catch-up policy's actions: a `Fetch` travels as a request on the
        simulated network. (No simulated peer serves an invalid block, so no `Report` comes.)"""
        for action in actions:
            if isinstance(action, Fetch):
                self.fetches += 1
                payload = (node.index, action.first, action.last)
                self._transmit(node, action.peer, _FETCH, payload)

    def _tick(self, node: SimNode) -> None:
        if node.up and node.engine is not None:
            if node.outbox and len(node.mempool.local_records()) < len(node.outbox):
                self._offer_outbox(node)
            self.perform_sends(node, node.gossip.ask_again(self.local_now(node)))
            node.behaviour.gossip(self, node)
            self._sync(node, node.sync.poll(tip=node.app.height, now=self.now))
        self._push(self.now + self.scenario.gossip_ms, _TICK, node.index, None)

    def gossip_tick(self, node: SimNode) -> list[Send[int]]:
        """What the forwarding policy sends at this gossip interval (when the node is stuck)."""
        engine = node.engine
        if engine is None:
            return []
        return node.gossip.tick(
            self.local_now(node),
            height=engine.height,
            status=Status(height=engine.height, round=engine.round).raw,
            own=[m.raw for m in engine.own_messages()],
            known=[m.raw for m in engine.known_messages()],
            own_records=[r.raw for r in node.mempool.local_records()],
        )

    def _new_sync(self, index: int, nodes: int) -> CatchUp[int]:
        gossip_ms = self.scenario.gossip_ms
        sync: CatchUp[int] = CatchUp(
            stall_ms=SYNC_STALL_TICKS * gossip_ms,
            timeout_ms=SYNC_TIMEOUT_TICKS * gossip_ms,
            resend_ms=gossip_ms,
        )
        for peer in range(nodes):
            if peer != index:
                sync.peer_joined(peer)
        return sync

    def _new_gossip(self, index: int, nodes: int) -> Gossip[int]:
        gossip: Gossip[int] = Gossip(stuck_after_ms=self.scenario.gossip_ms)
        for peer in range(nodes):
            if peer != index:
                gossip.peer_joined(peer)
        return gossip

    def _crash_event(self, node: SimNode, down: int, after_persist: bool) -> None:
        if not node.up or node.crash_pending_down:
            return
        if after_persist:
            node.crash_pending_down = down
            self._push(self.now + CRASH_FALLBACK_MS, _CRASH_NOW, node.index, node.incarnation)
        else:
            node.crash_pending_down = down
            self._crash(node)

    def _crash(self, node: SimNode) -> None:
        node.up = False
        node.engine = None
        node.incarnation += 1
        self.crashes += 1
        self._push(self.now + node.crash_pending_down, _RESTART, node.index, None)
        node.crash_pending_down = 0

    def _restart(self, node: SimNode) -> None:
        node.up = True
        node.gossip = self._new_gossip(node.index, len(self.nodes))
        node.sync = self._new_sync(node.index, len(self.nodes))
        node.mempool = node.new_mempool()
        self.restarts += 1
        node.engine = self._new_engine(node, node.persisted)
        self._offer_outbox(node)
        self._perform(node, node.engine.start(self.local_now(node)))

    def _new_engine(self, node: SimNode, restored: PersistedState | None = None) -> Engine:
        return Engine(
            node.app,
            network_id=self.network_id,
            key=node.key,
            timeouts=self.scenario.timeouts,
            restored=restored,
            signatures=self.signatures,
        )

    def _perform(self, node: SimNode, effects: list[Effect]) -> None:
        """Carry out effects in order; a crash due "between persist and send" strikes right
        after the Persist, so the messages after it never leave."""
        for effect in effects:
            if isinstance(effect, Persist):
                node.persisted = effect.state
                if node.crash_pending_down:
                    self.crashes_after_persist += int(
                        any(isinstance(e, Broadcast) for e in effects)
                    )
                    self._crash(node)
                    return
            elif isinstance(effect, Broadcast):
                node.behaviour.send(self, node, effect.message)
            elif isinstance(effect, ScheduleTimeout):
                self._push(
                    self.now + effect.delay_ms,
                    _TIMER,
                    node.index,
                    (node.incarnation, effect.timeout),
                )
            elif isinstance(effect, Decide):
                node.decide_times.append(self.now)
                self._decided = True
                node.mempool.on_finalized(effect.block)
                for record in effect.block.records:
                    node.outbox.pop(record.id, None)
            elif isinstance(effect, Evidence) and node.honest:
                self._evidence(effect.double_vote)

    def _evidence(self, evidence: DoubleVote) -> None:
        try:
            evidence.verify(self.network_id)
        except InvalidData:
            self.invalid_evidence += 1
            return
        self.evidence.setdefault((evidence.first, evidence.second), evidence)

    # what Byzantine behaviours need

    def alternative_block(self, node: SimNode, proposal: Proposal) -> Block:
        """A second valid block for the proposal's height: the same, plus a new member's
        identity record (a fresh author each time, so its feed rule holds)."""
        h, r = proposal.height, proposal.round
        spam = Keypair.from_seed(
            sha256(f"commons-sim/{self.scenario.seed}/spam/{node.index}/{h}/{r}".encode())
        )
        record = sign_record(
            spam,
            self.network_id,
            seq=1,
            prev=ZERO_HASH,
            timestamp=proposal.block.header.time,
            body=Identity(name="spam"),
        )
        last_commit = proposal.block.header.last_commit
        return node.app.propose_block(h, r, last_commit, records=(record,))


def _scripted_change(at: int, change: ValidatorSet | None) -> Any:
    """A state transition that changes the validator set in block `at` (vals(at + 2))."""

    def apply(state: LedgerState, block: Any) -> LedgerState:
        if change is not None and block.header.height == at:
            state.validator_change = change
        return state

    return apply


def run(scenario: Scenario) -> RunResult:
    """Simulate one scenario and check it."""
    return Simulation(scenario).run().result()
