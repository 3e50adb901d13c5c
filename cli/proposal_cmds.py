"""Proposals on a live node: make them, list them, read one, vote, cancel (PROTOCOL §15).

A proposal holds one or more actions: the `propose` subcommands make a one-action proposal,
`propose --file proposal.toml` one with several (the format: docs/PROPOSALS.md).
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from cli.node_cmds import api_option
from cli.options import home_option, json_option, passphrase_option
from cli.output import console
from cli.submitting import Member, Rejected, ago, no_wait_option
from ledger import schema
from ledger.errors import InputFileError, SchemaError
from ledger.files import read_limited
from ledger.kinds_governance import (
    SUPPORT,
    Action,
    Cancel,
    ChangeValidators,
    Freeze,
    Proposal,
    Reinstate,
    Reward,
    SetParam,
    Text,
    Vote,
)

MAX_PROPOSAL_FILE_BYTES = 64 * 1024
BAR = 20

title_option = click.option("--title", required=True, help="What the proposal is, in a line.")
description_option = click.option("--description", default="", help="Why, in full.")


def _member(home: Path | None, api: str | None, passphrase_file: Path | None = None) -> Member:
    return Member(home=home, api=api, passphrase_file=passphrase_file)


def _submit_proposal(
    me: Member, title: str, description: str, actions: list[Action], wait: bool
) -> None:
    try:
        body = Proposal(title=title, description=description, actions=tuple(actions))
    except SchemaError as e:
        raise click.UsageError(str(e)) from e
    then = "commons proposal {id}   (to vote: commons vote {id} for|against|abstain)"
    me.submit(body, wait=wait, what=f"proposal {title!r}", then=then)


def _key_of(me: Member, who: str) -> bytes:
    return bytes.fromhex(me.resolve(who)["key"])


def _contribution_id(me: Member, text: str) -> bytes:
    return bytes.fromhex(me.read("/api/contributions", text)["id"])


def _proposal_id(me: Member, text: str) -> bytes:
    return bytes.fromhex(me.read("/api/proposals", text)["id"])


def _validator_changes(items: dict[str, int]) -> ChangeValidators:
    changes = []
    for key, power in items.items():
        raw = bytes.fromhex(key) if len(key) == 64 and _is_hex(key) else None
        if raw is None:
            raise click.UsageError(f"validator key {key!r} must be 64 hex digits")
        if type(power) is not int or not 0 <= power <= schema.MAX_INT:
            raise click.UsageError(f"validator power {power!r} must be a whole number from 0")
        changes.append((raw, power))
    try:
        return ChangeValidators(changes=tuple(sorted(changes)))
    except SchemaError as e:
        raise click.UsageError(str(e)) from e


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


# propose


def _proposing(make: Callable[..., list[Action]]) -> Callable[..., None]:
    """A `propose` subcommand from `make(me, **its own options) -> actions`: the options every
    proposal takes are added here, and the proposal is signed and submitted here."""

    @functools.wraps(make)
    def command(
        *,
        title: str,
        description: str,
        no_wait: bool,
        home: Path | None,
        passphrase_file: Path | None,
        api: str | None,
        **options: Any,
    ) -> None:
        me = _member(home, api, passphrase_file)
        _submit_proposal(me, title, description, make(me, **options), not no_wait)

    for option in (api_option, passphrase_option, home_option, no_wait_option, description_option):
        command = option(command)
    return title_option(command)


@click.group(invoke_without_command=True)
@click.option(
    "--file",
    "proposal_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A proposal with several actions (the format is in `commons propose --help`'s docs).",
)
@no_wait_option
@home_option
@passphrase_option
@api_option
@click.pass_context
def propose(
    ctx: click.Context,
    proposal_file: Path | None,
    no_wait: bool,
    home: Path | None,
    passphrase_file: Path | None,
    api: str | None,
) -> None:
    """Propose a change for members to vote on: one action with a subcommand, or several with
    --file proposal.toml (the format and an example: docs/PROPOSALS.md)."""
    if ctx.invoked_subcommand is not None:
        if proposal_file is not None:
            raise click.UsageError("give either --file or a subcommand")
        return
    if proposal_file is None:
        raise click.UsageError("give a subcommand (reward, param, …) or --file proposal.toml")
    me = _member(home, api, passphrase_file)
    title, description, actions = read_proposal_file(me, proposal_file)
    _submit_proposal(me, title, description, actions, not no_wait)


def read_proposal_file(me: Member, path: Path) -> tuple[str, str, list[Action]]:
    """The title, description and actions of a proposal file; UsageError naming what is wrong."""
    try:
        doc = tomllib.loads(read_limited(path, MAX_PROPOSAL_FILE_BYTES, "proposal file").decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputFileError(f"{path} is not valid TOML: {e}") from e
    unknown = set(doc) - {"title", "description", "actions"}
    if unknown:
        raise click.UsageError(f"{path}: unknown keys {', '.join(sorted(unknown))}")
    title, description = doc.get("title"), doc.get("description", "")
    if not isinstance(title, str) or not isinstance(description, str):
        raise click.UsageError(f"{path}: title (and description) must be strings")
    items = doc.get("actions")
    if not isinstance(items, list) or not items:
        raise click.UsageError(f"{path}: give at least one [[actions]] table")
    actions = []
    for n, item in enumerate(items, 1):
        try:
            actions.append(_action(me, item))
        except (KeyError, TypeError, ValueError, SchemaError) as e:
            raise click.UsageError(f"{path}: action {n}: {e!s} (see the format in --help)") from e
    return title, description, actions


def _action(me: Member, item: dict[str, Any]) -> Action:
    kind = item.get("type")
    if kind == "reward":
        contribution = item.get("contribution")
        return Reward(
            to=_key_of(me, item["to"]),
            amount=item["amount"],
            contribution=None if contribution is None else _contribution_id(me, contribution),
        )
    if kind == "param":
        return SetParam(name=item["name"], value=item["value"])
    if kind == "validators":
        return _validator_changes(item["powers"])
    if kind == "freeze":
        return Freeze(member=_key_of(me, item["member"]))
    if kind == "reinstate":
        return Reinstate(member=_key_of(me, item["member"]))
    if kind == "text":
        return Text()
    raise ValueError(f"type {kind!r} is not reward, param, validators, freeze, reinstate or text")


@propose.command("reward")
@click.option("--to", "to", required=True, help="The member to reward (a name or a key).")
@click.option("--amount", type=click.IntRange(1, schema.MAX_INT), required=True)
@click.option("--contribution", default=None, help="The contribution rewarded (id or prefix).")
@_proposing
def propose_reward(me: Member, to: str, amount: int, contribution: str | None) -> list[Action]:
    """Mint AMOUNT tokens to a member, optionally for a recorded contribution."""
    cited = None if contribution is None else _contribution_id(me, contribution)
    return [Reward(to=_key_of(me, to), amount=amount, contribution=cited)]


@propose.command("param")
@click.argument("name")
@click.argument("value", type=click.IntRange(-schema.MAX_INT, schema.MAX_INT))
@_proposing
def propose_param(me: Member, name: str, value: int) -> list[Action]:
    """Set a governance parameter (see `commons params` for names and bounds)."""
    return [SetParam(name=name, value=value)]


@propose.command("validators")
@click.argument("powers", nargs=-1, required=True, metavar="KEY=POWER...")
@_proposing
def propose_validators(me: Member, powers: tuple[str, ...]) -> list[Action]:
    """New voting powers for validators (0 removes one; the rest keep theirs)."""
    items: dict[str, int] = {}
    for pair in powers:
        key, sep, power = pair.partition("=")
        if not sep or not power.isdigit():
            raise click.UsageError(f"{pair!r} is not KEY=POWER")
        items[key] = int(power)
    return [_validator_changes(items)]


@propose.command("freeze")
@click.argument("member")
@_proposing
def propose_freeze(me: Member, member: str) -> list[Action]:
    """Freeze a member: no voting power, no rewards, until reinstated."""
    return [Freeze(member=_key_of(me, member))]


@propose.command("reinstate")
@click.argument("member")
@_proposing
def propose_reinstate(me: Member, member: str) -> list[Action]:
    """Reinstate a frozen member."""
    return [Reinstate(member=_key_of(me, member))]


@propose.command("text")
@_proposing
def propose_text(me: Member) -> list[Action]:
    """A signal-only proposal: members vote on the description; nothing executes."""
    return [Text()]


# reading proposals


def _bar(reached: int, needed: int) -> str:
    filled = min(BAR, reached * BAR // max(needed, 1))
    return "█" * filled + "░" * (BAR - filled)


def _when(p: dict[str, Any], now: int) -> str:
    if p["state"] == "Pending":
        return f"voting opens {ago(p['snapshot'], now)}"
    if p["state"] == "Active":
        return f"closes {ago(p['deadline'], now)}"
    if p["state"] == "Queued" and p["eta"]:
        return f"executes {ago(p['eta'], now)}"
    return f"ended {ago(p['deadline'], now)}"


@click.command()
@click.option(
    "--state",
    default=None,
    type=click.Choice(
        ["pending", "active", "canceled", "defeated", "queued", "executed", "failed"],
        case_sensitive=False,
    ),
)
@home_option
@api_option
@json_option
def proposals(state: str | None, home: Path | None, api: str | None, as_json: bool) -> None:
    """Every proposal: state, time left, tallies and quorum."""
    doc = _member(home, api).read("/api/proposals", state=state)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    now = doc["now"]
    for p in doc["proposals"]:
        v, q = p["votes"], p["quorum"]
        console.print(
            f"{p['id'][:12]}  [bold]{p['state']:<9}[/] {escape(p['title'])[:40]:<40} "
            f"{_when(p, now):<24} for {v['for']} against {v['against']} abstain {v['abstain']}  "
            f"quorum {_bar(q['reached'], q['needed'])} {q['reached']}/{q['needed']}"
        )
    if not doc["proposals"]:
        console.print("no proposals: `commons propose --help` says how to make one")


@click.command()
@click.argument("proposal_id", metavar="ID")
@home_option
@api_option
@json_option
def proposal(proposal_id: str, home: Path | None, api: str | None, as_json: bool) -> None:
    """One proposal: its timeline, tallies, quorum, your vote and why it passed or failed."""
    me = _member(home, api)
    doc = me.read("/api/proposals", proposal_id, member=me.public_key.hex())
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    now = doc["now"]
    console.print(f"[bold]{escape(doc['title'])}[/]   {doc['state']}")
    console.print(f"id        {doc['id']}")
    console.print(f"proposer  {escape(doc['proposer_name'] or '')} {doc['proposer'][:16]}")
    if doc["description"]:
        console.print(escape(doc["description"]))
    console.print(f"created   {ago(doc['created'], now)}")
    console.print(f"snapshot  {ago(doc['snapshot'], now)}  (voting power counts as it was then)")
    console.print(f"deadline  {ago(doc['deadline'], now)}")
    if doc["eta"]:
        console.print(f"executes  {ago(doc['eta'], now)}")
    v, q = doc["votes"], doc["quorum"]
    console.print(f"votes     for {v['for']}  against {v['against']}  abstain {v['abstain']}")
    console.print(f"quorum    {_bar(q['reached'], q['needed'])} {q['reached']} of {q['needed']}")
    for action in doc["actions"]:
        console.print(f"action    {escape(json.dumps(action))}")
    mine = doc.get("member")
    if mine is not None:
        vote = mine["vote"] or "not voted"
        console.print(f"you       power {mine['power_at_snapshot']} at the snapshot; {vote}")
    if doc["reason"]:
        console.print(f"why       {escape(doc['reason'])}")
    elif doc["state"] in ("Queued", "Executed"):
        console.print("why       quorum reached and For exceeded Against")


@click.command()
@click.argument("proposal_id", metavar="ID")
@click.argument("support", type=click.Choice(list(SUPPORT)))
@click.option("--reason", default="", help="Why, for the record.")
@no_wait_option
@home_option
@passphrase_option
@api_option
def vote(
    proposal_id: str,
    support: str,
    reason: str,
    no_wait: bool,
    home: Path | None,
    passphrase_file: Path | None,
    api: str | None,
) -> None:
    """Vote for, against or abstain on a proposal (its id or a unique prefix)."""
    me = _member(home, api, passphrase_file)
    found = me.read("/api/proposals", proposal_id)
    if found["state"] != "Active":  # the rules would refuse it: spend no seq on it
        when = _when(found, found["now"])
        raise Rejected(f"proposal {found['id'][:12]} is {found['state']}: {when}; no vote sent")
    pid = bytes.fromhex(found["id"])
    body = Vote(proposal=pid, support=SUPPORT[support], reason=reason)
    then = f"commons proposal {pid.hex()[:12]}"
    me.submit(body, wait=not no_wait, what=f"vote {support}", then=then)


@click.command()
@click.argument("proposal_id", metavar="ID")
@no_wait_option
@home_option
@passphrase_option
@api_option
def cancel(
    proposal_id: str,
    no_wait: bool,
    home: Path | None,
    passphrase_file: Path | None,
    api: str | None,
) -> None:
    """Withdraw your proposal while it is still Pending."""
    me = _member(home, api, passphrase_file)
    pid = _proposal_id(me, proposal_id)
    me.submit(Cancel(proposal=pid), wait=not no_wait, what="cancel", then="commons proposals")
