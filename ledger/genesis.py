"""The genesis document: a network's name, founding members and tokens, validators and
parameters with their hard bounds. The SHA-256 of its canonical encoding is the network id that
every signature commits to.

On disk a genesis is JSON (bytes as hex), for people to read; its identity is the canonical
MessagePack encoding of the same content, so JSON formatting does not change the network id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger import codec, jsontext, schema
from ledger.crypto import PUBLIC_KEY_BYTES, sha256
from ledger.errors import DecodeError, SchemaError
from ledger.rulebook import Rule
from ledger.validators import MAX_VALIDATORS, ValidatorSet

FORMAT = "commons-genesis-v1"
LEDGER_RULES = "ledger-v1"
"""The rules identifier of a network that runs the ledger's rules alone (PROTOCOL §8, §11)."""
_RULES_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")
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
    rules: str
    """Which state transition the network runs on top of the ledger's rules (PROTOCOL §11): a
    verifier needs it to recompute state roots, and it is part of the network id."""
    members: tuple[Member, ...]
    validators: ValidatorSet
    params: Mapping[str, Param]
    raw: bytes = field(init=False, repr=False, compare=False)
    network_id: bytes = field(init=False, compare=False)

    def __post_init__(self) -> None:
        schema.text(self.name, "genesis.name", 1, 64)
        schema.integer(self.time, "genesis.time", 0, schema.MAX_INT)
        if type(self.rules) is not str or not _RULES_NAME.fullmatch(self.rules):
            raise SchemaError(
                f"genesis.rules must be 1..64 of a-z, 0-9, '.' and '-', got {self.rules!r:.80}"
            )
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
            "rules": self.rules,
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
        schema.exact_keys(m, "genesis", _FIELDS, frozenset())
        if m["format"] != FORMAT:
            raise SchemaError(f"genesis format must be {FORMAT!r}, got {m['format']!r:.80}")
        members = []
        for index, x in enumerate(_items(m["members"], "members", MAX_MEMBERS)):
            schema.exact_keys(x, f"members[{index}]", _MEMBER_FIELDS, frozenset())
            members.append(Member(name=x["name"], key=x["key"], tokens=x["tokens"]))
        if not isinstance(m["params"], Mapping):
            raise SchemaError("genesis params must be a map of name to {value, min, max}")
        params = {}
        for name, p in m["params"].items():
            schema.exact_keys(p, f"params.{name}", _PARAM_FIELDS, frozenset())
            params[name] = Param(value=p["value"], min=p["min"], max=p["max"])
        return cls(
            name=m["name"],
            time=m["time"],
            rules=m["rules"],
            members=tuple(members),
            validators=ValidatorSet.from_wire(m["validators"]),
            params=params,
        )

    def to_json(self) -> bytes:
        doc = self.to_wire()
        doc["members"] = [{**x, "key": x["key"].hex()} for x in doc["members"]]
        doc["validators"] = [{"key": k.hex(), "power": p} for k, p in doc["validators"]]
        return (json.dumps(doc, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, *, what: str = "genesis") -> Genesis:
        """A genesis from its JSON form; DecodeError or SchemaError saying what is wrong with
        `what` (the name of the file for the user) otherwise."""
        if len(data) > MAX_GENESIS_BYTES:
            raise DecodeError(
                f"{what} of {len(data)} bytes exceeds {MAX_GENESIS_BYTES}", rule=Rule.GENESIS
            )
        try:
            doc = jsontext.parse(data, what, max_depth=MAX_JSON_DEPTH)
        except DecodeError as e:
            raise DecodeError(str(e), rule=Rule.GENESIS) from e
        try:
            schema.exact_keys(doc, "the document", _FIELDS, frozenset())
            members = []
            for index, x in enumerate(_items(doc["members"], "members", MAX_MEMBERS)):
                where = f"members[{index}]"
                schema.exact_keys(x, where, _MEMBER_FIELDS, frozenset())
                members.append({**x, "key": _hex_key(x["key"], f"{where}.key")})
            validators = []
            for index, v in enumerate(_items(doc["validators"], "validators", MAX_VALIDATORS)):
                where = f"validators[{index}]"
                schema.exact_keys(v, where, frozenset({"key", "power"}), frozenset())
                validators.append((_hex_key(v["key"], f"{where}.key"), v["power"]))
            return cls.from_wire(
                {**doc, "members": tuple(members), "validators": tuple(validators)}
            )
        except SchemaError as e:
            raise SchemaError(f"{what}: {e}", rule=Rule.GENESIS) from e


_FIELDS = frozenset({"format", "name", "time", "rules", "members", "validators", "params"})
_MEMBER_FIELDS = frozenset({"name", "key", "tokens"})
_PARAM_FIELDS = frozenset({"value", "min", "max"})
MAX_JSON_DEPTH = 4
"""A genesis in JSON nests no deeper: the document, a list of members, a member, its fields."""


def _items(value: Any, what: str, most: int) -> tuple[Any, ...]:
    """A list (a tuple on the wire, a list in JSON) of at most `most` items."""
    if not isinstance(value, list | tuple):
        raise SchemaError(f"genesis {what} must be a list")
    if len(value) > most:
        raise SchemaError(f"at most {most} genesis {what}, got {len(value)}")
    return tuple(value)


def _hex_key(value: Any, what: str) -> bytes:
    """A public key written as 64 hex digits."""
    key = jsontext.hex_bytes(value, PUBLIC_KEY_BYTES)
    if key is None:
        raise SchemaError(f"{what} must be {2 * PUBLIC_KEY_BYTES} hex digits, got {value!r:.80}")
    return key


def make_genesis(
    *,
    name: str,
    time: int,
    members: Mapping[bytes, tuple[str, int]],
    validators: Mapping[bytes, int],
    params: Mapping[str, Param] | None = None,
    rules: str = LEDGER_RULES,
) -> Genesis:
    """A genesis with the ledger's default parameters, overridden or extended by `params`."""
    return Genesis(
        name=name,
        time=time,
        rules=rules,
        members=tuple(Member(name=n, key=k, tokens=t) for k, (n, t) in sorted(members.items())),
        validators=ValidatorSet.of(validators),
        params={**LEDGER_PARAMS, **(params or {})},
    )
