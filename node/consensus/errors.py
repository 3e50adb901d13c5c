"""Errors of the consensus engine, split by whose fault they are.

Bad remote data (an undecodable or unsigned message) raises the ledger's `InvalidData` family,
which a shell may answer by penalising the peer; the engine itself ignores such messages.
`ConsensusError` is local misuse: a persisted state that does not fit the store it is restored
against, an application that refuses a block the engine decided.
"""

from node.errors import NodeError


class ConsensusError(NodeError):
    """This node's own consensus state or application is inconsistent (not a peer's fault)."""
