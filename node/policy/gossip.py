"""What a node forwards to which peer: the forwarding policy, one replaceable piece (`Forwarding`),
and the one this network runs now (`Gossip`).

The shell tells the policy when peers come and go, what arrived from whom, which record ids a
peer announced, what the node itself sends, and the time every gossip interval; the policy
answers with the `Send`s to perform. A message is its bytes; its id is their SHA-256 (for a
record, its record id). `Gossip`'s rules:

- **Consensus messages are flooded.** A new one (its id not in the seen-cache) goes to every
  connected peer but the one it came from; one this node signs goes to every peer. They go to
  every peer and not only to validators: on a small network any peer may be the only path
  between two validators, and a node does not know which of its peers validate.
- **Records are pushed by their origin and announced by relays** (the `inv`/`getdata` of Bitcoin's
  relay). A record this node originates (submitted here, or its own) goes whole to every peer. A
  new record that came from a peer is relayed by id only (`HAVE`, 32 bytes) to every other peer
  not known to have it (it announced the id too). A peer that announces an id this node has not
  seen is asked for the record (`WANT`), one announcer at a time: if the record has not come
  `want_timeout_ms` later, the next announcer still connected is asked (in turn, from the first
  again after the last), up to `ASKS_PER_ANNOUNCER` times its number of announcers in all, and
  then the id is forgotten (a later announcement starts again). A record that came but cannot be
  kept yet (out of order, no room, stamped ahead of this node's clock) is asked for again the same
  way, of the peer that sent it first. On a full mesh every node gets each record once, from its
  origin, where flooding brought it three times and had it relay it twice; on any connected graph
  of honest nodes every node still gets every record it can keep within its asks, and a peer that
  announces but never answers delays a record by `want_timeout_ms` (and a gossip interval) per
  silent announcer asked before an honest one. Each peer names at most `max_announced` of the ids
  being asked for: beyond that its announcements are ignored, so no peer's junk crowds out
  another's records.
- **Seen once.** The seen-cache keeps ids for at most `max_age_ms` and at most `max_seen` of
  them (the oldest leave first). A message seen before is neither forwarded nor reported new,
  so the shell hands only new ones to the engine or the mempool. The shell passes only messages
  it can use now: a consensus message of a height further ahead is left to its sender's
  re-sends (below), and a record its mempool cannot take yet to be asked for again (the shell
  says `not_yet`; `arrived` when it will never keep it), so the cache does not make the node deaf
  to them later.
- **Who has what.** Per peer, the consensus messages it is known to have (it sent them, or this
  node sent them to it), forgotten when the node's height moves and every `relay_again_ticks`
  stuck ticks. (Records are not tracked: a stuck node re-sends its own to every peer.)
- **Stuck.** When the node's height has not moved for `stuck_after_ms` (checked at `tick`, once
  per gossip interval), messages may have been lost: it sends its `status` and what it signed
  at this height, and its own records not final yet (whole), to every peer, and relays each
  message of the height it holds to the peers not known to have it. Every `relay_again_ticks`
  stuck ticks it forgets who has what, so everything is relayed again (a relayed message may
  have been lost).
- **Own records again.** While the height moves, a node still announces its own records not final
  yet (`HAVE`) to every peer every `relay_again_ticks` ticks: one lost with a connection that
  dropped, or with a peer that crashed before proposing it, would otherwise wait for ever at a
  node that never proposes. A peer that lacks one asks for it; one that has it ignores the id.

Pure: time is an argument, peers are opaque hashable ids, sends go out in the order peers joined.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, NamedTuple, Protocol, TypeVar

from ledger.crypto import sha256

P = TypeVar("P", bound=Hashable)
"""A peer's id (the simulator's node index, the node's peer key)."""


