"""The aiohttp shell of a node: peer connections, the local API, timers; it performs what the
node's logic decides and nothing more."""
