"""The ``solve`` command: a routing problem JSON in, the answer JSON on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from bench import day as _bench_day  # noqa: F401  (registers `truckroll bench day`)
from bench import solomon as _bench_solomon  # noqa: F401  (registers `truckroll bench solomon`)
from cli.app import app, fail, read_json_file


@app.command("solve")
def solve_command(
    problem_file: Path = typer.Argument(..., help="Problem JSON (format in docs/routing.md)."),
    time_limit: float = typer.Option(5.0, "--time-limit", help="Optimiser budget in seconds."),
    seed: int = typer.Option(0, "--seed", help="Search seed, for reproducible plans."),
) -> None:
    """Plan routes for a day: print the answer (routes, unassigned jobs with reasons, totals) as JSON."""
    from engine.routing import problem_from_json, solve
    from truckroll.settings import get_settings

    raw = read_json_file(problem_file)
    try:
        problem = problem_from_json(raw)
        answer = solve(problem, time_limit_seconds=time_limit, seed=seed,
                       cbc_executable=get_settings().cbc_executable)
    except ValueError as exc:
        raise fail(str(exc)) from None
    typer.echo(json.dumps(answer.to_json(), indent=2))
