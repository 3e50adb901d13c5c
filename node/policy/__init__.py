"""The node's policies as pure state machines, like the consensus engine: events and a time in
(method calls), actions out; no asyncio, sockets, clock or entropy. The simulator and the aiohttp
shell drive the same ones, so what the simulator proves is what the node runs.

- `mempool`: which records wait for a block, and what a proposer takes.
- `gossip`: what is forwarded to which peer, and re-sent when the node is stuck.
- `records`: what the two do together when a peer announces, asks for or sends a record.
- `sync`: when the node is behind, which blocks to fetch from whom; what to send a peer behind.
- `pacing`: when a validator starts the first round of a new height.
- `signing`: when a validator's node may sign (never while another node may run its key).
"""

from node.policy.gossip import Forwarding, Gossip, Kind, Received, SeenCache, Send
from node.policy.mempool import TRY_AGAIN, Admitted, LedgerView, Mempool, Refusal, Refused
from node.policy.sync import CatchUp, Fetch, Progress, Report, SyncAction

__all__ = [
    "TRY_AGAIN",
    "Admitted",
    "CatchUp",
    "Fetch",
    "Forwarding",
    "Gossip",
    "Kind",
    "LedgerView",
    "Mempool",
    "Progress",
    "Received",
    "Refusal",
    "Refused",
    "Report",
    "SeenCache",
    "Send",
    "SyncAction",
]
