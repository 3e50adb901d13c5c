"""The running node: an aiohttp server for peers and one for the local API, dialers to the
configured peers, timers, and one thread where the node's logic (`NodeCore`) and its store live.

Everything the core decides comes back as actions, performed here and nothing more: frames to
peers, timers, block fetches over HTTP, disconnections, wake-ups of API callers waiting for a
record to be final. Calls into the core run on its own thread, so hashing, signature checks and
SQLite commits never stall the event loop; they run one at a time, in the order they were made.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from ledger.crypto import Keypair
from ledger.errors import InvalidData
from ledger.store import Store
from node.config import NodeConfig
from node.consensus.effects import Timeout
from node.consensus.engine import Timeouts
from node.core import Action, Disconnect, Fetch, Finalized, NodeCore, Schedule, Send, Submission
from node.errors import NodeError, NotReadyError, WireError
from node.rules import commons_rules
from node.shell import api, gov_api, peers
from node.wire import MAX_BLOCKS_ANSWER_BYTES, MAX_FRAME_BYTES, decode_certified

log = logging.getLogger("commons.node")
T = TypeVar("T")

TICK_S = 0.25
INBOX_FRAMES = 4096
INBOX_BYTES = 256 * 1024 * 1024
"""Frames (and their bytes) read from peers and not yet handed to the core; past either, reading
waits (TCP then slows the senders down)."""
PUMP_BATCH = 512
PUMP_BYTES = 4 * 1024 * 1024
"""Frames handed to the core in one call: at most this many, or (past the first) bytes, so that
timers and votes never wait long behind a backlog of records (a frame carries up to 4096)."""
INTAKE_RECORDS = 4096
"""Records submitted through the API are handed to the core together: submissions are added to
one call while it holds fewer than this many (the last one added may take it up to
`api.MAX_SUBMIT` - 1 past): concurrent submissions share one outbox write and one frame per peer."""
INTAKE_REQUESTS = 64
"""Submissions waiting for the core; more wait to be queued (their HTTP requests slow down)."""
MAX_LINKS = 32
MAX_HANDSHAKES = 16
"""Connections accepted and still in their handshake; more are closed at once."""
SERVING_BLOCKS = 2
PULL_RECORDS = 256
"""`/p2p/blocks` answers read from the store at once; more requests wait their turn."""
DIAL_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
FETCH_TIMEOUT_S = 30.0
FETCH_BLOCKS = 64
DEFAULT_TIMEOUTS = Timeouts()


def now_ms() -> int:
    return int(time.time() * 1000)


_Submission = tuple[list[bytes], asyncio.Future[list[Submission]]]
"""Records given through the API, and where their results go."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeKeys:
    node: Keypair
    validator: Keypair


