"""The node's base error. Bad remote data keeps the ledger's `InvalidData` family (a shell may
penalise the sender); `NodeError` is this node's own state or input being wrong."""


class NodeError(Exception):
    """Base of the node's own errors."""
