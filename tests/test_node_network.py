"""Real nodes on loopback: separate processes, real sockets, real SQLite, real signatures.

Each test starts `commons node start` processes (tests/netkit.py) and waits on conditions read
through the nodes' local APIs, never on fixed sleeps.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from netkit import Devnet, RunningNode, free_ports, joiner, make_devnet, running, wait_for

from cli.devnet import DevnetNode
from cli.home import key_path
from cli.main import main
from ledger.crypto import Role
from ledger.files import read_key_file
from ledger.records import Contribution, Record, sign_record
from ledger.store import Store
from ledger.vote_evidence import DoubleVote, Vote
from node.client import ApiError, Client
from node.consensus.effects import PersistedState
from node.core import CONSENSUS_STATE, EXTEND_FROM
from node.policy.signing import WATCH_HEIGHTS
from node.rules import commons_rules
from node.shell.api import MAX_WAITING
from node.wire import decode_records

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    if home is not None:
        env["COMMONS_HOME"] = str(home)
    result = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def block_ids(node: RunningNode, upto: int) -> list[tuple[str, str]]:
    out = []
    for h in range(1, upto + 1):
        header = node.get(f"/api/blocks/{h}")["header"]
        out.append((header["id"], header["state_root"]))
    return out


def same_chain(net: Devnet, nodes: list[RunningNode] | None = None) -> int:
    """Every node agrees on every block id and state root up to the lowest tip among them."""
    nodes = nodes or [n for n in net.nodes if n.alive]
    top = min(n.height() for n in nodes)
    reference = block_ids(nodes[0], top)
    for n in nodes[1:]:
        assert block_ids(n, top) == reference, f"{n.home.name} disagrees with {nodes[0].home.name}"
    return top


def audit(home: Path) -> None:
    result = cli("audit", "--home", str(home))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "intact" in result.stdout


def contribute(node: RunningNode, title: str, *, wait: bool = True) -> str:
    args = ["contribute", title, "--home", str(node.home), "--kind", "docs", "--api", node.api[7:]]
    result = cli(*args, *(["--wait"] if wait else []))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.split()[1]


def next_record(node: RunningNode, title: str) -> Record:
    """The node's member's next record, signed here (as the CLI signs it)."""
    member = read_key_file(node.home / "keys" / "member.key", None).key
    feed = Client(node.api).feed(member.public_key)["next"]
    return sign_record(
        member,
        bytes.fromhex(node.status()["network"]),
        seq=feed["seq"],
        prev=bytes.fromhex(feed["prev"]),
        timestamp=max(int(time.time() * 1000), feed["min_at"]),
        body=Contribution(title=title, kind="code"),
    )


def token_of(node: RunningNode) -> str:
    return (node.home / "api.token").read_text().strip()


def submit(node: RunningNode, title: str) -> str:
    """Submit the node's member's next record through the node's API."""
    record = next_record(node, title)
    return str(Client(node.api, token_of(node)).submit(record.raw)["id"])


@pytest.fixture
def devnet4(tmp_path: Path) -> Devnet:
    return make_devnet(tmp_path / "net", 4)


def test_contributions_at_different_nodes_are_final_everywhere(devnet4: Devnet) -> None:
    with running(devnet4) as net:
        net.wait_ready()
        ids = [contribute(n, f"work done at {n.home.name}") for n in net.nodes]
        for n in net.nodes:
            for record_id in ids:
                wait_for(
                    lambda n=n, r=record_id: n.get(f"/api/records/{r}")["status"] == "final",
                    30,
                    f"{record_id[:16]} final at {n.home.name}",
                )
        top = same_chain(net)
        assert top >= 1
        statuses = [n.status() for n in net.nodes]
        assert len({s["network"] for s in statuses}) == 1
        assert all(len(s["peers"]) == 3 for s in statuses)
        net.stop()
    for n in devnet4.nodes:
        audit(n.home)


