"""How the CLI tests run `commons` as a user would: in-process through `main([...])`, or as the
console script in a subprocess. Either way a traceback reaching the user fails the test."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from console import commons

from cli.main import main

ROOT = Path(__file__).resolve().parent.parent


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`main(args)` in-process: (exit code, stdout, stderr). An exception escaping main fails the
    test with its traceback, which is what a user would have seen."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`commons args` as a subprocess of this interpreter's console script."""
    result = subprocess.run(
        [*commons(), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result
