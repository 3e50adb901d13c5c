"""The engine under the deterministic simulator: safe and live with up to 1/3 Byzantine power
through drops, partitions that heal, crashes (some between persist and send) and restarts,
unequal powers and a validator change; caught failing above 1/3; the same bytes for the same
seed in any process.

Seeds run on two worker processes (`cli.simulate.run_many`); set COMMONS_SIM_LONG=1 for ten
times the seeds and five times the heights.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ledger_factory import keypair

from cli.main import main
from cli.simulate import run_many
from ledger.block import Commit
from ledger.records import ZERO_HASH, decode_record, sign_record
from node.sim import RunResult, Scenario, Simulation

ROOT = Path(__file__).resolve().parent.parent
LONG = os.environ.get("COMMONS_SIM_LONG") == "1"
SCALE = 10 if LONG else 1
HEIGHTS = 50 if LONG else 10
WORKERS = 2


def sweep(count: int, **kwargs: object) -> list[RunResult]:
    scenarios = [
        Scenario(seed=seed, heights=HEIGHTS, **kwargs)  # type: ignore[arg-type]
        for seed in range(count * SCALE)
    ]
    return run_many(scenarios, WORKERS)


def assert_all_safe_and_live(results: list[RunResult]) -> None:
    failed = {r.seed: r.violations for r in results if not r.ok}
    assert not failed, f"{len(failed)} of {len(results)} runs failed: {failed}"
    assert all(r.heights >= HEIGHTS for r in results)


def test_4_validators_1_byzantine_200_seeds_with_partitions_crashes_and_drops() -> None:
    results = sweep(200, validators=4, byzantine=1, partition=True, crashes=1, drop=0.1)
    assert_all_safe_and_live(results)
    behaviours = {b for r in results for b in r.behaviours}
    assert behaviours == {"equivocate", "double-vote", "silent", "bad-signature", "replay"}
    assert sum(r.evidence for r in results) > 0, "double votes were caught"
    assert sum(r.crashes_after_persist for r in results) > 0
    assert sum(r.restarts for r in results) == sum(r.crashes for r in results) > 0
    assert sum(r.checked_heights for r in results) > 200, "the round bound was exercised"
    assert max(r.max_checked_round for r in results) <= 2, "f + 2 = 3 rounds at most after GST"


def test_7_validators_2_byzantine_100_seeds_with_partitions_crashes_and_drops() -> None:
    results = sweep(100, validators=7, byzantine=2, partition=True, crashes=1, drop=0.1)
    assert_all_safe_and_live(results)
    assert sum(r.evidence for r in results) > 0
    assert sum(r.dropped for r in results) > 0


def test_unequal_powers() -> None:
    # no single validator holds 1/3: any one of them may be the Byzantine one
    powers = (3, 2, 2, 1, 1, 1, 1)
    results = sweep(40, validators=7, byzantine=1, powers=powers, partition=True, crashes=1)
    assert_all_safe_and_live(results)


def test_a_validator_change_decided_at_h_applies_from_h_plus_2() -> None:
    # node 3 leaves, observer node 4 joins with power 3, node 0 doubles: decided in block 3
    change = (2, 1, 1, 0, 3)
    for seed in range(20 * SCALE):
        scenario = Scenario(
            seed=seed, heights=8, validators=4, byzantine=1, observers=1, change_at=3,
            change_to=change, partition=True, crashes=1,
        )  # fmt: skip
        sim = Simulation(scenario).run()
        result = sim.result()
        assert result.ok, (seed, result.violations)
        leaving, joining = sim.nodes[3].key.public_key, sim.nodes[4].key.public_key
        node = next(n for n in sim.nodes if n.honest)
        blocks = [block for block, _ in node.app.decided]
        assert blocks[2].header.new_validators is not None
        assert [b.header.new_validators is not None for b in blocks].count(True) == 1
        for height, ((block, commit), vals) in enumerate(
            zip(node.app.decided, node.app.validator_sets, strict=True), start=1
        ):
            voters = {key for key, _, _ in commit.votes}
            assert block.header.validators_hash == vals.hash
            if height <= 4:
                assert vals == sim.genesis.validators
                assert joining not in voters
            else:
                assert vals.power(joining) == 3
                assert vals.power(leaving) == 0
                assert leaving not in voters
                assert joining in voters, "without its 3 of 7 no certificate has 2/3"


def test_byzantine_above_one_third_stalls_and_the_simulator_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        ["simulate", "--validators", "4", "--byzantine", "2", "--attack", "silent",
         "--heights", "3", "--seeds", "1"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL" in out
    assert "liveness: stalled" in out


def test_byzantine_above_one_third_equivocating_across_a_partition_forks_honest_nodes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        ["simulate", "--validators", "4", "--byzantine", "2", "--attack", "fork",
         "--heights", "2", "--seeds", "1"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert "safety: height" in out
    assert "honest nodes decided 2 different blocks" in out


def test_within_one_third_the_simulator_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "-n", "4", "-f", "1", "--seeds", "3", "--partition", "--crashes", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[-1].startswith("total: 3 runs, 3 ok, 0 failed")
    code = main(["simulate", "-n", "4", "--seeds", "2", "--drop", "0.2", "--records", "30"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("records 30") == 2


def test_a_node_cut_off_catches_up_by_fetching_ranges_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # seed 4: node 1 is alone on its side of the partition until GST while 0, 2, 3 go on
    scenario = Scenario(seed=4, validators=4, partition=True, gst_ms=6000, heights=12)
    monkeypatch.setattr(Simulation, "_catch_up", lambda *_: None)  # no decisions pushed
    sim = Simulation(scenario)
    assert sim.partition is not None
    assert sim.partition.groups == ((1,), (0, 2, 3))
    result = sim.run().result()
    assert result.ok, result.violations
    assert sim.fetches > 0
    assert len({n.app.decided[11][0].id for n in sim.nodes}) == 1
    # and without its fetches it never catches up
    deaf = Simulation(dataclasses.replace(scenario, max_time_ms=15_000))
    monkeypatch.setattr(deaf, "_sync", lambda *_: None)
    violations = deaf.run().result().violations
    assert any("liveness: stalled: honest node(s) 1 decided only" in v for v in violations)


def test_the_checker_catches_a_bad_certificate_and_a_disagreement() -> None:
    sim = Simulation(Scenario(validators=4, seed=3, heights=3)).run()
    assert sim.result().ok
    node = sim.nodes[0]
    block, commit = node.app.decided[1]
    one_vote = Commit(height=commit.height, round=commit.round, block_id=commit.block_id,
                      votes=commit.votes[:1])  # fmt: skip
    node.app.decided[1] = (block, one_vote)
    violations = sim.result().violations
    assert any("block 2 without a valid certificate" in v for v in violations), violations
    _, other_commit = sim.nodes[1].app.decided[2]
    sim.nodes[1].app.decided[2] = (sim.nodes[1].app.decided[1][0], other_commit)
    violations = sim.result().violations
    assert any("height 3: honest nodes decided 2 different blocks" in v for v in violations)


def test_the_liveness_bound_can_fail() -> None:
    sim = Simulation(Scenario(validators=4, seed=1, heights=4)).run()
    assert sim.result().ok
    for node in sim.nodes:
        block, commit = node.app.decided[2]
        node.app.decided[2] = (block, dataclasses.replace(commit, round=3))
    violations = sim.result().violations
    assert any("height 3 (after GST) decided in round 3" in v for v in violations), violations


@pytest.mark.parametrize(
    "faults",
    [
        {"drop": 0.2},
        {"partition": True, "drop": 0.1},
        {"crashes": 2, "drop": 0.1},
        {"byzantine": 1, "drop": 0.1},
        {"observers": 2, "partition": True, "drop": 0.3, "crashes": 1},
    ],
    ids=["drops", "partition", "crashes", "byzantine", "observers"],
)
def test_records_submitted_anywhere_are_final_once_on_every_honest_node(
    faults: dict[str, object],
) -> None:
    """Members submit records to honest nodes (validators and observers) from the start until
    after GST; they travel by the node's forwarding policy (pushed, announced, asked for) and its
    mempool, and every one ends in exactly one block of every honest node."""
    results = sweep(4, records=40, **faults)
    assert [r.violations for r in results if not r.ok] == []
    assert all(r.records == 40 for r in results)


@pytest.mark.parametrize("seed", [1, 3, 4])
def test_old_decisions_do_not_start_a_storm_of_blocks(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """These seeds once had two up-to-date nodes answer each other's stale decisions with
    decisions, for ever (hundreds of thousands of messages in a few simulated seconds): the
    catch-up answers are counted, and a storm fails at once instead of running for minutes."""
    sim = Simulation(Scenario(seed=seed, heights=8, records=60, partition=True, drop=0.1))
    answers = 0
    serve = sim._catch_up

    def counted(*args: Any) -> None:
        nonlocal answers
        answers += 1
        if answers > 1_000:
            raise AssertionError(f"a storm of catch-up answers at {sim.now} ms")
        serve(*args)

    monkeypatch.setattr(sim, "_catch_up", counted)
    result = sim.run().result()
    assert result.ok, result.violations


def test_the_checker_catches_a_record_missing_from_the_blocks() -> None:
    sim = Simulation(Scenario(validators=4, seed=2, heights=3, records=8)).run()
    assert sim.result().ok
    sim.taken.append(bytes(32))  # a record its node took that no block holds
    violations = sim.result().violations
    assert len([v for v in violations if "lacks 1 of the 9 records" in v]) == 4, violations
    sim.submitted = len(sim.taken) + 1  # and one its node never took
    violations = sim.result().violations
    assert any("only 9 of the 10 records members submitted" in v for v in violations)


def test_evidence_from_a_run_verifies_inside_a_record() -> None:
    sim = Simulation(Scenario(validators=4, byzantine=1, attack="double-vote", seed=0)).run()
    assert sim.result().ok
    assert sim.evidence
    evidence = next(iter(sim.evidence.values()))
    byzantine = {sim.nodes[i].key.public_key for i in sim.byzantine}
    assert evidence.validator in byzantine
    record = sign_record(
        keypair("reporter"), sim.network_id, seq=1, prev=ZERO_HASH, timestamp=0, body=evidence
    )
    again = decode_record(record.raw)
    again.verify(sim.network_id)
    again.body.verify(sim.network_id)  # type: ignore[attr-defined]


def _simulate_cli(hash_seed: str, *extra: str) -> bytes:
    args = ["simulate", "-n", "4", "-f", "1", "--seeds", "3", "--seed-start", "5",
            "--partition", "--crashes", "1", "--drop", "0.1", "--heights", "6", *extra]  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        capture_output=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout


def test_same_seed_same_output_byte_for_byte_whatever_the_hash_seed() -> None:
    text = _simulate_cli("1")
    assert text == _simulate_cli("2", "--workers", "2")
    assert b"total: 3 runs" in text
    as_json = _simulate_cli("3", "--json")
    assert as_json == _simulate_cli("4", "--json")
    assert b'"crashes_after_persist"' in as_json
