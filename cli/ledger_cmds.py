"""The auditor's commands: genesis create, export, import, audit, records, proof, verify-proof.

Every file they write goes through `cli.home.output` (never over a home's own files, over an
existing file only with --force, all at once or not at all); every file they read is read with
its size limit checked first (`ledger.files.read_limited`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from cli.home import output, resolve_home
from cli.options import force_option, home_option, json_option, out_option
from cli.output import console, err_console, print_json, progress
from governance.rules import MEMBER
from ledger.audit import AuditReport, Failure, audit_bundle, audit_store, unaudited_json
from ledger.block import RawBlock
from ledger.checking import RecordChecker
from ledger.crypto import public_key_problem
from ledger.errors import LedgerError, LocalError
from ledger.files import Bundle, open_bundle, read_limited, write_bundle
from ledger.genesis import MAX_GENESIS_BYTES, Genesis, Param
from ledger.proof import MAX_PROOF_BYTES, RecordProof, verify_record_proof
from ledger.records import Record
from ledger.store import Store, StoreError
from node.parallel import bundle_records, record_checker
from node.rules import DEFAULT_PARAMS, commons_genesis, commons_rules

LEDGER_FILE = "ledger.sqlite"
_DIGITS = re.compile(r"[0-9]{1,16}")
_ID_PREFIX = re.compile(r"[0-9a-f]{4,64}")
EXISTING_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)


class IntegrityFailure(click.ClickException):
    """An audit or proof check found the ledger broken: exit 1 after the report."""

    exit_code = 1

    def show(self, file: object = None) -> None:
        err_console.print(f"[red]integrity failure:[/] {escape(self.message)}")


def ledger_path(home: Path | None) -> Path:
    return resolve_home(home) / LEDGER_FILE


def _no_ledger(home: Path | None) -> click.UsageError | None:
    """Why the home holds no ledger, or None if it does."""
    path = ledger_path(home)
    if path.is_file():
        return None
    folder = path.parent
    if not folder.exists():
        why = f"{folder} has no ledger: the folder does not exist"
    elif not folder.is_dir():
        why = f"{folder} has no ledger: it is not a folder"
    else:
        why = f"{folder} has no ledger (no {LEDGER_FILE} in it)"
    if home is None:
        why += "; give --home DIR (or, for audit, --bundle FILE)"
    return click.UsageError(why)


@contextmanager
def open_store(home: Path | None) -> Iterator[Store]:
    missing = _no_ledger(home)
    if missing is not None:
        raise missing
    store = Store.open(ledger_path(home), rules=commons_rules, snapshot=True)
    try:
        yield store
    finally:
        store.close()


def read_genesis(path: Path) -> Genesis:
    """The genesis in the JSON file at `path`, read only if its size can be a genesis's."""
    data = read_limited(path, MAX_GENESIS_BYTES, "genesis file")
    return Genesis.from_json(data, what=f"genesis file {path}")


# genesis


def _hex32(text: str, what: str) -> bytes:
    """32 bytes written as 64 hex digits, or a usage error naming `what`."""
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise click.BadParameter(f"{text!r} is not 64 hex digits", param_hint=what)
    return value


def _public_key(text: str, what: str) -> bytes:
    """A public key some signature can verify under, or a usage error saying why not."""
    key = _hex32(text, what)
    problem = public_key_problem(key)
    if problem is not None:
        raise click.BadParameter(
            f"key {text} can never sign: {problem}; strict verification rejects every "
            "signature under it",
            param_hint=what,
        )
    return key


@click.group()
def genesis() -> None:
    """Create a network's genesis document."""


