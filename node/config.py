"""A node's settings: flags over environment over the home's `config.toml` over defaults.

- peer address: `--listen HOST:PORT`, `COMMONS_LISTEN`, `node.listen`; default `127.0.0.1:7420`
- local API address: `--api HOST:PORT`, `COMMONS_API`, `node.api`; default `127.0.0.1:7421`
- peers: `--peer URL` (repeatable), `COMMONS_PEERS` (comma-separated), `node.peers`; default none
- genesis file: `--genesis FILE`, `COMMONS_GENESIS`, `ledger.genesis`; default `genesis.json` in
  the home, made for a new one-validator network at the first start

A peer URL is `http://HOST:PORT` (the peer's listen address). Relative paths in `config.toml` are
relative to the home.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from node.errors import ConfigError

DEFAULT_LISTEN = "127.0.0.1:7420"
DEFAULT_API = "127.0.0.1:7421"
MAX_CONFIG_BYTES = 64 * 1024
MAX_PEERS = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, what: str) -> Address:
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"{what} {text!r} is not HOST:PORT")
        return cls(host=host.strip("[]"), port=int(port))

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def peer_url(text: str) -> str:
    """A peer as `http://HOST:PORT` (a bare `HOST:PORT` is taken as such)."""
    url = text if "://" in text else f"http://{text}"
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"peer {text!r}: {e}") from e
    if parts.scheme != "http" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ConfigError(f"peer {text!r} is not http://HOST:PORT")
    return f"http://{parts.netloc}"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    home: Path
    listen: Address
    api: Address
    peers: tuple[str, ...]
    genesis: Path

    @property
    def ledger(self) -> Path:
        return self.home / "ledger.sqlite"

    @property
    def token_file(self) -> Path:
        return self.home / "api.token"


def read_config_file(home: Path) -> dict[str, Any]:
    path = home / "config.toml"
    if not path.exists():
        return {}
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes")
        return tomllib.loads(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from e


def _section(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = doc.get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"config.toml: [{name}] is not a table")
    return section


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"config.toml: {what} must be a string, got {value!r}")
    return value


def load(
    home: Path,
    *,
    listen: str | None = None,
    api: str | None = None,
    peers: Sequence[str] = (),
    genesis: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> NodeConfig:
    """The node's settings for `home`; the keyword arguments are the command line's flags."""
    env = os.environ if environ is None else environ
    doc = read_config_file(home)
    node, ledger = _section(doc, "node"), _section(doc, "ledger")

    def pick(flag: str | None, env_name: str, section: Mapping[str, Any], key: str) -> str | None:
        if flag is not None:
            return flag
        if env.get(env_name):
            return env[env_name]
        if key in section:
            return _text(section[key], key)
        return None

    listen_text = pick(listen, "COMMONS_LISTEN", node, "listen") or DEFAULT_LISTEN
    api_text = pick(api, "COMMONS_API", node, "api") or DEFAULT_API
    if peers:
        peer_list = list(peers)
    elif env.get("COMMONS_PEERS"):
        peer_list = [p.strip() for p in env["COMMONS_PEERS"].split(",") if p.strip()]
    else:
        raw = node.get("peers", [])
        if not isinstance(raw, list):
            raise ConfigError("config.toml: node.peers must be a list of strings")
        peer_list = [_text(p, "node.peers") for p in raw]
    if len(peer_list) > MAX_PEERS:
        raise ConfigError(f"{len(peer_list)} peers given; at most {MAX_PEERS}")
    genesis_text = None if genesis is not None else pick(None, "COMMONS_GENESIS", ledger, "genesis")
    genesis_path = genesis if genesis is not None else Path(genesis_text or "genesis.json")
    if not genesis_path.is_absolute():
        genesis_path = (home / genesis_path) if genesis is None else genesis_path.resolve()
    listen_at = Address.parse(listen_text, "listen address")
    api_at = Address.parse(api_text, "API address")
    if (listen_at.host, listen_at.port) == (api_at.host, api_at.port) and listen_at.port:
        raise ConfigError(f"the peer and API addresses are both {listen_at}")
    return NodeConfig(
        home=home,
        listen=listen_at,
        api=api_at,
        peers=tuple(dict.fromkeys(peer_url(p) for p in peer_list)),
        genesis=genesis_path,
    )
