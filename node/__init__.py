"""The node: network I/O, peers, gossip, sync, mempool and the consensus driver."""
