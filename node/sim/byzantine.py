"""How the validators under test misbehave, and how honest ones gossip.

Every simulated node runs the real engine; its `Behaviour` decides what actually leaves it. The
honest behaviour sends what the engine says and what the node's forwarding policy says
(`node.policy.gossip.Gossip`: new consensus messages forwarded to every other peer; when stuck on
one height for a gossip interval, its status and what it signed there re-sent, and each message of
that height relayed to the peers not known to have it), as a node does. (Records, when a
scenario has them, go by the same policy for every node: the attacks are on consensus.) Byzantine
behaviours forward nothing others send, unless said otherwise:

- `silent`: sends nothing, answers no one.
- `bad-signature`: sends everything it signs with a corrupted signature, again when stuck.
- `double-vote`: each vote goes to half of the peers, a conflicting one (nil for a block, a block
  for nil) to the other half, and both to one peer, who turns them into evidence.
- `equivocate`: as proposer, one block to half of the peers and another (with an extra record)
  to the rest, and votes for each to each half; otherwise a double voter.
- `replay`: honest (it forwards), but keeps re-sending old messages of any validator to random
  peers.
- `fork`: a coalition; while the honest nodes are split by a partition, a coalition proposer's
  round becomes two: one block, its proposal and every member's prevote and precommit for it go
  to one honest group, a second block and votes for that to the other. With more than 1/3 of the
  power this makes the two groups decide differently — what the checker must catch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ledger.crypto import sha256
from ledger.vote_evidence import NIL, PRECOMMIT, PREVOTE, Vote
from node.consensus.messages import Message, Proposal
from node.policy.gossip import Kind, Send

if TYPE_CHECKING:
    from node.sim.simulator import SimNode, Simulation


class Behaviour:
    """Honest: what the engine says, and what the forwarding policy says (node/policy/gossip)."""

    name = "honest"
    answers_catchup = True
    keeps_history = False
    relays = True
    """Forwards what others send, as the policy says (a Byzantine validator is no one's path)."""

    def send(self, sim: Simulation, node: SimNode, message: Message) -> None:
        sim.broadcast(node, message.raw)

    def relay(self, sim: Simulation, node: SimNode, sends: Sequence[Send[int]]) -> None:
        if self.relays:
            sim.perform_sends(node, sends)

    def gossip(self, sim: Simulation, node: SimNode) -> bool:
        """The gossip interval; True if the node was stuck (and re-sent)."""
        sends = sim.gossip_tick(node)
        sim.perform_sends(node, sends)
        return any(s.kind is Kind.CONSENSUS for s in sends)  # (own records go every few ticks)


HONEST = Behaviour()


class Silent(Behaviour):
    name = "silent"
    answers_catchup = False
    relays = False

    def send(self, sim: Simulation, node: SimNode, message: Message) -> None:
        return

    def gossip(self, sim: Simulation, node: SimNode) -> bool:
        return False


class BadSignature(Behaviour):
    name = "bad-signature"
    answers_catchup = False
    relays = False

    def send(self, sim: Simulation, node: SimNode, message: Message) -> None:
        if isinstance(message, Vote | Proposal):
            signature = bytes((message.signature[0] ^ 0x01,)) + message.signature[1:]
            sim.broadcast(node, dataclasses.replace(message, signature=signature).raw)

    def gossip(self, sim: Simulation, node: SimNode) -> bool:
        """Stuck, it re-sends what it signed, corrupted; it relays nothing."""
        if node.engine is None or not any(s.kind is Kind.CONSENSUS for s in sim.gossip_tick(node)):
            return False
        for message in node.engine.own_messages():
            self.send(sim, node, message)
        return True


class DoubleVoter(Behaviour):
    name = "double-vote"
    relays = False

    def send(self, sim: Simulation, node: SimNode, message: Message) -> None:
        if not isinstance(message, Vote):
            sim.broadcast(node, message.raw)
            return
        other = self._other_block(sim, node, message)
        twin = Vote.sign(
            node.key,
            sim.network_id,
            type_=message.type,
            height=message.height,
            round_=message.round,
            block_id=other,
            timestamp=message.timestamp,
        )
        self._split(sim, node, message.raw, twin.raw)

    def _other_block(self, sim: Simulation, node: SimNode, vote: Vote) -> bytes:
        if not vote.is_nil:
            return NIL
        engine = node.engine
        if engine is not None:
            for message in engine.known_messages():
                if isinstance(message, Proposal) and message.round == vote.round:
                    return message.block_id
        return sha256(vote.raw)

    @staticmethod
    def _split(sim: Simulation, node: SimNode, one: bytes, other: bytes) -> None:
        peers = sim.peers(node)
        sim.rng.shuffle(peers)
        half = len(peers) // 2
        for peer in peers[:half]:
            sim.send(node, peer, one)
        for peer in peers[half:]:
            sim.send(node, peer, other)
        if half:
            sim.send(node, peers[0], other)  # someone sees both: evidence


class Equivocate(DoubleVoter):
    name = "equivocate"

    def __init__(self) -> None:
        self.twins: dict[tuple[int, int, bytes], bytes] = {}

    def send(self, sim: Simulation, node: SimNode, message: Message) -> None:
        if isinstance(message, Proposal):
            block = sim.alternative_block(node, message)
            twin = Proposal.sign(
                node.key, sim.network_id, round_=message.round, pol_round=-1, block=block
            )
            self.twins[(message.height, message.round, message.block_id)] = block.id
            self._split(sim, node, message.raw, twin.raw)
            return
        super().send(sim, node, message)

    def _other_block(self, sim: Simulation, node: SimNode, vote: Vote) -> bytes:
        twin = self.twins.get((vote.height, vote.round, vote.block_id))
        return twin if twin is not None else super()._other_block(sim, node, vote)


class Replay(Behaviour):
    name = "replay"
    keeps_history = True
    relays = True

    def gossip(self, sim: Simulation, node: SimNode) -> bool:
        stuck = super().gossip(sim, node)
        if stuck:
            self.replay(sim, node)
        return stuck

    def send(self, sim: Simulation, node: SimNode, message: Message) -> None:
        super().send(sim, node, message)
        if sim.rng.random() < 0.3:
            self.replay(sim, node)

    @staticmethod
    def replay(sim: Simulation, node: SimNode) -> None:
        if not node.history:
            return
        peers = sim.peers(node)
        for _ in range(4):
            raw = node.history[sim.rng.randrange(len(node.history))]
            sim.send(node, peers[sim.rng.randrange(len(peers))], raw)


class Coalition:
    """The Byzantine validators of a `fork` run, acting together."""

    def __init__(self) -> None:
        self.members: list[SimNode] = []
        self.attacked: set[tuple[int, int]] = set()


class Fork(Behaviour):
    name = "fork"
    relays = False

    def __init__(self, coalition: Coalition) -> None:
        self.coalition = coalition

    def send(self, sim: Simulation, node: SimNode, message: Message) -> None:
        if not isinstance(message, Vote | Proposal):
            sim.broadcast(node, message.raw)
            return
        if (message.height, message.round) in self.coalition.attacked:
            return
        groups = sim.honest_groups()
        if isinstance(message, Proposal) and groups is not None:
            self._attack(sim, node, message, groups)
            return
        sim.broadcast(node, message.raw)

    def _attack(
        self, sim: Simulation, node: SimNode, proposal: Proposal, groups: tuple[list[int], ...]
    ) -> None:
        height, round_ = proposal.height, proposal.round
        self.coalition.attacked.add((height, round_))
        blocks = (proposal.block, sim.alternative_block(node, proposal))
        for group, block in zip(groups, blocks, strict=False):
            raws = [
                Proposal.sign(
                    node.key, sim.network_id, round_=round_, pol_round=-1, block=block
                ).raw
            ]
            for member in self.coalition.members:
                for type_, at in ((PREVOTE, None), (PRECOMMIT, sim.local_now(member))):
                    raws.append(
                        Vote.sign(
                            member.key,
                            sim.network_id,
                            type_=type_,
                            height=height,
                            round_=round_,
                            block_id=block.id,
                            timestamp=None if at is None else max(at, block.header.time + 1),
                        ).raw
                    )
            for peer in group:
                for raw in raws:
                    sim.send(node, peer, raw)


def behaviour_named(name: str) -> Behaviour:
    """A fresh behaviour (not `fork`, which needs its coalition)."""
    kinds: dict[str, type[Behaviour]] = {
        "silent": Silent,
        "bad-signature": BadSignature,
        "double-vote": DoubleVoter,
        "equivocate": Equivocate,
        "replay": Replay,
    }
    return kinds[name]()


MIXED = ("equivocate", "double-vote", "silent", "bad-signature", "replay")
