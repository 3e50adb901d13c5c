"""The audit as a library call (`audit_store`, `audit_bundle`): a frozen report with a typed
failure, and the rules a genesis names (PROTOCOL §8, §11) deciding how its state is recomputed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from clikit import cli
from ledger_factory import (
    Author,
    Builder,
    Ledger,
    build_standard,
    copy_ledger,
    keypair,
    sql,
    write_tampered,
)

from ledger.audit import AuditReport, Failure, audit_bundle, audit_store
from ledger.errors import SchemaError, UnknownRules
from ledger.files import write_bundle
from ledger.genesis import LEDGER_RULES, Genesis, make_genesis
from ledger.records import Contribution
from ledger.rulebook import Rule
from ledger.state import no_transition
from ledger.store import Store, ledger_only
from node.rules import GOVERNANCE_RULES, RULES, commons_rules

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    return build_standard(tmp_path_factory.mktemp("audit") / "home", validators="four")


def test_an_intact_store_and_its_bundle_give_the_same_frozen_report(
    ledger: Ledger, tmp_path: Path
) -> None:
    with Store.open(ledger.path, rules=commons_rules, snapshot=True) as store:
        report = audit_store(store, rules=commons_rules)
    assert report.ok
    assert report.failure is None
    assert (report.height, report.records) == (7, 10)
    assert report.rules == GOVERNANCE_RULES
    assert report.checks  # the store's derived data was compared too
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.height = 3  # type: ignore[misc]
    bundle = tmp_path / "l.bundle"
    with Store.open(ledger.path, rules=commons_rules) as store, bundle.open("wb") as f:
        write_bundle(f, store.genesis, store.blocks(), store.commit(store.tip.height))
    from_bundle = audit_bundle(bundle, rules=commons_rules)
    assert dataclasses.replace(from_bundle, checks=report.checks) == report


def test_a_broken_store_names_rule_section_block_and_record(ledger: Ledger, tmp_path: Path) -> None:
    home = tmp_path / "home"
    db = copy_ledger(ledger.path, home)
    sql(db, "DELETE FROM commits WHERE height = ?", (7,))
    with Store.open(db, rules=commons_rules, snapshot=True) as store:
        report = audit_store(store, rules=commons_rules)
    assert report.failure == Failure(
        rule=Rule.TIP_COMMIT,
        message="block 7: the tip has no commit certificate",
        height=7,
    )
    assert report.failure.to_json()["section"] == "12"


def test_a_forged_record_is_reported_with_its_id(ledger: Ledger, tmp_path: Path) -> None:
    with Store.open(ledger.path, rules=commons_rules) as store:
        blocks = list(store.blocks())
        commit = store.commit(store.tip.height)
    record = blocks[1].records[0]
    forged = dataclasses.replace(record, signature=bytes(64))
    header_block = dataclasses.replace(blocks[1], records=(forged, *blocks[1].records[1:]))
    bundle = write_tampered(
        tmp_path / "forged.bundle",
        ledger.genesis,
        [blocks[0], header_block, *blocks[2:]],
        commit,
    )
    report = audit_bundle(bundle, rules=commons_rules)
    assert report.failure is not None
    assert (report.failure.rule, report.failure.height) == (Rule.SIGNATURE, 2)
    assert report.failure.record == forged.id
    assert report.height == 1


def ledger_rules_chain(where: Path) -> tuple[Genesis, Path]:
    """A network that runs the ledger's rules alone (as `bench_ledger.py --rules ledger` makes)."""
    validator = keypair("validator/solo")
    genesis = make_genesis(name="plain", time=0, members={}, validators={validator.public_key: 1})
    builder = Builder(genesis, [validator], apply=ledger_only(genesis))
    author = Author("ada", keypair("member/ada"), genesis.network_id)
    body = Contribution(title="a ledger without governance", kind="docs")
    builder.add([author.write(body, at=genesis.time)])
    builder.add([])
    bundle = where / "plain.bundle"
    with bundle.open("wb") as f:
        write_bundle(f, genesis, builder.blocks, builder.commits[-1])
    return genesis, bundle