@genesis.command("create")
@click.option("--name", default="commons", show_default=True, help="Network name.")
@click.option("--member", "members", multiple=True, metavar="NAME=KEY:TOKENS", help="A founder.")
@click.option("--validator", "validators", multiple=True, metavar="KEY:POWER", required=True)
@click.option(
    "--param", "params", multiple=True, metavar="NAME=VALUE", help="Override a parameter."
)
@click.option(
    "--time", "time_ms", type=int, default=None, help="Genesis time in ms (default: now)."
)
@out_option
@force_option
@json_option
def genesis_create(
    name: str,
    members: tuple[str, ...],
    validators: tuple[str, ...],
    params: tuple[str, ...],
    time_ms: int | None,
    out: Path,
    force: bool,
    as_json: bool,
) -> None:
    """Write a genesis: founders with their tokens, validators with their power, parameters."""
    founders: dict[bytes, tuple[str, int]] = {}
    named: dict[str, str] = {}
    for spec in members:
        member_name, sep, rest = spec.partition("=")
        key_hex, sep2, tokens = rest.partition(":")
        if not (sep and sep2 and _DIGITS.fullmatch(tokens)):
            raise click.BadParameter(f"--member {spec!r}: expected NAME=KEY:TOKENS")
        key = _public_key(key_hex, "--member")
        if key in founders:
            raise click.BadParameter(f"--member: key {key_hex} is given twice")
        if member_name in named:
            raise click.BadParameter(
                f"--member: the name {member_name!r} is given twice (keys {named[member_name]} "
                f"and {key_hex}); each member needs a name of its own"
            )
        named[member_name] = key_hex
        founders[key] = (member_name, int(tokens))
    powers: dict[bytes, int] = {}
    for spec in validators:
        key_hex, sep, power = spec.partition(":")
        if not (sep and _DIGITS.fullmatch(power)):
            raise click.BadParameter(f"--validator {spec!r}: expected KEY:POWER")
        key = _public_key(key_hex, "--validator")
        if key in powers:
            raise click.BadParameter(f"--validator: key {key_hex} is given twice")
        powers[key] = int(power)
    overrides: dict[str, Param] = {}
    defaults = DEFAULT_PARAMS
    for spec in params:
        pname, sep, value = spec.partition("=")
        if not sep or pname not in defaults:
            raise click.BadParameter(
                f"--param {spec!r}: known parameters are {', '.join(defaults)}"
            )
        base = defaults[pname]
        try:
            number = int(value)
        except ValueError:
            raise click.BadParameter(f"--param {spec!r}: the value must be an integer") from None
        overrides[pname] = Param(value=number, min=base.min, max=base.max)
    doc = commons_genesis(
        name=name,
        time=int(time.time() * 1000) if time_ms is None else time_ms,
        members=founders,
        validators=powers,
        params=overrides,
    )
    with output(out, force=force) as f:
        f.write(doc.to_json())
    if as_json:
        print_json({"name": name, "network_id": doc.network_id.hex(), "out": str(out)})
        return
    console.print(f"Wrote genesis of [bold]{name}[/] to {out}")
    console.print(f"network id {doc.network_id.hex()}")


# export / import


@click.command("export")
@home_option
@out_option
@force_option
@json_option
def export(home: Path | None, out: Path, force: bool, as_json: bool) -> None:
    """Write the whole ledger to one self-contained bundle file."""
    with open_store(home) as store, output(out, force=force, home=home) as f:
        tip = store.tip.height
        count = write_bundle(f, store.genesis, store.blocks(), store.commit(tip) if tip else None)
        records = store.record_count()
    if as_json:
        print_json({"out": str(out), "blocks": count, "records": records})
        return
    console.print(f"Exported {count} blocks, {records} records to {out}")


@click.command("import")
@home_option
@click.argument("bundle", type=EXISTING_FILE)
@json_option
def import_(home: Path | None, bundle: Path, as_json: bool) -> None:
    """Verify a bundle completely, then make it this home's ledger."""
    path = ledger_path(home)
    if path.exists():
        raise LocalError(f"{path} already holds a ledger; import only into a home without one")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.importing")
    for leftover in staging.parent.glob(staging.name + "*"):
        leftover.unlink()
    opened = open_bundle(bundle)
    try:
        tip, records = _verify_into(staging, opened, bundle_records(bundle))
    except BaseException:
        for leftover in staging.parent.glob(staging.name + "*"):
            leftover.unlink()
        raise
    staging.rename(path)
    if as_json:
        print_json({"ledger": str(path), "blocks": tip, "records": records})
        return
    console.print(f"Imported {tip} blocks, {records} records into {path} (all verified)")


def _verify_into(staging: Path, opened: Bundle, most: int) -> tuple[int, int]:
    store = Store.create(staging, opened.genesis, rules=commons_rules)
    with store, record_checker(most) as checker, progress("importing") as bar:
        task = bar.add_task("records", total=None)

        def blocks() -> Iterator[tuple[RawBlock, None]]:
            for raw in opened.raw_blocks():
                yield raw, None
                bar.advance(task, len(raw.raws))

        store.extend(blocks(), checker)
        tip = store.tip.height
        if tip:
            commit = opened.commit
            if commit is None:
                raise IntegrityFailure(f"block {tip}: the bundle's tip has no commit certificate")
            store.add_commit(commit)
        return tip, store.record_count()


# audit


@click.command("audit")
@home_option
@click.option(
    "--bundle", type=click.Path(path_type=Path), default=None, help="Audit this bundle file."
)
@click.option(
    "--genesis",
    "genesis_file",
    type=click.Path(path_type=Path),
    help="Require this genesis (its network id).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON, whatever it is.")
