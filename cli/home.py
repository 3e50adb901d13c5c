"""Where a user's Commons home is and how its secrets are reached: the CLI's only file layout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ledger.crypto import Role

ENV_HOME = "COMMONS_HOME"
DEFAULT_HOME = Path("~/.commons")

CONFIG_TEMPLATE = """\
# Commons node configuration. Every setting has a safe default; edit what you need.

[node]
# Address this node listens on for peers and for the local API. Loopback unless you mean it.
listen = "127.0.0.1:7420"
# Peers to connect to at start, as "host:port" strings.
peers = []

[ledger]
# The genesis file of the network this node belongs to (see `commons genesis create`).
# Its hash is the network id that every signature commits to.
genesis = ""
"""


def resolve_home(home: Path | None) -> Path:
    """--home, else $COMMONS_HOME, else ~/.commons."""
    if home is None:
        home = Path(os.environ.get(ENV_HOME) or DEFAULT_HOME)
    return home.expanduser().resolve()


def key_path(home: Path, role: Role) -> Path:
    return home / "keys" / f"{role.value}.key"


def read_passphrase(passphrase_file: Path | None, *, confirm: bool) -> bytes:
    """The passphrase from --passphrase-file (its first line), else asked for on the terminal."""
    if passphrase_file is not None:
        try:
            text = passphrase_file.read_text(encoding="utf-8")
        except OSError as e:
            raise click.UsageError(
                f"cannot read passphrase file {passphrase_file}: {e.strerror}"
            ) from e
        except UnicodeDecodeError as e:
            raise click.UsageError(f"passphrase file {passphrase_file} is not UTF-8 text") from e
        line = text.splitlines()[0] if text else ""
        if not line:
            raise click.UsageError(f"passphrase file {passphrase_file} is empty")
        return line.encode("utf-8")
    if not sys.stdin.isatty():
        raise click.UsageError("no terminal to ask for a passphrase: pass --passphrase-file")
    value: str = click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    if not value:
        raise click.UsageError("the passphrase is empty")
    return value.encode("utf-8")
