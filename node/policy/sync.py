"""Catch-up: when this node is behind, what to fetch from whom; and what to send a peer that is
behind (docs/PROTOCOL.md §14, "Catch-up").

Fetching (`CatchUp.poll`, `fetched`, `fetch_failed`; each takes this node's decided height, its
*tip*, and the time, and returns `Fetch` and `Report` actions). The rules:

- **Peers advertise heights.** A peer that sends a `status` or any consensus message of height h
  is deciding h, so it has decided h - 1 (`peer_at`); a `decision` of height h says it decided h
  (the caller passes h + 1). Claims only go up, until a fetch from that peer fails.
- **Behind** means a peer has decided more than this node, and either by more than one height,
  or this node's tip has not moved for `stall_ms` (one height behind is normal for a moment: the
  node is still deciding it).
- **One range at a time, in order**: `Fetch(peer, first, last)` asks for the blocks after the
  tip, at most `max_range` of them and no more than the peer has decided, from the peer that
  advertises the most (the first to join among equals). Ranges go one after another because a
  block can be verified only on top of the one before it.
- **Timeout, then another peer.** A request with no progress of the tip for `timeout_ms` fails;
  so does an answer that moved the tip nowhere. A peer that failed is not asked again for
  `timeout_ms`, and its claims are forgotten and not believed meanwhile, so the next request goes
  to another peer, and a peer that claims heights it cannot serve does not keep this node
  "behind".
- **Invalid blocks**: a peer that served a block that does not verify is reported (`Report`, for
  the shell to penalise or disconnect it) and never asked again.
- `progress()` gives (ours, best known, syncing) for logs and readiness; `caught_up(tip)` says a
  peer has been heard and none is ahead.

Serving (`decisions_for`): a peer that says it is at height h (a `status`, or a message two or
more heights back) gets the decided heights h … h + `SERVE_BATCH` - 1 this node has, each at most
once per `resend_ms` per peer (it asks again while it stays behind; a lost answer is re-sent).

Pure: time is an argument, peers are opaque hashable ids.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)

MAX_RANGE = 64
MAX_BANNED = 4096
SERVE_BATCH = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetch(Generic[P]):
    """Ask `peer` for the decided blocks `first` … `last` with their certificates."""

    peer: P
    first: int
    last: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Report(Generic[P]):
    """`peer` served invalid blocks: the shell penalises or disconnects it."""

    peer: P
    reason: str


SyncAction = Fetch[P] | Report[P]


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    ours: int
    """This node's decided height."""
    best: int
    """The highest decided height a usable peer advertises (at least ours)."""
    syncing: bool
    """Behind, or a fetch is in flight."""


@dataclass(slots=True)
class _Request(Generic[P]):
    peer: P
    first: int
    last: int
    since: int
    """When it was sent, or when the tip last moved while it was in flight."""


