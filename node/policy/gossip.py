"""What a node forwards to which peer: the forwarding policy, one replaceable piece (`Forwarding`),
and the one this network runs now (`Flood`).

The shell tells the policy when peers come and go, what arrived from whom, what the node itself
sends, and the time every gossip interval; the policy answers with the `Send`s to perform. A
message is its bytes; its id is their SHA-256. `Flood`'s rules:

- **Flood.** A message that is new (its id not in the seen-cache) goes to every connected peer
  but the one it came from; one this node originates goes to every peer. Consensus messages are
  flooded like records and evidence, to every peer and not only to validators: on a small network
  any peer may be the only path between two validators, and a node does not know which of its
  peers validate. (Efficient gossip at scale, with announcements and fetches, replaces this
  piece later.)
- **Seen once.** The seen-cache keeps ids for at most `max_age_ms` and at most `max_seen` of
  them (the oldest leave first). A message seen before is neither forwarded nor reported new,
  so the shell hands only new ones to the engine or the mempool. The shell passes only messages
  it can use now: a consensus message of a height further ahead is left to its sender's
  re-sends (below), so the cache does not make the node deaf to it later.
- **Who has what.** Per peer, the consensus messages it is known to have (it sent them, or this
  node sent them to it), forgotten when the node's height moves and every `relay_again_ticks`
  stuck ticks. (Records are not tracked: a stuck node re-sends its own to every peer.)
- **Stuck.** When the node's height has not moved for `stuck_after_ms` (checked at `tick`, once
  per gossip interval), messages may have been lost: it sends its `status` and what it signed
  at this height, and its own records not final yet, to every peer, and relays each message of
  the height it holds to the peers not known to have it. Every `relay_again_ticks` stuck ticks it
  forgets who has what, so everything is relayed again (a relayed message may have been lost).

Pure: time is an argument, peers are opaque hashable ids, sends go out in the order peers joined.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Generic, NamedTuple, Protocol, TypeVar

from ledger.crypto import sha256

P = TypeVar("P", bound=Hashable)
"""A peer's id (the simulator's node index, the node's peer key)."""


class Kind(enum.Enum):
    """What a message is, for the shell to frame it."""

    RECORD = "record"
    CONSENSUS = "consensus"


class Send(NamedTuple, Generic[P]):
    """Send `data` to `peer`. (Named tuples: a node makes a few for every record it relays.)"""

    peer: P
    kind: Kind
    data: bytes


class Received(NamedTuple, Generic[P]):
    new: bool
    """First time seen: hand it to the engine or the mempool."""
    sends: tuple[Send[P], ...]
    """Where to forward it."""


class Forwarding(Protocol[P]):
    """The forwarding policy as the shell and the simulator use it."""

    def peer_joined(self, peer: P) -> None: ...

    def peer_left(self, peer: P) -> None: ...

    def received(
        self,
        peer: P,
        data: bytes,
        *,
        kind: Kind,
        now: int,
        relay: bool = True,
        message_id: bytes | None = None,
    ) -> Received[P]:
        """`data` came from `peer`. `relay=False` for a message meant for this node only;
        `message_id`, its id if the caller has it already."""
        ...

    def originated(self, data: bytes, *, kind: Kind, now: int) -> list[Send[P]]:
        """This node sends `data` (it signed or submitted it)."""
        ...

    def tick(
        self,
        now: int,
        *,
        height: int,
        status: bytes,
        own: Iterable[bytes],
        known: Iterable[bytes],
        own_records: Iterable[bytes] = (),
    ) -> list[Send[P]]:
        """The gossip interval: `height` is the engine's, `status` this node's status message,
        `own` what it signed at that height, `known` every message of that height it holds,
        `own_records` its records not final yet."""
        ...


MAX_SEEN = 100_000
MAX_AGE_MS = 120_000
RELAY_AGAIN_TICKS = 5