def test_a_node_started_later_with_only_a_peer_and_the_genesis_syncs_everything(
    devnet4: Devnet, tmp_path: Path
) -> None:
    with running(devnet4) as net:
        net.wait_ready()
        for i in range(3):
            contribute(net.nodes[i], f"early work {i}")
        while net.nodes[0].height() < 3 * EXTEND_FROM:  # more than pushed decisions bring
            record_id = submit(net.nodes[0], "more history")
            Client(net.nodes[0].api).record(bytes.fromhex(record_id), wait=30)
        top = net.nodes[0].height()
        late_home = tmp_path / "late"
        assert main(["init", "--home", str(late_home), "--plaintext-keys"]) == 0
        late = joiner(net, late_home)
        late.start()
        try:
            wait_for(lambda: late.height() >= top, 60, "the late node to catch up")
            wait_for(late.ready, 30, "the late node ready")
            same_chain(net, [net.nodes[0], late])
            assert "sync: stored blocks" in late.log()  # a run went through Store.extend
            # a record submitted at the node with one peer reaches the others through it (as
            # an announcement they ask for) and is final on every node
            record = next_record(net.nodes[1], "through the late node")
            Client(late.api, token_of(late)).submit(record.raw)
            for node in (*net.nodes, late):
                assert Client(node.api).record(record.id, wait=30)["status"] == "final"
        finally:
            late.stop()
    audit(late_home)


def test_a_validator_key_restored_elsewhere_signs_only_once_the_original_is_gone(
    devnet4: Devnet, tmp_path: Path
) -> None:
    """A home made anew around node-4's validator key joins while node-4 still runs: it sees
    node-4's votes signed with its own key and never joins; once node-4 is gone it watches two
    heights, then signs, and the network never saw two votes from that key."""
    with running(devnet4) as net:
        net.wait_ready()
        # on a network that has decided nothing yet every validator signs at once (none could
        # watch): the clone must come to a network that has started
        wait_for(lambda: net.nodes[0].height() >= 1, 60, "the first block")
        original = net.nodes[3]
        clone_home = tmp_path / "clone"
        assert main(["init", "--home", str(clone_home), "--plaintext-keys"]) == 0
        key_path(clone_home, Role.VALIDATOR).write_bytes(
            key_path(original.home, Role.VALIDATOR).read_bytes()
        )
        clone = joiner(net, clone_home)
        clone.start()
        try:
            wait_for(lambda: "another node runs this key" in clone.log(), 60, "the clone alarmed")
            top = net.nodes[0].height()
            wait_for(lambda: net.nodes[0].height() >= top + 3, 60, "three more blocks")
            assert "joined consensus" not in clone.log()
            assert not clone.ready()  # nor does it take records
            original.kill()
            wait_for(lambda: "joined consensus" in clone.log(), 60, "the clone to join")
            wait_for(clone.ready, 30, "the clone ready")
            contribute(clone, "signed through the restored key's node")
        finally:
            clone.stop()
        for n in net.nodes[:3]:
            assert "signed two votes" not in n.log()
        same_chain(net, net.nodes[:3])


