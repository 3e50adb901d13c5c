"""`commons init` and `commons key export|import`: create a home, move keys between machines.

A home has one passphrase (or none, with --plaintext-keys): keys added to a home that has keys
are sealed like those, under the passphrase that opens them; the first keys of a home are sealed
under a new passphrase of at least MIN_PASSPHRASE_CHARS characters.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from cli.home import (
    CONFIG_TEMPLATE,
    ensure_token,
    key_path,
    new_passphrase,
    output,
    read_passphrase,
    resolve_home,
)
from cli.options import force_option, home_option, json_option, out_option, passphrase_option
from cli.output import console, print_json
from ledger.crypto import SEED_BYTES, Keypair, Role
from ledger.errors import InputFileError, KeyFileError, WrongPassphrase
from ledger.files import NONCE_BYTES, SALT_BYTES, read_key_file, seal_key, write_private

__all__ = ["home_option", "init", "key", "passphrase_option"]

ROLE_CHOICE = click.Choice([r.value for r in Role])


def _seal(role: Role, key: Keypair, passphrase: bytes | None) -> bytes:
    return seal_key(
        role, key, passphrase, salt=os.urandom(SALT_BYTES), nonce=os.urandom(NONCE_BYTES)
    )


def _sealing_passphrase(where: Path, passphrase_file: Path | None) -> tuple[bool, bytes | None]:
    """(whether the home has keys, the passphrase they open with: None if they are
    unencrypted). The passphrase is checked against one of them."""
    existing = [key_path(where, r) for r in Role if key_path(where, r).exists()]
    if not existing:
        return False, None
    asked: list[bytes] = []

    def ask() -> bytes:
        prompt = "Passphrase of this home's keys"
        asked.append(read_passphrase(passphrase_file, confirm=False, prompt=prompt))
        return asked[0]

    try:
        read_key_file(existing[0], ask)
    except WrongPassphrase as e:
        given = f" in {passphrase_file}" if passphrase_file is not None else ""
        raise WrongPassphrase(
            f"the passphrase{given} is not the passphrase of this home's keys: it does not open "
            f"{existing[0]} (new keys of a home are sealed like the keys it has)"
        ) from e
    return True, asked[0] if asked else None


def _make_home(where: Path) -> bool:
    """Make `where` a home (mode 0700, a keys folder, a config.toml); whether it made the
    config.toml, that is whether the home is new."""
    where.mkdir(mode=0o700, parents=True, exist_ok=True)
    where.chmod(0o700)
    (where / "keys").mkdir(mode=0o700, exist_ok=True)
    (where / "keys").chmod(0o700)
    ensure_token(where)
    if (where / "config.toml").exists():
        return False
    write_private(where / "config.toml", CONFIG_TEMPLATE.encode())
    return True


@click.command()
@home_option
@passphrase_option
@click.option(
    "--plaintext-keys", is_flag=True, help="Store the keys unencrypted (only for throwaway homes)."
)
@json_option
def init(
    home: Path | None, passphrase_file: Path | None, plaintext_keys: bool, as_json: bool
) -> None:
    """Create a Commons home with a member, a validator and a node key.

    A home that has some keys already (imported with `commons key import`) gets the missing
    ones, sealed under the passphrase of the keys it has; nothing in it is replaced."""
    where = resolve_home(home)
    missing = [role for role in Role if not key_path(where, role).exists()]
    if not missing and (where / "config.toml").exists():
        raise KeyFileError(f"{where} already holds a Commons home; refusing to overwrite it")
    has_keys, passphrase = _sealing_passphrase(where, passphrase_file)
    if has_keys and plaintext_keys and passphrase is not None:
        raise KeyFileError(f"the keys of {where} are encrypted: drop --plaintext-keys")
    if not has_keys and not plaintext_keys:
        passphrase = new_passphrase(passphrase_file)
    _make_home(where)
    made = {}
    for role in missing:
        key = Keypair.from_seed(os.urandom(SEED_BYTES))
        write_private(key_path(where, role), _seal(role, key, passphrase))
        made[role] = key.public_key
    if as_json:
        keys = {
            role.value: {"public_key": public.hex(), "path": str(key_path(where, role))}
            for role, public in made.items()
        }
        print_json({"home": str(where), "encrypted": passphrase is not None, "keys": keys})
        return
    kept = [role.value for role in Role if role not in made]
    done = "Completed the" if has_keys else "Created"
    console.print(f"{done} Commons home [bold]{where}[/] (mode 0700)")
    for role, public in made.items():
        console.print(f"  {role.value:<10} {public.hex()}  {key_path(where, role)}")
    if kept:
        console.print(f"  kept the {', '.join(kept)} key{'s' if len(kept) > 1 else ''} it had")
    if passphrase is None:
        console.print(
            "[yellow]Keys are stored UNENCRYPTED.[/] Anyone who reads them can sign as you."
        )
    else:
        console.print(
            f"Back up [bold]{where / 'keys'}[/] together with its passphrase: "
            "without both, these identities cannot be recovered."
        )


@click.group()
def key() -> None:
    """Move keys between machines."""


@key.command("export")
@home_option
@passphrase_option
@click.option("--role", type=ROLE_CHOICE, default=Role.MEMBER.value, show_default=True)
@out_option
@click.option("--plaintext", is_flag=True, help="Write the secret key unencrypted.")
@force_option
@json_option
def export_key(
    home: Path | None,
    passphrase_file: Path | None,
    role: str,
    out: Path,
    plaintext: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Write one role's key to a file that `commons key import` takes on another machine."""
    where = resolve_home(home)
    path = key_path(where, Role(role))
    if not path.exists():
        raise InputFileError(f"{where} has no {role} key ({path} does not exist)")
    opened = read_key_file(path, lambda: read_passphrase(passphrase_file, confirm=False))
    data = seal_key(opened.role, opened.key, None) if plaintext else opened.data
    with output(out, force=force, home=home, private=True) as f:
        f.write(data)
    state = "UNENCRYPTED" if plaintext or not opened.encrypted else "encrypted"
    public = opened.key.public_key.hex()
    if as_json:
        doc = {
            "role": role,
            "public_key": public,
            "out": str(out),
            "encrypted": state != "UNENCRYPTED",
        }
        print_json(doc)
        return
    console.print(f"Exported {role} key {public} to {out} ({state})")


