"""The consoles every command prints through: results to stdout, diagnostics and progress bars
to stderr (a bar only when stderr is a terminal)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(doc: Any) -> None:
    """A command's result as JSON on stdout, for scripts."""
    click.echo(json.dumps(doc, indent=2))


def progress(label: str) -> Progress:
    """A progress bar on stderr that shows only on a terminal and leaves no trace."""
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, console=err_console, transient=True, disable=not sys.stderr.isatty())
