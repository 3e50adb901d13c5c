"""What a simulated run must show, checked from the honest nodes' own block stores.

Safety: at every height, every honest node that decided, decided the same block; and every
decided block's certificate verifies (`ledger.block.Commit.verify` under the validator set of
that height, every precommit after the block's time), as the ledger would check it.

Liveness: every honest node decides the scenario's number of heights before the run gives up;
and each height started after GST (after the height in progress at GST) is decided by the round
after the first round whose proposer is honest. With equal powers and f Byzantine validators
that first honest round is at most f, so every such height decides within f + 2 rounds. Every
record a member submitted and its node took is final, once, on every honest node.

The checker never excuses a run for its assumptions: a network with more than 1/3 Byzantine
power is expected to fail, and must be reported as failing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.block import Block, Commit, encode_commit
from ledger.errors import InvalidData
from ledger.validators import ValidatorSet
from node.consensus.proposer import ProposerSchedule
from node.sim.scenario import RunResult

if TYPE_CHECKING:
    from node.sim.simulator import SimNode, Simulation

MAX_BOUND_ROUNDS = 64


def check(sim: Simulation) -> RunResult:
    s = sim.scenario
    honest = [n for n in sim.nodes if n.honest]
    violations: list[str] = []
    top = max(n.app.height for n in honest)
    for h in range(1, top + 1):
        decided: dict[bytes, int] = {}
        for node in honest:
            if node.app.height >= h:
                decided.setdefault(node.app.decided[h - 1][0].id, node.index)
        if len(decided) > 1:
            views = ", ".join(f"node {i}: {block.hex()[:12]}" for block, i in decided.items())
            violations.append(
                f"safety: height {h}: honest nodes decided {len(decided)} different blocks "
                f"({views})"
            )
    checked: set[tuple[bytes, bytes, bytes]] = set()
    for node in honest:
        pairs = zip(node.app.decided, node.app.validator_sets, strict=True)
        for h, ((block, commit), vals) in enumerate(pairs, start=1):
            key = (vals.hash, block.id, encode_commit(commit))
            if key in checked:
                continue
            checked.add(key)
            problem = _certificate_problem(sim, commit, vals, h, block)
            if problem is not None:
                violations.append(
                    f"safety: node {node.index} decided block {h} without a valid certificate: "
                    f"{problem}"
                )
    if sim.invalid_evidence:
        violations.append(f"evidence: {sim.invalid_evidence} evidence record(s) do not verify")
    honest_index = {n.key.public_key: n.index for n in honest}
    for evidence in sim.evidence.values():
        if evidence.validator in honest_index:
            violations.append(
                f"safety: honest node {honest_index[evidence.validator]} double-signed a "
                f"{evidence.vote_type} at height {evidence.height} round {evidence.round}"
            )

    reached = min(n.app.height for n in honest)
    if reached < s.heights:
        behind = [n.index for n in honest if n.app.height < s.heights]
        violations.append(
            f"liveness: stalled: honest node(s) {', '.join(map(str, behind))} decided only "
            f"{min(n.app.height for n in honest)} of {s.heights} heights in {sim.now} ms"
        )
    rounds = [min(n.app.decided[h - 1][1].round for n in honest) for h in range(1, reached + 1)]
    first_checked = 1 if not sim.gst else (sim.heights_at_gst or reached + 1) + 1
    reference = max(honest, key=lambda n: (n.app.height, -n.index))
    honest_keys = {n.key.public_key for n in honest}
    schedule = None
    checked_heights = 0
    max_checked_round = 0
    for h in range(1, reached + 1):
        vals = reference.app.validator_sets[h - 1]
        schedule = ProposerSchedule.genesis(vals) if schedule is None else schedule.next(vals)
        if h < first_checked:
            continue
        checked_heights += 1
        max_checked_round = max(max_checked_round, rounds[h - 1])
        first_honest = next(
            (r for r in range(MAX_BOUND_ROUNDS) if schedule.proposer(r) in honest_keys),
            MAX_BOUND_ROUNDS,
        )
        if rounds[h - 1] > first_honest + 1:
            violations.append(
                f"liveness: height {h} (after GST) decided in round {rounds[h - 1]}; the first "
                f"honest proposer had round {first_honest}, so the bound is round "
                f"{first_honest + 1}"
            )
    violations += _record_problems(sim, honest)
    total = sum(s.power(i) for i in range(s.validators))
    byzantine_power = sum(s.power(i) for i in sim.byzantine)
    return RunResult(
        seed=s.seed,
        validators=s.validators,
        byzantine=s.byzantine,
        byzantine_power=f"{byzantine_power}/{total}",
        behaviours=tuple(sim.nodes[i].behaviour.name for i in sorted(sim.byzantine)),
        heights=reached,
        rounds=sum(r + 1 for r in rounds),
        max_round=max(rounds, default=0),
        max_checked_round=max_checked_round,
        messages=sim.messages,
        dropped=sim.dropped,
        sim_time_ms=sim.now,
        gst_ms=sim.gst,
        checked_heights=checked_heights,
        evidence=len(sim.evidence),
        crashes=sim.crashes,
        crashes_after_persist=sim.crashes_after_persist,
        restarts=sim.restarts,
        records=len(sim.taken),
        violations=tuple(violations),
    )


def _record_problems(sim: Simulation, honest: list[SimNode]) -> list[str]:
    """Every record a node took (`sim.taken`) is in exactly one block of every honest node."""
    problems: list[str] = []
    if len(sim.taken) < sim.submitted:
        problems.append(
            f"liveness: only {len(sim.taken)} of the {sim.submitted} records members submitted "
            f"were taken by their node in {sim.now} ms"
        )
    for node in honest:
        final = [r.id for block, _ in node.app.decided for r in block.records]
        once = set(final)
        if len(once) < len(final):
            problems.append(
                f"records: node {node.index} has {len(final) - len(once)} record(s) in two blocks"
            )
        missing = [rid for rid in sim.taken if rid not in once]
        if missing:
            problems.append(
                f"liveness: node {node.index} lacks {len(missing)} of the {len(sim.taken)} "
                f"records taken (first {missing[0].hex()[:12]}) after {sim.now} ms"
            )
    return problems


def _certificate_problem(
    sim: Simulation, commit: Commit, vals: ValidatorSet, height: int, block: Block
) -> str | None:
    """Why `commit` does not certify `block` as the ledger requires, or None."""
    try:
        commit.verify(sim.network_id, vals, height=height, block_id=block.id)
    except InvalidData as e:
        return str(e)
    late = [at for _, at, _ in commit.votes if at <= block.header.time]
    if late:
        return f"precommit at {late[0]} is not after the block's time {block.header.time}"
    return None
