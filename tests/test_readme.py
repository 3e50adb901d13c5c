"""README.md opens with the two commands a newcomer runs; CI must run exactly those."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _first_code_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert found, "README.md has no bash code block"
    return [line for line in found.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.index("```bash") < text.index("\n## "), "the commands come before any section"
    assert len(_first_code_block()) == 2


def test_ci_runs_the_readme_commands_word_for_word() -> None:
    install, tests = _first_code_block()
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert install in ci, f".ci/run does not run {install!r}"
    assert tests in ci, f".ci/run does not run {tests!r}"
    assert ci.index(install) < ci.index(tests)


def test_ci_uses_a_fresh_virtualenv_without_system_packages() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^python3 -m venv \"\$venv\"$", ci, re.MULTILINE), "no fresh venv"
    assert "system-site-packages" not in ci
    assert re.search(r"^source \"\$venv/bin/activate\"$", ci, re.MULTILINE)
