"""The local API (docs/API.md): JSON over HTTP for the CLI and for scripts, on loopback by
default. Reads are open; writes need the home's token (`Authorization: Bearer TOKEN`). The node
never sees a private key: clients sign records, the node checks them.

Handlers only translate: every read and every submission runs on the core's thread through
`Node.call`, with the functions at the bottom of this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aiohttp import web

from governance import views
from ledger import schema
from ledger.block import Header
from ledger.crypto import sha256
from ledger.errors import (
    DecodeError,
    EvidenceError,
    FeedError,
    InvalidData,
    LedgerError,
    SchemaError,
    SignatureError,
)
from ledger.records import Record
from node.core import NodeCore, Submission
from node.errors import NotReadyError
from node.policy.mempool import Refusal, Refused
from node.wire import BLOCKS_ANSWER_BYTES, PeerStatus, encode_certified, encode_records

if TYPE_CHECKING:
    from node.shell.node import Node

NODE: web.AppKey[Node] = web.AppKey("node")
MAX_WAIT_S = 120.0
MAX_WAITING = 256
"""Answers that may wait at once (`?wait`); past that, one is given at once, as without `wait`
(each waiting answer holds a connection, and the node's peers need file descriptors too)."""
MAX_SUBMIT = 1024
"""Records one `POST /api/records` may carry."""
MAX_BODY_BYTES = 16 * 1024 * 1024
"""The largest request body (a batch of records as hex); a larger one is refused with 413."""
MAX_HEIGHT = schema.MAX_INT
_RULES: list[tuple[type[InvalidData], str]] = [
    (DecodeError, "encoding"),
    (SchemaError, "schema"),
    (SignatureError, "signature"),
    (FeedError, "feed"),
    (EvidenceError, "evidence"),
]


_REFUSED_STATUS = {Refusal.CONFLICT: 409, Refusal.FULL: 503}
"""A refused record is the client's to fix (400) unless another record holds its seq (409) or
the node has no room now (503)."""


class _Waiting:
    """How many answers wait now."""

    def __init__(self) -> None:
        self.count = 0


WAITING: web.AppKey[_Waiting] = web.AppKey("waiting", _Waiting)


def make_app(node: Node) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[NODE] = node
    app[WAITING] = _Waiting()
    app.add_routes(
        [
            web.get("/health", health),
            web.get("/ready", ready),
            web.get("/api/status", status),
            web.post("/api/records", submit),
            web.get("/api/records/{id}", record),
            web.get("/api/blocks/{height}", block),
            web.get("/api/proofs/{id}", proof),
            web.get("/api/feeds/{author}", feed),
        ]
    )
    return app


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def _hex_arg(request: web.Request, name: str, size: int) -> bytes:
    text = request.match_info[name]
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != size:
        raise _bad_request(f"{name} must be {2 * size} hex digits")
    return value


def _core(request: web.Request) -> tuple[Node, NodeCore]:
    node = request.app[NODE]
    assert node.core is not None  # noqa: S101 - the API starts after the core
    return node, node.core


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def ready(request: web.Request) -> web.Response:
    node, core = _core(request)
    reason = await node.call(not_ready_because, core, bool(node.config.peers), len(node.links))
    if reason is None:
        return web.json_response({"ready": True})
    return web.json_response({"ready": False, "reason": reason}, status=503)


async def status(request: web.Request) -> web.Response:
    node, core = _core(request)
    doc = await node.call(status_of, core)
    doc["peers"] = [
        {"key": key.hex(), "direction": "out" if link.outgoing else "in"}
        for key, link in sorted(node.links.items())
    ]
    doc["node_key"] = node.keys.node.public_key.hex()
    doc["validator_key"] = node.keys.validator.public_key.hex()
    doc["ready"] = (
        await node.call(not_ready_because, core, bool(node.config.peers), len(node.links)) is None
    )
    return web.json_response(doc)


async def submit(request: web.Request) -> web.Response:
    """`{"record": hex}`, answered as that record fared; or `{"records": [hex, ...]}`, answered
    200 with each record's answer and the status it would have had alone."""
    node, _ = _core(request)
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {node.token}".encode()):
        return _error(401, "a valid token is needed: Authorization: Bearer <the home's api.token>")
    try:
        doc = await request.json()
    except ValueError:
        doc = None
    single = isinstance(doc, dict) and set(doc) == {"record"}
    records = _records_in(doc)
    if records is None:
        return _error(
            400,
            'the body must be JSON {"record": "<a signed record as hex>"} or '
            f'{{"records": [<1 to {MAX_SUBMIT} of them>]}}',
        )
    try:
        results = await node.submit(records)
    except NotReadyError as e:
        return _error(503, str(e))
    answers = [_submitted(result) for result in results]
    if single:
        code, body = answers[0]
        return web.json_response(body, status=code)
    return web.json_response({"results": [{"code": code, **body} for code, body in answers]})


def _records_in(doc: Any) -> list[bytes] | None:
    """The records a submission's JSON body carries, or None if it is not one."""
    if not isinstance(doc, dict):
        return None
    if set(doc) == {"record"}:
        texts = [doc["record"]]
    elif set(doc) == {"records"} and type(doc["records"]) is list:
        texts = doc["records"]
    else:
        return None
    if not 1 <= len(texts) <= MAX_SUBMIT or not all(type(t) is str for t in texts):
        return None
    try:
        return [bytes.fromhex(text) for text in texts]
    except ValueError:
        return None


def _submitted(result: Submission) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the body of one record's answer."""
    if isinstance(result, InvalidData):
        rule = next((name for cls, name in _RULES if isinstance(result, cls)), "protocol")
        return 400, {"error": str(result), "rule": rule}
    if isinstance(result, Refused):
        status = _REFUSED_STATUS.get(result.reason, 400)
        return status, {"error": str(result), "rule": result.reason.value}
    body = {"id": result.record_id.hex(), "status": result.status, "height": result.height}
    return 202 if result.status == "accepted" else 200, body


async def record(request: web.Request) -> web.Response:
    node, core = _core(request)
    record_id = _hex_arg(request, "id", 32)
    with _waiting(request) as wait:
        doc = await node.call(record_doc, core, record_id)
        if doc is not None and doc["status"] == "pending" and wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(node.finality_of(record_id)), wait)
            doc = await node.call(record_doc, core, record_id)
    if doc is None:
        return _error(404, f"no record {record_id.hex()} on this node")
    return web.json_response(doc)


