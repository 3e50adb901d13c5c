"""Governance dry runs: a scenario file played through real keys, records, blocks and a store.

A scenario (JSON, format in docs/SCENARIOS.md) names members and parameters and lists steps at
times in seconds. Each distinct time is one block with that time — block 1 is at the genesis,
time 0 — made and certified by a validator with real keys, applied by the same rules as a live
node (node/rules.py) and stored in SQLite. `expect` steps check the state after their block.
The run is deterministic: the same file gives the same output, byte for byte.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from governance.params import GOVERNANCE_PARAMS
from governance.rules import MEMBER, PROPOSAL, REJECTED, Governance, power_now
from ledger import jsontext
from ledger.crypto import Keypair
from ledger.errors import DecodeError, LedgerError
from ledger.genesis import LEDGER_PARAMS, Param
from ledger.kinds_governance import (
    SUPPORT,
    Action,
    Cancel,
    ChangeValidators,
    Delegation,
    Freeze,
    Proposal,
    Reinstate,
    Reward,
    SetParam,
    Text,
    Transfer,
    Vote,
)
from ledger.records import ZERO_HASH, Body, Contribution, Identity, Record, sign_record
from ledger.store import Store
from node.errors import NodeError
from node.rules import commons_genesis, commons_rules
from node.solo import LocalValidators

SECOND = 1000
STEP_KEYS: dict[str, frozenset[str]] = {
    "register": frozenset({"by", "name", "id"}),
    "contribute": frozenset({"by", "id", "title", "kind"}),
    "propose": frozenset({"by", "id", "title", "description", "actions"}),
    "vote": frozenset({"by", "id", "proposal", "support", "reason"}),
    "delegate": frozenset({"by", "id", "to"}),
    "transfer": frozenset({"by", "id", "to", "amount"}),
    "cancel": frozenset({"by", "id", "proposal"}),
    "expect": frozenset(
        {"proposal", "state", "for", "against", "abstain", "deadline"}
        | {"member", "balance", "power", "rejected"}
    ),
}
STEPS = tuple(STEP_KEYS)
MAX_SCENARIO_BYTES = 1024 * 1024
MAX_SCENARIO_DEPTH = 8
"""A scenario nests 6 deep (the document, steps, a step, its actions, an action, its changes);
a little more is left for the checks to say what is wrong in the scenario's terms."""


class ScenarioError(NodeError):
    """The scenario file is malformed: the message says where and why."""


@dataclass(slots=True)
class Outcome:
    at: int
    block: int
    step: str
    result: str
    ok: bool = True


@dataclass(slots=True)
class Run:
    """What a scenario run did: a timeline of lines and the failed expectations."""

    timeline: list[Outcome] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _key(label: str) -> Keypair:
    return Keypair.from_seed(hashlib.sha256(f"commons-scenario/{label}".encode()).digest())


def load(data: bytes) -> dict[str, Any]:
    """Parse and check a scenario's shape; raise ScenarioError naming the problem."""
    if len(data) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"a scenario is at most {MAX_SCENARIO_BYTES} bytes, got {len(data)}")
    try:
        doc = jsontext.parse(data, "the scenario", max_depth=MAX_SCENARIO_DEPTH)
    except DecodeError as e:
        raise ScenarioError(str(e)) from e
    if not isinstance(doc, dict) or set(doc) - {"genesis", "steps"} or "steps" not in doc:
        raise ScenarioError('a scenario is {"genesis": {...}, "steps": [...]}')
    genesis = doc.get("genesis", {})
    if not isinstance(genesis, dict) or set(genesis) - {"members", "params", "validators"}:
        raise ScenarioError('genesis takes "members", "params" and "validators"')
    for part in ("members", "params", "validators"):
        value = genesis.get(part, {})
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and type(v) is int for k, v in value.items()
        ):
            raise ScenarioError(f"genesis.{part} must map names to integers")
    known = {*LEDGER_PARAMS, *GOVERNANCE_PARAMS}
    for name in genesis.get("params", {}):
        if name not in known:
            raise ScenarioError(f"unknown parameter {name!r}; known: {', '.join(sorted(known))}")
    steps = doc["steps"]
    if not isinstance(steps, list):
        raise ScenarioError("steps must be a list")
    last = 0
    labels: set[str] = set()
    for index, step in enumerate(steps):
        where = f"step {index + 1}"
        if not isinstance(step, dict) or step.get("do") not in STEPS:
            raise ScenarioError(f"{where}: 'do' must be one of {', '.join(STEPS)}")
        at = step.get("at")
        if type(at) is not int or at < last:
            raise ScenarioError(f"{where}: 'at' must be whole seconds, never decreasing")
        last = at
        unknown = set(step) - {"at", "do"} - STEP_KEYS[step["do"]]
        if unknown:
            raise ScenarioError(
                f"{where} ({step['do']}): unknown field {', '.join(sorted(unknown))}"
            )
        if "id" in step:
            if not isinstance(step["id"], str) or step["id"] in labels:
                raise ScenarioError(f"{where}: id {step['id']!r} must be a new name")
            labels.add(step["id"])
    return doc


