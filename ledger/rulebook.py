"""The rules a verifier checks, each named once with the docs/PROTOCOL.md section that states it.

An error that says data broke a rule carries one of these (`InvalidData.rule`), so an audit
reports the rule and its section as data, not as words in a message; the names are part of
`commons audit --json`'s schema and of the conformance vectors (tests/vectors/commons/).
"""

from __future__ import annotations

from enum import Enum


class Rule(Enum):
    """A protocol rule: (name, PROTOCOL section)."""

    ENCODING = ("encoding", "1")
    SCHEMA = ("schema", "3")
    SIGNATURE = ("record.signature", "2")
    RECORD_SCHEMA = ("record.schema", "4")
    FEED = ("record.feed", "5")
    EVIDENCE = ("record.evidence", "4")
    EVIDENCE_ONCE = ("record.evidence-once", "11")
    SIZE = ("size", "6")
    GENESIS = ("genesis", "8")
    NETWORK = ("genesis.network", "8")
    RULES = ("genesis.rules", "11")
    CERTIFICATE = ("certificate", "9")
    BLOCK_ENCODING = ("block.encoding", "10")
    HEIGHT = ("block.height", "10")
    PREV = ("block.prev", "10")
    VALIDATORS_HASH = ("block.validators_hash", "9")
    NEXT_VALIDATORS_HASH = ("block.next_validators_hash", "9")
    PROPOSER = ("block.proposer", "10")
    LAST_COMMIT = ("block.last_commit", "9")
    COMMIT_AFTER_BLOCK = ("block.last_commit.time", "14")
    BFT_TIME = ("block.time", "14")
    RECORD_LIMIT = ("block.record_count", "10")
    RECORDS_ROOT = ("block.records_root", "10")
    LOG = ("block.log", "7")
    NEW_VALIDATORS = ("block.new_validators", "11")
    STATE_ROOT = ("block.state_root", "11")
    TIP_COMMIT = ("tip.commit", "12")
    BUNDLE = ("bundle", "12")
    STORE = ("store", "11")
    """A store's derived data (state, Merkle nodes, lookup tables) disagrees with its blocks."""

    @property
    def id(self) -> str:
        return self.value[0]

    @property
    def section(self) -> str:
        return self.value[1]