@contextlib.contextmanager
def _waiting(request: web.Request) -> Iterator[float]:
    """The seconds the answer may wait (`?wait`): 0 while MAX_WAITING others wait already."""
    try:
        wait = float(request.query.get("wait", "0"))
    except ValueError:
        raise _bad_request("wait must be seconds") from None
    if not 0 <= wait <= MAX_WAIT_S:  # also false for nan
        raise _bad_request(f"wait must be 0 to {MAX_WAIT_S:.0f} seconds")
    waiting = request.app[WAITING]
    if wait == 0 or waiting.count >= MAX_WAITING:
        yield 0.0
        return
    waiting.count += 1
    try:
        yield wait
    finally:
        waiting.count -= 1


async def block(request: web.Request) -> web.Response:
    node, core = _core(request)
    try:
        height = int(request.match_info["height"])
    except ValueError:
        height = -1
    if not 0 <= height <= MAX_HEIGHT:
        return _error(400, f"height must be an integer from 0 to {MAX_HEIGHT}")
    with _waiting(request) as wait:
        if wait > 0 and height > node.height:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    while height > node.height:
                        await node.height_changed.wait()
    doc = await node.call(block_doc, core, height)
    if doc is None:
        return _error(404, f"no block {height} on this node")
    return web.json_response(doc)


async def proof(request: web.Request) -> web.Response:
    node, core = _core(request)
    record_id = _hex_arg(request, "id", 32)
    try:
        made = await node.call(core.store.prove_record, record_id)
    except LedgerError as e:
        return _error(404, str(e))
    return web.json_response({"id": record_id.hex(), "proof": made.encode().hex()})


async def feed(request: web.Request) -> web.Response:
    node, core = _core(request)
    author = _hex_arg(request, "author", 32)
    return web.json_response(await node.call(feed_doc, core, author))


# what the handlers read, on the core's thread


