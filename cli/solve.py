"""The ``solve`` command: a routing problem JSON in, the answer JSON on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from bench import day as _bench_day  # noqa: F401  (registers `truckroll bench day`)
from bench import solomon as _bench_solomon  # noqa: F401  (registers `truckroll bench solomon`)
from cli.app import app, fail, read_json_file

SOLVERS = ("truckroll", "vroom")


@app.command("solve")
def solve_command(
    problem_file: Path = typer.Argument(..., help="Problem JSON (format in docs/routing.md)."),
    time_limit: float = typer.Option(5.0, "--time-limit", help="Optimiser budget in seconds."),
    seed: int = typer.Option(0, "--seed", help="Search seed, for reproducible plans (truckroll)."),
    solver: str = typer.Option("truckroll", "--solver",
                               help="truckroll (the route optimiser) or vroom (VROOM's plan of the same problem, "
                                    "re-timed and checked by our scheduler; no maximum working time: the stops "
                                    "over it are taken out)."),
) -> None:
    """Plan routes for a day: print the answer (routes, unassigned jobs with reasons, totals) as JSON."""
    if solver not in SOLVERS:
        raise fail(f"unknown --solver {solver!r} (known: {', '.join(SOLVERS)})")
    if not time_limit > 0:
        raise fail(f"--time-limit must be > 0 seconds (got {time_limit:g})")
    from engine.routing import problem_from_json

    raw = read_json_file(problem_file)
    try:
        problem = problem_from_json(raw)
        if solver == "vroom":
            from engine.routing.peers import vroom_answer, vroom_available

            if not vroom_available():
                raise fail("--solver vroom needs pyvroom (pip install pyvroom)")
            answer = vroom_answer(problem, time_limit)
        else:
            from engine.routing import solve
            from engine.routing.solver import SHORT_BUDGET

            # The CBC step runs only at budgets of SHORT_BUDGET and more; the settings module loads the database
            # models (0.6 s of a short run's whole process), so it is read only then.
            cbc = "cbc"
            if time_limit >= SHORT_BUDGET:
                from truckroll.settings import get_settings

                cbc = get_settings().cbc_executable
            answer = solve(problem, time_limit_seconds=time_limit, seed=seed, cbc_executable=cbc)
    except ValueError as exc:
        raise fail(str(exc)) from None
    typer.echo(json.dumps(answer.to_json(), indent=2))