class Node:
    """One node; `async with Node(...)` or `await start()` / `await stop()`."""

    def __init__(self, config: NodeConfig, keys: NodeKeys, token: str) -> None:
        self.config = config
        self.keys = keys
        self.token = token
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="commons-core")
        self.core: NodeCore | None = None
        self.links: dict[bytes, peers.Link] = {}
        self.urls: dict[bytes, str] = {}
        """Listen URLs of peers this node dialed, by node key (where to fetch blocks from)."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._finality: dict[bytes, asyncio.Future[int]] = {}
        self._runners: list[web.AppRunner] = []
        self._session: aiohttp.ClientSession | None = None
        self._stopping = False
        self.started_at = 0
        self.height_changed = asyncio.Event()
        self._inbox: asyncio.Queue[tuple[bytes, bytes]] = asyncio.Queue(INBOX_FRAMES)
        self._inbox_bytes = 0
        self._inbox_drained = asyncio.Event()
        self._intake: asyncio.Queue[_Submission] = asyncio.Queue(INTAKE_REQUESTS)
        self.height = 0
        """The height of the last block this node finalized, as the event loop knows it."""
        self._handshakes = 0
        self._serving = asyncio.Semaphore(SERVING_BLOCKS)
        self.failed = asyncio.Event()
        """Set when the node's logic fails (a bug, or a store it cannot write): a node that
        cannot go on must stop rather than keep its sockets open doing nothing."""
        self.failure: BaseException | None = None

    # lifecycle

    async def start(self) -> None:
        self.started_at = now_ms()
        self.core = await self.call(self._open_core)
        core = self.core
        self.height = core.store.tip.height
        log.info(
            "started: network %s, height %d, peers on %s, local API on %s",
            core.network_id.hex()[:16],
            core.store.tip.height,
            self.config.listen,
            self.config.api,
        )
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S))
        peer_app = web.Application(client_max_size=1024)
        peer_app.add_routes(
            [
                web.get("/p2p/ws", self._accept),
                web.get("/p2p/status", self._p2p_status),
                web.get("/p2p/blocks", self._p2p_blocks),
                web.get("/p2p/records", self._p2p_records),
            ]
        )
        await self._serve(peer_app, self.config.listen.host, self.config.listen.port)
        api_app = api.make_app(self)
        api_app.add_routes(gov_api.routes())
        # a client that goes away ends its request (a long poll gives back its place at once)
        await self._serve(api_app, self.config.api.host, self.config.api.port, cancel_gone=True)
        for url in self.config.peers:
            self._spawn(self._dial_forever(url))
        self._spawn(self._tick_forever())
        self._spawn(self._pump_forever())
        self._spawn(self._intake_forever())
        await self.perform(await self.call(core.start, now_ms()))

    def _open_core(self) -> NodeCore:
        store = Store.open(self.config.ledger, rules=commons_rules)
        return NodeCore(
            store,
            self.keys.validator,
            timeouts=DEFAULT_TIMEOUTS,
            now=now_ms(),
            reporter=self.keys.node,
        )

    async def _serve(
        self, app: web.Application, host: str, port: int, *, cancel_gone: bool = False
    ) -> None:
        runner = web.AppRunner(
            app, handle_signals=False, access_log=None, handler_cancellation=cancel_gone
        )
        await runner.setup()
        self._runners.append(runner)
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as e:
            raise NodeError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e

    async def stop(self) -> None:
        self._stopping = True
        for handle in self._timers:
            handle.cancel()
        for link in list(self.links.values()):
            link.close("node stopping")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for runner in self._runners:
            await runner.cleanup()
        if self._session is not None:
            await self._session.close()
        if self.core is not None:
            await self.call(self.core.store.close)
        self._thread.shutdown(wait=True)
        log.info("stopped")

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # the core's thread

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the core's thread, after every call made before it."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or self._stopping:
            return
        error = task.exception()
        if error is not None:
            log.error("internal error: %r", error, exc_info=error)
            if self.failure is None:
                self.failure = error
                self.failed.set()

    # actions

    async def perform(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                link = self.links.get(action.peer)
                if link is not None and not link.send(action.frame):
                    self._drop(link, "too slow: its send queue is full")
            elif isinstance(action, Schedule):
                self._set_timer(action.timeout, action.delay_ms)
            elif isinstance(action, Fetch):
                self._spawn(self._fetch(action))
            elif isinstance(action, Disconnect):
                link = self.links.get(action.peer)
                if link is not None:
                    self._drop(link, action.reason)
            elif isinstance(action, Finalized):
                self._finalized(action)

    def _set_timer(self, timeout: Timeout, delay_ms: int) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(handle)
            if not self._stopping and self.core is not None:
                self._spawn(self._run(self.core.on_timeout, timeout))

        handle = loop.call_later(delay_ms / 1000, fire)
        self._timers.add(handle)

    async def _run(self, fn: Callable[..., list[Action]], *args: Any) -> None:
        await self.perform(await self.call(fn, *args, now_ms()))

    def _finalized(self, action: Finalized) -> None:
        self.height = max(self.height, action.height)
        for record_id in action.records:
            waiter = self._finality.pop(record_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(action.height)
        self.height_changed.set()
        self.height_changed = asyncio.Event()

    def finality_of(self, record_id: bytes) -> asyncio.Future[int]:
        """Resolves to the height of the block that makes `record_id` final."""
        waiter = self._finality.get(record_id)
        if waiter is None or waiter.done():
            waiter = self._finality[record_id] = asyncio.get_running_loop().create_future()
        return waiter

    async def _pump_forever(self) -> None:
        """Frames from every peer to the core, as many as are waiting in one call: under load
        one hand-over to the core's thread serves many frames."""
        assert self.core is not None  # noqa: S101 - started
        while True:
            batch = [await self._inbox.get()]
            size = len(batch[0][1])
            while not self._inbox.empty() and len(batch) < PUMP_BATCH and size < PUMP_BYTES:
                batch.append(self._inbox.get_nowait())
                size += len(batch[-1][1])
            self._inbox_bytes -= size
            self._inbox_drained.set()
            batch = [(peer, frame) for peer, frame in batch if peer in self.links]  # not gone
            if batch:
                await self._run(self.core.on_frames, batch)

    async def submit(self, records: list[bytes]) -> list[Submission]:
        """Hand signed records to the core (`NodeCore.submit`), together with those submitted
        at the same time; raises NotReadyError while the node takes none."""
        answer: asyncio.Future[list[Submission]] = asyncio.get_running_loop().create_future()
        await self._intake.put((records, answer))
        return await answer

    async def _intake_forever(self) -> None:
        assert self.core is not None  # noqa: S101 - started
        while True:
            batch = [await self._intake.get()]
            count = len(batch[0][0])
            while not self._intake.empty() and count < INTAKE_RECORDS:
                batch.append(self._intake.get_nowait())
                count += len(batch[-1][0])
            records = [data for given, _ in batch for data in given]
            try:
                results, actions = await self.call(self.core.submit, records, now_ms())
                await self.perform(actions)
            except BaseException as e:  # NotReadyError, or a failure the task's end reports
                error = e if isinstance(e, Exception) else NodeError("the node is stopping")
                for _, answer in batch:
                    if not answer.done():
                        answer.set_exception(error)
                if isinstance(e, NotReadyError):
                    continue
                raise
            at = 0
            for given, answer in batch:
                if not answer.done():  # its caller may have gone
                    answer.set_result(results[at : at + len(given)])
                at += len(given)

    async def _tick_forever(self) -> None:
        assert self.core is not None  # noqa: S101 - started
        while True:
            await asyncio.sleep(TICK_S)
            await self._run(self.core.tick)

    # peers

    async def _dial_forever(self, url: str) -> None:
        attempt = 0
        while not self._stopping:
            if any(u == url and key in self.links for key, u in self.urls.items()):
                await asyncio.sleep(DIAL_BACKOFF_S[-1])  # connected the other way round
                continue
            try:
                await self._dial(url)
                attempt = 0
            except (aiohttp.ClientError, OSError, TimeoutError, WireError) as e:
                if attempt == 0:
                    log.info("peer %s unreachable: %s", url, e or type(e).__name__)
            delay = DIAL_BACKOFF_S[min(attempt, len(DIAL_BACKOFF_S) - 1)]
            attempt += 1
            await asyncio.sleep(delay * (0.75 + random.random() / 2))  # noqa: S311 - jitter

    async def _dial(self, url: str) -> None:
        assert self._session is not None  # noqa: S101 - started
        assert self.core is not None  # noqa: S101 - started
        async with self._session.ws_connect(
            f"{url}/p2p/ws",
            max_msg_size=MAX_FRAME_BYTES,
            heartbeat=peers.HEARTBEAT_S,
            timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
        ) as ws:
            peer = await peers.initiate(ws, self.keys.node, self.core.network_id)
            self.urls[peer] = url
            await self._run_link(peers.Link.of(peer, ws, outgoing=True))

    async def _accept(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, heartbeat=peers.HEARTBEAT_S)
        await ws.prepare(request)
        if self.core is None or len(self.links) >= MAX_LINKS or self._handshakes >= MAX_HANDSHAKES:
            await ws.close(message=b"too many peers")
            return ws
        self._handshakes += 1
        try:
            peer = await peers.respond(ws, self.keys.node, self.core.network_id)
        except (WireError, ConnectionResetError) as e:
            log.info("peer from %s refused: %s", request.remote, e)
            await ws.close(message=str(e)[:120].encode())
            return ws
        finally:
            self._handshakes -= 1
        await self._run_link(peers.Link.of(peer, ws, outgoing=False))
        return ws

    async def _run_link(self, link: peers.Link) -> None:
        assert self.core is not None  # noqa: S101 - started
        core = self.core
        peer = link.peer
        if peer == self.keys.node.public_key:
            link.close("connected to itself")
            return
        existing = self.links.get(peer)
        if existing is not None:
            # both sides dialed: keep the link the smaller node key initiated
            keep_new = link.outgoing == (self.keys.node.public_key < peer)
            if not keep_new:
                link.close("already connected")
                return
            existing.close("a second connection to the same peer")
            del self.links[peer]
            await self.call(core.peer_left, peer)  # what the old link carried may be lost
        self.links[peer] = link
        log.info("peer %s joined (%s)", peer.hex()[:16], "dialed" if link.outgoing else "accepted")
        writer = asyncio.ensure_future(link.write_loop())
        try:
            await self.perform(await self.call(core.peer_joined, peer, now_ms()))
            while link.closed_because is None:
                frame = await link.read()
                while self._inbox_bytes + len(frame) > INBOX_BYTES and self._inbox_bytes:
                    self._inbox_drained.clear()
                    await self._inbox_drained.wait()  # the core is behind: stop reading
                self._inbox_bytes += len(frame)
                await self._inbox.put((peer, frame))
        except (WireError, InvalidData) as e:
            self._drop(link, str(e))
        except (ConnectionResetError, aiohttp.ClientError, asyncio.CancelledError) as e:
            link.close(str(e) or "connection closed")
            if isinstance(e, asyncio.CancelledError):
                raise
        finally:
            writer.cancel()
            if self.links.get(peer) is link:
                del self.links[peer]
                await self.call(core.peer_left, peer)
                log.info("peer %s left: %s", peer.hex()[:16], link.closed_because)

    def _drop(self, link: peers.Link, reason: str) -> None:
        if link.closed_because is None:
            log.warning("disconnecting peer %s: %s", link.peer.hex()[:16], reason)
        link.close(reason)

    # pulls

    async def _fetch(self, fetch: Fetch) -> None:
        assert self.core is not None  # noqa: S101 - started
        try:
            body = await self._get_blocks(fetch)
        except (aiohttp.ClientError, TimeoutError, WireError) as e:
            log.info("fetching blocks %d-%d failed: %s", fetch.first, fetch.last, e)
            await self._run(self.core.fetch_failed, fetch.peer)
            return
        try:
            certified = await self.call(decode_certified, body)
        except InvalidData as e:
            await self._run(self.core.fetch_invalid, fetch.peer, str(e))
            return
        before = self.core.store.tip.height
        await self._run(self.core.blocks_fetched, fetch.peer, certified)
        after = self.core.store.tip.height
        if after > before:
            log.info("sync: height %d (blocks %d-%d fetched)", after, fetch.first, fetch.last)

    async def _get_blocks(self, fetch: Fetch) -> bytes:
        """The whole answer to a blocks request, refused once it is longer than an answer may
        be."""
        url = self.urls.get(fetch.peer)
        if url is None or self._session is None:
            raise WireError("no listen address known for this peer")
        query = {"from": str(fetch.first), "to": str(fetch.last)}
        async with self._session.get(f"{url}/p2p/blocks", params=query) as response:
            if response.status != 200:
                raise WireError(f"blocks answer has status {response.status}")
            body = bytearray()
            async for chunk in response.content.iter_chunked(1024 * 1024):
                body += chunk
                if len(body) > MAX_BLOCKS_ANSWER_BYTES:
                    raise WireError(f"blocks answer longer than {MAX_BLOCKS_ANSWER_BYTES} bytes")
        return bytes(body)

    async def _p2p_status(self, request: web.Request) -> web.Response:
        assert self.core is not None  # noqa: S101 - started
        body = await self.call(api.peer_status, self.core, self.keys.node.public_key)
        return web.Response(body=body, content_type="application/msgpack")

    async def _p2p_blocks(self, request: web.Request) -> web.Response:
        assert self.core is not None  # noqa: S101 - started
        try:
            first = int(request.query["from"])
            last = int(request.query["to"])
        except (KeyError, ValueError):
            raise web.HTTPBadRequest(text="from and to must be heights") from None
        if not 1 <= first <= last or last - first >= FETCH_BLOCKS:
            raise web.HTTPBadRequest(text=f"a range of 1 to {FETCH_BLOCKS} heights from 1")
        async with self._serving:
            body = await self.call(api.certified_blocks, self.core, first, last)
        return web.Response(body=body, content_type="application/octet-stream")

    async def _p2p_records(self, request: web.Request) -> web.Response:
        assert self.core is not None  # noqa: S101 - started
        try:
            ids = [bytes.fromhex(i) for i in request.query["ids"].split(",")]
        except (KeyError, ValueError):
            raise web.HTTPBadRequest(
                text="ids must be record ids in hex, comma-separated"
            ) from None
        if not 1 <= len(ids) <= PULL_RECORDS or any(len(i) != 32 for i in ids):
            raise web.HTTPBadRequest(text=f"1 to {PULL_RECORDS} record ids of 64 hex digits")
        body = await self.call(api.raw_records, self.core, ids)
        return web.Response(body=body, content_type="application/octet-stream")