def jsonable(value: Any) -> Any:
    """Bytes as hex, tuples as lists: a record's or header's wire map as JSON."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    return value


def record_json(r: Record) -> dict[str, Any]:
    return {
        "id": r.id.hex(),
        "author": r.author.hex(),
        "seq": r.seq,
        "prev": r.prev.hex(),
        "at": r.timestamp,
        "kind": r.kind,
        "body": jsonable(r.body.to_wire()),
        "raw": r.raw.hex(),
    }


def header_json(h: Header) -> dict[str, Any]:
    doc = jsonable(h.to_wire())
    doc["id"] = h.id.hex()
    return dict(doc)


def status_of(core: NodeCore) -> dict[str, Any]:
    tip = core.store.tip
    vals = core.store.chain.state.validators("next")
    best = core.sync.progress().best
    return {
        "network": core.network_id.hex(),
        "name": core.store.genesis.name,
        "height": tip.height,
        "tip": tip.block_id.hex(),
        "time": tip.time,
        "synced": core.joined and best <= tip.height,
        "waiting_for": core.waiting_for() or ("catching up" if best > tip.height else None),
        "best_known_height": max(best, tip.height),
        "validators": [{"key": v.key.hex(), "power": v.power} for v in vals.members],
        "mempool": len(core.mempool),
        "round": core.engine.round,
    }


def not_ready_because(core: NodeCore, wants_peers: bool, links: int) -> str | None:
    waiting = core.waiting_for()
    if waiting is not None:
        return waiting
    if wants_peers and links == 0:
        return "no peer connected"
    return None


def record_doc(core: NodeCore, record_id: bytes) -> dict[str, Any] | None:
    stored = core.store.record(record_id)
    if stored is not None:
        rejected = views.rejection(core.store.chain.state, record_id)
        return {
            "status": "final",
            "height": stored.height,
            "leaf": stored.leaf,
            "record": record_json(stored.record),
            "verdict": {"accepted": rejected is None, "reason": rejected},
        }
    pending = core.mempool.get(record_id)
    if pending is not None:
        return {"status": "pending", "height": None, "record": record_json(pending)}
    return None


def block_doc(core: NodeCore, height: int) -> dict[str, Any] | None:
    raw = core.store.raw_block(height) if height >= 1 else None
    if raw is None:
        return None
    return {
        "header": header_json(raw.header),
        "records": [sha256(r).hex() for r in raw.raws],
    }


def feed_doc(core: NodeCore, author: bytes) -> dict[str, Any]:
    """Where `author`'s feed stands: its final head and the records pending after it, and what
    the next record must carry (seq, prev, and a timestamp no earlier than `min_at`)."""
    head = core.store.chain.state.feed_head(author)
    pending = core.mempool.pending_of(author)
    last_seq, last_id, last_at = head.seq, head.id, head.timestamp
    if pending:
        last_seq, last_id, last_at = pending[-1].seq, pending[-1].id, pending[-1].timestamp
    return {
        "author": author.hex(),
        "final": {"seq": head.seq, "id": head.id.hex(), "at": head.timestamp},
        "pending": [r.id.hex() for r in pending],
        "next": {"seq": last_seq + 1, "prev": last_id.hex(), "min_at": last_at},
    }


def peer_status(core: NodeCore, key: bytes) -> bytes:
    tip = core.store.tip
    return PeerStatus(
        network=core.network_id, height=tip.height, tip=tip.block_id, time=tip.time, key=key
    ).encode()


def certified_blocks(core: NodeCore, first: int, last: int) -> bytes:
    """Blocks `first`..`last` (those this node has) with their certificates, as frames."""
    out: list[bytes] = []
    size = 0
    for height in range(first, min(last, core.store.tip.height) + 1):
        raw, commit = core.store.raw_block(height), core.store.commit(height)
        if raw is None or commit is None or size >= BLOCKS_ANSWER_BYTES:
            break
        out.append(encode_certified(raw, commit))
        size += len(out[-1])
    return b"".join(out)


def raw_records(core: NodeCore, ids: list[bytes]) -> bytes:
    """The exact bytes of each record of `ids` this node holds, final or pending, in the order
    asked, each after its 4-byte big-endian length (unknown ids are left out)."""
    out: list[bytes] = []
    for record_id in ids:
        stored = core.store.record(record_id)
        record = stored.record if stored is not None else core.mempool.get(record_id)
        if record is not None:
            out.append(record.raw)
    return encode_records(out)
