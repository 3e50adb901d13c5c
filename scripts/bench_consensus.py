"""Benchmark of the consensus engine in the simulator: heights decided per CPU second and
messages per height for networks of 4, 7, 16 and 32 validators, fault-free.

Every node runs the real engine on a real `Chain` (block validation and appending, certificate
checks included), all in one process, so "per CPU second" is for the whole network, not one
node. Tendermint sends O(n^2) messages per height: one proposal to n - 1 peers and one prevote
and one precommit from each of n validators to n - 1 peers, (2n + 1)(n - 1) in all; the script
prints the measured count and its constant c in c * n^2.

Usage: python scripts/bench_consensus.py [--heights H] [--sizes 4,7,16,32]
"""

from __future__ import annotations

import argparse
import time

from node.sim import Scenario, Simulation


def bench(validators: int, heights: int) -> dict[str, float]:
    scenario = Scenario(validators=validators, heights=heights, seed=1, duplicate=0.0)
    start = time.process_time()
    sim = Simulation(scenario).run()
    cpu = time.process_time() - start
    result = sim.result()
    if not result.ok:
        raise SystemExit(f"{validators} validators: {result.violations}")
    per_height = result.messages / result.heights
    return {
        "validators": validators,
        "heights": result.heights,
        "cpu_s": cpu,
        "heights_per_cpu_s": result.heights / cpu,
        "messages_per_height": per_height,
        "expected": (2 * validators + 1) * (validators - 1),
        "constant": per_height / validators**2,
        "signature_checks_per_height": sim.signatures.checked / result.heights,
        "sim_ms_per_height": result.sim_time_ms / result.heights,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heights", type=int, default=50)
    parser.add_argument("--sizes", default="4,7,16,32")
    args = parser.parse_args()
    print(
        f"{'n':>3} {'heights':>7} {'cpu s':>7} {'heights/cpu s':>13} {'msgs/height':>11} "
        f"{'(2n+1)(n-1)':>11} {'c = msgs/n^2':>12} {'sig checks/h':>12} {'sim ms/h':>8}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        r = bench(size, args.heights)
        print(
            f"{r['validators']:>3} {r['heights']:>7} {r['cpu_s']:>7.2f} "
            f"{r['heights_per_cpu_s']:>13.1f} {r['messages_per_height']:>11.1f} "
            f"{r['expected']:>11} {r['constant']:>12.2f} "
            f"{r['signature_checks_per_height']:>12.1f} {r['sim_ms_per_height']:>8.0f}"
        )


if __name__ == "__main__":
    main()
