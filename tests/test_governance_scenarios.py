"""Governance rules as scenario files: every `tests/scenarios/*.json` must hold when played by
`commons governance simulate` (exit 0), and the checker itself must be able to fail.

Each scenario is named after the rule it pins down, at the rule's boundaries (see the files). A
scenario that fails here either found a bug in governance/ or node/scenario.py, or states a rule
wrongly: read its timeline (`commons governance simulate FILE`) to tell which.

Exit codes of `simulate`: 0 every expectation holds, 1 one fails, 2 the file is malformed. A
traceback never reaches the user.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from console import commons

from cli.main import main

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "tests" / "scenarios"
FILES = sorted(SCENARIOS.glob("*.json"))
MIN_SCENARIOS = 15


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`main(args)` in-process: (exit code, stdout, stderr). An exception escaping main fails the
    test with its traceback, which is what a user would have seen."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def simulate(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> tuple[int, str, str]:
    return cli(capsys, "governance", "simulate", *extra, str(path))


# every scenario holds


def test_there_are_enough_scenarios() -> None:
    names = [p.name for p in FILES]
    assert len(FILES) >= MIN_SCENARIOS, f"only {len(FILES)} scenarios in {SCENARIOS}: {names}"


@pytest.mark.parametrize(
    "path",
    # never an empty (skipped) parametrization: a missing folder fails here as well
    FILES or [SCENARIOS / "no-scenario-found.json"],
    ids=lambda p: p.name,
)
def test_scenario_holds(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = simulate(capsys, path)
    assert code == 0, f"{path.name} exited {code}:\n{out}{err}"
    assert "every expectation holds" in out


# why a record was refused or a proposal ended, where the scenario format cannot say it:
# file -> [(timeline step, text its result must contain)]
REASONS: dict[str, list[tuple[str, str]]] = {
    "snapshot_and_deadline_boundaries.json": [
        ("bob vote at_snapshot", "voting opens after the snapshot"),
        ("cy vote after_deadline", "voting has closed"),
    ],
    "quorum_inclusive.json": [
        ("proposal one_short", "Defeated (quorum not reached)"),
        ("proposal against_does_not", "Defeated (quorum not reached)"),
        ("proposal no_votes", "Defeated (quorum not reached)"),
    ],
    "tie_fails.json": [
        ("proposal tie", "Defeated (For did not exceed Against)"),
        ("proposal zero_tie", "Defeated (For did not exceed Against)"),
        ("proposal against_wins", "Defeated (For did not exceed Against)"),
    ],
    "double_vote.json": [
        ("ada vote ada_same_block", "already voted"),
        ("ada vote ada_later_abstain", "already voted"),
        ("bob vote delegator_votes", "no voting power at the snapshot"),
        ("bob vote reclaimed_after_snapshot", "no voting power at the snapshot"),
    ],
    "vote_while_pending_or_after_deadline.json": [
        ("bob vote pending_at_snapshot", "voting opens after the snapshot"),
        ("bob vote on_canceled", "Canceled"),
        ("zed vote zero_power_genesis", "no voting power"),
        ("newcomer vote zero_power_registered", "no voting power"),
        ("stranger vote not_a_member", "not a member"),
        ("ada vote after_deadline_defeated", "voting has closed"),
    ],
    "cancel_rules.json": [
        ("bob cancel not_proposer", "only the proposer"),
        ("bob cancel cancel_B_active", "only a Pending proposal"),
        ("cy propose C3_over_limit", "2 live proposals"),
    ],
    "late_quorum_extension.json": [
        ("ada vote too_late", "voting has closed"),
        ("proposal exact", "For did not exceed Against"),
    ],
    "failed_execution.json": [
        ("proposal reward_frozen", "Failed (reward to cy, who is frozen)"),
        ("proposal over_mint", "Failed (the proposal mints 91, more than the limit 90)"),
        ("proposal freeze_again", "Failed (cy is already frozen)"),
        ("proposal reinstate_active", "Failed (ada is already active)"),
        ("proposal param_then_bad_reward", "Failed (reward to cy, who is frozen)"),
    ],
    "reward_once_per_contribution.json": [
        ("ada propose not_author", "its author"),
        ("ada propose not_a_contribution", "no contribution"),
        ("proposal second", "already rewarded"),
        ("ada propose after_paid", "already rewarded"),
        ("proposal fails_with_c5", "more than the limit"),
    ],
    "mint_limit_per_proposal.json": [
        ("proposal sum_over", "mints 122, more than the limit 121"),
        ("proposal one_token", "mints 1, more than the limit 0"),
    ],
    "param_bounds.json": [
        ("ada propose quorum_below_floor", "outside its bounds 100..10000"),
        ("ada propose period_zero", "outside its bounds 1.."),
        ("ada propose unknown_name", "no governance parameter quorum"),
        ("ada propose one_bad_action", "voting_period = 0"),
    ],
    "validator_change_limits.json": [
        ("ada propose over_a_third", "5 of 12 voting power: more than a third"),
        ("ada propose empty_set", "empty"),
        ("ada propose sum_of_changes", "5 of 12"),
        ("proposal stale_third", "Failed (the proposal moves 5 of 14 voting power"),
    ],
    "freeze.json": [
        ("cy vote frozen_votes", "cy is frozen"),
        ("eve delegate delegate_to_frozen", "cy is frozen"),
    ],
    "transfer_off_and_on.json": [
        ("cy transfer off_at_genesis", "not transferable"),
        ("cy transfer more_than_balance", "balance 90 is less than 91"),
        ("cy transfer to_self", "another member"),
        ("dan transfer off_again", "not transferable"),
    ],
    "proposal_threshold_and_live_limit.json": [
        ("cy propose below_threshold", "needs voting power 100, the proposer has 99"),
        ("fay propose delegated_away", "the proposer has 0"),
        ("ada propose A5_at_deadline", "2 live proposals"),
    ],
    "zero_supply_never_meets_quorum.json": [
        ("proposal P", "Defeated (quorum not reached)"),
        ("proposal Q", "Defeated (quorum not reached)"),
    ],
    "zero_supply_after_freeze.json": [("proposal after", "Defeated (quorum not reached)")],
    "apply_order_and_rejections.json": [
        ("cy propose cy_too_early", "needs voting power 150"),
        ("ada vote vote_on_closed", "voting has closed"),
    ],
}


@pytest.mark.parametrize("name", sorted(REASONS))
def test_reasons_are_the_rule_s(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = simulate(capsys, SCENARIOS / name, "--json")
    assert code in (0, 1), err
    timeline = json.loads(out)["timeline"]
    for step, text in REASONS[name]:
        results = [entry["result"] for entry in timeline if entry["step"] == step]
        assert results, f"{name}: no timeline entry {step!r}"
        assert any(text in r for r in results), f"{name}: {step!r} gave {results}, not {text!r}"


# the checker can fail

WRONG = {
    "genesis": {
        "members": {"ada": 600, "cy": 100},
        "params": {"voting_delay": 10, "voting_period": 100, "quorum_bps": 5000,
                   "timelock": 20, "late_quorum_extension": 0, "max_mint_bps": 1000},
    },
    "steps": [
        {"at": 0, "do": "propose", "by": "ada", "id": "P", "title": "Reward cy",
         "actions": [{"type": "reward", "to": "cy", "amount": 50}]},
        {"at": 11, "do": "vote", "by": "ada", "proposal": "P", "support": "for"},
        {"at": 130, "do": "expect", "proposal": "P", "state": "Executed"},
        {"at": 130, "do": "expect", "member": "cy", "balance": 999},
        {"at": 130, "do": "expect", "member": "ada", "balance": 600},
    ],
}  # fmt: skip


def test_a_wrong_expectation_exits_1_and_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(WRONG))
    code, out, err = simulate(capsys, path)
    assert code == 1, out + err
    assert "expect cy balance: expected 999, got 150" in out
    assert "every expectation holds" not in out
    assert "Traceback" not in out + err

    code, out, _ = simulate(capsys, path, "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False
    assert doc["failures"] == ["at 130s: expect cy balance: expected 999, got 150"]
    failed = [e for e in doc["timeline"] if not e["ok"]]
    assert [e["step"] for e in failed] == ["expect cy balance"]


def test_a_wrong_rejection_expectation_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {
        "genesis": {"members": {"ada": 1}},
        "steps": [
            {"at": 0, "do": "propose", "by": "ada", "id": "P", "title": "Accepted"},
            {"at": 0, "do": "expect", "rejected": "P"},
        ],
    }
    path = tmp_path / "accepted.json"
    path.write_text(json.dumps(doc))
    code, out, _ = simulate(capsys, path)
    assert code == 1
    assert "expect P rejected: it was accepted" in out


def _doc(*steps: dict[str, object], **genesis: object) -> bytes:
    return json.dumps(
        {"genesis": {"members": {"ada": 600, "bob": 400}, **genesis}, "steps": list(steps)}
    ).encode()


PROPOSE = {"at": 0, "do": "propose", "by": "ada", "id": "P", "title": "t"}

MALFORMED: dict[str, tuple[bytes, str]] = {
    "bad_json": (b'{"steps": [', "not JSON"),
    "not_utf8": (b"\xff\xfe{", "not JSON"),
    "not_an_object": (b"[]", "a scenario is"),
    "unknown_do": (_doc({"at": 0, "do": "dance", "by": "ada"}), "'do' must be one of"),
    "decreasing_at": (
        _doc({"at": 5, "do": "register", "by": "cy"}, {"at": 4, "do": "register", "by": "dan"}),
        "never decreasing",
    ),
    "fractional_at": (_doc({"at": 1.5, "do": "register", "by": "cy"}), "whole seconds"),
    "unknown_parameter": (_doc(params={"quorum": 5}), "unknown parameter 'quorum'"),
    "vote_unknown_label": (
        _doc({"at": 1, "do": "vote", "by": "ada", "proposal": "nope", "support": "for"}),
        "no earlier step has id 'nope'",
    ),
    "cancel_unknown_label": (
        _doc({"at": 1, "do": "cancel", "by": "ada", "proposal": "nope"}),
        "no earlier step has id 'nope'",
    ),
    "expect_unknown_label": (
        _doc({"at": 1, "do": "expect", "proposal": "nope", "state": "Active"}),
        "no earlier step has id 'nope'",
    ),
    "bad_support": (
        _doc(PROPOSE, {"at": 1, "do": "vote", "by": "ada", "proposal": "P", "support": "yes"}),
        "support is for, against or abstain",
    ),
    "unknown_action": (
        _doc({**PROPOSE, "actions": [{"type": "burn"}]}),
        "unknown action 'burn'",
    ),
    "expects_nothing": (_doc({"at": 0, "do": "expect"}), "expects nothing"),
    "propose_without_title": (
        _doc({"at": 0, "do": "propose", "by": "ada", "id": "P"}),
        "'title'",
    ),
    # These four are malformed scenarios that today leave `simulate` with exit 1 (the code for
    # "an expectation failed") or a traceback: bugs in node/scenario.py, reported.
    "genesis_param_out_of_bounds": (_doc(params={"quorum_bps": 50}), "quorum_bps"),
    "change_validators_not_a_map": (
        _doc({**PROPOSE, "actions": [{"type": "change_validators", "changes": [["x", 1]]}]}),
        "changes",
    ),
    "reward_amount_zero": (
        _doc({**PROPOSE, "actions": [{"type": "reward", "to": "bob", "amount": 0}]}),
        "amount",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_scenario_exits_2_with_a_message(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, message = MALFORMED[case]
    path = tmp_path / f"{case}.json"
    path.write_bytes(data)
    try:
        code, out, err = simulate(capsys, path)
    except Exception as e:  # noqa: BLE001 - the point: nothing may escape main()
        pytest.fail(f"{case}: {type(e).__name__} escaped main(): {e}")
    assert code == 2, f"{case}: exit {code}, expected 2 (malformed):\n{out}{err}"
    assert message in err, f"{case}: {message!r} not in:\n{err}"
    assert str(path) in err, "the message names the file"
    assert "Traceback" not in out + err


def test_labels_are_printed_verbatim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Labels are the author's text, not markup: `[/x]` must neither crash nor vanish."""
    doc = _doc(
        {"at": 0, "do": "contribute", "by": "ada", "id": "[/x]", "title": "closing tag"},
        {"at": 0, "do": "contribute", "by": "ada", "id": "[bold]y", "title": "opening tag"},
    )
    path = tmp_path / "markup.json"
    path.write_bytes(doc)
    try:
        code, out, err = simulate(capsys, path)
    except Exception as e:  # noqa: BLE001 - the point: nothing may escape main()
        pytest.fail(f"{type(e).__name__} escaped main(): {e}")
    assert code == 0, out + err
    assert "[/x]" in out
    assert "[bold]y" in out


