"""When a validator starts the first round of a new height (PROTOCOL §16, "Block pacing").

After a block is decided, the engine asks for a timer that starts round 0 of the next height. A
node holds that timer until there is a reason to make a block:

- records are waiting in its mempool: the round starts at once (a block follows its records
  without a fixed delay);
- a peer already sent a message of the new height: a proposal or votes are on their way, and a
  node that has not started the round would only let them pass;
- `max_block_interval_ms` has passed since this node decided the last block: an empty block, so
  that BFT time moves and proposals close on time on a quiet network. (The last block's own
  time is the median of the precommits of the block before it, about one interval earlier on a
  quiet network: counting from it would make blocks come in pairs.)

Pure: the time is an argument, and the answer is the timer to fire now, if any.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.consensus.effects import Timeout


@dataclass(frozen=True, slots=True, kw_only=True)
class Held:
    timeout: Timeout
    not_before: int
    """The engine's own delay (`commit_ms`) still applies."""
    empty_at: int
    """When an empty block is due."""


class Pacer:
    def __init__(self, max_block_interval_ms: int) -> None:
        self.interval = max_block_interval_ms
        self.held: Held | None = None

    def hold(self, timeout: Timeout, *, now: int, delay_ms: int, decided_at: int) -> None:
        """The engine asked to start `timeout.height` after `delay_ms`."""
        empty_at = max(now + delay_ms, decided_at + self.interval)
        self.held = Held(timeout=timeout, not_before=now + delay_ms, empty_at=empty_at)

    def release(
        self, *, now: int, records_waiting: bool, height_started_elsewhere: int = 0
    ) -> Timeout | None:
        """The held timer, if a block is to be made now; it is then no longer held."""
        held = self.held
        if held is None or now < held.not_before:
            return None
        started = height_started_elsewhere >= held.timeout.height
        if records_waiting or started or now >= held.empty_at:
            self.held = None
            return held.timeout
        return None

    def next_check(self, now: int) -> int | None:
        """In how many ms `release` may answer differently with nothing else happening."""
        held = self.held
        if held is None:
            return None
        return max(0, (held.not_before if now < held.not_before else held.empty_at) - now)
