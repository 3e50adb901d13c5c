"""The BFT consensus engine: Tendermint (Buchman, Kwon, Milosevic 2018, Algorithm 1) as a pure
state machine. Messages and timer events go in; effects (messages to broadcast, timers to set,
state to persist, blocks decided, evidence) come out. No clock, no sockets, no randomness: the
shell (a node, or `node.sim`) owns all of those."""

from node.consensus.effects import (
    Broadcast,
    Decide,
    Effect,
    Evidence,
    Persist,
    PersistedState,
    ScheduleTimeout,
    Step,
    Timeout,
)
from node.consensus.engine import Application, Engine, Timeouts
from node.consensus.errors import ConsensusError
from node.consensus.messages import Decision, Message, Proposal, decode_message, encode_message
from node.consensus.proposer import ProposerSchedule
from node.consensus.verify import SignatureCache

__all__ = [
    "Application",
    "Broadcast",
    "ConsensusError",
    "Decide",
    "Decision",
    "Effect",
    "Engine",
    "Evidence",
    "Message",
    "Persist",
    "PersistedState",
    "Proposal",
    "ProposerSchedule",
    "ScheduleTimeout",
    "SignatureCache",
    "Step",
    "Timeout",
    "Timeouts",
    "decode_message",
    "encode_message",
]
