"""What every state-changing member command does: sign a record with the home's member key, hand
it to the node, wait until it is final, and say what the rules made of it.

The node never sees the private key: it gets the signed bytes. A record the governance rules
refuse is still final (it uses up its seq), so "final" is not "done": `Rejected` says why.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from cli.home import key_path, read_passphrase, resolve_home
from cli.node_cmds import client_for, sign_next, wait_final
from cli.output import console
from ledger.crypto import Keypair, Role
from ledger.files import read_key_file, read_public_key
from ledger.records import Body
from node.client import ApiError, Client
from node.errors import NodeError

no_wait_option = click.option(
    "--no-wait", is_flag=True, help="Return once the node took the record, before it is final."
)


class Rejected(NodeError):  # noqa: N818 - the rules' verdict
    """A final record the governance rules refused: it changed nothing."""


class NotFound(NodeError):  # noqa: N818 - what the node answered
    """The node has no such member, proposal or contribution (or the prefix is ambiguous)."""


@dataclass
class Member:
    """The home's member talking to its node: the client now, the key only when signing."""

    home: Path | None
    api: str | None
    passphrase_file: Path | None
    _client: Client | None = field(default=None, repr=False)
    _key: Keypair | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = client_for(self.home, self.api)
        return self._client

    @property
    def key(self) -> Keypair:
        if self._key is None:
            where = resolve_home(self.home)
            opened = read_key_file(
                key_path(where, Role.MEMBER),
                lambda: read_passphrase(self.passphrase_file, confirm=False),
            )
            self._key = opened.key
        return self._key

    @property
    def public_key(self) -> bytes:
        """The member key's public half, read without asking for a passphrase."""
        if self._key is not None:
            return self._key.public_key
        return read_public_key(key_path(resolve_home(self.home), Role.MEMBER))

    def read(self, path: str, item: str | None = None, **query: str | None) -> Any:
        """A governance read of `path` (or of one `item` under it, an id or a name), with the
        `query` arguments that are not None; NotFound for an unknown or ambiguous one."""
        if item is not None:
            path += "/" + urllib.parse.quote(item, safe="")
        given = {k: v for k, v in query.items() if v is not None}
        if given:
            path += "?" + urllib.parse.urlencode(given)
        try:
            return self.client.get(path)
        except ApiError as e:
            if e.status == 400:
                raise click.UsageError(str(e)) from e
            if e.status in (404, 409):
                raise NotFound(str(e)) from e
            raise

    def resolve(self, who: str) -> dict[str, Any]:
        """A member by key or name, as the node knows it."""
        return dict(self.read("/api/members", who))

    def submit(self, body: Body, *, wait: bool, what: str, then: str | None = None) -> str:
        """Sign `body` as this member's next record, submit it, and (unless not `wait`) wait
        until it is final and report the rules' verdict (`Rejected` if they refused it); `then`,
        the next command to suggest, may name the record as `{id}`. Returns the record id."""
        client = self.client
        network = bytes.fromhex(client.status()["network"])
        record = sign_next(client, self.key, network, body)
        answer = client.submit(record.raw)
        console.print(f"{escape(what)}: record {answer['id']} {answer['status']}")
        if not wait:
            return record.id.hex()
        height = wait_final(client, record.id)
        verdict = client.record(record.id).get("verdict") or {"accepted": True, "reason": None}
        if not verdict["accepted"]:
            raise Rejected(
                f"final in block {height}, but the rules refused it: {verdict['reason']}"
            )
        console.print(f"  final in block {height}; the rules accepted it")
        if then:
            console.print(f"  next: {escape(then.format(id=record.id.hex()[:12]))}")
        return record.id.hex()


def ago(ms: int, now: int) -> str:
    """`now - ms` in words: "in 3 min" for a time to come, "2 h ago" for one past."""
    delta = (ms - now) // 1000
    span = abs(delta)
    text = (
        f"{span} s" if span < 120 else f"{span // 60} min" if span < 7200 else f"{span // 3600} h"
    )
    return f"in {text}" if delta > 0 else f"{text} ago"


def now_ms() -> int:
    return int(time.time() * 1000)
