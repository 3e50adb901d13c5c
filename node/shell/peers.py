"""Peer connections: the WebSocket handshake of PROTOCOL §16 on both sides, and a `Link` per
authenticated peer that sends through a bounded queue and reads with a timeout.

Nothing is read from a peer before its hello, and nothing but the handshake before it is
verified: a hello of the wrong network or version, a bad signature, a text message, a frame over
`MAX_FRAME_BYTES` (refused by aiohttp before it is read whole) or silence past a timeout ends
the connection with the reason.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from ledger.crypto import Keypair
from node.errors import WireError
from node.wire import (
    NONCE_BYTES,
    Hello,
    Session,
    decode_auth,
    decode_hello,
    encode_auth,
)

HANDSHAKE_TIMEOUT_S = 5.0
IDLE_TIMEOUT_S = 60.0
"""A peer sends a status at least every few seconds; silence this long ends the link."""
HEARTBEAT_S = 10.0
SEND_QUEUE_BYTES = 256 * 1024 * 1024
"""Bytes waiting for a slow peer; past this the peer is disconnected, not waited for."""

WebSocket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse
_CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)


async def _read(ws: WebSocket, timeout: float) -> bytes:
    try:
        message = await ws.receive(timeout=timeout)
    except TimeoutError as e:
        raise WireError(f"no message within {timeout:.0f} s") from e
    if message.type is aiohttp.WSMsgType.BINARY:
        data: bytes = message.data
        return data
    if message.type is aiohttp.WSMsgType.ERROR:
        raise WireError(f"connection error: {ws.exception()}")
    if message.type in _CLOSED:
        raise ConnectionResetError("the peer closed the connection")
    raise WireError(f"expected a binary message, got {message.type.name.lower()}")


async def initiate(ws: WebSocket, key: Keypair, network: bytes) -> bytes:
    """The initiator's side; returns the authenticated peer's node key."""
    mine = Hello(key=key.public_key, network=network, nonce=os.urandom(NONCE_BYTES))
    await ws.send_bytes(mine.encode())
    theirs = decode_hello(await _read(ws, HANDSHAKE_TIMEOUT_S), network=network, signed=True)
    session = Session(network=network, initiator=mine, responder=theirs)
    assert theirs.sig is not None  # noqa: S101 - decode_hello(signed=True) requires it
    session.verify("responder", theirs.sig)
    await ws.send_bytes(encode_auth(session.sign(key, "initiator")))
    return theirs.key


async def respond(ws: WebSocket, key: Keypair, network: bytes) -> bytes:
    """The responder's side; returns the authenticated peer's node key."""
    theirs = decode_hello(await _read(ws, HANDSHAKE_TIMEOUT_S), network=network, signed=False)
    unsigned = Hello(key=key.public_key, network=network, nonce=os.urandom(NONCE_BYTES))
    session = Session(network=network, initiator=theirs, responder=unsigned)
    mine = Hello(
        key=unsigned.key,
        network=network,
        nonce=unsigned.nonce,
        sig=session.sign(key, "responder"),
    )
    await ws.send_bytes(mine.encode())
    session.verify("initiator", decode_auth(await _read(ws, HANDSHAKE_TIMEOUT_S)))
    return theirs.key


@dataclass(eq=False)
class Link:
    """One authenticated peer connection."""

    peer: bytes
    ws: WebSocket
    outgoing: bool
    queue: asyncio.Queue[bytes | None]
    closed_because: str | None = None
    queued_bytes: int = 0
    closing: asyncio.Future[bool] | None = None

    @classmethod
    def of(cls, peer: bytes, ws: WebSocket, *, outgoing: bool) -> Link:
        return cls(peer=peer, ws=ws, outgoing=outgoing, queue=asyncio.Queue())

    def send(self, frame: bytes) -> bool:
        """Queue a frame; False when the peer is too slow and must be dropped."""
        if self.queued_bytes + len(frame) > SEND_QUEUE_BYTES:
            return False
        self.queued_bytes += len(frame)
        self.queue.put_nowait(frame)
        return True

    async def read(self) -> bytes:
        return await _read(self.ws, IDLE_TIMEOUT_S)

    async def write_loop(self) -> None:
        while (frame := await self.queue.get()) is not None:
            await self.ws.send_bytes(frame)
            self.queued_bytes -= len(frame)

    def close(self, reason: str) -> None:
        if self.closed_because is None:
            self.closed_because = reason
        self.queue.put_nowait(None)
        if self.closing is None:
            self.closing = asyncio.ensure_future(self.ws.close(message=reason[:120].encode()))