@key.command("import")
@home_option
@passphrase_option
@click.option(
    "--file-passphrase-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The passphrase of FILE, if not the home's (first line of this file).",
)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Replace a key this home already has for that role.")
@json_option
def import_key(
    home: Path | None,
    passphrase_file: Path | None,
    file_passphrase_file: Path | None,
    file: Path,
    force: bool,
    as_json: bool,
) -> None:
    """Install a key file from `commons key export` into a home, sealed under the home's
    passphrase.

    FILE opens with --file-passphrase-file, else with the home's --passphrase-file. Into a
    folder that is not a home yet, this makes one (mode 0700, with a config.toml) whose
    passphrase is the one given for the home; `commons init` then adds the other keys."""
    where = resolve_home(home)

    def file_passphrase() -> bytes:
        source = file_passphrase_file or passphrase_file
        return read_passphrase(source, confirm=False, prompt=f"Passphrase of {file}")

    try:
        opened = read_key_file(file, file_passphrase)
    except WrongPassphrase as e:
        if file_passphrase_file is not None:
            given = f"the passphrase in {file_passphrase_file} (--file-passphrase-file)"
        elif passphrase_file is not None:
            given = (
                f"the home's passphrase in {passphrase_file} (give the file's own with "
                "--file-passphrase-file)"
            )
        else:
            given = "the passphrase typed"
        raise WrongPassphrase(
            f"{given} does not open the key file {file}: wrong passphrase, or the file was altered"
        ) from e
    target = key_path(where, opened.role)
    if target.exists() and not force:
        raise KeyFileError(
            f"{where} already has a {opened.role.value} key ({target}): --force replaces it"
        )
    has_keys, passphrase = _sealing_passphrase(where, passphrase_file)
    if not has_keys:
        passphrase = new_passphrase(passphrase_file, prompt=f"New passphrase for {where}")
    created = _make_home(where)
    write_private(target, _seal(opened.role, opened.key, passphrase), overwrite=force)
    public = opened.key.public_key.hex()
    if as_json:
        doc = {
            "home": str(where),
            "role": opened.role.value,
            "public_key": public,
            "path": str(target),
            "encrypted": passphrase is not None,
            "created_home": created,
        }
        print_json(doc)
        return
    console.print(f"Imported {opened.role.value} key {public} into {target}")
    if passphrase is None:
        console.print("[yellow]Stored UNENCRYPTED[/], as this home's other keys are.")
    if created:
        others = ", ".join(r.value for r in Role if not key_path(where, r).exists())
        console.print(
            f"Created the Commons home {where} (mode 0700) with a config.toml; "
            f"`commons init --home {where}` adds its missing keys ({others})."
        )
