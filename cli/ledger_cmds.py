"""The auditor's commands: genesis create, export, import, audit, proof, verify-proof."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli.home import resolve_home
from cli.keys import home_option
from cli.output import console, err_console
from ledger.audit import AuditReport, audit
from ledger.block import Block, Commit, RawBlock
from ledger.chain import Applied, Chain
from ledger.errors import LedgerError, LocalError
from ledger.files import Bundle, open_bundle, write_bundle
from ledger.genesis import Genesis, Param
from ledger.proof import RecordProof, verify_record_proof
from ledger.store import Store, StoreError
from node.parallel import bundle_records, record_checker
from node.rules import DEFAULT_PARAMS, commons_genesis, commons_rules

LEDGER_FILE = "ledger.sqlite"
_DIGITS = re.compile(r"[0-9]{1,16}")
EXISTING_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)


class IntegrityFailure(click.ClickException):
    """An audit or proof check found the ledger broken: exit 1 after the report."""

    exit_code = 1

    def show(self, file: object = None) -> None:
        err_console.print(f"[red]integrity failure:[/] {self.message}")


def ledger_path(home: Path | None) -> Path:
    return resolve_home(home) / LEDGER_FILE


@contextmanager
def open_store(home: Path | None) -> Iterator[Store]:
    path = ledger_path(home)
    if not path.exists():
        raise click.UsageError(f"no ledger in {path.parent} (expected {path})")
    store = Store.open(path, rules=commons_rules, snapshot=True)
    try:
        yield store
    finally:
        store.close()


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
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
def genesis_create(
    name: str,
    members: tuple[str, ...],
    validators: tuple[str, ...],
    params: tuple[str, ...],
    time_ms: int | None,
    out: Path,
) -> None:
    """Write a genesis: founders with their tokens, validators with their power, parameters."""
    founders: dict[bytes, tuple[str, int]] = {}
    for spec in members:
        member_name, sep, rest = spec.partition("=")
        key_hex, sep2, tokens = rest.partition(":")
        if not (sep and sep2 and _DIGITS.fullmatch(tokens)):
            raise click.BadParameter(f"--member {spec!r}: expected NAME=KEY:TOKENS")
        key = _hex32(key_hex, "--member")
        if key in founders:
            raise click.BadParameter(f"--member: key {key_hex} is given twice")
        founders[key] = (member_name, int(tokens))
    powers: dict[bytes, int] = {}
    for spec in validators:
        key_hex, sep, power = spec.partition(":")
        if not (sep and _DIGITS.fullmatch(power)):
            raise click.BadParameter(f"--validator {spec!r}: expected KEY:POWER")
        key = _hex32(key_hex, "--validator")
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
    out.write_bytes(doc.to_json())
    console.print(f"Wrote genesis of [bold]{name}[/] to {out}")
    console.print(f"network id {doc.network_id.hex()}")


# export / import


@click.command("export")
@home_option
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
def export(home: Path | None, out: Path) -> None:
    """Write the whole ledger to one self-contained bundle file."""
    with open_store(home) as store:
        tip = store.tip.height
        count = write_bundle(out, store.genesis, store.blocks(), store.commit(tip) if tip else None)
        console.print(f"Exported {count} blocks, {store.record_count()} records to {out}")


@click.command("import")
@home_option
@click.argument("bundle", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def import_(home: Path | None, bundle: Path) -> None:
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
    os.replace(staging, path)
    console.print(f"Imported {tip} blocks, {records} records into {path} (all verified)")


def _verify_into(staging: Path, opened: Bundle, most: int) -> tuple[int, int]:
    store = Store.create(staging, opened.genesis, rules=commons_rules)
    with store, record_checker(most) as checker:
        store.extend(((raw, None) for raw in opened.raw_blocks()), checker)
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
    "--bundle", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None
)
@click.option(
    "--genesis", "genesis_file", type=EXISTING_FILE, help="Require this genesis (its network id)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def audit_cmd(
    home: Path | None, bundle: Path | None, genesis_file: Path | None, as_json: bool
) -> None:
    """Re-verify a ledger from genesis: signatures, feeds, evidence, links, certificates, roots."""
    if bundle is not None and home is not None:
        raise click.UsageError("give --home or --bundle, not both")
    expected = Genesis.from_json(genesis_file.read_bytes()).network_id if genesis_file else None
    if bundle is not None:
        opened = open_bundle(bundle)
        report, _ = _run_audit(
            opened.genesis,
            opened.raw_blocks(),
            lambda: opened.commit,
            None,
            expected,
            bound=bundle_records(bundle),
        )
        source = str(bundle)
    else:
        path = ledger_path(home)
        if not path.exists():
            raise click.UsageError(f"no ledger in {path.parent}: give --home DIR or --bundle FILE")
        try:
            store = Store.open(path, rules=commons_rules, snapshot=True)
        except StoreError as e:
            raise IntegrityFailure(str(e)) from e
        with store:
            tip = store.tip.height
            report, chain = _run_audit(
                store.genesis,
                store.raw_blocks(),
                lambda: store.commit(tip) if tip else None,
                store.record_count(),
                expected,
                on_block=store.check_block,
            )
            if report.ok:
                _check_store_matches(store, chain, report)
        source = str(path)
    _print_report(report, source, as_json)
    if not report.ok:
        raise IntegrityFailure(report.failure or "")


def _run_audit(
    genesis_doc: Genesis,
    blocks: Iterable[RawBlock],
    tip_commit: Callable[[], Commit | None],
    records: int | None,
    expected: bytes | None,
    *,
    bound: int | None = None,
    on_block: Callable[[Block, Applied], None] | None = None,
) -> tuple[AuditReport, Chain]:
    """Audit with a progress bar on a terminal: `records` is their count when known, `bound`
    at most how many there are when it is not."""
    columns = (TextColumn("auditing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    bar = Progress(*columns, console=err_console, transient=True, disable=not sys.stderr.isatty())
    with bar, record_checker(records if records is not None else bound) as checker:
        task = bar.add_task("records", total=records)
        return audit(
            genesis_doc,
            blocks,
            tip_commit,
            apply=commons_rules(genesis_doc),
            checker=checker,
            expected_network=expected,
            progress=lambda n: bar.advance(task, n),
            on_block=on_block,
        )


def _check_store_matches(store: Store, chain: Chain, report: AuditReport) -> None:
    """A store also keeps derived data (state, Merkle nodes): it must agree with the replay."""
    try:
        store.check_derived(chain, blocks_checked=True)
        report.extra_checks.append("stored state, Merkle nodes and lookup tables match the replay")
    except LedgerError as e:
        report.failure = f"store: {e}"


def _print_report(report: AuditReport, source: str, as_json: bool) -> None:
    if as_json:
        doc = {
            "source": source,
            "ok": report.ok,
            "network_id": report.network_id.hex(),
            "height": report.height,
            "blocks": report.blocks,
            "records": report.records,
            "signatures": report.signatures,
            "certificates": report.certificates,
            "evidence": report.evidence,
            "state_root": report.state_root.hex(),
            "log_root": report.log_root.hex(),
            "failure": report.failure,
        }
        click.echo(json.dumps(doc, indent=2))
        return
    console.print(f"audit of {source}")
    console.print(f"  network id    {report.network_id.hex()}")
    console.print(f"  blocks        {report.blocks:,}   (height {report.height})")
    console.print(f"  records       {report.records:,}   signatures {report.signatures:,}")
    console.print(f"  certificates  {report.certificates:,}   evidence {report.evidence:,}")
    console.print(f"  log root      {report.log_root.hex()}")
    console.print(f"  state root    {report.state_root.hex()}")
    for line in report.extra_checks:
        console.print(f"  {line}")
    if report.ok:
        console.print("[green]intact[/]: every check passed")


# proofs


@click.command("proof")
@click.argument("record_id")
@home_option
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
def proof(record_id: str, home: Path | None, out: Path) -> None:
    """Write an inclusion proof of a record that anyone with the genesis can check."""
    rid = _hex32(record_id, "RECORD_ID")
    with open_store(home) as store:
        made = store.prove_record(rid)
        out.write_bytes(made.encode())
    console.print(
        f"Wrote proof of record {record_id} (block {made.block.header.height}, "
        f"{len(made.changes)} validator changes) to {out}"
    )


@click.command("verify-proof")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--genesis", "genesis_file", type=EXISTING_FILE, required=True)
def verify_proof(file: Path, genesis_file: Path) -> None:
    """Check a proof back to a genesis: exit 0 only if every link holds."""
    doc = Genesis.from_json(genesis_file.read_bytes())
    try:
        made = RecordProof.decode(file.read_bytes())
        verify_record_proof(made, doc)
    except LedgerError as e:
        raise IntegrityFailure(f"proof does not verify: {e}") from e
    console.print(
        f"[green]valid[/]: record {made.record.id.hex()} is in block "
        f"{made.block.header.height} of network {doc.network_id.hex()[:16]}"
    )
