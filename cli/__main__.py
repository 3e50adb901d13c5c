"""`python -m cli` runs the `commons` command."""

from cli.main import entry

entry()
