"""Members on a live node: who they are, what they hold, what they contributed (docs/API.md,
"Governance"). Reads go to the node's local API; writes are records signed here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from cli.home import key_path, resolve_home
from cli.node_cmds import api_option
from cli.options import home_option, json_option, passphrase_option
from cli.output import console
from cli.submitting import Member, NotFound, ago, no_wait_option, now_ms
from ledger.crypto import Role
from ledger.files import read_public_key
from ledger.kinds_governance import Delegation
from ledger.records import Endorsement, Identity


def _member(home: Path | None, api: str | None, passphrase_file: Path | None = None) -> Member:
    return Member(home=home, api=api, passphrase_file=passphrase_file)


def _print_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2))


def _name(doc: dict[str, Any]) -> str:
    return f"{escape(doc['name'])} ({doc['key'][:16]})"


@click.command()
@click.option("--name", required=True, help="The name other members will know you by.")
@no_wait_option
@home_option
@passphrase_option
@api_option
def register(
    name: str, no_wait: bool, home: Path | None, passphrase_file: Path | None, api: str | None
) -> None:
    """Say who you are: an identity record naming your member key."""
    me = _member(home, api, passphrase_file)
    me.submit(Identity(name=name), wait=not no_wait, what=f"register {name}", then="commons self")


@click.command("self")
@home_option
@api_option
@json_option
def self_cmd(home: Path | None, api: str | None, as_json: bool) -> None:
    """Your identity, keys, balance, voting power and delegate."""
    me = _member(home, api)
    key = me.public_key.hex()
    where = resolve_home(home)
    keys = {
        role.value: read_public_key(key_path(where, role)).hex()
        for role in Role
        if key_path(where, role).exists()
    }
    doc: dict[str, Any] | None
    try:
        doc = me.resolve(key)
    except NotFound:
        doc = None  # not a member yet
    if as_json:
        _print_json({"key": key, "keys": keys, "member": doc})
        return
    for role, public in keys.items():
        console.print(f"{role + ' key':<11} {public}")
    if doc is None:
        console.print("not a member yet: `commons register --name NAME`, then ask for tokens")
        return
    console.print(f"name        {escape(doc['name'])}")
    console.print(f"balance     {doc['balance']}")
    console.print(f"power       {doc['power']}" + ("  (frozen)" if doc["frozen"] else ""))
    delegate = doc["delegate"]
    console.print(f"delegate    {'yourself' if delegate is None else delegate[:16]}")
    if doc["delegators"]:
        console.print(f"delegators  {len(doc['delegators'])}")


@click.command()
@home_option
@api_option
@json_option
def members(home: Path | None, api: str | None, as_json: bool) -> None:
    """Every member with balance and voting power."""
    doc = _member(home, api).read("/api/members")
    if as_json:
        _print_json(doc)
        return
    for m in doc["members"]:
        delegate = "" if m["delegate"] is None else f"  delegates to {m['delegate'][:16]}"
        frozen = "  frozen" if m["frozen"] else ""
        console.print(
            f"{m['key'][:16]}  {escape(m['name']):<20} balance {m['balance']:>8}  "
            f"power {m['power']:>8}{delegate}{frozen}"
        )


@click.command()
@click.argument("who", required=False)
@home_option
@api_option
@json_option
def balance(who: str | None, home: Path | None, api: str | None, as_json: bool) -> None:
    """A member's balance and voting power (yours without WHO; WHO is a name or a key)."""
    me = _member(home, api)
    doc = me.resolve(who or me.public_key.hex())
    if as_json:
        _print_json({k: doc[k] for k in ("key", "name", "balance", "power")})
        return
    console.print(f"{_name(doc)}: balance {doc['balance']}, voting power {doc['power']}")


