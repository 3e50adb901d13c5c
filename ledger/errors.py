"""Every error the ledger raises, split by whose fault it is.

`InvalidData` means bytes from elsewhere (a peer, a bundle, a file) break a rule: the caller may
penalise the sender but its own state is fine. `LocalError` means this machine's own input or
resources are wrong (a bad passphrase, a missing file, a corrupted store). Messages name values.
"""

from ledger.rulebook import Rule


class LedgerError(Exception):
    """Base of every ledger error."""


class InvalidData(LedgerError):  # noqa: N818 - a category, named for what it says about the data
    """Data from outside breaks a protocol rule: `rule` names it, and `height` and `record` say
    where, when the raiser knows (a block's height, a record's id)."""

    rule = Rule.SCHEMA

    def __init__(
        self,
        message: str,
        *,
        rule: Rule | None = None,
        height: int | None = None,
        record: bytes | None = None,
    ) -> None:
        super().__init__(message)
        if rule is not None:
            self.rule = rule
        self.height, self.record = height, record


class DecodeError(InvalidData):
    """Bytes are not a canonical, well-formed, size-bounded message."""

    rule = Rule.ENCODING


class SchemaError(InvalidData):
    """A decoded message has a field of the wrong type, size or value."""


class SignatureError(InvalidData):
    """A signature does not verify under strict Ed25519."""

    rule = Rule.SIGNATURE


class FeedError(InvalidData):
    """A record does not extend its author's feed (seq, prev or timestamp)."""

    rule = Rule.FEED


class EvidenceError(InvalidData):
    """An equivocation proof does not prove equivocation."""

    rule = Rule.EVIDENCE


class UnknownRules(InvalidData):
    """A genesis names rules (PROTOCOL §11) this version cannot run, or not the ones asked for."""

    rule = Rule.RULES


class ProofError(InvalidData):
    """A Merkle inclusion or consistency proof does not verify."""


class LocalError(LedgerError):
    """This machine's own input or files are wrong."""


class KeyFileError(LocalError):
    """A key file cannot be read, decrypted or written."""


class WrongPassphrase(KeyFileError):  # noqa: N818 - says what happened
    """A sealed key file does not open with the passphrase given (or it was altered)."""


class InputFileError(LocalError):
    """A file given as input cannot be read at all: missing, not permitted, a folder."""


class OutputFileError(LocalError):
    """A file cannot be written where asked: it exists, is protected, is not a regular file, or
    the disk refused."""
