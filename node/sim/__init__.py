"""A deterministic, seeded simulator of a Commons validator network: N engines on real chains,
a virtual network and clock, faults and Byzantine validators, and the safety and liveness checks
(`commons simulate`). Pure: its only randomness is a `random.Random(seed)` it owns."""

from node.sim.scenario import ATTACKS, RunResult, Scenario
from node.sim.simulator import Simulation, run

__all__ = ["ATTACKS", "RunResult", "Scenario", "Simulation", "run"]
