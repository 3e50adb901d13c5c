"""The whole product on a real network, for `commons demo`: four validator nodes as processes on
loopback, members who register, contribute, delegate, propose and vote through the `commons`
commands, a validator killed and caught up again, and an audit of every node's home.

Each step says what it runs and checks what it should have done; the demo fails at the first
step that did not.
"""

from __future__ import annotations

import contextlib
import io
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape

from cli.devnet import DevnetNode, create, free_ports, start_node, stop_all
from cli.output import console
from ledger.genesis import Param
from node.client import ApiError, Client, Unreachable

NODES = 4
PARAMS = {
    # a community votes for days; the demo votes for seconds
    "voting_delay": Param(value=0, min=0, max=30 * 86_400),
    "voting_period": Param(value=6, min=1, max=90 * 86_400),
    "timelock": Param(value=2, min=0, max=30 * 86_400),
    "late_quorum_extension": Param(value=0, min=0, max=30 * 86_400),
    "max_block_interval_ms": Param(value=1_000, min=1_000, max=3_600_000),
}
WAIT_S = 60.0


class StepError(Exception):
    """A demo step did not do what it should."""


@dataclass
class Network:
    where: Path
    nodes: list[DevnetNode]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def client(self, i: int) -> Client:
        return Client(f"http://127.0.0.1:{self.nodes[i].api}")

    def home(self, i: int) -> str:
        return str(self.nodes[i].home)

    def heights(self, count: int = NODES) -> list[int]:
        """The heights of the first `count` nodes."""
        return [int(self.client(i).status()["height"]) for i in range(count)]


