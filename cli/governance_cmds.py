"""`commons governance simulate`: try governance rules on a scenario before adopting them."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape

from cli.output import console
from ledger.errors import DecodeError
from ledger.files import read_limited
from node.scenario import MAX_SCENARIO_BYTES, ScenarioError, play


@click.group()
def governance() -> None:
    """Governance tools."""


@governance.command("simulate")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as JSON.")
def simulate(file: Path, as_json: bool) -> int:
    """Play a scenario through real keys, records and blocks; exit 1 if an expectation fails."""
    try:
        run = play(read_limited(file, MAX_SCENARIO_BYTES, "scenario file"))
    except (ScenarioError, DecodeError) as e:
        raise click.UsageError(f"{file}: {e}") from e
    if as_json:
        doc = {
            "ok": run.ok,
            "failures": run.failures,
            "timeline": [
                {"at": o.at, "block": o.block, "step": o.step, "result": o.result, "ok": o.ok}
                for o in run.timeline
            ],
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        for o in run.timeline:
            mark = "" if o.ok else "[red]FAILED[/] "
            step, result = escape(o.step), escape(o.result)
            console.print(f"{o.at:>10}s  block {o.block:<4} {step:<28} {mark}{result}")
        if run.ok:
            console.print("[green]every expectation holds[/]")
        for failure in run.failures:
            console.print(f"[red]failed:[/] {escape(failure)}")
    return 0 if run.ok else 1
