"""The commands of a running network: `node start`, `status`, `contribute`, `devnet`.

`node start` runs a node in this process until SIGINT or SIGTERM. The others talk to a node's
local API (node/client.py); a node that does not answer is exit 3 with how to start one.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from cli.home import ensure_token, key_path, read_passphrase, read_token, resolve_home
from cli.keys import home_option, passphrase_option
from cli.ledger_cmds import read_genesis
from cli.output import console
from ledger.crypto import Keypair, Role
from ledger.files import read_key_file, write_private
from ledger.genesis import Genesis
from ledger.records import Body, Contribution, Record, sign_record
from ledger.store import Store
from node.client import Client
from node.config import NodeConfig, load
from node.errors import ConfigError, NodeError
from node.rules import commons_genesis, commons_rules
from node.shell.node import Node, NodeKeys

WAIT_S = 60.0


# the home as a node sees it


def open_keys(home: Path, passphrase_file: Path | None) -> dict[Role, Keypair]:
    """Every key of the home, asking for the passphrase once (only if a key is sealed)."""
    asked: list[bytes] = []

    def passphrase() -> bytes:
        if not asked:
            asked.append(read_passphrase(passphrase_file, confirm=False))
        return asked[0]

    keys = {}
    for role in Role:
        path = key_path(home, role)
        if not path.exists():
            raise ConfigError(f"{path} is missing: create a home with `commons init --home {home}`")
        keys[role] = read_key_file(path, passphrase).key
    return keys


def ensure_ledger(config: NodeConfig, keys: dict[Role, Keypair]) -> Genesis:
    """The genesis of this node's network, and a store for it. With no genesis in the home the
    node starts a network of its own: this member with 100 tokens, this validator alone."""
    if config.genesis.exists():
        genesis = read_genesis(config.genesis)  # its size checked before it is read
    else:
        genesis = commons_genesis(
            name=f"{config.home.name or 'commons'}-solo"[:64],
            time=int(time.time() * 1000),
            members={keys[Role.MEMBER].public_key: ("founder", 100)},
            validators={keys[Role.VALIDATOR].public_key: 1},
        )
        write_private(config.genesis, genesis.to_json())
        console.print(f"Started a new one-validator network; its genesis is {config.genesis}")
    if config.ledger.exists():
        with Store.open(config.ledger, rules=commons_rules) as store:
            if store.genesis.network_id != genesis.network_id:
                raise ConfigError(
                    f"{config.ledger} is a ledger of network {store.genesis.network_id.hex()[:16]}"
                    f", not of {genesis.network_id.hex()[:16]} ({config.genesis})"
                )
    else:
        Store.create(config.ledger, genesis, rules=commons_rules).close()
    return genesis


def client_for(home: Path | None, api: str | None = None) -> Client:
    where = resolve_home(home)
    config = load(where, api=api)
    return Client(config.api.url, read_token(where))


api_option = click.option(
    "--api", default=None, metavar="HOST:PORT", help="The node's local API (default: the home's)."
)


# logging


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        return json.dumps(doc)


def setup_logging(fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("commons")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


# commands


@click.group()
def node() -> None:
    """Run a node."""


@node.command("start")
@home_option
@passphrase_option
@click.option("--listen", default=None, metavar="HOST:PORT", help="Address for peers.")
@click.option("--api", default=None, metavar="HOST:PORT", help="Address of the local API.")
@click.option("--peer", "peers", multiple=True, metavar="URL", help="A peer to connect to.")
@click.option(
    "--genesis",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The network's genesis file (default: the home's; made for a new network if absent).",
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text")
def start(
    home: Path | None,
    passphrase_file: Path | None,
    listen: str | None,
    api: str | None,
    peers: tuple[str, ...],
    genesis: Path | None,
    log_format: str,
) -> None:
    """Run a node until SIGINT or SIGTERM (Ctrl-C)."""
    where = resolve_home(home)
    if not (where / "keys").is_dir():
        raise ConfigError(f"{where} is not a Commons home: create one with `commons init`")
    if genesis is not None and not genesis.is_file():
        raise click.UsageError(f"no genesis file at {genesis}")
    config = load(where, listen=listen, api=api, peers=peers, genesis=genesis)
    keys = open_keys(where, passphrase_file)
    ensure_ledger(config, keys)
    token = ensure_token(where)
    setup_logging(log_format)
    running = Node(config, NodeKeys(node=keys[Role.NODE], validator=keys[Role.VALIDATOR]), token)
    asyncio.run(_run(running, started=_collect_less))


async def _run(running: Node, started: Callable[[], None] = lambda: None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running:
        started()
        waits = [asyncio.ensure_future(event.wait()) for event in (stop, running.failed)]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
    if running.failure is not None:
        raise NodeError(f"the node stopped after an internal error: {running.failure!r}")


def _collect_less() -> None:
    """Tune the cycle collector of a node's process, once the node has started. Reference counting
    frees almost everything a node allocates per record (cycles are rare), while each collection of
    the oldest generation walks every object alive: what the node loaded at start is moved out of
    collections for good, and the youngest generation is collected 140 times less often (so the
    older ones are too). Measured with scripts/bench_network.py: about 5% less CPU per record; in
    four node cores driven in one process, collecting at 100,000 allocations rather than 20,000
    halved the collector's time (3.1 to 1.6 us per record per node)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 20, 10)