def audit_cmd(
    home: Path | None, bundle: Path | None, genesis_file: Path | None, as_json: bool
) -> None:
    """Re-verify a ledger from genesis: signatures, feeds, evidence, links, certificates, roots.

    With --json the outcome is JSON on stdout whatever it is (a file that is not a bundle, a
    home without a ledger): the report of docs/API.md, with "ok" and a "failure" naming the
    rule broken; the exit code is the same as without."""
    source = str(bundle if bundle is not None else ledger_path(home))
    try:
        report = _audit(home, bundle, genesis_file)
    except (LedgerError, click.ClickException, OSError) as e:
        if as_json:  # a script reads the outcome from stdout whatever it is
            print_json({"source": source, **_unaudited(e)})
        raise
    if as_json:
        print_json({"source": source, **report.to_json()})
    else:
        _print_report(report, source)
    if report.failure is not None:
        raise IntegrityFailure(report.failure.message)


def _unaudited(error: Exception) -> dict[str, Any]:
    """The --json outcome when there is no ledger to report on."""
    if isinstance(error, LedgerError):
        return unaudited_json(Failure.of(error).to_json())
    message = error.format_message() if isinstance(error, click.ClickException) else str(error)
    return unaudited_json(
        {**dict.fromkeys(("rule", "section", "height", "record")), "message": message}
    )


def _audit(home: Path | None, bundle: Path | None, genesis_file: Path | None) -> AuditReport:
    if bundle is not None and home is not None:
        raise click.UsageError("give --home or --bundle, not both")
    expected = read_genesis(genesis_file).network_id if genesis_file else None
    if bundle is not None:
        bound = bundle_records(bundle) if bundle.is_file() else None  # else audit_bundle says
        with _auditing(bound) as (checker, advance):
            return audit_bundle(
                bundle,
                rules=commons_rules,
                checker=checker,
                progress=advance,
                expected_network=expected,
            )
    missing = _no_ledger(home)
    if missing is not None:
        raise missing
    path = ledger_path(home)
    try:
        with (
            Store.open(path, rules=commons_rules, snapshot=True) as store,
            _auditing(store.record_count(), known=True) as (checker, advance),
        ):
            return audit_store(
                store,
                rules=commons_rules,
                checker=checker,
                progress=advance,
                expected_network=expected,
            )
    except StoreError as e:
        raise IntegrityFailure(str(e)) from e


@contextmanager
def _auditing(
    records: int | None, *, known: bool = False
) -> Iterator[tuple[RecordChecker, Callable[[int], None]]]:
    """A record checker sized for the ledger, and a progress bar on a terminal: `records` is
    their count when `known`, otherwise at most how many there are."""
    with progress("auditing") as bar, record_checker(records) as checker:
        task = bar.add_task("records", total=records if known else None)
        yield checker, lambda n: bar.advance(task, n)


def _print_report(report: AuditReport, source: str) -> None:
    console.print(f"audit of {source}")
    console.print(f"  network id    {report.network_id.hex()}   (rules {report.rules})")
    console.print(f"  blocks        {report.blocks:,}   (height {report.height})")
    console.print(f"  records       {report.records:,}   signatures {report.signatures:,}")
    console.print(f"  certificates  {report.certificates:,}   evidence {report.evidence:,}")
    console.print(f"  log root      {report.log_root.hex()}")
    console.print(f"  state root    {report.state_root.hex()}")
    for line in report.checks:
        console.print(f"  {line}")
    if report.failure is None:
        console.print("[green]intact[/]: every check passed")
    else:
        f = report.failure
        where = "" if f.height is None else f" at block {f.height}"
        if f.record is not None:
            where += f", record {f.record.hex()}"
        console.print(f"  broken        rule {f.rule.id} (PROTOCOL §{f.rule.section}){where}")


# records

_SHOWN_MATCHES = 5


def find_record_id(store: Store, text: str) -> bytes:
    """The id of the one record whose id is or begins with `text` (4 to 64 hex digits)."""
    given = text.lower()
    if not _ID_PREFIX.fullmatch(given):
        raise click.BadParameter(
            f"{text!r} is not a record id or the beginning of one (4 to 64 hex digits)",
            param_hint="RECORD_ID",
        )
    if len(given) == 64:
        return bytes.fromhex(given)
    found = store.record_ids_with_prefix(given, most=_SHOWN_MATCHES + 1)
    if not found:
        raise LocalError(f"no record id in this ledger begins with {given}")
    if len(found) > 1:
        shown = ", ".join(sorted(i.hex()[: len(given) + 4] + "…" for i in found[:_SHOWN_MATCHES]))
        more = " and more" if len(found) > _SHOWN_MATCHES else ""
        raise click.BadParameter(
            f"{given} begins several record ids ({shown}{more}): give more digits",
            param_hint="RECORD_ID",
        )
    return found[0]


