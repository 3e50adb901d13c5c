"""The consoles every command prints through: results to stdout, diagnostics to stderr."""

from rich.console import Console

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
