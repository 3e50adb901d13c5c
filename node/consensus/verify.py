"""A memo of checked signatures, keyed by the exact bytes signed and the signature.

Every consensus message reaches a node several times (gossip, relays, re-sends after restarts); a
real node verifies each distinct one once. The cache keeps verdicts, valid and invalid, for at
most `capacity` distinct messages, dropping the oldest first, so memory is bounded and the result
never depends on hash order. One cache may be shared by many engines of one network (the
simulator does): a verdict depends only on (key, tag, network id, body, signature).
"""

from __future__ import annotations

from ledger.crypto import Tag, verify_tagged
from ledger.errors import SignatureError


class SignatureCache:
    def __init__(self, network_id: bytes, *, capacity: int = 200_000) -> None:
        self.network_id = network_id
        self.capacity = capacity
        self._verdicts: dict[tuple[bytes, str, bytes, bytes], bool] = {}
        self.checked = 0
        """Signatures actually verified (cache misses)."""

    def verify(self, public_key: bytes, tag: Tag, body: bytes, signature: bytes) -> None:
        """Raise SignatureError unless `public_key` signed `body` under `tag` for the network."""
        key = (public_key, tag.value, body, signature)
        verdict = self._verdicts.get(key)
        if verdict is None:
            self.checked += 1
            try:
                verify_tagged(public_key, tag, self.network_id, body, signature)
                verdict = True
            except SignatureError:
                verdict = False
            if len(self._verdicts) >= self.capacity:
                del self._verdicts[next(iter(self._verdicts))]
            self._verdicts[key] = verdict
        if not verdict:
            raise SignatureError(f"bad {tag.value} signature by {public_key.hex()[:16]}")
