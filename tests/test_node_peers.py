"""Bad peers against a real node on loopback: each is refused or disconnected with the reason
logged, and the node keeps finalizing blocks and serving its honest peers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import urllib.error
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from netkit import Devnet, RunningNode, make_devnet, running, wait_for

from ledger.crypto import Keypair
from ledger.files import read_key_file
from ledger.records import Contribution, sign_record
from node.shell import peers
from node.wire import Hello, Push, Session, decode_hello, decode_push, encode_auth, encode_push


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Devnet]:
    """Two validators of power 1 each: both must vote, so a block proves both are healthy."""
    net = make_devnet(tmp_path / "net", 2)
    with running(net):
        net.wait_ready()
        yield net


def keeps_finalizing(node: RunningNode) -> None:
    height = node.height()
    wait_for(lambda: node.height() > height, 30, f"{node.home.name} to finalize another block")


def ws_url(node: RunningNode) -> str:
    return f"{node.spec.url}/p2p/ws"


def stranger() -> Keypair:
    return Keypair.from_seed(os.urandom(32))


async def closed(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    """The next message, expected to be the node closing the connection."""
    while True:
        message = await ws.receive(timeout=10)
        if message.type is aiohttp.WSMsgType.BINARY:
            continue  # pushes sent before the node read our frame
        return message


@contextlib.asynccontextmanager
async def authenticated(
    session: aiohttp.ClientSession, node: RunningNode, network: bytes, key: Keypair
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A peer connection past the handshake, closed (and its socket released) on leaving."""
    async with session.ws_connect(ws_url(node), max_msg_size=0) as ws:
        assert await peers.initiate(ws, key, network)
        yield ws


def network_of(net: Devnet) -> bytes:
    return net.genesis.network_id


def test_garbage_before_the_handshake_is_refused(pair: Devnet) -> None:
    node = pair.nodes[0]

    async def attack() -> aiohttp.WSMessage:
        async with aiohttp.ClientSession() as s, s.ws_connect(ws_url(node)) as ws:
            await ws.send_bytes(b"\x00\x01garbage")
            return await closed(ws)

    message = asyncio.run(attack())
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    wait_for(lambda: "does not decode" in node.log(), 10, "the refusal logged")
    keeps_finalizing(node)


def test_the_wrong_network_is_refused(pair: Devnet) -> None:
    node = pair.nodes[0]

    async def attack() -> aiohttp.WSMessage:
        async with aiohttp.ClientSession() as s, s.ws_connect(ws_url(node)) as ws:
            hello = Hello(key=stranger().public_key, network=bytes(32), nonce=os.urandom(32))
            await ws.send_bytes(hello.encode())
            return await closed(ws)

    message = asyncio.run(attack())
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    wait_for(lambda: "is on network" in node.log(), 10, "the refusal logged")
    keeps_finalizing(node)


def test_a_forged_handshake_is_refused(pair: Devnet) -> None:
    """A stranger claims the other validator's node key, but cannot sign for it."""
    node, other = pair.nodes
    claimed = read_key_file(other.home / "keys" / "node.key", None).key.public_key
    network = network_of(pair)

    async def attack() -> aiohttp.WSMessage:
        async with aiohttp.ClientSession() as s, s.ws_connect(ws_url(node)) as ws:
            mine = Hello(key=claimed, network=network, nonce=os.urandom(32))
            await ws.send_bytes(mine.encode())
            answer = await ws.receive(timeout=10)
            theirs = decode_hello(answer.data, network=network, signed=True)
            session = Session(network=network, initiator=mine, responder=theirs)
            await ws.send_bytes(encode_auth(session.sign(stranger(), "initiator")))
            return await closed(ws)

    message = asyncio.run(attack())
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    wait_for(lambda: "signature does not verify" in node.log(), 10, "the refusal logged")
    keeps_finalizing(node)
    assert len(node.status()["peers"]) == 1  # the real other validator is still there


def test_an_oversize_frame_disconnects(pair: Devnet) -> None:
    node = pair.nodes[0]
    network = network_of(pair)

    async def attack() -> bool:
        async with aiohttp.ClientSession() as s, authenticated(s, node, network, stranger()) as ws:
            try:
                await ws.send_bytes(bytes(40 * 1024 * 1024))
                message = await closed(ws)
            except ConnectionError:
                return True  # the node hung up while the frame was still on its way
            return message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)

    assert asyncio.run(attack())
    wait_for(lambda: "exceeds" in node.log(), 10, "the disconnection logged")
    keeps_finalizing(node)


def test_a_record_with_a_bad_signature_disconnects_its_sender(pair: Devnet) -> None:
    """In one frame, a good record and then a forged one: the good one is kept (its checks
    passed before the forged one was read), the forged one is not, the sender is dropped."""
    node = pair.nodes[0]
    network = network_of(pair)
    now = int(time.time() * 1000)
    good, record = (
        sign_record(stranger(), network, seq=1, prev=bytes(32), timestamp=now, body=body)
        for body in (
            Contribution(title="good", kind="code"),
            Contribution(title="forged", kind="code"),
        )
    )
    forged = bytearray(record.raw)
    forged[-1] ^= 1

    async def attack() -> aiohttp.WSMessage:
        async with aiohttp.ClientSession() as s, authenticated(s, node, network, stranger()) as ws:
            await ws.send_bytes(encode_push(Push.RECORDS, [good.raw, bytes(forged)]))
            return await closed(ws)

    message = asyncio.run(attack())
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    wait_for(lambda: "bad signature" in node.log(), 10, "the disconnection logged")
    keeps_finalizing(node)
    wait_for(lambda: node.get(f"/api/records/{good.id.hex()}")["status"] == "final", 30, "final")
    with pytest.raises(urllib.error.HTTPError, match="404"):
        node.get(f"/api/records/{record.id.hex()}")


def test_a_replayed_message_is_not_forwarded_again(pair: Devnet) -> None:
    """Peer A sends a valid record twice; peer B is told of it once (its id), asks for it, and
    gets it whole; the node keeps it."""
    node = pair.nodes[0]
    network = network_of(pair)
    author = stranger()
    record = sign_record(
        author, network, seq=1, prev=bytes(32), timestamp=int(time.time() * 1000),
        body=Contribution(title="gossiped once", kind="code"),
    )  # fmt: skip

    async def scenario() -> tuple[int, int]:
        async with (
            aiohttp.ClientSession() as s,
            authenticated(s, node, network, stranger()) as a,
            authenticated(s, node, network, stranger()) as b,
        ):
            await a.send_bytes(encode_push(Push.RECORDS, [record.raw]))
            await a.send_bytes(encode_push(Push.RECORDS, [record.raw]))
            announced = got = 0
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    message = await b.receive(timeout=deadline - time.monotonic())
                except TimeoutError:
                    break
                if message.type is not aiohttp.WSMsgType.BINARY:
                    break
                kind, payloads = decode_push(message.data)
                if kind is Push.HAVE and record.id in payloads:
                    announced += 1
                    await b.send_bytes(encode_push(Push.WANT, [record.id]))
                got += payloads.count(record.raw) if kind is Push.RECORDS else 0
            assert not a.closed
            return announced, got

    assert asyncio.run(scenario()) == (1, 1)
    wait_for(lambda: node.get(f"/api/records/{record.id.hex()}")["status"] == "final", 30, "final")
    keeps_finalizing(node)