def wait_until(check: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    """Poll `check` until it answers something true; StepError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Unreachable, ApiError):
            value = check()
            if value:
                return value
        if time.monotonic() > deadline:
            raise StepError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


@contextlib.contextmanager
def network(where: Path) -> Iterator[Network]:
    """A new devnet of `NODES` validators in `where`, running until the block ends."""
    ports = free_ports(2 * NODES)
    nodes = [
        DevnetNode(home=where / f"node-{i + 1}", listen=ports[2 * i], api=ports[2 * i + 1])
        for i in range(NODES)
    ]
    create(where, nodes, params=PARAMS)
    net = Network(where=where, nodes=nodes)
    net.processes = [start_node(n) for n in nodes]
    try:
        yield net
    finally:
        stop_all(net.processes)


def commons(*args: str) -> str:
    """Run `commons ARGS` in this process as a user would, showing the command line; its output
    (StepError with it if the command failed)."""
    from cli.main import main  # noqa: PLC0415 - the demo is itself one of main's commands

    console.print(f"   [dim]$ commons {escape(shlex.join(args))}[/]")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    if code != 0:
        raise StepError(f"`commons {shlex.join(args)}` exited {code}: {err.getvalue().strip()}")
    return out.getvalue()


def record_id(out: str) -> str:
    return out.split("record ", 1)[1].split(maxsplit=1)[0]


def run(where: Path) -> bool:
    """The network story; True if every step did what it should."""
    step = 0

    def say(text: str) -> None:
        nonlocal step
        step += 1
        console.print(f"[bold]{step}.[/] {text}")

    try:
        with network(where) as net:
            _story(net, say)
        say("Stopped every node; auditing each home from genesis (signatures, feeds, roots)")
        for i in range(NODES):
            commons("audit", "--home", str(where / f"node-{i + 1}"))
        console.print("   [green]every home audits clean[/], state roots included")
    except (StepError, Unreachable, ApiError) as e:
        console.print(f"   [red]✗ {escape(str(e))}[/]")
        return False
    return True


def _story(net: Network, say: Callable[[str], None]) -> None:
    say(f"Started {NODES} validator nodes (separate processes) on loopback in {net.where}")
    wait_until(lambda: all(net.client(i).get("/ready") for i in range(NODES)), "the nodes ready")
    console.print(f"   network {net.client(0).status()['network'][:16]}, every node ready")

    say("A newcomer, ada, registers through node-2 and records her work there")
    ada = net.where / "ada"
    commons("init", "--home", str(ada), "--plaintext-keys")
    (ada / "api.token").write_bytes((net.nodes[1].home / "api.token").read_bytes())
    api2 = f"127.0.0.1:{net.nodes[1].api}"
    commons("register", "--name", "ada", "--home", str(ada), "--api", api2)
    out = commons("contribute", "Wrote the user guide", "--kind", "docs", "--wait",
                  "--home", str(ada), "--api", api2)  # fmt: skip
    guide = record_id(out)
    commons("contribute", "Fixed the sync bug", "--wait", "--home", net.home(0))
    console.print(f"   ada's guide is {guide[:12]}; member1 contributed at node-1")

    say("member3 endorses the guide at node-3; member4 delegates its 100 votes to member2")
    commons("endorse", guide[:10], "--comment", "clear and complete", "--home", net.home(2))
    commons("delegate", "member2", "--home", net.home(3))
    power = net.client(0).get("/api/members/member2")["power"]
    _check(power == 200, f"member2's voting power is {power}, not 200")
    console.print("   member2 now votes with 200, member1 and member3 with 100 each")

    say("member1 proposes 5 tokens for ada's guide; member3 proposes renaming the project")
    reward = record_id(commons(
        "propose", "reward", "--to", "ada", "--amount", "5", "--contribution", guide[:10],
        "--title", "Reward the user guide", "--home", net.home(0),
    ))  # fmt: skip
    rename = record_id(
        commons("propose", "text", "--title", "Rename to Agora", "--home", net.home(2))
    )
    wait_until(
        lambda: _state(net, reward) == _state(net, rename) == "Active", "voting to open on both"
    )

    say("Members vote with different weights, at different nodes")
    commons("vote", reward[:10], "for", "--reason", "great docs", "--home", net.home(1))
    commons("vote", reward[:10], "against", "--home", net.home(2))
    commons("vote", rename[:10], "for", "--home", net.home(2))
    commons("vote", rename[:10], "against", "--home", net.home(1))
    doc = net.client(0).get(f"/api/proposals/{reward}")
    console.print(
        f"   reward: for {doc['votes']['for']} against {doc['votes']['against']}, quorum "
        f"{doc['quorum']['reached']} of {doc['quorum']['needed']} needed"
    )

    say("While voting runs, validator node-4 is killed (SIGKILL) and started again")
    victim = net.processes[3]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = max(net.heights(3))
    wait_until(lambda: min(net.heights(3)) > killed_at + 1, "the other three to go on")
    net.processes[3] = start_node(net.nodes[3])
    top = max(net.heights(3))
    wait_until(lambda: net.client(3).status()["height"] >= top, "node-4 to catch up")
    wait_until(lambda: net.client(3).get("/ready"), "node-4 ready")
    console.print(f"   the others went on without it; node-4 caught up past height {top}")

    say("The deadline passes: the reward is queued, then executed after its 2 s timelock")
    wait_until(lambda: _state(net, reward) == "Executed", "the reward to execute")
    wait_until(lambda: _state(net, rename) == "Defeated", "the rename to be defeated")
    balance = net.client(2).get("/api/members/ada")["balance"]
    _check(balance == 5, f"ada's balance is {balance}, not 5")
    reason = net.client(0).get(f"/api/proposals/{rename}")["reason"]
    console.print(f"   ada's balance: 0 → {balance}; the rename is Defeated ({reason})")
    heights = net.heights()
    wait_until(lambda: min(net.heights()) >= max(heights), "every node at the same height")
    ids = {net.client(i).get(f"/api/blocks/{max(heights)}")["header"]["id"] for i in range(4)}
    _check(len(ids) == 1, f"the nodes disagree on block {max(heights)}")
    console.print(f"   all four nodes hold the same block {max(heights)}")


def _state(net: Network, pid: str) -> str:
    return str(net.client(0).get(f"/api/proposals/{pid}")["state"])


def _check(ok: bool, failure: str) -> None:
    if not ok:
        raise StepError(failure)