class CatchUp(Generic[P]):
    def __init__(
        self,
        *,
        stall_ms: int,
        timeout_ms: int,
        resend_ms: int,
        max_range: int = MAX_RANGE,
        serve_batch: int = SERVE_BATCH,
    ) -> None:
        if min(stall_ms, timeout_ms, resend_ms, max_range, serve_batch) < 1:
            raise ValueError(
                f"catch-up settings must be positive: stall_ms {stall_ms}, timeout_ms "
                f"{timeout_ms}, resend_ms {resend_ms}, max_range {max_range}, "
                f"serve_batch {serve_batch}"
            )
        self.stall_ms = stall_ms
        self.timeout_ms = timeout_ms
        self.resend_ms = resend_ms
        self.max_range = max_range
        self.serve_batch = serve_batch
        self._decided: dict[P, int] = {}
        """peer -> the highest height it advertises as decided (peers in join order)."""
        self._resting: dict[P, int] = {}
        """peer -> until when it is not asked (it failed a request)."""
        self._banned: dict[P, None] = {}
        """Peers that served invalid blocks, the newest `MAX_BANNED` (oldest forgotten first)."""
        self._request: _Request[P] | None = None
        self._tip = -1
        self._tip_since = 0
        self._served: dict[P, dict[int, int]] = {}
        """peer -> height -> when this node last sent it that decision."""

    # peers

    def peer_joined(self, peer: P) -> None:
        self._decided.setdefault(peer, 0)

    def peer_left(self, peer: P) -> None:
        self._decided.pop(peer, None)
        self._resting.pop(peer, None)
        self._served.pop(peer, None)
        if self._request is not None and self._request.peer == peer:
            self._request = None

    def peer_at(self, peer: P, height: int) -> None:
        """`peer` sent a message of `height`: it has decided `height` - 1 (a peer not joined
        yet joins). Not believed from a peer that is resting after a failed request."""
        if peer in self._banned or peer in self._resting:
            return
        if height - 1 > self._decided.get(peer, 0):
            self._decided[peer] = height - 1

    # fetching

    def poll(self, *, tip: int, now: int) -> list[SyncAction[P]]:
        """Check the request in flight and start the next one if this node is behind."""
        self._see_tip(tip, now)
        for peer in [p for p, until in self._resting.items() if until <= now]:
            del self._resting[peer]  # believed again from its next message on
        request = self._request
        if request is not None:
            if tip >= request.last:
                self._request = None
            elif now - request.since >= self.timeout_ms:
                self._fail(request.peer, now)
            else:
                return []
        if not self._behind(tip, now):
            return []
        return self._next(tip, now)

    def fetched(self, peer: P, *, tip: int, now: int) -> list[SyncAction[P]]:
        """`peer` answered, and what it sent is stored: this node has decided `tip`."""
        request = self._request
        if request is None or request.peer != peer:
            return self.poll(tip=tip, now=now)
        self._request = None
        if tip < request.first:
            self._fail(peer, now)
        return self.poll(tip=tip, now=now)

    def fetch_failed(
        self, peer: P, *, tip: int, now: int, invalid: str | None = None
    ) -> list[SyncAction[P]]:
        """A request to `peer` failed (transport, timeout), or its blocks did not verify
        (`invalid` says why): the peer is reported and never asked again."""
        out: list[SyncAction[P]] = []
        if self._request is not None and self._request.peer == peer:
            self._request = None
        if invalid is not None:
            self._banned[peer] = None
            if len(self._banned) > MAX_BANNED:
                del self._banned[next(iter(self._banned))]
            self._decided.pop(peer, None)
            out.append(Report(peer=peer, reason=invalid))
        else:
            self._fail(peer, now)
        return out + self.poll(tip=tip, now=now)

    @property
    def in_flight(self) -> Fetch[P] | None:
        request = self._request
        if request is None:
            return None
        return Fetch(peer=request.peer, first=request.first, last=request.last)

    def progress(self) -> Progress:
        ours = max(self._tip, 0)
        best = max(ours, self._best())
        return Progress(ours=ours, best=best, syncing=self._request is not None or best > ours)

    def caught_up(self, tip: int) -> bool:
        """A peer has been heard from, and none is known to be ahead of `tip`."""
        heard = any(h > 0 for h in self._decided.values())
        return heard and self._best() <= tip

    def _see_tip(self, tip: int, now: int) -> None:
        if tip != self._tip:
            if self._request is not None and tip > self._tip:
                self._request.since = now
            self._tip, self._tip_since = tip, now

    def _best(self) -> int:
        return max(self._decided.values(), default=0)

    def _behind(self, tip: int, now: int) -> bool:
        best = self._best()
        return best > tip + 1 or (best > tip and now - self._tip_since >= self.stall_ms)

    def _next(self, tip: int, now: int) -> list[SyncAction[P]]:
        first = tip + 1
        choice: P | None = None
        for peer, decided in self._decided.items():
            if decided < first or peer in self._resting:
                continue
            if choice is None or decided > self._decided[choice]:
                choice = peer
        if choice is None:
            return []
        last = min(self._decided[choice], first + self.max_range - 1)
        self._request = _Request(peer=choice, first=first, last=last, since=now)
        return [Fetch(peer=choice, first=first, last=last)]

    def _fail(self, peer: P, now: int) -> None:
        if self._request is not None and self._request.peer == peer:
            self._request = None
        self._resting[peer] = now + self.timeout_ms
        if peer in self._decided:
            self._decided[peer] = 0

    # serving

    def decisions_for(self, peer: P, height: int, *, tip: int, now: int) -> list[int]:
        """`peer` is at `height`: the decided heights to send it now."""
        served = self._served.setdefault(peer, {})
        for h in [h for h, at in served.items() if h < height or now - at >= self.resend_ms]:
            del served[h]
        out = []
        for h in range(max(height, 1), min(tip, height + self.serve_batch - 1) + 1):
            if h not in served:
                served[h] = now
                out.append(h)
        return out