class Kind(enum.Enum):
    """What a message is, for the shell to frame it."""

    RECORD = "record"
    CONSENSUS = "consensus"
    HAVE = "have"
    """A record id this node holds (an announcement)."""
    WANT = "want"
    """A record id this node asks the peer for."""


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

    def arrived(self, record_id: bytes) -> None:
        """A record came whole and will never be kept: it is not to be asked for any more."""
        ...

    def not_yet(self, peer: P, record_id: bytes, *, now: int) -> None:
        """A record came whole from `peer`, and this node cannot keep it yet (out of order, no
        room, stamped ahead of its clock): it is to be asked for again later."""
        ...

    def announced(self, peer: P, record_ids: Iterable[bytes], *, now: int) -> list[Send[P]]:
        """`peer` holds these records; what to ask for."""
        ...

    def ask_again(self, now: int) -> list[Send[P]]:
        """Called every gossip interval: the records asked for in vain, asked of the next
        announcer."""
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
WANT_TIMEOUT_MS = 2_000
ASKS_PER_ANNOUNCER = 3
"""A record is asked for at most this many times its number of announcers (peers that announced
or sent it), in all, before it is forgotten: every announcer is asked in turn, however many
silent ones announced first."""
MAX_ANNOUNCED = 8_192
"""Announcements of records not come yet remembered per peer: one peer's junk ids never crowd
out another's records."""


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


@dataclass(slots=True)
class _Want(Generic[P]):
    """A record id asked for: the peers that announced it (or sent it too early), in order; the
    one asked last (`peers[asked]`), when it is given up on, and how many asks are left."""

    peers: list[P]
    asked: int
    deadline: int
    asks_left: int


