"""The governance scenarios of tests/scenarios/ a second way: each step run through the `commons`
commands by the member it names, against a real devnet of four validator processes.

`commons governance simulate` makes a block at each step's exact time; a real network's block
times are its clock's. So here a scenario's times only order its steps, and each step waits for
what its time stood for: a vote that the scenario expects to count waits until its proposal is
Active; an expectation waits until the network shows it. A step the scenario expects the rules
to refuse must be refused, by the rules or by the CLI before it signs (a vote on a proposal not
open). `deadline` expectations, exact times by nature, are left to the simulator; the periods
are shortened (a 3 s voting delay and timelock, a 40 s voting period, unless a scenario needs
other), and the scenarios chosen are those whose outcomes do not hang on a boundary to the
second. Together they cover every action type and every proposal state.

A scenario that names validators runs one node per validator, with the scenario's powers, so
its validator changes change the live network's consensus.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from clikit import cli
from netkit import Devnet, RunningNode, running, wait_for

from cli.devnet import DevnetNode, create, free_ports
from cli.home import key_path
from ledger.crypto import Keypair, Role
from ledger.files import read_public_key, seal_key, write_private
from ledger.genesis import Param
from node.rules import DEFAULT_PARAMS
from node.scenario import load

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
APART_MS = 2000
"""Steps at two scenario times are this far apart in block time: twice the longest gap between
blocks, so proposals made at different times never reach a deadline or eta in one block."""
SHORTENED = {"voting_delay": 3, "timelock": 3, "voting_period": 40, "max_block_interval_ms": 1000}
CHOSEN = {
    # reward; Pending, Active, Queued, Executed
    "reward_lifecycle.json": SHORTENED,
    # text; Defeated on a tie
    "tie_fails.json": SHORTENED,
    # freeze, reinstate, reward, param; Failed (a whole proposal undone), Executed
    "failed_execution.json": SHORTENED,
    # Canceled; the proposer's cancel must land while Pending, so a longer delay
    "cancel_while_pending.json": {**SHORTENED, "voting_delay": 15},
    # validators on the real validator set; one vote per proposal, so a shorter period; its
    # Pending check comes after a second proposal and that one's refusal (two signed commands,
    # each waiting for a block), which can take more than 3 s under load: a longer delay
    "validator_power_on_a_live_network.json": {**SHORTENED, "voting_delay": 8, "voting_period": 15},
}


def scenario_key(label: str) -> Keypair:
    """The key `commons governance simulate` gives a named member (node/scenario.py)."""
    return Keypair.from_seed(hashlib.sha256(f"commons-scenario/{label}".encode()).digest())


class Play:
    """One scenario on one devnet: a home per member, each talking to one of the nodes."""

    def __init__(
        self, net: Devnet, where: Path, members: list[str], validators: list[str], capsys: Any
    ) -> None:
        self.net, self.capsys = net, capsys
        self.validators = {
            label: read_public_key(key_path(node.home, Role.VALIDATOR)).hex()
            for label, node in zip(validators, net.nodes, strict=False)
        }
        """Validator labels to the keys of the nodes playing them."""
        self.homes: dict[str, Path] = {}
        self.labels: dict[str, str] = {}
        """Step ids to record ids (hex)."""
        for i, name in enumerate(members):
            node = net.nodes[i % len(net.nodes)]
            home = where / "members" / name
            (home / "keys").mkdir(parents=True)
            write_private(
                key_path(home, Role.MEMBER), seal_key(Role.MEMBER, scenario_key(name), None)
            )
            write_private(home / "api.token", (node.home / "api.token").read_bytes())
            write_private(
                home / "config.toml", f'[node]\napi = "127.0.0.1:{node.spec.api}"\n'.encode()
            )
            self.homes[name] = home

    def commons(self, by: str, *args: str) -> tuple[int, str, str]:
        return cli(self.capsys, *args, "--home", str(self.homes[by]))

    def read(self, *args: str) -> Any:
        code, out, err = cli(
            self.capsys, *args, "--json", "--home", str(next(iter(self.homes.values())))
        )
        assert code == 0, err
        return json.loads(out)

    def state_of(self, label: str) -> dict[str, Any]:
        return dict(self.read("proposal", self.labels[label]))

    def block_time_past(self, ms: int) -> int:
        """Waits until the network's last block is later than `ms`; its time."""
        node = self.net.nodes[0]
        return int(wait_for(lambda: (t := node.status()["time"]) > ms and t, 30, f"time {ms}"))

    def validator(self, label: str) -> str:
        """A named validator's key; one the genesis lacks gets a key no node runs."""
        if label not in self.validators:
            self.validators[label] = scenario_key(f"validator/{label}").public_key.hex()
        return self.validators[label]


def _record(out: str) -> str:
    return out.split("record ", 1)[1].split(maxsplit=1)[0]


