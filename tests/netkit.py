"""Real nodes for tests: separate `commons node start` processes on 127.0.0.1, talked to through
their local API, waited on by condition (never a fixed sleep), stopped or SIGKILLed at will."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from cli.devnet import DevnetNode, create, free_ports
from ledger.genesis import Genesis, Param

T = TypeVar("T")

FAST = {
    # a test network votes for seconds, not days
    "voting_delay": Param(value=0, min=0, max=30 * 86_400),
    "voting_period": Param(value=5, min=1, max=90 * 86_400),
    "timelock": Param(value=0, min=0, max=30 * 86_400),
    "late_quorum_extension": Param(value=0, min=0, max=30 * 86_400),
    "max_block_interval_ms": Param(value=2_000, min=1_000, max=3_600_000),
}


def wait_for(check: Callable[[], T | None], timeout: float = 30.0, what: str = "") -> T:
    """Poll `check` until it returns something other than None/False."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value is not None and value is not False:
                return value
        except (OSError, urllib.error.URLError, KeyError, ValueError) as e:
            last_error = e
        time.sleep(0.05)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what} (last error {last_error})"
    )


@dataclass
class RunningNode:
    spec: DevnetNode
    process: subprocess.Popen[bytes] | None = None
    extra: tuple[str, ...] = ()
    starts: int = 0

    @property
    def home(self) -> Path:
        return self.spec.home

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.spec.api}"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        log = (self.home / "node.log").open("ab")
        with log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cli",
                    "node",
                    "start",
                    "--home",
                    str(self.home),
                    *self.extra,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={**os.environ, "COMMONS_HOME": str(self.home)},
            )
        self.starts += 1

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> int:
        """SIGTERM and wait: the node's exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def get(self, path: str, timeout: float = 5.0) -> Any:
        """The node's JSON answer; an error status raises HTTPError (closed: its body read)."""
        try:
            with urllib.request.urlopen(self.api + path, timeout=timeout) as answer:  # noqa: S310
                return json.loads(answer.read())
        except urllib.error.HTTPError as e:
            e.read()
            e.close()
            raise

    def status(self) -> dict[str, Any]:
        return dict(self.get("/api/status"))

    def height(self) -> int:
        return int(self.status()["height"])

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"{self.home.name} exited; its log:\n{self.log()[-3000:]}")
        try:
            self.get("/ready")
        except urllib.error.HTTPError as e:
            e.close()
            return False
        return True

    def log(self) -> str:
        return (self.home / "node.log").read_text(errors="replace")


@dataclass
class Devnet:
    where: Path
    genesis: Genesis
    nodes: list[RunningNode] = field(default_factory=list)

    def start(self) -> None:
        for n in self.nodes:
            n.start()

    def stop(self) -> None:
        for n in self.nodes:
            if n.alive:
                n.stop()

    def wait_ready(self, timeout: float = 60.0) -> None:
        for n in self.nodes:
            if n.alive:
                wait_for(n.ready, timeout, f"{n.home.name} ready")

    def wait_height(
        self, height: int, nodes: list[RunningNode] | None = None, timeout: float = 60.0
    ) -> None:
        for n in nodes or [n for n in self.nodes if n.alive]:
            wait_for(lambda n=n: n.height() >= height, timeout, f"{n.home.name} at height {height}")


def make_devnet(where: Path, count: int, *, params: dict[str, Param] | None = None) -> Devnet:
    ports = free_ports(2 * count)
    specs = [
        DevnetNode(home=where / f"node-{i + 1}", listen=ports[2 * i], api=ports[2 * i + 1])
        for i in range(count)
    ]
    genesis = create(where, specs, params={**FAST, **(params or {})})
    return Devnet(where=where, genesis=genesis, nodes=[RunningNode(spec) for spec in specs])


def joiner(net: Devnet, home: Path, *, peer: int = 0) -> RunningNode:
    """A node for `home` (made by `commons init`) that joins `net` with only the genesis and one
    peer's URL, on ports of its own; not started."""
    listen, api = free_ports(2)
    return RunningNode(
        DevnetNode(home=home, listen=listen, api=api),
        extra=(
            "--genesis", str(net.where / "genesis.json"),
            "--peer", net.nodes[peer].spec.url,
            "--listen", f"127.0.0.1:{listen}",
            "--api", f"127.0.0.1:{api}",
        ),
    )  # fmt: skip


@contextmanager
def running(net: Devnet) -> Iterator[Devnet]:
    net.start()
    try:
        yield net
    finally:
        for n in net.nodes:
            n.kill()