@click.command()
@home_option
@api_option
@json_option
def params(home: Path | None, api: str | None, as_json: bool) -> None:
    """The governance parameters now, with the bounds a proposal must keep them in."""
    doc = _member(home, api).read("/api/params")
    if as_json:
        _print_json(doc)
        return
    for p in doc["params"]:
        console.print(f"{p['name']:<24} {p['value']:>12}   ({p['min']} … {p['max']})")


@click.command()
@click.argument("to", required=False)
@click.option("--self", "to_self", is_flag=True, help="Take your voting power back.")
@no_wait_option
@home_option
@passphrase_option
@api_option
def delegate(
    to: str | None,
    to_self: bool,
    no_wait: bool,
    home: Path | None,
    passphrase_file: Path | None,
    api: str | None,
) -> None:
    """Lend your voting power to member TO (a name or a key), or take it back with --self."""
    if (to is None) == (not to_self):
        raise click.UsageError("give a member to delegate to, or --self (not both)")
    me = _member(home, api, passphrase_file)
    if to_self:
        target, what = me.public_key, "delegate to yourself"
    else:
        doc = me.resolve(to or "")
        target, what = bytes.fromhex(doc["key"]), f"delegate to {doc['name']}"
    me.submit(Delegation(to=target), wait=not no_wait, what=what, then="commons self")


@click.command()
@click.argument("contribution")
@click.option("--comment", default="", help="Why you endorse it.")
@no_wait_option
@home_option
@passphrase_option
@api_option
def endorse(
    contribution: str,
    comment: str,
    no_wait: bool,
    home: Path | None,
    passphrase_file: Path | None,
    api: str | None,
) -> None:
    """Endorse another member's contribution (its id, or a unique prefix of it)."""
    me = _member(home, api, passphrase_file)
    doc = me.read("/api/contributions", contribution)
    body = Endorsement(contribution=bytes.fromhex(doc["id"]), comment=comment)
    then = f"commons contribution {doc['id'][:12]}"
    me.submit(body, wait=not no_wait, what=f"endorse {doc['title']!r}", then=then)


@click.command()
@click.option("--author", default=None, help="Only this member's (a name or a key).")
@click.option("--kind", default=None, help="Only this kind of work.")
@home_option
@api_option
@json_option
def contributions(
    author: str | None, kind: str | None, home: Path | None, api: str | None, as_json: bool
) -> None:
    """Recorded contributions, oldest first, with endorsements and rewards."""
    doc = _member(home, api).read("/api/contributions", author=author, kind=kind)
    if as_json:
        _print_json(doc)
        return
    now = now_ms()
    for c in doc["contributions"]:
        rewarded = "  rewarded" if c["rewarded_by"] else ""
        console.print(
            f"{c['id'][:12]}  {escape(c['kind']):<10} {escape(c['title'])[:48]:<48} "
            f"by {c['author'][:12]}  {ago(c['at'], now)}  +{c['endorsements']}{rewarded}"
        )
    if not doc["contributions"]:
        console.print("no contributions yet: `commons contribute TITLE` records one")


@click.command()
@click.argument("contribution")
@home_option
@api_option
@json_option
def contribution(contribution: str, home: Path | None, api: str | None, as_json: bool) -> None:
    """One contribution in full (its id, or a unique prefix of it)."""
    doc = _member(home, api).read("/api/contributions", contribution)
    if as_json:
        _print_json(doc)
        return
    console.print(f"[bold]{escape(doc['title'])}[/]  ({escape(doc['kind'])})")
    console.print(f"id          {doc['id']}")
    console.print(f"author      {doc['author']}")
    console.print(f"block       {doc['height']}")
    if doc["hours"] is not None:
        console.print(f"hours       {doc['hours']}")
    for ref in doc["refs"]:
        console.print(f"ref         {escape(ref)}")
    if doc["description"]:
        console.print(escape(doc["description"]))
    console.print(f"endorsements {doc['endorsements']}")
    if doc["rewarded_by"]:
        console.print(f"rewarded by proposal {doc['rewarded_by'][:12]}")
