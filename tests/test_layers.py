"""The import direction of DESIGN.md: cli -> node -> governance -> ledger, and pure cores."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ledger", "governance", "node", "cli")
ALLOWED = {
    "ledger": set(),
    "governance": {"ledger"},
    "node": {"ledger", "governance"},
    "cli": {"ledger", "governance", "node"},
}
PURE_PREFIXES = ("node/consensus", "node/policy", "node/sim")
IO_MODULES = {"asyncio", "aiohttp", "socket", "sqlite3", "time", "random", "threading"}
SIM_MAY_USE = {"random"}  # the simulator draws from a seeded random.Random it owns
# What a pure core must not touch either: clocks, entropy, the OS, other processes.
IMPURE = IO_MODULES | {"datetime", "os", "secrets", "uuid", "concurrent", "multiprocessing",
                       "subprocess", "tempfile", "pathlib"}  # fmt: skip


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _sources(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"package {package} has no Python files"
    return files


@pytest.mark.parametrize("package", PACKAGES)
def test_import_direction(package: str) -> None:
    forbidden = set(PACKAGES) - ALLOWED[package] - {package}
    for path in _sources(package):
        bad = _imports(path) & forbidden
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_only_the_store_imports_sqlite() -> None:
    users = [p.relative_to(ROOT).as_posix() for p in _sources("ledger") if "sqlite3" in _imports(p)]
    assert users in ([], ["ledger/store.py"])


@pytest.mark.parametrize("package", ["ledger", "governance"])
def test_pure_packages_do_no_network_or_clock(package: str) -> None:
    for path in _sources(package):
        bad = _imports(path) & (IO_MODULES - {"sqlite3"})
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_pure_node_cores_import_no_io() -> None:
    for prefix in PURE_PREFIXES:
        allowed = SIM_MAY_USE if prefix == "node/sim" else set()
        for path in sorted(ROOT.joinpath(prefix).rglob("*.py")):
            bad = _imports(path) & (IMPURE - allowed)
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_governance_is_pure() -> None:
    for path in _sources("governance"):
        bad = _imports(path) & IMPURE
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("import os\nfrom cli.main import main\nimport node.x as y\n")
    assert _imports(sample) == {"os", "cli", "node"}
