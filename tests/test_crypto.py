"""Strict Ed25519: the speccheck vectors' verdicts, domain separation, and key handling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.crypto import Keypair, Tag, signing_bytes, verify, verify_tagged
from ledger.errors import SignatureError

VECTORS = Path(__file__).parent / "vectors" / "ed25519-speccheck" / "cases.json"
NET = bytes(range(32))


def _cases() -> list[dict[str, object]]:
    cases = json.loads(VECTORS.read_text())
    assert len(cases) == 12, "the speccheck vector file must hold its twelve cases"
    return cases


@pytest.mark.parametrize("case", _cases(), ids=lambda c: f"case{c['case']}")
def test_speccheck_verdicts(case: dict[str, str | bool]) -> None:
    pub, msg, sig = (bytes.fromhex(str(case[k])) for k in ("pub_key", "message", "signature"))
    if case["valid_under_commons"]:
        verify(pub, msg, sig)
    else:
        with pytest.raises(SignatureError):
            verify(pub, msg, sig)


def test_only_case_3_is_valid() -> None:
    assert [c["case"] for c in _cases() if c["valid_under_commons"]] == [3]


def test_signature_is_bound_to_tag_and_network() -> None:
    key = Keypair.from_seed(b"\x01" * 32)
    sig = key.sign(Tag.RECORD, NET, b"body")
    verify_tagged(key.public_key, Tag.RECORD, NET, b"body", sig)
    with pytest.raises(SignatureError):
        verify_tagged(key.public_key, Tag.PRECOMMIT, NET, b"body", sig)
    with pytest.raises(SignatureError):
        verify_tagged(key.public_key, Tag.RECORD, bytes(32), b"body", sig)
    with pytest.raises(SignatureError):
        verify_tagged(key.public_key, Tag.RECORD, NET, b"bodY", sig)


def test_signing_bytes_layout() -> None:
    assert signing_bytes(Tag.RECORD, NET, b"x") == b"commons/record/v1\x00" + NET + b"x"
    with pytest.raises(ValueError, match="32 bytes"):
        signing_bytes(Tag.RECORD, b"short", b"x")


@pytest.mark.parametrize(
    ("pub", "sig"), [(b"\x00" * 31, b"\x00" * 64), (b"\x00" * 32, b"\x00" * 63), (b"", b"")]
)
def test_wrong_lengths_are_signature_errors(pub: bytes, sig: bytes) -> None:
    with pytest.raises(SignatureError, match="bytes"):
        verify(pub, b"m", sig)


def test_keypair_hides_its_seed() -> None:
    key = Keypair.from_seed(b"\x07" * 32)
    assert (b"\x07" * 32).hex() not in repr(key)
    assert "\\x07" not in repr(key)
    with pytest.raises(ValueError, match="32 bytes"):
        Keypair.from_seed(b"\x07" * 31)