class SeenCache:
    """Ids seen, bounded by count and by age (the oldest leave first)."""

    def __init__(self, *, max_count: int = MAX_SEEN, max_age_ms: int = MAX_AGE_MS) -> None:
        if max_count < 1 or max_age_ms < 1:
            raise ValueError(f"seen-cache bounds must be positive: {max_count}, {max_age_ms} ms")
        self.max_count = max_count
        self.max_age_ms = max_age_ms
        self._seen: OrderedDict[bytes, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._seen

    def first_time(self, message_id: bytes, now: int) -> bool:
        """Record `message_id` as seen at `now`; True unless it was seen already."""
        self._expire(now)
        if message_id in self._seen:
            return False
        self._seen[message_id] = now
        if len(self._seen) > self.max_count:
            self._seen.popitem(last=False)
        return True

    def _expire(self, now: int) -> None:
        seen = self._seen
        while seen:
            oldest = next(iter(seen.values()))
            if now - oldest < self.max_age_ms:
                return
            seen.popitem(last=False)


class Flood(Generic[P]):
    def __init__(
        self,
        *,
        stuck_after_ms: int,
        relay_again_ticks: int = RELAY_AGAIN_TICKS,
        seen: SeenCache | None = None,
    ) -> None:
        if stuck_after_ms < 1 or relay_again_ticks < 1:
            raise ValueError(
                f"stuck_after_ms {stuck_after_ms} and relay_again_ticks {relay_again_ticks} "
                "must be positive"
            )
        self.stuck_after_ms = stuck_after_ms
        self.relay_again_ticks = relay_again_ticks
        self.seen = seen if seen is not None else SeenCache()
        self._has: dict[P, set[bytes]] = {}
        """peer -> ids of the messages it is known to have (this height)."""
        self._ids: dict[bytes, bytes] = {}
        """The ids of the messages `tick` was given (held by the engine anyway), so that a stuck
        node does not hash them again at every tick; emptied with `_has`."""
        self._height: int | None = None
        self._since = 0
        self._stuck_ticks = 0

    @property
    def peers(self) -> tuple[P, ...]:
        return tuple(self._has)

    def peer_joined(self, peer: P) -> None:
        self._has.setdefault(peer, set())

    def peer_left(self, peer: P) -> None:
        self._has.pop(peer, None)

    def received(
        self,
        peer: P,
        data: bytes,
        *,
        kind: Kind,
        now: int,
        relay: bool = True,
        message_id: bytes | None = None,
    ) -> Received[P]:
        if message_id is None:
            message_id = sha256(data)
        new = self.seen.first_time(message_id, now)
        has = self._has.get(peer) if kind is Kind.CONSENSUS else None
        if has is not None:
            if len(has) >= self.seen.max_count:
                has.clear()
            has.add(message_id)
        if not (new and relay):
            return Received(new=new, sends=())
        return Received(new=True, sends=tuple(self._to_all(data, message_id, kind, but=peer)))

    def originated(self, data: bytes, *, kind: Kind, now: int) -> list[Send[P]]:
        message_id = sha256(data)
        self.seen.first_time(message_id, now)
        return self._to_all(data, message_id, kind)

    def tick(
        self,
        now: int,
        *,
        height: int,
        status: bytes,
        own: Iterable[bytes],
        known: Iterable[bytes],
        own_records: Iterable[bytes] = (),
    ) -> list[Send[P]]:
        if height != self._height:
            if self._height is not None:
                self._forget()
            self._height, self._since, self._stuck_ticks = height, now, 0
            return []
        if now - self._since < self.stuck_after_ms:
            return []
        self._stuck_ticks += 1
        if self._stuck_ticks % self.relay_again_ticks == 0:
            self._forget()
        out = self._to_all(status, self._id(status), Kind.CONSENSUS)
        for data in own:
            out += self._to_all(data, self._id(data), Kind.CONSENSUS)
        for data in own_records:
            out += self._to_all(data, self._id(data), Kind.RECORD)
        for data in known:
            message_id = self._id(data)
            for peer, has in self._has.items():
                if message_id not in has:
                    has.add(message_id)
                    out.append(Send(peer=peer, kind=Kind.CONSENSUS, data=data))
        return out

    def _to_all(
        self, data: bytes, message_id: bytes, kind: Kind, *, but: P | None = None
    ) -> list[Send[P]]:
        if kind is not Kind.CONSENSUS:  # who has which record is never asked
            return [Send(peer, kind, data) for peer in self._has if peer != but]
        out: list[Send[P]] = []
        for peer, has in self._has.items():
            if peer != but:
                has.add(message_id)
                out.append(Send(peer, kind, data))
        return out

    def _id(self, data: bytes) -> bytes:
        message_id = self._ids.get(data)
        if message_id is None:
            message_id = self._ids[data] = sha256(data)
        return message_id

    def _forget(self) -> None:
        self._ids.clear()
        for has in self._has.values():
            has.clear()
