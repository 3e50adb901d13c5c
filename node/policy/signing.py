"""When a validator's node may sign (docs/PROTOCOL.md §16, "Joining consensus").

Signing two different votes for one (height, round, step) is the fault BFT cannot absorb. A
node's persisted consensus state rules it out across restarts of that node; it cannot rule out
a second node holding the same key: a key file restored on a new machine while the old one still
runs, or a home restored from an old backup. This policy makes that mistake harmless:

- A node signs only once it has caught up with its peers.
- If its persisted state covers the height it joins at (a restart of the same node, which resumes
  from that state), that is enough.
- Otherwise it watches first: it signs once `watch_heights` heights were decided while it was
  caught up, with no message signed by its key that it did not sign arriving meanwhile. On a
  network that has decided nothing yet, every validator starts at once and none can watch: there
  it signs at once.
- A message signed by its key that it did not sign, at any time, is another node running this
  key: it stops signing and watches again, and from then on only watching lets it sign.

Pure: the caller says what it saw; the answer is whether to sign.
"""

from __future__ import annotations

WATCH_HEIGHTS = 2


class SigningGuard:
    def __init__(self, *, watch_heights: int = WATCH_HEIGHTS) -> None:
        if watch_heights < 1:
            raise ValueError(f"watch_heights must be positive, not {watch_heights}")
        self.watch_heights = watch_heights
        self.watched = 0
        """Heights decided while caught up, since the last message signed elsewhere."""
        self.alarmed = False
        """A message signed by this node's key but not by this node was seen."""

    def may_sign(self, *, caught_up: bool, covered: bool, network_started: bool) -> bool:
        """`covered`: the persisted consensus state reaches the height to join at;
        `network_started`: the network has decided at least one block."""
        if not caught_up:
            return False
        if self.watched >= self.watch_heights:
            return True
        return not self.alarmed and (covered or not network_started)

    def decided(self, *, caught_up: bool) -> None:
        """A height was decided (by consensus or a certified decision a peer pushed)."""
        if caught_up:
            self.watched += 1

    def signed_elsewhere(self) -> None:
        """A valid message signed by this node's key that this node did not sign."""
        self.watched = 0
        self.alarmed = True