def test_a_genesis_says_which_rules_it_runs_and_the_audit_follows(tmp_path: Path) -> None:
    """Once `commons audit` refused a chain built with the ledger's rules alone: "state_root
    does not match". The genesis now names its rules, and the audit applies those."""
    genesis, bundle = ledger_rules_chain(tmp_path)
    assert genesis.rules == LEDGER_RULES
    report = audit_bundle(bundle, rules=commons_rules)
    assert report.ok, report.failure
    assert report.rules == LEDGER_RULES
    again = dataclasses.replace(genesis, rules=GOVERNANCE_RULES)
    assert again.network_id != genesis.network_id  # the rules are part of the network's identity


def test_rules_this_version_does_not_run_are_refused_by_name() -> None:
    genesis = make_genesis(
        name="future", time=0, members={}, validators={bytes(32): 1}, rules="commons-governance-v9"
    )
    with pytest.raises(UnknownRules, match="commons-governance-v9"):
        commons_rules(genesis)
    with pytest.raises(UnknownRules, match="ledger alone"):
        ledger_only(make_genesis(name="g", time=0, members={}, validators={bytes(32): 1},
                                 rules=GOVERNANCE_RULES))  # fmt: skip
    assert set(RULES) == {LEDGER_RULES, GOVERNANCE_RULES}
    with pytest.raises(SchemaError, match=r"genesis\.rules must be"):
        make_genesis(name="g", time=0, members={}, validators={bytes(32): 1}, rules="Bad Rules!")


def test_audit_json_carries_the_report_schema(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "audit", "--home", str(ledger.home), "--json")
    assert code == 0
    doc = json.loads(out)
    with Store.open(ledger.path, rules=commons_rules, snapshot=True) as store:
        report = audit_store(store, rules=commons_rules)
    assert doc == {"source": str(ledger.path), **report.to_json()}
    assert set(doc) == {"source", "ok", *AuditReport.__dataclass_fields__}


def test_every_rule_is_documented_with_its_section() -> None:
    """docs/API.md's table of rules is the schema of `failure.rule`: each rule, its section."""
    api = (DOCS / "API.md").read_text()
    protocol = (DOCS / "PROTOCOL.md").read_text()
    for rule in Rule:
        rows = [
            line
            for line in api.splitlines()
            if line.startswith("| `") and f"`{rule.id}`" in line.split("|")[1]
        ]
        assert rows, f"{rule.id} is not in docs/API.md's table"
        assert f"| {rule.section} |" in rows[0], f"{rule.id}: {rows[0]}"
        assert f"\n## {rule.section}. " in protocol, f"PROTOCOL.md has no section {rule.section}"


def test_a_store_whose_genesis_names_unknown_rules_is_refused_by_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    genesis = make_genesis(
        name="future", time=0, members={}, validators={bytes(32): 1}, rules="commons-governance-v9"
    )
    home = tmp_path / "home"
    home.mkdir()
    Store.create(home / "ledger.sqlite", genesis, rules=lambda g: no_transition).close()
    code, out, err = cli(capsys, "audit", "--home", str(home), "--json")
    assert code == 1, err
    failure = json.loads(out)["failure"]
    assert (failure["rule"], failure["section"]) == ("genesis.rules", "11")
    assert "commons-governance-v9" in err
    assert "Traceback" not in err


def test_genesis_keys_are_exactly_64_hex_digits_of_either_case() -> None:
    """PROTOCOL §8: `bytes.fromhex` once let whitespace through, giving a key of the wrong size."""
    genesis = make_genesis(name="g", time=0, members={}, validators={b"\xab" * 32: 1})
    doc = json.loads(genesis.to_json())
    doc["validators"][0]["key"] = doc["validators"][0]["key"].upper()
    assert Genesis.from_json(json.dumps(doc).encode()) == genesis
    doc["validators"][0]["key"] = "ab " + "ab" * 30 + "a"
    with pytest.raises(SchemaError, match="64 hex digits"):
        Genesis.from_json(json.dumps(doc).encode())
