"""The genesis document: a network's name, founding members and tokens, validators and
parameters with their hard bounds. The SHA-256 of its canonical encoding is the network id that
every signature commits to.

On disk a genesis is JSON (bytes as hex), for people to read; its identity is the canonical
MessagePack encoding of the same content, so JSON formatting does not change the network id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger import codec, schema
from ledger.crypto import PUBLIC_KEY_BYTES, sha256
from ledger.errors import DecodeError, SchemaError
from ledger.validators import ValidatorSet

FORMAT = "commons-genesis-v1"
MAX_MEMBERS = 10_000
MAX_GENESIS_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    """An integer parameter and the hard bounds no governance action can take it past."""

    value: int
    min: int
    max: int

    def __post_init__(self) -> None:
        for name in ("value", "min", "max"):
            schema.integer(getattr(self, name), f"param.{name}", -schema.MAX_INT, schema.MAX_INT)
        if not self.min <= self.value <= self.max:
            raise SchemaError(
                f"parameter value {self.value} is outside its bounds {self.min}..{self.max}"
            )


LEDGER_PARAMS: dict[str, Param] = {
    # How far a record's timestamp may run ahead of its block's time.
    "max_skew_ms": Param(value=10 * 60_000, min=0, max=24 * 3_600_000),
    # Most records in one block.
    "max_block_records": Param(value=10_000, min=1, max=100_000),
    # A proposer makes a block at least this often, so deadlines fire on a quiet network.
    "max_block_interval_ms": Param(value=60_000, min=1_000, max=3_600_000),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    name: str
    key: bytes
    tokens: int

    def __post_init__(self) -> None:
        schema.text(self.name, "member.name", 1, 64)
        schema.fixed_bytes(self.key, "member.key", PUBLIC_KEY_BYTES)
        schema.integer(self.tokens, "member.tokens", 0, schema.MAX_INT)


@dataclass(frozen=True, slots=True, kw_only=True)
class Genesis:
    name: str
    time: int
    members: tuple[Member, ...]
    validators: ValidatorSet
    params: Mapping[str, Param]
    raw: bytes = field(init=False, repr=False, compare=False)
    network_id: bytes = field(init=False, compare=False)

    def __post_init__(self) -> None:
        schema.text(self.name, "genesis.name", 1, 64)
        schema.integer(self.time, "genesis.time", 0, schema.MAX_INT)
        keys = [m.key for m in self.members]
        if keys != sorted(set(keys)):
            raise SchemaError("genesis members must be sorted by key and distinct")
        if len(self.members) > MAX_MEMBERS:
            raise SchemaError(f"at most {MAX_MEMBERS} genesis members, got {len(self.members)}")
        if sum(m.tokens for m in self.members) > schema.MAX_INT:
            raise SchemaError("genesis token supply is too large")
        for name in LEDGER_PARAMS:
            if name not in self.params:
                raise SchemaError(f"genesis lacks parameter {name}")
        for name in self.params:
            schema.text(name, "param name", 1, 64)
        object.__setattr__(self, "params", dict(sorted(self.params.items())))
        raw = codec.encode(self.to_wire())
        object.__setattr__(self, "raw", raw)
        object.__setattr__(self, "network_id", sha256(raw))

    def param(self, name: str) -> int:
        return self.params[name].value

    def to_wire(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "time": self.time,
            "members": tuple(
                {"name": m.name, "key": m.key, "tokens": m.tokens} for m in self.members
            ),
            "validators": self.validators.to_wire(),
            "params": {
                n: {"value": p.value, "min": p.min, "max": p.max} for n, p in self.params.items()
            },
        }

    @classmethod
    def from_wire(cls, m: Any) -> Genesis:
        schema.exact_keys(
            m,
            "genesis",
            frozenset({"format", "name", "time", "members", "validators", "params"}),
            frozenset(),
        )
        if m["format"] != FORMAT:
            raise SchemaError(f"genesis format must be {FORMAT!r}, got {m['format']!r}")
        try:
            members = tuple(Member(**dict(x)) for x in m["members"])
            params = {n: Param(**dict(p)) for n, p in dict(m["params"]).items()}
        except (TypeError, ValueError) as e:
            raise SchemaError(f"malformed genesis: {e}") from e
        return cls(
            name=m["name"],
            time=m["time"],
            members=members,
            validators=ValidatorSet.from_wire(m["validators"]),
            params=params,
        )

    def to_json(self) -> bytes:
        doc = self.to_wire()
        doc["members"] = [{**x, "key": x["key"].hex()} for x in doc["members"]]
        doc["validators"] = [{"key": k.hex(), "power": p} for k, p in doc["validators"]]
        return (json.dumps(doc, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Genesis:
        if len(data) > MAX_GENESIS_BYTES:
            raise DecodeError(f"genesis of {len(data)} bytes exceeds {MAX_GENESIS_BYTES}")
        try:
            doc = json.loads(data.decode("utf-8"))
            doc["members"] = tuple({**x, "key": bytes.fromhex(x["key"])} for x in doc["members"])
            doc["validators"] = tuple(
                (bytes.fromhex(v["key"]), v["power"]) for v in doc["validators"]
            )
        except UnicodeDecodeError as e:
            raise DecodeError("genesis is not UTF-8 JSON text") from e
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise DecodeError(f"genesis is not valid JSON of the genesis format: {e!r}") from e
        return cls.from_wire(doc)


def make_genesis(
    *,
    name: str,
    time: int,
    members: Mapping[bytes, tuple[str, int]],
    validators: Mapping[bytes, int],
    params: Mapping[str, Param] | None = None,
) -> Genesis:
    """A genesis with the ledger's default parameters, overridden or extended by `params`."""
    return Genesis(
        name=name,
        time=time,
        members=tuple(Member(name=n, key=k, tokens=t) for k, (n, t) in sorted(members.items())),
        validators=ValidatorSet.of(validators),
        params={**LEDGER_PARAMS, **(params or {})},
    )
