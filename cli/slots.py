"""``truckroll optimize-slots``: the value-maximising assignment of jobs to (technician, slot) pairs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from bench import slots as _bench_slots  # noqa: F401  (registers `truckroll bench slots`)
from cli.app import app, err_console, fail, read_json_file


@app.command("optimize-slots")
def optimize_slots(
    instance: Path = typer.Argument(..., help="Instance JSON (see docs/slots.md)."),
    backend: str = typer.Option("flow", help="flow (exact min-cost flow), pyomo (Pyomo + CBC LP) or greedy."),
    time_limit: float = typer.Option(None, "--time-limit", help="CBC time limit in seconds (pyomo backend)."),
    mip_gap: float = typer.Option(0.0, "--mip-gap", help="CBC relative gap (pyomo backend)."),
) -> None:
    """Print the optimal slot plan for INSTANCE as JSON on stdout."""
    from engine.booking.slots import SlotProblem, solve
    from truckroll.settings import get_settings

    data = read_json_file(instance)
    try:
        problem = SlotProblem.from_dict(data)
        plan = solve(problem, backend=backend, time_limit_seconds=time_limit, mip_gap=mip_gap,
                     cbc_executable=get_settings().cbc_executable)
    except ValueError as exc:
        raise fail(f"{instance.name}: {exc}") from None
    sys.stdout.write(json.dumps(plan.to_dict()) + "\n")
    if plan.status in ("feasible", "fallback_greedy"):
        err_console.print(f"[bold yellow]warning:[/] status {plan.status}: {plan.message}")
