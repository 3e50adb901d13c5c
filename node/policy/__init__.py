"""The node's policies as pure state machines, like the consensus engine: events and a time in
(method calls), actions out; no asyncio, sockets, clock or entropy. The simulator and the aiohttp
shell drive the same ones, so what the simulator proves is what the node runs.

- `mempool`: which records wait for a block, and what a proposer takes.
- `gossip`: what is forwarded to which peer, and re-sent when the node is stuck.
"""

from node.policy.gossip import Flood, Forwarding, Kind, Received, SeenCache, Send
from node.policy.mempool import Admitted, LedgerView, Mempool, Refusal, Refused

__all__ = [
    "Admitted",
    "Flood",
    "Forwarding",
    "Kind",
    "LedgerView",
    "Mempool",
    "Received",
    "Refusal",
    "Refused",
    "SeenCache",
    "Send",
]
