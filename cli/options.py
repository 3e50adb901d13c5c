"""Options several commands share, so each means the same everywhere."""

from __future__ import annotations

from pathlib import Path

import click

home_option = click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Commons home folder (default: $COMMONS_HOME or ~/.commons).",
)
passphrase_option = click.option(
    "--passphrase-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Read the key passphrase from the first line of this file (for unattended use).",
)
out_option = click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The file to write (never over an existing one without --force).",
)
force_option = click.option("--force", is_flag=True, help="Replace the --out file if it exists.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