# output


def test_json_output_parses(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = simulate(capsys, SCENARIOS / "reward_lifecycle.json", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["ok"] is True
    assert doc["failures"] == []
    assert doc["timeline"]
    for entry in doc["timeline"]:
        assert set(entry) == {"at", "block", "step", "result", "ok"}
        assert entry["ok"] is True
    assert {"at": 136, "block": 8, "step": "proposal P", "result": "Executed", "ok": True} in (
        doc["timeline"]
    )


@pytest.mark.parametrize("extra", [(), ("--json",)], ids=["text", "json"])
def test_output_is_identical_across_hash_seeds(extra: tuple[str, ...]) -> None:
    path = SCENARIOS / "reward_once_per_contribution.json"
    outputs = []
    for seed in ("1", "4242"):
        result = subprocess.run(
            [*commons(), "governance", "simulate", *extra, str(path)],
            capture_output=True,
            check=False,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            timeout=120,
        )
        assert b"Traceback" not in result.stderr, result.stderr.decode()
        assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
        outputs.append(result.stdout)
    assert outputs[0], "no output"
    assert outputs[0] == outputs[1]


def _many_validators(tmp_path: Path) -> Path:
    """250 validators of power 10; two proposals that each add 5 validators pass one by one, but
    together would make 260, over the limit of 256."""
    validators = {f"v{i:03}": 10 for i in range(250)}
    adds = [{f"new{k}{i}": 1 for i in range(5)} for k in ("a", "b")]
    doc = {
        "genesis": {
            "members": {"ada": 1000},
            "params": {
                "voting_delay": 0,
                "voting_period": 2,
                "quorum_bps": 100,
                "late_quorum_extension": 0,
                "timelock": 0,
            },
            "validators": validators,
        },
        "steps": [
            {
                "at": 0,
                "do": "propose",
                "by": "ada",
                "id": "A",
                "title": "add five",
                "actions": [{"type": "change_validators", "changes": adds[0]}],
            },
            {
                "at": 1,  # a second later than A, so it executes after A (same-time ties go
                "do": "propose",  # by proposal id, which no test should lean on)
                "by": "ada",
                "id": "B",
                "title": "add five more",
                "actions": [{"type": "change_validators", "changes": adds[1]}],
            },
            {"at": 1, "do": "vote", "by": "ada", "proposal": "A", "support": "for"},
            {"at": 2, "do": "vote", "by": "ada", "proposal": "B", "support": "for"},
            {"at": 3, "do": "expect", "proposal": "A", "state": "Executed"},
            {"at": 4, "do": "expect", "proposal": "B", "state": "Failed"},
            {
                "at": 5,
                "do": "propose",
                "by": "ada",
                "id": "C",
                "title": "still working",
                "actions": [{"type": "text"}],
            },
            {"at": 5, "do": "expect", "proposal": "C", "state": "Pending"},
        ],
    }
    path = tmp_path / "many_validators.json"
    path.write_text(json.dumps(doc))
    return path


def test_validator_set_over_its_limit_fails_the_proposal_and_never_halts_the_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = simulate(capsys, _many_validators(tmp_path))
    assert code == 0, out + err
    assert "over 256" in out