def test_the_api_refuses_bad_tokens_and_bad_records_and_is_idempotent(devnet4: Devnet) -> None:
    with running(devnet4) as net:
        net.wait_ready()
        node = net.nodes[0]
        token = token_of(node)
        record = next_record(node, "through the API")
        for bad in (None, "0" * 64):
            with pytest.raises(Exception, match="token"):
                Client(node.api, bad).submit(record.raw)
        forged = bytearray(record.raw)
        forged[-1] ^= 1
        with pytest.raises(Exception, match="bad signature") as refused:
            Client(node.api, token).submit(bytes(forged))
        assert refused.value.rule == "signature"  # type: ignore[attr-defined]
        with pytest.raises(Exception, match="record") as malformed:
            Client(node.api, token).submit(b"\x81\xa1a\x01")
        assert malformed.value.status == 400  # type: ignore[attr-defined]
        first = Client(node.api, token).submit(record.raw)
        again = Client(node.api, token).submit(record.raw)
        assert first["id"] == again["id"] == record.id.hex()
        assert first["status"] == "accepted"
        assert again["status"] in ("known", "final")
        Client(node.api).record(record.id, wait=30)
        wait_for(lambda: node.get(f"/api/records/{record.id.hex()}")["status"] == "final", 30)
        final = Client(node.api, token).submit(record.raw)
        assert final["status"] == "final"
        # a batch: each record answered as it would be alone, in order, whatever the others are
        fresh = next_record(node, "in a batch")
        batch = [fresh.raw, bytes(forged), record.raw, b"\xc1", fresh.raw]
        doc = Client(node.api, token).post("/api/records", {"records": [r.hex() for r in batch]})
        assert [(a["code"], a.get("status"), a.get("rule")) for a in doc["results"]] == [
            (202, "accepted", None),
            (400, None, "signature"),
            (200, "final", None),
            (400, None, "encoding"),
            (200, "known", None),
        ]
        Client(node.api).record(fresh.id, wait=30)
        for body in ({"records": []}, {"records": ["zz"]}, {"records": ["00"] * 1025}, {"a": 1}):
            with pytest.raises(ApiError, match="the body must be JSON") as not_a_batch:
                Client(node.api, token).post("/api/records", body)
            assert not_a_batch.value.status == 400
        with pytest.raises(ApiError, match="token"):
            Client(node.api, None).post("/api/records", {"records": [fresh.raw.hex()]})
        with pytest.raises(ApiError) as too_large:  # read no further than 16 MiB
            Client(node.api, token).post("/api/records", {"records": ["00" * 9 * 1024 * 1024]})
        assert too_large.value.status == 413
        # a block asked for before the node has it is answered once it does
        ahead = node.status()["height"] + 2
        assert node.get(f"/api/blocks/{ahead}?wait=60", timeout=70)["header"]["height"] == ahead
        with pytest.raises(urllib.error.HTTPError, match="400"):
            node.get(f"/api/blocks/{ahead}?wait=121")
        assert asyncio.run(answered_past_the_waiting_bound(node.api)) == 404
        # peers pull records by id over HTTP: known ones in the order asked, unknown ones left out
        other = net.nodes[1].spec.url
        ids = f"{bytes(32).hex()},{record.id.hex()}"
        with urllib.request.urlopen(f"{other}/p2p/records?ids={ids}", timeout=5) as answer:  # noqa: S310
            assert [r.raw for r in decode_records(answer.read())] == [record.raw]
        with pytest.raises(urllib.error.HTTPError, match="400") as bad:
            urllib.request.urlopen(f"{other}/p2p/records?ids=beef", timeout=5)  # noqa: S310
        bad.value.close()


async def answered_past_the_waiting_bound(api: str) -> int:
    """44 more requests than MAX_WAITING ask for a block far ahead, waiting up to 60 s: whatever
    order they arrive in, MAX_WAITING wait and the others are answered at once (their status is
    returned). Once the waiting clients go away, their places are free again at once: the next
    request waits its second."""
    far = f"{api}/api/blocks/{10**9}?wait="
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def ask(wait: int) -> int:
            async with session.get(far + str(wait)) as answer:
                return answer.status

        asked = [asyncio.ensure_future(ask(60)) for _ in range(MAX_WAITING + 44)]
        done, waiting = await asyncio.wait(asked, timeout=6)
        assert (len(done), len(waiting)) == (44, MAX_WAITING)
        statuses = {task.result() for task in done}
        for task in waiting:  # their clients go away, closing their connections
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        deadline = time.monotonic() + 10
        while True:  # once the node has seen them go, a request waits again
            start = time.monotonic()
            assert await ask(1) == 404
            if time.monotonic() - start >= 1:
                break
            assert time.monotonic() < deadline, "the places of clients gone were not given back"
            await asyncio.sleep(0.2)
        (status,) = statuses
        return status


def test_status_and_contribute_with_no_node_running_exit_3(tmp_path: Path) -> None:
    home = tmp_path / "h"
    assert main(["init", "--home", str(home), "--plaintext-keys"]) == 0
    result = cli("status", "--home", str(home), "--api", "127.0.0.1:9")
    assert result.returncode == 3
    assert "commons node start" in result.stderr
    result = cli("contribute", "x", "--home", str(home), "--api", "127.0.0.1:9")
    assert result.returncode == 3


