"""The peer handshake and frames of PROTOCOL §16, on real WebSockets over loopback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from ledger import codec
from ledger.crypto import Keypair, Tag
from node.errors import WireError
from node.shell import peers
from node.wire import (
    MAX_FRAME_BYTES,
    Hello,
    Push,
    Session,
    decode_auth,
    decode_hello,
    decode_push,
    encode_auth,
    encode_push,
    handshake_body,
)

NETWORK = bytes(range(32))
OTHER_NETWORK = bytes(32)


def key(n: int) -> Keypair:
    return Keypair.from_seed(bytes([n]) * 32)


Responder = Callable[[web.WebSocketResponse], Awaitable[None]]
Serve = Callable[[Responder], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start a real aiohttp server on 127.0.0.1 whose WebSocket runs a given responder."""
    runners: list[web.AppRunner] = []

    async def start(responder: Responder) -> str:
        async def handler(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES)
            await ws.prepare(request)
            await responder(ws)
            return ws

        app = web.Application()
        app.add_routes([web.get("/p2p/ws", handler)])
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/p2p/ws"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_both_sides_learn_each_others_authenticated_key(serve: Serve) -> None:
    learned: list[bytes] = []

    async def responder(ws: web.WebSocketResponse) -> None:
        learned.append(await peers.respond(ws, key(2), NETWORK))

    url = await serve(responder)
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        peer = await peers.initiate(ws, key(1), NETWORK)
        await ws.receive(timeout=2)  # the responder closes once done
    assert peer == key(2).public_key
    assert learned == [key(1).public_key]


async def test_wrong_network_is_refused_before_anything_else_is_read(serve: Serve) -> None:
    errors: list[str] = []

    async def responder(ws: web.WebSocketResponse) -> None:
        try:
            await peers.respond(ws, key(2), NETWORK)
        except WireError as e:
            errors.append(str(e))

    url = await serve(responder)
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        hello = Hello(key=key(1).public_key, network=OTHER_NETWORK, nonce=os.urandom(32))
        await ws.send_bytes(hello.encode())
        answer = await ws.receive(timeout=2)
    assert answer.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert errors
    assert "network" in errors[0]


async def test_garbage_before_the_handshake_is_refused(serve: Serve) -> None:
    errors: list[str] = []

    async def responder(ws: web.WebSocketResponse) -> None:
        try:
            await peers.respond(ws, key(2), NETWORK)
        except WireError as e:
            errors.append(str(e))

    url = await serve(responder)
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_bytes(b"\xc1garbage")
        await ws.receive(timeout=2)
        async with session.ws_connect(url) as ws2:
            await ws2.send_str("hello?")
            await ws2.receive(timeout=2)
    assert len(errors) == 2
    assert "does not decode" in errors[0]
    assert "binary" in errors[1]


async def test_a_forged_initiator_signature_is_refused(serve: Serve) -> None:
    """The initiator claims key 1 but signs with key 3."""
    errors: list[str] = []

    async def responder(ws: web.WebSocketResponse) -> None:
        try:
            await peers.respond(ws, key(2), NETWORK)
        except WireError as e:
            errors.append(str(e))

    url = await serve(responder)
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        mine = Hello(key=key(1).public_key, network=NETWORK, nonce=os.urandom(32))
        await ws.send_bytes(mine.encode())
        theirs = decode_hello((await ws.receive(timeout=2)).data, network=NETWORK, signed=True)
        session_ = Session(network=NETWORK, initiator=mine, responder=theirs)
        await ws.send_bytes(encode_auth(session_.sign(key(3), "initiator")))
        await ws.receive(timeout=2)
    assert errors == ["handshake: the initiator's signature does not verify"]


async def test_a_replayed_auth_from_an_earlier_session_is_refused(serve: Serve) -> None:
    """A recorded auth signs the earlier nonces: the responder's fresh nonce defeats it."""
    errors: list[str] = []
    ok: list[bytes] = []

    async def responder(ws: web.WebSocketResponse) -> None:
        try:
            ok.append(await peers.respond(ws, key(2), NETWORK))
        except WireError as e:
            errors.append(str(e))

    url = await serve(responder)
    mine = Hello(key=key(1).public_key, network=NETWORK, nonce=os.urandom(32))
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            await ws.send_bytes(mine.encode())
            theirs = decode_hello((await ws.receive(timeout=2)).data, network=NETWORK, signed=True)
            recorded = encode_auth(
                Session(network=NETWORK, initiator=mine, responder=theirs).sign(key(1), "initiator")
            )
            await ws.send_bytes(recorded)
            await ws.receive(timeout=2)
        async with session.ws_connect(url) as ws:
            await ws.send_bytes(mine.encode())  # the same hello, replayed
            await ws.receive(timeout=2)
            await ws.send_bytes(recorded)
            await ws.receive(timeout=2)
    assert ok == [key(1).public_key]
    assert errors == ["handshake: the initiator's signature does not verify"]