@click.command("status")
@home_option
@api_option
@click.option("--json", "as_json", is_flag=True, help="Print the node's answer as JSON.")
def status(home: Path | None, api: str | None, as_json: bool) -> None:
    """Where the node and its network stand."""
    doc = client_for(home, api).status()
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    synced = "synced" if doc["synced"] else f"not ready: {doc['waiting_for']}"
    ago = max(0, int(time.time() * 1000) - doc["time"]) // 1000
    console.print(f"network    {doc['name']} {doc['network'][:16]}")
    console.print(f"height     {doc['height']}  (last block {ago} s ago)  {synced}")
    console.print(f"mempool    {doc['mempool']} records")
    console.print(f"peers      {len(doc['peers'])}")
    for peer in doc["peers"]:
        console.print(f"  {peer['key'][:16]}  {peer['direction']}")
    console.print(f"validators {len(doc['validators'])}")
    for v in doc["validators"]:
        mark = " (this node)" if v["key"] == doc["validator_key"] else ""
        console.print(f"  {v['key'][:16]}  power {v['power']}{mark}")


@click.command("contribute")
@click.argument("title")
@click.option("--kind", default="code", show_default=True, help="What sort of work: [a-z0-9-].")
@click.option("--ref", "refs", multiple=True, metavar="URL", help="Where the work lives.")
@click.option("--hours", type=click.IntRange(0, 100_000), default=None)
@click.option("--description", default="")
@click.option("--wait", is_flag=True, help="Return once the record is final.")
@home_option
@passphrase_option
@api_option
def contribute(
    title: str,
    kind: str,
    refs: tuple[str, ...],
    hours: int | None,
    description: str,
    wait: bool,
    home: Path | None,
    passphrase_file: Path | None,
    api: str | None,
) -> None:
    """Record a contribution, signed with your member key, through your node."""
    where = resolve_home(home)
    body = Contribution(title=title, kind=kind, refs=refs, description=description, hours=hours)
    client = client_for(where, api)
    status_doc = client.status()
    member = read_key_file(
        key_path(where, Role.MEMBER), lambda: read_passphrase(passphrase_file, confirm=False)
    ).key
    record = sign_next(client, member, bytes.fromhex(status_doc["network"]), body)
    answer = client.submit(record.raw)
    console.print(f"record {answer['id']} {answer['status']}")
    if wait:
        height = wait_final(client, record.id)
        console.print(f"final in block {height}")


def sign_next(client: Client, key: Keypair, network: bytes, body: Body) -> Record:
    """`body` as the next record of `key`'s feed, as the node knows it (final and pending)."""
    feed = client.feed(key.public_key)["next"]
    at = max(int(time.time() * 1000), feed["min_at"])
    prev = bytes.fromhex(feed["prev"])
    return sign_record(key, network, seq=feed["seq"], prev=prev, timestamp=at, body=body)


def wait_final(client: Client, record_id: bytes, timeout: float = WAIT_S) -> int:
    deadline = time.monotonic() + timeout
    while True:
        asked = time.monotonic()
        left = deadline - asked
        wait = max(0.0, min(left, 30.0))
        doc = client.record(record_id, wait=wait)
        if doc["status"] == "final":
            return int(doc["height"])
        if left <= 0:
            raise click.ClickException(
                f"record {record_id.hex()} is not final after {timeout:.0f} s; it stays pending"
            )
        if time.monotonic() - asked < min(wait, 1.0):  # answered early: the node is busy
            time.sleep(1.0)
