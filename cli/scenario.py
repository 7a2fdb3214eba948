"""``truckroll scenario generate``: a generated company and request stream (see demo/scenario.py)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cli.app import app, console, fail

scenario_app = typer.Typer(help="Generated companies and request streams for tests, benchmarks and demos.",
                           no_args_is_help=True)
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("generate")
def generate_command(
    technicians: int = typer.Option(25, "--technicians", help="Technicians in the company."),
    days: int = typer.Option(3, "--days", help="Working days of requests."),
    seed: int = typer.Option(1, "--seed", help="Seed: the same seed gives the same scenario."),
    out: Path | None = typer.Option(None, "--out", help="Folder to write scenario.json and one routing problem "
                                                        "per day (day-YYYY-MM-DD.json, for `truckroll solve`); "
                                                        "default: the scenario JSON on stdout."),
    territories: bool = typer.Option(False, "--territories", help="Give technicians and requests a territory "
                                                                  "(the metro quadrant)."),
    jobs_per_technician: float = typer.Option(4.6, "--jobs-per-technician",
                                              help="Mean requests per technician on shift per day."),
) -> None:
    """Make a company (technicians at their own homes, skills with levels, certifications, shifts on every
    working day, absences) and a stream of requests; deterministic by seed."""
    from demo.scenario import day_problem, generate
    from engine.routing.problem import problem_to_json

    if technicians < 1 or technicians > 5000:
        raise fail(f"--technicians must be between 1 and 5000 (got {technicians})")
    if days < 1 or days > 60:
        raise fail(f"--days must be between 1 and 60 (got {days})")
    if not 0 < jobs_per_technician <= 20:
        raise fail(f"--jobs-per-technician must be in (0, 20] (got {jobs_per_technician})")
    scenario = generate(technicians, days, seed, territories=territories, jobs_per_technician=jobs_per_technician)
    data = scenario.to_json()
    if out is None:
        typer.echo(json.dumps(data, indent=1))
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "scenario.json").write_text(json.dumps(data, indent=1))
        for day in scenario.days:
            problem = day_problem(scenario, day)
            (out / f"day-{day.isoformat()}.json").write_text(json.dumps(problem_to_json(problem)))
    except OSError as exc:
        raise fail(f"cannot write to {out}: {exc.strerror or exc}") from None
    console.print(f"{len(scenario.technicians)} technicians, {len(scenario.requests)} requests over "
                  f"{len(scenario.days)} working days ({scenario.days[0]} .. {scenario.days[-1]}) -> {out}")