def test_one_node_with_no_genesis_runs_its_own_network_and_resumes_after_restart(
    tmp_path: Path,
) -> None:
    home = tmp_path / "solo"
    assert main(["init", "--home", str(home), "--plaintext-keys"]) == 0
    from netkit import free_ports

    listen, api = free_ports(2)
    solo = RunningNode(
        DevnetNode(home=home, listen=listen, api=api),
        extra=("--listen", f"127.0.0.1:{listen}", "--api", f"127.0.0.1:{api}"),
    )
    solo.start()
    try:
        wait_for(solo.ready, 30, "the solo node ready")
        first = contribute(solo, "solo work")
        height = solo.height()
        assert solo.stop() == 0
        assert (home / "genesis.json").exists()
        solo.start()
        wait_for(solo.ready, 30, "the solo node ready again")
        assert solo.height() >= height
        assert solo.get(f"/api/records/{first}")["status"] == "final"
        contribute(solo, "more solo work")
        assert "started" in solo.log()
        assert "finalized" in solo.log()
    finally:
        if solo.alive:
            assert solo.stop() == 0
    audit(home)
    with Store.open(home / "ledger.sqlite", rules=commons_rules) as store:
        assert store.record_count() >= 2
    assert read_key_file(home / "keys" / "member.key", None).role is Role.MEMBER


def persisted_state(home: Path) -> PersistedState | None:
    """The validator's persisted consensus state."""
    with Store.open(home / "ledger.sqlite", rules=commons_rules, snapshot=True) as store:
        raw = store.node_value(CONSENSUS_STATE)
    return None if raw is None else PersistedState.decode(raw)


def double_votes_on_chain(home: Path) -> list[DoubleVote]:
    with Store.open(home / "ledger.sqlite", rules=commons_rules, snapshot=True) as store:
        blocks = [store.block(h) for h in range(1, store.tip.height + 1)]
    return [
        r.body for b in blocks if b is not None for r in b.records if isinstance(r.body, DoubleVote)
    ]


@pytest.mark.crash
def test_a_validator_sigkilled_50_times_never_double_signs_and_the_others_keep_going(
    devnet4: Devnet,
) -> None:
    import random

    rng = random.Random(20261203)
    with running(devnet4) as net:
        net.wait_ready()
        victim, others = net.nodes[0], net.nodes[1:]
        positions: list[tuple[int, int, int]] = []
        signed: dict[tuple[int, int, str], bytes] = {}
        """(height, round, type) -> the vote the victim signed there, across all its lives."""
        for kill in range(50):
            submit(others[kill % 3], f"record during kill {kill}")
            time.sleep(rng.uniform(0.0, 0.6))  # a random moment, not a wait for a condition
            victim.kill()
            state = persisted_state(victim.home)
            if state is not None:
                # the persisted (height, round, step) never goes back ...
                position = (state.height, state.round, int(state.step))
                assert not positions or position >= positions[-1], (positions[-1], position)
                positions.append(position)
                # ... and no (height, round, type) ever got two different votes
                for m in state.signed:
                    if isinstance(m, Vote):
                        seen = signed.setdefault((m.height, m.round, m.type), m.block_id)
                        assert seen == m.block_id, (m.height, m.round, m.type)
            before = max(n.height() for n in others)
            victim.start()
            wait_for(
                lambda b=before: min(n.height() for n in others) > b, 30, "the others finalize"
            )
        wait_for(victim.ready, 60, "the victim to catch up")
        top = max(n.height() for n in others)
        net.wait_height(top)
        same_chain(net)
        for n in others:
            assert "signed two votes" not in n.log(), n.log()[-2000:]
        net.stop()
    assert len(positions) >= 40  # the victim had signed before nearly every kill
    for n in devnet4.nodes:
        audit(n.home)
        assert double_votes_on_chain(n.home) == []


def test_a_partition_of_half_the_validators_halts_finality_then_resumes_without_a_fork(
    devnet4: Devnet,
) -> None:
    with running(devnet4) as net:
        net.wait_ready()
        contribute(net.nodes[0], "before the partition")
        for n in net.nodes[2:]:
            assert n.stop() == 0
        halted = max(n.height() for n in net.nodes[:2])
        pending = contribute(net.nodes[0], "during the partition", wait=False)
        deadline = time.monotonic() + 6  # three empty-block intervals: nothing may finalize
        while time.monotonic() < deadline:
            assert max(n.height() for n in net.nodes[:2]) <= halted + 1
            time.sleep(0.2)
        stuck = max(n.height() for n in net.nodes[:2])
        for n in net.nodes[2:]:
            n.start()
        net.wait_ready()
        wait_for(
            lambda: net.nodes[0].get(f"/api/records/{pending}")["status"] == "final",
            60,
            "the record from the partition to be final",
        )
        assert net.nodes[0].height() > stuck
        net.wait_height(net.nodes[0].height())
        same_chain(net)


