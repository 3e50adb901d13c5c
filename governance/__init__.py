"""Governance: a pure, deterministic state machine `apply(state, block) -> state`."""
