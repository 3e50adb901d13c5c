"""Where a user's Commons home is, what in it no command may write over, and how its secrets
are reached: the CLI's only file layout."""

from __future__ import annotations

import os
import secrets
import sys
from contextlib import AbstractContextManager
from pathlib import Path

import click

from ledger.crypto import Role
from ledger.files import OutputFile, output_file, read_limited, write_private
from node.errors import ConfigError

ENV_HOME = "COMMONS_HOME"
TOKEN_FILE = "api.token"  # noqa: S105 - a file name, not a secret
MAX_TOKEN_BYTES = 1024
DEFAULT_HOME = Path("~/.commons")

CONFIG_TEMPLATE = """\
# Commons node configuration. Every setting has a safe default; edit what you need.

[node]
# Where this node listens for peers, and for the local API the CLI talks to (HOST:PORT).
# Loopback unless you mean it: the API's reads need no token.
listen = "127.0.0.1:7420"
api = "127.0.0.1:7421"
# Peers to connect to at start: their listen addresses as URLs, e.g. "http://10.0.0.5:7420".
peers = []

[ledger]
# The genesis file of the network this node belongs to (see `commons genesis create`).
# Its hash is the network id that every signature commits to.
genesis = ""
"""


HOME_FILES = {
    "ledger.sqlite": "the ledger",
    "ledger.sqlite-wal": "the ledger's write-ahead log",
    "ledger.sqlite-shm": "the ledger's shared memory file",
    "ledger.sqlite-journal": "the ledger's journal",
    "keys": "the keys folder",
    "config.toml": "the configuration",
    "api.token": "the local API token",
}
"""What a home holds that no command writing a file given by the user may write over."""
MIN_PASSPHRASE_CHARS = 8
"""New keys are sealed under passphrases of at least this many characters (older key files open
with any)."""
MAX_PASSPHRASE_FILE_BYTES = 1024


def resolve_home(home: Path | None) -> Path:
    """--home, else $COMMONS_HOME, else ~/.commons."""
    if home is None:
        home = Path(os.environ.get(ENV_HOME) or DEFAULT_HOME)
    return home.expanduser().resolve()


def key_path(home: Path, role: Role) -> Path:
    return home / "keys" / f"{role.value}.key"


def is_home(folder: Path) -> bool:
    """Whether `folder` holds a Commons home (keys, a configuration or a ledger)."""
    return any((folder / name).exists() for name in ("keys", "config.toml", "ledger.sqlite"))


def protected_files(out: Path, home: Path | None) -> dict[Path, str]:
    """The files `out` must not be: those of the home the command works on, of the default
    home, and of a home that `out` would land in (symbolic links followed)."""
    real = Path(os.path.realpath(out))
    homes = {resolve_home(home), resolve_home(None)}
    homes |= {folder for folder in (real.parent, real.parent.parent) if is_home(folder)}
    return {
        where / name: f"{what} of the Commons home {where}"
        for where in homes
        for name, what in HOME_FILES.items()
    }


def output(
    out: Path, *, force: bool, home: Path | None = None, private: bool = False
) -> AbstractContextManager[OutputFile]:
    """The file a command writes at `out` (its --out), by the one rule of ledger.files: never
    over a home's own files, over an existing file only with --force, all at once or not at
    all."""
    return output_file(out, force=force, private=private, protected=protected_files(out, home))


def read_passphrase(
    passphrase_file: Path | None, *, confirm: bool, prompt: str = "Passphrase"
) -> bytes:
    """The passphrase from --passphrase-file (its first line), else asked for on the terminal."""
    if passphrase_file is not None:
        data = read_limited(passphrase_file, MAX_PASSPHRASE_FILE_BYTES, "passphrase file")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise click.UsageError(f"passphrase file {passphrase_file} is not UTF-8 text") from e
        line = text.splitlines()[0] if text else ""
        if not line:
            raise click.UsageError(f"passphrase file {passphrase_file} is empty")
        return line.encode("utf-8")
    if not sys.stdin.isatty():
        raise click.UsageError("no terminal to ask for a passphrase: pass --passphrase-file")
    value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    if not value:
        raise click.UsageError("the passphrase is empty")
    return value.encode("utf-8")


def new_passphrase(passphrase_file: Path | None, *, prompt: str = "New passphrase") -> bytes:
    """A passphrase to seal new keys under: asked twice on a terminal, at least
    MIN_PASSPHRASE_CHARS characters."""
    value = read_passphrase(passphrase_file, confirm=True, prompt=prompt)
    length = len(value.decode("utf-8"))
    if length < MIN_PASSPHRASE_CHARS:
        where = f" (in {passphrase_file})" if passphrase_file is not None else ""
        raise click.UsageError(
            f"the passphrase{where} has {length} characters; new keys need at least "
            f"{MIN_PASSPHRASE_CHARS}"
        )
    return value


def ensure_token(home: Path) -> str:
    """The home's local API token (`api.token`), made (mode 0600) if the home has none yet."""
    path = home / TOKEN_FILE
    if not path.exists():
        write_private(path, (secrets.token_hex(32) + "\n").encode())
    token = read_token(home)
    if token is None or len(token) < 32:
        raise ConfigError(f"{path} does not hold an API token: delete it to have a new one made")
    return token


def read_token(home: Path) -> str | None:
    """The home's local API token, or None if it has none."""
    path = home / TOKEN_FILE
    if not path.exists():
        return None
    try:
        return read_limited(path, MAX_TOKEN_BYTES, "API token").decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{path} does not hold an API token") from None