def _member_names(store: Store) -> dict[bytes, str]:
    """Each member's name as the ledger's state has it now (its latest identity record)."""
    state = store.chain.state
    names = {}
    for key, _ in state.items():
        if key.startswith(MEMBER):
            names[key[len(MEMBER) :]] = state.get(key)["name"]
    return names


def _author(text: str, names: dict[bytes, str]) -> bytes:
    """The member key `text` names: a member's name, or a key as 64 hex digits."""
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text)
    keys = sorted(key for key, name in names.items() if name == text)
    if len(keys) > 1:
        shown = ", ".join(key.hex()[:16] for key in keys)
        raise click.BadParameter(
            f"several members are named {text!r} (keys {shown}…): give the key",
            param_hint="--author",
        )
    if not keys:
        raise LocalError(f"no member of this ledger is named {text!r}, and it is not a key")
    return keys[0]


def _stored(store: Store, author: bytes | None) -> Iterator[tuple[int, Record]]:
    """(height, record) of every record in ledger order, or of one author's feed."""
    if author is None:
        for block in store.blocks():
            for record in block.records:
                yield block.height, record
        return
    seq = 1
    while (found := store.record_at(author, seq)) is not None:
        yield found.height, found.record
        seq += 1


@click.command("records")
@home_option
@click.option("--author", default=None, metavar="NAME_OR_KEY", help="Only this member's feed.")
@json_option
def records_cmd(home: Path | None, author: str | None, as_json: bool) -> None:
    """List the ledger's records with their full ids: height, seq, author, kind, id."""
    with open_store(home) as store:
        names = _member_names(store)
        key = _author(author, names) if author is not None else None
        rows = _stored(store, key)
        if as_json:
            items = (
                {
                    "height": height,
                    "seq": record.seq,
                    "author": record.author.hex(),
                    "author_name": names.get(record.author),
                    "kind": record.kind,
                    "timestamp": record.timestamp,
                    "id": record.id.hex(),
                }
                for height, record in rows
            )
            _print_json_list(items)
            return
        click.echo(f"{'height':>6} {'seq':>5}  {'author':<16}  {'kind':<14} id")
        for height, record in rows:
            who = names.get(record.author) or record.author.hex()[:16]
            click.echo(
                f"{height:>6} {record.seq:>5}  {who:<16.16}  {record.kind:<14} {record.id.hex()}"
            )


def _print_json_list(items: Iterable[dict[str, Any]]) -> None:
    """A JSON list printed item by item, so a long listing is never held whole."""
    first = True
    for item in items:
        click.echo(("[\n  " if first else ",\n  ") + json.dumps(item), nl=False)
        first = False
    click.echo("[]" if first else "\n]")


# proofs


@click.command("proof")
@click.argument("record_id")
@home_option
@out_option
@force_option
@json_option
def proof(record_id: str, home: Path | None, out: Path, force: bool, as_json: bool) -> None:
    """Write an inclusion proof of a record that anyone with the genesis can check.

    RECORD_ID is a record's id or its first digits (at least 4), if no other id begins so."""
    with open_store(home) as store:
        rid = find_record_id(store, record_id)
        made = store.prove_record(rid)
        with output(out, force=force, home=home) as f:
            f.write(made.encode())
    height, changes = made.block.header.height, len(made.changes)
    if as_json:
        print_json(
            {"record_id": rid.hex(), "block": height, "validator_changes": changes, "out": str(out)}
        )
        return
    console.print(
        f"Wrote proof of record {rid.hex()} (block {height}, {changes} validator changes) to {out}"
    )


@click.command("verify-proof")
@click.argument("file", type=EXISTING_FILE)
@click.option("--genesis", "genesis_file", type=EXISTING_FILE, required=True)
@json_option
def verify_proof(file: Path, genesis_file: Path, as_json: bool) -> None:
    """Check a proof back to a genesis: exit 0 only if every link holds."""
    doc = read_genesis(genesis_file)
    data = read_limited(file, MAX_PROOF_BYTES, "proof file")
    try:
        made = RecordProof.decode(data)
        verify_record_proof(made, doc)
    except LedgerError as e:
        if as_json:
            print_json({"valid": False, "network_id": doc.network_id.hex(), "failure": str(e)})
        raise IntegrityFailure(f"proof does not verify: {e}") from e
    if as_json:
        print_json(
            {
                "valid": True,
                "record_id": made.record.id.hex(),
                "block": made.block.header.height,
                "network_id": doc.network_id.hex(),
            }
        )
        return
    console.print(
        f"[green]valid[/]: record {made.record.id.hex()} is in block "
        f"{made.block.header.height} of network {doc.network_id.hex()[:16]}"
    )
