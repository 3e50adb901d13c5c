"""The local API client the CLI uses (docs/API.md): blocking, standard library only.

It signs nothing: callers hand it records their member key signed. A node that does not answer
raises `Unreachable`; an answer with an error status raises `ApiError` with the node's message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from node.errors import NodeError

MAX_ANSWER_BYTES = 64 * 1024 * 1024


class Unreachable(NodeError):  # noqa: N818 - says what the node is
    """No node answers at the API address."""


class ApiError(NodeError):
    """The node answered with an error."""

    def __init__(self, status: int, message: str, rule: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.rule = rule


@dataclass(frozen=True, slots=True)
class Client:
    url: str
    token: str | None = None
    timeout: float = 10.0

    def get(self, path: str, *, timeout: float | None = None) -> Any:
        return self._call("GET", path, None, timeout)

    def post(self, path: str, doc: Any) -> Any:
        return self._call("POST", path, doc, None)

    def _call(self, method: str, path: str, doc: Any, timeout: float | None) -> Any:
        body = None if doc is None else json.dumps(doc).encode()
        request = urllib.request.Request(self.url + path, data=body, method=method)  # noqa: S310 - http only
        request.add_header("Accept", "application/json")
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if self.token is not None:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as answer:  # noqa: S310
                return _json(answer.read(MAX_ANSWER_BYTES + 1), answer.status)
        except urllib.error.HTTPError as e:
            with e:
                doc = _json(e.read(MAX_ANSWER_BYTES + 1), e.code, strict=False)
            message = doc.get("error") if isinstance(doc, dict) else None
            rule = doc.get("rule") if isinstance(doc, dict) else None
            raise ApiError(e.code, message or f"the node answered {e.code} {e.reason}", rule) from e
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise Unreachable(
                f"no Commons node answers at {self.url} ({reason}); start one with "
                "`commons node start` (or a local network with `commons devnet --dir DIR`)"
            ) from e

    def status(self) -> dict[str, Any]:
        return dict(self.get("/api/status"))

    def feed(self, author: bytes) -> dict[str, Any]:
        return dict(self.get(f"/api/feeds/{author.hex()}"))

    def submit(self, raw: bytes) -> dict[str, Any]:
        return dict(self.post("/api/records", {"record": raw.hex()}))

    def record(self, record_id: bytes, *, wait: float = 0) -> dict[str, Any]:
        path = f"/api/records/{record_id.hex()}" + (f"?wait={wait:g}" if wait else "")
        return dict(self.get(path, timeout=wait + self.timeout))


def _json(data: bytes, status: int, *, strict: bool = True) -> Any:
    if len(data) > MAX_ANSWER_BYTES:
        raise ApiError(status, f"the node's answer is larger than {MAX_ANSWER_BYTES} bytes")
    try:
        return json.loads(data)
    except ValueError as e:
        if not strict:
            return {}
        raise ApiError(status, "the node's answer is not JSON") from e
