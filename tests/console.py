"""How tests run the `commons` console script: the one installed beside the interpreter under
test, never whatever `commons` comes first on PATH (an older install would hide a broken one)."""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

SCRIPT = Path(sysconfig.get_path("scripts")) / "commons"


def commons() -> list[str]:
    """The command line that starts this interpreter's `commons` script."""
    assert SCRIPT.is_file(), f"{SCRIPT} is missing: install the package with pip install -e ."
    return [str(SCRIPT)]


def commons_module() -> list[str]:
    """The same entry point through the interpreter (`python -m cli`)."""
    return [sys.executable, "-m", "cli"]
