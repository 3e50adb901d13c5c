"""Records between peers: what the forwarding policy and the mempool do together when a peer
announces records, asks for them or sends one (docs/PROTOCOL.md §16, "Forwarding"). The node's
core and the simulator both call these, so what the simulator proves of records is what the node
runs.

Pure, like the two policies it joins: peers are opaque ids, the time is an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from ledger.records import Record
from node.policy.gossip import Gossip, Kind, Send
from node.policy.mempool import TRY_AGAIN, Admitted, Mempool, Refused

P = TypeVar("P", bound=Hashable)


def announced(
    gossip: Gossip[P], mempool: Mempool, peer: P, record_ids: Iterable[bytes], *, now: int
) -> list[Send[P]]:
    """`peer` holds these records: what to ask it for (a record pending here is not asked for,
    seen or not)."""
    return gossip.announced(peer, [i for i in record_ids if i not in mempool], now=now)


def wanted(mempool: Mempool, peer: P, record_ids: Iterable[bytes]) -> list[Send[P]]:
    """`peer` asks for these records: those pending here go to it whole, each once however often
    it is named (one final meanwhile reaches it in its block; an unknown id is left out)."""
    held = (mempool.get(i) for i in dict.fromkeys(record_ids))
    return [Send(peer, Kind.RECORD, record.raw) for record in held if record is not None]


def came(
    gossip: Gossip[P],
    mempool: Mempool,
    peer: P,
    record: Record,
    *,
    now: int,
    verify: Callable[[Record], None] | None = None,
) -> list[Send[P]]:
    """`record` came whole from `peer` (its id not in the seen-cache): kept, it is announced on
    (unless it was pending here already); refused, the forwarding policy hears whether to ask
    for it again (`TRY_AGAIN`) or not, and `Refused` propagates. What `verify` raises
    propagates too."""
    try:
        admitted = mempool.add(record, now=now, verify=verify)
    except Refused as e:
        if e.reason in TRY_AGAIN:
            gossip.not_yet(peer, record.id, now=now)
        else:
            gossip.arrived(record.id)
        raise
    received = gossip.received(  # one pending already (seen long ago): not relayed again
        peer,
        record.raw,
        kind=Kind.RECORD,
        now=now,
        relay=admitted is not Admitted.KNOWN,
        message_id=record.id,
    )
    return list(received.sends)