class Player:
    """Plays a loaded scenario into a store in `where`."""

    def __init__(self, doc: dict[str, Any], where: Path) -> None:
        spec = doc.get("genesis", {})
        self.members: dict[str, Keypair] = {n: _key(f"member/{n}") for n in spec.get("members", {})}
        validators = spec.get("validators") or {"validator": 1}
        self.validators = {n: _key(f"validator/{n}") for n in validators}
        params = {}
        for name, value in spec.get("params", {}).items():
            base = {**LEDGER_PARAMS, **GOVERNANCE_PARAMS}[name]
            if not base.min <= value <= base.max:
                low, high = base.min, base.max
                raise ScenarioError(f"genesis parameter {name} = {value} is outside {low}..{high}")
            params[name] = Param(value=value, min=base.min, max=base.max)
        self.genesis = commons_genesis(
            name="scenario",
            time=0,
            members={
                self.members[n].public_key: (n, t) for n, t in spec.get("members", {}).items()
            },
            validators={self.validators[n].public_key: p for n, p in validators.items()},
            params=params,
        )
        self.steps: list[dict[str, Any]] = doc["steps"]
        self.store = Store.create(where / "ledger.sqlite", self.genesis, rules=commons_rules)
        self.makers = LocalValidators(self.store, self.validators.values())
        self.labels: dict[str, bytes] = {}
        self.names: dict[bytes, str] = {}
        self.heads: dict[bytes, tuple[int, bytes]] = {}

    def play(self) -> Run:
        run = Run()
        groups: list[tuple[int, list[dict[str, Any]]]] = []
        for step in self.steps:
            if groups and groups[-1][0] == step["at"]:
                groups[-1][1].append(step)
            else:
                groups.append((step["at"], [step]))
        if not groups or groups[0][0] != 0:
            groups.insert(0, (0, []))
        for index, (at, steps) in enumerate(groups):
            commit_at = groups[index + 1][0] if index + 1 < len(groups) else at + 1
            self._block(run, at, steps, commit_at * SECOND)
        return run

    def _block(self, run: Run, at: int, steps: list[dict[str, Any]], commit_time: int) -> None:
        height = self.store.tip.height + 1
        records: list[tuple[dict[str, Any], Record]] = []
        expects = []
        for step in steps:
            if step["do"] == "expect":
                expects.append(step)
                continue
            record = self._record(step, at * SECOND, height)
            records.append((step, record))
            if "id" in step:
                self.labels[step["id"]] = record.id
                self.names[record.id] = step["id"]
        self.makers.make_block([r for _, r in records], commit_time=commit_time)
        state = self.store.chain.state
        for step, record in records:
            reason = state.get(REJECTED + record.id)
            result = "accepted" if reason is None else f"rejected: {reason}"
            run.timeline.append(Outcome(at, height, _describe(step), result))
        governance = self.store.chain.apply
        if isinstance(governance, Governance):
            for event in governance.events:
                if event.what == "state":
                    label = self.names.get(event.subject, event.subject.hex()[:12])
                    run.timeline.append(Outcome(at, height, f"proposal {label}", event.detail))
        for step in expects:
            for check, ok, detail in self._expect(step):
                run.timeline.append(Outcome(at, height, f"expect {check}", detail, ok))
                if not ok:
                    run.failures.append(f"at {at}s: expect {check}: {detail}")

    # records

    def _member(self, step: dict[str, Any], field_name: str) -> Keypair:
        name = step.get(field_name)
        if not isinstance(name, str):
            raise ScenarioError(f"{_describe(step)}: {field_name!r} must name a member")
        if name not in self.members:
            self.members[name] = _key(f"member/{name}")
        return self.members[name]

    def _label(self, step: dict[str, Any], field_name: str) -> bytes:
        label = step.get(field_name)
        if not isinstance(label, str) or label not in self.labels:
            raise ScenarioError(f"{_describe(step)}: no earlier step has id {label!r}")
        return self.labels[label]

    def _record(self, step: dict[str, Any], time: int, height: int) -> Record:
        author = self._member(step, "by")
        body = self._body(step)
        seq, prev = self.heads.get(author.public_key, (0, ZERO_HASH))
        record = sign_record(
            author, self.genesis.network_id, seq=seq + 1, prev=prev, timestamp=time, body=body
        )
        self.heads[author.public_key] = (seq + 1, record.id)
        return record

    def _body(self, step: dict[str, Any]) -> Body:
        do = step["do"]
        try:
            if do == "register":
                return Identity(name=step.get("name", step["by"]))
            if do == "contribute":
                return Contribution(title=step["title"], kind=step.get("kind", "other"))
            if do == "propose":
                if not isinstance(step.get("actions", []), list):
                    raise ScenarioError(f"{_describe(step)}: actions must be a list")
                actions = tuple(
                    self._action(a, step) for a in step.get("actions", [{"type": "text"}])
                )
                return Proposal(
                    title=step["title"], description=step.get("description", ""), actions=actions
                )
            if do == "vote":
                if step.get("support") not in SUPPORT:
                    raise ScenarioError(f"{_describe(step)}: support is for, against or abstain")
                return Vote(
                    proposal=self._label(step, "proposal"), support=SUPPORT[step["support"]]
                )
            if do == "delegate":
                return Delegation(to=self._member(step, "to").public_key)
            if do == "transfer":
                return Transfer(to=self._member(step, "to").public_key, amount=step["amount"])
            return Cancel(proposal=self._label(step, "proposal"))
        except (KeyError, TypeError, ValueError) as e:
            raise ScenarioError(f"{_describe(step)}: missing or malformed field {e}") from e

    def _action(self, spec: Any, step: dict[str, Any]) -> Action:
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind == "reward":
            contribution = self._label(spec, "contribution") if "contribution" in spec else None
            return Reward(
                to=self._member(spec, "to").public_key,
                amount=spec["amount"],
                contribution=contribution,
            )
        if kind == "set_param":
            return SetParam(name=spec["name"], value=spec["value"])
        if kind == "text":
            return Text()
        if kind in ("freeze", "reinstate"):
            cls = Freeze if kind == "freeze" else Reinstate
            return cls(member=self._member(spec, "member").public_key)
        if kind == "change_validators":
            if not isinstance(spec.get("changes"), dict):
                raise ScenarioError(
                    f"{_describe(step)}: changes must map validator names to powers"
                )
            changes = tuple(
                sorted((self._validator(n).public_key, p) for n, p in spec["changes"].items())
            )
            return ChangeValidators(changes=changes)
        raise ScenarioError(f"{_describe(step)}: unknown action {kind!r}")

    def _validator(self, name: str) -> Keypair:
        if name not in self.validators:
            self.validators[name] = _key(f"validator/{name}")
            self.makers.add(self.validators[name])
        return self.validators[name]

    # expectations

    def _expect(self, step: dict[str, Any]) -> list[tuple[str, bool, str]]:
        state = self.store.chain.state
        checks: list[tuple[str, bool, str]] = []

        def check(what: str, want: Any, got: Any) -> None:
            ok = want == got
            checks.append((what, ok, f"{got}" if ok else f"expected {want}, got {got}"))

        if "proposal" in step:
            label = step["proposal"]
            p = state.get(PROPOSAL + self._label(step, "proposal"))
            if p is None:
                return [(f"{label} exists", False, "the proposal was never created")]
            views: dict[str, Callable[[], Any]] = {
                "state": lambda: p["state"],
                "for": lambda: p["for"],
                "against": lambda: p["against"],
                "abstain": lambda: p["abstain"],
                "deadline": lambda: p["deadline"] // SECOND,
            }
            for name, view in views.items():
                if name in step:
                    check(f"{label} {name}", step[name], view())
        if "member" in step:
            name = step["member"]
            key = self._member(step, "member").public_key
            member = state.get(MEMBER + key) or {"balance": 0}
            if "balance" in step:
                check(f"{name} balance", step["balance"], member["balance"])
            if "power" in step:
                check(f"{name} power", step["power"], power_now(state, key))
        if "rejected" in step:
            label = step["rejected"]
            reason = state.get(REJECTED + self._label(step, "rejected"))
            checks.append((f"{label} rejected", reason is not None, reason or "it was accepted"))
        if not checks:
            raise ScenarioError(
                f"{_describe(step)}: expects nothing (proposal, member or rejected)"
            )
        return checks


def _describe(step: Mapping[str, Any]) -> str:
    do = step.get("do", "?")
    who = step.get("by", "")
    label = f" {step['id']}" if "id" in step else ""
    return f"{who} {do}{label}".strip()


def play(data: bytes) -> Run:
    """Load and play a scenario in a scratch folder; raise ScenarioError if it is malformed."""
    doc = load(data)
    with tempfile.TemporaryDirectory(prefix="commons-scenario-") as scratch:
        try:
            player = Player(doc, Path(scratch))
        except LedgerError as e:
            raise ScenarioError(f"genesis: {e}") from e
        try:
            return player.play()
        except LedgerError as e:
            # A value no record may carry (an empty title, a zero amount): the file's fault.
            raise ScenarioError(str(e)) from e
        finally:
            player.store.close()