def test_own_records_not_final_survive_a_sigkill_and_are_sent_again(tmp_path: Path) -> None:
    """Two validators of equal power: with one stopped nothing is final. A record submitted then
    lives only in node-1's outbox; node-1 is SIGKILLed, both restart, and the record is final."""
    net = make_devnet(tmp_path / "net", 2)
    with running(net):
        net.wait_ready()
        one, two = net.nodes
        assert two.stop() == 0
        pending = submit(one, "kept across a crash")
        assert one.get(f"/api/records/{pending}")["status"] == "pending"
        one.kill()
        one.start()
        two.start()
        wait_for(
            lambda: two.get(f"/api/records/{pending}")["status"] == "final",
            60,
            "the record kept by node-1 to be final at node-2",
        )
        assert one.get(f"/api/records/{pending}")["status"] == "final"


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    import json

    net = make_devnet(tmp_path / "net", 1)
    node = net.nodes[0]
    node.extra = ("--log-format", "json")
    with running(net):
        net.wait_ready()
        submit(node, "logged as json")
        wait_for(lambda: "finalized: 1 records" in node.log(), 30, "a block with the record")
        assert node.stop() == 0
    events = [json.loads(line) for line in node.log().splitlines()]
    assert {"time", "level", "event"} <= set(events[0])
    assert events[0]["event"].startswith("started")
    assert events[-1]["event"] == "stopped"


def test_a_node_that_has_not_caught_up_refuses_records_and_is_not_ready(
    devnet4: Devnet, tmp_path: Path
) -> None:
    """A member's key restored on a new machine must not extend its feed from a stale head: the
    node refuses submissions (and signs nothing) until it has caught up with a peer."""
    home = tmp_path / "restored"
    assert main(["init", "--home", str(home), "--plaintext-keys"]) == 0
    (dead,) = free_ports(1)
    listen, api = free_ports(2)
    node = RunningNode(
        DevnetNode(home=home, listen=listen, api=api),
        extra=(
            "--genesis", str(devnet4.where / "genesis.json"),
            "--peer", f"http://127.0.0.1:{dead}",
            "--listen", f"127.0.0.1:{listen}",
            "--api", f"127.0.0.1:{api}",
        ),
    )  # fmt: skip
    node.start()
    try:
        wait_for(lambda: node.status()["height"] == 0, 30, "the node's API")
        assert not node.ready()
        with pytest.raises(ApiError, match="waiting to hear from a peer") as refused:
            submit(node, "from a stale head")
        assert refused.value.status == 503
        shown = cli("status", "--home", str(home), "--api", f"127.0.0.1:{api}")
        assert shown.returncode == 0
        assert "not ready: waiting to hear from a peer" in shown.stdout
    finally:
        assert node.stop() == 0


