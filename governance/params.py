"""Governance parameters: their defaults (a real community's: days, not seconds) and hard bounds.

Every parameter is an integer: durations in seconds, fractions in basis points. The hard bounds
are fixed in the genesis; no action can take a parameter outside them. A genesis that omits a
governance parameter gets the default value and bounds below.
"""

from __future__ import annotations

from ledger.genesis import Param
from ledger.state import PARAM, LedgerState

DAY = 86_400
PARAM_BOUNDS = b"gov/bounds/"
"""State key prefix of a parameter's [min, max], as the genesis fixed them."""

GOVERNANCE_PARAMS: dict[str, Param] = {
    # Seconds from a proposal's block until its snapshot (voting opens after it).
    "voting_delay": Param(value=1 * DAY, min=0, max=30 * DAY),
    # Seconds of voting after the snapshot. The floor keeps votes from being rushed through.
    "voting_period": Param(value=7 * DAY, min=1, max=90 * DAY),
    # For + Abstain needed, in basis points of the supply at the snapshot. Never below 1%.
    "quorum_bps": Param(value=400, min=100, max=10_000),
    # When quorum is first reached, voting lasts at least this long afterwards.
    "late_quorum_extension": Param(value=2 * DAY, min=0, max=30 * DAY),
    # Seconds between a proposal succeeding and its execution.
    "timelock": Param(value=2 * DAY, min=0, max=30 * DAY),
    # Voting power needed to propose.
    "proposal_threshold": Param(value=1, min=0, max=2**53 - 1),
    # Pending or Active proposals one member may have at once.
    "max_live_proposals": Param(value=3, min=1, max=100),
    # Most tokens one proposal may mint, in basis points of the supply.
    "max_mint_bps": Param(value=500, min=0, max=10_000),
    # 1: members may transfer tokens; 0: tokens stay where they were minted.
    "transferable": Param(value=0, min=0, max=1),
}


def bounds(state: LedgerState, name: str) -> tuple[int, int]:
    """Hard bounds of a parameter as the genesis fixed them (state keeps them beside values)."""
    stored = state.get(PARAM_BOUNDS + name.encode())
    if stored is not None:
        return stored[0], stored[1]
    default = GOVERNANCE_PARAMS[name]
    return default.min, default.max


def param(state: LedgerState, name: str) -> int:
    value = state.get(PARAM + name.encode())
    if type(value) is int:
        return value
    return GOVERNANCE_PARAMS[name].value
