"""`commons devnet`: a local network of N validator nodes, each its own process on loopback.

The first run makes DIR/genesis.json and one home per node (DIR/node-1 …, keys unencrypted: a
devnet is for trying things), each with a config.toml naming its ports and the other nodes as
peers; a later run on the same DIR starts the same network again where it stopped. Ctrl-C (or
SIGTERM) stops every node. One devnet runs on a DIR at a time (a lock on DIR/devnet.lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import click
from click.core import ParameterSource

from cli.home import key_path
from cli.output import console
from ledger.crypto import SEED_BYTES, Keypair, Role
from ledger.files import read_key_file, seal_key, write_private
from ledger.genesis import Genesis, Param
from node.config import load
from node.errors import ConfigError
from node.rules import commons_genesis

STOP_GRACE_S = 10.0
PARAMS = {"max_block_interval_ms": Param(value=5_000, min=1_000, max=3_600_000)}
"""A devnet's genesis makes an idle block every 5 s (the default is a minute): a validator that
starts after the others have decided a height signs only once it has watched two decided, and
on a devnet that should take seconds, not minutes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DevnetNode:
    home: Path
    listen: int
    api: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listen}"


def free_ports(count: int) -> list[int]:
    """`count` distinct ports nothing listens on now, below Linux's ephemeral range (32768 and
    up), so no outgoing connection of a running node can be holding one when a node listens."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(20_000, 32_000)  # noqa: S311 - not a secret
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in ports:
            ports.append(port)
    return ports


def layout(where: Path, count: int, base_port: int) -> list[DevnetNode]:
    return [
        DevnetNode(
            home=where / f"node-{i + 1}", listen=base_port + 2 * i, api=base_port + 2 * i + 1
        )
        for i in range(count)
    ]


def create(
    where: Path,
    nodes: list[DevnetNode],
    *,
    params: dict[str, Param] | None = None,
    members: Mapping[bytes, tuple[str, int]] | None = None,
    powers: list[int] | None = None,
) -> Genesis:
    """Homes, keys and one genesis for a new devnet in `where`; the genesis members are each
    node's member key with 100 tokens, unless `members` names others; each node is a validator
    of power 1, or of its entry in `powers`."""
    keys: list[dict[Role, Keypair]] = []
    for n in nodes:
        (n.home / "keys").mkdir(mode=0o700, parents=True, exist_ok=True)
        made = {role: Keypair.from_seed(os.urandom(SEED_BYTES)) for role in Role}
        for role, key in made.items():
            write_private(key_path(n.home, role), seal_key(role, key, None))
        keys.append(made)
    genesis = commons_genesis(
        name=f"devnet-{len(nodes)}",
        time=int(time.time() * 1000),
        members=members
        or {k[Role.MEMBER].public_key: (f"member{i + 1}", 100) for i, k in enumerate(keys)},
        validators={
            k[Role.VALIDATOR].public_key: 1 if powers is None else powers[i]
            for i, k in enumerate(keys)
        },
        params=params,
    )
    write_private(where / "genesis.json", genesis.to_json())
    for n in nodes:
        peers = ", ".join(f'"{o.url}"' for o in nodes if o is not n)
        config = (
            "# a devnet node: see `commons devnet --help`\n"
            "[node]\n"
            f'listen = "127.0.0.1:{n.listen}"\n'
            f'api = "127.0.0.1:{n.api}"\n'
            f"peers = [{peers}]\n\n"
            "[ledger]\n"
            f'genesis = "{(where / "genesis.json").resolve()}"\n'
        )
        write_private(n.home / "config.toml", config.encode())
    return genesis


def existing(where: Path) -> list[DevnetNode] | None:
    """The nodes of a devnet made before in `where`, as their config files say."""
    if not (where / "genesis.json").exists():
        return None
    found = []
    for home in sorted(where.glob("node-*"), key=lambda p: int(p.name.split("-")[1])):
        config = load(home, environ={})
        found.append(DevnetNode(home=home, listen=config.listen.port, api=config.api.port))
    if not found:
        raise ConfigError(
            f"{where} holds a genesis.json but no node-N homes: it is not a devnet folder "
            "(give --dir a new or empty folder)"
        )
    return found


@contextlib.contextmanager
def only_devnet_on(where: Path) -> Iterator[None]:
    """Hold DIR/devnet.lock while a devnet runs on `where`; ConfigError if another holds it."""
    with (where / "devnet.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another `commons devnet` runs on {where}: stop it first") from None
        yield


def start_node(n: DevnetNode, *, log_format: str = "text") -> subprocess.Popen[bytes]:
    log = (n.home / "node.log").open("ab")
    with log:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "cli", "node", "start", "--home", str(n.home),
             "--log-format", log_format],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env={**os.environ, "COMMONS_HOME": str(n.home)},
        )  # fmt: skip


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for p in processes:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@click.command()
@click.option("--nodes", "count", type=click.IntRange(1, 16), default=4, show_default=True)
@click.option("--dir", "where", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--base-port", type=click.IntRange(1024, 65000), default=7520, show_default=True)
def devnet(count: int, where: Path, base_port: int) -> None:
    """Run a local network of validator nodes until Ctrl-C; a node that exits is reported, and
    the others go on."""
    where = where.resolve()
    where.mkdir(parents=True, exist_ok=True)
    with only_devnet_on(where):
        _run(where, count, base_port)


def _run(where: Path, count: int, base_port: int) -> None:
    nodes = existing(where)
    if nodes is None:
        nodes = layout(where, count, base_port)
        genesis = create(where, nodes, params=PARAMS)
        console.print(f"Created devnet {genesis.network_id.hex()[:16]} of {count} nodes in {where}")
    else:
        console.print(f"Resuming the devnet of {len(nodes)} nodes in {where}")
        context = click.get_current_context()
        if any(
            context.get_parameter_source(name) is ParameterSource.COMMANDLINE
            for name in ("count", "base_port")
        ):
            console.print("  (--nodes and --base-port shape a new devnet; this one keeps its own)")
    member = read_key_file(key_path(nodes[0].home, Role.MEMBER), None).key
    processes = [start_node(n) for n in nodes]
    for n in nodes:
        console.print(
            f"  {n.home}  peers {n.url}  API http://127.0.0.1:{n.api}  log {n.home / 'node.log'}"
        )
    first = nodes[0].home
    console.print(f"\nTry:  commons status --home {first}")
    console.print(f'      commons contribute "My first contribution" --home {first} --wait')
    console.print(
        f"(member key of node-1: {member.public_key.hex()[:16]}…)  Ctrl-C stops every node."
    )
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = signal.signal(signal.SIGTERM, stop)
    watched = list(zip(nodes, processes, strict=True))
    try:
        while not stopping and watched:
            time.sleep(0.2)
            for n, p in [(n, p) for n, p in watched if p.poll() is not None]:
                watched.remove((n, p))
                console.print(
                    f"[red]{n.home.name} exited with {p.returncode}[/] (log {n.home / 'node.log'})"
                    + ("; the others go on" if watched else "")
                    + f". Start it again, on its own (Ctrl-C here does not stop it), with:\n"
                    f"  commons node start --home {n.home}"
                )
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_all(processes)
        console.print("Stopped every node.")
    if not watched and not stopping:
        raise click.ClickException("every node of the devnet has exited")