class Gossip(Generic[P]):
    def __init__(
        self,
        *,
        stuck_after_ms: int,
        relay_again_ticks: int = RELAY_AGAIN_TICKS,
        want_timeout_ms: int = WANT_TIMEOUT_MS,
        max_announced: int = MAX_ANNOUNCED,
        seen: SeenCache | None = None,
    ) -> None:
        if min(stuck_after_ms, relay_again_ticks, want_timeout_ms, max_announced) < 1:
            raise ValueError(
                f"stuck_after_ms {stuck_after_ms}, relay_again_ticks {relay_again_ticks}, "
                f"want_timeout_ms {want_timeout_ms} and max_announced {max_announced} must be "
                "positive"
            )
        self.stuck_after_ms = stuck_after_ms
        self.relay_again_ticks = relay_again_ticks
        self.want_timeout_ms = want_timeout_ms
        self.max_announced = max_announced
        self.seen = seen if seen is not None else SeenCache()
        self._has: dict[P, set[bytes]] = {}
        """peer -> ids of the consensus messages it is known to have (this height)."""
        self._ids: dict[bytes, bytes] = {}
        """The ids of the messages `tick` was given (held by the engine anyway), so that a stuck
        node does not hash them again at every tick; emptied with `_has`."""
        self._wanted: dict[bytes, _Want[P]] = {}
        """Record ids asked for and not kept yet."""
        self._announced: dict[P, int] = {}
        """peer -> how many of the wanted ids name it (at most `max_announced`)."""
        self._height: int | None = None
        self._since = 0
        self._stuck_ticks = 0
        self._ticks = 0

    @property
    def peers(self) -> tuple[P, ...]:
        return tuple(self._has)

    @property
    def wanted(self) -> int:
        """How many record ids are asked for and have not come."""
        return len(self._wanted)

    def peer_joined(self, peer: P) -> None:
        self._has.setdefault(peer, set())
        self._announced.setdefault(peer, 0)

    def peer_left(self, peer: P) -> None:
        self._has.pop(peer, None)
        if not self._announced.get(peer):  # kept while wants name it: no fresh share on return
            self._announced.pop(peer, None)

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
        if kind is Kind.RECORD:
            want = self._drop_want(message_id)
            if not (new and relay):
                return Received(new=new, sends=())
            holders = (peer,) if want is None else (peer, *want.peers)
            sends = [Send(p, Kind.HAVE, message_id) for p in self._has if p not in holders]
            return Received(new=True, sends=tuple(sends))
        has = self._has.get(peer)
        if has is not None:
            if len(has) >= self.seen.max_count:
                has.clear()
            has.add(message_id)
        if not (new and relay):
            return Received(new=new, sends=())
        return Received(new=True, sends=tuple(self._to_all(data, message_id, kind, but=peer)))

    def arrived(self, record_id: bytes) -> None:
        self._drop_want(record_id)

    def not_yet(self, peer: P, record_id: bytes, *, now: int) -> None:
        want = self._wanted.get(record_id)
        named = want is not None and peer in want.peers
        if not (named or self._may_name(peer)):
            return
        if want is None:
            want = self._wanted[record_id] = _Want([], 0, 0, 0)
        if not named:
            self._name(want, peer)
        want.asked = want.peers.index(peer) - 1  # asked again of the peer that has it, first
        want.deadline = now + self.want_timeout_ms

    def announced(self, peer: P, record_ids: Iterable[bytes], *, now: int) -> list[Send[P]]:
        out: list[Send[P]] = []
        if peer not in self._has:
            return out
        wanted, seen, announced = self._wanted, self.seen, self._announced
        for record_id in record_ids:
            if record_id in seen or announced[peer] >= self.max_announced:
                continue
            want = wanted.get(record_id)
            if want is None:  # asked of this peer now: one of its asks is used
                want = wanted[record_id] = _Want([], 0, now + self.want_timeout_ms, -1)
                out.append(Send(peer, Kind.WANT, record_id))
            elif peer in want.peers:
                continue
            self._name(want, peer)
        return out

    def ask_again(self, now: int) -> list[Send[P]]:
        out: list[Send[P]] = []
        gone: list[bytes] = []
        for record_id, want in self._wanted.items():
            if now < want.deadline:
                continue
            peer = self._next_announcer(want) if want.asks_left else None
            if peer is None:
                gone.append(record_id)
                continue
            want.asks_left -= 1
            want.deadline = now + self.want_timeout_ms
            out.append(Send(peer, Kind.WANT, record_id))
        for record_id in gone:
            self._drop_want(record_id)
        return out

    def _next_announcer(self, want: _Want[P]) -> P | None:
        """The announcer after the one asked last, in turn, that is still connected."""
        count = len(want.peers)
        for step in range(1, count + 1):
            at = (want.asked + step) % count
            if want.peers[at] in self._has:
                want.asked = at
                return want.peers[at]
        return None

    def _name(self, want: _Want[P], peer: P) -> None:
        """`peer` announced or sent the record `want` is for: one more announcer to ask."""
        want.peers.append(peer)
        want.asks_left += ASKS_PER_ANNOUNCER
        self._announced[peer] += 1

    def _may_name(self, peer: P) -> bool:
        """`peer` is connected and names fewer than `max_announced` of the wanted ids."""
        return peer in self._has and self._announced[peer] < self.max_announced

    def _drop_want(self, record_id: bytes) -> _Want[P] | None:
        want = self._wanted.pop(record_id, None)
        if want is not None:
            announced = self._announced
            for peer in want.peers:
                announced[peer] -= 1
                if not announced[peer] and peer not in self._has:
                    del announced[peer]
        return want

    def originated(self, data: bytes, *, kind: Kind, now: int) -> list[Send[P]]:
        message_id = sha256(data)
        self.seen.first_time(message_id, now)
        self._drop_want(message_id)
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
        self._ticks += 1
        moving = height != self._height or now - self._since < self.stuck_after_ms
        if moving and self._ticks % self.relay_again_ticks:
            own_records = ()
        if height != self._height:
            if self._height is not None:
                self._forget()
            self._height, self._since, self._stuck_ticks = height, now, 0
        if moving:  # its own records are announced again every few ticks (one may have been lost)
            return [Send(p, Kind.HAVE, sha256(d)) for d in own_records for p in self._has]
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
