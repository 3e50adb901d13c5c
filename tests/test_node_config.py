"""A node's settings (flags > environment > config.toml > defaults) and its block pacing."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import DEFAULT_API, DEFAULT_LISTEN, load, peer_url
from node.consensus.effects import Step, Timeout
from node.consensus.engine import NEW_HEIGHT
from node.errors import ConfigError
from node.policy.pacing import Pacer


def write_config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)


def test_defaults_are_loopback_and_the_homes_genesis(tmp_path: Path) -> None:
    config = load(tmp_path, environ={})
    assert str(config.listen) == DEFAULT_LISTEN
    assert str(config.api) == DEFAULT_API
    assert config.listen.loopback
    assert config.peers == ()
    assert config.genesis == tmp_path / "genesis.json"


def test_flags_beat_environment_beat_file(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        '[node]\nlisten = "127.0.0.1:9000"\napi = "127.0.0.1:9001"\npeers = ["127.0.0.1:9100"]\n'
        '[ledger]\ngenesis = "net.json"\n',
    )
    from_file = load(tmp_path, environ={})
    assert (from_file.listen.port, from_file.api.port) == (9000, 9001)
    assert from_file.peers == ("http://127.0.0.1:9100",)
    assert from_file.genesis == tmp_path / "net.json"
    env = {"COMMONS_LISTEN": "127.0.0.1:9010", "COMMONS_PEERS": "127.0.0.1:9200, 127.0.0.1:9201"}
    from_env = load(tmp_path, environ=env)
    assert from_env.listen.port == 9010
    assert from_env.api.port == 9001
    assert from_env.peers == ("http://127.0.0.1:9200", "http://127.0.0.1:9201")
    from_flags = load(tmp_path, listen="127.0.0.1:9020", peers=["http://h:1"], environ=env)
    assert from_flags.listen.port == 9020
    assert from_flags.peers == ("http://h:1",)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[node]\nlisten = "nowhere"\n', "not HOST:PORT"),
        ("[node]\nlisten = 7420\n", "must be a string"),
        ('[node]\npeers = "127.0.0.1:1"\n', "must be a list"),
        ('[node]\npeers = ["ftp://x:1"]\n', "not http://HOST:PORT"),
        ("[node\n", "cannot read"),
        ('[node]\nlisten = "127.0.0.1:7000"\napi = "127.0.0.1:7000"\n', "both"),
    ],
)
def test_a_bad_config_is_a_config_error(tmp_path: Path, text: str, error: str) -> None:
    write_config(tmp_path, text)
    with pytest.raises(ConfigError, match=error):
        load(tmp_path, environ={})


def test_peer_urls_are_normalised() -> None:
    assert peer_url("127.0.0.1:7420") == "http://127.0.0.1:7420"
    assert peer_url("http://127.0.0.1:7420/") == "http://127.0.0.1:7420"
    with pytest.raises(ConfigError):
        peer_url("http://127.0.0.1")


H2 = Timeout(height=2, round=NEW_HEIGHT, step=Step.PROPOSE)


def test_pacing_waits_for_records_or_the_interval() -> None:
    pacer = Pacer(max_block_interval_ms=10_000)
    pacer.hold(H2, now=1_000, delay_ms=0, decided_at=900)
    assert pacer.release(now=1_000, records_waiting=False) is None
    assert pacer.next_check(1_000) == 9_900
    assert pacer.release(now=5_000, records_waiting=True) == H2
    assert pacer.held is None
    assert pacer.release(now=5_000, records_waiting=True) is None


def test_pacing_makes_an_empty_block_once_the_interval_has_passed() -> None:
    pacer = Pacer(max_block_interval_ms=10_000)
    pacer.hold(H2, now=1_000, delay_ms=0, decided_at=900)
    assert pacer.release(now=10_899, records_waiting=False) is None
    assert pacer.release(now=10_900, records_waiting=False) == H2


def test_pacing_follows_a_peer_that_started_the_height() -> None:
    pacer = Pacer(max_block_interval_ms=10_000)
    pacer.hold(H2, now=1_000, delay_ms=0, decided_at=900)
    assert pacer.release(now=1_001, records_waiting=False, height_started_elsewhere=1) is None
    assert pacer.release(now=1_001, records_waiting=False, height_started_elsewhere=2) == H2


def test_pacing_keeps_the_engines_own_delay() -> None:
    pacer = Pacer(max_block_interval_ms=10_000)
    pacer.hold(H2, now=1_000, delay_ms=500, decided_at=900)
    assert pacer.release(now=1_200, records_waiting=True) is None
    assert pacer.next_check(1_200) == 300
    assert pacer.release(now=1_500, records_waiting=True) == H2
