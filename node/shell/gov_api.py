"""The local API's governance reads (docs/API.md, "Governance"): members, parameters, proposals
and contributions as the node's finalized state has them. Open like every read; each runs on the
core's thread through `Node.call`, with the functions at the bottom of this module.

Ids may be given whole or by a unique prefix of at least 4 hex digits; members by key or name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from governance import views
from governance.rules import READY, Governance
from ledger.kinds_governance import Proposal
from ledger.records import Contribution
from ledger.state import LedgerState
from node.core import NodeCore
from node.shell.api import NODE, jsonable, record_json

if TYPE_CHECKING:
    from node.shell.node import Node

MIN_PREFIX = 4
MAX_LISTED = 1000
"""Lists answer at most this many items, newest first."""


class Lookup(Exception):  # noqa: N818 - a lookup's answer, carried to the handler
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _state(core: NodeCore) -> LedgerState:
    """The governance state members read: before the first block applies the genesis's members
    and parameters (PROTOCOL §15.2 step 1), the state they start from."""
    state = core.store.chain.state
    if state.get_raw(READY) is not None:
        return state
    fresh = LedgerState.from_genesis(core.store.genesis)
    Governance(core.store.genesis).start(fresh)
    return fresh


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/members", _members),
        web.get("/api/members/{who}", _member),
        web.get("/api/params", _params),
        web.get("/api/proposals", _proposals),
        web.get("/api/proposals/{id}", _proposal),
        web.get("/api/contributions", _contributions),
        web.get("/api/contributions/{id}", _contribution),
    ]


async def _read(request: web.Request, fn: Any, *args: Any) -> web.Response:
    node: Node = request.app[NODE]
    assert node.core is not None  # noqa: S101 - the API starts after the core
    try:
        doc = await node.call(fn, node.core, *args)
    except Lookup as e:
        return web.json_response({"error": str(e)}, status=e.status)
    return web.json_response(doc)


async def _members(request: web.Request) -> web.Response:
    return await _read(request, members_doc)


async def _member(request: web.Request) -> web.Response:
    return await _read(request, member_doc, request.match_info["who"])


async def _params(request: web.Request) -> web.Response:
    return await _read(request, params_doc)


async def _proposals(request: web.Request) -> web.Response:
    return await _read(request, proposals_doc, request.query.get("state"))


async def _proposal(request: web.Request) -> web.Response:
    return await _read(request, proposal_doc, request.match_info["id"], request.query.get("member"))


async def _contributions(request: web.Request) -> web.Response:
    query = request.query
    return await _read(request, contributions_doc, query.get("author"), query.get("kind"))


async def _contribution(request: web.Request) -> web.Response:
    return await _read(request, contribution_doc, request.match_info["id"])


# on the core's thread


def member_json(m: views.MemberView) -> dict[str, Any]:
    return {
        "key": m.key.hex(),
        "name": m.name,
        "balance": m.balance,
        "power": m.power,
        "delegate": None if m.delegate is None else m.delegate.hex(),
        "frozen": m.frozen,
        "delegators": [d.hex() for d in m.delegators],
    }


def members_doc(core: NodeCore) -> dict[str, Any]:
    return {"members": [member_json(m) for m in views.members(_state(core))]}


def resolve_member(core: NodeCore, who: str) -> views.MemberView:
    """A member by key (64 hex digits) or by name; Lookup 404 or 409 (a name two members use)."""
    state = _state(core)
    if len(who) == 64:
        try:
            found = views.member(state, bytes.fromhex(who))
        except ValueError:
            found = None
        if found is not None:
            return found
    named = views.member_named(state, who)
    if len(named) == 1:
        return named[0]
    if named:
        keys = ", ".join(m.key.hex()[:16] for m in named)
        raise Lookup(409, f"{len(named)} members are named {who!r} ({keys}): give a key")
    raise Lookup(404, f"no member {who!r} (give a key, or a name from an identity record)")


def member_doc(core: NodeCore, who: str) -> dict[str, Any]:
    return member_json(resolve_member(core, who))


def params_doc(core: NodeCore) -> dict[str, Any]:
    params = views.params(_state(core))
    return {
        "params": [{"name": p.name, "value": p.value, "min": p.min, "max": p.max} for p in params]
    }


def _by_prefix(ids: list[bytes], text: str, what: str) -> bytes:
    text = text.lower()
    if len(text) < MIN_PREFIX or len(text) > 64 or any(c not in "0123456789abcdef" for c in text):
        raise Lookup(400, f"a {what} id is {MIN_PREFIX} to 64 hex digits, not {text!r}")
    found = [i for i in ids if i.hex().startswith(text)]
    if len(found) == 1:
        return found[0]
    if found:
        raise Lookup(409, f"{len(found)} {what}s have ids starting {text}: give more digits")
    raise Lookup(404, f"no {what} {text} on this node")


def proposal_json(core: NodeCore, p: views.ProposalView) -> dict[str, Any]:
    stored = core.store.record(p.id)
    body = stored.record.body if stored is not None else None
    proposer = views.member(_state(core), p.proposer)
    return {
        "id": p.id.hex(),
        "title": body.title if isinstance(body, Proposal) else "",
        "description": body.description if isinstance(body, Proposal) else "",
        "proposer": p.proposer.hex(),
        "proposer_name": proposer.name if proposer is not None else None,
        "state": p.state,
        "reason": p.reason,
        "created": p.created,
        "snapshot": p.snapshot,
        "deadline": p.deadline,
        "eta": p.eta or None,
        "votes": p.votes,
        "quorum": {"needed": p.quorum_needed, "reached": p.quorum_reached},
        "actions": jsonable(p.actions),
    }


def proposals_doc(core: NodeCore, state: str | None) -> dict[str, Any]:
    found = views.proposals(_state(core))
    if state is not None:
        found = [p for p in found if p.state.lower() == state.lower()]
    return {
        "now": core.store.tip.time,
        "proposals": [proposal_json(core, p) for p in found[-MAX_LISTED:]],
    }


def proposal_doc(core: NodeCore, text: str, member: str | None) -> dict[str, Any]:
    state = _state(core)
    pid = _by_prefix([p.id for p in views.proposals(state)], text, "proposal")
    view = views.proposal(state, pid)
    assert view is not None  # noqa: S101 - listed above
    doc = proposal_json(core, view)
    doc["now"] = core.store.tip.time
    if member is not None:
        who = resolve_member(core, member)
        doc["member"] = {
            "key": who.key.hex(),
            "power_at_snapshot": views.power_at_snapshot(state, view, who.key),
            "vote": views.vote_of(state, pid, who.key),
        }
    return doc


def contribution_json(core: NodeCore, record_id: bytes) -> dict[str, Any] | None:
    stored = core.store.record(record_id)
    extra = views.contribution(_state(core), record_id)
    if stored is None or extra is None or not isinstance(stored.record.body, Contribution):
        return None
    body = stored.record.body
    return {
        "id": record_id.hex(),
        "author": stored.record.author.hex(),
        "title": body.title,
        "kind": body.kind,
        "refs": list(body.refs),
        "hours": body.hours,
        "description": body.description,
        "at": stored.record.timestamp,
        "height": stored.height,
        "endorsements": extra["endorsements"],
        "rewarded_by": None if extra["rewarded_by"] is None else extra["rewarded_by"].hex(),
    }


def contributions_doc(core: NodeCore, author: str | None, kind: str | None) -> dict[str, Any]:
    key = None if author is None else resolve_member(core, author).key
    out = []
    for record_id in views.contribution_ids(_state(core)):
        doc = contribution_json(core, record_id)
        if doc is None or (key is not None and doc["author"] != key.hex()):
            continue
        if kind is not None and doc["kind"] != kind:
            continue
        out.append(doc)
    out.sort(key=lambda d: (d["height"], d["at"]))
    return {"contributions": out[-MAX_LISTED:]}


def contribution_doc(core: NodeCore, text: str) -> dict[str, Any]:
    record_id = _by_prefix(views.contribution_ids(_state(core)), text, "contribution")
    doc = contribution_json(core, record_id)
    if doc is None:
        raise Lookup(404, f"no contribution {text} on this node")
    stored = core.store.record(record_id)
    assert stored is not None  # noqa: S101 - found above
    doc["record"] = record_json(stored.record)
    return doc
