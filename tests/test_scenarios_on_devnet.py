"""The governance scenarios of tests/scenarios/ a second way: each step run through the `commons`
commands by the member it names, against a real devnet of four validator processes.

`commons governance simulate` makes a block at each step's exact time; a real network's block
times are its clock's. So here a scenario's times only order its steps, and each step waits for
what its time stood for: a vote that the scenario expects to count waits until its proposal is
Active; an expectation waits until the network shows it. A step the scenario expects the rules
to refuse must be refused, by the rules or by the CLI before it signs (a vote on a proposal not
open). `deadline` expectations, exact times by nature, are left to the simulator; the periods
are shortened (a 3 s voting delay and timelock, a 40 s voting period), and the scenarios chosen
are those whose outcomes do not hang on a boundary to the second.
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
from ledger.files import seal_key, write_private
from ledger.genesis import Param
from node.rules import DEFAULT_PARAMS
from node.scenario import load

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
CHOSEN = ("reward_lifecycle.json", "tie_fails.json")
SHORTENED = {"voting_delay": 3, "timelock": 3, "voting_period": 40, "max_block_interval_ms": 1000}


def scenario_key(label: str) -> Keypair:
    """The key `commons governance simulate` gives a named member (node/scenario.py)."""
    return Keypair.from_seed(hashlib.sha256(f"commons-scenario/{label}".encode()).digest())


class Play:
    """One scenario on one devnet: a home per member, each talking to one of the nodes."""

    def __init__(self, net: Devnet, where: Path, members: list[str], capsys: Any) -> None:
        self.net, self.capsys = net, capsys
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
    params = {**spec.get("params", {}), **SHORTENED}
    ports = free_ports(8)
    nodes = [
        DevnetNode(
            home=tmp_path / "net" / f"node-{i + 1}", listen=ports[2 * i], api=ports[2 * i + 1]
        )
        for i in range(4)
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
    )
    net = Devnet(where=tmp_path / "net", genesis=genesis, nodes=[RunningNode(n) for n in nodes])
    refused = {s["rejected"] for s in scenario["steps"] if s["do"] == "expect" and "rejected" in s}
    with running(net):
        net.wait_ready()
        play = Play(net, tmp_path, members, capsys)
        for step in scenario["steps"]:
            if step["do"] == "expect":
                check(play, step)
            else:
                run_step(play, tmp_path, step, refused)