def test_a_node_whose_logic_fails_stops_with_an_error_instead_of_idling_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault injected into the core's tick (as a full disk would raise from the store): the
    node must end `node start` with a clear error, not keep its sockets open doing nothing."""
    import asyncio

    from cli.home import ensure_token
    from cli.main import exit_code
    from cli.node_cmds import _run, ensure_ledger, open_keys
    from node.config import load
    from node.core import NodeCore
    from node.errors import NodeError
    from node.shell.node import Node, NodeKeys

    home = tmp_path / "h"
    assert main(["init", "--home", str(home), "--plaintext-keys"]) == 0
    listen, api = free_ports(2)
    config = load(home, listen=f"127.0.0.1:{listen}", api=f"127.0.0.1:{api}")
    keys = open_keys(home, None)
    ensure_ledger(config, keys)
    node = Node(
        config, NodeKeys(node=keys[Role.NODE], validator=keys[Role.VALIDATOR]), ensure_token(home)
    )

    def broken(self: NodeCore, now: int) -> list[object]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(NodeCore, "tick", broken)
    with pytest.raises(NodeError, match=r"internal error.*No space left") as stopped:
        asyncio.run(asyncio.wait_for(_run(node), 30))
    assert exit_code(stopped.value) not in (None, 0)
    audit(home)  # what it committed before is intact


def test_the_devnet_command_runs_reports_a_dead_node_stops_on_ctrl_c_and_resumes(
    tmp_path: Path,
) -> None:
    """`commons devnet` as a user runs it: four nodes, a contribution final, one node killed (the
    command says so and how to start it again; the others go on finalizing), Ctrl-C stops every
    node, and a second run on the same folder resumes the same chain."""
    where = tmp_path / "dn"
    base = random.randrange(12_000, 30_000, 10)  # below the ephemeral ports free_ports hands out
    homes = [where / f"node-{i}" for i in range(1, 5)]

    def run() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "devnet", "--nodes", "4", "--dir", str(where),
             "--base-port", str(base)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def api(i: int) -> str:
        return f"http://127.0.0.1:{base + 2 * i + 1}"

    def height(i: int) -> int:
        return int(Client(api(i)).status()["height"])

    def ready(i: int) -> bool:
        try:
            with urllib.request.urlopen(f"{api(i)}/ready", timeout=5) as answer:  # noqa: S310
                return bool(answer.status == 200)
        except urllib.error.HTTPError as not_yet:  # 503 until it is ready
            not_yet.close()
            return False

    def contribute_at(i: int, title: str) -> None:
        args = ["contribute", title, "--home", str(homes[i]), "--api", api(i)[7:], "--wait"]
        result = cli(*args)
        assert result.returncode == 0, result.stdout + result.stderr

    first = run()
    try:
        for i in range(4):
            wait_for(lambda i=i: ready(i), 60, f"node-{i + 1} ready")
        contribute_at(1, "made on a devnet")
        victim = next(  # node-3's own process, found as a user would (ps)
            int(pid.name)
            for pid in Path("/proc").iterdir()
            if pid.name.isdigit() and f"{homes[2]}\0".encode() in (pid / "cmdline").read_bytes()
        )
        again = cli("devnet", "--nodes", "4", "--dir", str(where), "--base-port", str(base))
        assert again.returncode == 2
        assert "another `commons devnet` runs on" in again.stderr
        os.kill(victim, signal.SIGKILL)
        before = height(0)
        contribute_at(0, "made while node-3 is down")
        assert height(0) > before
        assert first.poll() is None  # the devnet goes on
    finally:
        first.send_signal(signal.SIGINT)
        out, _ = first.communicate(timeout=60)
    assert first.returncode == 0, out
    assert "node-3 exited with -9" in out
    assert f"commons node start --home {homes[2]}" in out
    assert "Stopped every node." in out
    stored = [Store.open(home / "ledger.sqlite", rules=commons_rules) for home in homes[:2]]
    reached = min(s.tip.height for s in stored)
    for s in stored:
        s.close()

    second = run()
    try:
        for i in (0, 1, 3):
            wait_for(lambda i=i: ready(i), 60, f"node-{i + 1} ready again")
        # node-3 missed a block: it signs again once it has watched heights decided, which an
        # idle devnet makes every 5 s, and records waiting make at once
        for _ in range(WATCH_HEIGHTS):
            contribute_at(0, "made after the restart")
        wait_for(lambda: ready(2), 90, "node-3 ready again")
        assert height(2) >= reached  # node-3 caught up with what the others made without it
        contribute_at(2, "made at node-3 after the restart")
    finally:
        second.send_signal(signal.SIGINT)
        out, _ = second.communicate(timeout=60)
    assert second.returncode == 0, out
    assert "Resuming the devnet of 4 nodes" in out


def test_the_devnet_command_refuses_a_folder_with_a_genesis_but_no_nodes(tmp_path: Path) -> None:
    (tmp_path / "genesis.json").write_text("{}")
    result = cli("devnet", "--dir", str(tmp_path))
    assert result.returncode == 2
    assert "not a devnet folder" in result.stderr