def _proposal_file(play: Play, where: Path, step: dict[str, Any]) -> Path:
    lines = [f"title = {json.dumps(step['title'])}"]
    if step.get("description"):
        lines.append(f"description = {json.dumps(step['description'])}")
    for action in step.get("actions") or [{"type": "text"}]:
        kind = {"set_param": "param", "change_validators": "validators"}.get(
            action["type"], action["type"]
        )
        lines.append(f'[[actions]]\ntype = "{kind}"')
        if kind == "validators":
            powers = {play.validator(label): power for label, power in action["changes"].items()}
            lines.append(f"powers = {{ {', '.join(f'{k} = {v}' for k, v in powers.items())} }}")
            continue
        for key, value in action.items():
            if key == "type":
                continue
            given = play.labels[value] if key == "contribution" else value
            lines.append(f"{key} = {json.dumps(given)}")
    path = where / f"{step['id']}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_step(play: Play, where: Path, step: dict[str, Any], refused: set[str]) -> None:
    do, by = step["do"], step.get("by", "")
    label = step.get("id")
    expect_refusal = label in refused
    if do == "contribute":
        args = ["contribute", step["title"], "--kind", step.get("kind", "code"), "--wait"]
    elif do == "propose":
        args = ["propose", "--file", str(_proposal_file(play, where, step))]
    elif do == "vote":
        proposal = play.labels[step["proposal"]]
        if not expect_refusal:
            wait_for(
                lambda: play.state_of(step["proposal"])["state"] == "Active", 30, "voting open"
            )
        args = ["vote", proposal, step["support"]]
    elif do == "delegate":
        args = ["delegate", "--self"] if step["to"] == by else ["delegate", step["to"]]
    elif do == "cancel":
        args = ["cancel", play.labels[step["proposal"]]]
    elif do == "register":
        args = ["register", "--name", step.get("name", by)]
    else:
        raise AssertionError(f"no CLI command plays {do!r}")
    code, out, err = play.commons(by, *args)
    if expect_refusal:
        assert code == 1, (step, out, err)
        assert "refused" in err or "no vote sent" in err, err
    else:
        assert code == 0, (step, out, err)
        if label is not None:
            play.labels[label] = _record(out)


def check(play: Play, step: dict[str, Any]) -> None:
    if "proposal" in step:
        wanted = {k: step[k] for k in ("state", "for", "against", "abstain") if k in step}

        def found() -> dict[str, Any]:
            doc = play.state_of(step["proposal"])
            return {"state": doc["state"], **doc["votes"]}

        try:
            wait_for(lambda: all(found()[k] == v for k, v in wanted.items()), 60, "")
        except AssertionError:
            doc = play.state_of(step["proposal"])
            raise AssertionError(
                f"proposal {step['proposal']}: wanted {wanted}, found {doc}"
            ) from None
    if "member" in step:
        wanted = {k: step[k] for k in ("balance", "power") if k in step}
        wait_for(
            lambda: all(play.read("balance", step["member"])[k] == v for k, v in wanted.items()),
            60,
            f"{step['member']} to show {wanted}",
        )


@pytest.mark.parametrize("name", CHOSEN)
def test_a_scenario_plays_through_the_cli_on_a_real_network(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = load((SCENARIOS / name).read_bytes())
    spec = scenario["genesis"]
    members = list(spec["members"])
    names_in_steps = {s["by"] for s in scenario["steps"] if "by" in s}
    members += sorted(names_in_steps - set(members))  # strangers: keys without tokens
    params = {**spec.get("params", {}), **CHOSEN[name]}
    validators = dict(spec.get("validators") or {f"v{i}": 1 for i in range(4)})
    ports = free_ports(2 * len(validators))
    nodes = [
        DevnetNode(
            home=tmp_path / "net" / f"node-{i + 1}", listen=ports[2 * i], api=ports[2 * i + 1]
        )
        for i in range(len(validators))
    ]
    (tmp_path / "net").mkdir()
    genesis = create(
        tmp_path / "net",
        nodes,
        params={
            n: Param(value=v, min=DEFAULT_PARAMS[n].min, max=DEFAULT_PARAMS[n].max)
            for n, v in params.items()
        },
        members={scenario_key(n).public_key: (n, t) for n, t in spec["members"].items()},
        powers=list(validators.values()),
    )
    net = Devnet(where=tmp_path / "net", genesis=genesis, nodes=[RunningNode(n) for n in nodes])
    refused = {s["rejected"] for s in scenario["steps"] if s["do"] == "expect" and "rejected" in s}
    with running(net):
        net.wait_ready()
        play = Play(net, tmp_path, members, list(validators), capsys)
        at, since = 0, None
        for step in scenario["steps"]:
            if step["do"] == "expect":
                check(play, step)
                continue
            if step["at"] > at and since is not None:
                play.block_time_past(since + APART_MS)
            run_step(play, tmp_path, step, refused)
            at, since = step["at"], play.block_time_past(0)
        if "validators" in spec:
            check_validator_set(play, scenario, validators)


def check_validator_set(play: Play, scenario: dict[str, Any], genesis: dict[str, int]) -> None:
    """Every node's consensus runs the validator set the executed proposals made."""
    wanted = {play.validator(label): power for label, power in genesis.items()}
    for step in scenario["steps"]:
        if step["do"] != "propose" or step.get("id") not in play.labels:
            continue
        if play.state_of(step["id"])["state"] != "Executed":
            continue
        for action in step.get("actions") or []:
            for label, power in action.get("changes", {}).items():
                wanted[play.validator(label)] = power
    wanted = {key: power for key, power in wanted.items() if power}
    for node in play.net.nodes:
        wait_for(
            lambda node=node: {v["key"]: v["power"] for v in node.status()["validators"]} == wanted,
            30,
            f"{node.home.name} to run validators {wanted}",
        )
