"""`commons simulate`: run the consensus engine on a simulated network for many seeds, print
what each run did, and exit 1 if any run broke safety or liveness.

Runs are independent and deterministic, so they may be spread over worker processes
(`--workers`); results are printed in seed order and the output is the same, byte for byte,
for the same arguments.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor

import click

from cli.output import progress
from node.sim import ATTACKS, RunResult, Scenario, run

LONG_HEIGHTS = 100


def run_many(
    scenarios: Sequence[Scenario],
    workers: int = 1,
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Run scenarios, on `workers` processes when more than one; results in input order.
    `on_result` sees each result as it comes (in input order)."""
    done = on_result or (lambda _: None)
    if workers <= 1 or len(scenarios) <= 1:
        results = []
        for scenario in scenarios:
            results.append(run(scenario))
            done(results[-1])
        return results
    with ProcessPoolExecutor(max_workers=workers) as pool:
        chunk = max(1, len(scenarios) // (4 * workers))
        results = []
        for result in pool.map(run, scenarios, chunksize=chunk):
            results.append(result)
            done(result)
        return results


def totals(results: Iterable[RunResult]) -> dict[str, object]:
    results = list(results)
    heights = sum(r.heights for r in results)
    messages = sum(r.messages for r in results)
    sim_time = sum(r.sim_time_ms for r in results)
    return {
        "runs": len(results),
        "ok": sum(r.ok for r in results),
        "failed": sum(not r.ok for r in results),
        "heights": heights,
        "rounds": sum(r.rounds for r in results),
        "max_round": max((r.max_round for r in results), default=0),
        "messages": messages,
        "messages_per_height": round(messages / heights, 1) if heights else None,
        "sim_time_ms": sim_time,
        "ms_per_height": sim_time // heights if heights else None,
        "evidence": sum(r.evidence for r in results),
        "crashes": sum(r.crashes for r in results),
        "restarts": sum(r.restarts for r in results),
    }


def run_line(r: RunResult) -> str:
    per_height = f"{r.messages / r.heights:.1f}" if r.heights else "-"
    ms = f"{r.sim_time_ms // r.heights}" if r.heights else "-"
    byzantine = f"  byzantine {','.join(r.behaviours)}" if r.behaviours else ""
    records = f"  records {r.records}" if r.records else ""
    return (
        f"seed {r.seed}: {'ok  ' if r.ok else 'FAIL'}  heights {r.heights}  rounds {r.rounds} "
        f"(max round {r.max_round})  messages {r.messages} ({per_height}/height)  "
        f"time {r.sim_time_ms} ms ({ms} ms/height)  evidence {r.evidence}"
        f"{records}{byzantine}"
    )


def total_line(t: dict[str, object]) -> str:
    t = {k: "-" if v is None else v for k, v in t.items()}
    return (
        f"total: {t['runs']} runs, {t['ok']} ok, {t['failed']} failed; {t['heights']} heights "
        f"in {t['rounds']} rounds (max round {t['max_round']}); {t['messages']} messages "
        f"({t['messages_per_height']}/height); {t['ms_per_height']} ms simulated per height; "
        f"{t['evidence']} double votes caught; {t['crashes']} crashes, {t['restarts']} restarts"
    )


@click.command()
@click.option("--validators", "-n", type=click.IntRange(1, 256), default=4, show_default=True)
@click.option(
    "--byzantine", "-f", type=click.IntRange(0, 256), default=0, show_default=True,
    help="How many validators misbehave.",
)  # fmt: skip
@click.option("--seeds", type=click.IntRange(1), default=1, show_default=True)
@click.option("--seed-start", type=click.IntRange(0), default=0, show_default=True)
@click.option(
    "--heights", type=click.IntRange(1), default=None,
    help=f"Heights every honest node must decide [default: 10, or {LONG_HEIGHTS} with --long].",
)  # fmt: skip
@click.option(
    "--drop", type=click.FloatRange(0.0, 0.9), default=0.0, show_default=True,
    help="Chance that a message is lost before GST.",
)  # fmt: skip
@click.option("--partition", is_flag=True, help="Split the honest nodes until GST.")
@click.option(
    "--crashes", type=click.IntRange(0), default=0, show_default=True,
    help="Honest validators that crash and restart from persisted state before GST.",
)  # fmt: skip
@click.option(
    "--attack", type=click.Choice(ATTACKS), default="mixed", show_default=True,
    help="What Byzantine validators do (fork: a coalition equivocating across a partition).",
)  # fmt: skip
@click.option(
    "--powers", default=None, metavar="P1,P2,...",
    help="Voting power of each validator (default: all 1).",
)  # fmt: skip
@click.option(
    "--records", type=click.IntRange(0), default=0, show_default=True,
    help="Records members submit to honest nodes; each must end final once on every one.",
)  # fmt: skip
@click.option("--long", "long_", is_flag=True, help=f"Decide {LONG_HEIGHTS} heights per run.")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=1, show_default=True,
    help="Worker processes (the output does not depend on it).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def simulate(
    validators: int,
    byzantine: int,
    seeds: int,
    seed_start: int,
    heights: int | None,
    drop: float,
    partition: bool,
    crashes: int,
    attack: str,
    powers: str | None,
    records: int,
    long_: bool,
    workers: int,
    as_json: bool,
) -> int:
    """Simulate a validator network for many seeds and check safety and liveness.

    Exit 1 if any run has two honest nodes deciding different blocks at one height, a decided
    block without a valid certificate, a height that does not decide in time, or a record
    submitted that is not final once on every honest node.
    """
    if byzantine >= validators:
        raise click.UsageError(
            f"--byzantine {byzantine} leaves no honest validator of {validators}"
        )
    power_list: tuple[int, ...] = ()
    if powers:
        try:
            power_list = tuple(int(p) for p in powers.split(","))
        except ValueError as e:
            raise click.UsageError(f"--powers must be integers separated by commas: {e}") from e
        if len(power_list) != validators or min(power_list) < 1:
            raise click.UsageError(f"--powers needs {validators} powers, each at least 1")
    scenarios = [
        Scenario(
            validators=validators,
            byzantine=byzantine,
            seed=seed,
            heights=heights or (LONG_HEIGHTS if long_ else 10),
            drop=drop,
            partition=partition,
            crashes=crashes,
            attack=attack,
            powers=power_list,
            records=records,
        )
        for seed in range(seed_start, seed_start + seeds)
    ]
    with progress("simulating") as bar:
        task = bar.add_task("runs", total=len(scenarios))
        results = run_many(scenarios, workers, lambda _: bar.advance(task))
    summary = totals(results)
    if as_json:
        doc = {"runs": [r.to_json() for r in results], "total": summary}
        click.echo(json.dumps(doc, sort_keys=True, indent=2))
    else:
        for r in results:
            click.echo(run_line(r))
            for violation in r.violations:
                click.echo(f"    {violation}")
        click.echo(total_line(summary))
    return 0 if all(r.ok for r in results) else 1
