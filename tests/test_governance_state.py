"""Governance invariants under random histories (hypothesis stateful), and state roots that are
the same in any process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from governance.rules import MEMBER, PROPOSAL, _supply_now, members, power_now
from ledger.chain import Chain, certify
from ledger.crypto import Keypair
from ledger.genesis import Param
from ledger.kinds_governance import (
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
from ledger.records import ZERO_HASH, Body, Contribution, Record, sign_record
from ledger.statetree import StateTree
from node.rules import commons_genesis, commons_rules

NAMES = ("ada", "bob", "cy", "dee")
KEYS = {n: Keypair.from_seed(n.encode().ljust(32, b"\0")) for n in NAMES}
VALIDATOR = Keypair.from_seed(b"validator".ljust(32, b"\0"))
SECOND = 1000


class GovernanceMachine(RuleBasedStateMachine):
    """Random members propose, vote, delegate, transfer and get rewarded over random block times."""

    @initialize(tokens=st.lists(st.integers(0, 1000), min_size=4, max_size=4))
    def start(self, tokens: list[int]) -> None:
        params = {
            "voting_delay": Param(value=2, min=0, max=100),
            "voting_period": Param(value=5, min=1, max=100),
            "quorum_bps": Param(value=1000, min=100, max=10_000),
            "late_quorum_extension": Param(value=3, min=0, max=100),
            "timelock": Param(value=2, min=0, max=100),
            "max_mint_bps": Param(value=5000, min=0, max=10_000),
            "transferable": Param(value=1, min=0, max=1),
            "proposal_threshold": Param(value=0, min=0, max=10**6),
        }
        self.genesis = commons_genesis(
            name="stateful",
            time=0,
            members={KEYS[n].public_key: (n, t) for n, t in zip(NAMES, tokens, strict=True)},
            validators={VALIDATOR.public_key: 1},
            params=params,
        )
        self.chain = Chain(self.genesis, apply=commons_rules(self.genesis))
        self.heads: dict[str, tuple[int, bytes]] = {}
        self.pending: list[Record] = []
        self.proposals: list[bytes] = []
        self.contributions: list[tuple[str, bytes]] = []
        self.time = 0
        self.last_commit = None
        self.block(seconds=1)  # block 1, at the genesis

    def write(self, who: str, body: Body) -> Record:
        seq, prev = self.heads.get(who, (0, ZERO_HASH))
        record = sign_record(
            KEYS[who],
            self.genesis.network_id,
            seq=seq + 1,
            prev=prev,
            timestamp=self.time,
            body=body,
        )
        self.heads[who] = (seq + 1, record.id)
        self.pending.append(record)
        return record

    @rule(seconds=st.integers(1, 4))
    def block(self, seconds: int) -> None:
        block = self.chain.propose(
            self.pending, proposer=VALIDATOR.public_key, last_commit=self.last_commit
        )
        self.chain.append(block)
        self.pending = []
        self.time = block.header.time + seconds * SECOND
        self.last_commit = certify(block, self.genesis.network_id, [VALIDATOR], timestamp=self.time)

    @rule(who=st.sampled_from(NAMES), title=st.sampled_from(("fix", "docs", "talk")))
    def contribute(self, who: str, title: str) -> None:
        record = self.write(who, Contribution(title=title, kind="code"))
        self.contributions.append((who, record.id))

    @rule(
        who=st.sampled_from(NAMES),
        to=st.sampled_from(NAMES),
        amount=st.integers(1, 300),
        cite=st.booleans(),
        extra=st.sampled_from(("none", "text", "param", "freeze", "reinstate")),
        subject=st.sampled_from(NAMES),
    )
    def propose(self, who: str, to: str, amount: int, cite: bool, extra: str, subject: str) -> None:
        contribution = None
        if cite and self.contributions:
            to, contribution = self.contributions[-1]
        actions: list = [Reward(to=KEYS[to].public_key, amount=amount, contribution=contribution)]
        if extra == "text":
            actions.append(Text())
        elif extra == "param":
            actions.append(SetParam(name="quorum_bps", value=2000))
        elif extra == "freeze":
            actions.append(Freeze(member=KEYS[subject].public_key))
        elif extra == "reinstate":
            actions.append(Reinstate(member=KEYS[subject].public_key))
        record = self.write(who, Proposal(title="p", actions=tuple(actions)))
        self.proposals.append(record.id)

    @precondition(lambda self: bool(self.proposals))
    @rule(who=st.sampled_from(NAMES), pick=st.integers(0, 50), support=st.integers(0, 2))
    def vote(self, who: str, pick: int, support: int) -> None:
        self.write(who, Vote(proposal=self.proposals[pick % len(self.proposals)], support=support))

    @rule(who=st.sampled_from(NAMES), to=st.sampled_from(NAMES))
    def delegate(self, who: str, to: str) -> None:
        self.write(who, Delegation(to=KEYS[to].public_key))

    @rule(who=st.sampled_from(NAMES), to=st.sampled_from(NAMES), amount=st.integers(1, 200))
    def transfer(self, who: str, to: str, amount: int) -> None:
        self.write(who, Transfer(to=KEYS[to].public_key, amount=amount))

    @invariant()
    def supply_is_the_sum_of_eligible_balances(self) -> None:
        state = self.chain.state
        eligible = sum(m["balance"] for _, m in members(state) if not m["frozen"])
        assert _supply_now(state) == eligible

    @invariant()
    def power_adds_up_to_the_supply(self) -> None:
        state = self.chain.state
        total = sum(power_now(state, key) for key, _ in members(state))
        assert total == _supply_now(state)

    @invariant()
    def incremental_root_equals_root_from_scratch(self) -> None:
        fresh = StateTree()
        for key, value in self.chain.state.items():
            fresh.set(key, value)
        assert fresh.root() == self.chain.state.root()

    @invariant()
    def proposals_are_in_a_known_state(self) -> None:
        known = {"Pending", "Active", "Canceled", "Defeated", "Queued", "Executed", "Failed"}
        for key, _ in self.chain.state.items():
            if key.startswith(PROPOSAL):
                assert self.chain.state.get(key)["state"] in known
            if key.startswith(MEMBER):
                assert self.chain.state.get(key)["balance"] >= 0


GovernanceMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=40, deadline=None
)
TestGovernanceInvariants = GovernanceMachine.TestCase


REPLAY = """
import sys
sys.path.insert(0, {root!r})
from tests.test_governance_state import GovernanceMachine
from hypothesis import strategies as st
m = GovernanceMachine()
m.start(tokens=[500, 300, 200, 0])
steps = [("contribute", "cy", "fix"), ("propose", "ada"), ("block",), ("block",),
         ("vote", "ada"), ("vote", "bob"), ("delegate", "dee", "ada"), ("block",), ("block",),
         ("block",), ("block",), ("block",), ("block",)]
for step in steps:
    if step[0] == "contribute":
        m.contribute(who=step[1], title=step[2])
    elif step[0] == "propose":
        m.propose(who=step[1], to="cy", amount=40, cite=True, extra="text", subject="bob")
    elif step[0] == "vote":
        m.vote(who=step[1], pick=0, support=1)
    elif step[0] == "delegate":
        m.delegate(who=step[1], to=step[2])
    else:
        m.block(seconds=3)
    print(m.chain.tip.height, m.chain.state.root().hex())
"""


def test_state_roots_are_the_same_in_any_process() -> None:
    root = str(Path(__file__).resolve().parent.parent)
    outputs = []
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", REPLAY.format(root=root)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert len(set(outputs[0].split())) > 10  # roots changed along the way
