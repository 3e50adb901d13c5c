"""The node's errors. Bad remote data keeps the ledger's `InvalidData` family (a shell may
penalise the sender); `NodeError` is this node's own state or input being wrong."""

from ledger.errors import InvalidData


class NodeError(Exception):
    """Base of the node's own errors."""


class ConfigError(NodeError):
    """The node's configuration (flags, environment, config.toml) is wrong."""


class WireError(InvalidData):
    """A peer sent bytes that break the wire protocol (PROTOCOL §16): disconnect it."""


class NotReadyError(NodeError):
    """The node takes no records yet: it is catching up, or has not joined consensus."""
