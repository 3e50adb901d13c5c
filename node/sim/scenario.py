"""What one simulated run is (`Scenario`) and what it found (`RunResult`).

A scenario is plain data, so runs can be farmed out to worker processes and printed back in seed
order: the same scenario gives the same result, byte for byte, in any process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from node.consensus.engine import Timeouts

ATTACKS = ("mixed", "silent", "equivocate", "double-vote", "bad-signature", "replay", "fork")
"""What the Byzantine validators do. `mixed` gives each one of the first five (drawn from the
seed); `fork` makes them a coalition that equivocates across a partition of the honest nodes."""

SIM_TIMEOUTS = Timeouts(
    propose_ms=600,
    propose_delta_ms=300,
    prevote_ms=300,
    prevote_delta_ms=150,
    precommit_ms=300,
    precommit_delta_ms=150,
    commit_ms=10,
)
"""Timeouts of the simulated network: a few times its worst delay after GST (150 ms)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    validators: int = 4
    byzantine: int = 0
    seed: int = 0
    heights: int = 10
    drop: float = 0.0
    """Chance that a message is lost, until GST."""
    duplicate: float = 0.02
    """Chance that a message is delivered twice."""
    partition: bool = False
    """Split the honest nodes in two groups for a while; heals at GST."""
    crashes: int = 0
    """Honest validators that crash and restart from their persisted state before GST."""
    attack: str = "mixed"
    powers: tuple[int, ...] = ()
    """Voting power of each validator (all 1 when empty)."""
    observers: int = 0
    """Nodes that follow consensus without a vote (until a validator change adds them)."""
    change_at: int = 0
    """Height whose block changes the validator set (vals(change_at + 2)); 0 for none."""
    change_to: tuple[int, ...] = ()
    """New power of every node (validators, then observers); 0 leaves the set."""
    gst_ms: int = 0
    """When faults end (0: drawn from the seed when there are faults)."""
    timeouts: Timeouts = field(default_factory=lambda: SIM_TIMEOUTS)
    gossip_ms: int = 200
    delay_min_ms: int = 5
    delay_mean_ms: int = 20
    delay_max_ms: int = 150
    max_time_ms: int = 0
    """Give up (a liveness failure) at this simulated time; 0: GST + 15 s per height."""
    records: int = 0
    """Records members submit to honest nodes, from the start until a little after GST:
    they travel by the node's forwarding policy (pushed by their origin, announced and asked
    for by the others), wait in each node's mempool and reach blocks through the proposer's."""

    def __post_init__(self) -> None:
        if self.validators < 1:
            raise ValueError("a network needs at least one validator")
        if not 0 <= self.byzantine < self.validators + self.observers:
            raise ValueError("byzantine must leave at least one honest node")
        if self.powers and len(self.powers) != self.validators:
            raise ValueError(f"{len(self.powers)} powers for {self.validators} validators")
        if any(p < 1 for p in self.powers):
            raise ValueError("validator powers must be at least 1")
        if self.attack not in ATTACKS:
            raise ValueError(f"attack must be one of {', '.join(ATTACKS)}")
        if not 0.0 <= self.drop < 1.0 or not 0.0 <= self.duplicate < 1.0:
            raise ValueError("drop and duplicate are probabilities below 1")
        if self.heights < 1:
            raise ValueError("heights must be at least 1")
        if self.records < 0:
            raise ValueError("records cannot be negative")
        if self.change_at and len(self.change_to) != self.validators + self.observers:
            raise ValueError("change_to needs a power for every node")

    @property
    def nodes(self) -> int:
        return self.validators + self.observers

    def power(self, index: int) -> int:
        return self.powers[index] if self.powers else 1


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    seed: int
    validators: int
    byzantine: int
    byzantine_power: str
    """Byzantine / total power, as `p/t`."""
    behaviours: tuple[str, ...]
    heights: int
    """Heights every honest node decided."""
    rounds: int
    """Rounds used over those heights (a height decided in round r used r + 1)."""
    max_round: int
    max_checked_round: int
    """Highest deciding round among the heights held to the liveness bound (started after GST)."""
    messages: int
    """Messages sent from node to node (each copy counts, re-sends and relays too)."""
    dropped: int
    sim_time_ms: int
    """Simulated time until the last honest node decided its last height."""
    gst_ms: int
    checked_heights: int
    """Heights started after GST, held to the liveness round bound."""
    evidence: int
    """Distinct double votes turned into evidence by honest nodes."""
    crashes: int
    crashes_after_persist: int
    """Crashes between a persist and the sending of what it covered."""
    restarts: int
    records: int
    """Records submitted and taken by their node."""
    violations: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "ok": self.ok,
            "validators": self.validators,
            "byzantine": self.byzantine,
            "byzantine_power": self.byzantine_power,
            "behaviours": list(self.behaviours),
            "heights": self.heights,
            "rounds": self.rounds,
            "max_round": self.max_round,
            "max_checked_round": self.max_checked_round,
            "messages": self.messages,
            "dropped": self.dropped,
            "sim_time_ms": self.sim_time_ms,
            "ms_per_height": self.sim_time_ms // self.heights if self.heights else None,
            "gst_ms": self.gst_ms,
            "checked_heights": self.checked_heights,
            "evidence": self.evidence,
            "crashes": self.crashes,
            "crashes_after_persist": self.crashes_after_persist,
            "restarts": self.restarts,
            "records": self.records,
            "violations": list(self.violations),
        }
