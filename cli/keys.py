"""`commons init` and `commons key export|import`: create a home, move keys between machines."""

from __future__ import annotations

import os
from pathlib import Path

import click

from cli.home import CONFIG_TEMPLATE, key_path, read_passphrase, resolve_home
from cli.output import console
from ledger.crypto import SEED_BYTES, Keypair, Role
from ledger.errors import KeyFileError
from ledger.files import NONCE_BYTES, SALT_BYTES, read_key_file, seal_key, write_private

home_option = click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Commons home folder (default: $COMMONS_HOME or ~/.commons).",
)
passphrase_option = click.option(
    "--passphrase-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Read the key passphrase from the first line of this file (for unattended use).",
)
ROLE_CHOICE = click.Choice([r.value for r in Role])


def _seal(role: Role, key: Keypair, passphrase: bytes | None) -> bytes:
    return seal_key(
        role, key, passphrase, salt=os.urandom(SALT_BYTES), nonce=os.urandom(NONCE_BYTES)
    )


@click.command()
@home_option
@passphrase_option
@click.option(
    "--plaintext-keys", is_flag=True, help="Store the keys unencrypted (only for throwaway homes)."
)
def init(home: Path | None, passphrase_file: Path | None, plaintext_keys: bool) -> None:
    """Create a Commons home with a member, a validator and a node key."""
    where = resolve_home(home)
    if (where / "keys").exists() or (where / "config.toml").exists():
        raise KeyFileError(f"{where} already holds a Commons home; refusing to overwrite it")
    passphrase = None if plaintext_keys else read_passphrase(passphrase_file, confirm=True)
    where.mkdir(mode=0o700, parents=True, exist_ok=True)
    where.chmod(0o700)
    (where / "keys").mkdir(mode=0o700, exist_ok=True)
    rows = []
    for role in Role:
        key = Keypair.from_seed(os.urandom(SEED_BYTES))
        path = key_path(where, role)
        write_private(path, _seal(role, key, passphrase))
        rows.append(f"  {role.value:<10} {key.public_key.hex()}  {path}")
    write_private(where / "config.toml", CONFIG_TEMPLATE.encode(), overwrite=False)
    console.print(f"Created Commons home [bold]{where}[/] (mode 0700)")
    console.print("\n".join(rows), soft_wrap=True)
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
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--plaintext", is_flag=True, help="Write the secret key unencrypted.")
def export_key(
    home: Path | None, passphrase_file: Path | None, role: str, out: Path, plaintext: bool
) -> None:
    """Write one role's key to a file that `commons key import` takes on another machine."""
    path = key_path(resolve_home(home), Role(role))
    opened = read_key_file(path, lambda: read_passphrase(passphrase_file, confirm=False))
    data = seal_key(opened.role, opened.key, None) if plaintext else path.read_bytes()
    write_private(out, data)
    state = "UNENCRYPTED" if plaintext or not opened.encrypted else "encrypted"
    console.print(f"Exported {role} key {opened.key.public_key.hex()} to {out} ({state})")


@key.command("import")
@home_option
@passphrase_option
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Replace a key this home already has for that role.")
def import_key(home: Path | None, passphrase_file: Path | None, file: Path, force: bool) -> None:
    """Install a key file from `commons key export` into this home, sealed with your passphrase."""
    where = resolve_home(home)
    passphrase = read_passphrase(passphrase_file, confirm=False)
    opened = read_key_file(file, passphrase)
    data = file.read_bytes() if opened.encrypted else _seal(opened.role, opened.key, passphrase)
    (where / "keys").mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(key_path(where, opened.role), data, overwrite=force)
    console.print(
        f"Imported {opened.role.value} key {opened.key.public_key.hex()} into {where / 'keys'}"
    )
