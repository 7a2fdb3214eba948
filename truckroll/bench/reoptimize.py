"""``truckroll bench reoptimize``: the demo day dispatched request by request, then re-optimised.

The sample company (truckroll.demo) is seeded into a temporary SQLite database and its requests are decided
one at a time in arrival order by the dispatch engine (the flow's steps without Prefect). The day is then
re-optimised by the engine in several variants, each from the same dispatched plan: travel, utilisation and
value before and after, and the time each step took.
"""

from __future__ import annotations

import tempfile
import time as clock
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer

from truckroll.cli.app import bench_app, console


def dispatch_demo_day(requests: int, technicians: int, seed: int) -> Any:
    """Seed the demo company and decide each request in arrival order; returns the day."""
    from engine.dispatch import decide
    from truckroll import demo, dispatching, store
    from truckroll.db import session_scope
    from truckroll.settings import get_settings
    from truckroll.travel import get_travel_provider

    settings = get_settings()
    travel = get_travel_provider()
    day = demo.next_service_day()
    with session_scope() as session:
        demo.seed_company(session, day, technicians=technicians)
    for item in demo.generate_requests(day, requests, seed=seed):
        with session_scope() as session:
            row, _ = store.create_request(item.payload, session=session, now=item.arrives_at)
            assert row.id is not None
            job = store.requirements_of(row.id, session=session)
            start, end = store.job_horizon(job)
            days = store.technician_days(session=session, start=start, end=end)
            decision = decide(job, days, travel, settings.dispatch)
            if decision.chosen is None:
                store.open_escalation(row.id, decision.escalation_reason or "no technician", {}, session=session)
            else:
                dispatching.commit_assignment(decision, job, session=session, travel=travel, rules=settings.dispatch,
                                              tz=settings.company_timezone)
    return day


@bench_app.command("reoptimize")
def bench_reoptimize(
    requests: int = typer.Option(180, help="Requests of the demo day."),
    technicians: int = typer.Option(25, help="Technicians of the demo company."),
    time_limit: float = typer.Option(30.0, "--time-limit", help="CBC time limit (seconds)."),
    seed: int = typer.Option(11, help="Seed of the demo requests."),
) -> None:
    """Travel, utilisation and value of the demo day before and after re-optimisation, and the solve time."""
    import os

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from rich.table import Table

    from engine.reoptimize import assign_jobs, is_better, score_plan, sequence_plan
    from tasks.reoptimize import reoptimize_options
    from truckroll import reoptimizing
    from truckroll.db import configure, session_scope
    from truckroll.settings import get_settings
    from truckroll.travel import get_travel_provider

    tmp = tempfile.mkdtemp(prefix="truckroll-bench-reopt-")
    configure(f"sqlite:///{Path(tmp) / 'bench.db'}")
    t0 = clock.perf_counter()
    day = dispatch_demo_day(requests, technicians, seed)
    console.print(f"dispatched {requests} requests one by one in {clock.perf_counter() - t0:.1f} s "
                  f"({technicians} technicians, {day.isoformat()})")
    tz = ZoneInfo(get_settings().company_timezone)
    with session_scope() as session:
        snapshot = reoptimizing.load_day(day, tz, session=session, rescue=True)
    travel = get_travel_provider()
    import dataclasses

    base = reoptimize_options(time_limit, 0.0)
    variants: list[tuple[str, Any]] = [
        ("CBC + relocation, better of both starts (default)", base),
        ("CBC + relocation, moves from the current routes",
         dataclasses.replace(base, try_both_starts=False, rebuild_routes=False)),
        ("CBC + relocation, routes rebuilt by insertion",
         dataclasses.replace(base, try_both_starts=False, rebuild_routes=True)),
        ("CBC, no relocation", dataclasses.replace(base, local_search=False)),
        ("greedy (CBC missing) + relocation", dataclasses.replace(base, cbc_executable="/nonexistent/cbc")),
        ("CBC + relocation, windows may change", dataclasses.replace(base, allow_window_changes=True)),
    ]
    opts0 = variants[0][1]
    before = score_plan(snapshot.days, snapshot.jobs, travel, opts0)
    t = Table(title=f"Re-optimisation of the demo day ({requests} requests, {technicians} technicians)")
    for c in ("plan", "jobs", "unassigned", "travel min", "travel/job", "avg util", "busiest", "revenue $",
              "upsell $", "assign s", "sequence s", "total s", "status", "better"):
        t.add_column(c, justify="left" if c in ("plan", "status") else "right")

    def util(days: Any) -> float:
        from engine.insertion import utilisation

        return sum(utilisation(d, travel) for d in days) / len(days)

    t.add_row("dispatched one by one", str(before.jobs), str(len(snapshot.candidates)), f"{before.travel_minutes:.0f}",
              f"{before.travel_minutes / max(before.jobs, 1):.1f}", f"{util(snapshot.days):.1%}",
              f"{before.max_utilisation:.1%}", f"{before.revenue:,.0f}", f"{before.upsell:,.0f}", "", "", "", "", "")
    for name, opts in variants:
        started = clock.perf_counter()
        stage = assign_jobs(snapshot.days, snapshot.jobs, travel, opts)
        assigned = clock.perf_counter()
        plan = sequence_plan(snapshot.days, stage, travel, opts)
        done = clock.perf_counter()
        after = score_plan(plan.days, snapshot.jobs, travel, opts)
        t.add_row(name, str(after.jobs), str(len(plan.unplaced)), f"{after.travel_minutes:.0f}",
                  f"{after.travel_minutes / max(after.jobs, 1):.1f}", f"{util(plan.days):.1%}",
                  f"{after.max_utilisation:.1%}", f"{after.revenue:,.0f}", f"{after.upsell:,.0f}",
                  f"{assigned - started:.2f}", f"{done - assigned:.2f}", f"{done - started:.2f}",
                  plan.assignment.status + ("" if plan.valid else " (invalid)"),
                  "yes" if plan.valid and is_better(after, before, opts.min_gain) else "no")
    console.print(t)
    console.print(f"assignment model: {len(snapshot.jobs)} movable or unassigned jobs, "
                  f"{sum(len(d.stops) for d in snapshot.days)} stops, CBC time limit {time_limit:g} s")
