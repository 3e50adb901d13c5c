"""Record inclusion proofs that anyone holding the genesis can check, with no node to ask.

A proof carries the record, its leaf index, the header of the block that finalized it with that
block's commit certificate, the Merkle inclusion path against the header's log root, and every
certified header that changed the validator set up to that height — so a verifier can follow the
validator sets from the genesis to the height and check each certificate with the right set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger import codec, schema
from ledger.block import CertificateError, Commit, Header, decode_header
from ledger.crypto import HASH_BYTES
from ledger.errors import InvalidData, ProofError
from ledger.genesis import Genesis
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.records import Record, decode_record
from ledger.validators import ValidatorSet

MAX_PROOF_BYTES = 4 * 1024 * 1024
MAX_CHANGES = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class CertifiedHeader:
    header: Header
    commit: Commit

    def to_wire(self) -> dict[str, Any]:
        return {"header": self.header.raw, "commit": self.commit.to_wire()}

    @classmethod
    def from_wire(cls, m: Any) -> CertifiedHeader:
        schema.exact_keys(m, "certified header", frozenset({"header", "commit"}), frozenset())
        schema.bounded_bytes(m["header"], "certified header.header", 1, MAX_PROOF_BYTES)
        return cls(header=decode_header(m["header"]), commit=Commit.from_wire(m["commit"]))


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordProof:
    network_id: bytes
    record: Record
    leaf: int
    path: tuple[bytes, ...]
    block: CertifiedHeader
    changes: tuple[CertifiedHeader, ...]

    def encode(self) -> bytes:
        return codec.encode(
            {
                "network": self.network_id,
                "record": self.record.raw,
                "leaf": self.leaf,
                "path": self.path,
                "block": self.block.to_wire(),
                "changes": tuple(c.to_wire() for c in self.changes),
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> RecordProof:
        m = codec.decode(data, max_size=MAX_PROOF_BYTES, max_items=MAX_CHANGES)
        keys = frozenset({"network", "record", "leaf", "path", "block", "changes"})
        schema.exact_keys(m, "proof", keys, frozenset())
        if type(m["path"]) is not tuple or type(m["changes"]) is not tuple:
            raise ProofError("proof path and changes must be lists")
        return cls(
            network_id=schema.fixed_bytes(m["network"], "proof.network", HASH_BYTES),
            record=decode_record(
                schema.bounded_bytes(m["record"], "proof.record", 1, MAX_PROOF_BYTES)
            ),
            leaf=schema.integer(m["leaf"], "proof.leaf", 0, schema.MAX_INT),
            path=m["path"],
            block=CertifiedHeader.from_wire(m["block"]),
            changes=tuple(CertifiedHeader.from_wire(c) for c in m["changes"]),
        )


def verify_record_proof(proof: RecordProof, genesis: Genesis) -> None:
    """Raise an InvalidData error naming the broken link unless the proof holds to `genesis`."""
    if proof.network_id != genesis.network_id:
        raise ProofError(
            f"proof is for network {proof.network_id.hex()[:16]}, "
            f"the genesis is {genesis.network_id.hex()[:16]}"
        )
    net = genesis.network_id
    # Validator sets by the first height they certify, starting from the genesis.
    schedule: list[tuple[int, ValidatorSet]] = [(1, genesis.validators)]
    previous_height = 0
    for change in proof.changes:
        header = change.header
        if not previous_height < header.height < proof.block.header.height:
            raise ProofError(
                "validator changes must come in increasing height order, below the record's block"
            )
        _check_certified(change, _set_at(schedule, header.height), net)
        if header.new_validators is None:
            raise ProofError(
                f"header {header.height} is offered as a validator change but has none"
            )
        schedule.append((header.height + 2, header.new_validators))
        previous_height = header.height
    _check_certified(proof.block, _set_at(schedule, proof.block.header.height), net)
    try:
        proof.record.verify(net)
    except InvalidData as e:
        raise ProofError(f"record {proof.record.id.hex()}: {e}") from e
    header = proof.block.header
    verify_inclusion(
        leaf_hash(proof.record.raw), proof.leaf, header.log_size, proof.path, header.log_root
    )


def _set_at(schedule: list[tuple[int, ValidatorSet]], height: int) -> ValidatorSet:
    current = schedule[0][1]
    for start, validators in schedule:
        if start <= height:
            current = validators
    return current


def _check_certified(item: CertifiedHeader, validators: ValidatorSet, network_id: bytes) -> None:
    header = item.header
    if header.validators_hash != validators.hash:
        raise ProofError(
            f"header {header.height}: its validators are not the set the genesis and the "
            "changes lead to (a validator change is missing from the proof?)"
        )
    try:
        item.commit.verify(network_id, validators, height=header.height, block_id=header.id)
    except CertificateError as e:
        raise ProofError(f"header {header.height}: {e}") from e
