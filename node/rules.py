"""The rules of a Commons network: the ledger's own, with governance as the state transition.

Every store, audit and block maker of a Commons network takes its rules from here, so a node, an
auditor and a dry run can never disagree about what a block means.
"""

from __future__ import annotations

from collections.abc import Mapping

from governance.params import GOVERNANCE_PARAMS
from governance.rules import Governance
from ledger.errors import UnknownRules
from ledger.genesis import LEDGER_RULES, Genesis, Param, make_genesis
from ledger.state import Apply
from ledger.store import Rules, ledger_only

DEFAULT_PARAMS: dict[str, Param] = {
    **make_genesis(name="defaults", time=0, members={}, validators={bytes(32): 1}).params,
    **GOVERNANCE_PARAMS,
}
"""Every parameter of a Commons network with its default value and hard bounds."""


GOVERNANCE_RULES = "commons-governance-v1"
"""The rules identifier of a Commons network: the ledger's rules with governance (§15)."""

RULES: dict[str, Rules] = {GOVERNANCE_RULES: Governance, LEDGER_RULES: ledger_only}
"""Every rules identifier this version runs, with its state transition."""


def commons_rules(genesis: Genesis) -> Apply:
    """The state transition of the network that `genesis` starts, as its `rules` names it."""
    rules = RULES.get(genesis.rules)
    if rules is None:
        known = ", ".join(sorted(RULES))
        raise UnknownRules(f"the genesis runs rules {genesis.rules!r}; this version runs {known}")
    return rules(genesis)


def commons_genesis(
    *,
    name: str,
    time: int,
    members: Mapping[bytes, tuple[str, int]],
    validators: Mapping[bytes, int],
    params: Mapping[str, Param] | None = None,
) -> Genesis:
    """A genesis with every ledger and governance parameter, defaults overridden by `params`."""
    return make_genesis(
        name=name,
        time=time,
        members=members,
        validators=validators,
        params={**GOVERNANCE_PARAMS, **(params or {})},
        rules=GOVERNANCE_RULES,
    )