async def test_a_responder_signature_reflected_back_is_refused(serve: Serve) -> None:
    """An initiator that echoes the responder's own signature as its auth fails: roles differ."""
    errors: list[str] = []

    async def responder(ws: web.WebSocketResponse) -> None:
        try:
            await peers.respond(ws, key(2), NETWORK)
        except WireError as e:
            errors.append(str(e))

    url = await serve(responder)
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        mine = Hello(key=key(2).public_key, network=NETWORK, nonce=os.urandom(32))
        await ws.send_bytes(mine.encode())
        theirs = decode_hello((await ws.receive(timeout=2)).data, network=NETWORK, signed=True)
        assert theirs.sig is not None
        await ws.send_bytes(encode_auth(theirs.sig))
        await ws.receive(timeout=2)
    assert errors == ["handshake: the initiator's signature does not verify"]


def test_the_signed_body_holds_both_keys_both_nonces_and_the_role() -> None:
    body = handshake_body(
        initiator=b"\x01" * 32,
        responder=b"\x02" * 32,
        initiator_nonce=b"\x03" * 32,
        responder_nonce=b"\x04" * 32,
        role="initiator",
    )
    assert codec.decode(body, max_size=512) == {
        "initiator": b"\x01" * 32,
        "initiator_nonce": b"\x03" * 32,
        "responder": b"\x02" * 32,
        "responder_nonce": b"\x04" * 32,
        "role": "initiator",
    }
    signature = key(1).sign(Tag.HANDSHAKE, NETWORK, body)
    assert signature != key(1).sign(Tag.HANDSHAKE, OTHER_NETWORK, body)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"\x92\x01\x02", "not a map"),
        (codec.encode({"type": "records"}), "malformed frame"),
        (codec.encode({"type": "gossip", "data": [b""]}), "malformed frame"),
        (codec.encode({"type": "record", "data": b""}), "malformed frame"),  # protocol version 1
        (codec.encode({"type": "records", "data": b"one record, not a list"}), "1 or more"),
        (codec.encode({"type": "records", "data": []}), "1 or more"),
        (codec.encode({"type": "records", "data": ["text"]}), "1 or more"),
        (codec.encode({"type": "records", "data": [b"ok", bytes(20_000)]}), "at most 16640"),
        (codec.encode({"type": "consensus", "data": [b"ok", 7]}), "1 or more"),
        (codec.encode({"type": "have", "data": [bytes(32), bytes(31)]}), "record ids of 32"),
        (codec.encode({"type": "want", "data": [bytes(33)]}), "record ids of 32"),
        (codec.encode({"type": "want", "data": ["x" * 32]}), "record ids of 32"),
        (codec.encode({"type": "have", "data": []}), "1 or more"),
        (b"\xc1", "does not decode"),
        (b"\x81\xa4type", "does not decode"),
    ],
)
def test_bad_push_frames_are_wire_errors(frame: bytes, error: str) -> None:
    with pytest.raises(WireError, match=error):
        decode_push(frame)


def test_push_frames_round_trip() -> None:
    for kind in (Push.RECORDS, Push.CONSENSUS):
        assert decode_push(encode_push(kind, [b"payload"])) == (kind, (b"payload",))
        many = [bytes([i % 256]) * i for i in range(1, 300)]
        assert decode_push(encode_push(kind, many)) == (kind, tuple(many))
    for kind in (Push.HAVE, Push.WANT):
        ids = [bytes([i]) * 32 for i in range(256)]
        assert decode_push(encode_push(kind, ids)) == (kind, tuple(ids))


def test_an_auth_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(WireError, match="malformed auth"):
        decode_auth(codec.encode({"type": "auth", "sig": b"short"}))
    with pytest.raises(WireError, match="expected auth"):
        decode_auth(codec.encode({"type": "hello", "sig": bytes(64)}))
